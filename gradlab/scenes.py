"""Curated scenes: named Configs that each make one point, with the words to say over them and the claims behind
the words.

The dashboard's tour and the export CLI's presets both read this one table. A scene's Config is shown for both
cells (the RNN and the LSTM of it side by side); `train` says the point needs training.

Nothing a student reads here is typed in: a narrative is a template whose numbers ({rnn_ratio:.0e}, ...) are
filled from `facts(records)`, the measurement of the view on screen. Each scene's claims are predicates over the
same facts; tests/test_scenes.py checks them over several seeds (five or more for probes, most of five for trained
scenes), and the dashboard marks each claim as holding or not on the view being shown. A `contrast` claim is about
a view one change away (e.g. init = gaussian): it is checked by the tests and offered to the lecturer as a thing to
try, without a number.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import analysis, cells
from .config import Config
from .tasks import baselines, information

SATURATED = 0.99  # |h| above this counts as a saturated tanh unit (slope 1 - h^2 < 0.02)
LAST_STEPS = 100  # a trained run's final loss: the mean over its last LAST_STEPS updates
TOLERANCE = 0.05  # "the prediction tracks the measurement": top Lyapunov factor within this of the measured rate


@dataclass(frozen=True)
class Claim:
    text: str  # what the scene asserts, in words (no numbers: the narrative carries those)
    holds: Callable[[dict], bool]  # over facts(records, runs)
    contrast: dict = field(default_factory=dict)  # the claim is about the view with these Config changes


@dataclass(frozen=True)
class Scene:
    name: str
    title: str
    narrative: str  # a template over facts(); see `say`
    config: Config
    claims: tuple[Claim, ...] = ()
    train: bool = False
    try_next: str = ""  # what to change next, in words
    panel: str = "grad_vs_time"  # the panel that makes the scene's point: shown large when presenting, in the handout
    cells: tuple[str, ...] = ("rnn", "lstm")  # the cells its story is about (facts() of these cells fill it)


VERDICTS = {"vanishing": "vanishes", "exploding": "explodes", "preserved": "stays within a factor of a thousand",
            "underflow": "vanishes to exactly zero", "overflow": "overflows", "zero": "gets no gradient",
            "cut": "is cut by truncated BPTT"}


def _orthogonal_top(cfg: Config) -> float:
    """The top Lyapunov factor of the RNN of cfg with an orthogonal matrix of the same scale (the orthogonal scene's
    contrast: "a Gaussian matrix sends its top direction about as far"); computed only when that claim is checked."""
    from .probe import probe  # the scene's own comparison view
    q = probe(cfg.replace(cell="rnn", init="orthogonal"))
    return float(analysis.summary(q)["lyapunov"][0])


def _ratio(g: np.ndarray, end: int) -> float:
    with np.errstate(all="ignore"):
        return float(g[0] / g[end]) if g[end] else float("nan")


def _words(r: float, dtype, cut: bool = False) -> str:
    """A ratio as a narrative says it: '3e-25', or what an exact zero means (a cut is not an underflow)."""
    if r == 0:
        return ("exactly zero (cut by truncated BPTT)" if cut else
                f"exactly zero (it underflowed below the smallest positive {np.dtype(dtype).name} number)")
    return f"{r:.0e}"


def facts(records: dict, runs: dict | None = None) -> dict:
    """Every number a narrative or a claim may use, measured on the records shown (Probes or Runs per cell):
    per cell: {c}_ratio (||dL/dh_1|| / ||dL/dh_T||), {c}_rate (measured mean factor per step, on
    ||dL/dc_t|| for the LSTM), {c}_lyap and
    {c}_median (top and median Lyapunov factor), {c}_survive (directions keeping 1e-3 over T steps), {c}_n (state
    size), {c}_loss; RNN: rnn_rho, rnn_sigma_max, rnn_saturated (fraction of |h| > SATURATED), rnn_flip (fraction of
    values changing sign each step, second half), rnn_pattern (where the state settles, in words), rnn_max_h; LSTM:
    lstm_c_ratio (the same ratio on ||dL/dc_t||), lstm_direct_share (direct path / total at the first step),
    lstm_bf, lstm_f (mean forget gate); T, H, lag_max (adding tasks: the longest lag from a marked value to the
    loss in the batch), and the constants saturated_at, tolerance; after training {c}_final (mean loss over the last
    LAST_STEPS updates), baseline (no memory) and baseline_low (the task's lowest reference line)."""
    f: dict = {}
    for c, rec in records.items():
        if rec is not None:
            f.update(_cell_facts(c, rec.latest))
    for c, r in (runs or {}).items():
        f[f"{c}_final"] = float(np.mean(r.loss[-LAST_STEPS:])) if r.steps_done else float("nan")
        b = baselines(r.config.task, r.config.seq_len)
        f["baseline"], f["baseline_low"] = b[0].loss, b[-1].loss
        if r.config.truncate and "time_chunk_ms" not in f:  # what one update would cost if it were per chunk
            f["time_cut_ms"], f["time_full_ms"], f["time_chunk_ms"] = _pass_times(r.config)
    return f


def _cell_facts(c: str, p) -> dict:
    """facts() of one cell's record p (a Probe), measured once and kept on the record, as analysis.summary is: the
    dashboard asks for them on every rerun while a scene is open (at T = 1000, ~0.1 s each time). Never modified:
    facts() copies them."""
    cached = getattr(p, "_facts", None)
    if cached is not None and cached[0] == c:
        return cached[1]
    f: dict = {}
    sm = analysis.summary(p)
    g = p.grad_h_norm_last if sm.get("last_only") else p.grad_h_norm
    end = sm["end"]
    f.update({f"{c}_ratio": _ratio(g, end), f"{c}_rate": sm["mean_rate"], f"{c}_loss": float(p.loss),
              f"{c}_median": float(np.median(sm["lyapunov"])) if len(sm["lyapunov"]) else float("nan"),
              f"{c}_ratio_words": _words(_ratio(g, end), p.params["weight_hh_l0"].dtype,
                                         cut=sm["cut_at"] is not None),
              f"{c}_lyap": float(sm["lyapunov"][0]) if len(sm["lyapunov"]) else float("nan"),
              f"{c}_survive": analysis.surviving(sm["lyapunov"], p.seq_len), f"{c}_n": len(sm["lyapunov"])})
    f["T"], f["H"], f["saturated_at"] = p.seq_len, p.params["weight_hh_l0"].shape[1], SATURATED
    f["tolerance"] = TOLERANCE
    if c == "rnn":
        sp = analysis.spectrum(p.params["weight_hh_l0"])
        h = np.asarray(p.h, dtype=np.float64)
        half = h[len(h) // 2:]
        with np.errstate(all="ignore"):
            flip = np.mean(np.sign(half[1:]) == -np.sign(half[:-1])) if len(half) > 1 else float("nan")
        f.update(rnn_rho=float(sp["rho"][0]), rnn_sigma_max=float(sp["sigma_max"][0]), rnn_pattern=pattern(h),
                 rnn_slope=float(np.mean(cells.rnn_factors(h, p.nonlinearity))),
                 rnn_config=p.config,
                 rnn_saturated=float(np.mean(np.abs(h) > SATURATED)), rnn_flip=float(flip),
                 rnn_max_h=float(np.max(np.abs(h))))
    elif c == "gru":
        H = p.gates.shape[-1] // 3
        f["gru_z"] = float(np.mean(p.gates[:, :, H:2 * H]))  # the update gate: how much of h each step keeps
    else:
        gc = p.grad_c_norm_last if sm.get("last_only") else p.grad_c_norm
        f["lstm_c_ratio"] = _ratio(gc, end)
        f["lstm_verdict"] = VERDICTS.get(sm["diagnosis"][0], sm["diagnosis"][0])
        direct = getattr(p, "grad_c_direct_norm", None)
        if direct is not None and not sm.get("last_only"):
            with np.errstate(all="ignore"):
                f["lstm_direct_share"] = float(direct[0] / p.grad_c_norm[0]) if p.grad_c_norm[0] else float("nan")
        if p.config is not None:
            f["lstm_bf"] = p.config.forget_bias
        H = p.gates.shape[-1] // 4
        f["lstm_f"] = float(np.mean(p.gates[:, :, H:2 * H]))
    f[f"{c}_cut_at"] = sm["cut_at"]  # truncated BPTT: the first step the last loss reaches (None: nothing cut)
    f[f"{c}_cut_zero"] = bool(sm["cut_at"] is not None and np.all(p.grad_h_norm[:sm["cut_at"]] == 0))
    if p.config is not None:
        f["truncate"] = p.config.truncate
    if p.config is not None and p.config.task in ("adding", "adding_hs97"):
        f["lag_max"] = int(end - np.flatnonzero(information(p.config.task, p.x).any(axis=1))[0])
    object.__setattr__(p, "_facts", (c, f))
    return f


@functools.lru_cache(maxsize=16)  # measured once per setting: facts() runs on every dashboard rerun
def _pass_times(cfg: Config, repeats: int = 5) -> tuple[float, float, float]:
    """Milliseconds for one forward and backward pass of the LSTM (gradlab.probe) over the whole sequence with the
    cut, over the whole sequence without it, and over one chunk of `truncate` steps; each the fastest of `repeats`
    (the machine's noise only ever adds time)."""
    import time
    from .probe import probe

    def best(c: Config) -> float:
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            probe(c)
            times.append(time.perf_counter() - t)
        return 1e3 * min(times)
    cut = cfg.replace(cell="lstm")
    return best(cut), best(cut.replace(truncate=0)), best(cut.replace(truncate=0, seq_len=cfg.truncate))


def pattern(h: np.ndarray, most: int = 8, close: float = 0.1, share: float = 0.9) -> str:
    """Where the state settles in the second half, as a verb phrase: "settles onto a fixed point", "settles into a
    cycle of period k" (the smallest
    k <= most with ||h_t - h_(t-k)|| < close ||h_t|| for `share` of the steps and sequences) or "does not settle
    into a short cycle"."""
    half = np.asarray(h[len(h) // 2:], dtype=np.float64)
    with np.errstate(all="ignore"):
        size = np.linalg.norm(half, axis=-1)
        for k in range(1, min(most, len(half) - 1) + 1):
            near = np.linalg.norm(half[k:] - half[:-k], axis=-1) < close * size[k:]
            if near.mean() >= share:
                return "settles onto a fixed point" if k == 1 else f"settles into a cycle of period {k}"
    return "does not settle into a short cycle"


def say(scene: Scene, f: dict, text: str | None = None) -> str:
    """The narrative (or another of the scene's texts) with the measured numbers filled in; a number the view lacks
    shows as '?'."""
    text = scene.narrative if text is None else text
    try:
        return text.format(**f)
    except (KeyError, ValueError, IndexError):
        return text.format_map(_Missing(f))


class _Missing(dict):
    def __missing__(self, key):
        return _Unknown()


class _Unknown:
    def __format__(self, spec):
        return "?"


def check(scene: Scene, f: dict) -> list[tuple[Claim, bool]]:
    """Each on-screen claim (no contrast) and whether it holds on these facts."""
    out = []
    for c in scene.claims:
        if c.contrast:
            continue
        try:
            ok = bool(c.holds(f))
        except (KeyError, TypeError, ValueError):
            ok = False
        out.append((c, ok))
    return out


SCENES = [
    Scene("vanishing", "The vanishing gradient",
          "Both cells start from PyTorch's default initialisation, except the LSTM's forget bias, which is "
          "{lstm_bf:g} as Jozefowicz et al. recommend (PyTorch's is zero on average). They read the same {T}-step "
          "adding problem. Going back from the loss, the RNN's gradient is multiplied by about {rnn_rate:.2f} at "
          "every step: at this small initial scale its units work in tanh's near-linear range (mean slope "
          "{rnn_slope:.2f}), so it behaves almost like a linear RNN and the rate sits just below its matrix's "
          "spectral radius {rnn_rho:.2f}; the first step gets {rnn_ratio:.0e} of the gradient. The LSTM's "
          "cell-state gradient is multiplied by {lstm_rate:.2f} per step, and its first step still gets only "
          "{lstm_c_ratio:.0e} (its hidden state {lstm_ratio:.0e}): at initialisation both vanish, and the "
          "initialisation sets the rate. The prediction's dashes, each cell's top Lyapunov factor ({rnn_lyap:.3f} and "
          "{lstm_lyap:.3f}), predict both slopes.",
          Config(),
          claims=(Claim("the RNN's gradient vanishes by the first step",
                        lambda f: f["rnn_ratio"] < analysis.VANISHING_BELOW),
                  Claim("the LSTM's vanishes too, but it keeps many orders of magnitude more than the RNN's",
                        lambda f: f["lstm_ratio"] < analysis.VANISHING_BELOW and f["lstm_ratio"] > 1e6 * f["rnn_ratio"]),
                  Claim("the RNN's rate per step is just below its spectral radius, within {tolerance:.0%}",
                        lambda f: 1 - TOLERANCE < f["rnn_rate"] / f["rnn_rho"] < 1),
                  Claim("the top Lyapunov factor is within {tolerance:.0%} of both cells' measured rate per step",
                        lambda f: abs(f["rnn_lyap"] / f["rnn_rate"] - 1) < TOLERANCE
                        and abs(f["lstm_lyap"] / f["lstm_rate"] - 1) < TOLERANCE),
                  Claim("with {init} init the RNN keeps far more of its gradient",
                        lambda f: f["rnn_ratio"] > 1e-6, contrast={"init": "orthogonal"}),
                  Claim("with forget bias {forget_bias:g} the LSTM's cell state keeps its gradient",
                        lambda f: f["lstm_c_ratio"] > analysis.VANISHING_BELOW, contrast={"forget_bias": 3.0})),
          try_next="Switch the init to orthogonal: the RNN keeps far more gradient, mainly because the matrix's "
                   "spectral radius rises to one (the orthogonal scene shows what orthogonality adds). Or raise the "
                   "forget bias to 3."),
    Scene("exploding", "The exploding gradient",
          "A tanh RNN whose recurrent weights are Gaussian with spectral radius {rnn_rho:.2f}. Its state stays "
          "bounded by tanh and the loss is finite ({rnn_loss:.2f}), yet going back the gradient is multiplied by "
          "{rnn_rate:.2f} at every step, to {rnn_ratio:.0e} times its size at the loss by the first step. The "
          "network is chaotic: nearby states drift apart, and the backward pass measures that drift (top Lyapunov "
          "factor {rnn_lyap:.3f}). This is why training clips gradients (Pascanu, Mikolov and Bengio). The LSTM "
          "with the same initialisation grows too, more slowly (top Lyapunov factor {lstm_lyap:.3f}): over {T} "
          "steps its cell-state gradient ends {lstm_c_ratio:.2g} times its size at the loss, short of the "
          "thousandfold line this tool calls exploding.",
          Config(init="gaussian", init_scale=2.0),
          claims=(Claim("the RNN's gradient explodes going back", lambda f: f["rnn_ratio"] > analysis.EXPLODING_ABOVE),
                  Claim("its forward pass stays bounded: every |h| below one, a finite loss",
                        lambda f: f["rnn_max_h"] < 1.0 and np.isfinite(f["rnn_loss"])),
                  Claim("the top Lyapunov factor is within {tolerance:.0%} of the RNN's measured rate per step",
                        lambda f: abs(f["rnn_lyap"] / f["rnn_rate"] - 1) < TOLERANCE),
                  Claim("the LSTM's gradient grows too, but stays within a factor of a thousand here",
                        lambda f: f["lstm_lyap"] > 1 and f["lstm_rate"] > 1
                        and analysis.VANISHING_BELOW < f["lstm_c_ratio"] < analysis.EXPLODING_ABOVE
                        and analysis.VANISHING_BELOW < f["lstm_ratio"] < analysis.EXPLODING_ABOVE),
                  Claim("at init scale {init_scale:g} the same RNN vanishes instead",
                        lambda f: f["rnn_ratio"] < analysis.VANISHING_BELOW, contrast={"init_scale": 0.5})),
          try_next="Lower the init scale to 0.5 and the same network vanishes instead."),
    Scene("saturation", "Saturated units do not decide: the trajectory does",
          "With only {H} units and a large gain (spectral radius {rnn_rho:.1f}), {rnn_saturated:.0%} of the "
          "state's values sit on the flat ends of tanh (|h| > {saturated_at}). Its top Lyapunov factor is "
          "{rnn_lyap:.2g}, below one: nearby states converge (here the state {rnn_pattern}), and the "
          "gradient dies out with them. What reaches the first step, relative to the loss step, is "
          "{rnn_ratio_words}. Saturation alone does not decide this: with many more units and most of them "
          "saturated too, the same gain makes the network chaotic. The LSTM (blue), with the same gain, "
          "{lstm_verdict} on this seed: its first step gets {lstm_ratio:.0e} times the gradient at the loss.",
          Config(init="gaussian", init_scale=10.0, hidden=6),
          claims=(Claim("the RNN's gradient vanishes", lambda f: f["rnn_ratio"] < analysis.VANISHING_BELOW),
                  Claim("its top Lyapunov factor is below one: nearby states converge", lambda f: f["rnn_lyap"] < 1),
                  Claim("most of the RNN's values are saturated", lambda f: f["rnn_saturated"] > 0.5),
                  Claim("the spectral radius is far above one", lambda f: f["rnn_rho"] > 3),
                  Claim("with {hidden} units the same gain, with most units also saturated, explodes instead",
                        lambda f: f["rnn_ratio"] > analysis.EXPLODING_ABOVE and f["rnn_saturated"] > 0.5,
                        contrast={"hidden": 64})),
          try_next="Raise the hidden units to 64: most units are saturated there too, but the network is chaotic "
                   "and the gradient explodes.",
          panel="lyapunov"),
    Scene("orthogonal", "Orthogonal initialisation treats every direction of the RNN alike",
          "An orthogonal matrix has all its singular values equal ({rnn_sigma_max:.2f}), so each step shrinks every "
          "direction only through the tanh slopes: the median direction is multiplied by {rnn_median:.3f} per step "
          "against {rnn_lyap:.3f} for the top one. All the RNN's directions shrink nearly together (here the first step "
          "gets {rnn_ratio:.0e} of the gradient). A Gaussian matrix of the same scale sends its top direction back "
          "about as far, but its median direction shrinks much faster: the Lyapunov panel shows the whole spectrum. "
          "The LSTM's recurrent matrices are orthogonal too, but its gates are not: its top direction is multiplied "
          "by {lstm_lyap:.3f} per step and its median one by {lstm_median:.2g}.",
          Config(init="orthogonal"),
          claims=(Claim("the RNN's median direction shrinks almost as slowly as its top one",
                        lambda f: f["rnn_median"] > 0.9 * f["rnn_lyap"]),
                  Claim("the LSTM's median direction shrinks far faster than its top one",
                        lambda f: f["lstm_median"] < 0.5 * f["lstm_lyap"]),
                  Claim("a {init} matrix of the same scale has a median direction far below its top one",
                        lambda f: f["rnn_median"] < 0.85 * f["rnn_lyap"], contrast={"init": "gaussian"}),
                  Claim("a {init} matrix of the same scale has a top factor about as large",
                        lambda f: f["rnn_lyap"] > 0.95 * _orthogonal_top(f["rnn_config"]), contrast={"init": "gaussian"})),
          try_next="Switch the init to gaussian at the same scale and compare the Lyapunov spectra: a few directions "
                   "carry the gradient, the rest vanish fast.",
          panel="lyapunov"),
    Scene("forget-bias", "The LSTM vanishes too, unless its gates are set to remember",
          "Over {T} steps, with forget bias {lstm_bf:g}, the forget gates average {lstm_f:.2f}, so the cell path "
          "alone would multiply the gradient by about that at every step. The cell-state gradient is in fact "
          "multiplied by {lstm_rate:.3f} per step: almost all of it comes back along paths that pass through the "
          "hidden state at least once (the direct cell path is {lstm_direct_share:.0e} of it at the first step; see the "
          "cell-paths panel). The first cell state gets {lstm_c_ratio:.0e} of the loss step's gradient.",
          Config(seq_len=1000, forget_bias=0.0),
          claims=(Claim("the LSTM's cell-state gradient vanishes over the sequence",
                        lambda f: f["lstm_c_ratio"] < analysis.VANISHING_BELOW),
                  Claim("at the first step the direct cell path carries almost none of it",
                        lambda f: f["lstm_direct_share"] < 1e-3),
                  Claim("with forget bias {forget_bias:g} it vanishes too",
                        lambda f: f["lstm_c_ratio"] < analysis.VANISHING_BELOW, contrast={"forget_bias": 1.0}),
                  Claim("with {init} initialisation the cell state keeps it, along the direct cell path",
                        lambda f: f["lstm_c_ratio"] > analysis.VANISHING_BELOW and f["lstm_direct_share"] > 0.5,
                        contrast={"init": "chrono"})),
          try_next="Raise the forget bias to 1 (it still vanishes over this length), then pick init chrono, which "
                   "spreads the forget biases over time scales up to T (Tallec and Ollivier): the cell-state "
                   "gradient survives, and now along the cell path itself.",
          panel="cell_paths"),
    Scene("lstm-learns", "The LSTM learns, the RNN does not",
          "Both cells train on identical batches of the {T}-step adding problem, whose two marked numbers lie up "
          "to {lag_max} steps before the answer. The dotted lines are what a network scores with no memory "
          "({baseline:.3f}) and with only the second number remembered ({baseline_low:.3f}). After training the "
          "RNN averages {rnn_final:.3f} over its last updates, on the no-memory line; the LSTM averages "
          "{lstm_final:.4f}, far below both.",
          Config(seq_len=50, hidden=16, batch=64, lr=2e-2, steps=800),
          claims=(Claim("the LSTM ends far below both reference lines",
                        lambda f: f["lstm_final"] < 0.5 * f["baseline_low"]),
                  Claim("the RNN stays on the no-memory line", lambda f: f["rnn_final"] > 0.9 * f["baseline"]),
                  Claim("at sequence length {seq_len} the RNN learns too",
                        lambda f: f["rnn_final"] < 0.5 * f["baseline_low"], contrast={"seq_len": 10})),
          train=True,
          try_next="Shorten the sequence to 10 and the RNN learns too; lengthen it and the LSTM needs more updates.",
          panel="learning"),
    Scene("truncation", "Truncated BPTT limits which dependencies the gradient can teach",
          "The same training as the previous scene, but the backward pass is cut every {truncate} steps, as "
          "h.detach() between chunks: the loss at the last step now reaches only the last {truncate} steps, and "
          "the first marked number always lies further back (up to {lag_max} steps). Every update here still runs "
          "forward and backward over all {T} steps, {time_cut_ms:.1f} ms with the cut against {time_full_ms:.1f} ms "
          "without: here truncation changes the gradient and saves no time. A loop that calls backward() after each chunk "
          "keeps only that chunk's activations and can update after each one ({time_chunk_ms:.1f} ms for a pass "
          "over one chunk here), but a whole sequence of chunks still costs about as much as one full pass. The LSTM averages {lstm_final:.4f} "
          "over its last updates, far below both reference lines. The cut stops the gradient, not the forward "
          "pass: the state entering the last chunk still holds what the cell wrote earlier. No gradient reaches "
          "the step where the first number was written, yet the LSTM uses it: its weights are shared by every "
          "step, and when the second number lies inside the last chunk, writing and keeping a number is rewarded "
          "there. That is the likely reason, not something measured here. The RNN averages {rnn_final:.3f}, on "
          "the no-memory line.",
          Config(seq_len=50, hidden=16, batch=64, lr=2e-2, steps=800, truncate=10),
          claims=(Claim("the last step's loss reaches only its own chunk: no earlier step gets any gradient from it",
                        lambda f: f["lstm_cut_zero"] and f["rnn_cut_zero"]
                        and f["T"] - f["lstm_cut_at"] <= f["truncate"]),
                  Claim("an update with the cut is no cheaper here (at least half the time of one without)",
                        lambda f: f["time_cut_ms"] > 0.5 * f["time_full_ms"]),
                  Claim("a pass over one chunk costs less than a pass over the whole sequence",
                        lambda f: f["time_chunk_ms"] < f["time_full_ms"]),
                  Claim("the LSTM still ends far below both reference lines",
                        lambda f: f["lstm_final"] < 0.5 * f["baseline_low"]),
                  Claim("the RNN stays on the no-memory line", lambda f: f["rnn_final"] > 0.9 * f["baseline"]),
                  Claim("on {task}, whose informative steps all lie before the cut, the LSTM learns nothing: it "
                        "stays on the no-memory line", lambda f: f["lstm_final"] > 0.9 * f["baseline"],
                        contrast={"task": "temporal_order"})),
          train=True,
          try_next="Switch the task to temporal_order: every informative step lies before the cut, and the same "
                   "truncation learns nothing.",
          panel="grad_vs_time"),
]

BY_NAME = {s.name: s for s in SCENES}


def measure(scene: Scene, on_record: Callable | None = None) -> tuple[dict, dict | None]:
    """A scene's view, measured: (probes, runs), its cells probed at the scene's Config and, for a training scene,
    trained on it on identical batches (`on_record` as gradlab.train_many's; runs is None otherwise). Its words are
    then say(scene, facts(runs or probes, runs))."""
    from .probe import probe  # the engine's entry points, imported here as _orthogonal_top does
    from .train import train_many
    probes = {c: probe(scene.config.replace(cell=c)) for c in scene.cells}
    runs = train_many([scene.config.replace(cell=c) for c in scene.cells], on_record) if scene.train else None
    return probes, runs
