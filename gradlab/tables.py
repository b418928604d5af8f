"""Each panel's data as a tidy (long) DataFrame: one row per cell / record / t (and unit, block or direction where
there is one). The numbers are exactly the ones the figure builders draw: both read the same records and the same
analysis.summary. Pure pandas: no figures here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import analysis
from .tasks import information


def _latest(records: dict) -> dict:
    return {c: r.latest for c, r in records.items() if r is not None}


def _long(cell: str, quantities: dict) -> list[pd.DataFrame]:
    return [pd.DataFrame({"cell": cell, "quantity": q, "t": np.arange(1, len(v) + 1), "value": v})
            for q, v in quantities.items() if v is not None]


def profile(records: dict) -> pd.DataFrame:
    """The measured profiles and every theory curve, as grad_vs_time draws them."""
    rows = []
    for c, p in _latest(records).items():
        q = {k: getattr(p, k, None) for k in ("grad_h_norm", "grad_c_norm", "grad_h_norm_last")}
        q.update(analysis.summary(p)["curves"])
        rows += _long(c, q)
    return pd.concat(rows, ignore_index=True)


def unrolled(records: dict) -> pd.DataFrame:
    df = profile(records)
    return df[df.quantity.isin(["grad_h_norm", "grad_c_norm"])].reset_index(drop=True)


def lyapunov(records: dict) -> pd.DataFrame:
    rows = []
    for c, p in _latest(records).items():
        f = analysis.summary(p)["lyapunov"]
        rows.append(pd.DataFrame({"cell": c, "direction": np.arange(1, len(f) + 1), "factor_per_step": f,
                                  "survives_T_steps": f >= analysis.survival_factor(p.seq_len)}))
    return pd.concat(rows, ignore_index=True)


def cell_paths(records: dict) -> pd.DataFrame | None:
    p = records.get("lstm")
    if p is None:
        return None
    p = p.latest
    q = {k: getattr(p, k, None) for k in ("grad_c_norm", "grad_c_direct_norm", "grad_c_rest_norm")}
    q["theory_cell_path"] = analysis.summary(p)["curves"].get("theory_cell_path")
    return pd.concat(_long("lstm", q), ignore_index=True)


def grad_x(records: dict) -> pd.DataFrame:
    rows = []
    for c, p in _latest(records).items():
        df = pd.concat(_long(c, {"grad_x_norm": getattr(p, "grad_x_norm", None)}) or [pd.DataFrame()],
                       ignore_index=True)
        if p.config is not None and len(df):
            df["information_count"] = information(p.config.task, p.x).sum(axis=1)
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def whh_share(records: dict) -> pd.DataFrame:
    rows = []
    for c, p in _latest(records).items():
        w = np.asarray(p.grad_whh_contrib_norm, dtype=np.float64)
        with np.errstate(all="ignore"):
            share = w / np.nansum(np.where(np.isfinite(w), w, 0.0))
        rows += _long(c, {"grad_whh_contrib_norm": w, "share": share})
    return pd.concat(rows, ignore_index=True)


def plots_blocks(cell: str) -> tuple[str, ...]:
    from .plots import BLOCKS  # the gate blocks' names, declared once beside the figures that name them
    return BLOCKS[cell]


def spectrum(records: dict) -> pd.DataFrame:
    rows = []
    for c, p in _latest(records).items():
        sp = analysis.spectrum(p.params["weight_hh_l0"])
        names = plots_blocks(c)
        for b, name in enumerate(names):
            e, s = sp["eigvals"][b], sp["singvals"][b]
            rows.append(pd.DataFrame({"cell": c, "block": name, "kind": "eigenvalue", "index": np.arange(len(e)),
                                      "real": e.real, "imag": e.imag}))
            rows.append(pd.DataFrame({"cell": c, "block": name, "kind": "singular_value", "index": np.arange(len(s)),
                                      "real": s, "imag": 0.0}))
    return pd.concat(rows, ignore_index=True)


def gates(records: dict) -> pd.DataFrame | None:
    rec = records.get("lstm")
    G = rec.latest.gates if rec is not None else None
    if G is None:
        return None
    T, _, G4 = G.shape
    H = G4 // 4
    seq = G[:, 0].reshape(T, 4, H)  # the first probe sequence, as the heatmaps show it
    gate, t, unit = np.meshgrid(np.arange(4), np.arange(1, T + 1), np.arange(H), indexing="ij")
    return pd.DataFrame({"sequence": 0, "gate": np.array(list("ifgo"))[gate.ravel()], "t": t.ravel(),
                         "unit": unit.ravel(), "value": seq.transpose(1, 0, 2).ravel()})


def grad_over_training(runs: dict) -> pd.DataFrame:
    return pd.concat([
        pd.DataFrame({"cell": c, "record_step": np.repeat(r.record_steps, r.grad_h_norm.shape[1]),
                      "t": np.tile(np.arange(1, r.grad_h_norm.shape[1] + 1), len(r.record_steps)),
                      "grad_h_norm": r.grad_h_norm.ravel()}) for c, r in runs.items()], ignore_index=True)


def learning(runs: dict) -> pd.DataFrame:
    """Per training step: loss, accuracy, the gradient norm before and after clipping, whether it was clipped."""
    return pd.concat([
        pd.DataFrame({"cell": c, "step": np.arange(1, r.steps_done + 1), "loss": r.loss,
                      "accuracy": r.accuracy if r.accuracy is not None else np.nan,
                      "grad_norm_pre_clip": r.grad_norm_pre, "grad_norm_post_clip": r.grad_norm_post,
                      "clipped": r.clipped}) for c, r in runs.items()], ignore_index=True)
