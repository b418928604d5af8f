"""The Probe record and the .npz bundle format (save, load, verify).

A bundle is a plain `.npz` anyone can read with numpy, without pickle:
  format "gradlab-bundle/1"; config (JSON); cell ("rnn" | "lstm" | "gru"); nonlinearity; loss_kind ("mse" | "xent");
  x (T, B, D); y ((T, B, O) floats for mse, (T, B) integer classes for xent); y_mask (T, B);
  parameters under PyTorch's state_dict names (weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, head.weight,
  head.bias; LSTM gates stacked i, f, g, o; GRU gates r, z, n) and their gradients as grad.<name>;
  recorded values: loss, grad_h_norm, grad_whh_contrib_norm, grad_x_norm, h, and for the LSTM grad_c_norm, c, gates,
  grad_c_direct_norm and grad_c_rest_norm (each (T,): ||dL/dx_t|| over (B, D); the split dL/dc_t = d_t + r_t into
  the direct cell path d_t and the rest r_t, which came back through h_{t-1} into the gates; see bptt.py); for the
  GRU gates (T, B, 3H);
  nonfinite (JSON, see `flag_nonfinite`).
The config's `truncate` (truncated BPTT, see bptt.py) says which gradients were recorded; it is read from the config
JSON even when that is not a whole gradlab Config (a reference computed elsewhere may hold only {"truncate": K, ...});
bundles whose config has no `truncate` are full BPTT (0).
Loading refuses other formats, missing or misshapen arrays and pickled objects with a message that says which.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field

import numpy as np

from .config import CELLS, Config
from .files import atomic_write
from .init import GATES

FORMAT = "gradlab-bundle/1"
RUN_FORMAT = "gradlab-run/1"
RUN_ARRAYS = ("loss", "accuracy", "grad_norm_pre", "grad_norm_post", "clipped", "record_steps", "probe_loss",
              "grad_h_norm", "grad_whh_contrib_norm", "grad_c_norm", "gate_means", "gates_last", "eigvals", "singvals",
              "grad_x_norm", "grad_c_direct_norm", "grad_c_rest_norm")
PARAM_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")
PROFILES = ("grad_h_norm", "grad_c_norm", "grad_whh_contrib_norm", "grad_x_norm")
# Saved and verified like the profiles but not flagged: grad_c_rest_norm is 0 by construction at t = T-1 (and
# everywhere when W_hh = 0), so a zero there says nothing about underflow.
C_SPLIT = ("grad_c_direct_norm", "grad_c_rest_norm")
LATER_RUN_ARRAYS = ("grad_x_norm",) + C_SPLIT  # run arrays that older run bundles do not have: optional on load


@dataclass
class Probe:
    """One forward pass and full BPTT on one batch, with everything recorded per step (shapes in bptt.py)."""

    cell: str
    nonlinearity: str
    loss_kind: str
    x: np.ndarray
    y: np.ndarray
    y_mask: np.ndarray
    params: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    loss: float
    grad_h_norm: np.ndarray
    grad_whh_contrib_norm: np.ndarray
    h: np.ndarray
    grad_c_norm: np.ndarray | None = None
    c: np.ndarray | None = None
    gates: np.ndarray | None = None
    # Optional so that bundles written before these were recorded still load (T,) each; the split is LSTM only
    grad_x_norm: np.ndarray | None = None
    grad_c_direct_norm: np.ndarray | None = None
    grad_c_rest_norm: np.ndarray | None = None
    config: Config | None = None
    yhat: np.ndarray | None = None  # the read-out at every step (T, B, O); not part of the bundle
    # For tasks with a loss at many steps (copy): the profiles from the last step's loss alone (not in the bundle)
    grad_h_norm_last: np.ndarray | None = None
    grad_c_norm_last: np.ndarray | None = None
    note: str = ""  # the bundle's config text when it is not a gradlab Config (e.g. a PyTorch reference)
    nonfinite: dict[str, dict] = field(default_factory=dict)
    truncate: int = 0  # truncated BPTT's K (config.truncate; 0 = full BPTT): which gradients were recorded

    @property
    def seq_len(self) -> int:
        return self.x.shape[0]

    @property
    def latest(self) -> "Probe":
        """A Probe is its own latest state (a Run's is its trained parameters' probe): builders ask for `.latest`."""
        return self

    @property
    def nbytes(self) -> int:
        """Memory held by the record's arrays (views count their base array once)."""
        arrays = [self.x, self.y, self.y_mask, self.h, self.c, self.gates, self.yhat, self.grad_h_norm,
                  *self.params.values(), *self.grads.values()]
        bases = {id(a.base if a.base is not None else a): (a.base if a.base is not None else a)
                 for a in arrays if a is not None}
        return sum(b.nbytes for b in bases.values())

    def save(self, path) -> None:
        """Write the bundle atomically (a temporary file renamed into place: no partial file on failure), or into a
        binary file object."""
        if self.config is not None and self.config.truncate != self.truncate:
            raise ValueError(f"truncate = {self.truncate} disagrees with the config's {self.config.truncate}")
        arrays = {
            "format": np.array(FORMAT), "cell": np.array(self.cell), "nonlinearity": np.array(self.nonlinearity),
            "loss_kind": np.array(self.loss_kind),
            "config": np.array(self.config.to_json() if self.config else _note_with_truncate(self.note, self.truncate)),
            "nonfinite": np.array(json.dumps(self.nonfinite)),
            "x": self.x, "y": self.y, "y_mask": self.y_mask, "loss": np.array(self.loss),
        }
        arrays.update(self.params)
        arrays.update({f"grad.{k}": v for k, v in self.grads.items()})
        for name in PROFILES + C_SPLIT + ("h", "c", "gates"):
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        _write(path, arrays)


def config_truncate(text: str) -> int:
    """The `truncate` of a bundle's config JSON (0 when absent: full BPTT); a ValueError if it is not an int >= 0."""
    try:
        d = json.loads(text)
    except (json.JSONDecodeError, TypeError, RecursionError):
        return 0
    k = d.get("truncate", 0) if isinstance(d, dict) else 0
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"config truncate = {k!r} is invalid: expected an integer >= 0")
    return k


def _note_with_truncate(note: str, truncate: int) -> str:
    """A non-Config note that still says the truncation (a JSON object gets the key; anything else is wrapped)."""
    try:
        if config_truncate(note) == truncate:
            return note
    except ValueError:
        pass
    try:
        d = json.loads(note)
    except (json.JSONDecodeError, TypeError, RecursionError):
        d = None
    return json.dumps(dict(d, truncate=truncate) if isinstance(d, dict) else {"truncate": truncate, "note": note})


def _write(path, arrays: dict) -> None:
    """Write atomically (files.atomic_write), so a failure leaves no partial bundle and the target untouched; a file
    object (an io.BytesIO for a ZIP entry) is written directly."""
    if hasattr(path, "write"):
        np.savez(path, **arrays)
        return

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append .npz to a name
            np.savez(fh, **arrays)
    atomic_write(path, write)


@dataclass
class Run:
    """A training run's record (arrays grow while training; a snapshot is consistent at any time)."""

    config: Config
    loss_kind: str
    loss: np.ndarray  # (S,) training-batch loss before the step's update
    accuracy: np.ndarray | None  # (S,) for tasks with a criterion
    grad_norm_pre: np.ndarray  # (S,) global gradient norm before clipping
    grad_norm_post: np.ndarray  # (S,) after clipping
    clipped: np.ndarray  # (S,) bool
    record_steps: np.ndarray  # (R,) the number of updates done when each record was taken
    probe_loss: np.ndarray  # (R,)
    grad_h_norm: np.ndarray  # (R, T)
    grad_whh_contrib_norm: np.ndarray  # (R, T)
    eigvals: np.ndarray  # (R, n, H) complex
    singvals: np.ndarray  # (R, n, H)
    param_norms: dict[str, np.ndarray]  # name -> (R,)
    params: dict[str, np.ndarray]  # the parameters after the last update
    grad_c_norm: np.ndarray | None = None  # (R, T), LSTM
    # (R, T, n) mean of each gate over batch and units: LSTM i, f, g, o (n = 4), GRU r, z, n (n = 3)
    gate_means: np.ndarray | None = None
    gates_last: np.ndarray | None = None  # (T, k, nH) full gates of k probe sequences at the last record, LSTM/GRU
    # (R, T) each; None in run bundles saved before they were recorded (and the split for the RNN)
    grad_x_norm: np.ndarray | None = None  # ||dL/dx_t||
    grad_c_direct_norm: np.ndarray | None = None  # ||d_t||, dL/dc_t's direct cell path, LSTM
    grad_c_rest_norm: np.ndarray | None = None  # ||dL/dc_t - d_t||, LSTM
    stopped: dict | None = None  # {"reason", "step"} when training stopped before cfg.steps
    elapsed: float = 0.0

    def save(self, path) -> None:
        """A run bundle (to a path, atomically, or a binary file object): format gradlab-run/1, the same family and conventions as a probe bundle."""
        arrays = {"format": np.array(RUN_FORMAT), "config": np.array(self.config.to_json()),
                  "loss_kind": np.array(self.loss_kind), "stopped": np.array(json.dumps(self.stopped))}
        # (elapsed time is not saved: the same Config must give the same bundle, byte for byte)
        for name in RUN_ARRAYS:
            if getattr(self, name) is not None:
                arrays[name] = getattr(self, name)
        arrays.update({f"param_norm.{k}": v for k, v in self.param_norms.items()})
        arrays.update(self.params)
        _write(path, arrays)

    @property
    def cell(self) -> str:
        return self.config.cell

    @property
    def nonlinearity(self) -> str:
        return self.config.nonlinearity

    @property
    def steps_done(self) -> int:
        return len(self.loss)

    @property
    def latest(self) -> "Probe":
        """The Probe-shaped record of the trained parameters (the probe batch, recomputed once and kept), so every
        probe panel draws a Run exactly as it draws a Probe. For a run that finished, it equals the last record."""
        if getattr(self, "_latest", None) is None or self._latest[0] is not self.params:
            from .probe import probe  # probe builds on this module: imported late
            self._latest = (self.params, probe(self.config, params=self.params))
        return self._latest[1]


@dataclass
class Progress:
    cell: str
    step: int  # updates done
    steps: int  # updates planned
    elapsed: float
    run: Run  # a snapshot with everything recorded so far
    recorded: bool  # True when this call follows a new record


def flag_nonfinite(rec: dict, cut: np.ndarray | None = None) -> dict[str, dict]:
    """Which recorded quantities hold 0 (underflow), inf or nan, and where computation first met them.

    For the backward profiles "first" is the largest t (BPTT reaches late steps first), for the forward state h the
    smallest t; `count` says how many steps are affected. grad_whh_contrib_norm[0] is 0 by construction (h_{-1} = 0)
    and is not flagged; nor is the LSTM's split (C_SPLIT), whose zeros are by construction too; nor are the zeros at
    the steps in `cut` ((T,) bool, bptt.cut_off), where truncated BPTT stopped the gradient by design.
    """
    flags: dict[str, dict] = {}
    if not np.isfinite(rec["loss"]):
        flags["loss"] = {"kind": "nan" if np.isnan(rec["loss"]) else "inf", "step": None, "count": 1}
    for name in PROFILES:
        v = rec.get(name)
        if v is None:
            continue
        offset = 1 if name == "grad_whh_contrib_norm" else 0
        zero = v == 0
        if cut is not None:
            zero = zero & ~cut
        v, zero = v[offset:], zero[offset:]
        for kind, bad in (("nan", np.isnan(v)), ("inf", np.isinf(v)), ("zero", zero)):
            if bad.any():
                flags[f"{name}:{kind}"] = {"kind": kind, "step": int(np.flatnonzero(bad)[-1]) + offset,
                                            "count": int(bad.sum())}
    bad_h = ~np.isfinite(rec["h"]).all(axis=(1, 2))
    if bad_h.any():
        flags["h:nonfinite"] = {"kind": "nan" if np.isnan(rec["h"]).any() else "inf",
                                "step": int(np.flatnonzero(bad_h)[0]), "count": int(bad_h.sum())}
    return flags


class _Refused(ValueError):
    """A refusal worded by read_npz itself (others' ValueErrors are reworded there, naming the file)."""


READ_BUDGET = 2 * 2**30  # bytes of arrays one bundle may declare (the engine's own probes stay under 2 GB)


def read_npz(path: str | os.PathLike, budget: int | None = None, what: str | None = None,
             noun: str = ".npz") -> dict[str, np.ndarray]:
    """The arrays of a .npz, schema first: every member's name, dtype and declared shape are read from its header
    and checked (no pickles, no non-arrays, declared sizes that the member really holds, a total within `budget`)
    before anything is inflated, so a small file that unpacks to gigabytes is refused in one line.
    `what` names the file in messages (default: its path)."""
    path = os.fspath(path)
    what = what or path
    budget = READ_BUDGET if budget is None else budget
    if not os.path.exists(path):
        raise _Refused(f"{what}: no such file")
    if not zipfile.is_zipfile(path):
        raise _Refused(f"{what}: not a {noun}: the file is not a zip archive")
    try:
        with zipfile.ZipFile(path) as z:
            members = []
            total = 0
            for info in z.infolist():
                if not info.filename.endswith(".npy"):
                    raise _Refused(f"{what}: member {info.filename!r} is not an array (.npy)")
                with z.open(info) as fh:
                    version = np.lib.format.read_magic(fh)
                    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                                   else np.lib.format.read_array_header_2_0)
                    shape, _, dtype = read_header(fh, max_header_size=10_000)
                    header = fh.tell()
                if dtype.hasobject:
                    raise _Refused(f"{what}: refused: member {info.filename!r} holds pickled objects, which "
                                     "gradlab never loads")
                declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
                if info.file_size < header + declared:
                    raise _Refused(f"{what}: member {info.filename!r} declares {_size(declared)} but holds "
                                     f"{_size(max(info.file_size - header, 0))}: truncated or forged")
                total += declared
                if total > budget:
                    raise _Refused(f"{what}: its arrays declare more than {_size(budget)} (the reading budget): "
                                     "refused before inflating them")
                members.append(info)
            return {m.filename[:-4]: _read_member(z, m) for m in members}
    except _Refused:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise _Refused(f"{what}: not a readable {noun}: {e}") from None
    except Exception as e:  # a corrupt member can surface as almost anything inside numpy or zipfile
        raise _Refused(f"{what}: unreadable {noun}: {type(e).__name__}: {e}") from None


def _read_member(z: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    with z.open(info) as fh:
        return np.lib.format.read_array(fh, allow_pickle=False)


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.1f} MB" if n >= 2**20 else f"{int(n)} bytes"


def load(path: str | os.PathLike) -> "Probe | Run":
    """Read a probe bundle or a run bundle (by its `format`); refuse anything else clearly, in one line."""
    path = os.fspath(path)
    d = read_npz(path, noun="gradlab bundle (.npz)")
    fmt = _text(d, "format", path)
    if fmt == RUN_FORMAT:
        return _load_run(d, path)
    if fmt != FORMAT:
        raise ValueError(f"{path}: format {fmt!r} is not supported: this gradlab reads {FORMAT!r} and {RUN_FORMAT!r}")
    cell, loss_kind = _text(d, "cell", path), _text(d, "loss_kind", path)
    if cell not in CELLS or loss_kind not in ("mse", "xent"):
        raise ValueError(f"{path}: cell {cell!r} / loss_kind {loss_kind!r} not one of {'|'.join(CELLS)} / mse|xent")
    nonlinearity = _text(d, "nonlinearity", path) if "nonlinearity" in d else "tanh"
    if nonlinearity not in ("tanh", "relu", "linear"):
        raise ValueError(f"{path}: nonlinearity {nonlinearity!r} is not one of tanh, relu, linear")
    config_text = _text(d, "config", path) if "config" in d else ""
    try:
        cfg = Config.from_json(config_text)
    except ValueError:
        cfg = None  # e.g. a reference bundle computed elsewhere: still fully usable, the text is kept as a note
    try:
        truncate = cfg.truncate if cfg else config_truncate(config_text)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    for k in ("x", "y", "y_mask", "loss", "grad_h_norm", "grad_whh_contrib_norm", "h") + PARAM_NAMES:
        if k not in d:
            raise ValueError(f"{path}: missing array {k!r}")
    params = {k: _numeric(d, k, path, kinds="f") for k in PARAM_NAMES}
    x, y, y_mask = _numeric(d, "x", path), _numeric(d, "y", path), _numeric(d, "y_mask", path)
    check_shapes(params, x.shape, cell, loss_kind, y.shape, y_mask.shape, path)
    if loss_kind == "xent" and (y.dtype.kind not in "iu" or y.min(initial=0) < 0
                                or y.max(initial=0) >= params["head.weight"].shape[0]):
        raise ValueError(f"{path}: y must hold integer classes in [0, {params['head.weight'].shape[0]})")
    T, B, _ = x.shape
    G, H = params["weight_hh_l0"].shape
    want = {"loss": (), "grad_h_norm": (T,), "grad_whh_contrib_norm": (T,), "h": (T, B, H), "grad_c_norm": (T,),
            "c": (T, B, H), "gates": (T, B, G), "grad_x_norm": (T,), "grad_c_direct_norm": (T,),
            "grad_c_rest_norm": (T,)}
    rec = {k: _numeric(d, k, path, want[k]) for k in want if k in d}
    if cell == "lstm" and not {"grad_c_norm", "c", "gates"} <= set(rec):
        raise ValueError(f"{path}: an LSTM bundle needs grad_c_norm, c and gates")
    if cell == "gru" and "gates" not in rec:
        raise ValueError(f"{path}: a GRU bundle needs gates")
    grads = {k: _numeric(d, f"grad.{k}", path, params[k].shape) for k in PARAM_NAMES if f"grad.{k}" in d}
    try:
        nonfinite = json.loads(_text(d, "nonfinite", path)) if "nonfinite" in d else {}
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: entry 'nonfinite' is not valid JSON: {type(e).__name__}") from None
    return Probe(cell=cell, nonlinearity=nonlinearity, loss_kind=loss_kind, x=x, y=y, y_mask=y_mask, params=params,
                 grads=grads, loss=float(rec.pop("loss")), config=cfg, note="" if cfg else config_text,
                 nonfinite=nonfinite if isinstance(nonfinite, dict) else {}, truncate=truncate, **rec)


def _load_run(d: dict, path: str) -> Run:
    try:
        cfg = Config.from_json(_text(d, "config", path))
    except ValueError as e:
        raise ValueError(f"{path}: a run bundle's {e}") from None
    # classification / LSTM only; and what older run bundles lack
    optional = ("accuracy", "grad_c_norm", "gate_means", "gates_last") + LATER_RUN_ARRAYS
    missing = [k for k in RUN_ARRAYS + PARAM_NAMES if k not in d and k not in optional]
    if missing:
        raise ValueError(f"{path}: run bundle is missing {missing}")
    arrays = {k: _numeric(d, k, path, kinds="fiubc" if k == "eigvals" else "fiub") for k in RUN_ARRAYS if k in d}
    S, R = len(arrays["loss"]), len(arrays["record_steps"])
    for k, v in arrays.items():
        want = S if k in ("loss", "accuracy", "grad_norm_pre", "grad_norm_post", "clipped") else R
        if k != "gates_last" and (v.ndim == 0 or v.shape[0] != want):
            raise ValueError(f"{path}: {k} has shape {v.shape}, expected a first axis of {want}")
    for k in LATER_RUN_ARRAYS:
        if k in arrays and arrays[k].shape != arrays["grad_h_norm"].shape:
            raise ValueError(f"{path}: {k} has shape {arrays[k].shape}, expected {arrays['grad_h_norm'].shape} "
                             "(records, steps) like grad_h_norm")
    try:
        stopped = json.loads(_text(d, "stopped", path))
    except (json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: entry 'stopped' is not valid JSON: {type(e).__name__}") from None
    return Run(config=cfg, loss_kind=_text(d, "loss_kind", path), stopped=stopped,
               param_norms={k: _numeric(d, f"param_norm.{k}", path) for k in PARAM_NAMES if f"param_norm.{k}" in d},
               params={k: _numeric(d, k, path, kinds="f") for k in PARAM_NAMES},
               **{k: arrays.get(k) for k in RUN_ARRAYS})


def check_shapes(params: dict, x_shape: tuple, cell: str, loss_kind: str, y_shape: tuple, mask_shape: tuple,
                 where: str = "params") -> None:
    """Every array's shape must agree with every other's; the message names the first that does not."""
    if len(x_shape) != 3:
        raise ValueError(f"{where}: x must be (T, B, D), got shape {x_shape}")
    T, B, D = x_shape
    if min(x_shape) < 1:
        raise ValueError(f"{where}: x has shape {x_shape}: T, B and D must each be at least 1")
    W_hh = params["weight_hh_l0"]
    if W_hh.ndim != 2:
        raise ValueError(f"{where}: weight_hh_l0 must be 2-D, got shape {W_hh.shape}")
    G, H = W_hh.shape
    if H < 1:
        raise ValueError(f"{where}: weight_hh_l0 has shape {W_hh.shape}: the hidden size must be at least 1")
    if G != GATES[cell] * H:
        raise ValueError(f"{where}: weight_hh_l0 has shape {W_hh.shape}, expected ({GATES[cell] * H}, {H}) "
                         f"for a {cell.upper()} with hidden size {H}")
    O = params["head.weight"].shape[0] if params["head.weight"].ndim == 2 else -1
    want = {"weight_ih_l0": (G, D), "bias_ih_l0": (G,), "bias_hh_l0": (G,), "head.weight": (O, H), "head.bias": (O,)}
    for k, shape in want.items():
        if params[k].shape != shape:
            raise ValueError(f"{where}: {k} has shape {params[k].shape}, expected {shape}")
    want_y = (T, B, O) if loss_kind == "mse" else (T, B)
    if tuple(y_shape) != want_y or tuple(mask_shape) != (T, B):
        raise ValueError(f"{where}: y {tuple(y_shape)} / y_mask {tuple(mask_shape)} do not match x {x_shape}: "
                         f"expected {want_y} / {(T, B)}")


def _text(d: dict, k: str, path: str) -> str:
    if k not in d:
        raise ValueError(f"{path}: missing entry {k!r}: not a gradlab bundle")
    a = d[k]
    if a.dtype.kind != "U" or a.ndim != 0:
        raise ValueError(f"{path}: entry {k!r} should be a text scalar, got dtype {a.dtype} shape {a.shape}")
    return str(a)


def _numeric(d: dict, k: str, path: str, shape: tuple | None = None, kinds: str = "fiub") -> np.ndarray:
    a = d[k]
    if a.dtype.kind not in kinds:
        what = {"c": "complex", "i": "integer", "u": "integer", "b": "boolean"}.get(a.dtype.kind, "non-numeric")
        expected = "floating-point numbers" if kinds == "f" else "real numbers"
        raise ValueError(f"{path}: array {k!r} has {what} dtype {a.dtype}, expected {expected}")
    if shape is not None and a.shape != tuple(shape):
        raise ValueError(f"{path}: array {k!r} has shape {a.shape}, expected {tuple(shape)}")
    return a
