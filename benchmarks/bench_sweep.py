"""Sweep throughput: runs per second serially, on a Dask LocalCluster with one worker process per core (its start
included, writing the output file as a sweep does) and, as the anchor, a plain ProcessPoolExecutor with as many
processes running the same `run_one` on the same configs (start included, writing nothing; one BLAS thread per
process, as Dask's workers have). Target: Dask at least
80% of the ProcessPool's throughput. Also the per-task overhead (a near-empty run: 1 training step at T=5).

Dask and the pool run alternately, `--repeats` times each (medians; the machine may be shared). The first Dask sweep
of a process also starts the fork server its workers come from (sweep.START_METHOD): the first repeat includes it,
as a user's first sweep does.

    python benchmarks/bench_sweep.py                        # here: 2 cores
    python benchmarks/bench_sweep.py --workers 16 --seeds 8 --repeats 3 --no-serial   # a many-core machine:
        # enough runs per worker that the sweep is not all cluster start, the serial baseline skipped (slow)
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gradlab  # noqa: E402
from gradlab import sweep  # noqa: E402


def timed(base, grid, seeds, **kw) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        df = sweep.sweep(base, grid, seeds, out=os.path.join(d, "s.parquet"), **kw)
        return time.perf_counter() - t, len(df)


def one_blas_thread() -> None:
    """The pool's workers get what Dask's get (its nanny sets OPENBLAS_NUM_THREADS=1 and the like): with as many
    processes as cores, a BLAS thread pool in each only oversubscribes the cores (and on a shared machine, BLAS
    threads waiting on each other made the pool 3x slower than Dask)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def pool(base, grid, seeds, workers) -> float:
    from concurrent.futures import ProcessPoolExecutor
    todo = [c.to_json() for c in sweep.configs(base, grid, seeds)]
    t = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=one_blas_thread) as ex:
        list(ex.map(sweep.run_one, todo, [tuple(grid)] * len(todo)))
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="worker processes (default: one per core)")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per grid point: 18 runs each (default 2)")
    ap.add_argument("--repeats", type=int, default=1, help="Dask and pool alternately, medians (default 1)")
    ap.add_argument("--no-serial", action="store_true", help="skip the serial baseline")
    ap.add_argument("--start-method", default=sweep.START_METHOD, choices=("forkserver", "fork", "spawn"),
                    help=f"how Dask's workers start (default: gradlab's, {sweep.START_METHOD})")
    args = ap.parse_args(argv)
    sweep.START_METHOD = args.start_method
    n = args.workers
    work = gradlab.Config(hidden=32, batch=32, steps=200, record_every=200)
    grid = {"seq_len": [10, 25, 50], "init_scale": [0.5, 1.0, 1.5]}
    tiny = gradlab.Config(hidden=4, batch=2, steps=1, record_every=1, seq_len=5)
    tiny_grid = {"init_scale": [0.1 * k for k in range(1, 11)]}
    lines = [f"| sweep | runs | serial | LocalCluster ({n} workers, {args.start_method}) | speed-up | "
             f"ProcessPool (anchor) | Dask / pool |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, base, g, seeds in ((f"adding, H=32, B=32, 200 steps, T in {{10,25,50}} x 3 gains x {args.seeds} seeds",
                                  work, grid, list(range(args.seeds))),
                                 ("near-empty runs (overhead per task)", tiny, tiny_grid, [0, 1, 2])):
        ts, runs = (None, len(sweep.configs(base, g, seeds))) if args.no_serial else \
            timed(base, g, seeds, scheduler="serial")
        tc, tp = [], []
        for _ in range(args.repeats):
            tc.append(timed(base, g, seeds, workers=n)[0])
            tp.append(pool(base, g, seeds, n))
        tc, tp = statistics.median(tc), statistics.median(tp)
        serial = "-" if ts is None else f"{ts:.1f} s ({runs / ts:.1f} runs/s)"
        speedup = "-" if ts is None else f"{ts / tc:.2f}x"
        lines.append(f"| {name} | {runs} | {serial} | {tc:.1f} s ({runs / tc:.1f} runs/s, cluster start included) | "
                     f"{speedup} | {tp:.1f} s ({runs / tp:.1f} runs/s) | {tp / tc:.0%} (target 80%) |")
        if base is tiny:
            lines.append(f"| overhead per run on the cluster | | "
                         f"{'-' if ts is None else f'{1000 * ts / runs:.0f} ms serial'} | {1000 * tc / runs:.0f} ms | "
                         f"| {1000 * tp / runs:.0f} ms | |")
    command = "python benchmarks/bench_sweep.py" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    text = "\n".join(lines) + f"\n\nMedians of {args.repeats} (Dask and the pool alternately).\n" \
        f"Command: `{command}`\n"
    print(text)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "sweep.md").write_text(text)


if __name__ == "__main__":
    main()
