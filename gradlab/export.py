"""Figures and their data, for slides: PNG, SVG, PDF, standalone HTML, tidy CSV, and one ZIP with everything.

One code path for the dashboard and the CLI: `figures(records, ...)` builds every panel with gradlab.plots,
`render(fig, fmt)` turns one into bytes (`render_images`: many at once, over the browser's tabs), `tables(records)`
gives each panel's data as a tidy (long) DataFrame, and `export_all(...)` writes the whole set. Static images need a
Chromium (kaleido 1.x has none of its own); where none can be found `render` raises NoBrowser with a one-line fix, and
HTML, CSV and the ZIP without images still work.
Nothing here computes anything new: it lays out what the engine recorded.
"""
from __future__ import annotations

import atexit
import io
import json
import os
import re
import shutil
import threading
import zipfile

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from . import __version__, animation, panels, plots
from .config import Config
from .files import write_bytes

DEFAULT_FORMATS = ("png", "svg", "pdf", "html", "csv")
ANIMATION_FORMATS = animation.FORMATS  # gif, mp4: animated panels only (fig.frames); seconds each, so never by default
FORMATS = DEFAULT_FORMATS + ANIMATION_FORMATS
IMAGE_FORMATS = ("png", "svg", "pdf")
MIME = {"png": "image/png", "svg": "image/svg+xml", "pdf": "application/pdf", "html": "text/html",
        "csv": "text/csv", "zip": "application/zip", "gif": "image/gif", "mp4": "video/mp4"}
PNG_SCALE = 2  # the figure's layout size (1280x720 for slides) at 2x, 2560x1440: never upscaled on a 720p or 1080p
# projector, sharp on HiDPI laptops and when cropped; 3x (4K) made PNGs 1.7x larger and slower to draw, and a 4K
# screen is better served by the SVG or PDF (vectors)
HTML_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["sendChartToCloud"],
               "toImageButtonOptions": {"format": "svg", "scale": 3}}
NO_BROWSER_HINT = ("static images (PNG/SVG/PDF/GIF/MP4) need Chromium: install Debian's package "
                   "(apt-get install chromium) or run plotly_get_chrome; HTML, CSV and the ZIP without images work "
                   "without it")


class NoBrowser(RuntimeError):
    pass


# ---- file names and stamps ---------------------------------------------------------------------------------------

def file_name(panel: str, cfg: Config, ext: str) -> str:
    """What the file contains, e.g. grad_vs_time_adding_T100_orthogonal.svg; only [A-Za-z0-9_.-] survive."""
    name = f"{panel}_{cfg.task}_T{cfg.seq_len}_{cfg.init}.{ext}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def stamp_text(cfg: Config) -> str:
    # forget_bias by its Config name: it is the LSTM's b_f and the GRU's b_z; chrono draws them per unit instead
    bf = "chrono" if cfg.init == "chrono" else f"{cfg.forget_bias:g}"
    cut = f", truncate={cfg.truncate}" if cfg.truncate else ""
    return (f"{cfg.task}, T={cfg.seq_len}, H={cfg.hidden}, init={cfg.init} x{cfg.init_scale:g}, "
            f"forget_bias={bf}{cut}, seed={cfg.seed} · gradlab {__version__}")


def with_stamp(fig: go.Figure, cfg: Config, style: plots.Style = plots.Style()) -> go.Figure:
    """A copy of the figure carrying a small caption stamp in its top-right corner."""
    fig = go.Figure(fig)
    fig.add_annotation(text=stamp_text(cfg), showarrow=False, xref="paper", yref="paper", x=1, y=1,
                       xanchor="right", yanchor="bottom", yshift=45,  # top right, in the title's margin
                       font=dict(size=max(10, (fig.layout.font.size or 14) - 6), color=style.grey))
    return fig


# ---- figures ----------------------------------------------------------------------------------------------------

def figures(probes: dict, runs: dict | None, cfg: Config, style: plots.Style = plots.Style(),
            stamp: bool = True) -> dict[str, go.Figure]:
    """Every registered panel that the records allow (the training ones when runs are given)."""
    recs = runs if runs else probes
    out = {p.name: panels.figure(p.name, recs, style) for p in panels.shown(recs, bool(runs))}
    return {k: with_stamp(f, cfg, style) if stamp else f for k, f in out.items()}


# ---- rendering --------------------------------------------------------------------------------------------------

TABS = min(4, max(2, os.cpu_count() or 2))  # kaleido tabs in the one browser, one per core (2 to 4): kaleido reloads
# a tab's page after every image (about half of each image's time), and meanwhile another tab draws; on 2 cores two
# tabs drew a scene's 24 images 1.3-1.4x faster than one (benchmarks/results/export.md), three or four no faster
RENDER_TIMEOUT = 90  # s for any one image (kaleido's default): a hung tab fails the export instead of freezing it
_server_lock = threading.Lock()
_browser = None  # (event loop, kaleido.Kaleido) once started: one Chromium per process, shared by every thread


def chromium() -> str | None:
    """The browser kaleido will use, or None."""
    return os.environ.get("BROWSER_PATH") or next(
        (p for p in (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome", "chrome")) if p), None)


def start_browser() -> None:
    """Start kaleido's browser once per process (~2 s); every figure after that takes a fraction of a second.
    Kaleido is asyncio: its browser lives on an event loop in a daemon thread of its own, and every render (from any
    thread) is a coroutine sent there. Each waits for a free tab of kaleido's queue and gets its own answer back, so
    threads need no lock (kaleido's own sync server has one shared answer queue: concurrent calls swapped figures)."""
    global _browser
    with _server_lock:
        if _browser is not None:
            return
        if chromium() is None:
            raise NoBrowser(NO_BROWSER_HINT)
        import asyncio

        import kaleido

        async def open_browser():
            return await kaleido.Kaleido(n=TABS, timeout=RENDER_TIMEOUT)

        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, name="gradlab-kaleido", daemon=True).start()
        try:
            k = asyncio.run_coroutine_threadsafe(open_browser(), loop).result()
        except Exception as e:  # a broken browser install: say so, in one line
            loop.call_soon_threadsafe(loop.stop)
            raise NoBrowser(f"could not start Chromium for static export ({type(e).__name__}: {e}); {NO_BROWSER_HINT}") from None
        _browser = (loop, k)
        atexit.register(_stop_browser)


def _stop_browser() -> None:
    """Close Chromium at exit (kaleido also removes its page's temporary folder then)."""
    global _browser
    with _server_lock:
        if _browser is None:
            return
        loop, k = _browser
        _browser = None
    import asyncio
    try:
        asyncio.run_coroutine_threadsafe(k.close(), loop).result(timeout=10)
    except Exception:  # noqa: BLE001 (exiting: a browser that will not close is killed with the process)
        pass
    loop.call_soon_threadsafe(loop.stop)


PLOTLY_JS = "plotly.min.js"  # the one copy an export folder's HTML files share


def image_spec(fig: go.Figure | dict, fmt: str, size: tuple[int, int] | None = None) -> tuple[dict, dict]:
    """(figure dict, kaleido's options) for one static image: the figure's own layout size unless `size` is given,
    PNG at PNG_SCALE, vectors at 1. An animated figure is drawn as its still (the finished pass, no controls)."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(IMAGE_FORMATS)}")
    if isinstance(fig, go.Figure):
        fig = animation.still(fig)
        w, h = size or (fig.layout.width or 1200, fig.layout.height or 520)
        fig = fig.to_dict()
    else:  # a dict made for kaleido (animation.stills): drawn as it is
        lay = fig.get("layout", {})
        w, h = size or (lay.get("width") or 1200, lay.get("height") or 520)
    return fig, {"format": fmt, "width": w, "height": h, "scale": PNG_SCALE if fmt == "png" else 1}


def render_images(specs: list[tuple[dict, dict]]) -> list[bytes]:
    """Many static images at once (image_spec's), in order: kaleido hands them to its tabs as they come free.
    The bytes are those one render at a time gives (tests/test_export)."""
    return _result(_submit(specs))


def _submit(specs: list[tuple[dict, dict]]):
    """Start rendering in the browser's thread; returns a concurrent.futures.Future of the list of bytes."""
    start_browser()
    import asyncio
    loop, k = _browser

    async def batch():
        tasks = [asyncio.ensure_future(k.calc_fig(fig, opts=opts)) for fig, opts in specs]
        try:
            return await asyncio.gather(*tasks)
        finally:  # one image failed, or the caller gave up: the others leave the tabs at once
            for t in tasks:
                t.cancel()

    return asyncio.run_coroutine_threadsafe(batch(), loop)


def _result(future) -> list[bytes]:
    try:
        return future.result()
    except BaseException:  # e.g. Ctrl-C, or Streamlit stopping a rerun: no orphan renders left queued
        future.cancel()
        raise


def render(fig: go.Figure, fmt: str, plotlyjs: bool | str = True) -> bytes:
    """One figure as png | svg | pdf | html bytes, or gif | mp4 for an animated one (gradlab.animation.encode).
    HTML embeds plotly.js (4.6 MB) when plotlyjs is True, else loads it from the path given (offline either way)."""
    if fmt == "html":
        return pio.to_html(fig, include_plotlyjs=plotlyjs, full_html=True, config=HTML_CONFIG).encode()
    if fmt in ANIMATION_FORMATS:
        return animation.encode(fig, fmt)
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    return render_images([image_spec(fig, fmt)])[0]


# ---- data -------------------------------------------------------------------------------------------------------

def tables(probes: dict, runs: dict | None = None) -> dict[str, pd.DataFrame]:
    """Each registered panel's data in long format (panels with nothing to tabulate are left out)."""
    recs = runs if runs else probes
    out = {p.name: p.table(recs) for p in panels.shown(recs, bool(runs))}
    return {k: v for k, v in out.items() if v is not None}


def csv_bytes(df: pd.DataFrame) -> bytes:
    """Tidy CSV; every non-finite value is spelled out (nan, inf, -inf), never an empty cell, and reads back as such."""
    return df.to_csv(index=False, lineterminator="\n", na_rep="nan").encode()


# ---- everything at once -----------------------------------------------------------------------------------------

def export_all(probes: dict, runs: dict | None, cfg: Config, formats=DEFAULT_FORMATS,
               style: plots.Style = plots.Style(), stamp: bool = True, url: str = "",
               progress=None, plotlyjs: bool | str = PLOTLY_JS, bundles: bool = True) -> dict[str, bytes]:
    """{file name: bytes} for every panel in every format, the data as CSV, the bundles, config.json and the URL.
    GIF and MP4 are made for the animated panels only. Image formats are left out (and a NO_IMAGES.txt says why) when
    no Chromium can be found. The HTML files share one plotly.min.js beside them (`plotlyjs`: True embeds it in
    each, another path points them at a copy elsewhere, e.g. "../plotly.min.js", which the caller writes)."""
    files: dict[str, bytes] = {}
    if "html" in formats and plotlyjs == PLOTLY_JS:
        files[PLOTLY_JS] = plotly_js()
    figs = figures(probes, runs, cfg, style, stamp)
    want_images = [f for f in formats if f in IMAGE_FORMATS + ANIMATION_FORMATS]
    if want_images:
        try:
            start_browser()
        except NoBrowser as e:
            files["NO_IMAGES.txt"] = (str(e) + "\n").encode()
            want_images = []
    jobs = [(p, f) for p in figs for f in formats
            if (f in want_images and (f not in ANIMATION_FORMATS or figs[p].frames)) or f == "html"]
    # every PNG/SVG/PDF goes to kaleido's tabs in one batch (all tabs busy), and the HTML, the data and the bundles
    # are made here while the browser draws
    stills = [(p, f) for p, f in jobs if f in IMAGE_FORMATS]
    drawn = {p: animation.still(figs[p]).to_dict() for p in dict.fromkeys(p for p, _ in stills)}  # one per figure
    pending = _submit([image_spec(drawn[p], f) for p, f in stills]) if stills else None
    try:
        done = 0
        for panel, fmt in jobs:
            if fmt not in IMAGE_FORMATS:
                files[file_name(panel, cfg, fmt)] = render(figs[panel], fmt, plotlyjs)
                done += 1
                if progress:
                    progress(done, len(jobs), file_name(panel, cfg, fmt))
        if "csv" in formats:
            for panel, df in tables(probes, runs).items():
                files[f"data/{file_name(panel, cfg, 'csv')}"] = csv_bytes(df)
        for c, p in (probes if bundles else {}).items():  # at T = 1000 an LSTM's bundle is ~100 MB: optional
            files[f"bundles/probe_{c}.npz"] = _bundle_bytes(p)
        for c, r in ((runs or {}) if bundles else {}).items():
            files[f"bundles/run_{c}.npz"] = _bundle_bytes(r)
        if pending:
            if progress:
                progress(done, len(jobs), f"{len(stills)} images")
            for (panel, fmt), data in zip(stills, _result(pending)):
                files[file_name(panel, cfg, fmt)] = data
            if progress:
                progress(len(jobs), len(jobs), f"{len(stills)} images")
    finally:
        if pending:
            pending.cancel()  # no-op when finished; stops the renders when something above failed
    files["config.json"] = (json.dumps(cfg.to_dict(), indent=1, sort_keys=True) + "\n").encode()
    if url:
        files["url.txt"] = (url + "\n").encode()
    return files


def plotly_js() -> bytes:
    """plotly.js as plotly itself ships it (no network): what the shared HTML files load."""
    from plotly.offline import get_plotlyjs
    return get_plotlyjs().encode()


def _bundle_bytes(rec) -> bytes:
    buf = io.BytesIO()
    rec.save(buf)
    return buf.getvalue()


def sweep_files(df: pd.DataFrame, stem: str, formats=DEFAULT_FORMATS,
                style: plots.Style = plots.Style()) -> dict[str, bytes]:
    """A saved sweep's trainability maps (solved fraction and final loss) in every format, and its table."""
    files = {}
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", stem)
    for value in ("solved", "final_loss"):
        fig = plots.trainability_map(df, style, value)
        for fmt in formats:
            if fmt not in ("csv",) + ANIMATION_FORMATS:  # the maps are stills
                files[f"trainability_{value}_{stem}.{fmt}"] = render(fig, fmt)
    if "csv" in formats:
        files[f"data/sweep_{stem}.csv"] = csv_bytes(df)
    return files


def zip_bytes(files: dict[str, bytes]) -> bytes:
    """A ZIP with fixed timestamps, so the same content gives the same archive."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, files[name])
    return buf.getvalue()


def write_files(files: dict[str, bytes], out_dir: str) -> list[str]:
    """Write under out_dir only (names are checked), each file atomically; returns the paths written."""
    root = os.path.realpath(out_dir)
    written = []
    for name, data in files.items():
        path = os.path.realpath(os.path.join(root, name))
        if not path.startswith(root + os.sep):
            raise ValueError(f"refusing to write {name!r} outside {out_dir}")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_bytes(path, data)
        written.append(path)
    return written
