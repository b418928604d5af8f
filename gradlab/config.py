"""The one vocabulary of gradlab: a frozen, validated Config.

The same field names are used by the Python API, the CLI flags (kebab case), the dashboard's URL query parameters
and the `config` entry of every saved bundle. Every field is validated in `__post_init__`; an invalid value raises
`ValueError` naming the field, the value and what is allowed.

This module deliberately does no numerics: it only describes a run.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

CELLS = ("rnn", "lstm", "gru")
NONLINEARITIES = ("tanh", "relu", "linear")
TASKS = ("adding", "adding_hs97", "copy", "temporal_order", "latch")
INITS = ("gaussian", "orthogonal", "identity", "xavier", "pytorch", "chrono")
DTYPES = ("float64", "float32")
OPTIMIZERS = ("adam", "sgd")
CLIP_MODES = ("norm", "value", "none")

# Smallest seq_len each task can be laid out in (markers, delimiters, the two symbol windows).
MIN_SEQ_LEN = {"adding": 2, "adding_hs97": 20, "copy": 1, "temporal_order": 10, "latch": 1}


def _choice(options: tuple[str, ...], help: str) -> dict:
    return {"choices": options, "help": help}


def _range(kind: type, lo: float, hi: float, help: str, lo_open: bool = False) -> dict:
    return {"kind": kind, "lo": lo, "hi": hi, "lo_open": lo_open, "help": help}


@dataclass(frozen=True)
class Config:
    """Everything that determines a probe or a training run. Hashable, so it is also the natural cache key."""

    cell: str = field(default="rnn", metadata=_choice(CELLS, "recurrent cell"))
    # tanh is the textbook vanilla RNN whose gradient vanishes; relu/linear are there to show explosion and theory.
    nonlinearity: str = field(default="tanh", metadata=_choice(NONLINEARITIES,
                                                               "RNN nonlinearity (ignored by the LSTM and the GRU)"))
    task: str = field(default="adding", metadata=_choice(TASKS, "synthetic long-dependency task"))
    # T=100 is long enough that a tanh RNN's gradient from step 1 is negligible, short enough to be instant.
    seq_len: int = field(default=100, metadata=_range(int, 1, 5000, "sequence length T (the dependency lag)"))
    hidden: int = field(default=64, metadata=_range(int, 1, 1024, "hidden units H"))
    batch: int = field(default=32, metadata=_range(int, 1, 4096, "sequences per batch B"))
    seed: int = field(default=0, metadata=_range(int, 0, 2**32 - 1, "seed of numpy's default_rng (data and weights)"))
    # PyTorch's own default, so what students see is what their nn.RNN/nn.LSTM does.
    init: str = field(default="pytorch", metadata=_choice(INITS, "recurrent weight initialisation"))
    init_scale: float = field(default=1.0, metadata=_range(float, 0.0, 10.0, "gain of the recurrent matrix W_hh"))
    # 1.0 after Jozefowicz et al. 2015; 0 is PyTorch's default and vanishes along the cell path. The GRU's analogue is
    # its update gate z, the one that keeps the old state (h' = z h + (1 - z) n): forget_bias sets b_z (init.py).
    forget_bias: float = field(default=1.0, metadata=_range(
        float, -10.0, 10.0, "keep-the-state gate bias: the LSTM's forget gate b_f, the GRU's update gate b_z"))
    # float64 by default: float32 loses vanishing gradients to underflow after ~150 steps.
    dtype: str = field(default="float64", metadata=_choice(DTYPES, "floating-point precision"))
    steps: int = field(default=500, metadata=_range(int, 0, 1_000_000, "training steps"))
    optimizer: str = field(default="adam", metadata=_choice(OPTIMIZERS, "optimiser"))
    momentum: float = field(default=0.9, metadata=_range(float, 0.0, 0.999, "SGD momentum (PyTorch's form)"))
    lr: float = field(default=1e-3, metadata=_range(float, 0.0, 10.0, "learning rate", lo_open=True))
    clip: float = field(default=1.0, metadata=_range(float, 0.0, 1e6, "clipping threshold", lo_open=True))
    clip_mode: str = field(default="norm", metadata=_choice(CLIP_MODES, "gradient clipping: by global norm, by value, or none"))
    record_every: int = field(default=10, metadata=_range(int, 1, 1_000_000, "record the gradient profile every N steps"))
    # 0 = full BPTT. K > 0 detaches the state entering step t (h, and c for the LSTM) when t > 0 and t % K == 0, as
    # `h = h.detach()` between chunks of K steps in a PyTorch loop: the forward pass is unchanged, the gradient stops
    # at the cuts. Probes record, and training uses, the truncated gradients, with one optimiser step per sequence
    # (the chunks' gradients summed), not one per chunk. K >= seq_len cuts nothing.
    truncate: int = field(default=0, metadata=_range(int, 0, 1_000_000,
                                                     "truncated BPTT: cut the gradient every K steps (0 = full BPTT)"))

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check(f, getattr(self, f.name))
            # Normalise numpy scalars and ints given for floats, so equal configs hash equal.
            if f.metadata.get("kind") is float:
                object.__setattr__(self, f.name, float(getattr(self, f.name)))
            elif f.metadata.get("kind") is int:
                object.__setattr__(self, f.name, int(getattr(self, f.name)))
        lo = MIN_SEQ_LEN[self.task]
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
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}: allowed fields are {sorted(names)}")
        return cls(**{k: _coerce(names[k], v) for k, v in d.items()})

    @classmethod
    def from_json(cls, text: str) -> "Config":
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError, RecursionError) as e:
            raise ValueError(f"config is not valid JSON: {type(e).__name__}: {str(e)[:80]}") from None
        return cls.from_dict(d)


def describe(f: dataclasses.Field) -> str:
    """The allowed values of a field, in words (used in error messages and CLI help)."""
    m = f.metadata
    if "choices" in m:
        return "one of " + ", ".join(m["choices"])
    left = "(" if m["lo_open"] else "["
    lo, hi = (f"{m['lo']:g}", f"{m['hi']:g}") if m["kind"] is float else (str(m["lo"]), str(m["hi"]))
    noun = "an integer" if m["kind"] is int else "a number"
    return f"{noun} in {left}{lo}, {hi}]"


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
