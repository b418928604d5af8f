"""Training with periodic records: optimisers, clipping, and a loop that never loses what it recorded.

Each step draws a fresh batch from the task's data stream (the same stream for every cell, so an RNN, an LSTM and a
GRU trained from one Config see identical batches). With Config.truncate = K > 0 the updates use truncated BPTT's
gradients (bptt.py), and the records are of those. Every `record_every` steps, and after the last step, the current
parameters are probed on a fixed probe batch (the first batch of the stream, the one `probe(cfg)` uses), so the
profiles change only because the parameters did. Gradients are recorded *before* clipping.

Shapes: S steps done, R records, T steps of the probe sequence, n recurrent blocks (1 RNN, 4 LSTM, 3 GRU), H hidden.
"""
from __future__ import annotations

import time
from typing import Callable, Iterator

import numpy as np

from . import analysis, bptt
from .config import Config
from .init import GATES
from .probe import refuse_over, setup
from .record import PARAM_NAMES, Progress, Run
from .tasks import Batch, accuracy, input_output_sizes, make_batch

N_GATE_SEQUENCES = 4  # full gate activations are kept for this many probe sequences, at the last record only
CALLBACK_EVERY_S = 0.25  # on_record also fires between records at least this often, for progress bars (issue: <= 0.3 s)


# ---- optimisers: a dict of state per parameter name, so a step is `for k in params` -----------------------------

def _sgd(cfg: Config, params: dict) -> Callable[[dict], None]:
    buf: dict[str, np.ndarray] = {}

    def step(grads: dict) -> None:
        for k, g in grads.items():  # PyTorch's momentum: buf = mu buf + g (buf = g on the first step)
            buf[k] = g.copy() if k not in buf else cfg.momentum * buf[k] + g
            params[k] -= cfg.lr * buf[k]
    return step


def _adam(cfg: Config, params: dict, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8) -> Callable[[dict], None]:
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(p) for k, p in params.items()}
    t = [0]

    def step(grads: dict) -> None:
        t[0] += 1
        c1, c2 = 1 - b1 ** t[0], 1 - b2 ** t[0]
        for k, g in grads.items():
            m[k] = b1 * m[k] + (1 - b1) * g
            v[k] = b2 * v[k] + (1 - b2) * g * g
            params[k] -= cfg.lr * (m[k] / c1) / (np.sqrt(v[k] / c2) + eps)
    return step


# The update rule of each of config.OPTIMIZERS (the names live there; tests/test_train.py checks the two agree).
UPDATE_RULES = {"sgd": _sgd, "adam": _adam}


def global_norm(grads: dict) -> float:
    return float(bptt.safe_norm(np.concatenate([g.ravel() for g in grads.values()]), (0,)))


def clip(grads: dict, mode: str, threshold: float, norm: float) -> dict:
    """Pascanu's norm clipping (rescale everything when the global norm exceeds the threshold), elementwise value
    clipping (min-char-rnn), or none. Returns new arrays; the recorded gradients are left untouched."""
    if mode == "norm" and norm > threshold:
        return {k: g * (threshold / norm) for k, g in grads.items()}
    if mode == "value":
        return {k: np.clip(g, -threshold, threshold) for k, g in grads.items()}
    return grads


# ---- the loop ---------------------------------------------------------------------------------------------------

class _Recorder:
    def __init__(self, cfg: Config, probe_batch: Batch):
        self.cfg, self.batch = cfg, probe_batch
        self.per_step: dict[str, list] = {k: [] for k in ("loss", "accuracy", "grad_norm_pre", "grad_norm_post", "clipped")}
        self.per_record: dict[str, list] = {k: [] for k in ("record_steps", "probe_loss", "grad_h_norm",
                                                            "grad_whh_contrib_norm", "grad_x_norm", "grad_c_norm",
                                                            "grad_c_direct_norm", "grad_c_rest_norm", "gate_means",
                                                            "eigvals", "singvals")}
        self.param_norms: dict[str, list] = {k: [] for k in PARAM_NAMES}
        self.gates_last = None
        self.stopped = None

    def record(self, step: int, params: dict) -> None:
        b = self.batch
        rec = bptt.run(params, b.x, b.y, b.y_mask, self.cfg.cell, self.cfg.nonlinearity, b.loss_kind,
                       truncate=self.cfg.truncate)
        sp = analysis.spectrum(params["weight_hh_l0"])
        r = self.per_record
        r["record_steps"].append(step)
        r["probe_loss"].append(rec["loss"])
        for k in ("grad_h_norm", "grad_whh_contrib_norm", "grad_x_norm"):
            r[k].append(rec[k])
        r["eigvals"].append(sp["eigvals"])
        r["singvals"].append(sp["singvals"])
        for k in PARAM_NAMES:
            self.param_norms[k].append(float(bptt.safe_norm(params[k].ravel(), (0,))))
        if self.cfg.cell == "lstm":
            for k in ("grad_c_norm", "grad_c_direct_norm", "grad_c_rest_norm"):
                r[k].append(rec[k])
        if self.cfg.cell != "rnn":
            T, B, G = rec["gates"].shape
            n = GATES[self.cfg.cell]
            r["gate_means"].append(rec["gates"].reshape(T, B, n, G // n).mean(axis=(1, 3)))
            self.gates_last = rec["gates"][:, :N_GATE_SEQUENCES].copy()

    def snapshot(self, params: dict, elapsed: float) -> Run:
        s, r = self.per_step, self.per_record
        lstm = self.cfg.cell == "lstm"
        gated = self.cfg.cell != "rnn"
        acc = s["accuracy"] if s["accuracy"] and s["accuracy"][0] is not None else None
        T = self.batch.x.shape[0]
        arr = lambda v, shape: np.array(v) if v else np.zeros(shape)  # noqa: E731
        return Run(
            config=self.cfg, loss_kind=self.batch.loss_kind, loss=np.array(s["loss"], dtype=float),
            accuracy=None if acc is None else np.array(acc, dtype=float),
            grad_norm_pre=np.array(s["grad_norm_pre"], dtype=float), grad_norm_post=np.array(s["grad_norm_post"], dtype=float),
            clipped=np.array(s["clipped"], dtype=bool), record_steps=np.array(r["record_steps"], dtype=np.int64),
            probe_loss=np.array(r["probe_loss"], dtype=float), grad_h_norm=arr(r["grad_h_norm"], (0, T)),
            grad_whh_contrib_norm=arr(r["grad_whh_contrib_norm"], (0, T)), grad_x_norm=arr(r["grad_x_norm"], (0, T)),
            eigvals=np.array(r["eigvals"]), singvals=np.array(r["singvals"]),
            param_norms={k: np.array(v, dtype=float) for k, v in self.param_norms.items()},
            params={k: v.copy() for k, v in params.items()},
            grad_c_norm=arr(r["grad_c_norm"], (0, T)) if lstm else None,
            grad_c_direct_norm=arr(r["grad_c_direct_norm"], (0, T)) if lstm else None,
            grad_c_rest_norm=arr(r["grad_c_rest_norm"], (0, T)) if lstm else None,
            gate_means=arr(r["gate_means"], (0, T, GATES[self.cfg.cell])) if gated else None,
            gates_last=self.gates_last, stopped=self.stopped, elapsed=elapsed)


RECORD_BUDGET = 2**30  # bytes a run's records may grow to: every record keeps (T,) profiles and the spectra


def record_bytes(cfg: Config) -> int:
    """What a finished run's records hold: per record, the profiles (grad_h, grad_x, grad_whh terms; the LSTM's
    c and its split; the gate means of the LSTM and the GRU) over the probe batch's L steps and the spectra of every
    block; per step, five numbers; plus the last record's full gates for N_GATE_SEQUENCES sequences (LSTM, GRU)."""
    L = input_output_sizes(cfg.task, cfg.seq_len)[2]
    n = GATES[cfg.cell]
    records = cfg.steps // cfg.record_every + 2
    extra = {"rnn": 0, "lstm": 3 + 4, "gru": 3}[cfg.cell]  # the LSTM's c profiles, and a mean per gate
    per_record = 8 * L * (3 + extra) + 24 * n * cfg.hidden
    gates = 8 * L * N_GATE_SEQUENCES * n * cfg.hidden if cfg.cell != "rnn" else 0
    return records * per_record + 5 * 8 * cfg.steps + gates


def check_records(cfg: Config) -> None:
    refuse_over(record_bytes(cfg), RECORD_BUDGET, "training records would grow to",
                f"raise record_every ({cfg.record_every}) or lower steps ({cfg.steps}) or seq_len ({cfg.seq_len})")


def _steps(cfg: Config, params: dict | None = None) -> Iterator[tuple[int, bool, _Recorder, dict]]:
    """The training loop as a generator: yields (updates done, recorded?, recorder, params) after every step."""
    check_records(cfg)
    probe_batch, params, data_rng = setup(cfg, params)  # the same start as probe(cfg): records begin there
    rec = _Recorder(cfg, probe_batch)
    update = UPDATE_RULES[cfg.optimizer](cfg, params)
    with np.errstate(all="ignore"):
        for step in range(cfg.steps):
            recorded = step % cfg.record_every == 0
            if recorded:
                rec.record(step, params)
            b = make_batch(cfg.task, cfg.seq_len, cfg.batch, data_rng)
            out = bptt.run(params, b.x.astype(cfg.dtype), b.y, b.y_mask.astype(cfg.dtype), cfg.cell,
                           cfg.nonlinearity, b.loss_kind, record=False, truncate=cfg.truncate)
            norm = global_norm(out["grads"])
            if not (np.isfinite(out["loss"]) and np.isfinite(norm)):
                what = "loss" if not np.isfinite(out["loss"]) else "gradient"
                rec.stopped = {"reason": f"the {what} overflowed (inf/nan) at training step {step + 1}", "step": step}
                yield step, recorded, rec, params
                return
            clipped = clip(out["grads"], cfg.clip_mode, cfg.clip, norm)
            s = rec.per_step
            s["loss"].append(out["loss"])
            s["accuracy"].append(accuracy(cfg.task, b, out["yhat"]))
            s["grad_norm_pre"].append(norm)
            s["grad_norm_post"].append(norm if clipped is out["grads"] else global_norm(clipped))
            s["clipped"].append(clipped is not out["grads"] and s["grad_norm_post"][-1] < norm)
            update(clipped)
            yield step + 1, recorded, rec, params
        rec.record(cfg.steps, params)
        yield cfg.steps, True, rec, params


def train(cfg: Config, on_record: Callable[[Progress], bool | None] | None = None,
          params: dict | None = None) -> Run:
    """Train one cell with cfg's training fields. `on_record(progress)` is called after every record and at least
    every CALLBACK_EVERY_S seconds; returning False stops training early (the run keeps everything so far)."""
    return train_many([cfg], on_record, [params])[cfg.cell]


def train_pair(cfg: Config, on_record: Callable[[Progress], bool | None] | None = None) -> dict[str, Run]:
    """The matched comparison: an RNN and an LSTM from the same Config (identical batches), trained step by step
    in alternation so partial results of both grow together. Returns {"rnn": Run, "lstm": Run}."""
    return train_many([cfg.replace(cell="rnn"), cfg.replace(cell="lstm")], on_record)


def train_many(cfgs: list[Config], on_record=None, params: list | None = None) -> dict[str, Run]:
    """Advance every cell one step per round; a stop request from on_record ends training after the round, so
    every cell has a run (with the same number of steps, give or take the one that asked)."""
    start = time.perf_counter()
    gens = {c.cell: _steps(c, p) for c, p in zip(cfgs, params or [None] * len(cfgs))}
    latest: dict[str, tuple] = {}
    last_call = start
    stop = False
    while gens and not stop:
        for cell in list(gens):
            try:
                latest[cell] = next(gens[cell])
            except StopIteration:
                del gens[cell]
                continue
            done, recorded, rec, params_now = latest[cell]
            now = time.perf_counter()
            if on_record and not stop and (recorded or now - last_call >= CALLBACK_EVERY_S):
                last_call = now
                progress = Progress(cell, done, rec.cfg.steps, now - start, rec.snapshot(params_now, now - start), recorded)
                stop = on_record(progress) is False
    if stop:
        for d, _, r, _ in latest.values():
            r.stopped = r.stopped or {"reason": f"stopped by the user after {d} steps", "step": d}
    elapsed = time.perf_counter() - start
    return {cell: rec.snapshot(p, elapsed) for cell, (_, _, rec, p) in latest.items()}
