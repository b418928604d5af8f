"""Export timings: kaleido's browser start (once per process), then each figure per format, and the full ZIP of
"Export all" at the dashboard's defaults (probe panels only, and with the training panels).

Targets (issue 5): <= 0.5 s per figure after the first, <= 10 s for the full ZIP.  python benchmarks/bench_export.py
"""
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gradlab  # noqa: E402
from gradlab import export  # noqa: E402
from gradlab.scenes import BY_NAME  # noqa: E402
from report import write_table  # noqa: E402


def main():
    cfg = BY_NAME["vanishing"].config
    probes = {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}
    figs = export.figures(probes, None, cfg)
    t = time.perf_counter()
    export.render(figs["grad_vs_time"], "png")  # starts kaleido's browser: once per process
    rows = [("first figure of a process (starts kaleido's Chromium)", time.perf_counter() - t, None)]
    for fmt in ("png", "svg", "pdf", "html"):
        times = []
        for fig in figs.values():
            t = time.perf_counter()
            export.render(fig, fmt)
            times.append(time.perf_counter() - t)
        rows.append((f"one figure as {fmt.upper()} (median over the {len(figs)} panels)", statistics.median(times), 0.5))
    t = time.perf_counter()
    export.zip_bytes(export.export_all(probes, None, cfg))
    rows.append((f"Export all (ZIP) at the defaults, at initialisation: {len(figs)} panels x 5 formats",
                 time.perf_counter() - t, 10))
    runs = gradlab.train_pair(cfg.replace(steps=100))
    t = time.perf_counter()
    export.zip_bytes(export.export_all(probes, runs, cfg))
    n = len(export.figures(probes, runs, cfg))
    rows.append((f"Export all (ZIP) after training: {n} panels x 5 formats", time.perf_counter() - t, 10))
    write_table("export", rows, command="python benchmarks/bench_export.py")

if __name__ == "__main__":
    main()
