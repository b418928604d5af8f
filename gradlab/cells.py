"""Step functions of the three cells, each forward next to its backward (CS231n's layer pairs, micrograd's habit).

Shapes: B batch, H hidden, G gate pre-activations (H for the RNN; 4H for the LSTM, stacked i, f, g, o, and 3H for the
GRU, stacked r, z, n, as in PyTorch).
The pre-activation a_t = x_t W_ih^T + b_ih + b_hh + h_{t-1} W_hh^T is computed by `bptt` for the RNN and the LSTM
alike; a cell only maps a_t (and c_{t-1}) to h_t, and back. The GRU's candidate needs its two halves apart (r scales
only the recurrent one), so its a_t is (B, 4H): [W_in x_t + b_in, a_r, a_z, W_hn h_{t-1} + b_hn] (the input half of n
first, so that the last 3H are the blocks of W_hh h_{t-1} + b_hh in W_hh's own order r, z, n).

Layout: every function takes `axis`, the axis along which the gate blocks are stacked: -1 (the default) is the
batch-major (..., B, G) of the records; `bptt` runs feature-major, (..., G, B) with axis=-2, where every gate block of
a step is one contiguous piece of memory (a ufunc on a strided slice costs up to 3.5x one on a contiguous block, and
at these sizes the number and cost of numpy calls is the running time). The arithmetic is the same in both layouts,
element by element.

Backward is split in two so the BPTT loop stays short: `factors` computes, for a whole chunk of steps at once
(leading axes (C, ...)), every local derivative that does not depend on the incoming gradient; `step_backward`
then does the few operations per step that do. Both are exact: no approximation is made anywhere.

Nonlinearities and their derivatives follow PyTorch's autograd formulas (sigmoid = 1/(1+exp(-a)), s' = s(1-s),
tanh' = 1-t^2), so gradlab and PyTorch agree to rounding even in saturation. `negated=True` says that the sigmoid
blocks of `a` already hold -a (bptt negates those rows of its weights, which is exact), saving the negation.
"""
from __future__ import annotations

import numpy as np


def blocks(a: np.ndarray, n: int, axis: int = -1) -> list[np.ndarray]:
    """The n equal blocks of `a` along the gate axis, as views."""
    size = a.shape[axis] // n
    tail = (slice(None),) * (-1 - axis)
    return [a[(Ellipsis, slice(k * size, (k + 1) * size)) + tail] for k in range(n)]


def _span(a: np.ndarray, lo: int, hi: int, axis: int) -> np.ndarray:
    return a[(Ellipsis, slice(lo, hi)) + (slice(None),) * (-1 - axis)]


def _sigmoid_into(a: np.ndarray, out: np.ndarray, negated: bool) -> None:
    """out = 1 / (1 + exp(-a)) (PyTorch's formula), computed in place; a holds -a already when negated."""
    if negated:
        np.exp(a, out=out)
    else:
        np.negative(a, out=out)
        np.exp(out, out=out)
    out += 1.0
    np.reciprocal(out, out=out)


# ---- vanilla RNN: h_t = phi(a_t) ---------------------------------------------------------------------------------

def _one_minus_square(h: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    out = np.multiply(h, h, out=out)
    return np.subtract(1.0, out, out=out)


def _step(h: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    return np.greater(h, 0, out=np.empty_like(h) if out is None else out)


def _ones(h: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    out = np.empty_like(h) if out is None else out
    out[...] = 1.0
    return out


ACTIVATIONS = {  # (forward into `out`, derivative expressed through h, into `out` when given)
    "tanh": (lambda a, out: np.tanh(a, out=out), _one_minus_square),
    "relu": (lambda a, out: np.maximum(a, 0.0, out=out), _step),
    "linear": (lambda a, out: np.copyto(out, a) if out is not None else a.copy(), _ones),
}


def rnn_step_forward(a: np.ndarray, nonlinearity: str, out: np.ndarray | None = None) -> np.ndarray:
    """a (B, H) -> h (B, H), written into `out` when given (elementwise: any layout)."""
    if out is None:
        out = np.empty_like(a)
    ACTIVATIONS[nonlinearity][0](a, out)
    return out


def rnn_factors(h: np.ndarray, nonlinearity: str, out: np.ndarray | None = None) -> np.ndarray:
    """phi'(a_t) expressed through h_t (all three nonlinearities allow it): (..., B, H), into `out` when given."""
    return ACTIVATIONS[nonlinearity][1](h, out)


def rnn_step_backward(dh: np.ndarray, deriv: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """dh (B, H) = total dL/dh_t, deriv = rnn_factors(h_t) -> da (B, H) = dL/da_t."""
    return np.multiply(dh, deriv, out=out)


# ---- LSTM: gates = (sig(a_i), sig(a_f), tanh(a_g), sig(a_o)); c_t = f c_{t-1} + i g; h_t = o tanh(c_t) -------

def lstm_step_forward(a: np.ndarray, c_prev: np.ndarray, gates_out: np.ndarray | None = None,
                      c_out: np.ndarray | None = None, h_out: np.ndarray | None = None, axis: int = -1,
                      negated: bool = False):
    """a (B, 4H), c_prev (B, H) -> (h (B, H), c (B, H), gates (B, 4H)), written into the *_out buffers when given
    (the BPTT loop passes slices of its records, so a step allocates almost nothing). negated: a's i, f, o blocks
    hold -a (its g block holds a either way)."""
    gates = np.empty_like(a) if gates_out is None else gates_out
    _sigmoid_into(a, gates, negated)  # all four blocks in one contiguous pass; g's is overwritten next
    i, f, g, o = blocks(gates, 4, axis)
    np.tanh(blocks(a, 4, axis)[2], out=g)
    c = np.multiply(f, c_prev, out=c_out)
    c += i * g
    h = np.tanh(c, out=h_out)
    h *= o
    return h, c, gates


def lstm_factor_shapes(c_shape: tuple, axis: int = -1) -> dict[str, tuple]:
    """The shapes of lstm_factors' arrays for cell states of shape c_shape (its `out`; "sd" is scratch)."""
    ax = axis % len(c_shape)
    H = c_shape[ax]
    return {"ifg": c_shape[:ax] + (3,) + c_shape[ax:], "o": c_shape, "h_to_c": c_shape,
            "sd": c_shape[:ax] + (4 * H,) + c_shape[ax + 1:]}


def lstm_factors(gates: np.ndarray, c: np.ndarray, c_prev: np.ndarray, axis: int = -1,
                 out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Local derivatives of steps (..., B, .): every product in step_backward that does not involve the gradient.
    Written block by block into `out` (arrays of lstm_factor_shapes, reused by bptt between chunks and calls: at a
    chunk's size a fresh array costs more in page faults than its arithmetic), or into new arrays."""
    if out is None:
        out = {k: np.empty(s, c.dtype) for k, s in lstm_factor_shapes(c.shape, axis).items()}
    i, f, g, o = blocks(gates, 4, axis)
    # s (1 - s) of all four blocks in two calls over the whole (contiguous) gates; g's block is not used
    sd = np.subtract(1.0, gates, out=out["sd"])
    sd *= gates
    sd_i, sd_f, _, sd_o = blocks(sd, 4, axis)
    ax = axis % c.ndim
    # dL/da for i, f, g is dc times these (stacked so one multiply serves all three blocks)
    ifg = out["ifg"]  # (..., B, 3, H) or (..., 3, H, B)
    d_i, d_f, d_g = (ifg[(slice(None),) * ax + (k,)] for k in range(3))
    np.multiply(g, sd_i, out=d_i)                  # g i (1 - i)
    np.multiply(c_prev, sd_f, out=d_f)             # c_prev f (1 - f)
    np.multiply(g, g, out=d_g)
    np.subtract(1.0, d_g, out=d_g)
    d_g *= i                                       # i (1 - g^2)
    tc = np.tanh(c, out=out["h_to_c"])
    fo = np.multiply(tc, sd_o, out=out["o"])       # tc o (1 - o)
    h_to_c = np.multiply(tc, tc, out=tc)
    np.subtract(1.0, h_to_c, out=h_to_c)
    np.multiply(o, h_to_c, out=h_to_c)             # o (1 - tc^2)
    return {
        "ifg": ifg,
        "o": fo,            # dL/da_o = dh * this
        "h_to_c": h_to_c,   # dL/dc_t gets dh_t * this
        "f": f,             # dL/dc_{t-1} = dL/dc_t * f_t
    }


def lstm_step_backward(dh: np.ndarray, dc_next: np.ndarray, fac: dict[str, np.ndarray], da_out: np.ndarray,
                       dc_out: np.ndarray | None = None, axis: int = -1, dc_prev_out: np.ndarray | None = None):
    """dh (B, H) total dL/dh_t; dc_next (B, H) = the part of dL/dc_t coming from step t+1 (dc_{t+1} f_{t+1}).
    Writes dL/da_t into da_out (B, 4H) and the total dL/dc_t into dc_out; returns (dc, dc_prev_part = dc f_t), the
    latter written into dc_prev_out when given (it may be dc_next itself: that is read before)."""
    dc = np.multiply(dh, fac["h_to_c"], out=dc_out)
    dc += dc_next
    ax = axis % da_out.ndim
    da = da_out.reshape(da_out.shape[:ax] + (4, dh.shape[axis]) + da_out.shape[ax + 1:])
    np.multiply(dc if ax == 0 else np.expand_dims(dc, ax), fac["ifg"], out=_span(da, 0, 3, axis - 1))
    np.multiply(dh, fac["o"], out=da[(Ellipsis, 3) + (slice(None),) * (-axis)])
    return dc, np.multiply(dc, fac["f"], out=dc_prev_out)


# ---- GRU (PyTorch's nn.GRU): r = sig(a_r), z = sig(a_z), n = tanh(W_in x + b_in + r (W_hn h + b_hn)),
#      h_t = (1 - z) n + z h_{t-1} ----------------------------------------------------------------------------------

def gru_step_forward(a: np.ndarray, h_prev: np.ndarray, gates_out: np.ndarray | None = None,
                     ghn_out: np.ndarray | None = None, h_out: np.ndarray | None = None, axis: int = -1,
                     negated: bool = False):
    """a (B, 4H) = [W_in x + b_in, a_r, a_z, W_hn h_prev + b_hn], h_prev (B, H) -> (h (B, H), gates (B, 3H) r, z, n,
    ghn (B, H) = W_hn h_prev + b_hn, which the backward pass needs), written into the *_out buffers when given.
    negated: a's r and z blocks hold -a."""
    H = h_prev.shape[axis]
    gates = np.empty(a.shape[:-1] + (3 * H,), a.dtype) if gates_out is None else gates_out
    _sigmoid_into(_span(a, H, 3 * H, axis), _span(gates, 0, 2 * H, axis), negated)
    r, z, n = blocks(gates, 3, axis)
    a_nx, _, _, a_nh = blocks(a, 4, axis)
    ghn = np.empty_like(a_nh) if ghn_out is None else ghn_out
    np.copyto(ghn, a_nh)
    np.multiply(r, ghn, out=n)
    n += a_nx
    np.tanh(n, out=n)
    h = np.subtract(h_prev, n, out=h_out)  # (h - n) z + n, in the order ATen's GRU cell computes it
    h *= z
    h += n
    return h, gates, ghn


def gru_factors(gates: np.ndarray, h_prev: np.ndarray, ghn: np.ndarray, axis: int = -1,
                out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Local derivatives of steps (..., B, .), everything in step_backward that does not involve the gradient,
    written into `out` when given (arrays of h_prev's shape keyed "n", "z", "r", and "tmp", scratch)."""
    r, z, n = blocks(gates, 3, axis)
    if out is None:
        out = {k: np.empty_like(h_prev) for k in ("n", "z", "r", "tmp")}
    tmp = out["tmp"]
    fn = np.subtract(1.0, z, out=out["n"])
    fn *= np.subtract(1.0, np.multiply(n, n, out=tmp), out=tmp)  # (1 - z) (1 - n^2)
    fz = np.subtract(h_prev, n, out=out["z"])
    fz *= z
    fz *= np.subtract(1.0, z, out=tmp)                            # (h_prev - n) z (1 - z)
    fr = np.multiply(ghn, r, out=out["r"])
    fr *= np.subtract(1.0, r, out=tmp)                            # ghn r (1 - r)
    return {
        "n": fn,       # dL/d(n's pre-activation) = dh * this
        "z": fz,       # dL/da_z = dh * this
        "r": fr,       # dL/da_r = dL/dn_pre * this
        "hn": r,       # dL/d(W_hn h + b_hn) = dL/dn_pre * r
        "z_keep": z,   # the direct path: dL/dh_{t-1} gets dh * z
    }


def gru_step_backward(dh: np.ndarray, fac: dict[str, np.ndarray], da_out: np.ndarray, axis: int = -1):
    """dh (B, H) total dL/dh_t -> writes dL/da_t into da_out (B, 4H), blocks as a's: [dL/d(W_in x + b_in), da_r, da_z,
    dL/d(W_hn h + b_hn)] (the two halves of n differ by the factor r); so the last 3H are dL/d(W_hh h_{t-1} + b_hh)
    and the first 3H, rolled by H, dL/d(W_ih x_t + b_ih). Returns the direct path's share of dL/dh_{t-1}, dh z
    (the rest is dL/d(W_hh h_{t-1}) W_hh)."""
    d_nx, d_r, d_z, d_nh = blocks(da_out, 4, axis)
    np.multiply(dh, fac["n"], out=d_nx)
    np.multiply(dh, fac["z"], out=d_z)
    np.multiply(d_nx, fac["r"], out=d_r)
    np.multiply(d_nx, fac["hn"], out=d_nh)
    return dh * fac["z_keep"]
