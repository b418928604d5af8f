"""Theory functions against known answers (the literature's results, each stated in its test)."""
import numpy as np
import pytest

import gradlab
from gradlab import analysis


def linear_probe(W, T=300):
    cfg = gradlab.Config(nonlinearity="linear", seq_len=T, hidden=W.shape[0], batch=8)
    p0 = gradlab.probe(cfg).params
    return gradlab.probe(cfg, params=dict(p0, weight_hh_l0=W))


@pytest.mark.parametrize("a", [0.8, 0.97, 1.02])
def test_fitted_rate_of_scaled_orthogonal_is_a(a):
    cfg = gradlab.Config(nonlinearity="linear", init="orthogonal", init_scale=a, seq_len=200, hidden=16)
    p = gradlab.probe(cfg)
    assert analysis.fit_rate(p.grad_h_norm) == pytest.approx(a, abs=1e-6)
    assert analysis.spectrum(p.params["weight_hh_l0"])["rho"][0] == pytest.approx(a, abs=1e-12)


def test_rate_of_a_normal_matrix_is_its_spectral_radius():
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    lam = np.r_[0.95, rng.uniform(-0.8, 0.8, 11)]
    W = Q @ np.diag(lam) @ Q.T  # symmetric, so normal
    assert analysis.fit_rate(linear_probe(W, T=400).grad_h_norm) == pytest.approx(0.95, abs=1e-3)


@pytest.mark.parametrize("seed", [0, 1])
def test_gaussian_rate_follows_rho_not_sigma_max(seed):
    """W ~ N(0, g^2/H): rho ~ g but sigma_max ~ 2g; the measured per-step rate is rho (Gelfand's formula)."""
    cfg = gradlab.Config(nonlinearity="linear", init="gaussian", init_scale=0.9, seq_len=400, hidden=128, seed=seed)
    p = gradlab.probe(cfg)
    sp = analysis.spectrum(p.params["weight_hh_l0"])
    rate = analysis.fit_rate(p.grad_h_norm)
    assert sp["sigma_max"][0] > 1.6 * sp["rho"][0]
    assert rate == pytest.approx(sp["rho"][0], rel=0.03)
    assert rate < 0.6 * sp["sigma_max"][0]


def test_theory_curves_bound_and_track_the_measurement():
    p = gradlab.probe(gradlab.Config(init="gaussian", init_scale=0.5, seq_len=100))
    c = analysis.theory_curves(p.grad_h_norm, p.params["weight_hh_l0"], "tanh")
    g = p.grad_h_norm
    assert c["pascanu"][-1] == g[-1] and np.all(g <= c["pascanu"] * (1 + 1e-12))  # a bound, when sigma_max < 1


def test_lstm_blocks_have_their_own_spectra():
    p = gradlab.probe(gradlab.Config(cell="lstm", init="orthogonal", init_scale=0.7, hidden=10))
    sp = analysis.spectrum(p.params["weight_hh_l0"])
    assert sp["eigvals"].shape == (4, 10) and np.allclose(sp["singvals"], 0.7)


@pytest.mark.parametrize("bf", [0.0, 1.0, 3.0])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_keep_gate_product_matches_sigmoid_power_for_tiny_weights(cell, bf):
    """With tiny weights the gate that keeps the state (the LSTM's f, the GRU's update gate z) is sigmoid(b) at
    every step, so its product over T-1-t steps is sigmoid(b)^(T-1-t); and the state's measured gradient follows it,
    since every other path goes through W_hh (LSTM: dc_t = dc_{t+1} f; GRU: dh_t = dh_{t+1} z + O(W_hh))."""
    T, H = 80, 6
    cfg = gradlab.Config(cell=cell, seq_len=T, hidden=H, batch=3, forget_bias=bf)
    p0 = gradlab.probe(cfg).params
    tiny = {k: v * 1e-10 for k, v in p0.items()}
    n = {"lstm": 4, "gru": 3}[cell]
    tiny["bias_ih_l0"] = np.where(np.arange(n * H) // H == 1, bf, 0.0)
    p = gradlab.probe(cfg, params=tiny)
    s = 1 / (1 + np.exp(-bf))
    want = s ** np.arange(T)[::-1]
    product = analysis.forget_product if cell == "lstm" else analysis.update_product
    np.testing.assert_allclose(product(p.gates), want, rtol=1e-7)
    # and the direct path is what the measured gradient of the state follows when the rest is negligible
    g = p.grad_c_norm if cell == "lstm" else p.grad_h_norm
    np.testing.assert_allclose(g / g[-1], want, rtol=1e-6)
    sm = analysis.summary(p)
    curve = sm["curves"]["theory_cell_path" if cell == "lstm" else "theory_update_path"]
    np.testing.assert_allclose(curve, g[-1] * want, rtol=1e-6)
    assert set(sm["curves"]) == {"theory_lyapunov", "theory_cell_path" if cell == "lstm" else "theory_update_path"}


def test_gru_update_path_is_a_labelled_approximation_at_ordinary_init():
    """At PyTorch's init the GRU's gradient also returns through r, z and n (all via W_hh): the update-gate product
    is one path of the prediction, not the prediction (default Config, seed 0: measured ratio 8.8e-11, the product
    1.2e-3 of it at step 1, while the Lyapunov factor predicts the rate to 0.6%)."""
    p = gradlab.probe(gradlab.Config(cell="gru"))
    sm = analysis.summary(p)
    assert sm["rate_on"] == "grad_h_norm" and sm["cut_at"] is None and sm["first"] == 0
    off = sm["off_at_1"]
    assert off["theory_update_path"] < 1e-2  # the direct path alone decays much faster than the total
    assert sm["lyapunov"][0] == pytest.approx(sm["mean_rate"], rel=0.02)
    assert sm["curves"]["theory_update_path"][-1] == p.grad_h_norm[-1]  # anchored at the loss step, like the LSTM's


def test_fit_is_robust_to_zeros_and_infs():
    g = 0.5 ** np.arange(100)[::-1].astype(float)
    g[:10] = 0.0
    g[50] = np.inf
    assert analysis.fit_rate(g) == pytest.approx(0.5, abs=1e-9)
    assert np.isnan(analysis.fit_rate(np.zeros(50)))


@pytest.mark.parametrize("profile,verdict,words", [
    (np.r_[1e-31, np.ones(199)], "vanishing", "vanishing: the gradient from step 1 is 1e-31 of the gradient at step 200"),
    (np.r_[5e4, np.ones(99)], "exploding", "5e+04 times"),
    (np.r_[0.5, np.ones(99)], "preserved", "within a factor of a thousand: the gradient from step 1 is 0.5 times"),
    (np.r_[0.0, 0.0, 1e-300, 1.0], "underflow", "underflowed to exactly 0 at step 2 and before, below the smallest positive float64"),
    (np.r_[0.0, 0.0, 0.5, 1.0], "zero", "cut off: the gradient is exactly 0 at step 2 and before"),
    (np.r_[np.inf, 1e300, 1.0], "overflow", "overflowed"),
])
def test_diagnosis_sentences(profile, verdict, words):
    v, sentence = analysis.diagnose(profile)
    assert v == verdict and words in sentence


def test_diagnosis_knows_the_loss_layout_the_dtype_and_a_forward_overflow():
    g = np.r_[1e-9 * np.ones(8), 1.0, 0.0, 0.0]  # the last loss is at step 9; steps 10-11 come after every loss
    mask = np.zeros((11, 2))
    mask[8] = 1
    v, sentence = analysis.diagnose(g, mask)
    assert v == "vanishing" and "1e-09 of the gradient at step 9" in sentence
    assert analysis.diagnose(np.ones(5), np.ones((5, 2)))[0] == "mixed"  # copy: a loss at every step
    assert "float32" in analysis.diagnose(np.r_[0.0, 1e-40, 1.0], dtype="float32")[1]
    v, sentence = analysis.diagnose(np.full(4, np.nan), nonfinite={"h:nonfinite": {"step": 2, "kind": "inf"}})
    assert v == "overflow" and "forward pass at step 3" in sentence


@pytest.mark.parametrize("seed", [0, 3])
def test_variable_length_task_is_anchored_at_its_last_loss(seed):
    """adding_hs97: with seed 3 no sequence reaches the array's last step, whose gradient is exactly 0."""
    from gradlab.analysis import summary
    p = gradlab.probe(gradlab.Config(task="adding_hs97", seed=seed))
    sm = summary(p)
    assert sm["end"] == np.flatnonzero(p.y_mask.any(axis=1))[-1]
    assert sm["diagnosis"][0] == "vanishing" and np.isfinite(sm["rate"])
    assert sm["curves"]["theory_rho"][sm["end"]] == p.grad_h_norm[sm["end"]]


def test_copy_task_is_judged_by_the_last_steps_loss_alone():
    """Copy has a loss at every step, which masks the long-range gradient (the total profile looks flat). The probe
    also records the profile from the last step's loss alone; the summary is about that one, and says so."""
    from gradlab.analysis import summary
    p = gradlab.probe(gradlab.Config(task="copy"))
    assert p.grad_h_norm[0] / p.grad_h_norm[-1] > 0.1  # flat: the many local losses dominate
    sm = summary(p)
    assert sm["last_only"] and sm["diagnosis"][0] == "vanishing"
    assert sm["diagnosis"][1].startswith("from the last step's loss alone, vanishing")
    assert sm["rate"] == pytest.approx(analysis.fit_rate(p.grad_h_norm_last))
    assert sm["curves"]["theory_rho"][-1] == p.grad_h_norm_last[-1]
    # and that profile is the one a mask on the last step alone gives
    from gradlab import bptt
    last = np.zeros_like(p.y_mask)
    last[-1] = 1
    np.testing.assert_array_equal(p.grad_h_norm_last,
                                  bptt.run(p.params, p.x, p.y, last, "rnn", "tanh", "xent")["grad_h_norm"])
