"""The Lyapunov spectrum (gradlab/lyapunov.py): exact Jacobians, the QR identity, known answers, and the top factor
against the gradient's measured decay rate."""
import dataclasses

import numpy as np
import pytest
from reference import rel_error

import gradlab
from gradlab import analysis
from gradlab.lyapunov import _start, lyapunov, mean_rate, step_jacobians


def sig(a):
    return 1 / (1 + np.exp(-a))


def step(params, cell, nonlinearity, x_t, s):
    """One step of the recurrence written out from the cell equations, state s = h (RNN, GRU) or [h, c] (LSTM):
    (B, n)."""
    H = params["weight_hh_l0"].shape[1]
    h = s[:, :H]
    a = x_t @ params["weight_ih_l0"].T + params["bias_ih_l0"] + params["bias_hh_l0"] + h @ params["weight_hh_l0"].T
    if cell == "gru":  # PyTorch's nn.GRU: r scales only the recurrent half of the candidate
        gi = x_t @ params["weight_ih_l0"].T + params["bias_ih_l0"]
        gh = h @ params["weight_hh_l0"].T + params["bias_hh_l0"]
        r, z = sig(gi[:, :H] + gh[:, :H]), sig(gi[:, H:2 * H] + gh[:, H:2 * H])
        n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
        return (1 - z) * n + z * h
    if cell == "rnn":
        return {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0.0), "linear": lambda v: v}[nonlinearity](a)
    i, f, g, o = sig(a[:, :H]), sig(a[:, H:2 * H]), np.tanh(a[:, 2 * H:3 * H]), sig(a[:, 3 * H:])
    c = f * s[:, H:] + i * g
    return np.concatenate([o * np.tanh(c), c], axis=1)


def states(p):
    return np.concatenate([p.h, p.c], axis=2) if p.cell == "lstm" else p.h  # (T, B, n)


def with_params(cfg, **change):
    return gradlab.probe(cfg, params=dict(gradlab.probe(cfg).params, **change))


@pytest.mark.parametrize("cell,nonlinearity", [("rnn", "tanh"), ("rnn", "relu"), ("lstm", "tanh"), ("gru", "tanh")])
def test_step_jacobians_match_central_differences(cell, nonlinearity):
    p = gradlab.probe(gradlab.Config(cell=cell, nonlinearity=nonlinearity, seq_len=6, hidden=4, batch=3, seed=1))
    J = step_jacobians(p)
    s = states(p)
    T, B, n = s.shape
    assert J.shape == (B, T - 1, n, n)
    eps = 1e-6
    num = np.empty_like(J)
    for t in range(1, T):
        # every sequence's step at once: the columns of J_t are the responses to each state coordinate
        for j in range(n):
            d = np.zeros(n)
            d[j] = eps
            up = step(p.params, cell, nonlinearity, p.x[t], s[t - 1] + d)
            down = step(p.params, cell, nonlinearity, p.x[t], s[t - 1] - d)
            num[:, t - 1, :, j] = (up - down) / (2 * eps)
    np.testing.assert_allclose(step(p.params, cell, nonlinearity, p.x[1], s[0]), s[1], rtol=1e-12)  # same model
    assert rel_error(J, num) < 1e-9  # measured ~1e-10 (rounding 1e-16 / eps)
    if nonlinearity == "relu":
        assert (J == 0).any()  # a unit below 0 has a zero row: the relu case is not a tanh case in disguise
    assert step_jacobians(p, sequences=2).shape == (2, T - 1, n, n)


def explicit_spectrum(J):
    """The reference: per sequence, the QR of the explicitly formed product J_{T-1} ... J_1 Q_0 (the module's start
    basis), whose |diag R| is the product of the per-step |diag R_t| exactly; log, per step, sorted, averaged over
    sequences. Also the worst condition number of the products, which bounds how much of it float64 resolves."""
    B, S, n, _ = J.shape
    lam, cond = [], 1.0
    for b in range(B):
        M = _start(n, n)
        for t in range(S):
            M = J[b, t] @ M
        sv = np.linalg.svd(M, compute_uv=False)
        cond = max(cond, sv[0] / sv[-1]) if sv[-1] > 0 else np.inf
        lam.append(np.sort(np.log(np.abs(np.diag(np.linalg.qr(M)[1]))))[::-1] / S)
    return np.exp(np.mean(lam, axis=0)), cond


def lstm_well_conditioned(T=12, H=5):
    """At initialisation the LSTM's Jacobian product is very ill-conditioned (cond ~ 1e11 over 11 steps: the h
    directions pass through o(1-o) tanh(c) W_o, small while c is small), so the explicit product cannot resolve its
    small factors. Saturated input and forget gates (c grows quickly) and a larger W_o keep it near 1e5."""
    cfg = gradlab.Config(cell="lstm", seq_len=T, hidden=H, batch=3, init="orthogonal", forget_bias=3.0)
    p0 = gradlab.probe(cfg).params
    W, b = p0["weight_hh_l0"].copy(), p0["bias_ih_l0"].copy()
    W[3 * H:] *= 2.0
    b[:H], b[2 * H:3 * H], b[3 * H:] = 3.0, b[2 * H:3 * H] + 1.5, 0.0
    return gradlab.probe(cfg, params=dict(p0, weight_hh_l0=W, bias_ih_l0=b))


def relu_alive(T=12, H=5):
    """Every unit above 0 at every step (checked), so the explicit product has no exactly-lost direction."""
    cfg = gradlab.Config(nonlinearity="relu", seq_len=T, hidden=H, batch=3)
    p0 = gradlab.probe(cfg).params
    p = gradlab.probe(cfg, params=dict(p0, bias_ih_l0=p0["bias_ih_l0"] + 2.0))
    assert (p.h > 0).all()
    return p


@pytest.mark.parametrize("make", [
    lambda: gradlab.probe(gradlab.Config(seq_len=12, hidden=5, batch=3)),
    lambda: gradlab.probe(gradlab.Config(seq_len=8, hidden=5, batch=3, init="gaussian", init_scale=2.0)),
    lambda: gradlab.probe(gradlab.Config(nonlinearity="linear", seq_len=12, hidden=5, batch=3)),
    relu_alive,
    lstm_well_conditioned,
], ids=["rnn-tanh", "rnn-tanh-gaussian2", "rnn-linear", "rnn-relu", "lstm"])
def test_lyapunov_is_the_qr_of_the_explicit_product(make):
    p = make()
    want, cond = explicit_spectrum(step_jacobians(p))
    assert cond < 1e6  # else the reference itself is off by more than the tolerance
    got = lyapunov(p, sequences=None)
    np.testing.assert_allclose(got, want, rtol=1e-10)
    assert got[0] != got[-1]  # a spectrum with spread: the check is not about one number


def test_lyapunov_matches_an_ill_conditioned_product_as_far_as_it_resolves():
    """The default LSTM: the explicit product's QR is accurate to about eps * ||M|| / |R_ii| per factor, so factor i
    can be checked to that (times a margin) and the top ones still to ~1e-14."""
    p = gradlab.probe(gradlab.Config(cell="lstm", seq_len=12, hidden=5, batch=1))
    J = step_jacobians(p)
    M = _start(10, 10)
    for t in range(J.shape[1]):
        M = J[0, t] @ M
    r = np.abs(np.diag(np.linalg.qr(M)[1]))
    order = np.argsort(r)[::-1]
    resolvable = 1e3 * np.finfo(float).eps * np.linalg.norm(M, 2) / r[order]  # relative error bound on |R_ii|
    got = lyapunov(p, sequences=None)
    err = np.abs(np.log(got) * J.shape[1] - np.log(r[order]))  # in log of the product's diagonal
    assert np.all(err <= resolvable) and resolvable[0] < 1e-10 and resolvable[-1] > 1e-3  # both regimes present


def test_dead_relus_lose_exactly_the_directions_the_explicit_product_loses():
    """Default ReLU RNN: units below 0 at some steps zero their rows of J_t. The explicit product then has |R_ii| at
    rounding level (~1e-17 ||M||) where the exact value is 0; lyapunov gives exactly 0 there and agrees elsewhere."""
    p = gradlab.probe(gradlab.Config(nonlinearity="relu", seq_len=12, hidden=5, batch=3))
    J = step_jacobians(p)
    lost_any = False
    for b in range(3):
        M = _start(5, 5)
        for t in range(J.shape[1]):
            M = J[b, t] @ M
        r = np.sort(np.abs(np.diag(np.linalg.qr(M)[1])))[::-1]
        lost = r < 1e-12 * r[0]
        lost_any |= lost.any()
        got = lyapunov(dataclasses.replace(p, h=p.h[:, [b]]), None)
        np.testing.assert_array_equal(got == 0, lost)
        np.testing.assert_allclose(got[~lost], r[~lost] ** (1 / J.shape[1]), rtol=1e-10)
    assert lost_any


@pytest.mark.parametrize("a", [0.8, 1.0, 1.05])
def test_scaled_orthogonal_linear_rnn_has_every_factor_a(a):
    p = gradlab.probe(gradlab.Config(nonlinearity="linear", init="orthogonal", init_scale=a, seq_len=300, hidden=16,
                                     batch=4))
    np.testing.assert_allclose(lyapunov(p, sequences=None), a, rtol=1e-12, atol=0)


def test_normal_matrix_gives_its_eigenvalue_moduli_sorted():
    """W = Q diag(lam) Q^T. At finite T the QR factors carry a transient log|minor of Q| / (T-1) (the start basis is
    not W's eigenbasis), so a long run is close, and the difference of two runs, sum_{T1 <= t < T2} log|R_t|, is
    exactly (T2 - T1) log|lam| once the basis has converged (gaps here are >= 10% per step: 0.9^600 ~ 1e-28)."""
    rng = np.random.default_rng(0)
    H = 8
    Q = np.linalg.qr(rng.normal(size=(H, H)))[0]
    lam = np.array([0.95, -0.8, 0.7, -0.55, 0.45, 0.35, -0.25, 0.15])
    W = Q @ np.diag(lam) @ Q.T
    cfg = gradlab.Config(nonlinearity="linear", seq_len=601, hidden=H, batch=2)
    short = with_params(cfg.replace(seq_len=601), weight_hh_l0=W)
    long = with_params(cfg.replace(seq_len=1201), weight_hh_l0=W)
    want = np.sort(np.abs(lam))[::-1]
    np.testing.assert_allclose(lyapunov(long, None), want, rtol=0.01)
    per_step = np.exp((1200 * np.log(lyapunov(long, None)) - 600 * np.log(lyapunov(short, None))) / 600)
    np.testing.assert_allclose(per_step, want, rtol=1e-9)


def test_dead_relus_give_exact_zero_factors_without_warnings():
    """Units 4, 5 get a bias of -50 (always dead, phi' = 0, zero rows of J_t); units 0-3 a bias of +50 and a
    scaled permutation among themselves (always alive, J = a P on them): two factors are exactly 0, and from step 2
    on (once the start basis has been projected onto the live units) every step's |R_ii| is exactly a, so the
    difference of two runs, sum_{T1 <= t < T2} log|R_t|, is exactly (T2 - T1) log a."""
    H, a = 6, 0.9
    cfg = gradlab.Config(nonlinearity="relu", seq_len=50, hidden=H, batch=3)
    W = np.zeros((H, H))
    W[[1, 2, 3, 0], [0, 1, 2, 3]] = a
    b = np.array([50.0, 50, 50, 50, -50, -50])
    p = with_params(cfg, weight_hh_l0=W, bias_ih_l0=b)
    assert (p.h[:, :, 4:] == 0).all() and (p.h[:, :, :4] > 0).all()
    f = lyapunov(p, None)
    assert (f[4:] == 0).all() and np.all(f[:4] > 0)
    np.testing.assert_allclose(f[:4], a, rtol=0.02)  # the start transient, log|R_ii| / 49
    f2 = lyapunov(with_params(cfg.replace(seq_len=100), weight_hh_l0=W, bias_ih_l0=b), None)
    np.testing.assert_allclose(np.exp((99 * np.log(f2[:4]) - 49 * np.log(f[:4])) / 50), a, rtol=1e-12)
    p0 = with_params(cfg, weight_hh_l0=np.zeros((H, H)))  # W_hh = 0: nothing carries over at all
    assert (lyapunov(p0, None) == 0).all()


def test_identity_relu_keeps_exactly_the_units_alive_throughout():
    """IRNN (W_hh = I, ReLU): J_t = diag(phi'(a_t)), coordinate-aligned, the case a start basis Q_0 = I gets wrong.
    The product J_{T-1} ... J_1 keeps exactly the units alive at every step 1..T-1, each with factor 1: a sequence's
    spectrum has exactly that many nonzero factors, and they are near 1 (below by the losses when others die)."""
    p = gradlab.probe(gradlab.Config(init="identity", nonlinearity="relu", batch=6))
    alive = (p.h[1:] > 0).all(axis=0).sum(axis=1)  # per sequence
    assert 0 < alive.min() and alive.max() < 64
    for b in range(6):
        f = lyapunov(dataclasses.replace(p, h=p.h[:, [b]]), None)
        assert (f > 0).sum() == alive[b]
        assert np.all(f[f > 0] > 0.95) and np.all(f <= 1 + 1e-12)
    # and the batch's top factor predicts the preserved gradient
    assert lyapunov(p, None)[0] == pytest.approx(mean_rate(p.grad_h_norm, 99), rel=0.01)


def test_an_overflowed_forward_pass_gives_nan():
    cfg = gradlab.Config(nonlinearity="linear", seq_len=400, hidden=4, batch=2)
    p = with_params(cfg, weight_hh_l0=10.0 * np.eye(4))  # h grows 10x per step: inf by step ~310
    assert not np.isfinite(p.h).all()
    assert np.isnan(lyapunov(p)).all() and lyapunov(p).shape == (4,)
    one = gradlab.probe(gradlab.Config(seq_len=2, hidden=4))
    assert np.isnan(lyapunov(dataclasses.replace(one, h=one.h[:1]))).all()  # T = 1, no step: no rate


def test_sequences_argument():
    p = gradlab.probe(gradlab.Config(seq_len=20, hidden=8, batch=5))
    each = [lyapunov(dataclasses.replace(p, h=p.h[:, [b]]), None) for b in range(5)]  # one sequence at a time
    np.testing.assert_allclose(lyapunov(p, None), np.exp(np.mean(np.log(each), axis=0)), rtol=1e-12)
    np.testing.assert_allclose(lyapunov(p, 2), np.exp(np.mean(np.log(each[:2]), axis=0)), rtol=1e-12)
    assert not np.allclose(each[0], each[1], rtol=1e-6, atol=0)  # the sequences' spectra do differ
    np.testing.assert_array_equal(lyapunov(p, 99), lyapunov(p, None))  # more than B: all
    for bad in (0, -1, 2.5, True, "all"):
        with pytest.raises(ValueError, match="sequences"):
            lyapunov(p, bad)


def test_auto_keeps_the_work_bounded(monkeypatch):
    from gradlab import lyapunov as module
    p = gradlab.probe(gradlab.Config(cell="lstm", seq_len=1000, batch=2))
    assert module._auto(p) == 1  # LSTM, n = 128: one sequence fills the budget at T = 1000
    assert module._auto(gradlab.probe(gradlab.Config(seq_len=100))) == 5  # the RNN at T = 100: five of 32
    small = gradlab.probe(gradlab.Config(seq_len=11, hidden=4, batch=5))
    monkeypatch.setattr(module, "WORK_BUDGET", 2 * 10 * 4 ** 3)  # room for two sequences of 10 steps
    assert module._auto(small) == 2
    np.testing.assert_array_equal(lyapunov(small), lyapunov(small, 2))
    assert not np.array_equal(lyapunov(small), lyapunov(small, None))


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_leading_directions_alone_are_the_full_runs_first(cell):
    """Column j of a QR depends only on columns <= j, so following m directions gives the full run's first m columns
    (before sorting: at finite T two close factors may finish in either order)."""
    from gradlab.lyapunov import _exponents
    p = gradlab.probe(gradlab.Config(cell=cell, hidden=16, seq_len=100, batch=3))
    n = p.h.shape[2] * (2 if cell == "lstm" else 1)
    cols = _exponents(p, 3, n)
    np.testing.assert_allclose(np.exp(_exponents(p, 3, 5)), np.exp(cols[:, :5]), rtol=1e-10)
    full = lyapunov(p, None)
    for m in (1, 5):
        lead = lyapunov(p, None, directions=m)
        assert lead.shape == (m,) and np.all(lead <= full[:m] * (1 + 1e-10))  # sorted among fewer: never above
        np.testing.assert_allclose(lead, full[:m], rtol=0.02)
    np.testing.assert_array_equal(lyapunov(p, None, directions=999), full)  # more than n: all
    for bad in (0, 1.5, False):
        with pytest.raises(ValueError, match="directions"):
            lyapunov(p, None, directions=bad)


def test_mean_rate():
    g = 0.9 ** np.arange(50)[::-1] * 3.0
    assert mean_rate(g, 49) == pytest.approx(0.9, rel=1e-14)
    assert mean_rate(g, 20) == pytest.approx(0.9, rel=1e-14)
    for bad in (np.r_[0.0, 1.0], np.r_[np.inf, 1.0], np.r_[1.0, np.nan], np.r_[-1.0, 1.0]):
        assert np.isnan(mean_rate(bad, 1))
    assert np.isnan(mean_rate(np.ones(3), 0))
    assert mean_rate(np.r_[1e-300, np.ones(100) * 1e300], 100) == pytest.approx(1e-6, rel=1e-12)  # no overflow


# The top factor against the measured rate of the gradient, T = 100, batch 32 (the Config defaults). Tolerances are
# the worst relative error over seeds 0-9 with a margin (worst: RNN 1.0%, 0.8%, 3.3%; LSTM against grad_c_norm
# 1.45%, against the norm of (dh, dc) 2.45%; GRU against grad_h_norm, its only state: 1.14% at b_z = 1 (PyTorch init
# otherwise), 1.31% at b_z = 0, 0.51% at b_z = 3; also 1.14% orthogonal and 1.32% Gaussian x2, not run here). The measurement carries transients of log(projection) / (T - 1) from
# both ends, ~1% at T = 100. For the LSTM, dh and dc are both linear images of the state's gradient, so all three
# norms decay at the top factor's rate in the long run; at T = 100 grad_c_norm tracks it best (grad_h_norm alone is
# 1-4% faster-decaying: the loss enters through h, and its transient is the largest).
CASES = {
    "rnn-pytorch": ({}, 0.015),
    "rnn-orthogonal": ({"init": "orthogonal"}, 0.012),
    "rnn-gaussian2": ({"init": "gaussian", "init_scale": 2.0}, 0.05),  # chaotic: see the test below
    "lstm-bf0": ({"cell": "lstm", "forget_bias": 0.0}, 0.025),
    "lstm-bf1": ({"cell": "lstm", "forget_bias": 1.0}, 0.025),
    "lstm-bf3": ({"cell": "lstm", "forget_bias": 3.0}, 0.025),
    "gru-bz1": ({"cell": "gru"}, 0.02),
    "gru-bz0": ({"cell": "gru", "forget_bias": 0.0}, 0.02),
    "gru-bz3": ({"cell": "gru", "forget_bias": 3.0}, 0.01),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("case", list(CASES))
def test_top_factor_predicts_the_measured_rate(case, seed):
    kw, tol = CASES[case]
    p = gradlab.probe(gradlab.Config(seq_len=100, seed=seed, **kw))
    # 4 sequences: the LSTM's top factor from 4 or from all 32 agrees to ~0.2% at T = 100, at an eighth of the cost
    top = lyapunov(p, sequences=4 if p.cell == "lstm" else None)[0]
    end = analysis.loss_end(p.y_mask, p.seq_len)
    if p.cell != "lstm":
        assert top == pytest.approx(mean_rate(p.grad_h_norm, end), rel=tol)
    else:
        assert top == pytest.approx(mean_rate(p.grad_c_norm, end), rel=tol)
        assert top == pytest.approx(mean_rate(np.hypot(p.grad_h_norm, p.grad_c_norm), end), rel=0.035)


@pytest.mark.parametrize("seed", [4, 6, 9])  # the three worst of seeds 0-9 against the batch's rate (2.6-3.3%)
def test_chaotic_rnn_rate_is_the_mean_over_sequences(seed):
    """Gaussian scale 2 is chaotic: the sequences' own top factors spread over ~10% (1.05-1.15 for seed 9), and the
    batch's gradient norm is dominated by the fastest of them, so it decays faster than the spectrum, which averages
    the sequences' logs. Measured sequence by sequence (a loss on that sequence alone) and averaged the same way,
    the rate agrees to ~1%."""
    from gradlab import bptt
    p = gradlab.probe(gradlab.Config(seq_len=100, seed=seed, init="gaussian", init_scale=2.0))
    rates = []
    for b in range(p.x.shape[1]):
        mask = np.zeros_like(p.y_mask)
        mask[:, b] = p.y_mask[:, b]
        rates.append(mean_rate(bptt.run(p.params, p.x, p.y, mask, "rnn", "tanh", "mse")["grad_h_norm"], 99))
    top = lyapunov(p, None)[0]
    assert top == pytest.approx(np.exp(np.mean(np.log(rates))), rel=0.015)
    assert mean_rate(p.grad_h_norm, 99) > top  # the batch norm's bias has this sign


def test_long_runs_are_stable():
    # hidden 32 for the LSTM (n = 64): stability does not depend on the size, and 128 x 128 QRs are the slow ones
    for cfg in (gradlab.Config(), gradlab.Config(cell="lstm", hidden=32, forget_bias=1.0)):
        f500 = lyapunov(gradlab.probe(cfg.replace(seq_len=500)), sequences=2)
        f1000 = lyapunov(gradlab.probe(cfg.replace(seq_len=1000)), sequences=2)
        assert np.isfinite(f1000).all() and f1000[-1] > 0  # 0.57^1000 ~ 1e-244: a product would have underflowed
        assert f1000[0] == pytest.approx(f500[0], rel=0.01)  # measured: 0.07% (RNN), 0.2% (LSTM)


def test_orthogonal_keeps_every_direction_gaussian_does_not():
    """At scale 1 orthogonal W_hh keeps all 64 directions near the top factor; a Gaussian one of the same scale has
    a spread spectrum (its singular values run from ~0 to ~2), so most directions shrink fast."""
    for seed in range(2):
        orth = lyapunov(gradlab.probe(gradlab.Config(init="orthogonal", seed=seed)), sequences=8)
        gauss = lyapunov(gradlab.probe(gradlab.Config(init="gaussian", seed=seed)), sequences=8)
        assert np.median(orth) > 0.88 and (orth > 0.8).sum() >= 60  # seeds 0-4: 0.90-0.94, 63-64 of 64
        assert np.median(gauss) < 0.75 and (gauss > 0.9).sum() <= 14  # seeds 0-4: 0.62-0.70, 4-10 of 64
        assert gauss[0] > 0.9  # while its top factor is as high as orthogonal's: the difference is the bulk


@pytest.mark.parametrize("cfg", [
    gradlab.Config(seq_len=203), gradlab.Config(cell="gru", seq_len=203),
    gradlab.Config(init="gaussian", init_scale=2.0, seq_len=101),  # chaotic: blocks rejected part of the way
    gradlab.Config(cell="lstm", hidden=16, seq_len=101), gradlab.Config(nonlinearity="relu", seq_len=101),
], ids=["rnn", "gru", "rnn-chaotic", "lstm", "rnn-relu"])
def test_steps_taken_in_blocks_give_the_one_step_recursion(cfg, monkeypatch):
    """_exponents multiplies BLOCK Jacobians before one QR where that resolves every direction, else one step at a
    time: either way the spectrum is the one-step recursion's to rounding, its exact zeros included (T - 1 is not a
    multiple of BLOCK, so the last block is short)."""
    import gradlab.lyapunov as lyap
    p = gradlab.probe(cfg)
    blocked = lyapunov(p, sequences=4)
    monkeypatch.setattr(lyap, "BLOCK", 1)
    one = lyapunov(p, sequences=4)
    np.testing.assert_array_equal(blocked == 0, one == 0)
    np.testing.assert_allclose(blocked, one, rtol=1e-12)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_a_trajectory_gives_the_probes_spectrum_bit_for_bit_here_and_in_another_process(cell):
    """The dashboard computes spectra in worker processes from lyapunov.trajectory(p): the same numbers as
    lyapunov(p), to the last bit, including the default number of sequences."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from gradlab.lyapunov import sequences_used, trajectory
    p = gradlab.probe(gradlab.Config(cell=cell, seq_len=60))
    want = lyapunov(p)
    part = trajectory(p)
    k = sequences_used(p)
    assert part.h.shape[1] == k < p.h.shape[1] or cell == "lstm"  # only the sequences used travel
    np.testing.assert_array_equal(lyapunov(part), want)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver")) as pool:
        np.testing.assert_array_equal(pool.submit(lyapunov, part).result(), want)
