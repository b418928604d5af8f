"""Dashboard latency: a slider change to a setting never seen before (nothing cached), measured two ways.

Server side, with AppTest reruns (no browser): the first load, then a `seq_len` change in "at initialisation" mode
at the defaults (T around 100, H=64, B=32; target <= 150 ms) and around T=1000 (target <= 500 ms). Each change moves
seq_len to a value not seen before, so no cache can help: a real probe of both cells, their Lyapunov spectra, and the
open tab's figure (the first tab, the gradient through time: the page draws only the open tab). Then a change back to
a T ~ 100 value seen before (every record and figure cached), before the long sequences evict it.

In the browser (Playwright driving Debian's chromium at 1440x900 against `streamlit run`, one BLAS thread as
`make run`): from the key press on the T slider to the last chart that changes having changed (target <= 400 ms at
T around 100). Each chart's plot is watched by a MutationObserver; a sample ends when the rerun has finished and no
chart has changed for a second, and its time is the last chart's last change. Skipped, and said, without
playwright or a chromium.

Timings on these shared 2-core machines move by tens of percent with other load, so every sample is paired with an
anchor measured just before it in the same process: a fixed piece of the same kind of work (100 QR factorisations of
a 128 x 128 matrix, numpy's part of a redraw, and validating one fixed plotly figure, plotly's part). The report gives
each median with the anchor's median beside it: compare runs by their ratio to the anchor, not by milliseconds.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dashboard.py [--samples 7] [--no-browser]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `make run`, before numpy loads
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import plotly.graph_objects as go  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the browser tests' server helper
from report import write_table  # noqa: E402
from serve import dashboard  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("BROWSER_PATH") or shutil.which("chromium") or shutil.which("chromium-browser")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
_Z = np.random.default_rng(0).normal(size=(1, 128, 128))
_FIG = {"data": [{"type": "scatter", "x": np.arange(200), "y": np.random.default_rng(1).random(200), "name": str(i),
                  "line": {"color": "#0072B2", "width": 2, "dash": "dot"}} for i in range(20)],
        "layout": {"template": "plotly_white", "xaxis": {"title": {"text": "t"}}, "yaxis": {"type": "log"}}}


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def anchor() -> float:
    """A fixed piece of a redraw's kind of work: numpy's QR (the Lyapunov spectrum's) and plotly's validation."""
    def work():
        for _ in range(100):
            np.linalg.qr(_Z)
        go.Figure(_FIG).to_dict()
    return timed(work)


def server_side(samples: int) -> tuple[list, list]:
    """(rows, anchors) for the table: first load, slider changes near T=100 and T=1000, and a cached change."""
    anchors = []
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
    first = timed(at.run)
    assert not at.exception, at.exception
    rows = [("server: first load (cold process: imports, caches empty)", first, None)]
    for base, target in ((100, 0.15), (1000, 0.5)):
        times = []
        for k in range(samples):
            T = base - 5 * (k + 1) if base == 1000 else base + 5 * (k + 1)  # always a new Config
            anchors.append(anchor())
            times.append(timed(lambda: at.slider(key="seq_len").set_value(T).run()))
            assert not at.exception, at.exception
        rows.append((f"server: slider change, T around {base} (median of {samples}, uncached)",
                     statistics.median(times), target))
        if base == 100:  # while T = 105's records are still cached (T ~ 1000's would evict them)
            cached = [timed(lambda: at.slider(key="seq_len").set_value(105 + 5 * (k % 2)).run()) for k in range(3)]
            rows.append(("server: slider back to a value seen before (cached; median of 3)",
                         statistics.median(cached), None))
    return rows, anchors


# Installed in the page before each key press: the time of the last change inside any chart's plot (a chart that is
# replaced rather than updated counts too: the whole main area is watched, and changes outside plots are ignored).
WATCH = """() => {
  window.__changed = 0;
  if (window.__observer) window.__observer.disconnect();
  const inPlot = n => { const e = n.nodeType === 1 ? n : n.parentElement; return e && e.closest('.js-plotly-plot'); };
  window.__observer = new MutationObserver(ms => {
    if (ms.some(m => inPlot(m.target) || [...m.addedNodes].some(inPlot))) window.__changed = performance.now();
  });
  window.__observer.observe(document.querySelector('[data-testid="stMain"]') || document.body,
                            {subtree: true, childList: true, attributes: true, characterData: true});
  window.__t0 = performance.now();
}"""


# A sample is over when a chart has changed, the rerun has finished and no chart has changed for a second.
DONE = """() => window.__changed > window.__t0 && !document.querySelector('[data-testid="stStatusWidget"]')
             && performance.now() - window.__changed > 1000"""


def browser_side(samples: int, T: int = 100) -> tuple[list, list] | str:
    """(rows, anchors), or why the browser was not measured."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return "playwright is not installed (pip install -r requirements-test.txt)"
    if not CHROMIUM:
        return "no chromium on this machine (apt-get install chromium)"
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    anchors, times = [], []
    with dashboard(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as url:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = b.new_page(viewport={"width": 1440, "height": 900})
            page.goto(f"{url}/?seq_len={T}")
            settle(page)
            thumb = page.locator('[data-testid="stSlider"]', has_text="Sequence length").locator('input[type="range"]')
            for k in range(samples + 1):  # the first is a warm-up (the server's first rerun after the load)
                anchors.append(anchor())
                thumb.focus()
                page.evaluate(WATCH)
                page.keyboard.press("ArrowRight")  # T + 5: a setting not seen before
                page.wait_for_function(f"() => window.location.search.includes('seq_len={T + 5 * (k + 1)}')",
                                       timeout=60_000)
                page.wait_for_function(DONE, timeout=120_000)
                changed, t0 = page.evaluate("() => [window.__changed, window.__t0]")
                if k:
                    times.append((changed - t0) / 1e3)
            b.close()
    return [(f"browser: key press to the last chart changed, T around {T} (median of {samples}, uncached)",
             statistics.median(times), 0.4)], anchors[1:]


def settle(page) -> None:
    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=60_000)
    page.wait_for_selector('[data-testid="stStatusWidget"]', state="detached", timeout=60_000)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=7)
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args(argv)
    rows, anchors = server_side(args.samples)
    rows.append(("anchor, paired with the server samples (100 QRs of 128 x 128 and one plotly figure; median)",
                 statistics.median(anchors), None))
    if not args.no_browser:
        out = browser_side(args.samples)
        if isinstance(out, str):
            print(f"browser not measured: {out}")
        else:
            rows += out[0]
            rows.append(("anchor, paired with the browser samples (median)", statistics.median(out[1]), None))
    used = " ".join(argv if argv is not None else sys.argv[1:])
    write_table("dashboard", rows, unit="ms",
                command=f"OPENBLAS_NUM_THREADS=1 python benchmarks/bench_dashboard.py {used}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
