"""gradlab's dashboard: a vanilla RNN and an LSTM side by side, live, shareable, projector-ready.

Thin by design: widgets -> Config -> cached engine calls -> figure builders in gradlab.plots. No maths here.
Every control is bound to the URL under its Config field name, so a link reproduces the exact view.
Run it with `make run` (or `streamlit run dashboard.py`).
"""
from __future__ import annotations

import gc
import math
import threading
import time
from collections import OrderedDict
from urllib.parse import urlencode
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

import gradlab
from gradlab import analysis, budget, export, panels, plots, scenes, sweep
from gradlab.config import CLIP_MODES, INITS, NONLINEARITIES, OPTIMIZERS, TASKS, Config
from gradlab.probe import estimate_bytes
from gradlab.scenes import BY_NAME, SCENES
from gradlab.train import record_bytes

DEFAULT = BY_NAME["vanishing"].config
HAVE_BROWSER = export.chromium() is not None  # static PNG/SVG/PDF export needs one; HTML and CSV never do
MODES = ("at initialisation", "train")


@dataclass(frozen=True)
class Control:
    """One sidebar control: its URL key (= the Config field), widget kind and domain."""

    key: str
    label: str
    kind: str  # "select" | "int" | "float" | "options"
    domain: tuple
    advanced: bool = False
    help: str = ""


CONTROLS = [
    Control("task", "Task", "select", TASKS, help="Synthetic long-dependency task (see TASKS in the README)"),
    Control("seq_len", "Sequence length T", "int", (5, 1000, 5), help="Steps between the information and the loss"),
    Control("init", "Recurrent init", "select", INITS, help="How W_hh is drawn (exact definitions in gradlab/init.py)"),
    Control("init_scale", "Init scale (gain of W_hh)", "float", (0.0, 10.0, 0.05)),
    Control("forget_bias", "LSTM forget-gate bias b_f", "float", (-2.0, 6.0, 0.5)),
    Control("nonlinearity", "RNN nonlinearity", "select", NONLINEARITIES),
    Control("hidden", "Hidden units H", "options", (4, 6, 8, 16, 32, 64, 128), advanced=True),
    Control("batch", "Batch size B", "options", (8, 16, 32, 64, 128, 256), advanced=True),
    Control("seed", "Seed", "int", (0, 9999, 1), advanced=True),
    Control("steps", "Training steps", "int", (50, 5000, 50), advanced=True),
    Control("optimizer", "Optimiser", "select", OPTIMIZERS, advanced=True),
    Control("lr", "Learning rate", "options", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1), advanced=True),
    Control("clip_mode", "Gradient clipping", "select", CLIP_MODES, advanced=True),
    Control("clip", "Clipping threshold", "options", (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0), advanced=True),
]
# A select widget's displayed option is what Streamlit writes to the URL, so scenes show their short names.
UI_KEYS = {"mode": MODES, "lecture": ("true", "false"), "scene": tuple(s.name for s in SCENES)}


# ---- engine calls, cached by Config (hashable) -----------------------------------------------------------------
# Records are shared, not copied: at T=1000 a probe pair holds 100-300 MB of arrays, which st.cache_data would pickle
# and unpickle on every rerun. They are never modified after they are made. The cache is bounded by bytes, not entries,
# so dragging the T slider across long sequences cannot push the server past CACHE_BYTES (plus the pair in use).
CACHE_BYTES = 300 * 2**20


@st.cache_resource
def _record_cache() -> tuple[OrderedDict, threading.Lock]:
    return OrderedDict(), threading.Lock()


def probe_pair(cfg: Config) -> dict:
    store, lock = _record_cache()
    with lock:
        if cfg in store:
            store.move_to_end(cfg)
            return store[cfg]
    pair = {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}
    with lock:
        store[cfg] = pair
        evicted = False
        while len(store) > 1 and sum(p.nbytes for v in store.values() for p in v.values()) > CACHE_BYTES:
            store.popitem(last=False)  # least recently used first
            evicted = True
    if evicted:
        # Old reruns' download closures and frames reference records in cycles, which Python frees only at a
        # cyclic collection; numpy allocations do not trigger one, so without this RSS grows by a pair per rerun.
        gc.collect()
    return pair


@st.cache_resource(max_entries=8 * len(panels.PANELS), show_spinner=False)  # every panel of the last eight views
def figure(name: str, cfg: Config, lecture: bool):
    """Figures at initialisation depend only on (panel, Config, style): cache them too."""
    return panels.figure(name, probe_pair(cfg), plots.Style(lecture))


# ---- the URL ---------------------------------------------------------------------------------------------------

def check_query_params() -> list[str]:
    """Drop malformed or out-of-range URL values before the widgets first read them; say what was dropped.
    Runs once per session: afterwards the widgets themselves write the URL."""
    if st.session_state.get("_url_checked"):
        return st.session_state.get("_url_notices", [])
    st.session_state["_url_checked"] = True
    notices = st.session_state["_url_notices"] = []
    by_key = {c.key: c for c in CONTROLS}
    for key in list(st.query_params.keys()):
        values = st.query_params.get_all(key)
        raw = values[-1] if values else ""
        if key in by_key:
            ok = _in_domain(by_key[key], raw)
        elif key in UI_KEYS:
            ok = raw in UI_KEYS[key]
        else:
            notices.append(f"Ignored unknown URL parameter `{key}`.")
            del st.query_params[key]
            continue
        if key in UI_KEYS and not ok and raw.strip().lower() in UI_KEYS[key]:
            raw, ok = raw.strip().lower(), True  # lecture=TRUE means what it says
        if len(values) > 1 and ok:
            notices.append(f"`{key}` was given {len(values)} times; using the last value.")
        if ok:
            # Every spelling that means a valid value (hidden=128.0, clip=5, lr=1e-2) becomes the value itself: the
            # widget reads it from the session, and the address bar shows it as the widget would write it.
            value = _typed(by_key[key], raw) if key in by_key else (raw == "true" if key == "lecture" else raw)
            st.session_state[key] = value
            st.query_params[key] = raw if key not in by_key else str(value)  # as the widget writes it
        if not ok:
            notices.append(f"URL value `{key}={raw[:40]}` is not valid here; using the default instead.")
            del st.query_params[key]
    scene = st.query_params.get("scene")
    if scene in BY_NAME and not any(c.key in st.query_params for c in CONTROLS):
        apply_scene(scene)  # a bare scene link (?scene=exploding) opens that scene's settings
    return notices


def _typed(c: Control, raw: str):
    if c.kind == "select":
        return raw
    v = float(raw)
    if c.kind == "options":
        return next(o for o in c.domain if math.isclose(v, o))
    return int(v) if c.kind == "int" else v


def _in_domain(c: Control, raw: str) -> bool:
    try:
        if c.kind == "select":
            return raw in c.domain
        v = float(raw)
        if not math.isfinite(v):
            return False
        if c.kind == "options":
            return any(math.isclose(v, o) for o in c.domain)
        lo, hi, _ = c.domain
        return lo <= v <= hi and (c.kind == "float" or v == int(v))
    except ValueError:
        return False


# ---- widgets -> Config -----------------------------------------------------------------------------------------

def apply_scene(name: str) -> None:
    """Set every control to the scene's values (a callback: runs before the widgets are drawn)."""
    scene = BY_NAME[name]
    for c in CONTROLS:
        st.session_state[c.key] = getattr(scene.config, c.key)
    st.session_state["mode"] = MODES[1] if scene.train else MODES[0]
    st.session_state["scene"] = name


def step_scene(delta: int) -> None:
    names = [s.name for s in SCENES]
    current = st.session_state.get("scene") or names[0]
    apply_scene(names[(names.index(current) + delta) % len(names)])


def control_widget(c: Control, container) -> object:
    default = getattr(DEFAULT, c.key)
    common = dict(key=c.key, help=c.help or None, bind="query-params", persist_state="page")
    if c.kind == "select":
        return container.selectbox(c.label, c.domain, index=c.domain.index(default), **common)
    if c.kind == "options":
        return container.select_slider(c.label, c.domain, value=default, **common)
    lo, hi, step = c.domain
    if c.kind == "int":
        if c.key == "seed":
            return container.number_input(c.label, lo, hi, int(default), step, **common)
        return container.slider(c.label, lo, hi, int(default), step, **common)
    return container.slider(c.label, float(lo), float(hi), float(default), float(step), **common)


def sidebar() -> tuple[Config | None, str, bool]:
    sb = st.sidebar
    sb.title("gradlab")
    lecture = sb.toggle("Lecture mode", key="lecture", bind="query-params",
                        help="Bigger fonts and lines, 16:9 figures, advanced controls hidden")
    with sb.container(border=True):
        st.selectbox("Scene", [s.name for s in SCENES], key="scene", bind="query-params", index=None,
                     placeholder="Pick a scene to start the tour",
                     on_change=lambda: st.session_state.scene and apply_scene(st.session_state.scene))
        prev, nxt = st.columns(2)
        prev.button("Previous", on_click=step_scene, args=(-1,), width="stretch")
        nxt.button("Next", on_click=step_scene, args=(1,), width="stretch")
    mode = sb.radio("Mode", MODES, key="mode", bind="query-params", horizontal=True)
    sb.toggle("Stamp exported figures", value=True, key="stamp",
              help="A small caption on every exported figure: task, T, H, init, seed, gradlab version")
    values = {}
    advanced = sb.expander("Advanced", expanded=False) if not lecture else None
    for c in CONTROLS:
        if c.advanced and lecture:  # hidden, but still part of the view: from this session, else from the URL
            raw = st.query_params.get(c.key)
            url_value = _typed(c, raw) if raw is not None and _in_domain(c, raw) else getattr(DEFAULT, c.key)
            values[c.key] = st.session_state.get(c.key, url_value)
            continue
        values[c.key] = control_widget(c, advanced if c.advanced else sb)
    try:
        cfg = DEFAULT.replace(**values)
    except ValueError as e:  # e.g. a sequence too short for the chosen task
        sb.error(str(e))
        cfg = None
    return cfg, mode, lecture


# ---- panels ----------------------------------------------------------------------------------------------------

def chart(fig, name: str, cfg: Config) -> None:
    camera = {**export.HTML_CONFIG["toImageButtonOptions"], "filename": export.file_name(name, cfg, "svg")[:-4]}
    st.plotly_chart(fig, theme=None, width="stretch", key=f"chart_{name}",
                    config={**export.HTML_CONFIG, "toImageButtonOptions": camera})


def panel(name: str, fig, cfg: Config, note: str = "", data=None) -> None:
    p = panels.BY_NAME[name]
    st.subheader(p.title)
    st.caption(p.caption + (" " + note if note else ""))
    chart(fig, name, cfg)
    downloads(name, fig, cfg, data)


def downloads(name: str, fig, cfg: Config, data) -> None:
    """Per-panel downloads, rendered only when clicked (data= a callable): a slider move costs nothing extra."""
    stamp = st.session_state.get("stamp", True)
    formats = [f for f in ("png", "svg", "pdf", "html") if f == "html" or HAVE_BROWSER]
    cols = st.columns(len(formats) + 1)
    for col, fmt in zip(cols, formats):
        col.download_button(fmt.upper(), data=lambda fmt=fmt: export.render(export.with_stamp(fig, cfg) if stamp else fig, fmt),
                            file_name=export.file_name(name, cfg, fmt), mime=export.MIME[fmt], on_click="ignore",
                            key=f"dl_{name}_{fmt}", icon=":material/download:", width="stretch")
    if data is not None:
        cols[-1].download_button("CSV", data=lambda: export.csv_bytes(data()), file_name=export.file_name(name, cfg, "csv"),
                                 mime="text/csv", on_click="ignore", key=f"dl_{name}_csv", icon=":material/table:",
                                 width="stretch")


def share_url(cfg: Config, mode: str, lecture: bool) -> str:
    """The link that reproduces this view: every control's value, not only the ones already in the address bar."""
    base = (getattr(st.context, "url", "") or "http://localhost:8501").split("?")[0]
    params = {c.key: getattr(cfg, c.key) for c in CONTROLS}
    params.update(mode=mode, lecture=str(lecture).lower())
    return base + "?" + urlencode(params)


def diagnosis_line(records: dict) -> str:
    parts = []
    for cell, rec in records.items():
        sm = analysis.summary(rec.latest)
        cell_state = f"; cell state: {sm['diagnosis_c'][1]}" if "diagnosis_c" in sm else ""
        parts.append(f"**{plots.NAMES[cell]}**: hidden state: {sm['diagnosis'][1]}{cell_state}."
                     if cell_state else f"**{plots.NAMES[cell]}**: {sm['diagnosis'][1]}.")
    return " ".join(parts)


RUNS_KEPT = 3  # trained settings a session keeps (the oldest is dropped): a long class cannot fill the server


def train_ui(cfg: Config, style: plots.Style) -> dict | None:
    """The Train button, a progress bar with ETA and partial results; a stop button that keeps what was done."""
    store = st.session_state.setdefault("runs", {})
    interrupted = st.session_state.pop("_training", None)
    if interrupted in store:  # the previous run was cut short by Stop (or any other control): say so on its plots
        for r in store[interrupted].values():
            r.stopped = r.stopped or {"reason": f"stopped by the user after {r.steps_done} steps", "step": r.steps_done}
    left, right = st.columns([1, 1])
    go = left.button("Train both cells", type="primary", width="stretch")
    right.button("Stop", width="stretch", help="Stops training; everything recorded so far is kept")
    if go:
        bar = st.progress(0.0, text="starting...")
        live = st.empty()
        draws = [0]
        t0 = time.perf_counter()

        def on_record(p: gradlab.Progress):
            runs = store.setdefault(cfg, {})
            runs[p.cell] = p.run  # kept even if the user presses Stop (a rerun interrupts this loop)
            done = sum(r.steps_done for r in runs.values())
            total = 2 * cfg.steps
            eta = (time.perf_counter() - t0) / max(done, 1) * (total - done)
            bar.progress(min(done / total, 1.0), text=f"step {done // 2} of {cfg.steps} · about {eta:.0f} s left")
            if p.recorded and len(runs) == 2:
                # a fresh key per draw: two draws in one run must never share an element id
                draws[0] += 1
                live.plotly_chart(panels.figure("learning", runs, style), theme=None, width="stretch",
                                  key=f"live_learning_{draws[0]}")

        # both cells: each one's records and one probe's working set
        need = sum(record_bytes(cfg.replace(cell=c)) + estimate_bytes(cfg.replace(cell=c)) for c in ("rnn", "lstm"))
        started = False
        # The marker survives only a real interruption (Stop or another control reruns the script, which Streamlit
        # does by raising a BaseException in this thread); an error ends training here and says so instead.
        st.session_state["_training"] = cfg
        try:
            with budget.SERVER.hold(need, "this training"):
                started = True
                store.pop(cfg, None)  # a retrained setting moves to the end (newest)
                store[cfg] = gradlab.train_pair(cfg, on_record=on_record)
        except Exception as e:  # never a traceback in front of a class, never a false "stopped by the user"
            if not started:
                st.error(f"Training did not run: {e}.")
            else:
                for r in store.get(cfg, {}).values():
                    r.stopped = r.stopped or {"reason": f"training failed ({type(e).__name__}: {e})",
                                              "step": r.steps_done}
                st.error(f"Training stopped with an error: {type(e).__name__}: {e}. Everything recorded before it "
                         "is kept below.")
        while len(store) > RUNS_KEPT:
            store.pop(next(iter(store)))  # dicts keep insertion order: the oldest training goes first
        st.session_state.pop("_training", None)  # not reached when a rerun unwinds the loop: then it was a stop
        bar.empty()
        live.empty()
    return store.get(cfg)


def scene_ui(scene, cfg: Config, probes: dict, runs: dict | None) -> None:
    """The scene's narrative filled with this view's measurements, and each of its claims checked on this view."""
    if scene.train and not runs:
        st.info(f"**{scene.title}.** Switch the mode to **train** and press **Train both cells**: the story of this "
                "scene is told by the training, and its numbers appear when it is done.")
        return
    f = scenes.facts(probes if not runs else runs, runs)
    # the seed is not a setting of the story: its claims are checked over seeds (tests/test_scenes.py)
    changed = [c.label for c in CONTROLS if c.key != "seed" and getattr(cfg, c.key) != getattr(scene.config, c.key)]
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


def main() -> None:
    st.set_page_config(page_title="gradlab: why recurrent networks forget", layout="wide")
    notices = check_query_params()
    cfg, mode, lecture = sidebar()
    style = plots.Style(lecture)
    if lecture:
        st.html("<style>html, body, [class*='st-'] {font-size: 1.25rem}</style>")
    for n in notices:
        st.warning(n)
    scene = BY_NAME.get(st.session_state.get("scene", ""))
    st.title("Why recurrent networks forget")
    scene_box = st.empty()  # filled once the view is measured: the narrative's numbers are this view's
    if cfg is None:
        return
    url = share_url(cfg, mode, lecture)
    with st.expander("Share this view"):
        st.caption("Every control is stored in the link; copy it with the icon on the right.")
        st.code(url or "(open the app in a browser to see its link)", language=None)

    try:
        probes = probe_pair(cfg)
    except Exception as e:  # never a traceback in front of a class
        st.error(f"The engine could not run this configuration: {e}")
        return
    for cell, p in probes.items():
        for sentence in analysis.flag_sentences(p.nonfinite, p.seq_len):
            st.warning(f"{plots.NAMES[cell]}: {sentence}.")
    st.markdown(diagnosis_line(probes))

    runs = train_ui(cfg, style) if mode == MODES[1] else None
    if runs and len(runs) < 2:
        runs = None
    if scene:
        with scene_box.container():
            scene_ui(scene, cfg, probes, runs)
    records = runs or probes
    data = lambda name: (lambda: panels.table(name, records))  # noqa: E731 (built on click only)

    def fig(name):  # at initialisation the figure is cached per Config; after training it is drawn from the runs
        return figure(name, cfg, lecture) if records is probes else panels.figure(name, records, style)

    notes = {"grad_vs_time": "After training: the profile of the trained weights." if runs else "",
             "learning": diagnosis_line(runs) if runs else ""}
    for p in panels.shown(records, bool(runs)):
        panel(p.name, fig(p.name), cfg, note=notes.get(p.name, ""), data=data(p.name))
        if p.name == "learning":
            for cell, r in runs.items():
                if r.stopped:
                    st.warning(f"{plots.NAMES[cell]}: {r.stopped['reason']}; everything before it is shown.")
    if not runs:
        st.subheader("Training panels")
        st.caption("Switch the mode to **train** and press *Train both cells* to see "
                   + ", ".join(p.title.lower() for p in panels.PANELS if p.training) + ".")
    sweep_ui(style)
    export_all_ui(probes, runs, cfg, style, url)


SHIPPED_SWEEP = Path(__file__).resolve().parent / "gradlab" / "data" / "sweep_adding.parquet"


@st.cache_resource(max_entries=8, show_spinner=False)
def load_sweep(path: str, mtime: float):
    return sweep.load(path)


@st.cache_resource(max_entries=8, show_spinner=False)
def sweep_figure(path: str, mtime: float, value: str, lecture: bool):
    """Built once per (file version, colour, style): the map does not change when the other controls move."""
    return plots.trainability_map(load_sweep(path, mtime), plots.Style(lecture), value)


def sweep_ui(style: plots.Style) -> None:
    """The trainability map of a saved sweep: the shipped one, or any in ./sweeps (python -m gradlab sweep)."""
    title = "Trainability map"
    st.subheader(title)
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
        df, fig = load_sweep(path, mtime), sweep_figure(path, mtime, value, style.lecture)
    except Exception as e:  # a malformed file under ./sweeps must not break the page
        st.error(f"Cannot draw the sweep {name}: {e}" if isinstance(e, (ValueError, OSError))
                 else f"Cannot draw the sweep {name}: {type(e).__name__}: {e}")
        return
    st.plotly_chart(fig, theme=None, width="stretch", key="chart_sweep", config=export.HTML_CONFIG)
    formats = [f for f in ("png", "svg", "pdf", "html") if f == "html" or HAVE_BROWSER]
    cols = st.columns(len(formats) + 1)
    stem = f"trainability_{value}_{Path(path).stem}"
    for col, fmt in zip(cols, formats):
        col.download_button(fmt.upper(), data=lambda fmt=fmt: export.render(fig, fmt), file_name=f"{stem}.{fmt}",
                            mime=export.MIME[fmt], on_click="ignore", key=f"dl_sweep_{fmt}", width="stretch")
    cols[-1].download_button("CSV", data=lambda: export.csv_bytes(df), file_name=f"sweep_{Path(path).stem}.csv",
                             mime="text/csv", on_click="ignore", key="dl_sweep_csv", width="stretch")


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


main()
