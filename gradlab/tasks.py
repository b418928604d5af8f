"""Synthetic long-dependency tasks, each exactly as published (the variant and its paper are named in its docstring).

Each task is a pure function (T, B, rng) -> Batch, registered in TASKS with the shortest T it fits in. Time-major:
  x (L, B, D) inputs; y (L, B, O) float targets for "mse" or (L, B) integer classes for "xent";
  y_mask (L, B), 1 where the step's loss counts. L is the array length: T for most tasks, T + 20 for copy
  (T is the lag between the symbols and their recall) and T + T // 10 for adding_hs97 (variable lengths, see there).
Every task also states its constant-predictor baselines (the losses a network scores without any memory), which
the loss plots draw as labelled lines.

This module does not know about cells or parameters: the same seed gives the same batches to both cells.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Baseline:
    name: str
    loss: float
    meaning: str
    accuracy: float | None = None


@dataclass
class Batch:
    x: np.ndarray
    y: np.ndarray
    y_mask: np.ndarray
    loss_kind: str  # "mse" | "xent"
    n_out: int  # O: output units (regression targets or classes)
    variant: str  # the published variant, to name on every plot
    baselines: list[Baseline] = field(default_factory=list)


# What a batch's loss mask says about where the gradient starts; analysis and probe read records by these.
def loss_end(y_mask: np.ndarray | None, T: int) -> int:
    """The last step where any sequence's loss counts in a batch's y_mask (T, B): the anchor of every curve (later steps get no gradient)."""
    if y_mask is None:
        return T - 1
    counted = np.flatnonzero(np.asarray(y_mask).any(axis=1))
    return int(counted[-1]) if len(counted) else T - 1


def losses_at_many_steps(y_mask: np.ndarray | None) -> bool:
    """True when some sequence has a loss at more than one step (copy): the profile then mixes each step's own
    loss with the gradient arriving from later steps, and a decay rate or a vanishing verdict does not apply."""
    return y_mask is not None and bool((np.asarray(y_mask).sum(axis=0) > 1).any())


def adding(T: int, B: int, rng: np.random.Generator) -> Batch:
    """Arjovsky et al. 2016: channel 0 values ~ U[0,1], channel 1 marks exactly two steps, one uniformly in the first
    half [0, T//2) and one in the second half [T//2, T). Target: the sum of the marked values, MSE on the last step."""
    x = np.zeros((T, B, 2))
    x[:, :, 0] = rng.uniform(0.0, 1.0, size=(T, B))
    half = T // 2
    cols = np.arange(B)
    first = rng.integers(0, half, size=B)
    second = rng.integers(half, T, size=B)
    x[first, cols, 1] = 1.0
    x[second, cols, 1] = 1.0
    y = np.zeros((T, B, 1))
    y[-1, :, 0] = x[first, cols, 0] + x[second, cols, 0]
    return Batch(x, y, _last_step_mask(T, B), "mse", 1, "adding problem (Arjovsky et al. 2016)", [
        Baseline("predict 1", 1 / 6, "always predict the mean sum 1: MSE = Var(U+U) = 1/6"),
        Baseline("remember one value", 1 / 12, "remember only the second marked value: MSE = 1/12 (the classic plateau)"),
    ])


def adding_hs97(T: int, B: int, rng: np.random.Generator) -> Batch:
    """Hochreiter & Schmidhuber 1997, experiment 4. Pairs (value ~ U[-1,1], marker in {-1,0,1}). Each sequence's
    length n ~ U{T, ..., T + T//10}; the batch is laid out over L = T + T//10 steps and a sequence's target and mask
    sit at its own last step n-1 (later steps are zero input and do not count). Markers -1 at the first and the last
    step; two marked steps (marker 1): the first uniformly in steps 1..9, the second uniformly in steps 1..T//2-2
    (distinct). Target 0.5 + (X1 + X2) / 4, MSE; a sequence counts as solved when |error| < 0.04."""
    L = T + T // 10
    x = np.zeros((L, B, 2))
    cols = np.arange(B)
    n = rng.integers(T, L + 1, size=B)
    values = rng.uniform(-1.0, 1.0, size=(L, B))
    x[:, :, 0] = np.where(np.arange(L)[:, None] < n[None, :], values, 0.0)
    x[0, :, 1] = -1.0
    x[n - 1, cols, 1] = -1.0
    first = rng.integers(1, 10, size=B)
    second = rng.integers(1, T // 2 - 2, size=B)  # steps 1..T//2-2 without `first`: shift past it
    second = np.where(second >= first, second + 1, second)
    x[first, cols, 1] = 1.0
    x[second, cols, 1] = 1.0
    y = np.zeros((L, B, 1))
    y[n - 1, cols, 0] = 0.5 + (x[first, cols, 0] + x[second, cols, 0]) / 4
    mask = np.zeros((L, B))
    mask[n - 1, cols] = 1.0
    return Batch(x, y, mask, "mse", 1, "adding problem (Hochreiter & Schmidhuber 1997, exp. 4)", [
        Baseline("predict 0.5", 1 / 24, "always predict 0.5: MSE = 1/24 (solved means |error| < 0.04 per sequence)"),
    ])


def copy(T: int, B: int, rng: np.random.Generator) -> Batch:
    """Arjovsky et al. 2016: 10 symbols from a0..a7, then T-1 blanks (a8), a delimiter (a9), 10 blanks; length T+20,
    one-hot over 10 symbols. Target: blanks, then the 10 symbols on the last 10 steps; cross-entropy on every step."""
    L = T + 20
    seq = np.full((L, B), 8)
    seq[:10] = rng.integers(0, 8, size=(10, B))
    seq[T + 9] = 9
    y = np.full((L, B), 8)
    y[-10:] = seq[:10]
    return Batch(np.eye(10)[seq], y, np.ones((L, B)), "xent", 10, "copy task (Arjovsky et al. 2016)", [
        Baseline("memoryless", 10 * math.log(8) / L, "blanks, then a uniform guess over 8 symbols: 10 ln 8 / (T + 20)"),
    ])


def temporal_order(T: int, B: int, rng: np.random.Generator) -> Batch:
    """Hochreiter & Schmidhuber 1997, experiment 6a, scaled to length T: one-hot over {a,b,c,d,X,Y,B,E}; E at step 0,
    B at step T-1, distractors a-d elsewhere; X or Y at t1 in [T/10, 2T/10] and t2 in [T/2, 6T/10] (the paper's
    [10, 20] and [50, 60] at T=100). Class = the order of the two symbols (XX, XY, YX, YY); cross-entropy on the last step."""
    seq = rng.integers(0, 4, size=(T, B))
    seq[0], seq[-1] = 7, 6
    cols = np.arange(B)
    t1 = rng.integers(T // 10, 2 * T // 10 + 1, size=B)
    t2 = rng.integers(T // 2, 6 * T // 10 + 1, size=B)
    s1, s2 = rng.integers(0, 2, size=B), rng.integers(0, 2, size=B)
    seq[t1, cols] = 4 + s1
    seq[t2, cols] = 4 + s2
    y = np.zeros((T, B), dtype=np.int64)
    y[-1] = 2 * s1 + s2
    return Batch(np.eye(8)[seq], y, _last_step_mask(T, B), "xent", 4, "temporal order (Hochreiter & Schmidhuber 1997, 6a)", [
        Baseline("chance", math.log(4), "uniform over the 4 orders: ln 4", accuracy=0.25),
    ])


def latch(T: int, B: int, rng: np.random.Generator) -> Batch:
    """Bengio et al. 1994 (two-sequence problem): step 0 is +1 or -1 and sets the class; then T-1 steps of
    N(0, 0.2^2) noise. Two classes, cross-entropy on the last step."""
    cls = rng.integers(0, 2, size=B)
    x = np.empty((T, B, 1))
    x[0, :, 0] = 2.0 * cls - 1.0
    x[1:, :, 0] = rng.normal(0.0, 0.2, size=(T - 1, B))
    y = np.zeros((T, B), dtype=np.int64)
    y[-1] = cls
    return Batch(x, y, _last_step_mask(T, B), "xent", 2, "latch / two-sequence problem (Bengio et al. 1994)", [
        Baseline("chance", math.log(2), "a coin flip: ln 2", accuracy=0.5),
    ])


def _last_step_mask(T: int, B: int) -> np.ndarray:
    m = np.zeros((T, B))
    m[-1] = 1.0
    return m


@dataclass(frozen=True)
class Task:
    make: Callable[[int, int, np.random.Generator], Batch]
    min_seq_len: int  # the shortest T its layout fits in (Config refuses shorter ones)


# The one registry of tasks: Config's choices, the CLI's and the dashboard's come from here, in this order.
TASKS = {
    "adding": Task(adding, 2),  # one marker in each half
    "adding_hs97": Task(adding_hs97, 20),  # both marked steps (1..9, 1..T//2-2) well before the end marker
    "copy": Task(copy, 1),
    "temporal_order": Task(temporal_order, 10),  # t1 >= T//10 >= 1: the first symbol never lands on E at step 0
    "latch": Task(latch, 1),
}


def make_batch(task: str, T: int, B: int, rng: np.random.Generator) -> Batch:
    return TASKS[task].make(T, B, rng)


def information(task: str, x: np.ndarray) -> np.ndarray:
    """(L, B) bool: the steps whose input the target depends on (the marked values, the symbols to copy or order,
    the latch's first step). The question "can the network learn this lag" is about the gradient reaching these."""
    if task in ("adding", "adding_hs97"):
        return x[:, :, 1] == 1.0
    if task == "copy":
        info = np.zeros(x.shape[:2], bool)
        info[:10] = True
        return info
    if task == "temporal_order":
        return x[:, :, 4:6].any(axis=-1)
    info = np.zeros(x.shape[:2], bool)  # latch: the first step sets the class
    info[0] = True
    return info


def input_output_sizes(task: str, T: int) -> tuple[int, int, int]:
    """(D, O, L) of a task at length T (L: the array length), from a one-sequence batch."""
    b = make_batch(task, T, 1, np.random.default_rng(0))
    return b.x.shape[-1], b.n_out, b.x.shape[0]


def accuracy(task: str, batch: Batch, yhat: np.ndarray) -> float | None:
    """Fraction correct on the counted steps: argmax for classification tasks; for adding_hs97 the fraction of
    sequences with |error| < 0.04 (H&S 1997's criterion); None for adding, which has no such criterion."""
    m = batch.y_mask > 0
    if batch.loss_kind == "xent":
        return float(np.mean(yhat.argmax(-1)[m] == batch.y[m]))
    if task == "adding_hs97":
        return float(np.mean(np.abs(yhat[m, 0] - batch.y[m, 0]) < 0.04))
    return None


def baselines(task: str, T: int) -> list[Baseline]:
    """A task's constant-predictor baselines at length T (what the loss plots draw)."""
    return make_batch(task, T, 1, np.random.default_rng(0)).baselines
