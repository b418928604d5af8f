"""Initialisation schemes: Config -> parameters keyed like PyTorch's state_dict.

Shapes (G = H gates for the RNN, 4H for the LSTM, stacked i, f, g, o, and 3H for the GRU, stacked r, z, n, as in
PyTorch):
  weight_ih_l0 (G, D), weight_hh_l0 (G, H), bias_ih_l0 (G,), bias_hh_l0 (G,), head.weight (O, H), head.bias (O,).

With k = 1/sqrt(H), every scheme draws the input weights, the biases and the linear read-out ("head") as PyTorch
does, U(-k, k) (the head's fan-in is H, like nn.Linear(H, O)). Schemes differ only in the recurrent matrix W_hh,
which for the LSTM (GRU) is drawn independently for each of the four (three) H x H gate blocks (s = init_scale):
  gaussian    W ~ N(0, s^2 / H)                     (rho(W) -> s and sigma_max -> 2s as H grows)
  orthogonal  W = s * Q, Q Haar-random orthogonal    (QR of a Gaussian matrix with the signs of diag(R) fixed)
  identity    W = s * I                              (IRNN, Le et al. 2015)
  xavier      W ~ U(-a, a), a = s * sqrt(6 / (H + H))  (Glorot uniform)
  pytorch     W ~ U(-s k, s k)                       (PyTorch's default when s = 1)
  chrono      W as pytorch; for the LSTM, b_f ~ log U[1, T - 1] per unit and b_i = -b_f (Tallec & Ollivier 2018,
              T_max = seq_len); for the GRU, b_z ~ log U[1, T - 1] per unit (no input-gate counterpart: the GRU's
              input weight 1 - z is tied to z); the RNN has no gates, so chrono is pytorch there.
For the LSTM (every scheme but chrono) the forget gate's total bias is exactly `forget_bias`: bias_ih_l0[f] =
forget_bias and bias_hh_l0[f] = 0, so b_f is what the user set, not that plus noise.
The GRU's analogue of the forget gate is its update gate z: h' = z h + (1 - z) n, so z is the share of the old state
kept (dh_t/dh_{t-1} contains diag(z_t)), and b_z plays b_f's role: for every scheme but chrono bias_ih_l0[z] =
forget_bias and bias_hh_l0[z] = 0, split as the LSTM's b_f is. (So forget_bias = 0 gives b_z = 0 exactly, not
nn.GRU's U(-k, k) draw; everything else is nn.GRU's init under `pytorch`.)
"""
from __future__ import annotations

import numpy as np

from .config import Config

GATES = {"rnn": 1, "lstm": 4, "gru": 3}  # H x H blocks in weight_hh_l0


def recurrent_matrix(scheme: str, H: int, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One H x H recurrent block under `scheme` (see the module docstring for the exact distributions)."""
    k = 1.0 / np.sqrt(H)
    if scheme == "gaussian":
        return rng.normal(0.0, scale / np.sqrt(H), size=(H, H))
    if scheme == "orthogonal":
        q, r = np.linalg.qr(rng.normal(size=(H, H)))
        return scale * q * np.where(np.diag(r) < 0, -1.0, 1.0)  # sign fix makes Q Haar-distributed
    if scheme == "identity":
        return scale * np.eye(H)
    if scheme == "xavier":
        a = scale * np.sqrt(6.0 / (2 * H))
        return rng.uniform(-a, a, size=(H, H))
    if scheme in ("pytorch", "chrono"):
        return rng.uniform(-scale * k, scale * k, size=(H, H))
    raise ValueError(f"init = {scheme!r} is invalid")


def init_params(cfg: Config, D: int, O: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Fresh parameters for `cfg` with input size D and output size O, in cfg.dtype."""
    H, n = cfg.hidden, GATES[cfg.cell]
    k = 1.0 / np.sqrt(H)
    p = {
        "weight_ih_l0": rng.uniform(-k, k, size=(n * H, D)),
        "weight_hh_l0": np.concatenate([recurrent_matrix(cfg.init, H, cfg.init_scale, rng) for _ in range(n)]),
        "bias_ih_l0": rng.uniform(-k, k, size=n * H),
        "bias_hh_l0": rng.uniform(-k, k, size=n * H),
        "head.weight": rng.uniform(-k, k, size=(O, H)),
        "head.bias": rng.uniform(-k, k, size=O),
    }
    if cfg.cell in ("lstm", "gru"):  # block 1 is the gate that keeps the state: the LSTM's f, the GRU's z
        f = slice(H, 2 * H)
        if cfg.init == "chrono":
            bf = np.log(rng.uniform(1.0, max(cfg.seq_len - 1, 1.0) + 1e-12, size=H))
            if cfg.cell == "lstm":
                p["bias_ih_l0"][:H], p["bias_hh_l0"][:H] = -bf, 0.0
        else:
            bf = cfg.forget_bias
        p["bias_ih_l0"][f], p["bias_hh_l0"][f] = bf, 0.0
    return {name: a.astype(cfg.dtype) for name, a in p.items()}
