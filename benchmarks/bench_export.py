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

import gradlab  # noqa: E402
from gradlab import export, plots  # noqa: E402
from gradlab.scenes import BY_NAME  # noqa: E402


def main():
    cfg = BY_NAME["vanishing"].config
    probes = {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}
    figs = export.figures(probes, None, cfg)
    t = time.perf_counter()
    export.start_browser()
    rows = [("start kaleido's browser (once per process)", time.perf_counter() - t, None)]
    export.render(figs["grad_vs_time"], "png")  # the first figure warms the page
    for fmt in ("png", "svg", "pdf", "html"):
        times = []
        for fig in figs.values():
            t = time.perf_counter()
            export.render(fig, fmt)
            times.append(time.perf_counter() - t)
        rows.append((f"one figure as {fmt.upper()} (median over the 4 panels)", statistics.median(times), 0.5))
    t = time.perf_counter()
    export.zip_bytes(export.export_all(probes, None, cfg))
    rows.append(("Export all (ZIP) at the defaults, at initialisation: 4 panels x 5 formats", time.perf_counter() - t, 10))
    runs = gradlab.train_pair(cfg.replace(steps=100))
    t = time.perf_counter()
    export.zip_bytes(export.export_all(probes, runs, cfg))
    rows.append(("Export all (ZIP) after training: 6 panels x 5 formats", time.perf_counter() - t, 10))
    lines = ["| what | time | target | met |", "|---|---:|---:|---|"]
    for what, s, target in rows:
        lines.append(f"| {what} | {s:.2f} s | {'' if target is None else f'{target} s'} | "
                     f"{'' if target is None else ('yes' if s <= target else 'no')} |")
    text = "\n".join(lines) + "\n\nCommand: `python benchmarks/bench_export.py`\n"
    print(text)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "export.md").write_text(text)


if __name__ == "__main__":
    main()
