"""The finite-time Lyapunov spectrum of a probe's recurrence: how fast each direction of the state grows or shrinks
per step along the actual trajectory, of which the top one is the rate a generic gradient follows along one sequence.

The state is s_t = h_t for the RNN and the GRU (n = H) and s_t = (h_t, c_t) for the LSTM (n = 2H); J_t = ds_t/ds_{t-1}
is the exact Jacobian of one step at the recorded trajectory (t = 1..T-1). BPTT carries dL/ds back by J_t^T, and the
product of the transposes has the same singular values as J_{T-1}...J_1, so the spectrum of the forward product is
the spectrum of the gradient's decay.

`lyapunov` returns per-step factors exp(lambda_i) (< 1 shrinks, > 1 grows, like analysis.fit_rate), computed with
Benettin's QR re-orthonormalisation: Q_t R_t = qr(J_t Q_{t-1}), lambda_i = (1/(T-1)) sum_t log|R_t[i, i]|.
The QR recursion adds no error: J_{T-1}...J_1 Q_0 = Q_{T-1} (R_{T-1}...R_1) is the QR of the product, and the
diagonal of a product of triangular matrices is the product of their diagonals; the re-orthonormalisation only
keeps every step's numbers O(1), so T = 1000 is as accurate as T = 10. (At finite T these are the QR factors of the
product, which tend to its singular values' per-step rates as T grows; they are not equal to them at small T.)

Q_0 is a fixed random orthogonal matrix (START_SEED), not I: the method needs a start basis in general position.
With Q_0 = I and a coordinate-aligned network (identity W_hh with ReLU: J_t = diag(phi'), units dying at different
steps) each dead unit's column takes the place of a live one, and every factor came out 0 while the gradient was
preserved (measured 0.994 per step). A random Q_0 changes the finite-T numbers only by the start transient,
log|R_ii of Q_0's projection| / (T-1), and not at all when J_t is a scaled orthogonal matrix.

Shapes: T time, B batch, B' the sequences used, H hidden, n state size (H for the RNN and the GRU, 2H for the LSTM).
Cost: B' (T-1) QR factorisations of n x m matrices (m = n for the full spectrum), O(B' T n^2 m); see `lyapunov`
for the default subset. With OpenBLAS, keep one BLAS thread (OPENBLAS_NUM_THREADS=1, as `make run` does): at
n = 128 (the LSTM at H = 64) numpy's stacked QR under OpenBLAS's default threads ran ~50x slower on a busy 2-core
machine (LSTM, T = 100, 10 sequences: 1.7 s with one thread, 82 s with the default), as the many small BLAS calls
inside each QR wait for descheduled threads; on an idle machine the default was ~4x slower.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from . import cells

CHUNK = 64  # steps whose local derivatives are computed at once (bounds memory at long T, large B)

# Work the default `sequences="auto"` allows, in units of n^2 m per step (one QR of an n x m matrix and its product
# with J_t): 2^31 is ~1000 steps of the LSTM with H = 64 (n = m = 128), about a second of numpy's stacked QR on one
# core. Measured on 2 shared cores, one BLAS thread: a QR of a 128 x 128 matrix with its Q costs ~1 ms; 64 x 64,
# ~0.1 ms.
# 2^27 (a sixteenth of that) keeps a dashboard redraw fast: 5 RNN sequences or 1 LSTM sequence at T = 100. Measured
# over seeds 0-4 (PyTorch, orthogonal, Gaussian x2 RNNs; LSTMs at b_f = 0, 1, Gaussian x2), the top factor's distance
# from the measured rate is the same with 1, 2, 4, 8 or 32 sequences to within 1% (worst 2.4% vs 2.6%).
WORK_BUDGET = 2**27
# Steps multiplied together between QRs, and the least |R_ii| (relative to the largest column norm of the product) a
# block may have and still be kept (_exponents). Measured once at every scene's settings, T = 100 and 1000 (one BLAS
# thread): RNN at T = 1000 ~115-140 -> ~44-75 ms, GRU ~160-300 -> ~86-177 ms, largest relative difference from the
# one-step recursion 3.8e-13; the LSTM's blocks are always rejected and it costs what it did.
BLOCK = 4
SPREAD = 1e-6
START_SEED = 0  # of the start basis Q_0 (module docstring): fixed, so the same probe always gives the same spectrum


def _start(n: int, m: int) -> np.ndarray:
    """Q_0 (n, m): the first m columns of a Haar-random n x n orthogonal matrix (QR of a Gaussian, signs fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(START_SEED).normal(size=(n, n)))
    return (q * np.where(np.diag(r) < 0, -1.0, 1.0))[:, :m]


def _count(v, name: str, most: int) -> int:
    """An integer >= 1 (capped at `most`), or a ValueError naming the argument."""
    if isinstance(v, bool) or not hasattr(v, "__index__") or int(v) < 1:
        raise ValueError(f"{name} = {v!r} is invalid: expected an integer >= 1"
                         + (", None (all) or 'auto'" if name == "sequences" else " or None (all)"))
    return min(int(v), most)


def _chosen(probe, sequences) -> int:
    B = probe.h.shape[1]
    return B if sequences is None else _count(sequences, "sequences", B)


def sequences_used(probe) -> int:
    """How many of the batch's sequences `lyapunov(probe)` averages by default (said on every figure)."""
    return _auto(probe)


def _auto(probe, m: int | None = None) -> int:
    """The most sequences (at least 1, at most B) whose work, (T-1) n^2 m per sequence, fits WORK_BUDGET."""
    T, B, H = probe.h.shape
    n = 2 * H if probe.cell == "lstm" else H
    return int(min(B, max(1, WORK_BUDGET // (max(T - 1, 1) * n * n * (m or n)))))


@dataclass(frozen=True)
class Trajectory:
    """What `lyapunov` reads of a record, for the sequences it uses: small enough to send to another process (an LSTM
    at T = 1000, one sequence: ~3.2 MB), so the spectrum can be computed there while the rest of a page is drawn."""
    cell: str
    nonlinearity: str
    h: np.ndarray  # (T, B', H), like every array here cut to the B' sequences used
    c: np.ndarray | None
    gates: np.ndarray | None
    params: dict


def trajectory(probe) -> Trajectory:
    """The part of `probe` its default spectrum reads (the sequences_used(probe) sequences it averages):
    lyapunov(trajectory(p)) is lyapunov(p), computed from the same numbers in the same order, so equal bit for bit
    (tests/test_lyapunov.py). The default picks the same sequences again: all of the trajectory's, which fit."""
    k = _auto(probe)
    cut = lambda a: None if a is None else np.ascontiguousarray(a[:, :k])  # noqa: E731
    keep = {n: probe.params[n] for n in ("weight_hh_l0", "bias_hh_l0") if n in probe.params}
    return Trajectory(probe.cell, probe.nonlinearity, cut(probe.h), cut(getattr(probe, "c", None)),
                      cut(getattr(probe, "gates", None)), keep)


def _local_steps(probe, k: int, T: int):
    """(t, factors of t's chunk, t's index in it) for t = 1..T-1, the factors computed CHUNK steps at a time."""
    for t0 in range(1, T, CHUNK):
        t1 = min(T, t0 + CHUNK)
        fac = _local(probe, k, t0, t1)
        for j in range(t1 - t0):
            yield t0 + j, fac, j


def _local(probe, k: int, t0: int, t1: int) -> dict[str, np.ndarray]:
    """float64 local derivatives of steps t0..t1-1 (t >= 1) for the first k sequences, each (t1-t0, k, H) or, for
    the LSTM's i/f/g blocks, (t1-t0, k, 3, H): the same factors the engine's BPTT uses (cells.*_factors)."""
    if probe.cell == "rnn":
        return {"d": cells.rnn_factors(probe.h[t0:t1, :k].astype(np.float64), probe.nonlinearity)}
    if probe.cell == "gru":  # W_hn h_{t-1} + b_hn is not recorded: recomputed from the recorded h (to rounding)
        H = probe.h.shape[2]
        h_prev = probe.h[t0 - 1:t1 - 1, :k].astype(np.float64)
        ghn = h_prev @ probe.params["weight_hh_l0"][2 * H:].astype(np.float64).T + probe.params["bias_hh_l0"][2 * H:]
        return cells.gru_factors(probe.gates[t0:t1, :k].astype(np.float64), h_prev, ghn)
    c = probe.c[:, :k].astype(np.float64)
    return cells.lstm_factors(probe.gates[t0:t1, :k].astype(np.float64), c[t0:t1], c[t0 - 1:t1 - 1])


def _finite(probe, k: int) -> bool:
    arrays = [probe.h[:, :k], probe.params["weight_hh_l0"]]
    if probe.cell == "lstm":
        arrays += [probe.c[:, :k], probe.gates[:, :k]]
    if probe.cell == "gru":
        arrays += [probe.gates[:, :k], probe.params["bias_hh_l0"]]
    return all(np.isfinite(a).all() for a in arrays)


def _apply(probe, fac: dict[str, np.ndarray], j: int, W: np.ndarray, Q: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = J_t Q for every sequence, with J_t never formed: Q (k, n, m) -> (k, n, m), using row j of `fac`.

    RNN: J Q = diag(d) (W Q). LSTM, with Q = [Q_h; Q_c] and the gate blocks W_i, W_f, W_g, W_o of W_hh:
      dc_t = (p_i W_i + p_f W_f + p_g W_g) dh_{t-1} + f dc_{t-1}    (p = cells.lstm_factors' "ifg")
      dh_t = u_o W_o dh_{t-1} + v dc_t                               (u_o = tanh(c) o (1-o), v = o (1 - tanh^2 c))
    so one product W_hh Q_h serves all four blocks. GRU, with W_r, W_z, W_n the blocks of W_hh (cells.gru_factors):
      dh_t = z dh_{t-1} + u_z W_z dh_{t-1} + u_n (r W_n dh_{t-1} + u_r W_r dh_{t-1})
    (u_z = (h_{t-1} - n) z (1-z), u_n = (1-z) (1-n^2), u_r = (W_hn h_{t-1} + b_hn) r (1-r))."""
    if probe.cell == "rnn":
        np.matmul(W, Q, out=out)
        out *= fac["d"][j][:, :, None]
        return out
    if probe.cell == "gru":
        H = W.shape[1]
        k, _, m = Q.shape
        WQ = np.matmul(W, Q).reshape(k, 3, H, m)
        np.multiply(fac["hn"][j][:, :, None], WQ[:, 2], out=out)
        out += fac["r"][j][:, :, None] * WQ[:, 0]
        out *= fac["n"][j][:, :, None]
        out += fac["z"][j][:, :, None] * WQ[:, 1]
        out += fac["z_keep"][j][:, :, None] * Q
        return out
    H = W.shape[1]
    k, _, m = Q.shape
    WQ = np.matmul(W, Q[:, :H]).reshape(k, 4, H, m)
    zh, zc = out[:, :H], out[:, H:]
    np.multiply(fac["ifg"][j][..., None], WQ[:, :3], out=WQ[:, :3])
    np.sum(WQ[:, :3], axis=1, out=zc)
    zc += fac["f"][j][:, :, None] * Q[:, H:]
    np.multiply(fac["o"][j][:, :, None], WQ[:, 3], out=zh)
    zh += fac["h_to_c"][j][:, :, None] * zc
    return out


def step_jacobians(probe, sequences: int | None = None) -> np.ndarray:
    """(B', T-1, n, n) float64: J_t = ds_t/ds_{t-1} for t = 1..T-1 (index t-1), for the first `sequences` sequences
    (None: all). Rows and columns are ordered (h) for the RNN and the GRU, (h, c) for the LSTM. Formed explicitly,
    so meant for tests and small T: `lyapunov` never forms them."""
    k = _chosen(probe, sequences)
    T, _, H = probe.h.shape
    W = probe.params["weight_hh_l0"].astype(np.float64)
    n = 2 * H if probe.cell == "lstm" else H
    eye = np.broadcast_to(np.eye(n), (k, n, n))
    out = np.empty((k, max(T - 1, 0), n, n))
    with np.errstate(all="ignore"):  # a blown-up trajectory gives non-finite Jacobians, returned as they are
        for t, fac, j in _local_steps(probe, k, T):
            _apply(probe, fac, j, W, eye, out[:, t - 1])
    return out


def lyapunov(probe, sequences: int | str | None = "auto", directions: int | None = None) -> np.ndarray:
    """(n,) the finite-time Lyapunov spectrum as per-step factors exp(lambda_i), sorted descending (module docstring);
    (m,) with `directions` = m.

    Each sequence's spectrum is computed along its own trajectory and sorted; lambda_i is then averaged over the
    sequences used (a geometric mean of the factors). `sequences`: an integer k uses the first k sequences; None uses
    all; "auto" (the default) uses the first k that fit WORK_BUDGET, at least one: 5 of the RNN's at H = 64 and
    T = 100, 1 at T = 1000; 1 of the LSTM's (tens of ms at T = 100, under a second at T = 1000), because the QRs cost
    O(B' T n^3) while one sequence's top factor is within ~0.5% of all 32's at T = 100 in all but chaotic networks
    (the time average already averages over inputs; for a chaotic one, e.g. Gaussian W_hh at scale 2, ~4%).

    `directions` = m follows only m directions ((m,) returned; Q_0's first m columns), at O(B' T n^2 m):
    the way to afford large H or long T, where even one sequence's full spectrum is slow (one QR of a 1024 x 1024
    matrix takes ~0.3 s). Its columns are exactly the full computation's first m (column j of a QR depends only on
    columns <= j); only the sorting can differ: at finite T two close factors can finish in either order, so the
    top of directions=1 can sit below the full spectrum's top by their spread (~0.5% for the RNN at T = 100).

    A factor is exactly 0 when a direction is lost exactly (e.g. dead ReLUs: a unit with phi' = 0 zeroes its row of
    J_t); non-finite states (a forward pass that overflowed) or fewer than two steps give nan everywhere.
    """
    T, _, H = probe.h.shape
    n = 2 * H if probe.cell == "lstm" else H
    m = n if directions is None else _count(directions, "directions", n)
    k = _auto(probe, m) if isinstance(sequences, str) and sequences == "auto" else _chosen(probe, sequences)
    if T < 2 or not _finite(probe, k):
        return np.full(m, np.nan)
    lam = np.sort(_exponents(probe, k, m), axis=1)[:, ::-1]
    if np.isnan(lam).any() or np.isposinf(lam).any():  # overflow inside the products: no honest number
        return np.full(m, np.nan)
    return np.exp(lam.mean(axis=0))


def _exponents(probe, k: int, m: int) -> np.ndarray:
    """(k, m) lambda per sequence and column of the QR process, in column order (unsorted).

    Steps are taken BLOCK at a time: Z = J_{t+BLOCK-1} ... J_t Q, then one QR. In exact arithmetic that is the same
    factorisation (the module docstring: the product's QR has the last step's Q and R = R_{t+BLOCK-1} ... R_t, whose
    diagonal is the product of theirs, so the log|R_ii| add up to the same totals), with one QR per block instead of
    per step; the QR is most of a step's cost. A block is kept only when its QR still resolves every direction: every
    |R_ii| at least SPREAD times the largest column norm of that sequence's product, and no zero in the first column.
    To first order, for a product whose R is graded by rows as Benettin's are, Householder QR's error in R_ii is a
    modest multiple of eps times that norm, so the relative error per block is about eps / SPREAD ~ 2e-10 (an
    estimate; measured once over every scene: at most 3.8e-13 in the spectrum). Otherwise the block is redone one
    step at a time, exactly as before, which is also where exact zeros (dead units) are handled, and every later step
    is taken alone: a trajectory whose spectrum is too spread for one block rarely stops being so (at the scenes'
    settings the LSTM's smallest factors are 1e-2 to 1e-6 of its largest per step, so four steps spread its
    directions by 1e9 or more, past the 1e6 a block may have)."""
    T, _, H = probe.h.shape
    n = 2 * H if probe.cell == "lstm" else H
    W = np.ascontiguousarray(probe.params["weight_hh_l0"], dtype=np.float64)
    Q = np.broadcast_to(_start(n, m), (k, n, m)).copy()
    Z, Y = np.empty((k, n, m)), np.empty((k, n, m))
    logs = np.zeros((k, m))
    diag = np.arange(m)
    steps = _local_steps(probe, k, T)
    size = BLOCK
    with np.errstate(divide="ignore"):  # log 0 = -inf is the honest answer for a lost direction
        while block := list(itertools.islice(steps, size)):
            if len(block) > 1:
                P = Q
                for _, fac, j in block:
                    P = _apply(probe, fac, j, W, P, Z if P is not Z else Y)
                with np.errstate(all="ignore"):
                    Qb, R = np.linalg.qr(P)
                    r = np.abs(R[:, diag, diag])
                    ok = np.isfinite(r).all() and (r >= SPREAD * np.linalg.norm(P, axis=1).max(axis=1)[:, None]).all()
                if ok and P[:, :, 0].all():
                    Q = Qb
                    logs += np.log(r)
                    continue
                size = 1  # too spread for blocks (every LSTM measured): every step's QR from here on
            for _, fac, j in block:  # one step at a time
                Q = _qr_step(probe, fac, j, W, Q, Z, logs, diag)
    return logs / (T - 1)


def _qr_step(probe, fac, j, W, Q, Z, logs, diag) -> np.ndarray:
    """One step of Benettin's recursion: Z = J_t Q, Q' R = qr(Z), logs += log|R_ii|; returns Q'."""
    _apply(probe, fac, j, W, Q, Z)
    if not Z[:, :, 0].all():  # some row is zero in column 0: structural zeros (dead units)
        # Householder QR keeps exact zeros exact only if no row is used before its first nonzero
        # column: order the rows by that column, zero rows last (P Z = Q' R gives Z = (P^T Q') R, so
        # only Q's rows are permuted back). Then a direction that is lost exactly gives R_ii = 0
        # exactly, rather than a rounding-sized 1e-17 that would pass for a strong decay.
        nz = Z != 0
        first = np.where(nz.any(axis=2), nz.argmax(axis=2), Z.shape[2])
        perm = np.argsort(first, axis=1, kind="stable")
        Qp, R = np.linalg.qr(np.take_along_axis(Z, perm[:, :, None], axis=1))
        Q = np.empty_like(Qp)
        np.put_along_axis(Q, perm[:, :, None], Qp, axis=1)
    else:
        Q, R = np.linalg.qr(Z)
    logs += np.log(np.abs(R[:, diag, diag]))
    return Q


def mean_rate(g: np.ndarray, end: int, start: int = 0) -> float:
    """The measured average per-step rate of a profile between step `start` (0, or where a truncation's cut lets
    the gradient begin) and `end` (the last step with a loss, tasks.loss_end): (g[start] / g[end]) **
    (1 / (end - start)), what the top Lyapunov factor predicts. nan unless both are positive and finite and
    end > start."""
    g0, ge = float(g[start]), float(g[end])
    if end - start < 1 or not (np.isfinite(g0) and np.isfinite(ge) and g0 > 0 and ge > 0):
        return float("nan")
    return float(np.exp((np.log(g0) - np.log(ge)) / (end - start)))
