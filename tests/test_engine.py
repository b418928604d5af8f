"""The fast layout of the engine against its reference forms (issue "Speed of thought").

bptt runs feature-major ((..., G, B): every gate block of a step contiguous), multiplies the sigmoid rows of its fused
weights by -1 (so exp(-a) needs no negation), inlines the LSTM's step functions, and keeps its scratch arrays between
calls. None of that may change a number: the cells' step functions must give the same bits in both layouts, bptt's
forward pass the same bits as stepping the cells, the records the same values as the naive reference forward
(tests/reference.py) and as PyTorch autograd (the golden bundles) to 1e-13, a training step (record=False) the same
gradients as a probe, and no call may leave a trace in the next one's results or in an earlier one's records.
"""
import numpy as np
import pytest
import reference as ref
from conftest import GOLDEN

import gradlab
from gradlab import bptt, cells
from test_gradcheck import CASES, problem

CELLS = ["rnn", "lstm", "gru"]


def _negate(a: np.ndarray, cell: str, H: int) -> np.ndarray:
    """a (G', B) with the rows bptt's fused weights negate multiplied by -1."""
    a = a.copy()
    for rows in bptt._negated_rows(cell, H):
        a[rows] *= -1.0
    return a


def test_lstm_step_is_the_same_in_both_layouts():
    rng = np.random.default_rng(0)
    B, H = 5, 3
    a, c_prev = rng.normal(size=(4 * H, B)) * 3, rng.normal(size=(H, B))
    h, c, gates = cells.lstm_step_forward(a.T.copy(), c_prev.T.copy())  # batch-major, the plain formula
    h_f, c_f, gates_f = cells.lstm_step_forward(_negate(a, "lstm", H), c_prev, axis=-2, negated=True)
    assert np.array_equal(h, h_f.T) and np.array_equal(c, c_f.T) and np.array_equal(gates, gates_f.T)
    up_h, dc_next = rng.normal(size=(H, B)), rng.normal(size=(H, B))
    da, da_f = np.empty((B, 4 * H)), np.empty((4 * H, B))
    dc, dc_prev = cells.lstm_step_backward(up_h.T.copy(), dc_next.T.copy(), cells.lstm_factors(gates, c, c_prev.T.copy()),
                                           da)
    fac_f = cells.lstm_factors(gates_f, c_f, c_prev, axis=-2)
    dc_f, dc_prev_f = cells.lstm_step_backward(up_h, dc_next, fac_f, da_f, axis=-2)
    assert np.array_equal(da, da_f.T) and np.array_equal(dc, dc_f.T) and np.array_equal(dc_prev, dc_prev_f.T)


def test_gru_step_is_the_same_in_both_layouts():
    rng = np.random.default_rng(1)
    B, H = 5, 3
    a, h_prev, up = rng.normal(size=(4 * H, B)) * 3, rng.normal(size=(H, B)), rng.normal(size=(H, B))
    h, gates, ghn = cells.gru_step_forward(a.T.copy(), h_prev.T.copy())
    h_f, gates_f, ghn_f = np.empty((H, B)), np.empty((3 * H, B)), np.empty((H, B))
    cells.gru_step_forward(_negate(a, "gru", H), h_prev, gates_f, ghn_f, h_f, axis=-2, negated=True)
    assert np.array_equal(h, h_f.T) and np.array_equal(gates, gates_f.T) and np.array_equal(ghn, ghn_f.T)
    da, da_f = np.empty((B, 4 * H)), np.empty((4 * H, B))
    keep = cells.gru_step_backward(up.T.copy(), cells.gru_factors(gates, h_prev.T.copy(), ghn), da)
    keep_f = cells.gru_step_backward(up, cells.gru_factors(gates_f, h_prev, ghn_f, axis=-2), da_f, axis=-2)
    assert np.array_equal(da, da_f.T) and np.array_equal(keep, keep_f.T)


@pytest.mark.parametrize("cell", CELLS)
def test_the_forward_pass_is_the_cells_step_by_step(cell):
    """bptt.forward (with the LSTM's step inlined) against a loop over the cells' own step functions, bit for bit."""
    params, x, _, _ = problem(cell, "mse", T=9, B=5, H=4)
    fw = bptt.forward(params, x, cell, "tanh")
    T, B, D = x.shape
    H = params["weight_hh_l0"].shape[1]
    W = _negate(bptt._fused_weights(params, cell), cell, H)
    h, c = np.zeros((H, B)), np.zeros((H, B))
    for t in range(T):
        a = W @ np.concatenate([h, x[t].T, np.ones((1, B))])
        if cell == "rnn":
            h = cells.rnn_step_forward(a, "tanh")
        elif cell == "gru":
            h, gates, _ = cells.gru_step_forward(a, h, np.empty((3 * H, B)), axis=-2, negated=True)
            assert np.array_equal(gates, fw["gates"][t])
        else:
            h, c, gates = cells.lstm_step_forward(a, c, axis=-2, negated=True)
            assert np.array_equal(gates, fw["gates"][t]) and np.array_equal(c, fw["cs"][t + 1])
        assert np.array_equal(h, fw["hs"][t + 1])


@pytest.mark.parametrize("cell", CELLS)
def test_records_match_the_naive_reference_forward(cell):
    """h, c and the gates as returned (batch-major views of the feature-major arrays) against tests/reference.py."""
    params, x, y, mask = problem(cell, "mse", T=40, B=3, H=5)
    rec = bptt.run(params, x, y, mask, cell, "tanh", "mse")
    states, gates = [], []
    ref.loss(params, x, y, mask, cell, states_out=states, gates_out=gates)
    np.testing.assert_allclose(rec["h"], np.array([s[0] for s in states]), rtol=1e-13, atol=1e-15)
    if cell == "lstm":
        np.testing.assert_allclose(rec["c"], np.array([s[1] for s in states]), rtol=1e-13, atol=1e-15)
    if cell != "rnn":
        want = np.array([np.concatenate(g, axis=-1) for g in gates])  # (T, B, G), stacked i, f, g, o / r, z, n
        np.testing.assert_allclose(rec["gates"], want, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_matches_pytorch_autograd_to_1e13(path):
    """The golden bundles (PyTorch autograd, float64) to 1e-13: every recorded quantity and every gradient."""
    errors = gradlab.verify(path)
    bad = {k: v for k, v in errors.items() if not v <= 1e-13}
    assert not bad, bad


@pytest.mark.parametrize("cell,nonlinearity,loss_kind", CASES)
def test_a_training_step_has_the_probes_gradients(cell, nonlinearity, loss_kind):
    """record=False forms dW_hh with one GEMM per chunk, record=True from the per-step terms it records: the same
    gradients to 1e-13, and the same loss and read-out bit for bit."""
    params, x, y, mask = problem(cell, loss_kind, T=70)
    full = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind)
    step = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind, record=False)
    assert set(step) == {"loss", "grads", "yhat"}
    assert step["loss"] == full["loss"] and np.array_equal(step["yhat"], full["yhat"])
    for k, g in full["grads"].items():
        assert ref.rel_error(step["grads"][k], g) < 1e-13, k


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_reused_scratch_leaves_no_trace(dtype):
    """The workspace is kept between calls: results must not depend on what ran before, and records already returned
    (gates and c are views of arrays of their own) must not change when the engine runs again."""
    def one(cell, record=True, T=45, seed=0):
        params, x, y, mask = problem(cell, "mse", T=T, seed=seed)
        params = {k: v.astype(dtype) for k, v in params.items()}
        return bptt.run(params, x.astype(dtype), y.astype(dtype), mask, cell, "tanh", "mse", record=record)

    first = one("lstm")
    kept = {k: np.array(v, copy=True) for k, v in first.items() if isinstance(v, np.ndarray)}
    for cell in CELLS:  # other shapes, other cells, training steps: every cached workspace is used and overwritten
        one(cell, record=False, seed=1)
        one(cell, seed=2)
        one(cell, T=7, seed=3)
    again = one("lstm")
    for k, v in kept.items():
        assert np.array_equal(first[k], v, equal_nan=True), k  # untouched
        assert np.array_equal(again[k], v, equal_nan=True), k  # reproduced
    for k, g in first["grads"].items():
        assert np.array_equal(again["grads"][k], g), k
