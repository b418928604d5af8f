#!/usr/bin/env python
"""Time gradlab's engine (forward + full BPTT + per-step recording) against PyTorch CPU on the same problem.

    .venv/bin/python benchmarks/bench_engine.py              # full grid (~6-8 min on 2 cores); writes results/engine.md
    .venv/bin/python benchmarks/bench_engine.py --quick      # a small subset in well under a minute
    .venv/bin/python benchmarks/bench_engine.py --cells lstm --dtypes float64 --markdown

What is timed (batch generation and parameter initialisation are excluded; both sides get the same arrays):
  gradlab   `gradlab.bptt.run(params, x, y, y_mask, cell, "tanh", "mse")`: what `gradlab.probe` spends its time in:
            forward, full BPTT, the per-step norms of dL/dh_t, dL/dc_t and of every step's dW_hh term, h, c and gates.
  fused, stepwise   PyTorch's nn.LSTM / nn.RNN, and its cell loop with retain_grad() (torch_anchor.py).
PyTorch gets gradlab's parameters copied in, so all three compute the same loss and gradients; this is checked once
per configuration (loss, dL/dW_hh against both, and the per-step ||dL/dh_t|| against the stepwise loop), and the
run fails (exit status 1) if float64 disagrees by more than TOL relative.

Timing: an untimed warm-up round (which also provides the check), then `reps` rounds of gradlab, fused, stepwise in
that order, with a 0.2 s pause before the PyTorch calls (OpenBLAS's threads keep spinning for ~0.1 s after numpy's
last call and would otherwise take the cores from PyTorch: measured here, up to 2x slower PyTorch without it).
`reps` adapts to the cost of a round so that a configuration takes about `--budget` seconds (at least 3 rounds).
Times are medians; ratios are medians of the per-round paired ratios (absolute times drift by +-30% between runs on
these VMs and 2-thread BLAS is bimodal; paired ratios move much less). Every row also reports the CPU that other
processes used meanwhile: run it on a quiet machine (not during a test run).

PyTorch runs with torch.set_num_threads equal to numpy's BLAS thread count (threadpoolctl reads and sets numpy's).
The targets, TARGET below, and the measurements they were set from: docs/tasks.md, "Performance".
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gradlab  # noqa: E402
import torch_anchor  # noqa: E402  (beside this file)
from gradlab import bptt  # noqa: E402
from gradlab.probe import setup  # noqa: E402
from machine import OtherLoad, cpu_model, numpy_threads, wait_quiet  # noqa: E402
from report import engine_report, fmt_ms, rss_lines  # noqa: E402

TARGET = {"float64": 0.6, "float32": 1.2}  # gradlab / fused PyTorch, per dtype
TOL = {"float64": 1e-10, "float32": 1e-4}  # largest relative disagreement with PyTorch
TASK, NONLINEARITY, LOSS = "adding", "tanh", "mse"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "engine.md"

FULL = {"B": (32, 128), "H": (32, 64, 128), "T": (50, 200, 1000)}
QUICK = {"B": (32,), "H": (32, 64), "T": (50, 200)}
DASHBOARD = {"B": (32,), "H": (64,), "T": (200, 1000)}  # the size the dashboard probes, where the targets are set
GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # G = GATES[cell] * H rows of W_hh
ANCHOR = (32, 64)  # (B, H) of the linear-in-T check: the anchor configuration of docs/tasks.md
BUSY = 0.15  # cores used by other processes above which a row is considered disturbed (and measured again)


# ---- the problem ---------------------------------------------------------------------------------------------------

def make_problem(cell: str, dtype: str, B: int, H: int, T: int):
    """What gradlab.probe(cfg) feeds bptt.run, from the same setup: the task's first batch, the initial parameters.
    y is cast up front: bptt.run would cast it on every timed call, a copy that is not the engine's work."""
    cfg = gradlab.Config(cell=cell, task=TASK, seq_len=T, hidden=H, batch=B, dtype=dtype, nonlinearity=NONLINEARITY)
    batch, params, _ = setup(cfg)
    return cfg, params, batch.x, batch.y.astype(dtype), batch.y_mask


def matmul_flops(cell: str, B: int, H: int, T: int, D: int = 2, O: int = 1) -> int:
    """Matmul flops of one forward + backward, counting a multiply-add as 2; G = 4H (LSTM) or H (RNN). Per step (G = 3H for the GRU):
         forward   x_t W_ih^T: 2BDG    h_{t-1} W_hh^T: 2BHG    read-out h_t W_y^T: 2BHO
         backward  da_t W_hh -> dh_{t-1}: 2BGH    dW_hh += da_t^T h_{t-1}: 2BGH    dW_ih += da_t^T x_t: 2BGD
                   dyhat_t W_y -> dh_t: 2BOH     dW_y += dyhat_t^T h_t: 2BOH
       total = T * (6BGH + 4BGD + 6BHO). Elementwise work (nonlinearities, gate products, norms) is not counted, nor
       is what gradlab's recording adds: every step's own dW_hh term da_t^T h_{t-1} (for its norm), another 2BGH a step.
       Both sides are credited with the same count, so the GFLOP/s columns compare like with like."""
    G = GATES[cell] * H
    return T * (6 * B * G * H + 4 * B * G * D + 6 * B * H * O)


def gradlab_fn(cell, params, x, y, m):
    return lambda: bptt.run(params, x, y, m, cell, NONLINEARITY, LOSS)


# ---- timing --------------------------------------------------------------------------------------------------------

def timed(fn) -> float:
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def bench_one(cell, dtype, B, H, T, args, have_torch) -> dict:
    load = OtherLoad()
    _, params, x, y, m = make_problem(cell, dtype, B, H, T)
    impls = [("gradlab", gradlab_fn(cell, params, x, y, m))]
    if have_torch:
        fused, step = torch_anchor.models(cell, NONLINEARITY, params, x, y, m)
        impls += [("fused", fused), ("stepwise", step)]

    # warm-up round: untimed for the statistics, but it gives the agreement check and the cost of a round
    t0 = time.perf_counter()
    outs = {}
    for name, fn in impls:
        if name == "fused":
            time.sleep(args.pause)
        outs[name] = fn()
    warm = time.perf_counter() - t0
    row = {"cell": cell, "dtype": dtype, "B": B, "H": H, "T": T}
    if have_torch:
        row["check"] = torch_anchor.agreement(outs["gradlab"], outs["fused"], outs["stepwise"])
        row["agrees"] = row["check"] <= TOL[dtype]
    del outs
    reps = max(args.min_reps, min(args.max_reps, int(args.budget / max(warm, 1e-9))))

    times = {name: [] for name, _ in impls}
    for _ in range(reps):
        gc.collect()
        for name, fn in impls:
            if name == "fused":
                time.sleep(args.pause)  # let OpenBLAS's spinning threads go to sleep before PyTorch runs
            times[name].append(timed(fn))
    row["reps"] = reps
    for name, ts in times.items():
        row[name + "_ms"] = 1e3 * statistics.median(ts)
    row["spread"] = max(times["gradlab"]) / min(times["gradlab"])
    row["others"] = load.cores()
    if have_torch:
        row["ratio"] = statistics.median(g / f for g, f in zip(times["gradlab"], times["fused"]))
        row["ratio_step"] = statistics.median(g / s for g, s in zip(times["gradlab"], times["stepwise"]))
        row["target"] = TARGET[dtype]
        row["met"] = row["ratio"] <= TARGET[dtype]
    row["gflops"] = matmul_flops(cell, B, H, T) / (row["gradlab_ms"] * 1e-3) / 1e9
    row["fused_gflops"] = matmul_flops(cell, B, H, T) / (row["fused_ms"] * 1e-3) / 1e9 if have_torch else None
    return row


# ---- peak memory in a fresh process --------------------------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_child(impl, cell, dtype, B, H, T) -> None:
    """Run one call of `impl` in this (fresh) process and print peak RSS figures (KiB) as JSON.

    ru_maxrss of a child started by a big parent can report the parent's size (Linux carries the high-water mark
    of the pre-exec image over), so the child also reports VmHWM, the high-water mark of its own address space."""
    _, params, x, y, m = make_problem(cell, dtype, B, H, T)
    if impl == "gradlab":
        fn = gradlab_fn(cell, params, x, y, m)
    else:
        fused, step = torch_anchor.models(cell, NONLINEARITY, params, x, y, m)
        fn = fused if impl == "fused" else step
    gc.collect()
    before = _status_kb("VmRSS")
    out = fn()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm = _status_kb("VmHWM") or maxrss
    del out
    print(json.dumps({"impl": impl, "before_kb": before, "peak_kb": hwm, "ru_maxrss_kb": maxrss}))


def measure_rss(cell, dtype, B, H, T, have_torch, threads) -> list[dict]:
    res = []
    for impl in ("gradlab", "fused", "stepwise") if have_torch else ("gradlab",):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", impl, cell, dtype, str(B), str(H), str(T),
               "--threads", str(threads)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            res.append({"impl": impl, "error": p.stderr.strip().splitlines()[-1:] or ["failed"]})
            continue
        res.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return res


# ---- main ----------------------------------------------------------------------------------------------------------

def grid(cells, dtypes, quick, dashboard=False):
    configs, notes = [], []
    for cell in cells:
        g = DASHBOARD if dashboard else QUICK if quick else FULL
        notes.append(f"grid {cell}: B in {list(g['B'])}, H in {list(g['H'])}, T in {list(g['T'])}, "
                     f"dtypes {list(dtypes)}")
        for dtype in dtypes:
            for B in g["B"]:
                for H in g["H"]:
                    for T in g["T"]:
                        configs.append((cell, dtype, B, H, T))
    return configs, notes


def check_probe_path() -> None:
    """The benchmarked call is what gradlab.probe runs: same loss and gradients on a small configuration."""
    for cell in GATES:
        cfg, params, x, y, m = make_problem(cell, "float64", 4, 8, 20)
        rec = bptt.run(params, x, y, m, cell, NONLINEARITY, LOSS)
        p = gradlab.probe(cfg)
        assert p.loss == rec["loss"] and all(np.array_equal(p.grads[k], rec["grads"][k]) for k in rec["grads"]), cell


def progress(r, label, t_start, have_torch) -> None:
    msg = f"[{label} {time.perf_counter() - t_start:5.0f}s] {r['cell']} {r['dtype']} B={r['B']} H={r['H']} " \
          f"T={r['T']}: gradlab {fmt_ms(r['gradlab_ms'])} ms (max/min {r['spread']:.2f}, " \
          f"others {r['others']:.2f} cores)"
    if have_torch:
        msg += (f", fused {fmt_ms(r['fused_ms'])} ms (ratio {r['ratio']:.2f}), stepwise {fmt_ms(r['stepwise_ms'])}"
                f" ms, err {r['check']:.0e}")
    print(msg + f", {r['reps']} reps", file=sys.stderr)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small subset (B=32, H in 32,64, T in 50,200), 1 s per config")
    ap.add_argument("--dashboard", action="store_true", help="the dashboard's size only: B=32, H=64, T in 200,1000")
    ap.add_argument("--cells", default="lstm,rnn", help="comma-separated: lstm,rnn,gru (default lstm,rnn)")
    ap.add_argument("--dtypes", default="float64,float32", help="comma-separated: float64,float32")
    ap.add_argument("--threads", type=int, default=None,
                    help="set numpy's BLAS threads (and so PyTorch's) to N; default: numpy's own setting")
    ap.add_argument("--budget", type=float, default=None, help="seconds per configuration (default 3, quick 1)")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=15)
    ap.add_argument("--pause", type=float, default=0.2, help="seconds of sleep before the PyTorch calls (default 0.2)")
    ap.add_argument("--retries", type=int, default=2,
                    help=f"times to re-measure, at the end, a configuration during which other processes used > {BUSY} "
                         "cores (default 2)")
    ap.add_argument("--max-wait", type=float, default=600.0,
                    help="total seconds to spend waiting for a quiet machine before re-measuring (default 600)")
    ap.add_argument("--no-torch", action="store_true", help="time gradlab alone even if torch is importable")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS measurement")
    ap.add_argument("--markdown", action="store_true", help="print the report as markdown")
    ap.add_argument("--out", default=None,
                    help=f"write the markdown report here (default {DEFAULT_OUT.relative_to(ROOT)} for a full run, "
                         "nothing for --quick or a partial run); '-' for none")
    ap.add_argument("--rss-child", nargs=6, metavar=("IMPL", "CELL", "DTYPE", "B", "H", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.budget is None:
        args.budget = 1.0 if args.quick else 3.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        threadpool_limits(limits=args.threads, user_api="blas")  # for the rest of the process
    if args.rss_child:
        impl, cell, dtype, B, H, T = args.rss_child
        if impl != "gradlab":
            torch_anchor.load()
            torch_anchor.torch.set_num_threads(args.threads or 1)
        rss_child(impl, cell, dtype, int(B), int(H), int(T))
        return 0

    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for c in cells:
        if c not in GATES:
            raise SystemExit(f"--cells: unknown cell {c!r} (lstm, rnn, gru)")
    for d in dtypes:
        if d not in TARGET:
            raise SystemExit(f"--dtypes: unknown dtype {d!r} (float64, float32)")
    have_torch = not args.no_torch and torch_anchor.load()

    n_np, how = numpy_threads()
    header = [
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {cpu_model()}, {os.cpu_count()} cpus; "
        f"python {platform.python_version()}",
        f"numpy {np.__version__}, BLAS threads {n_np} ({how}"
        + (f"; set by --threads {args.threads})" if args.threads is not None else ")"),
    ]
    if have_torch:
        torch = torch_anchor.torch
        torch.set_num_threads(n_np)
        header.append(f"torch {torch.__version__}, torch.set_num_threads({n_np}) -> get_num_threads() = "
                      f"{torch.get_num_threads()}")
    elif not args.no_torch:
        header.append("torch: not importable -> gradlab only (install with `make bench`, which installs "
                      "requirements-bench.txt: torch==2.13.0)")
    else:
        header.append("torch not used (--no-torch)")
    header.append(f"task {TASK}, tanh RNN / LSTM, loss mse, D=2, O=1; gradlab timed at bptt.run (what probe runs), "
                  f"batch generation excluded; budget {args.budget:g} s per configuration, {args.min_reps}-"
                  f"{args.max_reps} rounds, pause {args.pause:g} s before PyTorch")
    given = argv if argv is not None else sys.argv[1:]
    header.append("command: " + " ".join(["python", "benchmarks/bench_engine.py"] + given))

    check_probe_path()
    configs, grid_note = grid(cells, dtypes, args.quick, args.dashboard)
    out_path = args.out
    full_run = not args.quick and not args.dashboard and set(cells) >= {"lstm", "rnn"} and set(dtypes) == set(TARGET)
    if out_path is None:
        out_path = str(DEFAULT_OUT) if full_run else "-"

    for line in header + grid_note:
        print(line, file=sys.stderr)
    t_start = time.perf_counter()
    whole = OtherLoad()

    # peak memory first, while this process is still small (see rss_child)
    rss, rss_cfg = [], None
    if not args.no_rss:
        lstm64 = [c for c in configs if c[0] == "lstm" and c[1] == "float64"] or configs
        rss_cfg = max(lstm64, key=lambda c: c[2] * c[3] * c[3] * c[4])
        rss = measure_rss(*rss_cfg, have_torch, n_np)
        for line in rss_lines(rss, rss_cfg):
            print(line, file=sys.stderr)

    rows, redo = [], []
    for i, (cell, dtype, B, H, T) in enumerate(configs, 1):
        r = bench_one(cell, dtype, B, H, T, args, have_torch)
        progress(r, f"{i}/{len(configs)}", t_start, have_torch)
        if r["others"] > BUSY and args.retries > 0:
            print(f"  other processes used {r['others']:.2f} cores meanwhile: measured again at the end",
                  file=sys.stderr)
            redo.append(len(rows))
        rows.append(r)
    # configurations disturbed by other processes: wait for a quiet machine and measure them again (keep the quieter)
    wait_left = args.max_wait
    for _ in range(args.retries):
        still = []
        for idx in redo:
            if wait_left <= 0:
                break
            wait_left -= wait_quiet(min(wait_left, 120.0))
            old = rows[idx]
            r = bench_one(old["cell"], old["dtype"], old["B"], old["H"], old["T"], args, have_torch)
            progress(r, "again", t_start, have_torch)
            if r["others"] < old["others"]:
                rows[idx] = r
            if rows[idx]["others"] > BUSY:
                still.append(idx)
        redo = still
        if not redo:
            break

    busy = [r for r in rows if r["others"] > BUSY]
    verdict = (f"{len(busy)} configuration(s) still disturbed after re-measuring (other procs' CPU > {BUSY}): "
               "rerun on a quiet machine" if busy
               else f"every configuration measured while other processes used <= {BUSY} cores")
    header.append(f"wall time {time.perf_counter() - t_start:.0f} s; other processes used {whole.cores():.2f} cores on "
                  f"average over the run; {verdict}")

    def report(markdown):
        return engine_report(rows, header, rss, rss_cfg, have_torch, markdown, grid_note, TARGET, TOL, ANCHOR)

    print(report(args.markdown))
    if out_path != "-":
        path = Path(out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(report(True) + "\n")
        tmp.replace(path)
        print(f"wrote {path}", file=sys.stderr)

    bad = [r for r in rows if have_torch and r["dtype"] == "float64" and not r["agrees"]]
    if bad:
        print(f"FAIL: gradlab and PyTorch disagree beyond {TOL['float64']:g} on {len(bad)} float64 configuration(s)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
