"""The command line: `python -m gradlab probe ...` and `python -m gradlab verify FILE.npz`.

Flags are the Config's fields in kebab case (--seq-len for seq_len); every error is one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import zipfile

import numpy as np
from tqdm import tqdm

from .config import CELLS, Config, describe
from .probe import probe, verify
from .scenes import BY_NAME


def one_line(text: str) -> str:
    """Control characters a user typed (a carriage return, a newline) are shown escaped, so an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, no usage dump: the user asked for help with --help
        sys.stderr.write(f"gradlab: error: {one_line(message)} (see '{self.prog} --help')\n")
        sys.exit(2)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE.json", help="read the Config from a JSON file; flags override it")
    for f in dataclasses.fields(Config):
        p.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar=f.name.upper(),
                       help=f"{f.metadata['help']}: {describe(f)} (default {f.default})")


def config_from_args(args: argparse.Namespace) -> Config:
    base: dict = {}
    if args.config:
        try:
            with open(args.config) as fh:
                base = json.load(fh)
        except OSError as e:
            raise ValueError(f"cannot read --config {args.config}: {e.strerror}") from None
        except (json.JSONDecodeError, RecursionError) as e:
            raise ValueError(f"--config {args.config} is not valid JSON: {type(e).__name__}: {str(e)[:80]}") from None
        if not isinstance(base, dict):
            raise ValueError(f"--config {args.config} must hold a JSON object of Config fields")
    flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
    return Config.from_dict({**base, **flags})


def summary(p) -> str:
    """What a probe measured and what predicts it, as plain lines (every number from analysis.summary)."""
    from .analysis import summary as measure
    g = p.grad_h_norm
    cfg = p.config
    sm = measure(p)
    what = f"{p.cell.upper()}" + (f" ({p.nonlinearity})" if p.cell == "rnn" else "")
    if cfg:
        what += f" on {cfg.task}, T={cfg.seq_len}, H={cfg.hidden}, B={cfg.batch}, init={cfg.init} x{cfg.init_scale:g}"
        gate = {"lstm": "b_f", "gru": "b_z"}.get(p.cell)  # the gate that keeps the state takes forget_bias
        what += f", {gate}={cfg.forget_bias:g}" if gate and cfg.init != "chrono" else ""
        what += f", truncate={cfg.truncate}" if cfg.truncate else ""
    end = sm["end"]
    lines = [what, f"  loss                      {p.loss:.6g}",
             f"  ||dL/dh_t|| at t=1        {g[0]:.3e}", f"  ||dL/dh_t|| at t={end + 1:<9d}{g[end]:.3e}",
             f"  ratio first/loss step     {sm['ratio']:.3e}",
             f"  measured rate per step    {sm['mean_rate']:.4f}  (on ||dL/d{'c' if sm['rate_on'] == 'grad_c_norm' else 'h'}_t||)",
             f"  top Lyapunov factor       {sm['lyapunov'][0]:.4f}  (the prediction)"]
    if p.grad_c_norm is not None:
        lines.append(f"  ||dL/dc_t|| at t=1        {p.grad_c_norm[0]:.3e}")
    lines.append(f"  diagnosis                 {sm['diagnosis'][1]}")
    for name, fl in p.nonfinite.items():
        where = f"at step {fl['step'] + 1}" if fl.get("step") is not None else "(not a step)"
        lines.append(f"  flagged: {name} {where} ({fl['count']} step(s))")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m gradlab", description="Exact BPTT gradient dynamics of vanilla RNNs and LSTMs.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p_probe = sub.add_parser("probe", help="one forward pass and full BPTT, recorded per step")
    add_config_flags(p_probe)
    p_probe.add_argument("--weights", metavar="FILE.npz",
                         help="parameters under PyTorch state_dict names (e.g. a trained nn.LSTM saved with numpy)")
    p_probe.add_argument("--out", metavar="FILE.npz", help="save the bundle here")
    p_export = sub.add_parser("export", help="every figure and its data, for slides (PNG, SVG, PDF, HTML, CSV)")
    add_config_flags(p_export)
    p_export.add_argument("--preset", metavar="NAME", help="a dashboard scene (" + ", ".join(BY_NAME) + ") or 'all'")
    p_export.add_argument("--out", metavar="DIR", default="figures", help="output folder (default figures/)")
    p_export.add_argument("--formats", default="svg,pdf,png,html,csv",
                          help="comma-separated subset of svg,pdf,png,html,csv,gif,mp4 (gif and mp4: the animated "
                               "panels only, a few seconds each; not by default)")
    p_export.add_argument("--cells", default="rnn,lstm",
                          help="the cells drawn side by side, on the same data (default rnn,lstm; e.g. rnn,lstm,gru)")
    p_export.add_argument("--train", action="store_true", help="also train both cells and export the training panels")
    p_export.add_argument("--screen", action="store_true",
                          help="the dashboard's screen style instead of the projector style (big fonts, 16:9)")
    p_export.add_argument("--no-stamp", action="store_true", help="leave out the caption stamp (task, T, H, init, seed)")
    p_export.add_argument("--bundles", action="store_true",
                          help="also write the recorded bundles (.npz; ~100 MB for an LSTM at T = 1000); config.json "
                               "reproduces them exactly with `gradlab probe --config`")
    p_export.add_argument("--embed-plotlyjs", action="store_true",
                          help="put plotly.js (4.6 MB) inside every HTML file, so each opens alone; by default they "
                               "share one plotly.min.js in the export folder")
    p_sweep = sub.add_parser("sweep", help="train both cells over a grid of Config values and seeds (Dask)")
    add_config_flags(p_sweep)
    p_sweep.add_argument("--vary", action="append", default=[], metavar="FIELD=V1,V2|A:B:N",
                         help="a Config field and its values, listed or as N evenly spaced from A to B; repeatable")
    p_sweep.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 for every grid point (default 1)")
    p_sweep.add_argument("--cells", default="rnn,lstm", help="the cells trained at every point (default rnn,lstm)")
    p_sweep.add_argument("--out", metavar="FILE", required=True, help="results (.parquet or .csv); resumed if present")
    p_sweep.add_argument("--scheduler", metavar="ADDRESS",
                         help="a Dask scheduler (tcp://host:8786); 'serial' runs in this process; default: all local cores")
    p_sweep.add_argument("--workers", type=int, help="local worker processes (default: one per core)")
    p_export.add_argument("--sweep", metavar="FILE", help="draw a saved sweep's trainability map instead")
    p_export.add_argument("--handout", metavar="FILE.pdf",
                          help="write a lecture handout instead: one PDF page per scene (every scene, or --preset's)")
    p_verify = sub.add_parser("verify", help="recompute a bundle and report the largest relative error per quantity")
    p_verify.add_argument("bundle", metavar="FILE.npz")
    p_verify.add_argument("--tol", type=float, default=1e-7, help="fail (exit 1) above this relative error")
    args = parser.parse_args(argv)
    try:
        if args.command == "probe":
            return _probe(args)
        if args.command == "export":
            return _export(args)
        if args.command == "sweep":
            return _sweep(args)
        return _verify(args)
    except KeyboardInterrupt:  # Ctrl-C: what was written is complete (atomic writes), say so in one line
        sys.stderr.write("\ngradlab: interrupted; files already written are complete, nothing partial was left\n")
        return 130
    except ValueError as e:
        sys.stderr.write(f"gradlab: error: {one_line(str(e))}\n")
        return 2
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        sys.stderr.write(f"gradlab: error: {one_line(where + str(e.strerror or e))}\n")
        return 2


def _probe(args) -> int:
    cfg = config_from_args(args)
    params = None
    if args.weights:
        params = load_weights(args.weights)
    p = probe(cfg, params)
    print(summary(p))
    if args.out:
        p.save(args.out)
        print(f"saved {args.out}")
    return 0


def load_weights(path: str) -> dict:
    """Parameters from a .npz of named arrays (np.savez of a state_dict); anything else is refused in one line."""
    from .record import read_npz
    if os.path.exists(path) and not zipfile.is_zipfile(path):
        raise ValueError(f"--weights {path}: not a .npz of named arrays (save them with np.savez(path, **state_dict))")
    arrays = read_npz(path, what=f"--weights {path}")
    for k, a in arrays.items():
        if a.dtype.kind != "f":
            kind = {"i": "integer", "u": "integer", "b": "boolean", "c": "complex"}.get(a.dtype.kind, "non-numeric")
            raise ValueError(f"--weights {path}: parameter {k!r} has {kind} dtype {a.dtype}, expected "
                             "floating-point numbers")
    return arrays


def parse_vary(items: list[str]) -> dict[str, list]:
    """["seq_len=10,25", "init_scale=0.5:1.5:5"] -> {"seq_len": [10, 25], "init_scale": [0.5, 0.75, ...]}."""
    grid: dict[str, list] = {}
    for item in items:
        name, _, spec = item.partition("=")
        name = name.strip().replace("-", "_")
        if not spec or name not in Config.__dataclass_fields__:
            raise ValueError(f"--vary {item!r}: expected FIELD=V1,V2,... or FIELD=A:B:N with a Config field")
        if ":" in spec:
            try:
                a, b, n = spec.split(":")
                values = [float(v) for v in np.linspace(float(a), float(b), int(n))]
            except ValueError:
                raise ValueError(f"--vary {item!r}: A:B:N needs two numbers and a count") from None
        else:
            values = [v.strip() for v in spec.split(",") if v.strip()]
        field = Config.__dataclass_fields__[name]
        grid[name] = [getattr(Config.from_dict({name: v if isinstance(v, str) else repr(v)}), name) for v in values] \
            if field.metadata.get("kind") or "choices" in field.metadata else values
    if not grid:
        raise ValueError("give at least one --vary FIELD=VALUES")
    return grid


def _sweep(args) -> int:
    from . import sweep
    grid = parse_vary(args.vary)
    if args.seeds < 1:
        raise ValueError(f"--seeds {args.seeds}: expected at least 1")
    base = config_from_args(args)
    cells = parse_cells(args.cells)
    sweep.configs(base, grid, list(range(args.seeds)), cells=cells)  # validates every combination before any work
    with _progress() as show:
        df = sweep.sweep(base, grid, list(range(args.seeds)), cells=cells, out=args.out, scheduler=args.scheduler,
                         workers=args.workers, progress=lambda i, n: show("sweep: runs done", i, n))
    print(f"{args.out}: {len(df)} runs; solved fraction by cell: "
          + ", ".join(f"{c} {df[df.cell == c].solved.mean():.2f}" for c in CELLS if (df.cell == c).any()))
    return 0


def parse_cells(text: str) -> tuple[str, ...]:
    """--cells rnn,lstm,gru: the cells in their fixed order (colours and columns never move)."""
    cells = [c.strip() for c in text.split(",") if c.strip()]
    if not cells or not set(cells) <= set(CELLS) or len(set(cells)) < len(cells):
        raise ValueError(f"--cells {text!r}: expected a comma-separated choice of {','.join(CELLS)}")
    return tuple(c for c in CELLS if c in cells)


def _export(args) -> int:
    from . import animation, export  # plotting libraries are only needed here
    from .plots import Style

    if args.handout:
        return _handout(args)
    if args.sweep:
        from . import sweep
        df = sweep.load(args.sweep)
        stem = os.path.splitext(os.path.basename(args.sweep))[0]
        formats = [f.strip() for f in args.formats.split(",") if f.strip()]
        files = export.sweep_files(df, stem, formats, Style(lecture=not args.screen))
        written = export.write_files(files, args.out)
        print(f"wrote {len(written)} files under {args.out}")
        return 0
    from .train import train_many

    cells = parse_cells(args.cells)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    bad = [f for f in formats if f not in export.FORMATS]
    if bad or not formats:
        raise ValueError(f"--formats {args.formats!r}: expected a comma-separated subset of {','.join(export.FORMATS)}")
    for f in set(formats) & set(export.ANIMATION_FORMATS):  # before any probing or training: one line if missing
        try:
            animation.encoder(f)
        except animation.NoEncoder as e:
            raise ValueError(str(e)) from None
    if args.preset:
        if args.preset != "all" and args.preset not in BY_NAME:
            raise ValueError(f"--preset {args.preset!r} is not one of {', '.join(BY_NAME)}, all")
        scenes = list(BY_NAME.values()) if args.preset == "all" else [BY_NAME[args.preset]]
        flags = {f.name: getattr(args, f.name) for f in dataclasses.fields(Config) if getattr(args, f.name) is not None}
        jobs = [(s.name if args.preset == "all" else "", Config.from_dict({**s.config.to_dict(), **flags}),
                 s.train or args.train) for s in scenes]  # flags given with a preset change the preset
    else:
        jobs = [("", config_from_args(args), args.train)]
    style = Style(lecture=not args.screen)
    total = 0
    for sub, cfg, train in jobs:
        where = os.path.join(args.out, sub) if sub else args.out
        label = sub or "export"
        probes = {c: probe(cfg.replace(cell=c)) for c in cells}
        # one plotly.js for the whole export: beside the HTML files, or one folder up for --preset all's folders
        js = True if args.embed_plotlyjs else (f"../{export.PLOTLY_JS}" if sub else export.PLOTLY_JS)
        with _progress() as show:
            runs = train_many([cfg.replace(cell=c) for c in cells],
                              on_record=lambda p, label=label: show(f"{label}: training", p.step, p.steps)) \
                if train else None
            files = export.export_all(probes, runs, cfg, formats, style, stamp=not args.no_stamp,
                                      progress=lambda i, n, name, label=label: show(f"{label}: {name}", i, n),
                                      plotlyjs=js, bundles=args.bundles)
        written = export.write_files(files, where)
        total += len(written)
        if "NO_IMAGES.txt" in files:
            sys.stderr.write(f"gradlab: note: {files['NO_IMAGES.txt'].decode().strip()}\n")
        print(f"{where}: {len(written)} files")
    if "html" in formats and not args.embed_plotlyjs and any(sub for sub, _, _ in jobs):
        total += len(export.write_files({export.PLOTLY_JS: export.plotly_js()}, args.out))
    print(f"wrote {total} files under {args.out}")
    return 0


def _handout(args) -> int:
    """One PDF page per scene, each measured at its own settings (so Config flags are refused, not ignored)."""
    from .export import NoBrowser
    from .files import write_bytes
    from .handout import handout
    from .plots import Style

    if args.preset not in (None, "all", *BY_NAME):
        raise ValueError(f"--preset {args.preset!r} is not one of {', '.join(BY_NAME)}, all")
    if args.config or any(getattr(args, f.name) is not None for f in dataclasses.fields(Config)):
        raise ValueError("--handout shows every scene at its own settings: leave out --config and the Config flags")
    folder = os.path.dirname(os.path.abspath(args.handout))
    if not os.path.isdir(folder) or os.path.isdir(args.handout):
        raise ValueError(f"--handout {args.handout}: expected a file name in an existing folder")
    scenes = list(BY_NAME.values()) if args.preset in (None, "all") else [BY_NAME[args.preset]]
    try:
        with _progress() as show:
            data = handout(scenes, Style(lecture=not args.screen), progress=lambda i, n, what: show(what, i, n))
    except NoBrowser as e:
        raise ValueError(f"--handout: {e}") from None
    write_bytes(args.handout, data)
    print(f"wrote {args.handout}: {len(scenes)} page{'s' if len(scenes) > 1 else ''}, {len(data) / 1e6:.1f} MB")
    return 0


@contextlib.contextmanager
def _progress():
    """`show(label, i, n)` draws i of n on one tqdm line on stderr, so stdout stays clean for scripts. One line
    serves a command's phases (training, then each file): it starts over when the total changes or the count goes
    back. Nothing is drawn until the first show, and the line is ended on the way out, also on an error."""
    bar = None

    def show(label: str, i: int, n: int) -> None:
        nonlocal bar
        if bar is None:  # miniters=0: redrawn at most every 0.1 s, also when only the label moved (a training step)
            bar = tqdm(desc=label, total=n, file=sys.stderr, miniters=0,
                       bar_format="{desc} |{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]")
        bar.set_description_str(label, refresh=False)
        if n != bar.total or i < bar.n:
            bar.reset(total=n)
        bar.update(i - bar.n)

    try:
        yield show
    finally:
        if bar is not None:
            bar.close()


def _verify(args) -> int:
    errors = verify(args.bundle)
    worst = max(errors.values())
    for name, e in errors.items():
        print(f"  {name:28s} {e:.2e}")
    ok = worst <= args.tol
    print(f"{'OK' if ok else 'MISMATCH'}: largest relative error {worst:.2e} (tolerance {args.tol:g})")
    return 0 if ok else 1
