"""Sweep throughput: runs per second serially, on a Dask LocalCluster with one worker process per core (its start
included, writing the output file as a sweep does) and, as the anchor, a plain ProcessPoolExecutor with as many
processes running the same `run_one` on the same configs (start included, writing nothing). Target: Dask at least
80% of the ProcessPool's throughput. Also the per-task overhead (a near-empty run: 1 training step at T=5).

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
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        df = sweep.sweep(base, grid, seeds, out=os.path.join(d, "s.parquet"), **kw)
        return time.perf_counter() - t, len(df)


def pool(base, grid, seeds, workers) -> float:
    from concurrent.futures import ProcessPoolExecutor
    todo = [c.to_json() for c in sweep.configs(base, grid, seeds)]
    t = time.perf_counter()
    with ProcessPoolExecutor(workers) as ex:
        list(ex.map(sweep.run_one, todo, [tuple(grid)] * len(todo)))
    return time.perf_counter() - t


def main():
    cores = os.cpu_count()
    work = gradlab.Config(hidden=32, batch=32, steps=200, record_every=200)
    grid = {"seq_len": [10, 25, 50], "init_scale": [0.5, 1.0, 1.5]}
    tiny = gradlab.Config(hidden=4, batch=2, steps=1, record_every=1, seq_len=5)
    tiny_grid = {"init_scale": [0.1 * k for k in range(1, 11)]}
    lines = ["| sweep | runs | serial | LocalCluster (%d workers) | speed-up | ProcessPool (anchor) | Dask / pool |" % cores,
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, base, g, seeds in (("adding, H=32, B=32, 200 steps, T in {10,25,50} x 3 gains", work, grid, [0, 1]),
                                 ("near-empty runs (overhead per task)", tiny, tiny_grid, [0, 1, 2])):
        ts, n = timed(base, g, seeds, scheduler="serial")
        tc, _ = timed(base, g, seeds, workers=cores)
        tp = pool(base, g, seeds, cores)
        lines.append(f"| {name} | {n} | {ts:.1f} s ({n / ts:.1f} runs/s) | {tc:.1f} s ({n / tc:.1f} runs/s, "
                     f"cluster start included) | {ts / tc:.2f}x | {tp:.1f} s ({n / tp:.1f} runs/s) | "
                     f"{tp / tc:.0%} (target 80%) |")
        if base is tiny:
            lines.append(f"| overhead per task on the cluster | | {1000 * ts / n:.0f} ms serial | "
                         f"{1000 * tc / n:.0f} ms | |")
    text = "\n".join(lines) + "\n\nCommand: `python benchmarks/bench_sweep.py`\n"
    print(text)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "sweep.md").write_text(text)


if __name__ == "__main__":
    main()
