"""The lstm-learns scene in front of a class: how long the lecturer waits for both cells to train (make run's
settings: one BLAS thread), and whether the scene's claims held, for seeds 0-4.   python benchmarks/bench_scene.py

The target is about 20 s of training; tests/test_scenes.py checks the claims themselves (without timing)."""
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as make run starts the dashboard; before numpy loads
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gradlab  # noqa: E402
from gradlab import scenes  # noqa: E402


def main():
    scene = scenes.BY_NAME["lstm-learns"]
    rows = ["| seed | training both cells | LSTM final loss | RNN final loss | claims held |", "|---:|---:|---:|---:|---|"]
    times = []
    for seed in range(5):
        t0 = time.perf_counter()
        runs = gradlab.train_pair(scene.config.replace(seed=seed))
        times.append(time.perf_counter() - t0)
        f = scenes.facts(runs, runs)
        held = all(ok for _, ok in scenes.check(scene, f))
        rows.append(f"| {seed} | {times[-1]:.1f} s | {f['lstm_final']:.4f} | {f['rnn_final']:.3f} | "
                    f"{'yes' if held else 'no'} |")
        print(rows[-1], flush=True)
    cfg = scene.config
    text = (f"lstm-learns scene (adding, T = {cfg.seq_len}, H = {cfg.hidden}, B = {cfg.batch}, {cfg.steps} updates, "
            f"Adam lr {cfg.lr:g}), one BLAS thread; target about 20 s; slowest {max(times):.1f} s.\n\n"
            + "\n".join(rows) + "\n\nCommand: `python benchmarks/bench_scene.py`\n")
    (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
    (ROOT / "benchmarks" / "results" / "scene.md").write_text(text)
    print("\n" + text)


if __name__ == "__main__":
    main()
