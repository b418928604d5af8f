"""Backpropagation through time that records what reaches every step.

`run(params, x, y, y_mask, cell, nonlinearity, loss_kind)` does one forward pass and full BPTT and returns a dict:
  loss; grads (keyed like params); h (T, B, H); c and gates (T, B, H) / (T, B, 4H) for the LSTM;
  grad_h_norm (T,): ||dL/dh_t||_F over (B, H) of the *total* gradient at h_t (through the read-out at t and through
  every later step, CS231n's distinction); grad_c_norm (T,) the same for the LSTM's cell state;
  grad_whh_contrib_norm (T,): ||step t's term of dL/dW_hh||_F (t = 0 is 0: h_{-1} = 0).
Shapes: T time, B batch, D input, H hidden, G = H (RNN) or 4H (LSTM), O output. h_{-1} = c_{-1} = 0.

The read-out is y_hat_t = head(h_t) at every step; the loss averages over the steps where y_mask is 1:
  mse:  L = sum_tb m_tb mean_o (y_hat_tbo - y_tbo)^2 / sum_tb m_tb
  xent: L = sum_tb m_tb CE(y_hat_tb, y_tb) / sum_tb m_tb
Norms are computed scaled by the largest entry, so they stay exact far below 1e-154 (where squares underflow) and
above 1e154 (where they overflow); genuinely zero or non-finite values are returned as they are, never raised on.
"""
from __future__ import annotations

import numpy as np

from . import cells

CHUNK = 32  # steps per block in the backward pass: one GEMM per block for the weight gradients


def safe_norm(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Frobenius norm over `axes` without under/overflow of the squares; 0, inf and nan pass through honestly."""
    m = np.max(np.abs(a), axis=axes, keepdims=True) if a.size else np.zeros([1] * a.ndim, a.dtype)
    s = np.where((m > 0) & np.isfinite(m), m, 1.0)
    return np.squeeze(np.sqrt(np.sum(np.square(a / s), axis=axes, keepdims=True)) * s, axis=axes).astype(np.float64)


def _term_norms(da: np.ndarray, h_prev: np.ndarray) -> np.ndarray:
    """||da_t^T h_{t-1}||_F for each step of a chunk, da (n, B, G), h_prev (n, B, H).

    Both factors are scaled by their largest entry first, so the (n, G, H) products cannot under- or overflow and
    need no second scan for their maximum: norm = s_a s_h ||(da/s_a)^T (h/s_h)||.
    """
    n = da.shape[0]
    sa = np.abs(da.reshape(n, -1)).max(axis=1, initial=0.0)
    sh = np.abs(h_prev.reshape(n, -1)).max(axis=1, initial=0.0)
    sa, sh = np.where((sa > 0) & np.isfinite(sa), sa, 1.0), np.where((sh > 0) & np.isfinite(sh), sh, 1.0)
    terms = np.matmul((da / sa[:, None, None]).transpose(0, 2, 1), h_prev / sh[:, None, None])
    return np.sqrt(np.einsum("tij,tij->t", terms, terms)).astype(np.float64) * sa * sh


def head_loss(yhat: np.ndarray, y: np.ndarray, y_mask: np.ndarray, loss_kind: str):
    """yhat (T, B, O) -> (loss, dL/dyhat (T, B, O))."""
    denom = y_mask.sum()
    if loss_kind == "mse":
        err = yhat - y
        O = yhat.shape[-1]
        loss = np.sum(y_mask[..., None] * err * err) / (O * denom)
        return loss, err * (2.0 * y_mask[..., None] / (O * denom))
    z = yhat - yhat.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    onehot = np.eye(yhat.shape[-1], dtype=yhat.dtype)[y]
    loss = -np.sum(y_mask[..., None] * onehot * logp) / denom
    return loss, (np.exp(logp) - onehot) * (y_mask[..., None] / denom)


def forward(params: dict, x: np.ndarray, cell: str, nonlinearity: str) -> dict[str, np.ndarray]:
    """Unroll the cell over x (T, B, D). Returns hs (T+1, B, H) with hs[0] = h_{-1} = 0 (and cs, gates for the LSTM)."""
    T, B, D = x.shape
    W_hh_T = np.ascontiguousarray(params["weight_hh_l0"].T)  # (H, G)
    H, G = W_hh_T.shape
    xw = (x.reshape(T * B, D) @ params["weight_ih_l0"].T + (params["bias_ih_l0"] + params["bias_hh_l0"]))
    xw = xw.reshape(T, B, G)
    hs = np.zeros((T + 1, B, H), x.dtype)
    out = {"hs": hs}
    if cell == "rnn":
        for t in range(T):
            hs[t + 1] = cells.rnn_step_forward(xw[t] + hs[t] @ W_hh_T, nonlinearity)
        return out
    cs = out["cs"] = np.zeros((T + 1, B, H), x.dtype)
    gates = out["gates"] = np.empty((T, B, G), x.dtype)
    for t in range(T):
        hs[t + 1], cs[t + 1], _ = cells.lstm_step_forward(xw[t] + hs[t] @ W_hh_T, cs[t], gates[t])
    return out


def run(params: dict, x: np.ndarray, y: np.ndarray, y_mask: np.ndarray, cell: str, nonlinearity: str,
        loss_kind: str, record: bool = True) -> dict:
    """One forward pass and full BPTT with per-step recording (see the module docstring).

    record=False skips the per-step norms (a training step needs only the loss and the gradients)."""
    with np.errstate(all="ignore"):  # blow-ups are data here: they are recorded and flagged, not warned about
        return _run(params, x, y, y_mask, cell, nonlinearity, loss_kind, record)


def _run(params, x, y, y_mask, cell, nonlinearity, loss_kind, record):
    dtype = params["weight_hh_l0"].dtype
    x, y_mask = x.astype(dtype, copy=False), y_mask.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False) if loss_kind == "mse" else y
    T, B, D = x.shape
    W_hh, W_y = params["weight_hh_l0"], params["head.weight"]
    G, H = W_hh.shape
    fw = forward(params, x, cell, nonlinearity)
    hs = fw["hs"]
    h = hs[1:]

    yhat = h @ W_y.T + params["head.bias"]
    loss, dyhat = head_loss(yhat, y, y_mask, loss_kind)
    O = W_y.shape[0]
    grads = {
        "head.weight": dyhat.reshape(-1, O).T @ h.reshape(-1, H),
        "head.bias": dyhat.sum(axis=(0, 1)),
    }
    dh_loss = dyhat @ W_y  # (T, B, H): what the read-out at t sends to h_t

    dW_hh = np.zeros_like(W_hh)
    dW_ih = np.zeros_like(params["weight_ih_l0"])
    db = np.zeros(G, dtype)
    grad_h = np.empty(T)
    grad_c = np.empty(T)
    contrib = np.empty(T)
    dh_next = np.zeros((B, H), dtype)
    dc_next = np.zeros((B, H), dtype)
    for t1 in range(T, 0, -CHUNK):
        t0 = max(0, t1 - CHUNK)
        n = t1 - t0
        da = np.empty((n, B, G), dtype)
        dh_buf = np.empty((n, B, H), dtype)
        if cell == "rnn":
            deriv = cells.rnn_factors(hs[t0 + 1:t1 + 1], nonlinearity)
            for k in range(n - 1, -1, -1):
                dh_buf[k] = dh = dh_loss[t0 + k] + dh_next
                da[k] = cells.rnn_step_backward(dh, deriv[k])
                dh_next = da[k] @ W_hh
        else:
            cs, gates = fw["cs"], fw["gates"]
            fac = cells.lstm_factors(gates[t0:t1], cs[t0 + 1:t1 + 1], cs[t0:t1])
            dc_buf = np.empty((n, B, H), dtype)
            for k in range(n - 1, -1, -1):
                dh_buf[k] = dh = dh_loss[t0 + k] + dh_next
                dc_buf[k], dc_next = cells.lstm_step_backward(dh, dc_next, {name: v[k] for name, v in fac.items()}, da[k])
                dh_next = da[k] @ W_hh
            if record:
                grad_c[t0:t1] = safe_norm(dc_buf, (1, 2))
        if record:
            grad_h[t0:t1] = safe_norm(dh_buf, (1, 2))
            contrib[t0:t1] = _term_norms(da, hs[t0:t1])
        dW_hh += da.reshape(n * B, G).T @ hs[t0:t1].reshape(n * B, H)
        dW_ih += da.reshape(n * B, G).T @ x[t0:t1].reshape(n * B, D)
        db += da.sum(axis=(0, 1))
    grads.update({"weight_ih_l0": dW_ih, "weight_hh_l0": dW_hh, "bias_ih_l0": db, "bias_hh_l0": db.copy()})
    rec = {"loss": float(loss), "grads": grads, "h": h, "yhat": yhat}
    if record:
        rec.update(grad_h_norm=grad_h, grad_whh_contrib_norm=contrib)
    if cell == "lstm":
        rec.update(c=fw["cs"][1:], gates=fw["gates"])
        if record:
            rec["grad_c_norm"] = grad_c
    return rec
