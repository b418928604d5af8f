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

How it is fast (at H = 64 the time is the number of numpy calls and the page faults of fresh arrays, not Python's
loop; measured in benchmarks/, facts in docs/tasks.md): one matrix product per step forward (a_t = W z_t,
z_t = [h_{t-1}; x_t; 1]) and one back (dL/dh_{t-1} = W_hh^T dL/da_t); every array feature-major, (T, features, B), so a
gate block is contiguous; the sigmoid rows of W negated once, so exp(-a) is one call on all gates; the derivative
factors and the weight gradients computed per chunk of CHUNK steps (one GEMM each); the read-out's gradient added only
at steps where there is one; scratch arrays kept between calls (_workspace). The records come back batch-major
(gates and c as transposed views). None of this changes a value: tests/test_engine.py holds it to the cells' step
functions bit for bit and to the reference forward and PyTorch's autograd to 1e-13.
"""
from __future__ import annotations

import threading

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


def _safe_range(dtype: np.dtype, count: int) -> tuple[float, float]:
    """(lo, hi): a plain sum of `count` squares, each squared in `dtype`, strictly inside lost nothing that matters
    to under- or overflow (squares below the dtype's smallest normal are flushed or subnormal: lo keeps all of them
    together below 1e-7 of the sum). float64: lo 1e-280, hi 1e280; float32: lo ~ count * 1e-31, hi ~ 1e38."""
    fi = np.finfo(dtype)
    lo = max(1e-280, count * float(fi.tiny) / 1e-7)
    return lo, 1e280 if float(fi.max) > 1e150 else float(fi.max) / 4


def _sum_squares(v: np.ndarray, sq: np.ndarray | None = None) -> np.ndarray:
    """Per-step plain sums of squares of v (n, ...) over all its other axes, squared and summed (pairwise) in v's own
    dtype, as float64 (n,); sq is scratch of v's size for the squares (or None)."""
    flat = v.reshape(len(v), -1)
    with np.errstate(all="ignore"):  # out of range is detected by the caller, and redone
        sq = np.multiply(flat, flat, out=None if sq is None else sq.reshape(flat.shape))
        return sq.sum(axis=1).astype(np.float64)


def _step_norms(v: np.ndarray) -> np.ndarray:
    """safe_norm of each step of a chunk v (n, ...) over all its other axes -> (n,), the cheap way: one pass for the
    plain sums of squares, and only steps outside the safe range (vanished, exploded, 0, inf, nan) redone: float32
    ones from float64 squares (which cannot under- or overflow for float32 numbers), float64 ones scaled."""
    ss = _sum_squares(v)
    norms = np.sqrt(ss)
    lo, hi = _safe_range(v.dtype, v[0].size if len(v) else 1)
    redo = np.flatnonzero(~((ss > lo) & (ss < hi)))
    if len(redo):
        if v.dtype.itemsize < 8:
            r = v[redo].reshape(len(redo), -1).astype(np.float64)
            norms[redo] = np.sqrt(np.einsum("ti,ti->t", r, r))
        else:
            norms[redo] = safe_norm(v[redo], tuple(range(1, v.ndim)))
    return norms


def _term_norms_of(terms: np.ndarray, da: np.ndarray, h_prev: np.ndarray, sq: np.ndarray | None = None) -> np.ndarray:
    """The norms (n,) of the terms (n, G, H) = da h_prev^T, da (n, G, B), h_prev (n, H, B) (feature-major); sq is
    scratch of terms' shape (or None).

    Their norms come from the plain sum of squares where that is safely inside float range. Steps where it is not
    (vanished or exploded gradients) are redone: from the terms in float64 when the terms themselves are intact
    (float32 terms whose largest entry is far above float32's underflow: float64 squares of float32 numbers can
    neither under- nor overflow), otherwise with both factors scaled by their largest entry,
    norm = s_a s_h ||(da/s_a) (h/s_h)^T||, which cannot under- or overflow; a step whose da is exactly 0 is 0.
    """
    lo, hi = _safe_range(terms.dtype, terms[0].size if len(terms) else 1)
    ss = _sum_squares(terms, sq)  # out of range is detected below, and redone
    norms = np.sqrt(ss)
    redo = np.flatnonzero(~((ss > lo) & (ss < hi)))  # also catches 0, inf and nan, reported honestly below
    if len(redo) == 0:
        return norms
    if terms.dtype != np.float64:
        flat = terms.reshape(len(terms), -1)
        m = np.abs(flat[redo]).max(axis=1)
        intact = (m >= float(np.finfo(terms.dtype).tiny) * 2.0**24) & np.isfinite(m)
        if intact.any():
            t64 = flat[redo[intact]].astype(np.float64)
            norms[redo[intact]] = np.sqrt(np.einsum("ti,ti->t", t64, t64))
            redo = redo[~intact]
    if len(redo) == 0:
        return norms
    a, h = da[redo], h_prev[redo]
    k = len(a)
    sa = np.abs(a.reshape(k, -1)).max(axis=1, initial=0.0)
    sh = np.abs(h.reshape(k, -1)).max(axis=1, initial=0.0)
    zero = (sa == 0) | (sh == 0)  # an exactly zero factor: the term is exactly 0
    norms[redo[zero]] = 0.0
    a, h, sa, sh, redo = a[~zero], h[~zero], sa[~zero], sh[~zero], redo[~zero]
    if len(redo):
        sa, sh = np.where(np.isfinite(sa), sa, 1.0), np.where(np.isfinite(sh), sh, 1.0)
        scaled = np.matmul(a / sa[:, None, None], (h / sh[:, None, None]).transpose(0, 2, 1))
        norms[redo] = np.sqrt(np.einsum("tij,tij->t", scaled, scaled)).astype(np.float64) * sa * sh
    return norms


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
    """W (G', H+D+1) with a_t = W [h_{t-1}; x_t; 1]. RNN, LSTM: W = [W_hh | W_ih | b_ih + b_hh] (G' = G).
    GRU (G' = 4H): n's input half [0 | W_in | b_in] first, then r and z as those, then n's recurrent half
    [W_hn | 0 | b_hn], so that rows H: are W_hh's blocks in W_hh's order."""
    W_hh, W_ih, b_ih, b_hh = (params[k] for k in ("weight_hh_l0", "weight_ih_l0", "bias_ih_l0", "bias_hh_l0"))
    if cell != "gru":
        return np.concatenate([W_hh, W_ih, (b_ih + b_hh)[:, None]], axis=1)
    H, D = W_hh.shape[1], W_ih.shape[1]
    W = np.zeros((4 * H, H + D + 1), W_hh.dtype)
    W[H:3 * H] = np.concatenate([W_hh[:2 * H], W_ih[:2 * H], (b_ih[:2 * H] + b_hh[:2 * H])[:, None]], axis=1)
    W[:H, H:H + D], W[:H, H + D] = W_ih[2 * H:], b_ih[2 * H:]
    W[3 * H:, :H], W[3 * H:, H + D] = W_hh[2 * H:], b_hh[2 * H:]
    return W


def _negated_rows(cell: str, H: int) -> slice | list[slice]:
    """The rows of the fused W that feed a sigmoid: the forward pass multiplies by -W there, so exp(-a) needs no
    negation (exact: the products and sums of -W are those of W with the sign flipped)."""
    return {"rnn": [], "lstm": [slice(0, 2 * H), slice(3 * H, 4 * H)], "gru": [slice(H, 3 * H)]}[cell]


def forward_shapes(T: int, B: int, D: int, H: int, cell: str) -> dict[str, tuple]:
    """The shapes of forward()'s arrays."""
    shapes = {"z": (T + 1, H + D + 1, B)}
    if cell == "gru":
        shapes.update(gates=(T, 3 * H, B), ghn=(T, H, B))
    elif cell == "lstm":
        shapes.update(cs=(T + 1, H, B), gates=(T, 4 * H, B))
    return shapes


def forward(params: dict, x: np.ndarray, cell: str, nonlinearity: str,
            out: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Unroll the cell over x (T, B, D), feature-major (see cells.py: every gate block of a step is contiguous).

    Returns z (T+1, H+D+1, B) whose block t is [h_{t-1}; x_t; 1], so that a_t = W z_t with W = [W_hh | W_ih | b] is
    one matrix product per step (no separate input projection or bias add); h_t is written straight into
    z[t+1, :H], and hs = z[:, :H] (hs[0] = h_{-1} = 0). For the LSTM also cs (T+1, H, B) and gates (T, 4H, B);
    for the GRU gates (T, 3H, B) and ghn (T, H, B) = W_hn h_{t-1} + b_hn. Written into `out` (arrays of
    forward_shapes) when given.
    """
    T, B, D = x.shape
    H = params["weight_hh_l0"].shape[1]
    W = _fused_weights(params, cell)
    for rows in _negated_rows(cell, H):
        W[rows] *= -1.0
    if out is None:
        out = {k: np.empty(s, x.dtype) for k, s in forward_shapes(T, B, D, H, cell).items()}
    z = out["z"]
    z[0, :H] = 0.0
    z[:T, H:H + D] = x.transpose(0, 2, 1)
    z[T, H:H + D] = 0.0  # never used as an input; defined so that every row of z is a value
    z[:, H + D] = 1.0
    out = dict(out, hs=z[:, :H])
    hs = z[1:, :H]
    if cell == "rnn":
        act = cells.ACTIVATIONS[nonlinearity][0]
        a = np.empty((H, B), x.dtype)
        for t in range(T):
            np.matmul(W, z[t], out=a)
            act(a, hs[t])
        return out
    a = np.empty((W.shape[0], B), x.dtype)
    if cell == "gru":
        gates, ghn = out["gates"], out["ghn"]
        for t in range(T):
            np.matmul(W, z[t], out=a)
            cells.gru_step_forward(a, z[t, :H], gates[t], ghn[t], hs[t], axis=-2, negated=True)
        return out
    cs, gates = out["cs"], out["gates"]
    cs[0] = 0.0
    # cells.lstm_step_forward(a, cs[t], gates[t], cs[t + 1], hs[t], axis=-2, negated=True) inlined: the same operations
    # in the same order (tests/test_engine.py checks it bit for bit), on views made once, not once per step (at H = 64
    # a step's Python overhead is a tenth of its time)
    i, f, g, o = cells.blocks(gates, 4, axis=-2)  # (T, H, B) each
    a_g = cells.blocks(a, 4, axis=-2)[2]
    ig = np.empty((H, B), x.dtype)
    for t in range(T):
        np.matmul(W, z[t], out=a)
        gates_t = gates[t]
        np.exp(a, out=gates_t)  # sigmoid = 1 / (1 + exp(-a)) on all four blocks (a holds -a but for g's)
        gates_t += 1.0
        np.reciprocal(gates_t, out=gates_t)
        np.tanh(a_g, out=g[t])
        c = np.multiply(f[t], cs[t], out=cs[t + 1])
        c += np.multiply(i[t], g[t], out=ig)
        h = np.tanh(c, out=hs[t])
        h *= o[t]
    return out


def run(params: dict, x: np.ndarray, y: np.ndarray, y_mask: np.ndarray, cell: str, nonlinearity: str,
        loss_kind: str, record: bool = True, truncate: int = 0) -> dict:
    """One forward pass and BPTT with per-step recording (see the module docstring); truncate = K > 0 cuts the
    gradient at the state entering every step t > 0 with t % K == 0 (0: full BPTT).

    record=False skips the per-step norms and returns only loss, grads and yhat: a training step needs nothing else,
    and its forward pass then runs in arrays kept between calls (see _workspace)."""
    with np.errstate(all="ignore"):  # blow-ups are data here: they are recorded and flagged, not warned about
        return _run(params, x, y, y_mask, cell, nonlinearity, loss_kind, record, truncate)


_scratch = threading.local()  # per thread: {key: workspace}, see _workspace
WORKSPACE_KEEP = 64 * 2**20  # bytes: a larger workspace is allocated afresh each call (and then costs little extra)


def _workspace(shapes: dict[str, tuple], dtype: np.dtype) -> dict[str, np.ndarray]:
    """Scratch arrays of the given shapes, kept between calls (per thread, for the last few sets of shapes).

    Why: at these sizes a fresh array costs about as much in page faults (~1 us per 4 KB page on these VMs) as the
    arithmetic done in it: a training step of the LSTM (T = 100, B = 32, H = 64) spent a fifth of its time in the
    kernel. Nothing returned to a caller lives here."""
    dtype = np.dtype(dtype)
    if sum(int(np.prod(s)) for s in shapes.values()) * dtype.itemsize > WORKSPACE_KEEP:
        return {k: np.empty(s, dtype) for k, s in shapes.items()}
    key = (dtype.str, tuple(sorted(shapes.items())))
    cache = _scratch.__dict__.setdefault("cache", {})
    ws = cache.pop(key, None)
    if ws is None:
        ws = {k: np.empty(s, dtype) for k, s in shapes.items()}
    cache[key] = ws  # the most recently used last
    while len(cache) > 4:  # a probe and a training step of two cells in alternation (train_pair)
        del cache[next(iter(cache))]
    return ws


def _run(params, x, y, y_mask, cell, nonlinearity, loss_kind, record, truncate):
    dtype = params["weight_hh_l0"].dtype
    x, y_mask = x.astype(dtype, copy=False), y_mask.astype(dtype, copy=False)
    y = y.astype(dtype, copy=False) if loss_kind == "mse" else y
    T, B, D = x.shape
    W_hh, W_ih, W_y = params["weight_hh_l0"], params["weight_ih_l0"], params["head.weight"]
    G, H = W_hh.shape
    K = H + D + 1
    Gf = 4 * H if cell == "gru" else G  # rows of the fused W (the GRU's n has two halves)
    C = min(CHUNK, T)
    # scratch: the backward pass's per chunk, and the T-sized arrays that are not returned (with record=False, none is)
    fw_shapes = forward_shapes(T, B, D, H, cell)
    # src: [the read-out's dL/dh_t, the total dL/dh_t] for every step of a chunk (the LSTM's split takes both at once)
    shapes = {"da": (C, Gf, B), "src": (2, C, H, B), "z": fw_shapes["z"], "dh_loss": (T, B, H)}
    if record:  # every step's term of dL/dW_hh and its squares
        shapes.update(terms=(C, G, H), terms_sq=(C, G, H), h_rows=(C, B, H))
    else:  # dW's one GEMM per chunk; the forward pass
        shapes.update(fw_shapes, h=(T, B, H), da_cols=(Gf, C * B), z_rows=(C * B, K), dW_chunk=(Gf, K))
    if cell == "lstm":
        shapes.update({"dc": (C, H, B), "dr": (2, C, H, B)},
                      **{"fac_" + k: s for k, s in cells.lstm_factor_shapes((C, H, B), axis=-2).items()})
    elif cell == "gru":
        shapes.update({"fac_" + k: (C, H, B) for k in ("n", "z", "r", "tmp")})
    else:
        shapes["deriv"] = (C, H, B)
    ws = _workspace(shapes, dtype)
    fw = forward(params, x, cell, nonlinearity, out={k: ws[k] if k in ws else np.empty(s, dtype)
                                                     for k, s in fw_shapes.items()})
    z = fw["z"]
    h = ws["h"] if not record else np.empty((T, B, H), dtype)  # (T, B, H), the records' layout
    np.copyto(h, z[1:, :H].transpose(0, 2, 1))

    yhat = h @ W_y.T + params["head.bias"]
    loss, dyhat = head_loss(yhat, y, y_mask, loss_kind)
    O = W_y.shape[0]
    grads = {
        "head.weight": dyhat.reshape(-1, O).T @ h.reshape(-1, H),
        "head.bias": dyhat.sum(axis=(0, 1)),
    }
    dh_loss = np.matmul(dyhat, W_y, out=ws["dh_loss"])  # (T, B, H): what the read-out at t sends to h_t
    # where it sends exactly nothing (no loss at t) dL/dh_t is the recurrent part alone: the add is skipped (x + 0 = x)
    sends = np.any(dyhat != 0, axis=(1, 2)) | ~np.all(np.isfinite(W_y))

    cut = cut_steps(T, truncate)
    hh = slice(H, 4 * H) if cell == "gru" else slice(None)  # the rows of dL/da_t that are dL/d(W_hh h_{t-1} + b_hh)
    W_hh_T = np.ascontiguousarray(W_hh.T)
    dW = np.zeros((Gf, K), dtype)  # dL/dW of the fused W = [W_hh | W_ih | b]: sum_t dL/da_t z_t^T
    grad_h, grad_x, contrib = np.empty(T), np.empty(T), np.empty(T)
    grad_c, grad_cd, grad_cr = np.empty(T), np.empty(T), np.empty(T)
    dh_next = np.zeros((H, B), dtype)  # what step t+1 sends back to h_t, carried across chunks
    dc_next = np.zeros((H, B), dtype)  # dc_{t+1} f_{t+1}
    # [d_{t+1} f_{t+1}, r_{t+1} f_{t+1}]: the direct cell path's and the rest's shares of dc_next, one array so that one
    # multiply serves both
    dr_next = np.zeros((2, H, B), dtype)
    for t1 in range(T, 0, -CHUNK):
        t0 = max(0, t1 - CHUNK)
        n = t1 - t0
        da, src = ws["da"][:n], ws["src"][:, :n]
        dl, dhs = src  # (n, H, B) each
        if cell == "lstm" and record:
            dl[:] = dh_loss[t0:t1].transpose(0, 2, 1)
        else:  # only steps with a loss read it: transposed views of dh_loss
            dl = dh_loss[t0:t1].transpose(0, 2, 1)
        dhs[n - 1] = dh_next  # the recurrent part; the loop below adds the read-out's where it sends something
        fac = {k[4:]: v[:n] for k, v in ws.items() if k.startswith("fac_")}
        if cell == "rnn":
            deriv = cells.rnn_factors(fw["hs"][t0 + 1:t1 + 1], nonlinearity, out=ws["deriv"][:n])
            for k in range(n - 1, -1, -1):
                dh = dhs[k]
                if sends[t0 + k]:
                    dh += dl[k]
                np.multiply(dh, deriv[k], out=da[k])
                nxt = np.matmul(W_hh_T, da[k], out=dhs[k - 1] if k else dh_next)
                if cut[t0 + k]:  # the state entering step t was detached: nothing flows on to h_{t-1}
                    nxt[:] = 0.0
        elif cell == "gru":
            fac = cells.gru_factors(fw["gates"][t0:t1], fw["hs"][t0:t1], fw["ghn"][t0:t1], axis=-2, out=fac)
            for k in range(n - 1, -1, -1):
                dh = dhs[k]
                if sends[t0 + k]:
                    dh += dl[k]
                keep = cells.gru_step_backward(dh, {name: v[k] for name, v in fac.items()}, da[k], axis=-2)
                nxt = np.matmul(W_hh_T, da[k, hh], out=dhs[k - 1] if k else dh_next)
                nxt += keep
                if cut[t0 + k]:
                    nxt[:] = 0.0
        else:
            cs, gates = fw["cs"], fw["gates"]
            fac = cells.lstm_factors(gates[t0:t1], cs[t0 + 1:t1 + 1], cs[t0:t1], axis=-2, out=fac)
            h_to_c, f, f_ifg, f_o = fac["h_to_c"], fac["f"], fac["ifg"], fac["o"]
            dcs, drs = ws["dc"][:n], ws["dr"][:, :n]
            da4 = da.reshape(n, 4, H, B)
            for k in range(n - 1, -1, -1):
                dh = dhs[k]
                if record:  # the same recurrence as dc, fed separately by the two sources of dh: [d_t, r_t]
                    np.multiply(src[:, k], h_to_c[k], out=drs[:, k])  # dhs[k] is still what step t+1 sent back
                    drs_k = drs[:, k]
                    drs_k += dr_next
                    np.multiply(drs_k, f[k], out=dr_next)
                if sends[t0 + k]:
                    dh += dl[k]
                # cells.lstm_step_backward(dh, dc_next, {name: v[k] for name, v in fac.items()}, da[k], dcs[k],
                # axis=-2, dc_prev_out=dc_next) inlined, as in forward()
                dc = np.multiply(dh, h_to_c[k], out=dcs[k])
                dc += dc_next
                np.multiply(dc, f_ifg[k], out=da4[k, :3])
                np.multiply(dh, f_o[k], out=da4[k, 3])
                np.multiply(dc, f[k], out=dc_next)
                nxt = np.matmul(W_hh_T, da[k], out=dhs[k - 1] if k else dh_next)
                if cut[t0 + k]:  # h_{t-1} and c_{t-1} were both detached
                    nxt[:] = 0.0
                    dc_next[:] = 0.0
                    dr_next[:] = 0.0
            if record:
                grad_c[t0:t1] = _step_norms(dcs)
                grad_cd[t0:t1] = _step_norms(drs[0])
                grad_cr[t0:t1] = _step_norms(drs[1])
        z_chunk = z[t0:t1]
        if record:  # dW's W_hh columns come from the terms formed for their norms (below); the rest is narrow
            dW[:, H:] += np.matmul(da, z_chunk[:, H:].transpose(0, 2, 1)).sum(axis=0)
        else:  # dW += sum_t da_t z_t^T as one GEMM over the chunk's n*B columns (both factors laid out for it first)
            da_cols, z_rows = ws["da_cols"][:, :n * B], ws["z_rows"][:n * B]
            np.copyto(da_cols.reshape(Gf, n, B), da.transpose(1, 0, 2))
            np.copyto(z_rows.reshape(n, B, K), z_chunk.transpose(0, 2, 1))
            dW += np.matmul(da_cols, z_rows, out=ws["dW_chunk"])
        if record:
            grad_h[t0:t1] = _step_norms(dhs)
            grad_x[t0:t1] = _step_norms(_input_grads(da, W_ih, cell, H))
            h_rows = ws["h_rows"][:n]
            np.copyto(h_rows, z_chunk[:, :H].transpose(0, 2, 1))
            terms = np.matmul(da[:, hh], h_rows, out=ws["terms"][:n])  # step t's dW_hh (contiguous h: 1.2x faster)
            dW[hh, :H] += terms.sum(axis=0)
            contrib[t0:t1] = _term_norms_of(terms, da[:, hh], z_chunk[:, :H], ws["terms_sq"][:n])
    grads.update(_split_fused_grads(dW, cell, H, D))
    if not record:  # everything else lives in the workspace, which the next call overwrites
        return {"loss": float(loss), "grads": grads, "yhat": yhat}
    rec = {"loss": float(loss), "grads": grads, "h": h, "yhat": yhat,
           "grad_h_norm": grad_h, "grad_whh_contrib_norm": contrib, "grad_x_norm": grad_x}
    # back to the records' batch-major layout: views (a copy of all T steps would cost more than the steps' arithmetic)
    if cell != "rnn":
        rec.update(gates=fw["gates"].transpose(0, 2, 1))
    if cell == "lstm":
        rec.update(c=fw["cs"][1:].transpose(0, 2, 1), grad_c_norm=grad_c, grad_c_direct_norm=grad_cd,
                   grad_c_rest_norm=grad_cr)
    return rec


def _input_grads(da: np.ndarray, W_ih: np.ndarray, cell: str, H: int) -> np.ndarray:
    """dL/dx_t = W_ih^T dL/d(W_ih x_t + b_ih) for each step of a chunk: da (n, Gf, B) -> (n, D, B)."""
    if cell != "gru":
        return np.matmul(W_ih.T, da)
    dx = np.matmul(W_ih[:2 * H].T, da[:, H:3 * H])  # r and z
    dx += np.matmul(W_ih[2 * H:].T, da[:, :H])  # n's input half
    return dx


def _split_fused_grads(dW: np.ndarray, cell: str, H: int, D: int) -> dict[str, np.ndarray]:
    """dL/dW of the fused W (_fused_weights) -> the gradients of weight_hh_l0, weight_ih_l0, bias_ih_l0, bias_hh_l0
    (the GRU's structural zeros of the fused W get a gradient too, which belongs to no parameter)."""
    w, xs, b = slice(0, H), slice(H, H + D), H + D
    if cell != "gru":
        return {"weight_hh_l0": np.ascontiguousarray(dW[:, w]), "weight_ih_l0": np.ascontiguousarray(dW[:, xs]),
                "bias_ih_l0": dW[:, b].copy(), "bias_hh_l0": dW[:, b].copy()}
    nx, rz, nh = slice(0, H), slice(H, 3 * H), slice(3 * H, 4 * H)
    return {"weight_hh_l0": np.ascontiguousarray(dW[H:, w]),
            "weight_ih_l0": np.concatenate([dW[rz, xs], dW[nx, xs]]),
            "bias_ih_l0": np.concatenate([dW[rz, b], dW[nx, b]]),
            "bias_hh_l0": np.concatenate([dW[rz, b], dW[nh, b]])}
