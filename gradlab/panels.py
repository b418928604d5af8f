"""The panel registry: one declaration per panel, iterated by the dashboard, the exports, the CLI and the tests.

A panel is its name (file names, keys), its title and caption (what the audience reads), its figure builder
(gradlab.plots) and table builder (gradlab.tables), whether it needs a trained run, and which cells it draws.
Adding a panel is one entry here and one builder in each of those modules.

Captions say what is drawn and how to read it; every number a student reads is in the figure's legend, computed
from the measurement by gradlab.analysis, never typed here.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import plotly.graph_objects as go

from . import plots, tables


@dataclass(frozen=True)
class Panel:
    name: str
    title: str
    tab: str  # its short name on the dashboard's tab
    caption: str
    figure: Callable[..., go.Figure]  # (records, style) -> Figure
    table: Callable[[dict], object]  # records -> DataFrame, or None where the records have nothing to tabulate
    training: bool = False  # needs trained runs (records are Runs); otherwise draws any record's `.latest`
    cells: tuple[str, ...] = plots.CELLS  # the cells it can draw; it is shown when any of them is present
    # Whether the figure reads analysis.summary (and so the Lyapunov spectrum, the slowest number drawn): the dashboard
    # computes the spectra only when the scene, the present view or (before training) the tab that will open reads
    # them. Speed only: a panel that reads it anyway computes it itself (tests/test_panels_speed.py checks the
    # declaration).
    summary: bool = True
    # What of each record the figure draws, when that is less than the whole record: the figure is then cached by it
    # (drawn(), below), so a control that does not change it (T, for the matrix's spectrum) does not redraw it.
    draws: Callable[[object], tuple] | None = None


PANELS: tuple[Panel, ...] = (
    Panel("grad_vs_time", "Gradient reaching each time step", "Gradient in time",
          "Read it right to left: the loss enters at the last step, and the curve shows how much of its gradient is "
          "left at each earlier step. A straight slope on this log axis is exponential decay (or growth). The dashes "
          "in the text's colour (black, or white on the dark theme) are the prediction: the top Lyapunov factor of the step Jacobians along this very trajectory, "
          "averaged over (some of) the batch's sequences. Where the sequences behave alike it matches the measured "
          "slope closely. It can miss two ways, and the legend shows by how much: the batch's gradient follows the "
          "sequences with the largest factor, so the averaged factor comes out below the measured one; or the top "
          "direction is one the loss cannot reach, such as an LSTM cell whose saturated tanh(c) hides it from the "
          "output, so the factor comes out above it. The coloured dashes are textbook approximations, each labelled "
          "with what it is and how far it misses at step 1.",
          plots.grad_vs_time, tables.profile),
    Panel("lyapunov", "How many directions survive: the Lyapunov spectrum", "Lyapunov",
          "Each point is one direction of the state and the average factor by which a gradient along it shrinks "
          "(below 1) or grows (above 1) per step on this trajectory: the finite-time Lyapunov spectrum of the step "
          "Jacobians, computed by repeated QR. The top factor is the slope of the prediction's dashes in the gradient panel; the rest says how "
          "many independent directions of the early state can still reach the loss. For the LSTM the state is the pair "
          "(h_t, c_t), so it has twice as many directions.",
          plots.lyapunov, tables.lyapunov),
    Panel("cell_paths", "LSTM: the cell path and the way back through the gates", "Cell paths",
          "The LSTM's cell-state gradient comes back two ways: along the cell alone, multiplied by the forget gate "
          "at every step (the direct path), and along paths that pass through the hidden state at least once (the "
          "rest). Both are "
          "measured; as vectors they add up to the total. The product of forget gates (averaged over batch and units) "
          "approximates the direct path only, so it explains the total only where the direct path dominates.",
          plots.cell_paths, tables.cell_paths, cells=("lstm",)),
    Panel("grad_x", "Gradient reaching the input", "At x_t",
          "Whether a network can learn a lag is a question about its input: how much gradient reaches x_t at the "
          "steps that hold the information (grey bars: how many sequences of the batch have it at that step). Where "
          "the curve is orders of magnitude below its value near the loss, training gets almost no signal from "
          "those inputs.",
          plots.grad_x, tables.grad_x, summary=False),
    Panel("whh_share", "Which steps the weight update hears", "Weight update",
          "Each step t adds one term to the gradient of the recurrent matrix, (dL/da_t)^T h_(t-1), where a_t is the "
          "step's pre-activation. The curve is "
          "each term's norm as a share of the sum of their norms: where it falls steeply away from the loss, the "
          "update is built from the last few steps, however long the sequence.",
          plots.whh_share, tables.whh_share),
    Panel("grad_over_training", "Gradient profile over training", "Over training",
          "Each row is the gradient profile of the fixed probe batch, taken every few training steps. Dark columns "
          "on the left mean the early steps still receive almost no gradient.",
          plots.grad_over_training, tables.grad_over_training, training=True),
    Panel("learning", "Learning curves", "Learning",
          "Training loss on a fresh batch at every step, with its running mean. The dotted lines are the task's "
          "reference losses: a constant prediction (no memory at all) and, for the adding problem, remembering only "
          "one of the two values. A cell that stays on the upper line has not learned the long-range dependency.",
          plots.learning, tables.learning, training=True),
    Panel("clipping", "Gradient norm before clipping", "Clipping",
          "The global gradient norm at every training step, before clipping, against the threshold. Steps above the "
          "line were rescaled to it when the clipping is by norm (Pascanu et al. 2013); spikes are steps where the "
          "gradient exploded.",
          plots.clipping, tables.learning, training=True),
    Panel("gates", "LSTM gates", "Gates",
          "The LSTM's input, forget and output gates on the first probe sequence, and, per step, their mean over batch "
          "and units (with the candidate g, which is not a gate). The "
          "forget gate scales the cell state, and along the direct cell path its gradient, at every step; the "
          "product of f over time (bottom right, averaged over batch and units) approximates what that path alone "
          "would carry back.",
          plots.gates, tables.gates, cells=("lstm",), summary=False),
    Panel("spectrum", "Spectrum of the recurrent matrix", "W_hh spectrum",
          "The eigenvalues and singular values of W_hh alone, per gate block for the LSTM. They describe the "
          "gradient only in special cases: rho^k is a linear RNN's long-run rate, and for a tanh or ReLU RNN "
          "sigma_max < 1 guarantees vanishing (Pascanu et al. 2013). Along a real trajectory the nonlinearity's "
          "slopes change the picture, which is why the Lyapunov spectrum, not this one, predicts the measured rate.",
          plots.spectrum, tables.spectrum, summary=False, draws=lambda r: (r.latest.params["weight_hh_l0"],)),
    Panel("unrolled", "The network unrolled in time", "Unrolled",
          "Each circle is a hidden state h_t (and, for the LSTM, a cell state c_t), coloured by the gradient that "
          "reaches it: the whiteboard picture of backpropagation through time. Press play to replay the backward pass "
          "from the loss back to step 1: a circle fills in once every later step has been processed, because only "
          "then is its gradient complete, and it never changes afterwards; a hollow circle is not computed yet.",
          plots.unrolled, tables.unrolled, summary=False),
)
BY_NAME = {p.name: p for p in PANELS}


def shown(records: dict, trained: bool) -> list[Panel]:
    """The panels these records can fill: training panels only after training, cell-specific ones when their cell
    is present."""
    present = {c for c, r in records.items() if r is not None}
    return [p for p in PANELS if (trained or not p.training) and present & set(p.cells)]


def figure(name: str, records: dict, style: plots.Style = plots.Style()) -> go.Figure:
    """The panel's figure with its title: records are Runs for training panels, Probes or Runs otherwise."""
    p = BY_NAME[name]
    fig = plots.decade_ticks(plots.legends_by_column(p.figure(records, style)))
    fig.update_layout(title=dict(text=p.title, x=0.01))
    return fig


def drawn(name: str, records: dict) -> str | None:
    """A digest of what the panel's figure draws of these records (its `draws`, per cell), or None when it draws
    the whole record: equal digests, equal figures (for one style)."""
    reads = BY_NAME[name].draws
    if reads is None:
        return None
    h = hashlib.blake2b(digest_size=16)
    for c in plots.CELLS:
        if records.get(c) is None:
            continue
        h.update(c.encode())
        for a in reads(records[c]):
            a = np.ascontiguousarray(a)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.data)
    return h.hexdigest()


def table(name: str, records: dict):
    return BY_NAME[name].table(records)
