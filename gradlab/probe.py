"""probe(cfg): one batch, one forward pass, full BPTT, everything recorded. verify(path): recompute a bundle.

Randomness: one SeedSequence(cfg.seed) is split into a data stream and a parameter stream, so the RNN, the LSTM and
the GRU built from the same Config see exactly the same batches whatever their parameter counts.
"""
from __future__ import annotations

import os

import numpy as np

from . import bptt
from .config import Config
from .init import GATES, init_params
from .record import C_SPLIT, PARAM_NAMES, PROFILES, Probe, check_shapes, flag_nonfinite, load
from .tasks import input_output_sizes, loss_end, losses_at_many_steps, make_batch


def rngs(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """(data_rng, param_rng) for a seed."""
    data, param = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(data), np.random.default_rng(param)


def prepare_params(params: dict, cfg: Config, x_shape: tuple, loss_kind: str, y_shape: tuple) -> dict[str, np.ndarray]:
    """Validate user parameters (e.g. a PyTorch state_dict saved with numpy) against cfg and the task.

    Keys may carry a module prefix ("lstm.weight_hh_l0" from a model with an `lstm` submodule); the read-out must be
    called head.weight / head.bias (an nn.Linear named `head`).
    """
    found: dict[str, np.ndarray] = {}
    for key, value in params.items():
        name = key if key in PARAM_NAMES else next((n for n in PARAM_NAMES[:4] if key.endswith("." + n)), None)
        if name is None:
            raise ValueError(f"unexpected parameter {key!r}: expected {', '.join(PARAM_NAMES)}"
                             " (a single-layer, unidirectional cell and a linear read-out named head)")
        if name in found:
            raise ValueError(f"parameter {name!r} given twice (as {key!r})")
        a = np.asarray(value)
        if a.dtype.kind not in "fiu":
            raise ValueError(f"parameter {key!r} has non-numeric dtype {a.dtype}")
        if not np.isfinite(a).all():
            raise ValueError(f"parameter {key!r} holds nan or inf")
        found[name] = a.astype(cfg.dtype)
    missing = [n for n in PARAM_NAMES if n not in found]
    if missing:
        raise ValueError(f"missing parameter(s) {missing}")
    where = f"params for cell={cfg.cell}, task={cfg.task}"
    check_shapes(found, x_shape, cfg.cell, loss_kind, y_shape, x_shape[:2], where)
    if found["weight_hh_l0"].shape[1] != cfg.hidden:
        raise ValueError(f"{where}: weight_hh_l0 has hidden size {found['weight_hh_l0'].shape[1]}, "
                         f"but hidden = {cfg.hidden}; set hidden to match the weights")
    return found


MEMORY_BUDGET = 2 * 2**30  # bytes one probe may hold; beyond it a laptop starts to swap mid-lecture


def estimate_bytes(cfg: Config) -> int:
    """Peak memory of one probe, from the shapes it allocates: the batch as generated (float64) and cast, the
    forward pass (z = [h, x, 1] per step, and the LSTM's gates and cell states), the read-out and its loss's
    intermediates, the gradient from the read-out, and one chunk's backward scratch; for copy (a loss at every step)
    the second backward pass from the last step's loss alone, made while the first forward pass is still held.
    Checked against tracemalloc's peak for every task and cell (tests/test_limits.py)."""
    D, O, L = input_output_sizes(cfg.task, cfg.seq_len)
    return shapes_bytes(L, cfg.batch, D, O, cfg.hidden, cfg.cell, cfg.task in ("copy", "temporal_order", "latch"),
                        cfg.task == "copy", np.dtype(cfg.dtype).itemsize)


def shapes_bytes(L: int, B: int, D: int, O: int, H: int, cell: str, xent: bool, many: bool, w: int) -> int:
    """estimate_bytes from the shapes themselves (a bundle's recomputation has no task, only arrays): L steps of a
    batch of B, D inputs, O outputs, H hidden; xent for class targets; many for a loss at every step (a second
    backward pass); w bytes per number."""
    G = GATES[cell] * H
    Gf = 4 * H if cell == "gru" else G  # rows of bptt's fused weights (the GRU's n has two halves)
    C, K = bptt.CHUNK, H + D + 1
    batch = 8 * L * B * (2 * D + (1 if xent else O) + 2)  # x and the mask twice (made, then cast), y
    # z = [h; x; 1] per step, the batch-major copy of h that is returned; the LSTM's gates and cell states, the GRU's
    # gates and W_hn h + b_hn
    held = w * L * B * (H + (G + H if cell != "rnn" else 0))
    forward = w * (L + 1) * B * K + held
    head = w * L * B * O * (5 if xent else 2) + w * L * B * H  # read-out, loss intermediates, dL/dh from it
    # one chunk's backward scratch (bptt._run's workspace): dL/da, [dL/dh from the read-out, total dL/dh], h laid out
    # for the per-step dW_hh terms, the terms and their squares, the cells' local factors (the LSTM's dL/dc and its
    # two parts too), and the squares of a per-step norm
    factors = {"rnn": H, "gru": 4 * H, "lstm": 11 * H}[cell]
    scratch = w * C * (B * (Gf + 4 * H + factors) + 2 * G * H)
    second = held + w * L * B * O if many else 0  # the first pass's records are still held; z is scratch
    return int(batch + forward + head + scratch + second)


def refuse_over(need: int, budget: int, what: str, advice: str) -> None:
    """One line when `need` bytes exceed `budget`: how much, for what, and what to change."""
    if need > budget:
        raise ValueError(f"{what} about {need / 2**30:.1f} GB (budget {budget / 2**30:.0f} GB): {advice}")


def check_budget(cfg: Config) -> None:
    refuse_over(estimate_bytes(cfg), MEMORY_BUDGET, "one probe of this configuration needs",
                f"reduce seq_len ({cfg.seq_len}), hidden ({cfg.hidden}) or batch ({cfg.batch}), or use dtype float32")


def probe_batch(cfg: Config):
    """The batch probe(cfg) and train(cfg)'s records use: the first of the task's data stream."""
    return make_batch(cfg.task, cfg.seq_len, cfg.batch, rngs(cfg.seed)[0])


def setup(cfg: Config, params: dict | None = None):
    """What probe and train both start from: (the probe batch in cfg.dtype, parameters, the data stream after it).
    Refuses configurations over MEMORY_BUDGET; fresh parameters unless `params` are given (then validated)."""
    check_budget(cfg)
    data_rng, param_rng = rngs(cfg.seed)
    batch = make_batch(cfg.task, cfg.seq_len, cfg.batch, data_rng)
    if params is None:
        params = init_params(cfg, batch.x.shape[-1], batch.n_out, param_rng)
    else:
        params = prepare_params(params, cfg, batch.x.shape, batch.loss_kind, batch.y.shape)
    batch.x, batch.y_mask = batch.x.astype(cfg.dtype), batch.y_mask.astype(cfg.dtype)
    return batch, params, data_rng


def probe(cfg: Config, params: dict | None = None) -> Probe:
    """Forward + BPTT on the first batch of cfg's task, at initialisation or on the given parameters.
    Configurations that would need more than MEMORY_BUDGET are refused with a ValueError saying what to reduce."""
    batch, params, _ = setup(cfg, params)
    return _probe(params, batch.x, batch.y, batch.y_mask, cfg.cell, cfg.nonlinearity, batch.loss_kind, cfg.truncate,
                  config=cfg)


def _probe(params, x, y, y_mask, cell, nonlinearity, loss_kind, truncate=0, **extra) -> Probe:
    rec = bptt.run(params, x, y, y_mask, cell, nonlinearity, loss_kind, truncate=truncate)
    grads = rec.pop("grads")
    if losses_at_many_steps(y_mask):
        # With a loss at every step (copy) each step's gradient is mostly its own loss's; a second pass with the
        # last step's loss alone shows the long-range part, the quantity the theory describes.
        last = np.zeros_like(y_mask)
        end = loss_end(y_mask, len(y_mask))
        last[end] = y_mask[end]
        alone = bptt.run(params, x, y, last, cell, nonlinearity, loss_kind, truncate=truncate)
        extra.update(grad_h_norm_last=alone["grad_h_norm"], grad_c_norm_last=alone.get("grad_c_norm"))
    return Probe(cell=cell, nonlinearity=nonlinearity, loss_kind=loss_kind, x=x, y=y, y_mask=y_mask, params=params,
                 grads=grads, nonfinite=flag_nonfinite(rec, bptt.cut_off(y_mask, truncate)), truncate=truncate,
                 **rec, **extra)


def verify(path: str | os.PathLike) -> dict[str, float]:
    """Recompute a bundle from its parameters and data; the largest relative error per recorded quantity.

    Relative error is max|new - saved| / max|saved| per array (for the per-step norms, elementwise against each
    step's own magnitude, so a 1e-200 gradient is checked as strictly as a 1). Matching nan/inf count as equal.
    Only what the bundle holds is compared: grad_x_norm and the LSTM's direct/rest split of dL/dc_t are absent
    from bundles written before gradlab recorded them (and from references that do not compute them).
    The recomputation truncates BPTT as the bundle's config says (`truncate`, 0 when absent).
    """
    b = load(path)
    if not isinstance(b, Probe):
        raise ValueError(f"{os.fspath(path)} is a training run bundle: verify recomputes probe bundles "
                         "(save one with `python -m gradlab probe --out FILE.npz`)")
    L, B, D = b.x.shape
    O, H = b.params["head.weight"].shape
    many = losses_at_many_steps(b.y_mask)
    refuse_over(shapes_bytes(L, B, D, O, H, b.cell, b.loss_kind == "xent", many, b.params["weight_hh_l0"].itemsize),
                MEMORY_BUDGET, f"{os.fspath(path)}: recomputing this bundle needs",
                "it is larger than a probe gradlab would make itself")
    new = _probe(b.params, b.x, b.y, b.y_mask, b.cell, b.nonlinearity, b.loss_kind, b.truncate)
    errors = {"loss": _rel(np.array(new.loss), np.array(b.loss), elementwise=True)}
    for name in PROFILES + C_SPLIT + ("h", "c", "gates"):
        saved = getattr(b, name)
        if saved is not None:
            errors[name] = _rel(getattr(new, name), saved, elementwise=name.endswith("_norm"))
    for k, g in b.grads.items():
        errors[f"grad.{k}"] = _rel(new.grads[k], g)
    return errors


def _rel(a: np.ndarray | None, b: np.ndarray, elementwise: bool = False) -> float:
    if a is None or a.shape != b.shape:  # None: the bundle holds what this cell does not record (an RNN's c)
        return float("inf")
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if same.all():
        return 0.0
    with np.errstate(all="ignore"):
        diff = np.where(same, 0.0, np.abs(a.astype(np.float64) - b))
        if elementwise:
            r = diff / np.where(same, 1.0, np.abs(b))
        else:
            r = diff / np.max(np.abs(b[np.isfinite(b)]), initial=0.0)
    r = np.where(np.isnan(r), np.inf, r)
    return float(np.max(r))
