"""gradlab against PyTorch autograd: reference bundles computed with torch autograd in float64 (tests/fixtures/golden:
tanh/ReLU/linear RNNs, LSTMs on MSE and masked cross-entropy, a saturating and an exploding case, GRUs (nn.GRU) on
MSE and masked cross-entropy, and truncated BPTT for all three cells (`truncate` K in the config: the state entering
step t detached when t % K == 0, t > 0); each holds its parameters, batch and torch's values under the gradlab bundle
format)."""
import numpy as np
import pytest
from conftest import GOLDEN

import gradlab

assert GOLDEN, "the golden fixtures are missing"


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.stem)
def test_matches_pytorch_autograd(path):
    errors = gradlab.verify(path)
    b = gradlab.load(path)
    # grad_x_norm (||dL/dx_t||) is in every reference: a fixture without it is a stale copy
    expected = {"loss", "grad_h_norm", "grad_whh_contrib_norm", "grad_x_norm", "h"} | {f"grad.{k}" for k in b.params}
    if b.cell == "lstm":
        expected |= {"grad_c_norm", "c", "gates"}
    if b.cell == "gru":
        expected |= {"gates"}
    assert expected <= set(errors)  # every recorded quantity was compared, not just some
    bad = {k: v for k, v in errors.items() if not v <= 1e-10}
    assert not bad, bad


def test_the_references_cover_every_cell_and_truncation():
    """A fixture set that lost its GRU or truncated cases would pass the test above vacuously."""
    refs = {p.stem: gradlab.load(p) for p in GOLDEN}
    assert {b.cell for b in refs.values()} == set(gradlab.config.CELLS)
    truncated = {b.cell: b.truncate for b in refs.values() if b.truncate}
    assert set(truncated) == {"rnn", "lstm", "gru"} and all(k > 1 for k in truncated.values())


@pytest.mark.parametrize("path", [p for p in GOLDEN if "truncated" in p.stem], ids=lambda p: p.stem)
def test_truncated_references_are_not_full_bptt(path, tmp_path):
    """verify honours the bundle's truncate: recomputed as full BPTT the same bundle fails, so the match above is a
    match of the truncated gradients (zero before the last chunk for a last-step loss, not merely small)."""
    b = gradlab.load(path)
    b.truncate, b.note = 0, '{"truncate": 0}'
    b.save(tmp_path / "full.npz")
    errors = gradlab.verify(tmp_path / "full.npz")
    assert errors["grad_h_norm"] > 1e-3 and errors["grad.weight_hh_l0"] > 1e-3


def test_verify_catches_a_wrong_bundle(tmp_path):
    """verify must be able to fail: alter one recorded value and it has to say so."""
    b = gradlab.load(GOLDEN[0])
    b.grad_h_norm = b.grad_h_norm.copy()
    b.grad_h_norm[3] *= 1 + 1e-6
    b.grad_x_norm = b.grad_x_norm.copy()
    b.grad_x_norm[0] *= 1 - 3e-7
    b.grads["weight_hh_l0"] = b.grads["weight_hh_l0"] + 1e-5
    b.save(tmp_path / "tampered.npz")
    errors = gradlab.verify(tmp_path / "tampered.npz")
    assert errors["grad_h_norm"] == pytest.approx(1e-6, rel=1e-3)
    assert errors["grad_x_norm"] == pytest.approx(3e-7, rel=1e-3)
    assert errors["grad.weight_hh_l0"] > 1e-7
    assert errors["loss"] <= 1e-12


def test_linear_orthogonal_reference_follows_theory():
    b = gradlab.load([p for p in GOLDEN if "linear" in p.stem][0])
    g = b.grad_h_norm
    T = len(g)
    assert np.allclose(g / g[-1], 0.9 ** (T - 1 - np.arange(T)), rtol=1e-13, atol=0)
