"""Step functions of the three cells, each forward next to its backward (CS231n's layer pairs, micrograd's habit).

Shapes: B batch, H hidden, G gate pre-activations (H for the RNN; 4H for the LSTM, stacked i, f, g, o, and 3H for the
GRU, stacked r, z, n, as in PyTorch).
The pre-activation a_t = x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T is computed by `bptt` for the RNN and the LSTM
alike; a cell only maps a_t (and c_{t-1}) to h_t, and back. The GRU's candidate needs its two halves apart (r scales
only the recurrent one), so its a_t is (B, 4H): [a_r, a_z, W_in x_t + b_in, W_hn h_{t-1} + b_hn].

Backward is split in two so the BPTT loop stays short: `factors` computes, for a whole chunk of steps at once
(leading axes (C, B, ...)), every local derivative that does not depend on the incoming gradient; `step_backward`
then does the few operations per step that do. Both are exact: no approximation is made anywhere.

Nonlinearities and their derivatives follow PyTorch's autograd formulas (sigmoid = 1/(1+exp(-a)), s' = s(1-s),
tanh' = 1-t^2), so gradlab and PyTorch agree to rounding even in saturation.
"""
from __future__ import annotations

import numpy as np

# ---- vanilla RNN: h_t = phi(a_t) ---------------------------------------------------------------------------------

ACTIVATIONS = {  # (forward into `out`, derivative expressed through h)
    "tanh": (lambda a, out: np.tanh(a, out=out), lambda h: 1.0 - h * h),
    "relu": (lambda a, out: np.maximum(a, 0.0, out=out), lambda h: (h > 0).astype(h.dtype)),
    "linear": (lambda a, out: np.copyto(out, a) if out is not None else a.copy(), lambda h: np.ones_like(h)),
}


def rnn_step_forward(a: np.ndarray, nonlinearity: str, out: np.ndarray | None = None) -> np.ndarray:
    """a (B, H) -> h (B, H), written into `out` when given."""
    if out is None:
        out = np.empty_like(a)
    ACTIVATIONS[nonlinearity][0](a, out)
    return out


def rnn_factors(h: np.ndarray, nonlinearity: str) -> np.ndarray:
    """phi'(a_t) expressed through h_t (all three nonlinearities allow it): (..., B, H)."""
    return ACTIVATIONS[nonlinearity][1](h)


def rnn_step_backward(dh: np.ndarray, deriv: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dh (B, H) = total dL/dh_t, deriv = rnn_factors(h_t) -> da (B, H) = dL/da_t."""
    return np.multiply(dh, deriv, out=out)


# ---- LSTM: gates = (sig(a_i), sig(a_f), tanh(a_g), sig(a_o)); c_t = f c_{t-1} + i g; h_t = o tanh(c_t) -------

def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def lstm_step_forward(a: np.ndarray, c_prev: np.ndarray, gates_out: np.ndarray | None = None,
                      c_out: np.ndarray | None = None, h_out: np.ndarray | None = None):
    """a (B, 4H), c_prev (B, H) -> (h (B, H), c (B, H), gates (B, 4H)), written into the *_out buffers when given
    (the BPTT loop passes slices of its records, so a step allocates nothing)."""
    H = c_prev.shape[-1]
    gates = np.empty_like(a) if gates_out is None else gates_out
    np.negative(a, out=gates)  # sigmoid = 1 / (1 + exp(-a)), PyTorch's formula, computed in place
    np.exp(gates, out=gates)
    gates += 1.0
    np.reciprocal(gates, out=gates)
    np.tanh(a[..., 2 * H:3 * H], out=gates[..., 2 * H:3 * H])
    i, f, g, o = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:3 * H], gates[..., 3 * H:]
    c = np.multiply(f, c_prev, out=c_out)
    c += i * g
    h = np.tanh(c, out=h_out)
    h *= o
    return h, c, gates


def lstm_factors(gates: np.ndarray, c: np.ndarray, c_prev: np.ndarray) -> dict[str, np.ndarray]:
    """Local derivatives of steps (..., B, .): every product in step_backward that does not involve the gradient."""
    H = c.shape[-1]
    i, f, g, o = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:3 * H], gates[..., 3 * H:]
    tc = np.tanh(c)
    # dL/da for i, f, g is dc times these (stacked so one multiply serves all three blocks)
    ifg = np.concatenate([g * i * (1.0 - i), c_prev * f * (1.0 - f), i * (1.0 - g * g)], axis=-1)
    return {
        "ifg": ifg.reshape(ifg.shape[:-1] + (3, H)),  # (..., B, 3, H)
        "o": tc * o * (1.0 - o),                      # dL/da_o = dh * this
        "h_to_c": o * (1.0 - tc * tc),                # dL/dc_t gets dh_t * this
        "f": f,                                       # dL/dc_{t-1} = dL/dc_t * f_t
    }


def lstm_step_backward(dh: np.ndarray, dc_next: np.ndarray, fac: dict[str, np.ndarray], da_out: np.ndarray,
                       dc_out: np.ndarray | None = None):
    """dh (B, H) total dL/dh_t; dc_next (B, H) = the part of dL/dc_t coming from step t+1 (dc_{t+1} f_{t+1}).
    Writes dL/da_t into da_out (B, 4H) and the total dL/dc_t into dc_out; returns (dc, dc_prev_part = dc f_t)."""
    B, H = dh.shape
    dc = np.multiply(dh, fac["h_to_c"], out=dc_out)
    dc += dc_next
    da = da_out.reshape(B, 4, H)
    np.multiply(dc[:, None, :], fac["ifg"], out=da[:, :3])
    np.multiply(dh, fac["o"], out=da[:, 3])
    return dc, dc * fac["f"]


# ---- GRU (PyTorch's nn.GRU): r = sig(a_r), z = sig(a_z), n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
#      h_t = (1 - z) n + z h_{t-1} ----------------------------------------------------------------------------------

def gru_step_forward(a: np.ndarray, h_prev: np.ndarray, gates_out: np.ndarray | None = None,
                     ghn_out: np.ndarray | None = None, h_out: np.ndarray | None = None):
    """a (B, 4H) = [a_r, a_z, W_in x + b_in, W_hn h_prev + b_hn], h_prev (B, H) -> (h (B, H), gates (B, 3H) r, z, n,
    ghn (B, H) = W_hn h_prev + b_hn, which the backward pass needs), written into the *_out buffers when given."""
    H = h_prev.shape[-1]
    gates = np.empty(a.shape[:-1] + (3 * H,), a.dtype) if gates_out is None else gates_out
    rz = gates[..., :2 * H]
    np.negative(a[..., :2 * H], out=rz)  # sigmoid = 1 / (1 + exp(-a)), PyTorch's formula
    np.exp(rz, out=rz)
    rz += 1.0
    np.reciprocal(rz, out=rz)
    r, z, n = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:]
    ghn = np.empty_like(a[..., 3 * H:]) if ghn_out is None else ghn_out
    np.copyto(ghn, a[..., 3 * H:])
    np.multiply(r, ghn, out=n)
    n += a[..., 2 * H:3 * H]
    np.tanh(n, out=n)
    h = np.subtract(h_prev, n, out=h_out)  # (h - n) z + n, in the order ATen's GRU cell computes it
    h *= z
    h += n
    return h, gates, ghn


def gru_factors(gates: np.ndarray, h_prev: np.ndarray, ghn: np.ndarray) -> dict[str, np.ndarray]:
    """Local derivatives of steps (..., B, .), everything in step_backward that does not involve the gradient."""
    H = h_prev.shape[-1]
    r, z, n = gates[..., :H], gates[..., H:2 * H], gates[..., 2 * H:]
    return {
        "n": (1.0 - z) * (1.0 - n * n),     # dL/d(n's pre-activation) = dh * this
        "z": (h_prev - n) * z * (1.0 - z),  # dL/da_z = dh * this
        "r": ghn * r * (1.0 - r),           # dL/da_r = dL/dn_pre * this
        "hn": r,                            # dL/d(W_hn h + b_hn) = dL/dn_pre * r
        "z_keep": z,                        # the direct path: dL/dh_{t-1} gets dh * z
    }


def gru_step_backward(dh: np.ndarray, fac: dict[str, np.ndarray], dah_out: np.ndarray, dax_out: np.ndarray):
    """dh (B, H) total dL/dh_t -> writes dL/d(W_hh h_{t-1} + b_hh) into dah_out (B, 3H) and dL/d(W_ih x_t + b_ih)
    into dax_out (B, 3H) (they differ in the n block only, by the factor r); returns the direct path's share of
    dL/dh_{t-1}, dh z (the rest is dah W_hh)."""
    B, H = dh.shape
    dax, dah = dax_out.reshape(B, 3, H), dah_out.reshape(B, 3, H)
    np.multiply(dh, fac["n"], out=dax[:, 2])
    np.multiply(dh, fac["z"], out=dax[:, 1])
    np.multiply(dax[:, 2], fac["r"], out=dax[:, 0])
    dah[:, :2] = dax[:, :2]
    np.multiply(dax[:, 2], fac["hn"], out=dah[:, 2])
    return dh * fac["z_keep"]
