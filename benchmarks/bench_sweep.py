"""Sweep throughput: runs per second serially and on a Dask LocalCluster with one worker process per core, and the
per-task overhead (a near-empty run: 1 training step at T=5). Each variant gets a fresh output file.

    python benchmarks/bench_sweep.py
"""
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gradlab  # noqa: E402
from gradlab import sweep  # noqa: E402


def timed(base, grid, seeds, **kw) -> tuple[float, int]:
    t = time.perf_counter()
    df = sweep.sweep(base, grid, seeds, **kw)
    return time.perf_counter() - t, len(df)


def main():
    cores = os.cpu_count()
    work = gradlab.Config(hidden=32, batch=32, steps=200, record_every=200)
    grid = {"seq_len": [10, 25, 50], "init_scale": [0.5, 1.0, 1.5]}
    tiny = gradlab.Config(hidden=4, batch=2, steps=1, record_every=1, seq_len=5)
    tiny_grid = {"init_scale": [0.1 * k for k in range(1, 11)]}
    lines = ["| sweep | runs | serial | LocalCluster (%d workers) | speed-up |" % cores, "|---|---:|---:|---:|---:|"]
    for name, base, g, seeds in (("adding, H=32, B=32, 200 steps, T in {10,25,50} x 3 gains", work, grid, [0, 1]),
                                 ("near-empty runs (overhead per task)", tiny, tiny_grid, [0, 1, 2])):
        ts, n = timed(base, g, seeds, scheduler="serial")
        tc, _ = timed(base, g, seeds, workers=cores)
        lines.append(f"| {name} | {n} | {ts:.1f} s ({n / ts:.1f} runs/s) | {tc:.1f} s ({n / tc:.1f} runs/s, "
                     f"including ~1.5 s cluster start) | {ts / tc:.2f}x |")
        if base is tiny:
            lines.append(f"| overhead per task on the cluster | | {1000 * ts / n:.0f} ms serial | "
                         f"{1000 * tc / n:.0f} ms | |")
    text = "\n".join(lines) + "\n\nCommand: `python benchmarks/bench_sweep.py`\n"
    print(text)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "sweep.md").write_text(text)


if __name__ == "__main__":
    main()
