"""The lecture demo's wait: both cells, adding, T=100, B=32, H=64, 500 steps, a record every 10 steps.

Targets (issue "Speed of thought", part 3): at most 8 s with one BLAS thread, and the progress callback firing at
least every 0.3 s (the longest gap between two callbacks, or from the start to the first, or from the last to the end).
Each variant runs in a fresh process so BLAS thread settings take effect:  python benchmarks/bench_train.py
Times are wall clock: run it on a quiet machine (another process on the same cores stretches them).
"""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = r"""
import json, sys, time
sys.path.insert(0, %r)
import gradlab
cfg = gradlab.Config(task="adding", seq_len=100, batch=32, hidden=64, steps=500, record_every=10)
stamps = []
t0 = time.perf_counter()
runs = gradlab.train_pair(cfg, on_record=lambda p: stamps.append(time.perf_counter() - t0))
total = time.perf_counter() - t0
gaps = [b - a for a, b in zip([0.0] + stamps, stamps + [total])]
print(json.dumps({"total_s": total, "callbacks": len(stamps), "max_gap_s": max(gaps),
                  "final_loss": {k: float(v.loss[-50:].mean()) for k, v in runs.items()}}))
""" % str(ROOT)


def measure(threads: str | None, repeats: int = 3) -> dict:
    env = dict(os.environ)
    if threads:
        env["OPENBLAS_NUM_THREADS"] = threads
    runs = [json.loads(subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True,
                                      check=True).stdout) for _ in range(repeats)]
    runs.sort(key=lambda r: r["total_s"])
    return runs[len(runs) // 2]  # the median run


TARGET_S, TARGET_GAP_S = 8.0, 0.3  # the one-thread target; the callback gap holds for every thread count


def main():
    rows = ["| BLAS threads | total (median of 3) | target | met | callbacks | longest gap between callbacks | "
            "gap <= 0.3 s |", "|---|---:|---:|---|---:|---:|---|"]
    for label, threads in (("default (%s cores)" % os.cpu_count(), None), ("1", "1")):
        r = measure(threads)
        target = f"{TARGET_S:.0f} s" if threads == "1" else "-"
        met = ("yes" if r["total_s"] <= TARGET_S else "**no**") if threads == "1" else "-"
        gap_met = "yes" if r["max_gap_s"] <= TARGET_GAP_S else "**no**"
        rows.append(f"| {label} | {r['total_s']:.1f} s | {target} | {met} | {r['callbacks']} | {r['max_gap_s']:.2f} s | "
                    f"{gap_met} |")
        print(rows[-1], flush=True)
    text = "\n".join(rows) + "\n\nCommand: `python benchmarks/bench_train.py`\n"
    print("\n" + text)
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "train.md").write_text(text)


if __name__ == "__main__":
    main()
