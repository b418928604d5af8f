"""The theory of vanishing and exploding gradients (Pascanu et al. 2013; Bengio et al. 1994; Le et al. 2015;
Chen, Pennington & Schoenholz 2018), reproduced numerically by probes."""
import numpy as np
import pytest

import gradlab
from gradlab import bptt
from conftest import GOLDEN


def test_linear_rnn_with_scaled_orthogonal_matrix_decays_exactly_as_a_power():
    """dL/dh_t = (W^T)^(T-t) dL/dh_T and W = aQ preserves norms up to a: the ratio is a^(T-t) exactly."""
    cfg = gradlab.Config(cell="rnn", nonlinearity="linear", init="orthogonal", init_scale=0.9, seq_len=51, seed=4)
    g = gradlab.probe(cfg).grad_h_norm
    assert np.allclose(g / g[-1], 0.9 ** (50 - np.arange(51)), rtol=1e-12, atol=0)  # the measurement vs the algebra
    assert 0.9 ** 50 == pytest.approx(5.15e-3, rel=1e-3)  # the worked example docs/tasks.md quotes is that algebra


@pytest.mark.parametrize("bf,expected", [(0, 7.9e-31), (1, 2.5e-14), (2, 3.1e-6), (3, 7.8e-3), (5, 0.51)])
def test_forget_gate_product_with_tiny_weights(bf, expected):
    """With tiny weights f_t = sigmoid(b_f), the cell path carries dc back by f per step: the gradient reaching c_0
    from c_T-1 is sigmoid(b_f)^(T-1) of it. `expected` is the table docs/tasks.md quotes (sigmoid(b_f)^100)."""
    T = 101
    cfg = gradlab.Config(cell="lstm", seq_len=T, hidden=8, batch=4, forget_bias=bf, init="gaussian", init_scale=1e-9)
    p0 = gradlab.probe(cfg).params
    tiny = {k: (v * 1e-9 if k != "bias_ih_l0" and not k.startswith("head") else v) for k, v in p0.items()}
    tiny["bias_ih_l0"] = np.where(np.arange(4 * 8) // 8 == 1, bf, 0.0)  # only the forget bias survives
    p = gradlab.probe(cfg, params=tiny)
    sig = 1 / (1 + np.exp(-bf))  # computed here, not by the engine
    measured = p.grad_c_norm[0] / p.grad_c_norm[-1]
    assert measured == pytest.approx(sig ** (T - 1), rel=1e-6)  # the measurement vs the formula
    assert sig ** (T - 1) == pytest.approx(expected, rel=0.02)  # the docs' rounded table vs the same formula


def test_relu_with_large_init_explodes():
    p = gradlab.probe(gradlab.Config(nonlinearity="relu", init="gaussian", init_scale=3.0, seq_len=100))
    assert p.grad_h_norm[0] / p.grad_h_norm[-1] > 1e20
    assert np.all(np.isfinite(p.grad_h_norm))


def test_pascanu_sufficient_condition_bounds_every_step():
    """tanh: |phi'| <= 1, so with the loss on the last step ||dL/dh_(t-1)|| <= sigma_max(W) ||dL/dh_t|| at every
    step; with sigma_max < 1 the gradient must vanish at least geometrically."""
    p = gradlab.probe(gradlab.Config(nonlinearity="tanh", init="gaussian", init_scale=0.4, seq_len=100))
    smax = np.linalg.norm(p.params["weight_hh_l0"], 2)
    g = p.grad_h_norm
    assert smax < 1
    assert np.all(g[:-1] <= smax * g[1:] * (1 + 1e-12))
    assert g[0] / g[-1] <= smax ** 99


def test_saturated_tanh_reference_vanishes_although_sigma_max_is_large():
    """The PyTorch reference case of a saturating tanh RNN (H=6, large weights): units sit near +-1, so
    diag(1 - h^2) W shrinks the gradient even though sigma_max(W) is far above 1."""
    ref = gradlab.load([p for p in GOLDEN if "saturated" in p.stem][0])
    rec = bptt.run(ref.params, ref.x, ref.y, ref.y_mask, "rnn", "tanh", "mse")  # gradlab's own numbers
    assert np.linalg.norm(ref.params["weight_hh_l0"], 2) > 5
    assert np.mean(np.abs(rec["h"])) > 0.9
    assert rec["grad_h_norm"][0] / rec["grad_h_norm"][-1] < 1e-12


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_tanh_init_at_width_64_is_chaotic_and_explodes(seed):
    """A caveat to "large init saturates and vanishes": at H=64, W ~ N(0, 9/H) saturates the units (mean tanh'
    well below 1) yet the gradient *grows* backwards: the network is in the chaotic regime of mean-field theory
    (Poole et al. 2016), where g^2 E[tanh'^2] > 1. Saturation-driven vanishing needs small H or saturating inputs."""
    p = gradlab.probe(gradlab.Config(nonlinearity="tanh", init="gaussian", init_scale=3.0, seq_len=100, seed=seed))
    assert np.mean(1 - p.h[10:] ** 2) < 0.5
    assert p.grad_h_norm[0] / p.grad_h_norm[-1] > 1e6


def test_irnn_keeps_the_gradient_constant_while_preactivations_stay_positive():
    """Identity W_hh with ReLU (Le et al. 2015): with non-negative inputs and weights, every unit stays active,
    the Jacobian is exactly I and the gradient from the last step reaches step 0 unchanged."""
    cfg = gradlab.Config(nonlinearity="relu", init="identity", init_scale=1.0, seq_len=60, hidden=8)
    p0 = gradlab.probe(cfg).params
    params = dict(p0, weight_ih_l0=np.abs(p0["weight_ih_l0"]), bias_ih_l0=np.abs(p0["bias_ih_l0"]) + 0.1,
                  bias_hh_l0=np.abs(p0["bias_hh_l0"]))
    p = gradlab.probe(cfg, params=params)
    assert np.all(p.h > 0)
    np.testing.assert_allclose(p.grad_h_norm, p.grad_h_norm[-1], rtol=1e-13)


def test_lstm_preserves_where_rnn_vanishes_at_defaults():
    """The default story: same batch, same T=100; the tanh RNN's gradient from step 1 is tiny, the LSTM's is not."""
    rnn = gradlab.probe(gradlab.Config(cell="rnn"))
    lstm = gradlab.probe(gradlab.Config(cell="lstm"))
    assert rnn.grad_h_norm[0] / rnn.grad_h_norm[-1] < 1e-15
    assert lstm.grad_c_norm[0] / lstm.grad_c_norm[-1] > 1e3 * rnn.grad_h_norm[0] / rnn.grad_h_norm[-1]
