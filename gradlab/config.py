"""The one vocabulary of gradlab: a frozen, validated Config.

The same field names are used by the Python API, the CLI flags (kebab case), the dashboard's URL query parameters
and the `config` entry of every saved bundle. Every field is validated in `__post_init__`; an invalid value raises
`ValueError` naming the field, the value and what is allowed.

Each field with a `UI` is one of the dashboard's controls: its label, widget and range live here, beside the field's
own range, and `parse` reads a URL value for it through the same checks as the API.

This module deliberately does no numerics: it only describes a run.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from . import tasks

CELLS = ("rnn", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu", "linear")
TASKS = tuple(tasks.TASKS)  # the registry, tasks.py, is the one list of tasks
INITS = ("gaussian", "orthogonal", "identity", "xavier", "pytorch", "chrono")
DTYPES = ("float64", "float32")
OPTIMIZERS = ("adam", "sgd")
CLIP_MODES = ("norm", "value", "none")


@dataclass(frozen=True)
class UI:
    """How the dashboard shows a field (its URL key is the field's name). A field without one has no control."""

    label: str
    widget: str  # "select": the field's choices | "slider", "number": domain (lo, hi, step) | "options": the values
    domain: tuple = ()  # typed as the field (ints for an int field): Streamlit's widgets take the types they are given
    advanced: bool = False  # drawn in the sidebar's Advanced expander
    help: str = ""


def _choice(options: tuple[str, ...], help: str, ui: UI | None = None) -> dict:
    # a select offers exactly the field's choices
    return {"choices": options, "help": help, **({"ui": dataclasses.replace(ui, domain=options)} if ui else {})}


def _range(kind: type, lo: float, hi: float, help: str, lo_open: bool = False, ui: UI | None = None) -> dict:
    return {"kind": kind, "lo": lo, "hi": hi, "lo_open": lo_open, "help": help, **({"ui": ui} if ui else {})}


@dataclass(frozen=True)
class Config:
    """Everything that determines a probe or a training run. Hashable, so it is also the natural cache key.

    The fields with a UI are the dashboard's controls, in this order (the sidebar's, and the order of the link)."""

    cell: str = field(default="rnn", metadata=_choice(CELLS, "recurrent cell"))
    task: str = field(default="adding", metadata=_choice(TASKS, "synthetic long-dependency task", UI(
        "Task", "select", help="Synthetic long-dependency task (defined in docs/tasks.md)")))
    # T=100 is long enough that a tanh RNN's gradient from step 1 is negligible, short enough to be instant.
    seq_len: int = field(default=100, metadata=_range(int, 1, 5000, "sequence length T (the dependency lag)", ui=UI(
        "Sequence length T", "slider", (5, 1000, 5), help="Steps between the information and the loss")))
    # PyTorch's own default, so what students see is what their nn.RNN/nn.LSTM does.
    init: str = field(default="pytorch", metadata=_choice(INITS, "recurrent weight initialisation", UI(
        "Recurrent init", "select", help="How W_hh is drawn (exact definitions in gradlab/init.py)")))
    init_scale: float = field(default=1.0, metadata=_range(float, 0.0, 10.0, "gain of the recurrent matrix W_hh", ui=UI(
        "Init scale (gain of W_hh)", "slider", (0.0, 10.0, 0.05))))
    # 1.0 after Jozefowicz et al. 2015; 0 is PyTorch's default and vanishes along the cell path. The GRU's analogue is
    # its update gate z, the one that keeps the old state (h' = z h + (1 - z) n): forget_bias sets b_z (init.py).
    forget_bias: float = field(default=1.0, metadata=_range(
        float, -10.0, 10.0, "keep-the-state gate bias: the LSTM's forget gate b_f, the GRU's update gate b_z", ui=UI(
            "Forget-gate bias b_f (the GRU's update gate b_z)", "slider", (-2.0, 6.0, 0.5),
            help="The LSTM's forget gate and the GRU's update gate z both decide how much of the state each step "
                 "keeps (z is the share of h_(t-1) kept, as in PyTorch and Cho et al. 2014; some texts swap z and "
                 "1 - z). The chrono init draws these biases itself and ignores this slider.")))
    # tanh is the textbook vanilla RNN whose gradient vanishes; relu/linear are there to show explosion and theory.
    nonlinearity: str = field(default="tanh", metadata=_choice(
        NONLINEARITIES, "RNN nonlinearity (ignored by the LSTM and the GRU)", UI("RNN nonlinearity", "select")))
    # 0 = full BPTT. K > 0 detaches the state entering step t (h, and c for the LSTM) when t > 0 and t % K == 0, as
    # `h = h.detach()` between chunks of K steps in a PyTorch loop: the forward pass is unchanged, the gradient stops
    # at the cuts. Probes record, and training uses, the truncated gradients, with one optimiser step per sequence
    # (the chunks' gradients summed), not one per chunk. K >= seq_len cuts nothing.
    truncate: int = field(default=0, metadata=_range(
        int, 0, 1_000_000, "truncated BPTT: cut the gradient every K steps (0 = full BPTT)", ui=UI(
            "Truncated BPTT: cut every k steps (0 = full)", "options", (0, 2, 5, 10, 20, 25, 50, 100, 200, 500),
            help="The state entering every k-th step is detached, as h.detach() between chunks, with one optimiser "
                 "step per sequence (the chunks' gradients summed). The loss at the last step reaches back to the "
                 "start of its chunk: 1 to k steps. 0, or k at least T, is full backpropagation through time.")))
    hidden: int = field(default=64, metadata=_range(int, 1, 1024, "hidden units H", ui=UI(
        "Hidden units H", "options", (4, 6, 8, 16, 32, 64, 128), advanced=True)))
    batch: int = field(default=32, metadata=_range(int, 1, 4096, "sequences per batch B", ui=UI(
        "Batch size B", "options", (8, 16, 32, 64, 128, 256), advanced=True)))
    seed: int = field(default=0, metadata=_range(int, 0, 2**32 - 1, "seed of numpy's default_rng (data and weights)",
                                                 ui=UI("Seed", "number", (0, 9999, 1), advanced=True)))
    # float64 by default: float32 loses vanishing gradients to underflow after ~150 steps.
    dtype: str = field(default="float64", metadata=_choice(DTYPES, "floating-point precision"))
    steps: int = field(default=500, metadata=_range(int, 0, 1_000_000, "training steps", ui=UI(
        "Training steps", "slider", (50, 5000, 50), advanced=True)))
    optimizer: str = field(default="adam", metadata=_choice(OPTIMIZERS, "optimiser", UI(
        "Optimiser", "select", advanced=True)))
    momentum: float = field(default=0.9, metadata=_range(float, 0.0, 0.999, "SGD momentum (PyTorch's form)"))
    lr: float = field(default=1e-3, metadata=_range(float, 0.0, 10.0, "learning rate", lo_open=True, ui=UI(
        "Learning rate", "options", (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 2e-2, 3e-2, 1e-1), advanced=True)))
    clip_mode: str = field(default="norm", metadata=_choice(
        CLIP_MODES, "gradient clipping: by global norm, by value, or none", UI(
            "Gradient clipping", "select", advanced=True)))
    clip: float = field(default=1.0, metadata=_range(float, 0.0, 1e6, "clipping threshold", lo_open=True, ui=UI(
        "Clipping threshold", "options", (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0), advanced=True)))
    record_every: int = field(default=10, metadata=_range(int, 1, 1_000_000, "record the gradient profile every N steps"))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))
            # Normalise numpy scalars and ints given for floats, so equal configs hash equal.
            if f.metadata.get("kind") is float:
                object.__setattr__(self, f.name, float(getattr(self, f.name)))
            elif f.metadata.get("kind") is int:
                object.__setattr__(self, f.name, int(getattr(self, f.name)))
        lo = tasks.TASKS[self.task].min_seq_len
        if self.seq_len < lo:
            raise ValueError(f"seq_len = {self.seq_len} is too short for task {self.task!r}: expected seq_len >= {lo}")

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Config":
        """Build from a mapping; strings (from a URL, a CLI or JSON) are converted to the field's type."""
        if not isinstance(d, dict):
            raise ValueError(f"config must be a mapping of field names to values, got {type(d).__name__}")
        unknown = sorted(set(d) - set(_FIELDS))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}: allowed fields are {sorted(_FIELDS)}")
        return cls(**{k: _coerce(_FIELDS[k], v) for k, v in d.items()})

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError, RecursionError) as e:
            raise ValueError(f"config is not valid JSON: {type(e).__name__}: {str(e)[:80]}") from None
        return cls.from_dict(d)


_FIELDS = {f.name: f for f in dataclasses.fields(Config)}  # by name, for from_dict and parse


def describe(f: dataclasses.Field) -> str:
    """The allowed values of a field, in words (used in error messages and CLI help)."""
    m = f.metadata
    if "choices" in m:
        return "one of " + ", ".join(m["choices"])
    return _interval(m["kind"], m["lo"], m["hi"], m["lo_open"])


def _interval(kind: type, lo: float, hi: float, lo_open: bool = False) -> str:
    left = "(" if lo_open else "["
    lo, hi = (f"{lo:g}", f"{hi:g}") if kind is float else (str(lo), str(hi))
    return f"{'an integer' if kind is int else 'a number'} in {left}{lo}, {hi}]"


def parse(name: str, raw: str, ui: bool = True) -> Any:
    """A field's value from one string (a URL query value, a CLI flag), checked by Config's own rules; with `ui`, also
    one the field's control can hold: in a slider's range, or close to an option (isclose; the option is returned,
    so "1e-2" and "0.01" are the same learning rate). Raises ValueError in one line naming field, value and domain."""
    f = _FIELDS.get(name)
    if f is None:
        raise ValueError(f"unknown config field {name!r}: allowed fields are {sorted(_FIELDS)}")
    v = _coerce(f, raw)
    _check(f, v)
    hint = f.metadata.get("ui")
    if not ui or hint is None or hint.widget == "select":  # a select offers every choice _check allows
        return v
    if hint.widget == "options":
        match = next((o for o in hint.domain if math.isclose(v, o)), None)
        if match is None:
            offered = ", ".join(map(str, hint.domain))
            raise ValueError(f"{name} = {raw!r} is not offered here: expected one of {offered}")
        return match
    lo, hi, _ = hint.domain
    if not lo <= v <= hi:
        span = _interval(f.metadata["kind"], lo, hi)
        raise ValueError(f"{name} = {raw!r} is outside this control's range: expected {span}")
    return v


def _check(f: dataclasses.Field, v: Any) -> None:
    m = f.metadata
    bad = ValueError(f"{f.name} = {v!r} is invalid: expected {describe(f)}")
    if "choices" in m:
        if not isinstance(v, str) or v not in m["choices"]:
            raise bad
        return
    if isinstance(v, bool) or not hasattr(v, "__index__" if m["kind"] is int else "__float__"):
        raise bad
    try:
        x = float(v)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    if not math.isfinite(x) or x > m["hi"] or x < m["lo"] or (m["lo_open"] and x == m["lo"]):
        raise bad


def _coerce(f: dataclasses.Field, v: Any) -> Any:
    if not isinstance(v, str):
        return v
    kind = f.metadata.get("kind")
    try:
        if kind is int:
            x = float(v.strip())  # accept "200" and "2e2", but not "2.5" (checked below)
            if not math.isfinite(x) or x != int(x):
                raise ValueError
            return int(x)
        if kind is float:
            return float(v.strip())
    except (ValueError, OverflowError):
        raise ValueError(f"{f.name} = {v!r} is invalid: expected {describe(f)}") from None
    return v.strip()
