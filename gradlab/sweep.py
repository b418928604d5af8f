"""Sweeps: did the network learn the dependency, for every sequence length x initialisation? RNN and LSTM (and the
GRU when asked), seeds.

`sweep(base, grid, seeds)` trains the cells (default: RNN and LSTM) for every combination of the grid's values and
every seed, on Dask (a LocalCluster on this machine's cores by default, or any scheduler address), and returns a
tidy DataFrame with one row per run (SCHEMA). Each finished run is appended at once to a journal beside `out`
(`<out>.rows.jsonl`, one JSON line, flushed to disk), and `out` itself (Parquet, or CSV by extension) is rewritten
only when the rows have doubled since its last writing and at the end, so writing n rows costs O(n) in all (it used
to rewrite the whole file after every run). A crash, even a killed process, loses no finished run: re-running merges
the journal and skips the finished ones. The grid is saved beside it in `<out>.json`.

Runs are independent and deterministic (a Config fixes everything), so the executor cannot change the numbers:
the same grid run serially or on a cluster gives the same rows.
"""
from __future__ import annotations

import itertools
import json
import os
import time
from typing import Callable

import numpy as np
import pandas as pd

from . import analysis
from .config import CELLS, Config
from .files import atomic_write, locked, write_bytes
from .tasks import baselines
from .train import train

SCHEMA = {  # column -> meaning; the varied Config fields come first, named as in Config
    "seed": "Config.seed of the run",
    "cell": "rnn | lstm | gru",
    "final_loss": "mean training loss over the last 10% of updates (each on a fresh batch)",
    "baseline": "the task's constant-predictor loss (its first baseline)",
    "solved": "the task's criterion was met (see tasks.solved)",
    "rate": "fitted per-step decay rate of ||dL/dh_t|| at initialisation (truncated BPTT: on the last chunk)",
    "rho": "spectral radius of W_hh at initialisation (the RNN's matrix, the LSTM's forget-gate block, the GRU's "
           "update-gate block)",
    "steps_done": "updates done (fewer than Config.steps when training blew up)",
    "wall_time": "seconds the run took",
    "config": "the run's full Config as JSON (the key used to resume)",
}


def configs(base: Config, grid: dict[str, list], seeds: list[int],
            cells: tuple[str, ...] = ("rnn", "lstm")) -> list[Config]:
    """Every combination of grid values x seeds x cells, in a fixed order."""
    if not cells or not set(cells) <= set(CELLS):
        raise ValueError(f"cells = {cells!r} is invalid: expected a choice of {', '.join(CELLS)}")
    names = list(grid)
    for name in names:
        if name not in Config.__dataclass_fields__ or name in ("cell", "seed"):
            raise ValueError(f"cannot vary {name!r}: vary Config fields other than cell and seed")
        if not grid[name]:
            raise ValueError(f"no values given for {name!r}")
    out = []
    for values in itertools.product(*(grid[n] for n in names)):
        for seed in seeds:
            for cell in cells:
                out.append(Config.from_dict({**base.to_dict(), **dict(zip(names, values)), "seed": seed,
                                             "cell": cell}))
    return out


def run_one(cfg_json: str, varied: tuple[str, ...] = ()) -> dict:
    """Train one Config and summarise it as a row. Module level, so Dask workers can import it."""
    cfg = Config.from_json(cfg_json)
    t0 = time.perf_counter()
    run = train(cfg)
    n = max(1, run.steps_done // 10)
    final = float(np.mean(run.loss[-n:])) if run.steps_done else float("nan")
    acc = float(np.mean(run.accuracy[-n:])) if run.accuracy is not None and run.steps_done else None
    eig = run.eigvals[0]  # the record at step 0: the spectrum at initialisation
    rho = float(np.abs(eig[0 if cfg.cell == "rnn" else 1]).max())  # block 1 keeps the state: f, or z
    row = {name: getattr(cfg, name) for name in varied}
    row.update(seed=cfg.seed, cell=cfg.cell, final_loss=final, baseline=baselines(cfg.task, cfg.seq_len)[0].loss,
               solved=bool(solved(cfg, final, acc)),
               rate=analysis.fit_rate(run.grad_h_norm[0], start=analysis.cut_at(run.grad_h_norm.shape[1] - 1,
                                                                                 cfg.truncate) or 0),
               rho=rho, steps_done=run.steps_done, wall_time=time.perf_counter() - t0, config=cfg_json)
    return row


def run_many(cfg_jsons: list[str], varied: tuple[str, ...] = ()) -> list[dict]:
    """A batch of runs in one task (a worker's share, sent at once)."""
    return [run_one(j, varied) for j in cfg_jsons]


def solved(cfg: Config, final_loss: float, accuracy: float | None) -> bool:
    """The task's criterion: classification and adding_hs97 need 95% correct (H&S 1997's |error| < 0.04 for the
    latter); adding and copy need the loss below a tenth of the constant-predictor baseline."""
    if accuracy is not None:
        return accuracy >= 0.95
    return final_loss < 0.1 * baselines(cfg.task, cfg.seq_len)[0].loss


def load(path: str | os.PathLike) -> pd.DataFrame:
    """A saved sweep (Parquet or CSV), checked against SCHEMA: the columns, at least one varied Config field, the
    cells, and `solved` as booleans (a CSV writes them as True/False text)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ValueError(f"{path}: no such sweep file")
    try:
        df = pd.read_parquet(path) if path.endswith(".parquet") else pd.read_csv(path)
    except Exception as e:
        raise ValueError(f"{path}: not a readable sweep ({type(e).__name__}: {e})") from None
    missing = [c for c in SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a gradlab sweep: missing columns {missing}")
    varied = [c for c in df.columns if c not in SCHEMA]
    if not varied:
        raise ValueError(f"{path}: not a gradlab sweep: no varied Config field among its columns")
    unknown = [c for c in varied if c not in Config.__dataclass_fields__]
    if unknown:
        raise ValueError(f"{path}: not a gradlab sweep: columns {unknown} are not Config fields")
    if not len(df):
        raise ValueError(f"{path}: the sweep holds no runs yet")
    if not set(df.cell.unique()) <= set(CELLS):
        raise ValueError(f"{path}: column 'cell' must hold {', '.join(CELLS)}")
    solved = df.solved.map(lambda v: {True: True, False: False, "True": True, "False": False}.get(v, None))
    if solved.isna().any():
        raise ValueError(f"{path}: column 'solved' must hold True or False")
    for c in ("final_loss", "rho"):
        if not pd.api.types.is_numeric_dtype(df[c]):
            raise ValueError(f"{path}: column {c!r} must hold numbers")
    return df.assign(solved=solved.astype(bool))


def journal(path: str) -> str:
    return path + ".rows.jsonl"


def _append(row: dict, path: str) -> None:
    """One finished run, one line, on disk before the next run is counted (O(1), whatever the sweep's size)."""
    with locked(path), open(journal(path), "a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _journal_rows(path: str) -> list[dict]:
    """The journal's runs; a line cut short by a crash mid-write is skipped (its run is simply run again)."""
    rows = []
    if os.path.exists(journal(path)):
        with open(journal(path)) as fh:
            for line in fh:
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
    return rows


def _save(rows: list[dict], columns: list[str], path: str) -> None:
    """Merge `rows`, the journal and the file at `path` (other sweeps may be writing them too) and write the file
    atomically, then empty the journal: every run it held is now in the file. All under the file's lock, so two
    sweeps on one output lose nothing and keep every run once (keyed by its config); a crash mid-write keeps the
    previous file and the journal."""
    with locked(path):
        ours = pd.DataFrame(_journal_rows(path) + list(rows), columns=columns)
        if os.path.exists(path):
            theirs = load(path) if os.path.getsize(path) else ours.iloc[:0]
            ours = pd.concat([theirs[[c for c in columns if c in theirs.columns]], ours], ignore_index=True)
        ours = ours.drop_duplicates("config", keep="first")
        write = (lambda tmp: ours.to_parquet(tmp, index=False)) if path.endswith(".parquet") else \
            (lambda tmp: ours.to_csv(tmp, index=False))
        atomic_write(path, write)
        if os.path.exists(journal(path)):
            os.truncate(journal(path), 0)


def sweep(base: Config, grid: dict[str, list], seeds: list[int], out: str | None = None,
          scheduler: str | None = None, workers: int | None = None,
          progress: Callable[[int, int], None] | None = None,
          cells: tuple[str, ...] = ("rnn", "lstm")) -> pd.DataFrame:
    """Run (or resume) a sweep. scheduler: None for a LocalCluster on `workers` (default: all cores) processes,
    "serial" to run in this process, or a Dask scheduler address such as tcp://10.0.0.5:8786. `cells`: which cells
    to train for every grid point (add "gru" for all three)."""
    cfgs = configs(base, grid, seeds, cells)
    varied = tuple(grid)
    done = load(out) if out and os.path.exists(out) else pd.DataFrame(columns=list(varied) + list(SCHEMA))
    if out:  # runs a killed sweep finished but never wrote into the file
        done = pd.concat([done, pd.DataFrame(_journal_rows(out), columns=done.columns)], ignore_index=True) \
            .drop_duplicates("config", keep="first") if _journal_rows(out) else done
    finished = set(done["config"]) if len(done) else set()
    todo = [c.to_json() for c in cfgs if c.to_json() not in finished]
    if out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        grid_text = json.dumps({"base": base.to_dict(), "grid": grid, "seeds": list(seeds)}, indent=1)
        with locked(out):
            write_bytes(out + ".json", grid_text.encode())
    rows = [r for r in done.to_dict("records")]
    total, count = len(cfgs), len(cfgs) - len(todo)
    columns = list(varied) + list(SCHEMA)
    written = [max(len(rows), 1)]  # rows in the file at its last writing: rewritten when they double

    def collect(row):
        nonlocal count
        rows.append(row)
        count += 1
        if out:
            _append(row, out)
            if len(rows) >= 2 * written[0]:
                _save(rows, columns, out)
                written[0] = len(rows)
        if progress:
            progress(count, total)

    try:
        _run(todo, varied, scheduler, workers, collect)
    finally:  # finished, failed or interrupted: the file holds every run that finished
        if out and todo:
            _save(rows, columns, out)
    df = pd.DataFrame(rows, columns=columns)
    order = {c.to_json(): i for i, c in enumerate(cfgs)}
    return df.sort_values("config", key=lambda s: s.map(order)).reset_index(drop=True)


GATES = {"rnn": 1, "gru": 3, "lstm": 4}  # weight blocks per cell: the work of a step grows with them
TASKS_PER_WORKER = 16  # batches of about equal work: few enough that scheduling a tiny run costs nothing, many enough
# that the last batch to finish leaves the other workers idle for 1/16 of a worker's share at most
START_METHOD = "forkserver"  # how the LocalCluster's worker processes start: a fresh server process imports numpy,
# pandas and Dask once per process (~1 s) and forks every worker from it, which then imports gradlab (a preload); a
# cluster then starts in ~0.2 s. Dask's default, spawn, imported it all again in every worker of every sweep (1.7 s to
# start two workers here, 0.6 s more to the first result). A plain fork of this process would be faster still but
# copies whatever runs in it (a notebook's or a dashboard's threads, numpy's BLAS thread pool).


def _cost(cfg_json: str) -> float:
    """A run's work, up to a constant: updates x steps in time x batch x the recurrent matmul of its cell."""
    cfg = Config.from_json(cfg_json)
    return float(cfg.steps + 1) * cfg.seq_len * cfg.batch * cfg.hidden * (cfg.hidden + 1) * GATES[cfg.cell]


def batches(todo: list[str], workers: int, per_worker: int = TASKS_PER_WORKER) -> list[list[str]]:
    """The runs as about `per_worker` tasks per worker of about equal work (_cost), the biggest runs first: a long run
    started last would keep one worker busy while the others wait (the grid's order puts the longest T last)."""
    costs = {j: _cost(j) for j in todo}
    target = sum(costs.values()) / max(1, workers * per_worker)
    out, batch, work = [], [], 0.0
    for j in sorted(todo, key=costs.__getitem__, reverse=True):  # stable: equal costs keep the grid's order
        batch.append(j)
        work += costs[j]
        if work >= target:
            out.append(batch)
            batch, work = [], 0.0
    return out + ([batch] if batch else [])


def local_cluster(workers: int | None = None):
    """A LocalCluster for sweeps: one single-threaded worker process per core (numpy's BLAS kept to one thread in
    each), no dashboard, quiet logs, workers started from a fork server (START_METHOD)."""
    import logging

    import dask
    from dask.distributed import LocalCluster

    # Dask's nanny makes glibc return freed memory to the OS at once (MALLOC_TRIM_THRESHOLD_=64 KiB); the engine
    # allocates per step, so that costs page faults: measured 10% slower per run here. It and the BLAS thread counts
    # are set before the fork server starts, which is what the workers inherit.
    with dask.config.set({"distributed.worker.multiprocessing-method": START_METHOD,
                          "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": 2**28,
                          "distributed.worker.preload": [__name__]}):
        return LocalCluster(n_workers=workers or os.cpu_count(), threads_per_worker=1, processes=True,
                            dashboard_address=None, silence_logs=logging.ERROR)


def _run(todo: list[str], varied: tuple[str, ...], scheduler, workers, collect) -> None:
    """Run every config of `todo`, handing each finished row to `collect` as it arrives."""
    if todo and scheduler == "serial":
        for j in todo:
            collect(run_one(j, varied))
    elif todo:
        from dask.distributed import Client, as_completed
        cluster = local_cluster(workers) if scheduler is None else None
        try:
            with Client(cluster or scheduler) as client:
                n = max(1, sum(client.nthreads().values()))  # a remote cluster: the workers connected so far
                futures = client.map(run_many, batches(todo, n), varied=varied, pure=False)
                for fut in as_completed(futures):
                    for row in fut.result():
                        collect(row)
        finally:
            if cluster is not None:
                cluster.close()
