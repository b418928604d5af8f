"""Tasks: shapes, masks, determinism, the layout gradlab/tasks.py defines (described in docs/tasks.md), and each
baseline reproduced by simulation."""
import math

import numpy as np
import pytest

import gradlab
from gradlab.tasks import TASKS, make_batch

T, B = 100, 64


@pytest.mark.parametrize("task", TASKS)
def test_shapes_masks_and_determinism(task):
    a = make_batch(task, T, B, np.random.default_rng(7))
    b = make_batch(task, T, B, np.random.default_rng(7))
    c = make_batch(task, T, B, np.random.default_rng(8))
    L = {"copy": T + 20, "adding_hs97": T + T // 10}.get(task, T)
    assert a.x.shape[:2] == (L, B) and a.y_mask.shape == (L, B)
    assert a.y.shape == ((L, B, a.n_out) if a.loss_kind == "mse" else (L, B))
    assert set(np.unique(a.y_mask)) <= {0.0, 1.0} and a.y_mask.sum(axis=0).min() >= 1
    assert np.array_equal(a.x, b.x) and np.array_equal(a.y, b.y)
    assert not np.array_equal(a.x, c.x)
    assert a.baselines and all(bl.loss > 0 for bl in a.baselines)


@pytest.mark.parametrize("task", TASKS)
def test_both_cells_see_the_same_batch(task):
    cfg = gradlab.Config(task=task, seq_len=30, hidden=5, batch=4)
    r, l = gradlab.probe(cfg), gradlab.probe(cfg.replace(cell="lstm"))
    assert np.array_equal(r.x, l.x) and np.array_equal(r.y, l.y)


def test_adding_layout():
    b = make_batch("adding", T, 5000, np.random.default_rng(0))
    marks = b.x[:, :, 1]
    assert np.all(marks.sum(0) == 2)
    first, second = marks[: T // 2].argmax(0), T // 2 + marks[T // 2:].argmax(0)
    assert np.all(marks[: T // 2].sum(0) == 1)
    cols = np.arange(5000)
    assert np.allclose(b.y[-1, :, 0], b.x[first, cols, 0] + b.x[second, cols, 0])
    assert np.all(b.y_mask[:-1] == 0)


def test_adding_hs97_layout():
    b = make_batch("adding_hs97", T, 3000, np.random.default_rng(0))
    n = b.y_mask.argmax(0) + 1  # each sequence's own length
    assert n.min() >= T and n.max() <= T + T // 10 and len(np.unique(n)) > 5
    m = b.x[:, :, 1]
    cols = np.arange(3000)
    assert np.all(m[0] == -1) and np.all(m[n - 1, cols] == -1)
    assert np.all((m == 1).sum(0) == 2)
    pos = [np.flatnonzero(m[:, j] == 1) for j in range(3000)]
    assert all(p[0] <= 9 and p[0] >= 1 and p[1] <= T // 2 - 1 for p in pos)
    x1 = np.array([b.x[p[0], j, 0] for j, p in enumerate(pos)])
    x2 = np.array([b.x[p[1], j, 0] for j, p in enumerate(pos)])
    assert np.allclose(b.y[n - 1, cols, 0], 0.5 + (x1 + x2) / 4)
    assert np.all(np.abs(b.x[:, :, 0]) <= 1)


def test_copy_layout():
    b = make_batch("copy", T, 50, np.random.default_rng(0))
    s = b.x.argmax(-1)
    assert np.all(s[:10] < 8) and np.all(s[10:T + 9] == 8) and np.all(s[T + 9] == 9) and np.all(s[T + 10:] == 8)
    assert np.array_equal(b.y[-10:], s[:10]) and np.all(b.y[:-10] == 8)
    assert np.all(b.y_mask == 1)


def test_temporal_order_layout():
    b = make_batch("temporal_order", T, 2000, np.random.default_rng(0))
    s = b.x.argmax(-1)
    assert np.all(s[0] == 7) and np.all(s[-1] == 6)
    for j in range(2000):
        xy = np.flatnonzero(s[:, j] >= 4)[1:-1]  # X/Y positions, between E and B
        assert len(xy) == 2 and 10 <= xy[0] <= 20 and 50 <= xy[1] <= 60
        assert b.y[-1, j] == 2 * (s[xy[0], j] - 4) + (s[xy[1], j] - 4)
    assert set(np.unique(b.y[-1])) == {0, 1, 2, 3}


def test_latch_layout():
    b = make_batch("latch", T, 5000, np.random.default_rng(0))
    assert np.array_equal(b.y[-1], (b.x[0, :, 0] > 0).astype(int))
    assert np.all(np.abs(b.x[0, :, 0]) == 1)
    assert np.std(b.x[1:, :, 0]) == pytest.approx(0.2, rel=0.01)


def _constant_predictor_loss(b, pred):
    """Loss of predicting `pred` (a vector of outputs or class log-probabilities) on every counted step."""
    m = b.y_mask
    if b.loss_kind == "mse":
        return np.sum(m * np.mean((pred - b.y) ** 2, -1)) / m.sum()
    return -np.sum(m * pred[np.arange(b.y.shape[0])[:, None], np.arange(b.y.shape[1])[None], b.y]) / m.sum()


@pytest.mark.parametrize("task", TASKS)
def test_first_baseline_is_the_constant_predictor(task):
    """Simulate the baseline's predictor on 20000 sequences: it must score the stated loss within sampling error."""
    Tk = 100
    b = make_batch(task, Tk, 20000, np.random.default_rng(1))
    bl = b.baselines[0]
    L = b.x.shape[0]
    if task == "adding":
        got = _constant_predictor_loss(b, np.ones((L, 20000, 1)))
    elif task == "adding_hs97":
        got = _constant_predictor_loss(b, np.full((L, 20000, 1), 0.5))
    elif task == "copy":
        logp = np.full((L, 20000, 10), -np.inf)
        logp[:Tk + 10, :, 8] = 0.0  # blanks are certain until the recall starts
        logp[Tk + 10:, :, :8] = -math.log(8)
        with np.errstate(invalid="ignore"):
            got = _constant_predictor_loss(b, logp)
    else:
        k = b.n_out
        got = _constant_predictor_loss(b, np.full((L, 20000, k), -math.log(k)))
    assert got == pytest.approx(bl.loss, rel=0.03 if b.loss_kind == "mse" else 1e-12)


def test_adding_plateau_baseline():
    """Remembering only the second marked value (predicting it + 0.5) scores 1/12."""
    b = make_batch("adding", T, 40000, np.random.default_rng(2))
    second = T // 2 + b.x[T // 2:, :, 1].argmax(0)
    pred = b.x[second, np.arange(40000), 0] + 0.5
    assert np.mean((pred - b.y[-1, :, 0]) ** 2) == pytest.approx(1 / 12, rel=0.03)


@pytest.mark.parametrize("Tk,expected", [(100, 0.173), (200, 0.0945), (500, 0.040)])
def test_copy_baseline_values_from_the_literature(Tk, expected):
    assert make_batch("copy", Tk, 1, np.random.default_rng(0)).baselines[0].loss == pytest.approx(expected, abs=6e-4)
