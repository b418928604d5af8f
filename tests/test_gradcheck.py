"""Central differences in float64 against every gradient gradlab computes, for the RNN, the LSTM and the GRU: the step
functions, the parameter gradients of full BPTT, and the per-step records (total dL/dh_t, dL/dc_t, step t's term of
dL/dW_hh, dL/dx_t, and the LSTM's split of dL/dc_t into its direct cell path and the rest). Truncated BPTT has its
own home, tests/test_truncate.py."""
import numpy as np
import pytest
import reference as ref

from gradlab import bptt, cells
from gradlab.init import GATES

TOL = 1e-7
CASES = [("rnn", "tanh", "mse"), ("rnn", "relu", "mse"), ("rnn", "linear", "mse"), ("rnn", "tanh", "xent"),
         ("lstm", "tanh", "mse"), ("lstm", "tanh", "xent"), ("gru", "tanh", "mse"), ("gru", "tanh", "xent")]
ALL_CASES = [("rnn", nl, lk) for nl in ("tanh", "relu", "linear") for lk in ("mse", "xent")] + CASES[-4:]


def problem(cell, loss_kind, T=6, B=3, D=2, H=4, O=3, seed=0):
    rng = np.random.default_rng(seed)
    G = GATES[cell] * H
    params = {"weight_ih_l0": rng.normal(0, 0.7, (G, D)), "weight_hh_l0": rng.normal(0, 0.7, (G, H)),
              "bias_ih_l0": rng.normal(0, 0.3, G), "bias_hh_l0": rng.normal(0, 0.3, G),
              "head.weight": rng.normal(0, 0.7, (O, H)), "head.bias": rng.normal(0, 0.3, O)}
    x = rng.normal(size=(T, B, D))
    y = rng.normal(size=(T, B, O)) if loss_kind == "mse" else rng.integers(0, O, size=(T, B))
    mask = (rng.uniform(size=(T, B)) < 0.6).astype(float)
    mask[-1] = 1.0  # the last step always counts, so gradients travel the whole sequence
    return params, x, y, mask


# ---- step functions: forward against a textbook formula, backward against central differences ----------------

@pytest.mark.parametrize("nonlinearity", ["tanh", "relu", "linear"])
def test_rnn_step(nonlinearity):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(3, 5))
    a[np.abs(a) < 1e-3] = 0.5  # keep relu's kink out of the finite-difference stencil
    up = rng.normal(size=(3, 5))
    f = lambda: np.sum(up * cells.rnn_step_forward(a, nonlinearity))
    h = cells.rnn_step_forward(a, nonlinearity)
    da = cells.rnn_step_backward(up, cells.rnn_factors(h, nonlinearity))
    assert ref.rel_error(da, ref.numeric_grad(f, a)) < TOL


def test_lstm_step():
    rng = np.random.default_rng(2)
    B, H = 3, 4
    a, c_prev = rng.normal(size=(B, 4 * H)), rng.normal(size=(B, H))
    up_h, up_c = rng.normal(size=(B, H)), rng.normal(size=(B, H))

    def f():
        h, c, _ = cells.lstm_step_forward(a, c_prev)
        return np.sum(up_h * h) + np.sum(up_c * c)

    h, c, gates = cells.lstm_step_forward(a, c_prev)
    sig = lambda v: 1 / (1 + np.exp(-v))
    i, fg, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    assert np.allclose(c, fg * c_prev + i * g, rtol=1e-15, atol=0)
    assert np.allclose(h, o * np.tanh(c), rtol=1e-15, atol=0)
    fac = cells.lstm_factors(gates, c, c_prev)
    da = np.empty((B, 4 * H))
    # up_c is the gradient reaching c_t from step t+1; the step returns the total dL/dc_t and passes dc f_t back
    dc, dc_prev = cells.lstm_step_backward(up_h, up_c, fac, da)
    assert ref.rel_error(da, ref.numeric_grad(f, a)) < TOL
    assert ref.rel_error(dc_prev, ref.numeric_grad(f, c_prev)) < TOL
    assert ref.rel_error(dc, up_c + up_h * o * (1 - np.tanh(c) ** 2)) < 1e-14


def test_gru_step():
    """a = [W_in x + b_in, a_r, a_z, W_hn h + b_hn], and so is da: its first block and its last (the two halves of n)
    differ by the factor r; h_prev's own in-step path is the update gate's, dh z."""
    rng = np.random.default_rng(5)
    B, H = 3, 4
    a, h_prev, up = rng.normal(size=(B, 4 * H)), rng.normal(size=(B, H)), rng.normal(size=(B, H))
    f = lambda: np.sum(up * cells.gru_step_forward(a, h_prev)[0])
    h, gates, ghn = cells.gru_step_forward(a, h_prev)
    sig = lambda v: 1 / (1 + np.exp(-v))
    r, z = sig(a[:, H:2 * H]), sig(a[:, 2 * H:3 * H])
    n = np.tanh(a[:, :H] + r * a[:, 3 * H:])
    np.testing.assert_allclose(gates, np.concatenate([r, z, n], axis=1), rtol=1e-15, atol=0)
    np.testing.assert_allclose(h, (1 - z) * n + z * h_prev, rtol=1e-14, atol=1e-15)
    assert np.array_equal(ghn, a[:, 3 * H:])
    da = np.empty((B, 4 * H))
    keep = cells.gru_step_backward(up, cells.gru_factors(gates, h_prev, ghn), da)
    assert ref.rel_error(da, ref.numeric_grad(f, a)) < TOL
    assert ref.rel_error(keep, ref.numeric_grad(f, h_prev)) < TOL


# ---- full BPTT -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,nonlinearity,loss_kind", CASES)
def test_parameter_gradients(cell, nonlinearity, loss_kind):
    params, x, y, mask = problem(cell, loss_kind)
    rec = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind)
    f = lambda: ref.loss(params, x, y, mask, cell, nonlinearity, loss_kind)
    assert abs(rec["loss"] - f()) < 1e-14 * abs(f())
    for name in params:
        err = ref.rel_error(rec["grads"][name], ref.numeric_grad(f, params[name]))
        assert err < TOL, (name, err)


@pytest.mark.parametrize("cell,nonlinearity,loss_kind", CASES)
def test_total_hidden_and_cell_gradients(cell, nonlinearity, loss_kind):
    params, x, y, mask = problem(cell, loss_kind)
    rec = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind)
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    dh = np.zeros((T, B, H))
    num = ref.numeric_grad(lambda: ref.loss(params, x, y, mask, cell, nonlinearity, loss_kind, dh=dh), dh)
    want = np.sqrt(np.sum(num ** 2, axis=(1, 2)))
    assert ref.rel_error(rec["grad_h_norm"], want) < TOL
    # the total, not just the read-out's share: early steps get gradient although their own mask may be 0
    assert np.all(rec["grad_h_norm"] > 0)
    if cell == "lstm":
        dc = np.zeros((T, B, H))
        num = ref.numeric_grad(lambda: ref.loss(params, x, y, mask, cell, nonlinearity, loss_kind, dc=dc), dc)
        assert ref.rel_error(rec["grad_c_norm"], np.sqrt(np.sum(num ** 2, axis=(1, 2)))) < TOL


@pytest.mark.parametrize("cell,nonlinearity,loss_kind", CASES)
def test_per_step_weight_gradient_terms(cell, nonlinearity, loss_kind):
    params, x, y, mask = problem(cell, loss_kind)
    rec = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind)
    W_steps = np.repeat(params["weight_hh_l0"][None], x.shape[0], axis=0)  # step t uses its own copy
    num = ref.numeric_grad(lambda: ref.loss(params, x, y, mask, cell, nonlinearity, loss_kind, W_steps=W_steps), W_steps)
    assert rec["grad_whh_contrib_norm"][0] == 0.0  # h_{-1} = 0
    assert ref.rel_error(rec["grad_whh_contrib_norm"], np.sqrt(np.sum(num ** 2, axis=(1, 2)))) < TOL
    assert ref.rel_error(rec["grads"]["weight_hh_l0"], num.sum(axis=0)) < TOL


def per_step_rel_error(a, b):
    """max over t of |a_t - b_t| / (|a_t| + |b_t|): each step against its own magnitude, not the largest step's."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-300)))


def norms(v):
    """(T, B, ...) -> (T,) Frobenius norm of each step, computed plainly (the test's values are far from under- and
    overflow, so no scaling is needed here)."""
    return np.sqrt(np.sum(v.reshape(len(v), -1) ** 2, axis=1))


@pytest.mark.parametrize("cell,nonlinearity,loss_kind", ALL_CASES)
def test_input_gradients(cell, nonlinearity, loss_kind):
    """grad_x_norm is the total dL/dx_t: central differences perturb x_t itself in the independent forward."""
    params, x, y, mask = problem(cell, loss_kind)
    rec = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind)
    num = ref.numeric_grad(lambda: ref.loss(params, x, y, mask, cell, nonlinearity, loss_kind), x)
    assert rec["grad_x_norm"].shape == (x.shape[0],)
    assert np.all(rec["grad_x_norm"] > 0)
    assert per_step_rel_error(rec["grad_x_norm"], norms(num)) < TOL
    assert bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind, record=False).get("grad_x_norm") is None


@pytest.mark.parametrize("loss_kind", ["mse", "xent"])
def test_lstm_cell_gradient_split(loss_kind):
    """dL/dc_t = d_t + r_t: d_t against the reference's own direct path (the loss's entries into c carried back
    through prod f of the reference forward), r_t against central differences of the total minus that path."""
    params, x, y, mask = problem("lstm", loss_kind)
    rec = bptt.run(params, x, y, mask, "lstm", "tanh", loss_kind)
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    d = ref.direct_cell_path(params, x, y, mask, loss_kind)
    dc = np.zeros((T, B, H))
    total = ref.numeric_grad(lambda: ref.loss(params, x, y, mask, "lstm", "tanh", loss_kind, dc=dc), dc)
    direct, rest = rec["grad_c_direct_norm"], rec["grad_c_rest_norm"]
    assert per_step_rel_error(direct, norms(d)) < TOL
    assert per_step_rel_error(rest[:-1], norms(total - d)[:-1]) < TOL
    assert per_step_rel_error(rec["grad_c_norm"], norms(total)) < TOL
    # the two parts really are parts: neither is the whole, and together they are (triangle inequality)
    assert np.all(rest[:-1] > 1e-3 * direct[:-1]) and np.all(direct > 1e-3 * rest)
    assert np.all(np.abs(direct - rest) <= rec["grad_c_norm"] * (1 + 1e-12))
    assert np.all(rec["grad_c_norm"] <= (direct + rest) * (1 + 1e-12))
    # nothing comes back through h_T: at the last step the whole gradient is the direct one, exactly
    assert rest[-1] == 0.0 and direct[-1] == rec["grad_c_norm"][-1]


@pytest.mark.parametrize("loss_kind", ["mse", "xent"])
def test_lstm_without_recurrent_weights_has_only_the_direct_path(loss_kind):
    """Known answer: with W_hh = 0 nothing returns through h_{t-1} into the gates, so the rest is exactly 0 at every
    step and the direct path is the whole of dL/dc_t (bitwise: the same products in the same order)."""
    params, x, y, mask = problem("lstm", loss_kind)
    params["weight_hh_l0"][:] = 0.0
    rec = bptt.run(params, x, y, mask, "lstm", "tanh", loss_kind)
    assert np.all(rec["grad_c_rest_norm"] == 0.0)
    assert np.array_equal(rec["grad_c_direct_norm"], rec["grad_c_norm"])
    assert np.all(rec["grad_c_norm"] > 0)
    d = ref.direct_cell_path(params, x, y, mask, loss_kind)
    assert per_step_rel_error(rec["grad_c_direct_norm"], norms(d)) < TOL


def test_lstm_rest_is_measured_not_a_difference():
    """The path back through h_{t-1} is first order in W_hh: scaled by s -> 0, r_t / s tends to a limit. Both
    parts are carried separately, so r_t stays exact when it is 1e-12 or 1e-200 of d_t; taken as dL/dc_t - d_t it
    would drown in d_t's rounding (1e-16 of d_t) and the ratios below would be off by 1e-4 or worse."""
    params, x, y, mask = problem("lstm", "mse")
    W = params["weight_hh_l0"].copy()
    limit = {}
    for s in (1e-12, 1e-200):
        params["weight_hh_l0"] = W * s
        rec = bptt.run(params, x, y, mask, "lstm", "tanh", "mse")
        assert np.all(rec["grad_c_rest_norm"][:-1] < 1e-10 * rec["grad_c_direct_norm"][:-1])
        limit[s] = rec["grad_c_rest_norm"][:-1] / s
    assert np.all(limit[1e-12] > 0)
    np.testing.assert_allclose(limit[1e-200], limit[1e-12], rtol=1e-9)


def test_chunk_boundaries_do_not_matter(monkeypatch):
    """The backward pass works in blocks of CHUNK steps; a sequence spanning several blocks must give the same
    records as one processed in a single block."""
    params, x, y, mask = problem("lstm", "mse", T=40, seed=3)
    whole = bptt.run(params, x, y, mask, "lstm", "tanh", "mse")
    monkeypatch.setattr(bptt, "CHUNK", 7)
    parts = bptt.run(params, x, y, mask, "lstm", "tanh", "mse")
    for k in ("grad_h_norm", "grad_c_norm", "grad_whh_contrib_norm", "grad_x_norm", "grad_c_direct_norm",
              "grad_c_rest_norm"):
        assert ref.rel_error(parts[k], whole[k]) < 1e-13
    for k in params:
        assert ref.rel_error(parts["grads"][k], whole["grads"][k]) < 1e-13


def test_norms_survive_far_below_float64_squares():
    """A naive sqrt(sum(g*g)) is 0 below ~1e-154; gradlab's norms must stay exact there and above 1e154."""
    g = np.array([[[3e-200, 4e-200]], [[3e200, 4e200]], [[0.0, 0.0]], [[np.inf, 1.0]], [[np.nan, 1.0]]])
    n = bptt.safe_norm(g, (1, 2))
    assert n[0] == pytest.approx(5e-200, rel=1e-15) and n[1] == pytest.approx(5e200, rel=1e-15)
    assert n[2] == 0.0 and np.isinf(n[3]) and np.isnan(n[4])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_per_step_norms_take_the_scaled_path_wherever_the_plain_one_would_lose(dtype):
    """The profiles' norms are plain sums of squares where that is safe and scaled elsewhere: every kind of step
    (ordinary, vanished, exploded, 0, inf, nan) must come out as safe_norm computes it in float64."""
    big, tiny = (1e200, 1e-200) if dtype == np.float64 else (1e30, 1e-30)
    rng = np.random.default_rng(4)
    v = rng.normal(size=(7, 3, 5)) * np.array([1.0, tiny, big, 0.0, 1.0, 1.0, 1e-3])[:, None, None]
    v[4, 1, 2], v[5, 0, 0] = np.inf, np.nan
    v = v.astype(dtype)
    got = bptt._step_norms(v)
    want = bptt.safe_norm(v.astype(np.float64), (1, 2))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-14 if dtype == np.float64 else 1e-6)
    assert got[1] > 0 and got[3] == 0.0 and np.isinf(got[4]) and np.isnan(got[5])


def test_float32_term_norms_are_scaled_where_float32_squares_underflow():
    """In float32 the sums of squares of tiny terms go subnormal near 1e-38 long before float64's 1e-280: the
    per-step term norms must still match a float64 recomputation from the same factors."""
    rng = np.random.default_rng(0)
    da = (rng.normal(size=(4, 3, 8)) * np.array([1e-21, 1e-5, 1e-30, 1.0])[:, None, None]).astype(np.float32)
    h = rng.normal(size=(4, 3, 2)).astype(np.float32)
    terms = np.matmul(da.transpose(0, 2, 1), h)  # (n, G, H): each step's da_t^T h_{t-1}
    norms = bptt._term_norms_of(terms, da.transpose(0, 2, 1), h.transpose(0, 2, 1))
    want = np.linalg.norm(np.matmul(da.astype(np.float64).transpose(0, 2, 1), h.astype(np.float64)), axis=(1, 2))
    np.testing.assert_allclose(norms, want, rtol=1e-5)
