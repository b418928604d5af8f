"""Pure figure builders: records in, plotly figures out. No streamlit here, no maths beyond layout.

Every builder takes `{"rnn": record, "lstm": record}` (a Probe or a Run per cell; either may be missing) and a
Style, and draws the cells side by side on matching axes, the RNN always in vermillion and the LSTM always in
blue (Okabe-Ito, colour-blind safe). Probe panels draw `record.latest` (a Probe is its own; a Run's is its trained
parameters' probe), training panels draw the Run itself. Titles and captions live in the panel registry
(gradlab.panels), which sets them; every number in a legend comes from gradlab.analysis.summary.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from . import analysis
from .tasks import baselines, information

COLORS = {"rnn": "#D55E00", "lstm": "#0072B2", "gru": "#009E73"}  # Okabe-Ito vermillion, blue, bluish green
NAMES = {"rnn": "vanilla RNN", "lstm": "LSTM", "gru": "GRU"}
CELLS = tuple(COLORS)
# Every colour a line or mark is drawn in, per theme, checked for 3:1 contrast against its background (WCAG's rule for
# graphics; tests/test_style.py). The cells keep their Okabe-Ito colours on both; Okabe-Ito's orange and sky blue fall
# to about 2.3:1 on white, so the light theme uses a darker orange and puts black (the ink) where the sky blue was.
# One look per meaning: the exact prediction is drawn in the ink, dashed; each approximation has its own colour and dash.
PALETTES = {
    "light": dict(paper="#ffffff", ink="#000000", grey="#5f5f5f", grid="#e5e5e5", veil="rgba(255,255,255,0.8)",
                  rho="#CC79A7", sigma_max="#5f5f5f", cell_path="#A87500",
                  gates=("#A87500", "#CC79A7", "#5f5f5f", "#000000")),
    "dark": dict(paper="#0e1117", ink="#f2f2f2", grey="#a8a8a8", grid="#2e3440", veil="rgba(14,17,23,0.8)",
                 rho="#CC79A7", sigma_max="#a8a8a8", cell_path="#E69F00",
                 gates=("#56B4E9", "#CC79A7", "#a8a8a8", "#E69F00")),
}
THEMES = tuple(PALETTES)
DASHES = {"lyapunov": "dash", "rho": "dot", "sigma_max": "dashdot", "cell_path": "longdash"}
SAME_LOOK = {"update_path": "cell_path"}  # the GRU's update-gate product means what the LSTM's forget-gate product does
BLOCKS = {"rnn": ("W_hh",), "lstm": ("W_hi", "W_hf", "W_hg", "W_ho"), "gru": ("W_hr", "W_hz", "W_hn")}  # PyTorch order
GATE_NAMES = ("input i", "forget f", "candidate g (tanh, not a gate)", "output o")
BR = "<br>"  # a legend entry's second line: what a curve is, then how far it is from the measurement
MAX_HEATMAP_COLUMNS = 300
FONT = "Open Sans, Liberation Sans, Arial, sans-serif"


@dataclass(frozen=True)
class Style:
    lecture: bool = False  # projector mode: bigger fonts, thicker lines
    theme: str = "light"  # "light" | "dark" (for dark rooms)

    def __post_init__(self):
        if self.theme not in PALETTES:
            raise ValueError(f"theme {self.theme!r} is not one of {', '.join(THEMES)}")

    @property
    def font(self) -> int:
        return 18 if self.lecture else 14

    @property
    def line(self) -> float:
        return 3.5 if self.lecture else 2.2

    @property
    def size(self) -> tuple[int, int]:
        """16:9 everywhere: on screen the dashboard scales it to fit the window, exports keep it."""
        return (1280, 720) if self.lecture else (1200, 675)

    def __getattr__(self, role: str):  # style.ink, style.paper, style.gates, ...: the theme's colour for that role
        try:
            return PALETTES[object.__getattribute__(self, "theme")][role]
        except KeyError:
            raise AttributeError(role) from None

    def theory(self, kind: str) -> tuple[str, str]:
        """(colour, dash) of a theory curve: the prediction in the ink, each approximation in its own colour."""
        kind = SAME_LOOK.get(kind, kind)
        return (self.ink if kind == "lyapunov" else getattr(self, kind)), DASHES[kind]


def _cells(records: dict) -> list[str]:
    return [c for c in CELLS if records.get(c) is not None]


def _template(theme: str) -> go.layout.Template:
    """The theme as a plotly template, built once per theme: colours, grid and fonts in one place."""
    c = PALETTES[theme]
    t = go.layout.Template(pio.templates["plotly_white" if theme == "light" else "plotly_dark"])
    axis = dict(gridcolor=c["grid"], zerolinecolor=c["grid"], linecolor=c["grey"], tickcolor=c["grey"])
    t.layout.update(paper_bgcolor=c["paper"], plot_bgcolor=c["paper"], font=dict(family=FONT, color=c["ink"]),
                    xaxis=axis, yaxis=axis, legend=dict(bgcolor="rgba(0,0,0,0)"), title=dict(x=0.01))
    return t


TEMPLATES = {theme: _template(theme) for theme in THEMES}


def _use_template(fig: go.Figure, theme: str) -> go.Figure:
    """fig with the theme's template, set as plotly sets its default template: without validating it again (it was
    validated when built, and validating its hundreds of properties took ~17 ms of every figure)."""
    lay = fig.layout
    lay._validate = False
    try:
        lay.template = TEMPLATES[theme]
    finally:
        lay._validate = fig._validate
    return fig


def _layout(fig: go.Figure, style: Style, legend_y: float = -0.2) -> go.Figure:
    w, h = style.size
    _use_template(fig, style.theme)
    # legends a step smaller than the axes: they carry two lines per approximation and must fit under each plot
    fig.update_layout(width=w, height=h, font=dict(size=style.font),
                      legend=dict(orientation="v", yanchor="bottom", y=0, yref="container", x=0,
                                  font_size=round(style.font * 0.8)),
                      margin=dict(l=70, r=30, t=90, b=60))
    fig.update_annotations(font_size=style.font)
    return fig


# ---- figures as plotly's JSON -------------------------------------------------------------------------------------
# The probe panels assemble their figure as the dict plotly.js reads (a Spec) and validate it once, at the end: plotly's
# incremental API (make_subplots, add_trace(row=, col=), update_xaxes, ...) validates every property at every call,
# which made a dashboard redraw spend about 0.4 s building its figures; one validation of the finished dict costs a
# few ms. The figures are the same: tests/test_panels_speed.py compares each with the incremental reference.

_GRIDS: dict[str, tuple[dict, dict]] = {}  # make_subplots' layout and axis names per grid shape (its titles apart)


def _grid(titles: list[str], **kw) -> tuple[dict, dict]:
    """make_subplots(subplot_titles=titles, **kw) as (layout dict without template, {(row, col, secondary_y): (xaxis
    name, yaxis name)}). Computed once per shape: the titles are put in afterwards (their positions do not depend on
    their text; an empty title gets no annotation, as in make_subplots)."""
    key = json.dumps([[bool(t) for t in titles], kw], sort_keys=True)
    if key not in _GRIDS:
        holders = [f"\x00{i}" if t else "" for i, t in enumerate(titles)]
        fig = make_subplots(subplot_titles=holders, **kw)
        layout = fig.to_dict()["layout"]
        layout.pop("template", None)
        refs = {}
        for r in range(1, kw.get("rows", 1) + 1):
            for c in range(1, kw.get("cols", 1) + 1):
                for secondary in (False, True):
                    sub = fig.get_subplot(r, c, secondary_y=secondary)  # None where spanned or not enabled
                    if sub is not None:
                        refs[(r, c, secondary)] = (sub.xaxis.plotly_name, sub.yaxis.plotly_name)
        _GRIDS[key] = (layout, refs)
    layout, refs = _GRIDS[key]
    layout = copy.deepcopy(layout)
    for a in layout.get("annotations", ()):
        if a.get("text", "").startswith("\x00"):
            a["text"] = titles[int(a["text"][1:])]
    return layout, refs


def _merge(into: dict, update: dict) -> dict:
    """Nested dicts merged key by key, anything else replaced: what plotly's update does to a figure's dict."""
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = copy.deepcopy(v) if isinstance(v, dict) else v
    return into


class Spec:
    """A figure under construction as plain dicts (traces, layout), validated once by `figure`. Subplots are addressed
    as in plotly's make_subplots (row, col, secondary_y); a figure without a grid has one plot, addressed by None."""

    def __init__(self, style: Style, titles: list[str] | None = None, **grid):
        self.style = style
        self.data: list[dict] = []
        if titles is None and not grid:
            self.layout, self.refs = {}, {}
        else:
            self.layout, self.refs = _grid(titles or [], **grid)
        w, h = style.size
        # legends a step smaller than the axes: they carry two lines per approximation and must fit under each plot
        _merge(self.layout, dict(width=w, height=h, font=dict(size=style.font),
                                 legend=dict(orientation="v", yanchor="bottom", y=0, yref="container", x=0,
                                             font=dict(size=round(style.font * 0.8))),
                                 margin=dict(l=70, r=30, t=90, b=60)))
        for a in self.layout.get("annotations", ()):
            _merge(a, {"font": {"size": style.font}})

    def ref(self, col: int | None, row: int = 1, secondary_y: bool = False) -> tuple[str, str] | None:
        return None if col is None else self.refs[(row, col, secondary_y)]

    def add(self, trace: dict, col: int | None = None, row: int = 1, secondary_y: bool = False) -> None:
        ref = self.ref(col, row, secondary_y)
        if ref is not None:
            trace = {**trace, "xaxis": "x" + ref[0][5:], "yaxis": "y" + ref[1][5:]}
        self.data.append(trace)

    def axes(self, letter: str, col: int | None = None, row: int = 1, secondary_y: bool = False, **props) -> None:
        """Update one subplot's x or y axis, or (col None, on a grid) every axis of that letter, as update_xaxes."""
        props = _props(props)
        if col is not None:
            names = [self.ref(col, row, secondary_y)[0 if letter == "x" else 1]]
        elif self.refs:
            names = [k for k in self.layout if k.startswith(letter + "axis")]
        else:
            names = [letter + "axis"]
        for n in names:
            _merge(self.layout.setdefault(n, {}), props)

    def update(self, **props) -> None:
        _merge(self.layout, _props(props))

    def shape(self, **props) -> None:
        self.layout.setdefault("shapes", []).append(_props(props))

    def annotate(self, **props) -> None:
        self.layout.setdefault("annotations", []).append(_props(props))

    def figure(self) -> go.Figure:
        return _use_template(go.Figure({"data": self.data, "layout": self.layout}), self.style.theme)


def _props(props: dict) -> dict:
    """plotly's magic underscores (title_text -> {"title": {"text": ...}}) spelled out, None values dropped."""
    out: dict = {}
    for k, v in props.items():
        if v is None:
            continue
        *path, last = k.split("_")  # plotly's attribute names have no underscores of their own
        d = out
        for part in path:
            d = d.setdefault(part, {})
        d[last] = _props(v) if isinstance(v, dict) else v
    return out


def _frame(records: dict, style: Style, titles=None, legend_y: float = -0.2, **kw) -> tuple[go.Figure, list[str]]:
    cells = _cells(records)
    titles = titles or [_cell_title(records[c]) for c in cells]
    fig = make_subplots(rows=1, cols=max(len(cells), 1), subplot_titles=titles, horizontal_spacing=0.08, **kw)
    _layout(fig, style, legend_y)
    if any(BR in t for t in titles):  # a second line (truncated BPTT's cut) needs room under the figure's title
        fig.update_layout(margin_t=90 + round(1.4 * style.font))
    return fig, cells


def _spec_frame(records: dict, style: Style, titles=None, **kw) -> tuple[Spec, list[str]]:
    """_frame as a Spec: one column of subplots per cell, titled by the cell's settings."""
    cells = _cells(records)
    titles = titles or [_cell_title(records[c]) for c in cells]
    fig = Spec(style, titles, rows=1, cols=max(len(cells), 1), horizontal_spacing=0.08, **kw)
    if any(BR in t for t in titles):  # a second line (truncated BPTT's cut) needs room under the figure's title
        fig.update(margin_t=90 + round(1.4 * style.font))
    return fig, cells


def decade_ticks(fig: go.Figure) -> go.Figure:
    """On a log axis spanning two to eight decades, a label at each power of ten only: plotly's default also labels
    the 2s and 5s between them there, tiny digits that a projector turns into noise."""
    lay = fig.layout
    for name in [k for k in lay if k.startswith("yaxis")]:
        axis = lay[name]
        if axis.type != "log" or axis.dtick is not None or axis.matches:  # a shared axis follows its leader
            continue
        ref = "y" + name[5:]
        group = {ref} | {"y" + k[5:] for k in lay if k.startswith("yaxis") and lay[k].matches == ref}
        ys = [np.asarray(tr.y, dtype=float) for tr in fig.data if (tr.yaxis or "y") in group and tr.y is not None
              and getattr(tr, "type", "scatter") in ("scatter", "scattergl")]
        v = np.concatenate([y[np.isfinite(y) & (y > 0)] for y in ys] + [np.zeros(0)])
        span = (axis.range[1] - axis.range[0]) if axis.range else (np.log10(v.max()) - np.log10(v.min()) if len(v) else 0)
        if 2 <= span <= 8:  # wider spans already get labels every few decades and nothing between
            for k in [name] + [k for k in lay if k.startswith("yaxis") and lay[k].matches == ref]:
                lay[k].dtick = 1
    return fig


def legends_by_column(fig: go.Figure) -> go.Figure:
    """One legend under each column of subplots, holding that column's traces: each cell's curves are read under its
    own plot, and a long legend grows down instead of covering the other cell's plot."""
    lay = fig.layout
    starts = sorted({round((lay[k].domain or [0, 1])[0], 3) for k in lay if k.startswith("xaxis")} or {0.0})
    if len(starts) < 2:
        return fig
    base = lay.legend.to_plotly_json()
    if len(starts) >= 3 and base.get("font", {}).get("size"):  # three cells side by side: narrower legends, titles
        base["font"] = {**base["font"], "size": round(base["font"]["size"] * 0.85)}
        fig.update_annotations(font_size=round((lay.font.size or 14) * 0.85))
    domains = {k: round((lay[k].domain or [0, 1])[0], 3) for k in lay if k.startswith("xaxis")}
    for tr in fig.data:
        i = starts.index(domains["xaxis" + (tr.xaxis or "x")[1:]])
        tr.legend = "legend" if i == 0 else f"legend{i + 1}"
    # one update (each one validates what it is given): the legends, and showlegend, as plotly.js hides a lone first
    # legend entry by default while each column has its own
    fig.update_layout({**{"legend" if i == 0 else f"legend{i + 1}": {**base, "x": x0, "xanchor": "left"}
                          for i, x0 in enumerate(starts)}, "showlegend": True})
    return fig


def _cell_title(rec) -> str:
    """The cell and the settings that decide its gradient, stated on the figure (no hidden defaults)."""
    cfg = rec.config
    name = f"<b style='color:{COLORS[rec.cell]}'>{NAMES[rec.cell]}</b>"
    if cfg is None:
        return name + (f" ({rec.nonlinearity})" if rec.cell == "rnn" else "")
    init = f"{cfg.init} init" + (f" x{cfg.init_scale:g}" if cfg.init_scale != 1 else "")
    if rec.cell in ("lstm", "gru"):  # the GRU's update gate z takes the forget bias (gradlab.init)
        gate = "b_f" if rec.cell == "lstm" else "b_z"
        bf = f"chrono {gate}" if cfg.init == "chrono" else f"{gate} = {cfg.forget_bias:g}"
        return f"{name}: {init}, {bf}{_cut(cfg)}"
    return f"{name} ({rec.nonlinearity}): {init}{_cut(cfg)}"


def _cut(cfg) -> str:
    """Truncated BPTT in a subplot title, only where it cuts something (k >= T cuts nothing)."""
    k = getattr(cfg, "truncate", 0)
    return f"<br>cut every {k} steps" if 0 < k < cfg.seq_len else ""


def _log_range(*arrays) -> list[float]:
    v = np.concatenate([np.ravel(a) for a in arrays if a is not None] + [np.zeros(0)])
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return [-1, 1]
    lo, hi = np.log10(v.min()), np.log10(v.max())
    pad = max(0.5, 0.05 * (hi - lo))
    return [lo - pad, hi + pad]


def _positive(y) -> np.ndarray:
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(y) & (y > 0), y, np.nan)


def _line(fig: Spec, x, y, name, color, style, col=1, dash=None, width=1.0, **kw):
    fig.add(dict(type="scatter", x=x, y=_positive(y), mode="lines", name=name,
                 line=dict(color=color, width=style.line * width, dash=dash), **kw), col)


def _edge_markers(fig, t, g, yr, color, col, style, what, cut=None):
    """Zeros at the bottom edge and infs/nans (overflow) at the top, never silently dropped. A zero before `cut`
    (0-based: the first step a truncated backward pass reaches) was cut, not underflowed, and is labelled so."""
    before = np.arange(len(g)) < (cut or 0)
    for mask, y, symbol, label in (((g == 0) & before, 10 ** yr[0], "line-ew", "exactly 0: cut by truncated BPTT"),
                                   ((g == 0) & ~before, 10 ** yr[0], "triangle-down", "exactly 0: underflowed"),
                                   (~np.isfinite(g), 10 ** yr[1], "triangle-up", "inf/nan: overflowed")):
        if mask.any():
            fig.add(dict(type="scatter", x=t[mask], y=np.full(mask.sum(), y), mode="markers",
                         marker=dict(symbol=symbol, size=6 + style.line * 2, color=color, line=dict(color=color, width=2)),
                         name=f"{what}: {mask.sum()} steps {label}", hovertemplate=f"t=%{{x}}: {label}"), col)


def _times(x: float) -> str:
    """A ratio as a legend prints it: two decimals near 1, a power of ten far from it."""
    if x is None or not np.isfinite(x) or x <= 0:
        return "not comparable:"
    return f"{x:.2f}" if 0.1 <= x <= 10 else f"{x:.0e}".replace("e+0", "e+").replace("e-0", "e-")


def off_label(x: float, step: int = 1) -> str:
    """How far a curve is from the measurement at `step` (the first step the loss reaches: 1 unless truncated BPTT
    cut it), in words: '1.02x measured at step 1'."""
    v = _times(x)
    return f"not comparable at step {step}" if v.startswith("not") else f"{v}x measured at step {step}"


def theory_names(p, sm: dict) -> dict[str, str]:
    """The legend of every theory curve: what it is, its parameter, and its measured error. Lines of at most about
    fifty characters, so that each cell's legend fits under its own plot on a 16:9 projector."""
    off = sm["off_at_1"]
    s1 = sm.get("first", 0) + 1  # where the comparison is made: step 1, or the first step a truncation leaves
    names = {}
    if len(sm["lyapunov"]):
        err = sm["lyapunov"][0] / sm["mean_rate"] - 1 if sm["mean_rate"] > 0 else np.nan
        on = "||dL/dc_t||" if sm["rate_on"] == "grad_c_norm" else "||dL/dh_t||"
        k, B = sm["lyapunov_sequences"], p.h.shape[1]
        at_1 = _times(off.get("theory_lyapunov", np.nan))
        measured = (f"from {k} of {B} sequences: {err:+.1%} vs the measured{BR}"
                    f"{sm['mean_rate']:.3g}/step on {on}; {at_1}x it at step {s1}" if np.isfinite(sm["mean_rate"])
                    else f"from {k} of {B} sequences; the measured rate{BR}on {on} is not measurable (it reaches 0)")
        names["theory_lyapunov"] = f"prediction: top Lyapunov factor {sm['lyapunov'][0]:.3g}/step{BR}{measured}"
    if p.cell == "rnn":
        sp = analysis.spectrum(p.params["weight_hh_l0"])
        names["theory_rho"] = (f"rho^(T-t), rho = {sp['rho'][0]:.3f}: the long-run rate if{BR}"
                               f"the RNN were linear ({off_label(off.get('theory_rho', np.nan), s1)})")
        names["theory_sigma_max"] = (f"sigma_max^(T-t), sigma_max = {sp['sigma_max'][0]:.3f}:{BR}"
                                     f"Pascanu's upper bound ({off_label(off.get('theory_sigma_max', np.nan), s1)})")
    elif p.cell == "gru":  # h_t = z_t h_(t-1) + (1 - z_t) n_t: the update gate alone carries h straight back
        names["theory_update_path"] = ("update-gate product (mean over batch and units)" + BR
                                       + "x ||dL/dh_T||, an estimate of the direct path:" + BR
                                       + f"at step {s1} {_times(off.get('theory_update_path', np.nan))}x the total")
    else:
        vs_direct = off.get("theory_cell_path_direct")
        total = f"{_times(off.get('theory_cell_path', np.nan))}x the total"
        names["theory_cell_path"] = ("forget-gate product (mean over batch and units)" + BR
                                     + "x ||dL/dc_T||, an estimate of the direct path:" + BR + f"at step {s1} "
                                     + (f"{_times(vs_direct)}x the direct path, " if vs_direct is not None else "")
                                     + total)
    return names


# ---- probe panels --------------------------------------------------------------------------------------------------

def grad_vs_time(records: dict, style: Style = Style()) -> go.Figure:
    """||dL/dh_t|| over t (log axis) per cell, the Lyapunov prediction and the labelled approximations."""
    probes = {c: r.latest for c, r in records.items() if r is not None}
    # taller on screen: its legend says what every curve is and how far it misses, two lines per approximation
    fig, cells = _spec_frame(probes, style, shared_yaxes=True)
    yr = _log_range(*[getattr(probes[c], k) for c in cells for k in ("grad_h_norm", "grad_c_norm", "grad_h_norm_last")])
    for col, c in enumerate(cells, 1):
        p = probes[c]
        sm = analysis.summary(p)
        g = p.grad_h_norm
        t = np.arange(1, len(g) + 1)
        _line(fig, t, g, f"{NAMES[c]}: ||dL/dh_t|| (measured)", COLORS[c], style, col)
        _edge_markers(fig, t[:sm["end"] + 1], g[:sm["end"] + 1], yr, COLORS[c], col, style, NAMES[c], sm["cut_at"])
        if sm["cut_at"]:  # truncated BPTT: nothing of the loss reaches the steps before its chunk
            x, y = (a[0] + a[5:] for a in fig.ref(col))  # ("xaxis2", "yaxis2") -> "x2", "y2"
            fig.shape(type="rect", x0=0.5, x1=sm["cut_at"] + 0.5, xref=x, y0=0, y1=1, yref=f"{y} domain",
                      fillcolor=style.grey, opacity=0.12, line_width=0)
            fig.shape(type="line", x0=sm["cut_at"] + 0.5, x1=sm["cut_at"] + 0.5, xref=x, y0=0, y1=1, yref=f"{y} domain",
                      line=dict(color=style.grey, dash="dot", width=1.5))
            fig.annotate(x=(sm["cut_at"] + 1) / 2, y=1, yref="y domain", xref=f"x{col if col > 1 else ''}",
                               text=("cut: 0 from the last<br>step's loss (truncated<br>BPTT, every "
                                     if sm.get("last_only") else "cut: exactly 0<br>(truncated BPTT,<br>every ")
                               + f"{p.config.truncate} steps)",
                               showarrow=False, yanchor="top", font=dict(color=style.grey))
        if sm.get("last_only"):
            _line(fig, t, p.grad_h_norm_last, f"{NAMES[c]}: from the last step's loss alone (measured)", COLORS[c],
                  style, col, dash="dash")
        if p.grad_c_norm is not None:
            _line(fig, t, p.grad_c_norm, "LSTM: ||dL/dc_t|| (cell state, measured)", COLORS[c], style, col, dash="dot")
        for k, name in theory_names(p, sm).items():
            if k in sm["curves"]:
                look = style.theory(k.removeprefix("theory_"))
                _line(fig, t, sm["curves"][k], name, look[0], style, col, dash=look[1], width=0.7)
        fig.axes("x", col, title_text="time step t")
    fig.axes("y", type="log", range=yr, exponentformat="power")
    fig.axes("y", 1, title_text="gradient norm")
    return fig.figure()


def lyapunov(records: dict, style: Style = Style()) -> go.Figure:
    """Every direction's per-step factor (the finite-time Lyapunov spectrum), largest first, with the factor 1 and
    the factor that keeps 1e-3 of the gradient over the sequence: how many directions survive T steps."""
    probes = {c: r.latest for c, r in records.items() if r is not None}
    cells = _cells(probes)
    fig = Spec(style)
    factors = {c: analysis.summary(probes[c])["lyapunov"] for c in cells}
    T = max((probes[c].seq_len for c in cells), default=2)
    keep = analysis.survival_factor(T)
    for c in cells:
        f = factors[c]
        state = "(h_t, c_t)" if c == "lstm" else "h_t"  # the GRU's state is h alone, as the RNN's
        zeros = int(np.sum(f == 0))  # a factor exactly 0 has no place on a log axis: said, not silently dropped
        hidden = f", {zeros} exactly 0 (not drawn)" if zeros else ""
        fig.add(dict(type="scatter", x=np.arange(1, len(f) + 1) / max(len(f), 1), y=_positive(f), mode="lines+markers",
                     name=f"{NAMES[c]}, state {state} ({len(f)} directions{hidden}): top {f[0]:.3g}, "
                          f"median {np.median(f):.2g} per step", line=dict(color=COLORS[c], width=style.line),
                     marker=dict(size=3 + style.line), customdata=np.arange(1, len(f) + 1),
                     hovertemplate="direction %{customdata}: %{y:.4f} per step<extra></extra>"))
    for y, line in ((1.0, dict(color=style.ink, width=1)), (keep, dict(color=style.grey, dash="dash", width=1.5))):
        fig.shape(type="line", x0=0, x1=1, xref="x domain", y0=y, y1=y, yref="y", line=line)  # as add_hline
    fig.annotate(x=1, xref="paper", xanchor="right", yanchor="bottom", y=np.log10(keep), showarrow=False,
                 text=f"keeps 1e-3 over {T} steps: {keep:.3f} per step", font=dict(color=style.grey),
                 bgcolor=style.veil)
    fig.axes("x", title_text="direction (fraction of the state, largest factor first)", range=[0, 1.02])
    fig.axes("y", type="log", exponentformat="power", title_text="gradient factor per step")
    return fig.figure()


def cell_paths(records: dict, style: Style = Style()) -> go.Figure:
    """LSTM: ||dL/dc_t|| split, as measured, into the direct cell path (back through the forget gates only) and the
    rest (back through h_{t-1} into the gates), with the forget-gate product drawn over the direct path."""
    rec = records.get("lstm")
    fig, _ = _spec_frame({"lstm": rec} if rec is not None else {}, style)
    if rec is None:
        fig.annotate(text="No LSTM record to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig.figure()
    p = rec.latest
    t = np.arange(1, p.seq_len + 1)
    # the same looks as in grad_vs_time: measured in the LSTM's colour (dotted: the cell state), the forget-gate
    # product in the cell-path approximation's colour and dash
    direct, rest = getattr(p, "grad_c_direct_norm", None), getattr(p, "grad_c_rest_norm", None)
    if direct is not None:
        _line(fig, t, direct, "direct cell path: back through the forget gates only (measured)", COLORS["lstm"],
              style, width=0.6)
        _line(fig, t, rest, "the rest: paths through the hidden state at least once (measured)", style.grey, style)
    sm = analysis.summary(p)
    if "theory_cell_path" in sm["curves"]:
        color, dash = style.theory("cell_path")
        _line(fig, t, sm["curves"]["theory_cell_path"], "product of forget gates (mean over batch and units) x ||dL/dc_T||",
              color, style, dash=dash)
    # the total last, on top: where one part dominates it runs along that part and would be hidden under it
    _line(fig, t, p.grad_c_norm, "||dL/dc_t|| (measured, total)", COLORS["lstm"], style, dash="dot", legendrank=1)
    fig.axes("x", title_text="time step t")
    fig.axes("y", type="log", exponentformat="power", title_text="cell-state gradient norm")
    return fig.figure()


def grad_x(records: dict, style: Style = Style()) -> go.Figure:
    """||dL/dx_t|| over t per cell, with grey bars counting the sequences whose information sits at step t."""
    probes = {c: r.latest for c, r in records.items() if r is not None}
    cells = _cells(probes)
    fig = Spec(style, [_cell_title(probes[c]) for c in cells], rows=1, cols=max(len(cells), 1), horizontal_spacing=0.1,
               specs=[[{"secondary_y": True}] * max(len(cells), 1)])
    yr = _log_range(*[getattr(probes[c], "grad_x_norm", None) for c in cells])
    for col, c in enumerate(cells, 1):
        p = probes[c]
        g = getattr(p, "grad_x_norm", None)
        t = np.arange(1, p.seq_len + 1)
        task = p.config.task if p.config else None
        if task is not None:
            count = information(task, p.x).sum(axis=1)
            fig.add(dict(type="bar", x=t, y=count, name="sequences whose information sits at step t (right axis)",
                         marker=dict(color="rgba(107,107,107,0.35)"), showlegend=col == 1,
                         hovertemplate="t=%{x}: %{y} sequences<extra></extra>"), col, secondary_y=True)
            # the bars fill the bottom quarter: a reference for where to look, under the curve
            fig.axes("y", col, secondary_y=True, title_text="sequences" if col == len(cells) else None,
                     showgrid=False, tickformat="d", range=[0, 4 * max(int(count.max()), 1)],
                     dtick=max(1, int(count.max())))
        if g is None:
            continue
        fig.add(dict(type="scatter", x=t, y=_positive(g), mode="lines", name=f"{NAMES[c]}: ||dL/dx_t|| (measured)",
                     line=dict(color=COLORS[c], width=style.line)), col)
        fig.axes("y", col, type="log", range=yr, exponentformat="power")
        fig.axes("x", col, title_text="time step t")
    fig.axes("y", 1, title_text="gradient reaching the input")
    return fig.figure()


def whh_share(records: dict, style: Style = Style()) -> go.Figure:
    """Each step's share of the sum of ||step t's term of dL/dW_hh||: which steps the weight update hears."""
    probes = {c: r.latest for c, r in records.items() if r is not None}
    fig, cells = _spec_frame(probes, style, shared_yaxes=True)
    for col, c in enumerate(cells, 1):
        p = probes[c]
        w = np.asarray(p.grad_whh_contrib_norm, dtype=np.float64)
        end = analysis.summary(p)["end"]
        with np.errstate(all="ignore"):
            share = w / np.nansum(np.where(np.isfinite(w), w, 0.0))
        side, k = analysis.update_window(w, end)
        t = np.arange(1, len(w) + 1)
        where = f"the {k} steps up to the loss" if side == "last" else f"the first {k} steps"
        _line(fig, t, share, f"{NAMES[c]}: {where}{BR}carry 99% of the terms' summed norm", COLORS[c], style, col)
        fig.axes("x", col, title_text="time step t")
    fig.axes("y", type="log", exponentformat="power")
    fig.axes("y", 1, title_text="share of the update's terms")
    return fig.figure()


# ---- training panels -------------------------------------------------------------------------------------------

def grad_over_training(runs: dict, style: Style = Style()) -> go.Figure:
    """Heatmap of log10 ||dL/dh_t|| (training step x time step) per cell, one shared colour scale."""
    fig, cells = _frame(runs, style, shared_yaxes=True)
    with np.errstate(all="ignore"):
        logs = {c: np.log10(runs[c].grad_h_norm) for c in cells}
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()] + [np.zeros(0)])
    lo, hi = (finite.min(), finite.max()) if len(finite) else (-1, 1)
    for col, c in enumerate(cells, 1):
        r = runs[c]
        z = np.where(np.isfinite(logs[c]), logs[c], np.nan)
        fig.add_trace(go.Heatmap(z=z, x=np.arange(1, z.shape[1] + 1), y=r.record_steps, zmin=lo, zmax=hi,
                                 colorscale="Viridis", showscale=col == len(cells),
                                 colorbar=dict(title="log10 ||dL/dh_t||"),
                                 hovertemplate="training step %{y}, t=%{x}: 10^%{z:.1f}<extra></extra>"),
                      row=1, col=col)
        fig.update_xaxes(title_text="time step t", row=1, col=col)
    fig.update_yaxes(title_text="training step", row=1, col=1)
    return fig


def _over_steps(runs: dict, style: Style, y_title: str) -> tuple[go.Figure, list[str]]:
    fig = _layout(go.Figure(), style)
    fig.update_layout(xaxis_title="training step", yaxis_title=y_title)
    return fig, _cells(runs)


def learning(runs: dict, style: Style = Style()) -> go.Figure:
    """Training loss of the cells on one axis, the task's constant-predictor baselines as labelled lines."""
    fig, cells = _over_steps(runs, style, "loss")
    for c in cells:
        loss = runs[c].loss
        x = np.arange(1, len(loss) + 1)
        fig.add_trace(go.Scatter(x=x, y=loss, mode="lines", name=f"{NAMES[c]} (each step)", opacity=0.35,
                                 line=dict(color=COLORS[c], width=style.line * 0.4)))
        fig.add_trace(go.Scatter(x=x, y=analysis.running_mean(loss), mode="lines", name=f"{NAMES[c]} (running mean)",
                                 line=dict(color=COLORS[c], width=style.line)))
        if runs[c].stopped:
            fig.add_vline(x=max(len(loss), 1), line=dict(color=COLORS[c], dash="dot"))
            fig.add_annotation(x=max(len(loss), 1), y=1, yref="paper", showarrow=False, xanchor="right",
                               text=f"{NAMES[c]} stopped: {runs[c].stopped['reason']}", font=dict(color=COLORS[c]))
    cfg = runs[cells[0]].config if cells else None
    for b in (baselines(cfg.task, cfg.seq_len) if cfg else ()):
        _reference_line(fig, b.loss, f"{b.name}: {b.loss:.3g}", style)
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def _reference_line(fig, y: float, text: str, style: Style) -> None:
    """A labelled horizontal line on a log axis (an annotation's y there is log10 of the value, placed by hand)."""
    fig.add_hline(y=y, line=dict(color=style.ink, dash="dot", width=style.line * 0.6))
    fig.add_annotation(x=1, xref="paper", xanchor="right", yanchor="bottom", y=np.log10(y), showarrow=False,
                       text=text, font=dict(color=style.ink), bgcolor=style.veil)


def clipping(runs: dict, style: Style = Style()) -> go.Figure:
    """The global gradient norm before clipping at every training step, the threshold, and how often it cut."""
    fig, cells = _over_steps(runs, style, "gradient norm before clipping")
    for c in cells:
        r = runs[c]
        x = np.arange(1, r.steps_done + 1)
        share = float(np.mean(r.clipped)) if r.steps_done else 0.0
        fig.add_trace(go.Scatter(x=x, y=_positive(r.grad_norm_pre), mode="lines",
                                 name=f"{NAMES[c]}: clipped at {share:.0%} of {r.steps_done} steps",
                                 line=dict(color=COLORS[c], width=style.line * 0.6)))
    cfg = runs[cells[0]].config if cells else None
    if cfg is not None and cfg.clip_mode == "norm":
        _reference_line(fig, cfg.clip, f"clipping threshold {cfg.clip:g}", style)
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


# ---- structure panels ------------------------------------------------------------------------------------------

def gates(records: dict, style: Style = Style(), sequence: int = 0) -> go.Figure:
    """LSTM: heatmaps (unit x time) of the input, forget and output gates for one probe sequence, the mean gate
    values over time, and the forget-gate product along the cell path."""
    rec = records.get("lstm")
    fig = Spec(style, ["input gate i", "forget gate f", "output gate o", "mean gate value over time",
                       "prod of f from t+1 to T", ""],
               rows=2, cols=3, row_heights=[0.5, 0.5], vertical_spacing=0.24, horizontal_spacing=0.07,
               specs=[[{}, {}, {}], [{"colspan": 2}, None, {}]])
    fig.update(margin=dict(l=70, r=30, t=90, b=60))
    G = rec.latest.gates if rec is not None else None
    if G is None:
        fig.annotate(text="No LSTM record to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig.figure()
    T, _, G4 = G.shape
    H = G4 // 4
    t = np.arange(1, T + 1)
    seq = G[:, min(sequence, G.shape[1] - 1)]
    stride = -(-T // MAX_HEATMAP_COLUMNS)  # a screen shows ~300 columns; more only slows the browser
    cols = np.arange(T - 1, -1, -stride)[::-1]
    if stride > 1:
        fig.annotate(text=f"heatmaps show one step in {stride} of {T}", showarrow=False, x=1, y=1.08,
                     xref="paper", yref="paper", xanchor="right", font=dict(color=style.grey))
    for col, k in enumerate((0, 1, 3), 1):
        fig.add(dict(type="heatmap", z=seq[cols, k * H:(k + 1) * H].T, x=t[cols], zmin=0, zmax=1, colorscale="Viridis",
                     showscale=col == 3, colorbar=dict(title=dict(text="gate"), len=0.5, y=0.78),
                     hovertemplate="t=%{x}, unit %{y}: %{z:.3f}<extra></extra>"), col)
        fig.axes("x", col, title_text="time step t")
    fig.axes("y", 1, title_text="unit")
    means = G.reshape(T, G.shape[1], 4, H).mean(axis=(1, 3))
    for k, name in enumerate(GATE_NAMES):
        fig.add(dict(type="scatter", x=t, y=means[:, k], mode="lines", name=name,
                     line=dict(width=style.line, color=style.gates[k])), 1, row=2)
    fig.add(dict(type="scatter", x=t, y=analysis.forget_product(G), mode="lines",
                 name="prod f (mean over batch and units)",
                 line=dict(width=style.line, color=style.gates[1], dash="longdash")), 3, row=2)
    fig.axes("y", 3, row=2, type="log", exponentformat="power")
    fig.axes("x", 1, row=2, title_text="time step t")
    fig.axes("x", 3, row=2, title_text="time step t")
    return fig.figure()


def spectrum(records: dict, style: Style = Style()) -> go.Figure:
    """Eigenvalues of W_hh (per gate block for the LSTM) in the complex plane with the unit circle, and the singular
    values beside them. These describe the matrix alone: the gradient's rate is the Lyapunov panel's."""
    probes = {c: r.latest for c, r in records.items() if r is not None}
    cells = _cells(probes)
    titles = [f"{NAMES[c]}: eigenvalues of W_hh" for c in cells] + ["singular values"]
    fig = Spec(style, titles, rows=1, cols=len(cells) + 1, horizontal_spacing=0.08)
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    fig.add(dict(type="scatter", x=circle.real, y=circle.imag, mode="lines", name="unit circle", legendgroup="circle",
                 line=dict(color=style.grey, width=1.5), hoverinfo="skip"), 1)
    for col, c in enumerate(cells, 1):
        W = probes[c].params["weight_hh_l0"]
        sp = analysis.spectrum(W)
        if col > 1:
            fig.add(dict(type="scatter", x=circle.real, y=circle.imag, mode="lines", legendgroup="circle",
                         showlegend=False, line=dict(color=style.grey, width=1.5), hoverinfo="skip"), col)
        blocks = BLOCKS[c]
        for b, name in enumerate(blocks):
            e = sp["eigvals"][b]
            symbol = ("circle", "square", "diamond", "x")[b]
            fig.add(dict(type="scatter", x=e.real, y=e.imag, mode="markers",
                         name=f"{name}: rho {sp['rho'][b]:.3f}, sigma_max {sp['sigma_max'][b]:.3f}",
                         legendgroup=f"{c}{b}", marker=dict(color=COLORS[c], size=4 + style.line, symbol=symbol,
                                                            opacity=0.8)), col)
            s = sp["singvals"][b]
            fig.add(dict(type="scatter", x=np.arange(1, len(s) + 1), y=s, mode="lines+markers", legendgroup=f"{c}{b}",
                         showlegend=False, line=dict(color=COLORS[c], width=style.line * 0.6),
                         marker=dict(symbol=symbol)), len(cells) + 1)
        fig.axes("x", col, title_text="Re", scaleanchor=f"y{col if col > 1 else ''}")
        fig.axes("y", col, title_text="Im")
    fig.axes("x", len(cells) + 1, title_text="index (largest first)")
    fig.axes("y", len(cells) + 1, title_text="singular value")
    return fig.figure()


def unrolled(records: dict, style: Style = Style(), max_nodes: int = 60, frames: int | None = None) -> go.Figure:
    """The chain h_1 ... h_T (and c_t for the LSTM) as circles coloured by log10 of the gradient reaching them.
    Long sequences are shown at max_nodes evenly spaced steps, said on the figure. Animated by gradlab.animation: the
    backward pass reaching the nodes in `frames` steps (None: its default, 0: a still); the base is the last frame."""
    probes = {c: r.latest for c, r in records.items() if r is not None}
    cells = _cells(probes)
    rows = [(c, k) for c in cells for k in (("grad_h_norm", "grad_c_norm") if c == "lstm" else ("grad_h_norm",))]
    with np.errstate(all="ignore"):
        logs = {(c, k): np.log10(getattr(probes[c], k)) for c, k in rows if getattr(probes[c], k) is not None}
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()] + [np.zeros(0)])
    lo, hi = (finite.min(), finite.max()) if len(finite) else (-1, 1)
    T = max(len(v) for v in logs.values()) if logs else 1
    # evenly spaced nodes from step 1 to the loss step, both always shown (the backward pass ends at step 1)
    idx = np.unique(np.round(np.linspace(0, T - 1, min(T, max_nodes))).astype(int))
    fig = Spec(style)
    fig.update(margin=dict(l=160, r=30, t=90, b=60), xaxis=dict(title=dict(text="time step t"), showgrid=False),
               yaxis=dict(showgrid=False, zeroline=False, tickvals=list(range(len(rows))),
                          ticktext=[f"{NAMES[c]} {'h_t' if k == 'grad_h_norm' else 'c_t'}" for c, k in rows],
                          autorange="reversed"))
    if len(idx) < T:
        fig.annotate(text=f"{len(idx)} of {T} steps shown, evenly spaced", showarrow=False, x=1, y=1.02, xref="paper",
                     yref="paper", xanchor="right", yanchor="bottom", font=dict(color=style.grey))
    for y, (c, k) in enumerate(rows):
        v = logs.get((c, k))
        if v is None:
            continue
        t = idx + 1
        z = v[idx]
        fig.add(dict(type="scatter", x=t, y=np.full(len(t), y), mode="lines", line=dict(color=COLORS[c], width=1),
                     hoverinfo="skip", showlegend=False))
        fig.add(dict(
            type="scatter", x=t, y=np.full(len(t), y), mode="markers", showlegend=False,
            marker=dict(size=10 + 3 * style.line, color=np.where(np.isnan(z), np.nan, np.clip(z, lo, hi)),
                        cmin=lo, cmax=hi, colorscale="Viridis", line=dict(color=COLORS[c], width=2),
                        showscale=y == 0, colorbar=dict(title=dict(text="log10 gradient"))),
            customdata=10.0 ** z, hovertemplate="t=%{x}: %{customdata:.2e}<extra></extra>"))
    from .animation import FRAMES, animate  # imported here: animation builds on this module
    return animate(fig.figure(), style, FRAMES if frames is None else frames)


# ---- sweeps ------------------------------------------------------------------------------------------------------

def trainability_map(df, style: Style = Style(), value: str = "solved") -> go.Figure:
    """A saved sweep as heatmaps per cell: the first varied field across, the second (if any) up, `value` ("solved"
    fraction or "final_loss", averaged over the sweep's seeds) in colour, and for the RNN the line where rho = 1."""
    from .sweep import SCHEMA
    varied = [c for c in df.columns if c not in SCHEMA]
    x_name, y_name = varied[0], (varied[1] if len(varied) > 1 else None)
    cells = [c for c in CELLS if (df.cell == c).any()]
    seeds = df.seed.nunique()
    title = "solved fraction" if value == "solved" else "final loss"
    over = f"mean over {seeds} seeds" if seeds > 1 else "one seed per square"
    fig, _ = _frame({c: True for c in cells}, style, titles=[f"<b style='color:{COLORS[c]}'>{NAMES[c]}</b>"
                                                              for c in cells], shared_yaxes=True)
    fig.update_layout(title=dict(text=f"Trainability map: {title} ({over})"))
    keys = [x_name] + ([y_name] if y_name else [])
    for col, c in enumerate(cells, 1):
        sub = df[df.cell == c].groupby(keys).agg(v=(value, "mean"), rho=("rho", "mean")).reset_index()
        xs = sorted(sub[x_name].unique())
        ys = sorted(sub[y_name].unique()) if y_name else [0]
        grid = sub.set_index(keys)
        z = np.array([[grid.loc[(x, y) if y_name else x, "v"] for x in xs] for y in ys], dtype=float)
        rho = np.array([[grid.loc[(x, y) if y_name else x, "rho"] for x in xs] for y in ys], dtype=float)
        fig.add_trace(go.Heatmap(z=z, x=[str(x) for x in xs], y=[str(y) for y in ys], zmin=0,
                                 zmax=1 if value == "solved" else float(np.nanmax(df[value])),
                                 colorscale="Viridis", showscale=col == len(cells), colorbar=dict(title=title),
                                 hovertemplate=f"{x_name}=%{{x}}, {y_name}=%{{y}}: %{{z:.2f}}<extra></extra>"),
                      row=1, col=col)
        if c == "rnn" and y_name and np.nanmin(rho) < 1 < np.nanmax(rho):
            fig.add_trace(go.Contour(z=rho, x=[str(x) for x in xs], y=[str(y) for y in ys], showscale=False,
                                     contours=dict(start=1, end=1, size=1, coloring="lines"), hoverinfo="skip",
                                     colorscale=[[0, "#ffffff"], [1, "#ffffff"]],  # the line's colour, on any cell
                                     line=dict(width=style.line, dash="dash"), name="rho(W_hh) = 1 (white dashes)",
                                     showlegend=True), row=1, col=col)
        fig.update_xaxes(title_text=x_name, type="category", row=1, col=col)
    if y_name:
        fig.update_yaxes(title_text=y_name, type="category", row=1, col=1)
    return fig
