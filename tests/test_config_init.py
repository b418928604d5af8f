"""Config validation and the exact definition of every initialisation scheme."""
import dataclasses
import json

import numpy as np
import pytest

from gradlab import Config
from gradlab.config import CELLS, INITS
from gradlab.init import GATES, init_params, recurrent_matrix


def test_defaults_round_trip_and_hash():
    cfg = Config()
    assert Config.from_json(cfg.to_json()) == cfg
    assert hash(Config(seq_len=200)) == hash(Config.from_dict({"seq_len": "200"}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seq_len = 3


@pytest.mark.parametrize("field,value,words", [
    ("seq_len", -3, ["seq_len", "-3", "[1, 5000]"]),
    ("seq_len", 2.5, ["seq_len", "2.5", "integer"]),
    ("hidden", True, ["hidden", "True"]),
    ("init", "he", ["init", "'he'", "orthogonal"]),
    ("init_scale", float("nan"), ["init_scale", "nan", "[0, 10]"]),
    ("lr", 0.0, ["lr", "(0, 10]"]),
    ("dtype", "float16", ["dtype", "float32"]),
])
def test_invalid_values_name_field_value_and_range(field, value, words):
    with pytest.raises(ValueError) as e:
        Config(**{field: value})
    assert all(w in str(e.value) for w in words), str(e.value)


def test_task_minimum_length_and_unknown_fields():
    with pytest.raises(ValueError, match="too short for task 'temporal_order'"):
        Config(task="temporal_order", seq_len=5)
    with pytest.raises(ValueError, match="unknown config field"):
        Config.from_dict({"seqlen": 3})
    with pytest.raises(ValueError, match="seq_len = 'abc'"):
        Config.from_dict({"seq_len": "abc"})
    with pytest.raises(ValueError, match="not valid JSON"):
        Config.from_json("{")


def test_json_is_plain():
    d = json.loads(Config(init_scale=1.5).to_json())
    assert d["init_scale"] == 1.5 and d["cell"] == "rnn" and len(d) == len(dataclasses.fields(Config))


H = 256


def test_gaussian_variance():
    W = recurrent_matrix("gaussian", H, 1.3, np.random.default_rng(0))
    assert W.std() == pytest.approx(1.3 / np.sqrt(H), rel=0.01)
    assert np.abs(np.linalg.eigvals(W)).max() == pytest.approx(1.3, rel=0.1)  # circular law: rho -> scale


def test_orthogonal_identity_xavier_pytorch():
    rng = np.random.default_rng(0)
    Q = recurrent_matrix("orthogonal", H, 0.9, rng)
    assert np.allclose(Q.T @ Q, 0.81 * np.eye(H), atol=1e-12)
    assert np.array_equal(recurrent_matrix("identity", 5, 1.1, rng), 1.1 * np.eye(5))
    X = recurrent_matrix("xavier", H, 2.0, rng)
    a = 2.0 * np.sqrt(6 / (2 * H))
    assert np.abs(X).max() <= a and np.abs(X).max() > 0.99 * a
    P = recurrent_matrix("pytorch", H, 1.0, rng)
    assert np.abs(P).max() <= 1 / np.sqrt(H) and np.abs(P).max() > 0.99 / np.sqrt(H)


def test_orthogonal_is_not_biased_towards_one_sign():
    """Haar measure: the QR sign fix matters; without it det(Q)'s distribution and the diagonal are skewed."""
    diag = np.array([recurrent_matrix("orthogonal", 4, 1.0, np.random.default_rng(s))[0, 0] for s in range(2000)])
    assert abs(np.mean(diag)) < 0.05


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("cell", CELLS)
def test_param_shapes_dtype_and_forget_bias(init, cell):
    """forget_bias is the total bias of the gate that keeps the state, block 1 in both gated cells: the LSTM's f and
    the GRU's update gate z (h' = z h + (1 - z) n); chrono draws it per unit, and only the LSTM has b_i = -b_f."""
    cfg = Config(cell=cell, init=init, hidden=8, forget_bias=2.5, dtype="float32", seq_len=50)
    p = init_params(cfg, 3, 2, np.random.default_rng(0))
    G = GATES[cell] * 8
    assert {k: v.shape for k, v in p.items()} == {
        "weight_ih_l0": (G, 3), "weight_hh_l0": (G, 8), "bias_ih_l0": (G,), "bias_hh_l0": (G,),
        "head.weight": (2, 8), "head.bias": (2,)}
    assert all(v.dtype == np.float32 for v in p.values())
    if cell == "lstm":
        bf = p["bias_ih_l0"][8:16] + p["bias_hh_l0"][8:16]
        if init == "chrono":
            assert np.all(bf >= 0) and np.all(bf <= np.log(49) + 1e-6)
            assert np.allclose(p["bias_ih_l0"][:8] + p["bias_hh_l0"][:8], -bf)
        else:
            assert np.all(bf == 2.5)
    if cell == "gru":
        bz = p["bias_ih_l0"][8:16] + p["bias_hh_l0"][8:16]
        assert np.all(p["bias_hh_l0"][8:16] == 0)  # split as the LSTM's b_f: all of it in bias_ih
        if init == "chrono":
            assert np.all(bz >= 0) and np.all(bz <= np.log(49) + 1e-6) and np.ptp(bz) > 0
        else:
            assert np.all(bz == 2.5)
        k = 1 / np.sqrt(8)
        for b in ("bias_ih_l0", "bias_hh_l0"):  # r and n keep nn.GRU's U(-k, k), also under chrono
            rn = np.r_[p[b][:8], p[b][16:]]
            assert np.all(np.abs(rn) <= k) and np.ptp(rn) > 0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_recurrent_init_is_per_gate_block(cell):
    cfg = Config(cell=cell, init="orthogonal", init_scale=0.5, hidden=6)
    W = init_params(cfg, 2, 1, np.random.default_rng(0))["weight_hh_l0"]
    assert W.shape == (GATES[cell] * 6, 6)
    for k in range(GATES[cell]):
        blk = W[6 * k:6 * (k + 1)]
        assert np.allclose(blk.T @ blk, 0.25 * np.eye(6), atol=1e-12)
    assert not np.allclose(W[:6], W[6:12])
