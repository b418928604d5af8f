"""Backpropagation through time that records what reaches every step.

`run(params, x, y, y_mask, cell, nonlinearity, loss_kind, truncate=0)` does one forward pass and BPTT (full, or
truncated every `truncate` steps) and returns a dict:
  loss; grads (keyed like params); h (T, B, H); c and gates (T, B, H) / (T, B, 4H) for the LSTM; gates (T, B, 3H),
  r, z, n, for the GRU;
  grad_h_norm (T,): ||dL/dh_t||_F over (B, H) of the *total* gradient at h_t (through the read-out at t and through
  every later step, CS231n's distinction); grad_c_norm (T,) the same for the LSTM's cell state;
  grad_whh_contrib_norm (T,): ||step t's term of dL/dW_hh||_F = ||(dL/d(W_hh h_{t-1} + b_hh))^T h_{t-1}||_F
  (t = 0 is 0: h_{-1} = 0; for the GRU's n block that pre-activation gradient carries the factor r_t);
  grad_x_norm (T,): ||dL/dx_t||_F over (B, D), the total gradient reaching the input at step t (= dL/da_t W_ih);
  for the LSTM, the split of dL/dc_t into its two routes, dL/dc_t = d_t + r_t:
    grad_c_direct_norm (T,) = ||d_t||_F, the part that reached c_t along the cell path only: the loss at steps
      s >= t entering through h_s = o_s tanh(c_s), carried back by f alone,
      d_t = dh_loss_t * o_t * (1 - tanh(c_t)^2) + d_{t+1} * f_{t+1}, d_T = 0;
    grad_c_rest_norm (T,) = ||r_t||_F = ||dL/dc_t - d_t||_F, the part that came back through h_{t-1} into the gates
      at some later step, r_t = dh_next_t * o_t * (1 - tanh(c_t)^2) + r_{t+1} * f_{t+1} with dh_next_t = dL/da_{t+1}
      W_hh (so r_{T-1} = 0, and r = 0 everywhere when W_hh = 0).
    Both are carried through the backward loop as vectors, not obtained as a difference: each stays exact to
    rounding even when it is 1e-30 of the other (the direct path vanishes as prod f; the rest vanishes with W_hh).
Shapes: T time, B batch, D input, H hidden, G = H (RNN), 4H (LSTM) or 3H (GRU), O output. h_{-1} = c_{-1} = 0.

Truncated BPTT (truncate = K > 0): the state entering step t (h, and c for the LSTM) is detached when t > 0 and
t % K == 0, exactly as `h = h.detach()` between chunks of K steps in a PyTorch loop. The forward pass is unchanged;
the backward pass does not carry dL/dh (dL/dc) across a cut, so dL/dh_t holds only the losses in t's own chunk (at
or after t), and every record (the norms, the terms of dL/dW_hh, the LSTM's split) is of these truncated gradients.
Step t's term of dL/dW_hh still uses the value h_{t-1} at a cut: a detached state is a constant, not a zero.

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
    q = a / s
    # Squared in place: a second array of a chunk's size costs a fresh allocation whose page faults take ~10x the
    # arithmetic on these machines (the squares are bitwise the same as np.square's)
    np.multiply(q, q, out=q)
    return np.squeeze(np.sqrt(np.sum(q, axis=axes, keepdims=True)) * s, axis=axes).astype(np.float64)


def _safe_range(dtype: np.dtype) -> tuple[float, float]:
    """(lo, hi): a plain sum of squares strictly inside lost nothing to under- or overflow. The range is the working
    dtype's: float32 entries go subnormal near 1e-38 (float64: lo 1e-280, hi 1e280; float32: ~1e-64, ~1e65)."""
    fi = np.finfo(dtype)
    return max(1e-280, (float(fi.tiny) * 1e6) ** 2), 1e280 if float(fi.max) > 1e150 else (float(fi.max) / 1e6) ** 2


def _step_norms(v: np.ndarray) -> np.ndarray:
    """safe_norm of each step of a chunk v (n, ...) over all its other axes -> (n,), the cheap way: one pass for the
    plain sums of squares, and only steps outside the safe range (vanished, exploded, 0, inf, nan) redone scaled."""
    flat = v.reshape(len(v), -1)
    ss = np.einsum("ti,ti->t", flat, flat, dtype=np.float64)
    norms = np.sqrt(ss)
    lo, hi = _safe_range(v.dtype)
    redo = ~((ss > lo) & (ss < hi))
    if redo.any():
        norms[redo] = safe_norm(flat[redo], (1,))
    return norms


def _term_norms(da: np.ndarray, h_prev: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step t's term of dL/dW_hh, da_t^T h_{t-1}, for each step of a chunk: (their sum (G, H), their norms (n,)).
    da (n, B, G), h_prev (n, B, H).

    The terms are formed once and serve both. Their norms come from the plain sum of squares where that is safely
    inside float range; only steps where it is not (vanished or exploded gradients) are redone with both factors
    scaled by their largest entry, norm = s_a s_h ||(da/s_a)^T (h/s_h)||, which cannot under- or overflow.
    """
    terms = np.matmul(da.transpose(0, 2, 1), h_prev)  # (n, G, H)
    ss = np.einsum("tij,tij->t", terms, terms, dtype=np.float64)
    norms = np.sqrt(ss)
    lo, hi = _safe_range(terms.dtype)
    redo = ~((ss > lo) & (ss < hi))  # also catches 0, inf and nan, which the scaled form reports honestly
    if redo.any():
        a, h = da[redo], h_prev[redo]
        k = len(a)
        sa = np.abs(a.reshape(k, -1)).max(axis=1, initial=0.0)
        sh = np.abs(h.reshape(k, -1)).max(axis=1, initial=0.0)
        sa, sh = np.where((sa > 0) & np.isfinite(sa), sa, 1.0), np.where((sh > 0) & np.isfinite(sh), sh, 1.0)
        scaled = np.matmul((a / sa[:, None, None]).transpose(0, 2, 1), h / sh[:, None, None])
        norms[redo] = np.sqrt(np.einsum("tij,tij->t", scaled, scaled)).astype(np.float64) * sa * sh
    return terms.sum(axis=0), norms


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


def cut_steps(T: int, truncate: int) -> np.ndarray:
    """(T,) bool: True at t when the state entering step t is detached (t > 0 and t % truncate == 0)."""
    t = np.arange(T)
    return (t > 0) & (t % truncate == 0) if truncate else np.zeros(T, bool)


def cut_at(end: int, truncate: int) -> int | None:
    """The first step the gradient of the loss at step `end` reaches under truncation: the start of end's chunk,
    truncate * (end // truncate); None when no cut lies before `end` (always for truncate = 0)."""
    start = truncate * (end // truncate) if truncate else 0
    return start if start > 0 else None


def cut_off(y_mask: np.ndarray, truncate: int) -> np.ndarray:
    """(T,) bool: the steps whose gradient is exactly 0 *because of the truncation*: full BPTT would bring them some
    loss's gradient (a counted step at or after them), but none lies in their own chunk at or after them."""
    counted = np.asarray(y_mask).reshape(len(y_mask), -1).any(axis=1)
    T = len(counted)
    if not truncate:
        return np.zeros(T, bool)
    later = np.cumsum(counted[::-1])[::-1] > 0  # some loss at s >= t
    in_chunk = np.zeros(T, bool)  # some loss at s >= t in t's own chunk
    for t0 in range(0, T, truncate):
        seg = counted[t0:t0 + truncate]
        in_chunk[t0:t0 + truncate] = np.cumsum(seg[::-1])[::-1] > 0
    return later & ~in_chunk


def _fused_weights(params: dict, cell: str) -> np.ndarray:
    """W^T (H+D+1, G') with a_t = [h_{t-1}, x_t, 1] W^T. RNN, LSTM: W = [W_hh | W_ih | b_ih + b_hh] (G' = G).
    GRU: r and z as those, then n's input half [0 | W_in | b_in] and recurrent half [W_hn | 0 | b_hn] (G' = 4H)."""
    W_hh, W_ih, b_ih, b_hh = (params[k] for k in ("weight_hh_l0", "weight_ih_l0", "bias_ih_l0", "bias_hh_l0"))
    if cell != "gru":
        return np.ascontiguousarray(np.concatenate([W_hh, W_ih, (b_ih + b_hh)[:, None]], axis=1).T)
    H, D = W_hh.shape[1], W_ih.shape[1]
    W = np.zeros((4 * H, H + D + 1), W_hh.dtype)
    W[:2 * H] = np.concatenate([W_hh[:2 * H], W_ih[:2 * H], (b_ih[:2 * H] + b_hh[:2 * H])[:, None]], axis=1)
    W[2 * H:3 * H, H:H + D], W[2 * H:3 * H, H + D] = W_ih[2 * H:], b_ih[2 * H:]
    W[3 * H:, :H], W[3 * H:, H + D] = W_hh[2 * H:], b_hh[2 * H:]
    return np.ascontiguousarray(W.T)


def forward(params: dict, x: np.ndarray, cell: str, nonlinearity: str) -> dict[str, np.ndarray]:
    """Unroll the cell over x (T, B, D).

    Returns z (T+1, B, H+D+1) whose row t is [h_{t-1}, x_t, 1], so that a_t = z_t W^T with W = [W_hh | W_ih | b]
    is one matrix product per step (no separate input projection or bias add); h_t is written straight into
    z[t+1, :, :H], and hs = z[:, :, :H] (hs[0] = h_{-1} = 0). For the LSTM also cs (T+1, B, H) and gates (T, B, 4H);
    for the GRU gates (T, B, 3H) and ghn (T, B, H) = W_hn h_{t-1} + b_hn.
    """
    T, B, D = x.shape
    H = params["weight_hh_l0"].shape[1]
    W_T = _fused_weights(params, cell)
    z = np.empty((T + 1, B, H + D + 1), x.dtype)
    z[0, :, :H] = 0.0
    z[:T, :, H:H + D] = x
    z[:, :, H + D] = 1.0
    out = {"z": z, "hs": z[:, :, :H]}
    a = np.empty((B, W_T.shape[1]), x.dtype)
    if cell == "rnn":
        for t in range(T):
            np.matmul(z[t], W_T, out=a)
            cells.rnn_step_forward(a, nonlinearity, out=z[t + 1, :, :H])
        return out
    if cell == "gru":
        gates = out["gates"] = np.empty((T, B, 3 * H), x.dtype)
        ghn = out["ghn"] = np.empty((T, B, H), x.dtype)
        for t in range(T):
            np.matmul(z[t], W_T, out=a)
            cells.gru_step_forward(a, z[t, :, :H], gates[t], ghn[t], z[t + 1, :, :H])
        return out
    G = W_T.shape[1]
    cs = out["cs"] = np.empty((T + 1, B, H), x.dtype)
    cs[0] = 0.0
    gates = out["gates"] = np.empty((T, B, G), x.dtype)
    for t in range(T):
        np.matmul(z[t], W_T, out=a)
        cells.lstm_step_forward(a, cs[t], gates[t], cs[t + 1], z[t + 1, :, :H])
    return out


def run(params: dict, x: np.ndarray, y: np.ndarray, y_mask: np.ndarray, cell: str, nonlinearity: str,
        loss_kind: str, record: bool = True, truncate: int = 0) -> dict:
    """One forward pass and BPTT with per-step recording (see the module docstring); truncate = K > 0 cuts the
    gradient at the state entering every step t > 0 with t % K == 0 (0: full BPTT).

    record=False skips the per-step norms (a training step needs only the loss and the gradients)."""
    with np.errstate(all="ignore"):  # blow-ups are data here: they are recorded and flagged, not warned about
        return _run(params, x, y, y_mask, cell, nonlinearity, loss_kind, record, truncate)


def _run(params, x, y, y_mask, cell, nonlinearity, loss_kind, record, truncate):
    dtype = params["weight_hh_l0"].dtype
    x, y_mask = x.astype(dtype, copy=False), y_mask.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False) if loss_kind == "mse" else y
    T, B, D = x.shape
    W_hh, W_ih, W_y = params["weight_hh_l0"], params["weight_ih_l0"], params["head.weight"]
    G, H = W_hh.shape
    fw = forward(params, x, cell, nonlinearity)
    z, hs = fw["z"], fw["hs"]
    h = hs[1:]

    yhat = h @ W_y.T + params["head.bias"]
    loss, dyhat = head_loss(yhat, y, y_mask, loss_kind)
    O = W_y.shape[0]
    grads = {
        "head.weight": dyhat.reshape(-1, O).T @ h.reshape(-1, H),
        "head.bias": dyhat.sum(axis=(0, 1)),
    }
    dh_loss = dyhat @ W_y  # (T, B, H): what the read-out at t sends to h_t

    cut = cut_steps(T, truncate)
    dW_hh = np.zeros_like(W_hh)
    dW_xb = np.zeros((G, D + 1), dtype)  # [dW_ih | db_ih] from one product with z's [x_t, 1] columns
    db_hh = np.zeros(G, dtype)  # the GRU's own (its n block differs from db_ih); RNN and LSTM: db_hh = db_ih
    grad_h, grad_x, contrib = np.empty(T), np.empty(T), np.empty(T)
    grad_c, grad_cd, grad_cr = np.empty(T), np.empty(T), np.empty(T)
    dh_next = np.zeros((B, H), dtype)
    dc_next = np.zeros((B, H), dtype)
    d_next = np.zeros((B, H), dtype)  # d_{t+1} f_{t+1}: the direct cell path's share of dc_next
    r_next = np.zeros((B, H), dtype)  # r_{t+1} f_{t+1}: the share that entered through some h_{s-1}, s > t
    C = min(CHUNK, T)
    da_buf, dh_buf, dc_buf = np.empty((C, B, G), dtype), np.empty((C, B, H), dtype), np.empty((C, B, H), dtype)
    if record and cell == "lstm":
        dd_buf, dr_buf = np.empty((C, B, H), dtype), np.empty((C, B, H), dtype)
    if cell == "gru":
        dax_buf = np.empty((C, B, G), dtype)  # dL/d(W_ih x_t + b_ih), which differs from da in the n block
    for t1 in range(T, 0, -CHUNK):
        t0 = max(0, t1 - CHUNK)
        n = t1 - t0
        da, dhs, dcs = da_buf[:n], dh_buf[:n], dc_buf[:n]
        dax = dax_buf[:n] if cell == "gru" else da
        if cell == "rnn":
            deriv = cells.rnn_factors(hs[t0 + 1:t1 + 1], nonlinearity)
            for k in range(n - 1, -1, -1):
                dh = np.add(dh_loss[t0 + k], dh_next, out=dhs[k])
                cells.rnn_step_backward(dh, deriv[k], out=da[k])
                np.matmul(da[k], W_hh, out=dh_next)
                if cut[t0 + k]:  # the state entering step t was detached: nothing flows on to h_{t-1}
                    dh_next[:] = 0.0
        elif cell == "gru":
            fac = cells.gru_factors(fw["gates"][t0:t1], hs[t0:t1], fw["ghn"][t0:t1])
            for k in range(n - 1, -1, -1):
                dh = np.add(dh_loss[t0 + k], dh_next, out=dhs[k])
                keep = cells.gru_step_backward(dh, {name: v[k] for name, v in fac.items()}, da[k], dax[k])
                np.matmul(da[k], W_hh, out=dh_next)
                dh_next += keep
                if cut[t0 + k]:
                    dh_next[:] = 0.0
            db_hh += da.sum(axis=(0, 1))
        else:
            cs, gates = fw["cs"], fw["gates"]
            fac = cells.lstm_factors(gates[t0:t1], cs[t0 + 1:t1 + 1], cs[t0:t1])
            if record:
                dds, drs = dd_buf[:n], dr_buf[:n]
                np.multiply(dh_loss[t0:t1], fac["h_to_c"], out=dds)  # the loss's own entries into c, whole chunk
            for k in range(n - 1, -1, -1):
                dh = np.add(dh_loss[t0 + k], dh_next, out=dhs[k])
                fac_k = {name: v[k] for name, v in fac.items()}
                _, dc_next = cells.lstm_step_backward(dh, dc_next, fac_k, da[k], dcs[k])
                if record:  # the same recurrence as dc, fed separately by the two sources of dh
                    d, r = dds[k], drs[k]
                    d += d_next
                    np.multiply(d, fac_k["f"], out=d_next)
                    np.multiply(dh_next, fac_k["h_to_c"], out=r)  # dh_next is still step t+1's here
                    r += r_next
                    np.multiply(r, fac_k["f"], out=r_next)
                np.matmul(da[k], W_hh, out=dh_next)
                if cut[t0 + k]:  # h_{t-1} and c_{t-1} were both detached
                    dh_next[:] = 0.0
                    dc_next = np.zeros_like(dc_next)
                    d_next[:], r_next[:] = 0.0, 0.0
            if record:
                grad_c[t0:t1] = _step_norms(dcs)
                grad_cd[t0:t1] = _step_norms(dds)
                grad_cr[t0:t1] = _step_norms(drs)
        z_chunk = z[t0:t1].reshape(n * B, H + D + 1)
        dW_xb += dax.reshape(n * B, G).T @ z_chunk[:, H:]
        if record:
            grad_h[t0:t1] = _step_norms(dhs)
            grad_x[t0:t1] = _step_norms((dax.reshape(n * B, G) @ W_ih).reshape(n, B, D))  # dL/dx_t = dL/da_t W_ih
            summed, contrib[t0:t1] = _term_norms(da, hs[t0:t1])
            dW_hh += summed
        else:
            dW_hh += da.reshape(n * B, G).T @ z_chunk[:, :H]
    db = dW_xb[:, D].copy()
    grads.update({"weight_ih_l0": np.ascontiguousarray(dW_xb[:, :D]), "weight_hh_l0": dW_hh, "bias_ih_l0": db,
                  "bias_hh_l0": db_hh if cell == "gru" else db.copy()})
    rec = {"loss": float(loss), "grads": grads, "h": h, "yhat": yhat}
    if record:
        rec.update(grad_h_norm=grad_h, grad_whh_contrib_norm=contrib, grad_x_norm=grad_x)
    if cell == "gru":
        rec.update(gates=fw["gates"])
    if cell == "lstm":
        rec.update(c=fw["cs"][1:], gates=fw["gates"])
        if record:
            rec.update(grad_c_norm=grad_c, grad_c_direct_norm=grad_cd, grad_c_rest_norm=grad_cr)
    return rec
