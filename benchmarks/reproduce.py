"""Reproduce the headline result: on the adding problem, a tanh RNN stays at the baseline while an LSTM learns.

Final loss of RNN (tanh), LSTM (forget_bias 1) and GRU (update-gate bias 1) for T in {10, 25, 50, 100, 200}, three
seeds each, same seeds and batches for every cell, against the
0.167 baseline (predict 1) and the 0.083 plateau (remember only the second value). "Final loss" is the mean
training loss over the last 100 updates (fresh batches every update, so it is a test loss in all but name).

    python benchmarks/reproduce.py                   # the full table (about 15 min on 2 cores)
    python benchmarks/reproduce.py --lengths 10,25 --seeds 1 --steps 300   # a smoke run
    python benchmarks/reproduce.py --cells gru       # train only the GRU; the other cells' rows are reused from
                                                     # results/reproduce.json when their settings match
Writes benchmarks/results/reproduce.md (and .json).
"""
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one process per core: small matmuls prefer one BLAS thread

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import gradlab  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
CELLS = ("rnn", "lstm", "gru")


def one(job):
    cfg = gradlab.Config(**job)
    t = time.perf_counter()
    run = gradlab.train(cfg)
    tail = run.loss[-100:]
    return {**job, "final_loss": float(np.mean(tail)) if len(tail) else float("nan"),
            "stopped": run.stopped, "seconds": time.perf_counter() - t}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lengths", default="10,25,50,100,200")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--cells", default="rnn,lstm,gru", help="the cells to train now (others reused if saved)")
    args = ap.parse_args()
    lengths = [int(v) for v in args.lengths.split(",")]
    base = dict(task="adding", hidden=args.hidden, batch=args.batch, steps=args.steps, lr=args.lr, optimizer="adam",
                clip_mode="norm", clip=1.0, record_every=max(args.steps, 1), forget_bias=1.0)
    every = [dict(base, cell=cell, seq_len=T, seed=s) for T in lengths for s in range(args.seeds) for cell in CELLS]
    saved = json.loads((OUT / "reproduce.json").read_text()) if (OUT / "reproduce.json").exists() else []
    reused = [r for r in saved if r["cell"] not in args.cells.split(",")
              and {k: r[k] for k in every[0]} in every]  # the same settings exactly, else trained again
    have = [{k: r[k] for k in every[0]} for r in reused]
    jobs = [j for j in every if j not in have]
    jobs.sort(key=lambda j: -j["seq_len"] * (3 if j["cell"] == "lstm" else 1))  # longest first: better packing
    t0 = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as ex:
        results = list(reused)
        for i, r in enumerate(ex.map(one, jobs), 1):
            results.append(r)
            print(f"[{i}/{len(jobs)}] {r['cell']:4s} T={r['seq_len']:<4d} seed={r['seed']} "
                  f"final loss {r['final_loss']:.4f} ({r['seconds']:.0f} s)", flush=True)
    wall = time.perf_counter() - t0
    head = {"rnn": "RNN (tanh)", "lstm": "LSTM (b_f=1)", "gru": "GRU (b_z=1)"}
    rows = ["| T | " + " | ".join(f"{head[c]} final loss, per seed | {head[c].split()[0]} mean" for c in CELLS) + " |",
            "|---:|" + "---|---:|" * len(CELLS)]
    for T in lengths:
        cols = []
        for cell in CELLS:
            v = [r["final_loss"] for r in sorted(results, key=lambda r: r["seed"]) if r["cell"] == cell and r["seq_len"] == T]
            cols.append(f"{', '.join(f'{x:.4f}' for x in v)} | {np.mean(v):.4f}")
        rows.append(f"| {T} | " + " | ".join(cols) + " |")
    cmd = "python benchmarks/reproduce.py " + " ".join(sys.argv[1:])
    text = "\n".join([
        f"Adding problem, Adam lr={args.lr}, norm clipping at 1, H={args.hidden}, B={args.batch}, {args.steps} updates; "
        "final loss = mean training loss over the last 100 updates. Baselines: 0.1667 (predict 1), 0.0833 (plateau).",
        "", *rows, "", f"Command: `{cmd.strip()}` ({wall / 60:.1f} min wall on {args.workers} workers; "
        f"{len(reused)} runs reused from the saved results, {len(jobs)} trained now)."])
    print("\n" + text)
    OUT.mkdir(exist_ok=True)
    (OUT / "reproduce.md").write_text(text + "\n")
    (OUT / "reproduce.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
