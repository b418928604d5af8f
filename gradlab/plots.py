"""Pure figure builders: records in, plotly figures out. No streamlit here, no maths beyond layout.

Every builder takes `{"rnn": record, "lstm": record}` (a Probe or a Run per cell; either may be missing) and a
Style, and draws the two cells side by side on matching axes, the RNN always in vermillion and the LSTM always in
blue (Okabe-Ito, colour-blind safe). The dashboard, the exports and the CLI all call these same functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import analysis

COLORS = {"rnn": "#D55E00", "lstm": "#0072B2"}
NAMES = {"rnn": "vanilla RNN", "lstm": "LSTM"}
INK, GREY = "#000000", "#6b6b6b"
THEORY = {"rho": ("#009E73", "dash"), "sigma_max": ("#CC79A7", "dot"), "pascanu": ("#E69F00", "dashdot"),
          "forget": ("#009E73", "dash")}
GATE_NAMES = ("input i", "forget f", "cell g", "output o")
MAX_HEATMAP_COLUMNS = 300

# What each panel is, and what the audience should look at (the dashboard's captions and the export stamps).
PANELS = {
    "grad_vs_time": ("Gradient reaching each time step",
                     "Read it right to left: the loss enters at the last step, and the curve shows how much of its "
                     "gradient is left at each earlier step. A straight downward slope on this log axis is "
                     "exponential vanishing; the dashed lines are what the recurrent matrix's spectrum predicts."),
    "grad_over_training": ("Gradient profile over training",
                           "Each row is the profile above, taken every few training steps. Dark columns on the left "
                           "mean early steps still receive (almost) no gradient: the network cannot learn from them."),
    "gates": ("LSTM gates",
              "The forget gate f decides how much of the cell state (and its gradient) survives each step. Near 1 "
              "(bright) the cell path carries gradient back unchanged; the product of f over time is the curve "
              "on the right."),
    "spectrum": ("Spectrum of the recurrent matrix",
                 "Eigenvalues outside the unit circle can make gradients grow, inside it they shrink. The largest "
                 "singular value sigma_max above 1/gamma is necessary for explosion (Pascanu et al. 2013)."),
    "learning": ("Learning curves",
                 "The dotted lines are what a network scores with no memory at all. A cell that never goes below "
                 "them has not learned the long-range dependency."),
    "unrolled": ("The network unrolled in time",
                 "Each circle is a hidden state h_t (and, for the LSTM, a cell state c_t), coloured by the gradient "
                 "that reaches it. This is the whiteboard picture of backpropagation through time."),
}


@dataclass(frozen=True)
class Style:
    lecture: bool = False  # projector mode: bigger fonts, thicker lines, 16:9

    @property
    def font(self) -> int:
        return 22 if self.lecture else 14

    @property
    def line(self) -> float:
        return 4.0 if self.lecture else 2.2

    @property
    def size(self) -> tuple[int, int]:
        return (1600, 900) if self.lecture else (1200, 520)


def _cells(records: dict) -> list[str]:
    return [c for c in ("rnn", "lstm") if records.get(c) is not None]


def _frame(records: dict, style: Style, title: str, **kw) -> tuple[go.Figure, list[str]]:
    cells = _cells(records)
    fig = make_subplots(rows=1, cols=max(len(cells), 1), subplot_titles=[_cell_title(records[c]) for c in cells],
                        horizontal_spacing=0.08, **kw)
    w, h = style.size
    fig.update_layout(template="plotly_white", title=dict(text=title, x=0.01), width=w, height=h,
                      font=dict(size=style.font, family="Open Sans, Liberation Sans, Arial, sans-serif"),
                      legend=dict(orientation="h", yanchor="top", y=-0.14, x=0), margin=dict(l=70, r=30, t=90, b=90))
    fig.update_annotations(font_size=style.font)
    return fig, cells


def _cell_title(rec) -> str:
    cfg = rec.config
    if rec.cell == "lstm":
        extra = f", forget bias {cfg.forget_bias:g}" if cfg and cfg.init != "chrono" else ""
        return f"<b style='color:{COLORS['lstm']}'>LSTM</b>{extra}"
    return f"<b style='color:{COLORS['rnn']}'>vanilla RNN</b> ({rec.nonlinearity})"


def _log_range(*arrays) -> list[float]:
    v = np.concatenate([np.ravel(a) for a in arrays if a is not None])
    v = v[np.isfinite(v) & (v > 0)]
    if not len(v):
        return [-1, 1]
    lo, hi = np.log10(v.min()), np.log10(v.max())
    pad = max(0.5, 0.05 * (hi - lo))
    return [lo - pad, hi + pad]


def _edge_markers(fig, t, g, yr, color, col, style, what):
    """Zeros (underflow) at the bottom edge and infs/nans (overflow) at the top, never silently dropped."""
    for mask, y, symbol, label in ((g == 0, 10 ** yr[0], "triangle-down", "exactly 0: underflowed"),
                                   (~np.isfinite(g), 10 ** yr[1], "triangle-up", "inf/nan: overflowed")):
        if mask.any():
            fig.add_trace(go.Scatter(x=t[mask], y=np.full(mask.sum(), y), mode="markers",
                                     marker=dict(symbol=symbol, size=6 + style.line * 2, color=color),
                                     name=f"{what}: {mask.sum()} steps {label}", hovertemplate=f"t=%{{x}}: {label}"),
                          row=1, col=col)


def grad_vs_time(records: dict, style: Style = Style()) -> go.Figure:
    """||dL/dh_t|| over t (log axis) per cell, with theory curves and the fitted rate vs rho in the legend."""
    fig, cells = _frame(records, style, PANELS["grad_vs_time"][0], shared_yaxes=True)
    profiles = {c: _last_profile(records[c]) for c in cells}
    yr = _log_range(*[p for pr in profiles.values() for p in pr.values()],
                    *[getattr(records[c], "grad_h_norm_last", None) for c in cells])
    for col, c in enumerate(cells, 1):
        rec, pr = records[c], profiles[c]
        g = pr["grad_h_norm"]
        t = np.arange(1, len(g) + 1)
        W = rec.params["weight_hh_l0"]
        sm = summary(rec)
        sp = analysis.spectrum(W)
        rate = "" if sm["mixed"] else (analysis.rate_label(g, W, sm["end"]) if c == "rnn"
                                       else f"measured {sm['rate']:.3f} per step")
        with np.errstate(all="ignore"):
            shown = np.where(np.isfinite(g) & (g > 0), g, np.nan)
        fig.add_trace(go.Scatter(x=t, y=shown, mode="lines", name=f"{NAMES[c]}: ||dL/dh_t||" + (f"  ({rate})" if rate else ""),
                                 line=dict(color=COLORS[c], width=style.line)), row=1, col=col)
        _edge_markers(fig, t[:sm["end"] + 1], g[:sm["end"] + 1], yr, COLORS[c], col, style, NAMES[c])
        if sm.get("last_only"):
            g_last = rec.grad_h_norm_last
            with np.errstate(all="ignore"):
                fig.add_trace(go.Scatter(x=t, y=np.where(np.isfinite(g_last) & (g_last > 0), g_last, np.nan),
                                         mode="lines", line=dict(color=COLORS[c], width=style.line, dash="dash"),
                                         name=f"{NAMES[c]}: from the last step's loss alone (measured "
                                              f"{sm['rate']:.3f} per step)"), row=1, col=col)
        gc = pr.get("grad_c_norm")
        if gc is not None:
            with np.errstate(all="ignore"):
                fig.add_trace(go.Scatter(x=t, y=np.where(np.isfinite(gc) & (gc > 0), gc, np.nan), mode="lines",
                                         name="LSTM: ||dL/dc_t|| (cell state)",
                                         line=dict(color=COLORS[c], width=style.line, dash="dot")), row=1, col=col)
        names = {"theory_rho": f"rho^(T-t), rho = {sp['rho'][0]:.3f}",
                 "theory_sigma_max": f"sigma_max^(T-t) = Pascanu's bound (gamma = 1), sigma_max = {sp['sigma_max'][0]:.3f}",
                 "theory_cell_path": "cell path: product of forget gates f"}
        for k, curve in sm["curves"].items():
            if k in names:
                _theory(fig, t, curve, names[k], THEORY[k.removeprefix("theory_").replace("cell_path", "forget")],
                        col, style)
        fig.update_xaxes(title_text="time step t", row=1, col=col)
    fig.update_yaxes(type="log", range=yr, exponentformat="power", title_text="gradient norm", row=1, col=1)
    fig.update_yaxes(type="log", range=yr, exponentformat="power")
    return fig


def summary(rec) -> dict:
    """analysis.profile_summary of a Probe, or of a Run's last record (its probe batch's mask, regenerated)."""
    from .probe import probe_batch
    pr = _last_profile(rec)
    y_mask = rec.y_mask if getattr(rec, "y_mask", None) is not None else probe_batch(rec.config).y_mask
    dtype = rec.config.dtype if rec.config else str(rec.params["weight_hh_l0"].dtype)
    return analysis.profile_summary(rec.cell, rec.nonlinearity, rec.params["weight_hh_l0"], pr["grad_h_norm"],
                                    pr["grad_c_norm"], _gates(rec), y_mask, dtype, getattr(rec, "nonfinite", None),
                                    getattr(rec, "grad_h_norm_last", None), getattr(rec, "grad_c_norm_last", None))


def _theory(fig, t, y, name, look, col, style):
    with np.errstate(all="ignore"):
        y = np.where(np.isfinite(y) & (y > 0), y, np.nan)
    fig.add_trace(go.Scatter(x=t, y=y, mode="lines", name=name, line=dict(color=look[0], dash=look[1],
                                                                            width=style.line * 0.7)), row=1, col=col)


def _last_profile(rec) -> dict:
    """A Probe's profiles, or a Run's last record."""
    out = {}
    for k in ("grad_h_norm", "grad_c_norm"):
        v = getattr(rec, k, None)
        if v is not None and v.ndim == 2:
            v = v[-1] if len(v) else None
        out[k] = v
    return out


def _gates(rec):
    g = getattr(rec, "gates", None)
    return g if g is not None else getattr(rec, "gates_last", None)


def grad_over_training(runs: dict, style: Style = Style()) -> go.Figure:
    """Heatmap of log10 ||dL/dh_t|| (training step x time step) per cell, one shared colour scale."""
    fig, cells = _frame(runs, style, PANELS["grad_over_training"][0], shared_yaxes=True)
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


def gates(records: dict, style: Style = Style(), sequence: int = 0) -> go.Figure:
    """LSTM: heatmaps (unit x time) of the input, forget and output gates for one probe sequence, the mean gate
    values over time, and the forget-gate product along the cell path."""
    rec = records.get("lstm")
    w, h = style.size
    fig = make_subplots(rows=2, cols=3, row_heights=[0.55, 0.45], vertical_spacing=0.16, horizontal_spacing=0.07,
                        subplot_titles=["input gate i", "forget gate f", "output gate o",
                                        "mean gate value over time", "cell path: prod of f from t+1 to T", ""],
                        specs=[[{}, {}, {}], [{"colspan": 2}, None, {}]])
    fig.update_layout(template="plotly_white", title=dict(text=PANELS["gates"][0], x=0.01), width=w,
                      height=h if style.lecture else int(h * 1.3), font=dict(size=style.font), margin=dict(l=70, r=30, t=90, b=60),
                      legend=dict(orientation="h", y=-0.1))
    G = _gates(rec) if rec is not None else None
    if G is None:
        fig.add_annotation(text="No LSTM record to show", showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        return fig
    T, _, G4 = G.shape
    H = G4 // 4
    t = np.arange(1, T + 1)
    seq = G[:, min(sequence, G.shape[1] - 1)]
    stride = -(-T // MAX_HEATMAP_COLUMNS)  # a screen shows ~300 columns; more only slows the browser
    cols = np.arange(T - 1, -1, -stride)[::-1]
    if stride > 1:
        fig.add_annotation(text=f"heatmaps show every {stride}th of {T} steps", showarrow=False, x=1, y=1.08,
                           xref="paper", yref="paper", xanchor="right", font=dict(color=GREY))
    for col, k in enumerate((0, 1, 3), 1):
        fig.add_trace(go.Heatmap(z=seq[cols, k * H:(k + 1) * H].T, x=t[cols], zmin=0, zmax=1, colorscale="Viridis",
                                 showscale=col == 3, colorbar=dict(title="gate", len=0.5, y=0.78),
                                 hovertemplate="t=%{x}, unit %{y}: %{z:.3f}<extra></extra>"), row=1, col=col)
        fig.update_xaxes(title_text="time step t", row=1, col=col)
    fig.update_yaxes(title_text="unit", row=1, col=1)
    means = G.reshape(T, G.shape[1], 4, H).mean(axis=(1, 3))
    for k, name in enumerate(GATE_NAMES):
        fig.add_trace(go.Scatter(x=t, y=means[:, k], mode="lines", name=name,
                                 line=dict(width=style.line, color=("#0072B2", "#009E73", "#CC79A7", "#E69F00")[k])),
                      row=2, col=1)
    fig.add_trace(go.Scatter(x=t, y=analysis.forget_product(G), mode="lines", name="prod f (mean over units)",
                             line=dict(width=style.line, color=COLORS["lstm"])), row=2, col=3)
    fig.update_yaxes(type="log", exponentformat="power", row=2, col=3)
    fig.update_xaxes(title_text="time step t", row=2, col=1)
    fig.update_xaxes(title_text="time step t", row=2, col=3)
    return fig


def spectrum(records: dict, style: Style = Style()) -> go.Figure:
    """Eigenvalues of W_hh (per gate block for the LSTM) in the complex plane with the unit circle and the 1/gamma
    circle, and the singular values beside them."""
    cells = _cells(records)
    w, h = style.size
    titles = [f"{NAMES[c]}: eigenvalues" for c in cells] + ["singular values"]
    fig = make_subplots(rows=1, cols=len(cells) + 1, subplot_titles=titles, horizontal_spacing=0.08)
    fig.update_layout(template="plotly_white", title=dict(text=PANELS["spectrum"][0], x=0.01), width=w, height=h,
                      font=dict(size=style.font), margin=dict(l=70, r=30, t=90, b=90),
                      legend=dict(orientation="h", y=-0.16))
    circle = np.exp(1j * np.linspace(0, 2 * np.pi, 200))
    for col, c in enumerate(cells, 1):
        rec = records[c]
        W = rec.params["weight_hh_l0"]
        sp = analysis.spectrum(W)
        gamma = analysis.GAMMA["sigmoid" if c == "lstm" else rec.nonlinearity]
        rings = [(1.0, "unit circle" + (" = 1/gamma (tanh, ReLU)" if gamma == 1 else ""), "solid")]
        if gamma != 1:
            rings.append((1 / gamma, f"1/gamma = {1 / gamma:g} (sigmoid gates i, f, o)", "dash"))
        for radius, name, dash in rings:
            fig.add_trace(go.Scatter(x=radius * circle.real, y=radius * circle.imag, mode="lines", name=name,
                                     line=dict(color=GREY, dash=dash, width=1.5), hoverinfo="skip"), row=1, col=col)
        blocks = ["W_hh"] if c == "rnn" else [f"W_h{n[0]}" for n in GATE_NAMES]
        for b, name in enumerate(blocks):
            e = sp["eigvals"][b]
            fig.add_trace(go.Scatter(x=e.real, y=e.imag, mode="markers", name=f"{NAMES[c]} {name} (rho = {sp['rho'][b]:.3f})",
                                     marker=dict(color=COLORS[c], size=4 + style.line,
                                                 symbol=("circle", "square", "diamond", "x")[b], opacity=0.8)),
                          row=1, col=col)
            s = sp["singvals"][b]
            fig.add_trace(go.Scatter(x=np.arange(1, len(s) + 1), y=s, mode="lines+markers",
                                     name=f"{NAMES[c]} {name}: sigma_max = {s[0]:.3f}",
                                     line=dict(color=COLORS[c], width=style.line * 0.6),
                                     marker=dict(symbol=("circle", "square", "diamond", "x")[b])),
                          row=1, col=len(cells) + 1)
        fig.update_xaxes(title_text="Re", scaleanchor=f"y{col if col > 1 else ''}", row=1, col=col)
        fig.update_yaxes(title_text="Im", row=1, col=col)
    fig.update_xaxes(title_text="index (largest first)", row=1, col=len(cells) + 1)
    fig.update_yaxes(title_text="singular value", row=1, col=len(cells) + 1)
    return fig


def learning(runs: dict, style: Style = Style(), baselines=()) -> go.Figure:
    """Training loss of both cells on one axis, the task's constant-predictor baselines as labelled lines."""
    w, h = style.size
    fig = go.Figure()
    fig.update_layout(template="plotly_white", title=dict(text=PANELS["learning"][0], x=0.01), width=w, height=h,
                      font=dict(size=style.font), xaxis_title="training step", yaxis_title="loss",
                      legend=dict(orientation="h", y=-0.18), margin=dict(l=70, r=30, t=90, b=90))
    for c in _cells(runs):
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
    for b in baselines:
        fig.add_hline(y=b.loss, line=dict(color=INK, dash="dot", width=style.line * 0.6))
        # placed by hand: on a log axis an annotation's y is log10 of the value
        fig.add_annotation(x=1, xref="paper", xanchor="right", yanchor="bottom", y=np.log10(b.loss), showarrow=False,
                           text=f"{b.name}: {b.loss:.3g}", font=dict(color=INK), bgcolor="rgba(255,255,255,0.8)")
    fig.update_yaxes(type="log", exponentformat="power")
    return fig


def unrolled(records: dict, style: Style = Style(), max_nodes: int = 60) -> go.Figure:
    """The chain h_1 ... h_T (and c_t for the LSTM) as circles coloured by log10 of the gradient reaching them.
    Long sequences are shown at max_nodes evenly spaced steps, said in the title."""
    cells = _cells(records)
    rows = [(c, k) for c in cells for k in (("grad_h_norm", "grad_c_norm") if c == "lstm" else ("grad_h_norm",))]
    prof = {c: _last_profile(records[c]) for c in cells}
    with np.errstate(all="ignore"):
        logs = {(c, k): np.log10(prof[c][k]) for c, k in rows if prof[c].get(k) is not None}
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()] + [np.zeros(0)])
    lo, hi = (finite.min(), finite.max()) if len(finite) else (-1, 1)
    T = max(len(v) for v in logs.values()) if logs else 1
    stride = -(-T // max_nodes)  # ceil: evenly spaced nodes, always ending at the loss step
    idx = np.arange(T - 1, -1, -stride)[::-1]
    w, h = style.size
    note = "" if stride == 1 else f" (every {stride}th of {T} steps shown)"
    fig = go.Figure()
    fig.update_layout(template="plotly_white", title=dict(text=PANELS["unrolled"][0] + note, x=0.01), width=w,
                      height=h if style.lecture else max(300, int(h * 0.8)), font=dict(size=style.font), margin=dict(l=160, r=30, t=90, b=60),
                      xaxis=dict(title="time step t", showgrid=False),
                      yaxis=dict(showgrid=False, zeroline=False, tickvals=list(range(len(rows))),
                                 ticktext=[f"{NAMES[c]} {'h_t' if k == 'grad_h_norm' else 'c_t'}" for c, k in rows],
                                 autorange="reversed"))
    for y, (c, k) in enumerate(rows):
        v = logs.get((c, k))
        if v is None:
            continue
        t = idx + 1
        z = v[idx]
        fig.add_trace(go.Scatter(x=t, y=np.full(len(t), y), mode="lines", line=dict(color=COLORS[c], width=1),
                                 hoverinfo="skip", showlegend=False))
        fig.add_trace(go.Scatter(
            x=t, y=np.full(len(t), y), mode="markers", showlegend=False,
            marker=dict(size=10 + 3 * style.line, color=np.where(np.isnan(z), np.nan, np.clip(z, lo, hi)),
                        cmin=lo, cmax=hi, colorscale="Viridis", line=dict(color=COLORS[c], width=2),
                        showscale=y == 0, colorbar=dict(title="log10 gradient")),
            customdata=10.0 ** z, hovertemplate="t=%{x}: %{customdata:.2e}<extra></extra>"))
    return fig


def trainability_map(df, style: Style = Style(), value: str = "solved") -> go.Figure:
    """A saved sweep as heatmaps per cell: the first varied field across, the second (if any) up, the mean over
    seeds of `value` ("solved" fraction or "final_loss") in colour, and for the RNN the line where rho(W_hh) = 1."""
    varied = [c for c in df.columns if c not in SWEEP_COLUMNS]
    x_name, y_name = varied[0], (varied[1] if len(varied) > 1 else None)
    cells = [c for c in ("rnn", "lstm") if (df.cell == c).any()]
    title = "solved fraction" if value == "solved" else "final loss"
    fig, _ = _frame({c: _Named(c) for c in cells}, style, f"Trainability map: {title} over seeds", shared_yaxes=True)
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


class _Named:
    """Stands in for a record where only the subplot title is needed."""

    def __init__(self, cell: str):
        self.cell, self.config, self.nonlinearity = cell, None, "tanh"


SWEEP_COLUMNS = ("seed", "cell", "final_loss", "baseline", "solved", "rate", "rho", "steps_done", "wall_time", "config")

BUILDERS = {"grad_vs_time": grad_vs_time, "gates": gates, "spectrum": spectrum, "unrolled": unrolled,
            "grad_over_training": grad_over_training, "learning": learning}
