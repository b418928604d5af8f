"""gradlab's dashboard: a vanilla RNN and an LSTM side by side, live, shareable, projector-ready.

Thin by design: widgets -> Config -> cached engine calls -> figure builders in gradlab.plots. No maths here.
Every control is bound to the URL under its Config field name, so a link reproduces the exact view.
Run it with `make run` (or `streamlit run dashboard.py`).
"""
from __future__ import annotations

import gc
import multiprocessing
import re
import sys
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import urlencode

import cachetools
import streamlit as st

import gradlab
from gradlab import analysis, budget, export, lyapunov, panels, plots, scenes, sweep
from gradlab.config import UI, Config, parse
from gradlab.files import shipped
from gradlab.probe import estimate_bytes
from gradlab.scenes import BY_NAME, SCENES
from gradlab.train import record_bytes

DEFAULT = BY_NAME["vanishing"].config
HAVE_BROWSER = export.chromium() is not None  # static PNG/SVG/PDF export needs one; HTML and CSV never do
MODES = ("at initialisation", "train")
VIEWS = ("explore", "present")  # present: one scene at a time, its narrative and its key panel large
# What a clicker sends (PageDown/PageUp) and what a keyboard offers; the first of each is shown on its button.
NEXT_KEYS, PREVIOUS_KEYS = ("PageDown", "Right", "N", "Space"), ("PageUp", "Left", "P")


# One control per Config field with a UI (its label, widget and range are declared there), in Config's order.
CONTROLS: dict[str, UI] = {f.name: f.metadata["ui"] for f in fields(Config) if "ui" in f.metadata}
# A select widget's displayed option is what Streamlit writes to the URL, so scenes show their short names.
# The explore view's tabs: one per panel (its short name), then the saved sweeps. `panel` in the URL is the open one.
SWEEP_TAB = ("sweep", "Sweeps")
TABS = {p.name: p.tab for p in panels.PANELS} | dict([SWEEP_TAB])
UI_KEYS = {"mode": MODES, "lecture": ("true", "false"), "scene": tuple(s.name for s in SCENES),
           "theme": plots.THEMES, "view": VIEWS, "panel": tuple(TABS)}
UI_DEFAULTS = {"mode": MODES[0], "lecture": False, "theme": plots.THEMES[0], "view": VIEWS[0],
               "panel": panels.PANELS[0].name}
DEFAULT_CELLS = ("rnn", "lstm")  # the view the README describes; the GRU joins when asked (?cells=rnn,lstm,gru)


def parse_cells(raw: str) -> tuple[str, ...] | None:
    """`rnn,lstm,gru` -> the cells in their fixed order (so colours and columns never move); None if not valid."""
    picked = {c.strip().lower() for c in raw.split(",") if c.strip()}
    return tuple(c for c in plots.CELLS if c in picked) if picked and picked <= set(plots.CELLS) else None


# ---- engine calls, cached by Config (hashable) -----------------------------------------------------------------
# Records are shared, not copied: at T=1000 a probe pair holds 100-300 MB of arrays, which st.cache_data would pickle
# and unpickle on every rerun. They are never modified after they are made. The cache is bounded by bytes, not entries,
# so dragging the T slider across long sequences cannot push the server past CACHE_BYTES (plus the pair in use).
CACHE_BYTES = 300 * 2**20


class _Records(cachetools.LRUCache):
    """Probes by Config, least recently used evicted first; `evicted` says whether an insertion evicted any."""

    evicted = False

    def popitem(self):
        self.evicted = True
        return super().popitem()


@st.cache_resource
def _record_cache() -> tuple[_Records, threading.Lock]:
    # A record larger than the whole cache counts as the whole cache: it evicts the rest and is kept alone, as the
    # record in use, where cachetools would refuse it ("value too large") and every rerun would probe it again.
    return _Records(maxsize=CACHE_BYTES, getsizeof=lambda p: min(p.nbytes, CACHE_BYTES)), threading.Lock()


def probe_cells(cfg: Config, cells: tuple[str, ...]) -> dict:
    """{cell: Probe} for the cells shown, each cached by its own Config (showing a third cell re-probes only it)."""
    return measure(cfg, cells)[0]


def measure(cfg: Config, cells: tuple[str, ...], spectra: bool = False) -> tuple[dict, list]:
    """({cell: Probe}, pending). With `spectra`, each record's Lyapunov spectrum (the slowest number on the page) is
    started in another process as soon as its probe is done, the LSTM's first (the longest); each of `pending`, called,
    waits for one and completes that record's summary (raising any error in the script)."""
    probes, pending = {}, []
    for c in sorted(cells, key=SLOWEST_SPECTRUM.index):
        probes[c] = probe_one(cfg.replace(cell=c))
        if spectra:
            pending.append(summarised(probes[c]))
    return {c: probes[c] for c in cells}, pending


SLOWEST_SPECTRUM = ("lstm", "gru", "rnn")  # its state has 2H directions; the GRU's steps cost more than the RNN's


def summarised(p) -> Callable[[], dict]:
    """Start p's Lyapunov spectrum in a worker process; the returned call waits for it and makes p's summary with it.
    Processes, not threads: two threads ran both cells' probes and spectra no faster than one after the other
    (measured once at T = 100: ~120-130 ms either way; the cause was not isolated)."""
    if getattr(p, "_summary", None) is not None:
        return lambda: analysis.summary(p)
    try:
        job = _processes().submit(lyapunov.lyapunov, lyapunov.trajectory(p))
    except Exception:  # a pool that cannot start or has broken: the same number, computed here
        _processes.clear()
        return lambda: analysis.summary(p)

    def finish() -> dict:
        try:
            spectrum = job.result()
        except Exception:  # a worker that died (or the number's own error): computed here, which raises the latter
            _processes.clear()
            spectrum = None
        return analysis.summary(p, factors=spectrum)
    return finish


def probe_one(cfg: Config):
    store, lock = _record_cache()
    with lock:
        p = store.get(cfg)  # a hit becomes the most recently used
    if p is not None:
        return p
    p = gradlab.probe(cfg)
    with lock:
        store.evicted = False
        store[cfg] = p
        evicted = store.evicted
    if evicted:
        # Old reruns' download closures and frames reference records in cycles, which Python frees only at a
        # cyclic collection; numpy allocations do not trigger one, so without this RSS grows by a probe per rerun.
        gc.collect()
    return p


@st.cache_resource(max_entries=8 * len(panels.PANELS), show_spinner=False)  # every panel of the last eight views
def figure(name: str, cfg: Config, cells: tuple[str, ...], style: plots.Style):
    """Figures at initialisation depend only on (panel, Config, cells, style): cache them too. A panel that draws less
    than the whole record (panels.drawn) is also cached by what it draws: moving T does not redraw W_hh's spectrum."""
    probes = probe_cells(cfg, cells)
    key = panels.drawn(name, probes)
    return panels.figure(name, probes, style) if key is None else figure_of(name, key, style, probes)


@st.cache_resource(max_entries=8 * len(panels.PANELS), show_spinner=False)
def figure_of(name: str, key: str, style: plots.Style, _records: dict):
    """A panel's figure cached by the digest of what it draws (`_records` is not hashed: `key` stands for it)."""
    return panels.figure(name, _records, style)


@st.cache_resource(show_spinner=False)
def _processes() -> ProcessPoolExecutor:
    """Two worker processes for the spectra, started from a fork server that has imported gradlab (a fresh process,
    not a copy of this one with its threads), both started now so that the first page does not wait for them."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["gradlab.lyapunov"])
    pool = ProcessPoolExecutor(max_workers=2, mp_context=ctx)
    # Streamlit runs this page as the module __main__, which a new process imports before its first task (running
    # the page's imports, ~1.5 s). The workers need only gradlab.lyapunov, so both are started here (a pool starts one
    # per task while none is idle) with no main module to import, and the pool never starts another.
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        for _ in range(2):
            pool.submit(time.sleep, 0.01)
    finally:
        sys.modules["__main__"] = main
    return pool


# ---- the URL ---------------------------------------------------------------------------------------------------

def check_query_params() -> list[str]:
    """Read the view from the URL into the session before the widgets first read it; drop malformed or out-of-range
    values and say what was dropped. Runs once per session: afterwards `write_url` keeps the address bar equal to
    the view."""
    if st.session_state.get("_url_checked"):
        return st.session_state.get("_url_notices", [])
    st.session_state["_url_checked"] = True
    notices = st.session_state["_url_notices"] = []
    for key in list(st.query_params.keys()):
        values = st.query_params.get_all(key)
        raw = values[-1] if values else ""
        if key == "embed_options":  # Streamlit's own (the page's colours follow the theme): left as it is
            continue
        if key == "cells":
            cells = parse_cells(raw)
            if cells:
                st.session_state["cells"] = list(cells)
            else:
                notices.append(f"URL value `cells={raw[:40]}` is not valid here (a comma-separated choice of "
                               f"{', '.join(plots.CELLS)}); showing {' and '.join(DEFAULT_CELLS)}.")
                del st.query_params[key]
            continue
        why = ""
        if key in CONTROLS:
            value, why = _parsed(key, raw)
        elif key in UI_KEYS:  # lecture=TRUE means what it says
            value = next((v for v in (raw, raw.strip().lower()) if v in UI_KEYS[key]), None)
            if key == "lecture" and value is not None:
                value = value == "true"
        else:
            notices.append(f"Ignored unknown URL parameter `{key}`.")
            del st.query_params[key]
            continue
        if value is None:
            notices.append(f"URL value `{key}={raw[:40]}` is not valid here{why}; using the default instead.")
            del st.query_params[key]
            continue
        if len(values) > 1:
            notices.append(f"`{key}` was given {len(values)} times; using the last value.")
        # Every spelling that means a valid value (hidden=128.0, clip=5, lr=1e-2) becomes the value itself: the
        # widget reads it from the session, and write_url spells it back as the widget holds it.
        st.session_state[key] = value
    scene = st.query_params.get("scene")
    if scene in BY_NAME and not any(key in st.query_params for key in CONTROLS):
        apply_scene(scene)  # a bare scene link (?scene=exploding) opens that scene's settings
    return notices


def _parsed(key: str, raw: str) -> tuple:
    """(the control's value for a URL value, "") or (None, " (expected ...)") when the control cannot hold it: what
    config.parse says is allowed, without its echo of the raw value (the notice shows that, cut to 40 characters)."""
    try:
        return parse(key, raw), ""
    except ValueError as e:
        allowed = str(e).partition("expected ")[2]
        return None, f" (expected {allowed})" if allowed else ""


# ---- widgets -> Config -----------------------------------------------------------------------------------------

def apply_scene(name: str) -> None:
    """Set every control to the scene's values (a callback: runs before the widgets are drawn)."""
    scene = BY_NAME[name]
    for key in CONTROLS:
        st.session_state[key] = getattr(scene.config, key)
    st.session_state["mode"] = MODES[1] if scene.train else MODES[0]
    st.session_state["cells"] = list(scene.cells)
    st.session_state["scene"] = name
    st.session_state["panel"] = scene.panel  # explore opens the scene's key panel (after training, if it needs it)


def step_scene(delta: int) -> None:
    """Next from no scene opens the first (the tour starts at its beginning), Previous the last."""
    names = [s.name for s in SCENES]
    current = st.session_state.get("scene")
    if current not in names:
        apply_scene(names[0] if delta > 0 else names[-1])
    else:
        apply_scene(names[(names.index(current) + delta) % len(names)])


def scene_buttons(container, wide: bool = False) -> None:
    """Previous / Next, driven by a clicker's keys too. Only one set is drawn per page (a shortcut must be unique):
    the first key of each is on the visible button, the others on buttons the page hides (see gradlab/data/dashboard.css)."""
    prev, nxt = container.columns(2) if wide else (container, container)
    prev.button("Previous", on_click=step_scene, args=(-1,), width="stretch", shortcut=PREVIOUS_KEYS[0],
                key="scene_previous")
    nxt.button("Next", on_click=step_scene, args=(1,), width="stretch", shortcut=NEXT_KEYS[0], key="scene_next")
    with container.container(key="more_keys"):
        for i, k in enumerate(PREVIOUS_KEYS[1:]):
            st.button(f"Previous ({k})", on_click=step_scene, args=(-1,), shortcut=k, key=f"scene_previous_{i}")
        for i, k in enumerate(NEXT_KEYS[1:]):
            st.button(f"Next ({k})", on_click=step_scene, args=(1,), shortcut=k, key=f"scene_next_{i}")


def control_widget(key: str, ui: UI, container) -> object:
    # A value already in the session (from the URL, a scene, or the user) is the widget's value; passing a default
    # as well would make Streamlit warn on the page.
    default = None if key in st.session_state else getattr(DEFAULT, key)
    common = dict(key=key, help=ui.help or None)
    if ui.widget == "select":
        return container.selectbox(ui.label, ui.domain, index=0 if default is None else ui.domain.index(default),
                                   **common)
    value = {} if default is None else {"value": default}
    if ui.widget == "options":
        return container.select_slider(ui.label, ui.domain, **value, **common)
    lo, hi, step = ui.domain  # typed as the field, as the default is (Config normalises it)
    make = container.number_input if ui.widget == "number" else container.slider
    return make(ui.label, lo, hi, step=step, **value, **common)


def ui_widget(key: str, make):
    """A view setting that is not a Config field (mode, lecture, theme, view): its value from the session if there,
    else the default, so no widget is given both."""
    if key not in st.session_state:
        st.session_state[key] = UI_DEFAULTS[key]
    return make()


def sidebar(present: bool) -> tuple[Config | None, str, plots.Style]:
    sb = st.sidebar
    sb.header("gradlab")
    ui_widget("view", lambda: sb.segmented_control("View", VIEWS, key="view", required=True,
                                                   help="present: one scene at a time, its key panel large"))
    ui_widget("theme", lambda: sb.segmented_control("Theme", plots.THEMES, key="theme", required=True,
                                                    help="dark for a dark room"))
    lecture = ui_widget("lecture", lambda: sb.toggle("Lecture mode", key="lecture",
                                                     help="Bigger fonts and lines; the sidebar starts folded"))
    with sb.container(border=True):
        st.selectbox("Scene", [s.name for s in SCENES], key="scene", index=None,
                     placeholder="Next (PageDown) starts the tour",
                     on_change=lambda: st.session_state.scene and apply_scene(st.session_state.scene))
        if not present:  # when presenting, the buttons are on the slide
            scene_buttons(st)
    mode = ui_widget("mode", lambda: sb.radio("Mode", MODES, key="mode", horizontal=True))
    if "cells" not in st.session_state:
        st.session_state["cells"] = list(DEFAULT_CELLS)
    sb.pills("Cells", plots.CELLS, selection_mode="multi", key="cells", format_func=plots.NAMES.get,
             help="Which cells are drawn side by side, on the same data (at least one)")
    sb.toggle("Stamp exported figures", value=True, key="stamp",
              help="A small caption on every exported figure: task, T, H, init, seed, gradlab version")
    # always drawn (collapsed): a widget that is not drawn loses its value, and the view would lose the setting
    advanced = sb.expander("Advanced", expanded=False)
    values = {key: control_widget(key, ui, advanced if ui.advanced else sb) for key, ui in CONTROLS.items()}
    try:
        cfg = DEFAULT.replace(**values)
    except ValueError as e:  # e.g. a sequence too short for the chosen task
        sb.error(str(e))
        cfg = None
    return cfg, mode, plots.Style(lecture or present, st.session_state["theme"])  # presenting is projecting


def shown_cells() -> tuple[str, ...]:
    """The cells picked, in their fixed order; never none (un-picking the last one shows the default pair)."""
    return parse_cells(",".join(st.session_state.get("cells") or [])) or DEFAULT_CELLS


# ---- panels ----------------------------------------------------------------------------------------------------

def chart(fig, name: str, stem: str) -> None:
    """A figure at 16:9, as large as the window allows without scrolling inside it (dashboard.css sizes the box)."""
    camera = {**export.HTML_CONFIG["toImageButtonOptions"], "filename": stem}
    with st.container(key=f"fig_{name}"):
        st.plotly_chart(fig, theme=None, width="stretch", height="stretch", key=f"chart_{name}",
                        config={**export.HTML_CONFIG, "toImageButtonOptions": camera})


def panel(name: str, fig, cfg: Config, style: plots.Style, note: str = "", data=None) -> None:
    """The figure (its title is the panel's heading), then how to read it, then its downloads."""
    chart(fig, name, export.file_name(name, cfg, "svg")[:-4])
    st.caption(panels.BY_NAME[name].caption + (" " + note if note else ""))
    stamp = st.session_state.get("stamp", True)
    download_row(name, lambda: export.with_stamp(fig, cfg, style) if stamp else fig,
                 lambda fmt: export.file_name(name, cfg, fmt), data, animated=bool(fig.frames))  # + GIF, MP4


def download_row(key: str, make_fig, file_name, data=None, animated: bool = False) -> None:
    """Downloads of one figure (and its table), rendered only when clicked: a slider move costs nothing extra."""
    formats = [f for f in ("png", "svg", "pdf", "html") + (export.ANIMATION_FORMATS if animated else ())
               if f == "html" or HAVE_BROWSER]
    cols = st.columns(len(formats) + 1)
    for col, fmt in zip(cols, formats):
        col.download_button(fmt.upper(), data=lambda fmt=fmt: export.render(make_fig(), fmt), file_name=file_name(fmt),
                            mime=export.MIME[fmt], on_click="ignore", key=f"dl_{key}_{fmt}",
                            icon=":material/download:", width="stretch")
    if data is not None:
        cols[-1].download_button("CSV", data=lambda: export.csv_bytes(data()), file_name=file_name("csv"),
                                 mime="text/csv", on_click="ignore", key=f"dl_{key}_csv", icon=":material/table:",
                                 width="stretch")


def view_params(cfg: Config) -> dict[str, str]:
    """The whole view as URL parameters: every control and view setting, defaults included, so a reload, a bookmark
    or a shared link reproduces it exactly (a link that left out defaults would change meaning with them)."""
    params = {key: str(getattr(cfg, key)) for key in CONTROLS}
    for key, default in UI_DEFAULTS.items():
        value = st.session_state.get(key, default)
        params[key] = str(value).lower() if isinstance(value, bool) else str(value)
    params["cells"] = ",".join(shown_cells())
    if st.session_state.get("scene") in BY_NAME:
        params["scene"] = st.session_state["scene"]
    return params


def write_url(params: dict[str, str]) -> None:
    """Keep the address bar equal to the view (only when it differs: each write is a message to the browser)."""
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)


def share_url(params: dict[str, str]) -> str:
    base = (getattr(st.context, "url", "") or "http://localhost:8501").split("?")[0]
    return base + "?" + urlencode(params)


def diagnosis_line(records: dict) -> str:
    parts = []
    for cell, rec in records.items():
        sm = analysis.measured(rec.latest)  # the verdicts only: no spectrum needed
        cell_state = f"; cell state: {sm['diagnosis_c'][1]}" if "diagnosis_c" in sm else ""
        parts.append(f"**{plots.NAMES[cell]}**: hidden state: {sm['diagnosis'][1]}{cell_state}."
                     if cell_state else f"**{plots.NAMES[cell]}**: {sm['diagnosis'][1]}.")
    return " ".join(parts)


RUNS_KEPT = 3  # trained settings a session keeps (the oldest is dropped): a long class cannot fill the server


def train_ui(cfg: Config, style: plots.Style) -> dict | None:
    """The Train button (the cells shown, on identical batches), a progress bar with ETA and partial results; a stop button that keeps what was done."""
    store = st.session_state.setdefault("runs", {})
    cells = shown_cells()
    key = (cfg, cells)  # a training is of these cells at this setting
    interrupted = st.session_state.pop("_training", None)
    if interrupted in store:  # the previous run was cut short by Stop (or any other control): say so on its plots
        for r in store[interrupted].values():
            r.stopped = r.stopped or {"reason": f"stopped by the user after {r.steps_done} steps", "step": r.steps_done}
    left, right = st.columns([1, 1])
    go = left.button(train_label(cells), type="primary", width="stretch")
    right.button("Stop", width="stretch", help="Stops training; everything recorded so far is kept")
    if go:
        bar = st.progress(0.0, text="starting...")
        live = st.empty()
        draws = [0]
        t0 = time.perf_counter()

        def on_record(p: gradlab.Progress):
            runs = store.setdefault(key, {})
            runs[p.cell] = p.run  # kept even if the user presses Stop (a rerun interrupts this loop)
            done = sum(r.steps_done for r in runs.values())
            total = len(cells) * cfg.steps
            eta = (time.perf_counter() - t0) / max(done, 1) * (total - done)
            bar.progress(min(done / total, 1.0), text=f"step {done // len(cells)} of {cfg.steps} · about {eta:.0f} s left")
            if p.recorded and len(runs) == len(cells):
                # a fresh key per draw: two draws in one run must never share an element id
                draws[0] += 1
                live.plotly_chart(panels.figure("learning", runs, style), theme=None, width="stretch",
                                  key=f"live_learning_{draws[0]}")

        # every cell trained: its records and one probe's working set
        need = sum(record_bytes(cfg.replace(cell=c)) + estimate_bytes(cfg.replace(cell=c)) for c in cells)
        started = False
        # The marker survives only a real interruption (Stop or another control reruns the script, which Streamlit
        # does by raising a BaseException in this thread); an error ends training here and says so instead.
        st.session_state["_training"] = key
        try:
            with budget.SERVER.hold(need, "this training"):
                started = True
                store.pop(key, None)  # a retrained setting moves to the end (newest)
                store[key] = gradlab.train_many([cfg.replace(cell=c) for c in cells], on_record=on_record)
        except Exception as e:  # never a traceback in front of a class, never a false "stopped by the user"
            if not started:
                st.error(f"Training did not run: {e}.")
            else:
                for r in store.get(key, {}).values():
                    r.stopped = r.stopped or {"reason": f"training failed ({type(e).__name__}: {e})",
                                              "step": r.steps_done}
                st.error(f"Training stopped with an error: {type(e).__name__}: {e}. Everything recorded before it "
                         "is kept below.")
        while len(store) > RUNS_KEPT:
            store.pop(next(iter(store)))  # dicts keep insertion order: the oldest training goes first
        st.session_state.pop("_training", None)  # not reached when a rerun unwinds the loop: then it was a stop
        bar.empty()
        live.empty()
    return trained(cfg, cells)


def trained(cfg: Config, cells: tuple[str, ...]) -> dict | None:
    """This session's training of these cells at this setting ({cell: Run}), if it has a run for every cell."""
    runs = st.session_state.get("runs", {}).get((cfg, cells))
    return runs if runs and len(runs) == len(cells) else None


def train_label(cells: tuple[str, ...]) -> str:
    return {1: f"Train the {plots.NAMES[cells[0]]}", 2: "Train both cells"}.get(len(cells), "Train all three cells")


def scene_ui(scene, cfg: Config, probes: dict, runs: dict | None) -> None:
    """The scene's narrative filled with this view's measurements, and each of its claims checked on this view."""
    missing = [plots.NAMES[c] for c in scene.cells if c not in probes]
    if missing:  # its words are measurements of these cells
        st.info(f"**{scene.title}.** This scene is about the {' and the '.join(plots.NAMES[c] for c in scene.cells)}: "
                f"show the {' and the '.join(missing)} (Cells, in the sidebar) to hear its story.")
        return
    if scene.train and not runs:
        st.info(f"**{scene.title}.** Press **Train both cells** (above): the story of this "
                "scene is told by the training, and its numbers appear when it is done.")
        return
    f = scenes.facts(probes if not runs else runs, runs)
    # the seed is not a setting of the story: its claims are checked over seeds (tests/test_scenes.py)
    changed = [ui.label for key, ui in CONTROLS.items()
               if key != "seed" and getattr(cfg, key) != getattr(scene.config, key)]
    if changed:  # the story's words are about the scene's own settings: here only the checks are re-measured
        lines = [f"**{scene.title}.** You changed {', '.join(changed)}: its story is about its own settings; "
                 "its claims, re-measured on this view:"]
    else:
        lines = [f"**{scene.title}.** {scenes.say(scene, f)}"]
    for claim, ok in scenes.check(scene, f):
        lines.append(f"- {':material/check_circle:' if ok else ':material/cancel:'} {scenes.say(scene, f, claim.text)}"
                     + ("" if ok else " (not on this view)"))
    text = "\n".join(lines)
    if scene.try_next:
        text += f"\n\n*Try next:* {scene.try_next}"
    st.info(text)


def _sections(text: str) -> dict[str, str]:
    """dashboard.css's sections by name (each starts with a marker comment: its name between "==" signs)."""
    parts = re.split(r"/\* == (\w+) == \*/", text)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2])}


CSS = _sections(shipped("dashboard.css").read_text())


def page_css(style: plots.Style, present: bool, trains: bool) -> str:
    """The page's own styling (gradlab/data/dashboard.css): the base, then what the view adds."""
    parts = ["base", "lecture" * style.lecture, "present" * present, "present_train" * trains,
             "dark" * (style.theme == "dark")]
    return "<style>\n" + "\n".join(CSS[p] for p in parts if p) + "\n</style>"


def main() -> None:
    # presenting or lecturing, the page opens with the sidebar folded away: the figures get the whole width
    big = (st.session_state.get("view", st.query_params.get("view")) == "present"
           or str(st.session_state.get("lecture", st.query_params.get("lecture"))).lower() == "true")
    st.set_page_config(page_title="gradlab: why recurrent networks forget", layout="wide",
                       initial_sidebar_state="collapsed" if big else "auto")
    notices = check_query_params()
    for key in ("sweep_file", "sweep_value"):  # kept while their tab is closed (a widget not drawn forgets its value)
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    present = st.session_state.get("view") == "present"
    if present and st.session_state.get("scene") not in BY_NAME:
        apply_scene(SCENES[0].name)  # presenting starts at the first scene
    cfg, mode, style = sidebar(present)
    scene = BY_NAME.get(st.session_state.get("scene", ""))
    trains = present and scene is not None and scene.train
    st.html(page_css(style, present, trains))
    for n in notices:
        st.warning(n)
    if cfg is None:
        return
    params = view_params(cfg)
    write_url(params)
    # The records' summaries hold their Lyapunov spectra, the slowest numbers on the page: computed only when the
    # scene or the panel that will be open reads them, in worker processes while the script goes on (summarised).
    cells = shown_cells()
    done = mode == MODES[1] and trained(cfg, cells) is not None
    will_open = panels.BY_NAME.get(opening([name for name, _ in tab_list(cells, done)]))
    spectra = present or scene is not None or (not done and will_open is not None and will_open.summary)
    try:
        probes, pending = measure(cfg, cells, spectra)
    except Exception as e:  # never a traceback in front of a class
        st.title("Why recurrent networks forget")
        st.error(f"The engine could not run this configuration: {e}")
        return
    if present:
        return present_ui(scene, cfg, mode, probes, pending, style)
    st.title("Why recurrent networks forget")
    scene_box = st.empty()  # filled once the view is measured: the narrative's numbers are this view's
    with st.expander("Share this view"):
        st.caption("Every control is stored in the link (and in the address bar); copy it with the icon on the right.")
        st.code(share_url(params), language=None)
    for cell, p in probes.items():
        for sentence in analysis.flag_sentences(p.nonfinite, p.seq_len):
            st.warning(f"{plots.NAMES[cell]}: {sentence}.")
    headline = st.empty()  # what is plotted: the trained weights' profile once trained
    runs = train_ui(cfg, style) if mode == MODES[1] else None
    records = runs or probes
    for cell, r in (runs or {}).items():  # above the tabs: whichever is open
        if r.stopped:
            st.warning(f"{plots.NAMES[cell]}: {r.stopped['reason']}; everything before it is shown.")
    notes = {"grad_vs_time": "After training: the profile of the trained weights." if runs else "",
             "learning": diagnosis_line(runs) if runs else ""}
    pick = open_tab(tab_list(cells, bool(runs)))
    headline.markdown(("**After training.** " if runs else "") + diagnosis_line(runs or probes))
    for finish in pending:
        finish()
    if scene:
        with scene_box.container():
            scene_ui(scene, cfg, probes, runs)
    with pick.tab:
        if pick.name == SWEEP_TAB[0]:
            sweep_ui(style)
        else:
            panel(pick.name, panel_figure(pick.name, cfg, records, probes, style), cfg, style,
                  note=notes.get(pick.name, ""), data=lambda: panels.table(pick.name, records))
    if not runs:
        press = f"press *{train_label(tuple(probes))}*"
        st.caption(("P" + press[1:] if mode == MODES[1] else f"Switch the mode to **train** and {press}")
                   + " for more tabs: " + ", ".join(f"*{p.tab}*" for p in panels.PANELS if p.training) + ".")
    export_all_ui(probes, runs, cfg, style, share_url(params))


def tab_list(cells: tuple[str, ...], done: bool) -> list[tuple[str, str]]:
    """(name, label) of every tab for these cells, before or after training: the panels they fill, then the sweeps."""
    return [(p.name, p.tab) for p in panels.shown(dict.fromkeys(cells, 1), done)] + [SWEEP_TAB]


class Tab(NamedTuple):
    name: str  # the panel's (or "sweep")
    tab: object  # its Streamlit tab container


def open_tab(tabs: list[tuple[str, str]]) -> Tab:
    """The tab bar ((name, label) each) and the open tab: only that one is drawn (Streamlit's stateful tabs rerun the
    page when another is opened), so a slider move redraws one chart rather than every panel. The open panel is kept
    by name in the session (and the URL), so it stays open when tabs come and go (training adds some)."""
    names = dict(tabs)
    containers = st.tabs(list(names.values()), key="panel_tab", default=names[opening(list(names))],
                         on_change=_opened, args=({label: name for name, label in tabs},))
    return next(Tab(name, c) for name, c in zip(names, containers) if c.open)


def opening(names: list[str]) -> str:
    """Which of these panels the tabs open: the one asked for (by the user, the URL or a scene), else the first."""
    want = st.session_state.setdefault("panel", UI_DEFAULTS["panel"])
    return want if want in names else names[0]


def _opened(by_label: dict[str, str]) -> None:
    st.session_state["panel"] = by_label[st.session_state["panel_tab"]]


def panel_figure(name: str, cfg: Config, records: dict, probes: dict, style: plots.Style):
    """At initialisation the figure is cached per (Config, style); after training it is drawn from the runs."""
    return figure(name, cfg, tuple(probes), style) if records is probes else panels.figure(name, records, style)


def present_ui(scene, cfg: Config, mode: str, probes: dict, pending: list, style: plots.Style) -> None:
    """One scene: its title, its key panel as large as the window allows, its narrative; the clicker steps."""
    st.title(scene.title)
    runs = train_ui(cfg, style) if scene.train or mode == MODES[1] else None
    records = runs or probes
    for finish in pending:  # the cells' spectra, computed side by side in two processes
        finish()
    name = scene.panel if (runs or not panels.BY_NAME[scene.panel].training) else "grad_vs_time"
    chart(panel_figure(name, cfg, records, probes, style), name, export.file_name(name, cfg, "svg")[:-4])
    scene_ui(scene, cfg, probes, runs)
    names = [s.name for s in SCENES]
    st.caption(f"Scene {names.index(scene.name) + 1} of {len(names)} · {NEXT_KEYS[0]} or → for the next, "
               f"{PREVIOUS_KEYS[0]} or ← for the previous · switch the view to explore for every panel")
    scene_buttons(st, wide=True)


SHIPPED_SWEEP = shipped("sweep_adding.parquet")


@st.cache_resource(max_entries=8, show_spinner=False)
def load_sweep(path: str, mtime: float):
    return sweep.load(path)


@st.cache_resource(max_entries=8, show_spinner=False)
def sweep_figure(path: str, mtime: float, value: str, style: plots.Style):
    """Built once per (file version, colour, style): the map does not change when the other controls move."""
    return plots.trainability_map(load_sweep(path, mtime), style, value)


def sweep_ui(style: plots.Style) -> None:
    """The trainability map of a saved sweep: the shipped one, or any in ./sweeps (python -m gradlab sweep)."""
    st.caption("Each square is a full training run (or the mean over seeds): did the network learn the dependency "
               "at this sequence length and initial gain? The dashed line is where the RNN's recurrent matrix has "
               "spectral radius 1. Make your own with `python -m gradlab sweep ... --out sweeps/NAME.parquet`.")
    # The choice is a file name, looked up here: a client can only pick among these, never send a path.
    found = {p.name: p for pattern in ("*.parquet", "*.csv") for p in sorted(Path("sweeps").glob(pattern))
             if p.is_file() and p.name != SHIPPED_SWEEP.name}
    files = {SHIPPED_SWEEP.name: SHIPPED_SWEEP, **found}
    left, right = st.columns([3, 1])
    name = left.selectbox("Sweep", list(files), key="sweep_file")
    path = str(files.get(name, SHIPPED_SWEEP))
    value = right.radio("Colour", ("solved", "final_loss"), key="sweep_value", horizontal=True,
                        format_func=lambda v: "solved fraction" if v == "solved" else "final loss")
    try:
        mtime = Path(path).stat().st_mtime
        df, fig = load_sweep(path, mtime), sweep_figure(path, mtime, value, style)
    except Exception as e:  # a malformed file under ./sweeps must not break the page
        st.error(f"Cannot draw the sweep {name}: {e}" if isinstance(e, (ValueError, OSError))
                 else f"Cannot draw the sweep {name}: {type(e).__name__}: {e}")
        return
    stem = f"trainability_{value}_{Path(path).stem}"
    chart(fig, "sweep", stem)
    download_row("sweep", lambda: fig, lambda fmt: f"sweep_{Path(path).stem}.csv" if fmt == "csv" else f"{stem}.{fmt}",
                 data=lambda: df)


def export_all_ui(probes, runs, cfg: Config, style: plots.Style, url: str) -> None:
    st.subheader("Export everything")
    st.caption("One ZIP: every panel as " + ("PNG, SVG, PDF and " if HAVE_BROWSER else "") + "interactive HTML, the "
               "data as CSV (one row per cell, record and time step), the recorded bundles (.npz), config.json and "
               "the link that reproduces this view.")
    if not HAVE_BROWSER:
        st.info("PNG, SVG and PDF files need Chromium on this machine: `apt-get install chromium` (or run "
                "`plotly_get_chrome`). Until then: HTML, CSV and the camera icon on each plot, which saves an SVG "
                "from your browser.")
    stamp = st.session_state.get("stamp", True)
    st.download_button(
        "Export all (ZIP)", type="primary", icon=":material/folder_zip:", on_click="ignore", key="dl_all",
        data=lambda: export.zip_bytes(export.export_all(probes, runs, cfg, style=style, stamp=stamp, url=url)),
        file_name=export.file_name("gradlab", cfg, "zip"), mime="application/zip")
    if HAVE_BROWSER:
        st.caption("The handout: every scene of the tour on its own page, with its narrative, its claims checked and "
                   "its key panel, measured at the scene's own settings (about half a minute the first time: one "
                   "scene trains).")
        st.download_button("Lecture handout (PDF)", icon=":material/picture_as_pdf:", on_click="ignore",
                           key="dl_handout", data=handout_bytes, file_name="gradlab_handout.pdf",
                           mime="application/pdf")


@st.cache_resource(show_spinner="Measuring every scene for the handout...")
def handout_bytes() -> bytes:
    """The same for everyone (each scene at its own settings and seed): made once per server."""
    from gradlab import handout
    return handout.handout()


if __name__ == "__main__":  # Streamlit runs the page as __main__; a process that imports it must not run it
    main()
