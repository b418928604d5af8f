"""The README's headline: the numbers of the dashboard's first view, measured, never typed.

`python docs/headline.py` prints the block that README.md holds between the `headline` markers;
tests/test_readme.py recomputes it and fails if the README says anything else.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradlab  # noqa: E402
from gradlab import scenes  # noqa: E402
from gradlab.files import shipped  # noqa: E402

START, END = "<!-- headline: start (docs/headline.py writes this block) -->", "<!-- headline: end -->"
SWEEP_START, SWEEP_END = "<!-- sweep: start (docs/headline.py writes this block) -->", "<!-- sweep: end -->"


def block() -> str:
    scene = scenes.BY_NAME["vanishing"]
    cfg = scene.config
    probes = {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}
    f = scenes.facts(probes)
    checks = scenes.check(scene, f)
    lines = [START,
             f"The first view (`Config()`: the adding problem at T = {f['T']}, H = {f['H']}, batch {cfg.batch}, seed "
             f"{cfg.seed}, PyTorch's initialisation for both cells, the LSTM's forget bias {cfg.forget_bias:g}):",
             "",
             "| | vanilla RNN (tanh) | LSTM |",
             "|---|---:|---:|",
             f"| gradient reaching step 1 / at the loss step, ‖dL/dh_1‖ / ‖dL/dh_T‖ | {f['rnn_ratio']:.1e} | "
             f"{f['lstm_ratio']:.1e} |",
             f"| measured average factor per step (RNN: on ‖dL/dh_t‖; LSTM: on the cell state's ‖dL/dc_t‖) | "
             f"{f['rnn_rate']:.3f} | {f['lstm_rate']:.3f} |",
             f"| top Lyapunov factor (the prediction) | {f['rnn_lyap']:.3f} | {f['lstm_lyap']:.3f} |",
             f"| spectral radius of W_hh | {f['rnn_rho']:.3f} | |",
             f"| cell state, ‖dL/dc_1‖ / ‖dL/dc_T‖ | | {f['lstm_c_ratio']:.1e} |",
             "",
             "The scene's claims, checked on this view (and over five seeds by `tests/test_scenes.py`): "
             + "; ".join(scenes.say(scene, f, c.text) + (" (yes)" if ok else " (NO)") for c, ok in checks) + ".",
             END]
    return "\n".join(lines)


def sweep_block() -> str:
    """What the shipped trainability map shows, from the file itself."""
    from gradlab import sweep
    df = sweep.load(str(shipped("sweep_adding.parquet")))
    solved = df.groupby(["cell", "seq_len"]).solved.mean()
    gains = df.init_scale.nunique()
    words = []
    for cell, name in (("rnn", "the RNN"), ("lstm", "the LSTM")):
        s = solved[cell]
        everywhere = [T for T, v in s.items() if v == 1.0]
        partly = [f"T = {T} at {round(v * gains)} of {gains} gains" for T, v in s.items() if 0 < v < 1]
        words.append(f"{name} learns it at every gain up to T = {max(everywhere)}"
                     + (f" and at {', '.join(partly)}" if partly else ""))
    import json
    cfg = json.loads(df.config.iloc[0])
    Ts = ", ".join(str(T) for T in sorted(df.seq_len.unique()))
    scales = ", ".join(f"{g:g}" for g in sorted(df.init_scale.unique()))
    return "\n".join([SWEEP_START,
                      f"The shipped sweep (`gradlab/data/sweep_adding.parquet`: T in {{{Ts}}} x gain in {{{scales}}}, "
                      f"{cfg['init']} init, H = {cfg['hidden']}, B = {cfg['batch']}, {cfg['optimizer']} lr {cfg['lr']:g}, "
                      f"{df.seed.nunique()} seed per point, {int(df.steps_done.max())} updates; \"learns\" is the "
                      "sweep's `solved`: the final loss below a tenth of the no-memory baseline): "
                      + "; ".join(words) + ".", SWEEP_END])


if __name__ == "__main__":
    print(block())
    print()
    print(sweep_block())
