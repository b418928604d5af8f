"""Dashboard latency, server side, measured with AppTest reruns (no browser): first load, and a slider change in
"at initialisation" mode at the defaults (T=100, H=64, B=32; target <= 300 ms) and at T=1000 (target <= 1.5 s).

Each measured change moves seq_len to a value not seen before, so the engine cache cannot help: this is the
cost of a real probe of both cells plus every figure.    python benchmarks/bench_dashboard.py
"""
import statistics
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import write_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
    first = timed(at.run)
    assert not at.exception, at.exception
    rows = [("first load (cold process: imports, caches empty)", first, None)]
    for base, target in ((100, 0.3), (1000, 1.5)):
        samples = []
        for k in range(7):
            T = base - 5 * (k + 1) if base == 1000 else base + 5 * (k + 1)  # always a new Config
            samples.append(timed(lambda: at.slider(key="seq_len").set_value(T).run()))
            assert not at.exception, at.exception
        rows.append((f"slider change, T around {base} (median of 7, uncached)", statistics.median(samples), target))
    cached = timed(lambda: at.slider(key="seq_len").set_value(105).run())
    rows.append(("slider back to a value seen before (cached)", cached, None))
    write_table("dashboard", rows, unit="ms", command="python benchmarks/bench_dashboard.py")

if __name__ == "__main__":
    sys.exit(main())
