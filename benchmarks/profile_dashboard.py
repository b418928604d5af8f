"""Where a dashboard redraw spends its time, stage by stage, at a setting never seen before (nothing cached).

The stages are the ones a slider change runs, in the dashboard's order, called directly (no Streamlit), on fresh
Configs near T = 100 and T = 1000 (both cells, at initialisation):
  probe       gradlab.probe per cell (the engine)
  lyapunov    the Lyapunov spectrum per cell (analysis.summary's most expensive part; the dashboard computes it in
              worker processes, the LSTM's while the other cells are probed, so part of it is hidden)
  summary     the rest of analysis.summary per cell
  facts       scenes.facts (run when a scene is open)
  figure      each panel's figure build (panels.figure): the page draws only the open tab's, so a redraw pays one
              (the first tab's, at the defaults) and opening another tab pays that one's
  serialise   what st.plotly_chart does with a figure: plotly.tools.return_figure_from_figure_or_data and
              plotly.io.to_json, per panel
then the whole rerun as AppTest measures it (bench_dashboard.py's number), minus the stages' serial sum. The page
computes the spectra in worker processes beside its other work, so Streamlit's own share can be larger than that
remainder.
`--cprofile` also prints the 25 functions with the most cumulative time of one redraw (probe excluded).

    OPENBLAS_NUM_THREADS=1 .venv/bin/python benchmarks/profile_dashboard.py [--lengths 100,1000] [--cprofile]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `make run` (set before numpy loads)
os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import plotly.io as pio  # noqa: E402
import plotly.tools  # noqa: E402

import gradlab  # noqa: E402
from gradlab import analysis, lyapunov, panels, plots, scenes  # noqa: E402
from gradlab.scenes import BY_NAME  # noqa: E402

CELLS = ("rnn", "lstm")


def serialise(fig) -> str:
    """What st.plotly_chart does with a figure before it reaches the browser (streamlit 1.67)."""
    spec = plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True)
    return pio.to_json(spec, validate=False)


def redraw(T: int, seed_shift: int, times: dict, profile: cProfile.Profile | None = None) -> None:
    """One uncached redraw at sequence length T, each stage's seconds appended to `times`."""
    cfg = BY_NAME["vanishing"].config.replace(seq_len=T, seed=1000 + seed_shift)  # a new Config every time

    def timed(key, fn):
        t = time.perf_counter()
        out = fn()
        times.setdefault(key, []).append(time.perf_counter() - t)
        return out

    probes = {c: timed(f"probe {c}", lambda c=c: gradlab.probe(cfg.replace(cell=c))) for c in CELLS}
    if profile:
        profile.enable()
    for c, p in probes.items():
        # the summary holds the spectrum; the spectrum is timed again alone (nothing caches it apart from the summary)
        # and its time taken out of the summary's
        timed(f"summary {c}", lambda p=p: analysis.summary(p))
        timed(f"lyapunov {c}", lambda p=p: lyapunov.lyapunov(p))
        times[f"summary {c}"][-1] -= times[f"lyapunov {c}"][-1]  # the summary's own part
    timed("scenes.facts", lambda: scenes.facts(probes))
    style = plots.Style()
    for p in panels.shown(probes, trained=False):
        fig = timed(f"figure {p.name}", lambda p=p: panels.figure(p.name, probes, style))
        timed(f"serialise {p.name}", lambda fig=fig: serialise(fig))
    if profile:
        profile.disable()


def apptest(T: int, repeats: int) -> list[float]:
    """The whole rerun as bench_dashboard.py measures it: a seq_len slider change to a value not seen before."""
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
    at.run()
    out = []
    for k in range(repeats):
        v = T - 5 * (k + 1) if T >= 1000 else T + 5 * (k + 1)
        t = time.perf_counter()
        at.slider(key="seq_len").set_value(v).run()
        out.append(time.perf_counter() - t)
        assert not at.exception, at.exception
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="100,1000")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cprofile", action="store_true")
    ap.add_argument("--no-apptest", action="store_true")
    args = ap.parse_args(argv)
    for T in (int(x) for x in args.lengths.split(",")):
        times: dict[str, list[float]] = {}
        prof = cProfile.Profile() if args.cprofile else None
        redraw(T, 0, {})  # warm-up: imports, templates
        for r in range(args.repeats):
            redraw(T, r + 1, times, prof if r == 0 else None)
        med = {k: statistics.median(v) for k, v in times.items()}
        first = panels.PANELS[0].name
        total = sum(v for k, v in med.items() if k.split()[0] in ("lyapunov", "summary")) + sum(
            med[f"{stage} {first}"] for stage in ("figure", "serialise"))
        print(f"\n== T = {T}: median of {args.repeats} uncached redraws, ms (one BLAS thread) ==")
        for k, v in sorted(med.items(), key=lambda kv: -kv[1]):
            print(f"  {1e3 * v:8.1f}  {k}")
        groups = {g: sum(v for k, v in med.items() if k.startswith(g)) for g in
                  ("probe", "lyapunov", "summary", "scenes", "figure", "serialise")}
        print("  " + "-" * 40)
        for g, v in groups.items():
            print(f"  {1e3 * v:8.1f}  all {g}")
        print(f"  {1e3 * total:8.1f}  a redraw of the first tab but the probes: spectra, summaries, its figure")
        if not args.no_apptest:
            a = statistics.median(apptest(T, args.repeats + 2))
            print(f"  {1e3 * a:8.1f}  the AppTest rerun (bench_dashboard's measure); minus a redraw's stages summed "
                  f"serially: {1e3 * (a - total - groups['probe']):.0f}")
        if prof:
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
            print(s.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
