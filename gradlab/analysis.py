"""Theory to draw over the measurement: spectra, Pascanu's bound, the forget-gate (LSTM) and update-gate (GRU)
products, fitted decay rates, and a one-line diagnosis a lecturer can read out.

Conventions: a profile g is (T,) per-step norms ||dL/dh_t||; curves are anchored at the last step T-1 (where the
loss enters) and go back in lag k = T-1-t. Rates are per step: < 1 vanishes, > 1 explodes.
Truncated BPTT (Config.truncate = K): the loss at `end` reaches back only to the start of its chunk, cut_at =
K * (end // K); earlier steps get exactly 0 from it by construction. Rates, fits and curves then use only the uncut
steps cut_at..end, and the diagnosis says "cut", never "underflow" or "vanishing", for those zeros.
This module computes; it draws nothing (plots.py does).
"""
from __future__ import annotations

import numpy as np

from .bptt import cut_at
from .lyapunov import lyapunov, mean_rate, sequences_used, step_jacobians  # noqa: F401 (the exact theory, public here)
from .tasks import loss_end, losses_at_many_steps  # noqa: F401 (public here too: records are read by them)

# |phi'| <= gamma for each nonlinearity (Pascanu, Mikolov & Bengio 2013). The LSTM's gates are sigmoids (1/4).
GAMMA = {"tanh": 1.0, "relu": 1.0, "linear": 1.0, "sigmoid": 0.25}

# Diagnosis thresholds on r = ||dL/dh_0|| / ||dL/dh_(T-1)||: a factor of 1000 either way is still "preserved"
# (three orders of magnitude is what a log-scale plot shows as a clear slope).
VANISHING_BELOW = 1e-3
EXPLODING_ABOVE = 1e3
TAIL_FRACTION = 0.5  # the rate is fitted on the half of the profile farthest from the loss (past the transient)


def blocks(W_hh: np.ndarray) -> np.ndarray:
    """(G, H) -> (n, H, H): the RNN's matrix, the LSTM's four gate blocks i, f, g, o, or the GRU's three r, z, n."""
    G, H = W_hh.shape
    return W_hh.reshape(G // H, H, H)


def spectrum(W_hh: np.ndarray) -> dict[str, np.ndarray]:
    """Eigenvalues (n, H) complex, singular values (n, H) descending, rho (n,) and sigma_max (n,) per block."""
    W = blocks(np.asarray(W_hh, dtype=np.float64))
    if not np.isfinite(W).all():
        n, H = W.shape[:2]
        nan = np.full((n, H), np.nan)
        return {"eigvals": nan.astype(complex), "singvals": nan, "rho": nan[:, 0], "sigma_max": nan[:, 0]}
    eig = np.linalg.eigvals(W)
    sv = np.linalg.svd(W, compute_uv=False)
    return {"eigvals": eig, "singvals": sv, "rho": np.abs(eig).max(axis=1), "sigma_max": sv[:, 0]}


def theory_curves(g: np.ndarray, W_hh: np.ndarray, nonlinearity: str = "tanh", end: int | None = None) -> dict:
    """RNN: rho^k, sigma_max^k and Pascanu's bound (gamma sigma_max)^k, each times g[end], for k = end - t
    (nan after `end`, the last step with a loss; default T-1). With gamma = 1 (tanh, ReLU, linear) Pascanu's bound
    is the sigma_max curve."""
    sp = spectrum(W_hh)
    end = len(g) - 1 if end is None else end
    k = (end - np.arange(len(g))).astype(float)
    k[k < 0] = np.nan
    with np.errstate(all="ignore"):
        return {
            "rho": g[end] * sp["rho"][0] ** k,
            "sigma_max": g[end] * sp["sigma_max"][0] ** k,
            "pascanu": g[end] * (GAMMA[nonlinearity] * sp["sigma_max"][0]) ** k,
        }


def cell_path_curve(gc: np.ndarray, gates: np.ndarray, end: int | None = None) -> np.ndarray:
    """LSTM: the cell gradient at `end` carried back by the forget gates alone, gc[end] * prod_{s=t+1}^{end} f_s
    (mean over batch and units); nan after `end`."""
    return _carried(gc, gates, end, forget_product)


def _carried(g: np.ndarray, gates: np.ndarray, end: int | None, product) -> np.ndarray:
    """g[end] times a gate product up to `end`, nan after it: a direct path's estimate anchored at the loss step."""
    end = len(g) - 1 if end is None else end
    out = np.full(len(g), np.nan)
    out[:end + 1] = g[end] * product(gates[:end + 1])
    return out


def forget_product(gates: np.ndarray) -> np.ndarray:
    """LSTM cell path: P[t] = mean over (batch, units) of prod_{s=t+1}^{T-1} f_s, from gates (T, B, 4H).

    dc_t/dc_(t+1) = diag(f_(t+1)) along the cell path, so P[t] is how much of the last step's cell gradient survives
    to step t through the cell alone (P[T-1] = 1)."""
    return _keep_product(gates[1:, :, gates.shape[-1] // 4:gates.shape[-1] // 2])


def update_product(gates: np.ndarray) -> np.ndarray:
    """GRU direct path: P[t] = mean over (batch, units) of prod_{s=t+1}^{T-1} z_s, from gates (T, B, 3H) r, z, n.

    h_s = z_s h_{s-1} + (1 - z_s) n_s, so dh_s/dh_{s-1} = diag(z_s) + (the paths through r, z and n), and P[t] is how
    much of the last step's gradient survives to step t along the direct path alone (P[T-1] = 1)."""
    H = gates.shape[-1] // 3
    return _keep_product(gates[1:, :, H:2 * H])


def _keep_product(keep: np.ndarray) -> np.ndarray:
    """(T-1, B, H) gate values -> (T,) mean over (B, H) of their products from t+1 to the end, with 1 appended."""
    with np.errstate(all="ignore"):
        logs = np.log(keep.astype(np.float64))[::-1].cumsum(axis=0)[::-1]  # sum_{s>t} log of the gate: exact when tiny
        prod = np.exp(logs).mean(axis=(1, 2))
    return np.append(prod, 1.0)


def update_path_curve(g: np.ndarray, gates: np.ndarray, end: int | None = None) -> np.ndarray:
    """GRU: the hidden gradient at `end` carried back by the update gates alone, g[end] * prod_{s=t+1}^{end} z_s
    (mean over batch and units); nan after `end`."""
    return _carried(g, gates, end, update_product)


def fit_rate(g: np.ndarray, tail: float = TAIL_FRACTION, end: int | None = None, start: int = 0) -> float:
    """Per-step decay rate from a log-linear least-squares fit of g[t] ~ C rate^(end-t) over the tail (the first
    `tail` fraction of steps start..end, `end` being the last step with a loss; farthest from it). `start` > 0 leaves
    out steps a truncation cut off (cut_at). Zeros and non-finite values are left out; nan if fewer than three
    usable points remain."""
    g = np.asarray(g, dtype=np.float64)
    g = (g if end is None else g[:end + 1])[start:]
    n = max(3, int(round(len(g) * tail)))
    t = np.arange(len(g))[:n]
    v = g[:n]
    ok = np.isfinite(v) & (v > 0)
    if ok.sum() < 3:
        return float("nan")
    slope = np.polyfit(t[ok], np.log(v[ok]), 1)[0]
    return float(np.exp(-slope))


def diagnose(g: np.ndarray, y_mask: np.ndarray | None = None, dtype: str = "float64",
             nonfinite: dict | None = None, truncate: int = 0) -> tuple[str, str]:
    """(verdict, sentence) for a profile: "vanishing" | "exploding" | "preserved" | "underflow" | "zero" |
    "overflow" | "mixed" | "cut". The comparison is step 1 against the last step with a loss (see loss_end); with
    truncated BPTT cutting before that step's chunk, the verdict is "cut" and the sentence compares the chunk's first
    step instead (the zeros before it are the truncation's, not an underflow or a vanishing gradient)."""
    g = np.asarray(g, dtype=np.float64)
    end = loss_end(y_mask, len(g))
    g = g[:end + 1]
    T = len(g)
    cut = cut_at(end, truncate)
    h = (nonfinite or {}).get("h:nonfinite")
    if h:
        return "overflow", (f"exploding: the hidden state itself overflowed in the forward pass at step {h['step'] + 1}"
                            ", so the loss and every gradient are not numbers")
    if not np.isfinite(g).all():
        bad = np.flatnonzero(~np.isfinite(g))[-1]
        return "overflow", (f"exploding: going back from step {T}, the gradient overflowed {dtype} at step {bad + 1}")
    if losses_at_many_steps(y_mask):
        return "mixed", ("not comparable: this task has a loss at many steps, so each step's gradient is mostly its "
                         "own loss's; the long-range part is hidden in it (the adding problem shows it alone)")
    first, last = g[0], g[-1]
    if last == 0:
        return "zero", f"no gradient: the gradient at step {T}, where the loss is, is exactly zero"
    if cut is not None and g[cut] > 0:
        r = g[cut] / last
        how = (" (vanishing within the chunk)" if r < VANISHING_BELOW else
               " (exploding within the chunk)" if r > EXPLODING_ABOVE else "")
        return "cut", (f"cut by truncation: with truncated BPTT (every {truncate} steps) the gradient of the loss at "
                       f"step {T} reaches back only to step {cut + 1}; steps 1-{cut} get exactly 0 from it (cut, not "
                       f"vanished); inside the chunk it is what full BPTT gives there: step {cut + 1} gets {r:.2g} "
                       f"of step {T}'s{how}")
    if first == 0:
        gone = int(np.flatnonzero(g == 0)[-1])
        smallest = g[g > 0].min()
        tiny = float(np.finfo(dtype).tiny)
        if smallest < tiny * 1e12:
            least = float(np.finfo(dtype).smallest_subnormal)
            return "underflow", (f"vanishing: the gradient underflowed to exactly 0 at step {gone + 1} and before, "
                                 f"below the smallest positive {dtype} number ({least:.0e})")
        return "zero", (f"cut off: the gradient is exactly 0 at step {gone + 1} and before: no path carries it there "
                        "(for example W_hh = 0 or dead ReLU units)")
    r = first / last
    if r < VANISHING_BELOW:
        return "vanishing", f"vanishing: the gradient from step 1 is {r:.0e} of the gradient at step {T}"
    if r > EXPLODING_ABOVE:
        return "exploding", f"exploding: the gradient from step 1 is {r:.0e} times the gradient at step {T}"
    return "preserved", (f"within a factor of a thousand: the gradient from step 1 is {r:.2g} times the gradient at "
                         f"step {T}")


def flag_sentences(nonfinite: dict, T: int) -> list[str]:
    """Plain sentences for a probe's `nonfinite` flags (record.flag_nonfinite), most fundamental first."""
    out = []
    h = nonfinite.get("h:nonfinite")
    if h:
        out.append(f"the hidden state overflowed in the forward pass at step {h['step'] + 1} of {T} (it is "
                   f"{h['kind']} from there on), so the loss and the gradients are not numbers")
    elif "loss" in nonfinite:
        out.append(f"the loss is {nonfinite['loss']['kind']}")
    words = {"inf": "overflowed to inf", "zero": "is exactly 0", "nan": "is nan"}
    edge = {"inf": "shown at the plot's top edge", "zero": "shown at the plot's bottom edge", "nan": "not drawn"}
    for kind in ("inf", "zero", "nan"):
        f = nonfinite.get(f"grad_h_norm:{kind}")
        if f and not (kind == "nan" and h):
            out.append(f"the gradient {words[kind]} at step {f['step'] + 1} and before it ({f['count']} of {T} "
                       f"steps); {edge[kind]}")
    return out


def profile_summary(cell: str, nonlinearity: str, W_hh: np.ndarray, g: np.ndarray, gc: np.ndarray | None = None,
                    gates: np.ndarray | None = None, y_mask: np.ndarray | None = None, dtype: str = "float64",
                    nonfinite: dict | None = None, g_last: np.ndarray | None = None,
                    gc_last: np.ndarray | None = None, truncate: int = 0) -> dict:
    """Everything drawn or exported about one gradient profile, computed once: the anchor step, the theory curves
    (RNN: theory_rho, theory_sigma_max, theory_pascanu; LSTM: theory_cell_path; GRU: theory_update_path), the fitted
    rate and the diagnosis. For a task with a loss at many steps, pass g_last/gc_last (the profiles from the last
    step's loss alone): the summary is then about those, with "last_only" set. With truncated BPTT, `cut_at` is the
    first step the loss at `end` reaches (None when nothing is cut before it): the rate is fitted on cut_at..end only
    and every curve is nan before cut_at."""
    end = loss_end(y_mask, len(g))
    mixed = losses_at_many_steps(y_mask)
    if mixed and g_last is not None:
        single = np.zeros(np.shape(y_mask))
        single[end] = 1.0
        out = profile_summary(cell, nonlinearity, W_hh, g_last, gc_last, gates, single, dtype, nonfinite,
                              truncate=truncate)
        verdict, sentence = out["diagnosis"]
        out.update(mixed=True, last_only=True, diagnosis=(verdict, "from the last step's loss alone, " + sentence))
        return out
    cut = cut_at(end, truncate)
    start = cut or 0
    out = {"end": end, "mixed": mixed, "cut_at": cut, "first": start,
           "rate": float("nan") if mixed else fit_rate(g, end=end, start=start),
           "diagnosis": diagnose(g, y_mask, dtype, nonfinite, truncate), "curves": {}}
    if mixed:
        return out  # a decay law anchored at one loss does not describe a profile fed by many
    if cell == "rnn":
        out["curves"] = {f"theory_{k}": v for k, v in theory_curves(g, W_hh, nonlinearity, end).items()}
    elif cell == "gru" and gates is not None:
        out["curves"] = {"theory_update_path": update_path_curve(g, gates, end)}
    elif gates is not None and gc is not None:
        out["curves"] = {"theory_cell_path": cell_path_curve(gc, gates, end)}
    for curve in out["curves"].values():
        curve[:start] = np.nan  # the truncation cut the loss's gradient off there: no law describes a zero by design
    return out


def summary(p, factors: np.ndarray | None = None) -> dict:
    """Everything drawn, exported or said about one record p (a Probe, or a Run's `.latest`), computed once and
    kept on the record: profile_summary's anchor, curves, fitted rate and diagnosis, and the exact theory:
      lyapunov   (n,) the finite-time Lyapunov factors of the step Jacobians, descending (see lyapunov.py);
      mean_rate  the measured average per-step factor (g[first] / g[end]) ** (1 / (end - first)), what lyapunov[0]
                 predicts;
      ratio      g[0] / g[end], the gradient reaching step 1 relative to the loss step (exactly 0 when cut);
      cut_at     truncated BPTT: the first step the loss at `end` reaches (steps before it get exactly 0 from it,
                 by construction; verdict "cut"), or None when nothing is cut before `end` (always without truncation);
      first      cut_at, or 0: where the uncut profile begins; ratio_first = g[first] / g[end] (= ratio when uncut);
      curves     theory_lyapunov for every cell (the primary prediction), and the labelled approximations:
                 RNN theory_rho (linear-RNN asymptote), theory_sigma_max (Pascanu's upper bound, gamma = 1);
                 LSTM theory_cell_path (the direct cell path alone: the product of forget gates);
                 GRU theory_update_path (the direct path h_{t-1} -> h_t alone: the product of update gates z);
                 every curve is nan before `first`;
      off_at_1   for each curve, curve[first] / g[first]: how far it is from the measurement at the first step the
                 gradient reaches, step 1 unless cut (1 = exact).
      rate_on    which profile mean_rate and the Lyapunov curve are on: grad_c_norm for the LSTM, else grad_h_norm.
    The LSTM's cell-path curve is anchored on ||dL/dc_t|| too; ratio and the diagnosis are always on ||dL/dh_t||.
    `factors`: lyapunov(p), when it was computed elsewhere (the dashboard computes it in another process, from
    lyapunov.trajectory(p)); used only by the call that makes the summary."""
    cached = getattr(p, "_summary", None)
    if cached is not None:
        return cached
    m = measured(p)
    out = dict(m, curves=dict(m["curves"]))  # the measurements, then the theory beside them
    g = p.grad_h_norm_last if out.get("last_only") else p.grad_h_norm
    gc = p.grad_c_norm_last if out.get("last_only") else p.grad_c_norm
    on = gc if out["rate_on"] == "grad_c_norm" else g
    end, first = out["end"], out["first"]
    out["lyapunov"] = lyapunov(p) if factors is None else factors
    out["lyapunov_sequences"] = sequences_used(p)
    if not (out["mixed"] and not out.get("last_only")):
        top = out["lyapunov"][0] if len(out["lyapunov"]) else np.nan
        out["curves"]["theory_lyapunov"] = _power_curve(on, top, end)
        out["curves"]["theory_lyapunov"][:first] = np.nan
    out["off_at_1"] = {}
    with np.errstate(all="ignore"):
        for k, curve in out["curves"].items():
            ref = on if k in ("theory_cell_path", "theory_lyapunov") else g
            out["off_at_1"][k] = float(curve[first] / ref[first]) if ref[first] else float("nan")
        direct = getattr(p, "grad_c_direct_norm", None)
        if "theory_cell_path" in out["curves"] and direct is not None and not out.get("last_only"):
            # what the product approximates: the measured direct path, not the total
            c = out["curves"]["theory_cell_path"]
            out["off_at_1"]["theory_cell_path_direct"] = (float(c[first] / direct[first]) if direct[first]
                                                          else float("nan"))
    object.__setattr__(p, "_summary", out)
    return out


def measured(p) -> dict:
    """The part of `summary` that is measured, without the Lyapunov spectrum and the curve drawn from it (cheap: the
    page's verdicts need only this, and the spectrum is the slowest number drawn). Kept on the record as well."""
    cached = getattr(p, "_measured", None)
    if cached is not None:
        return cached
    dtype = p.config.dtype if p.config else str(p.params["weight_hh_l0"].dtype)
    out = profile_summary(p.cell, p.nonlinearity, p.params["weight_hh_l0"], p.grad_h_norm, p.grad_c_norm, p.gates,
                          p.y_mask, dtype, p.nonfinite, p.grad_h_norm_last, p.grad_c_norm_last, p.truncate)
    g = p.grad_h_norm_last if out.get("last_only") else p.grad_h_norm
    gc = p.grad_c_norm_last if out.get("last_only") else p.grad_c_norm
    end, first = out["end"], out["first"]
    # The LSTM's memory is its cell state, and the top factor tracks ||dL/dc_t|| best (within 1.5% over 30 runs;
    # ||dL/dh_t|| within 4%, tests/test_lyapunov.py): its rate and prediction are on c.
    on = gc if p.cell == "lstm" and gc is not None else g
    out["rate_on"] = "grad_c_norm" if on is gc else "grad_h_norm"
    if gc is not None:  # the LSTM's other state: its own verdict, said beside the hidden state's
        single = None if not out.get("last_only") else _single(p.y_mask, end)
        out["diagnosis_c"] = diagnose(gc, single if single is not None else p.y_mask, dtype, p.nonfinite,
                                      p.truncate)
    out["mean_rate"] = mean_rate(on, end, first)
    with np.errstate(all="ignore"):
        out["ratio"] = float(g[0] / g[end]) if g[end] else float("nan")
        out["ratio_first"] = float(g[first] / g[end]) if g[end] else float("nan")
    object.__setattr__(p, "_measured", out)
    return out


def _power_curve(g: np.ndarray, factor: float, end: int) -> np.ndarray:
    """g[end] * factor ** (end - t), nan after end."""
    k = (end - np.arange(len(g))).astype(float)
    k[k < 0] = np.nan
    with np.errstate(all="ignore"):
        return g[end] * factor ** k


def update_window(contrib: np.ndarray, end: int, share: float = 0.99) -> tuple[str, int]:
    """Where the weight update "hears": ("last", k) when the k steps just before the loss (end, end-1, ...) carry
    `share` of the sum of the norms of the terms of dL/dW_hh, or ("first", k) when the first k steps do with fewer
    steps (an exploding gradient weights the earliest steps most). A share of norms, not of the vector sum (terms can
    cancel). Step 0's term is 0 (h_(-1) = 0) and is not counted."""
    w = np.nan_to_num(np.asarray(contrib[1:end + 1], dtype=np.float64), nan=0.0, posinf=0.0)
    total = w.sum()
    if not total > 0:
        return "last", 0
    last = int(np.searchsorted(np.cumsum(w[::-1]) / total, share) + 1)
    first = int(np.searchsorted(np.cumsum(w) / total, share) + 1)
    return ("first", first) if first < last else ("last", last)


def _single(y_mask, end: int) -> np.ndarray:
    m = np.zeros(np.shape(y_mask))
    m[end] = 1.0
    return m


def surviving(factors: np.ndarray, T: int, floor: float = VANISHING_BELOW) -> int:
    """How many Lyapunov directions keep at least `floor` of the gradient over T-1 steps: factor^(T-1) >= floor."""
    f = np.asarray(factors, dtype=np.float64)
    return int(np.sum(f >= survival_factor(T, floor)))


def survival_factor(T: int, floor: float = VANISHING_BELOW) -> float:
    """The per-step factor that keeps exactly `floor` of the gradient over T-1 steps."""
    return float(floor ** (1.0 / max(T - 1, 1)))


def running_mean(v: np.ndarray, window: int | None = None) -> np.ndarray:
    """Trailing mean over `window` steps (default: 2% of the run, at least 5), for readable loss curves."""
    v = np.asarray(v, dtype=np.float64)
    if not len(v):
        return v
    w = window or max(5, len(v) // 50)
    c = np.cumsum(np.insert(v, 0, 0.0))
    n = np.minimum(np.arange(1, len(v) + 1), w)
    return (c[1:] - c[np.arange(1, len(v) + 1) - n]) / n
