"""The PyTorch CPU reference the engine benchmark times gradlab against, on gradlab's own parameters and batch.

  fused     `nn.LSTM` / `nn.RNN` / `nn.GRU` + an `nn.Linear` head, masked MSE, `loss.backward()` (no per-step information).
  stepwise  an `nn.LSTMCell` / `nn.RNNCell` / `nn.GRUCell` loop with `retain_grad()` on every h_t, the same head and loss,
            `backward()`, then the per-step norms ||dL/dh_t|| from the retained gradients (PyTorch's way to record).
Both hold copies of gradlab's parameters, so all three compute the same loss and gradients; `agreement` says how
closely. torch is imported by `load()`, not at import time: gradlab's peak-RSS child must run without it.
"""
from __future__ import annotations

import numpy as np

torch = None


def load() -> bool:
    """Import torch (True) or report it absent (False): the benchmark then prints gradlab's own figures only."""
    global torch
    try:
        import torch as _torch
    except ImportError:
        return False
    torch = _torch
    return True


def models(cell: str, nonlinearity: str, params: dict, x, y, m):
    """(fused, stepwise) closures on torch modules holding gradlab's parameters; each returns its results:
    fused -> (loss, dL/dW_hh), stepwise -> (loss, dL/dW_hh, ||dL/dh_t|| (T,))."""
    dt = getattr(torch, str(params["weight_hh_l0"].dtype))
    H = params["weight_hh_l0"].shape[1]
    D, O = params["weight_ih_l0"].shape[1], params["head.weight"].shape[0]
    xt, yt, mt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, y, m))
    msum = mt.sum()
    if cell == "lstm":
        fused, step = torch.nn.LSTM(D, H), torch.nn.LSTMCell(D, H)
    elif cell == "gru":  # gradlab's GRU parameters are nn.GRU's (r, z, n rows; b_hn inside r * (...))
        fused, step = torch.nn.GRU(D, H), torch.nn.GRUCell(D, H)
    else:
        fused, step = torch.nn.RNN(D, H, nonlinearity=nonlinearity), torch.nn.RNNCell(D, H, nonlinearity=nonlinearity)
    head_f, head_s = torch.nn.Linear(H, O), torch.nn.Linear(H, O)
    fused, step, head_f, head_s = (mod.to(dt) for mod in (fused, step, head_f, head_s))
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(fused, name + "_l0").copy_(torch.from_numpy(params[name + "_l0"]))
            getattr(step, name).copy_(torch.from_numpy(params[name + "_l0"]))
        for head in (head_f, head_s):
            head.weight.copy_(torch.from_numpy(params["head.weight"]))
            head.bias.copy_(torch.from_numpy(params["head.bias"]))
    f_params = list(fused.parameters()) + list(head_f.parameters())
    s_params = list(step.parameters()) + list(head_s.parameters())

    def loss_of(yhat):  # gradlab's mse: sum_tb m_tb mean_o (yhat - y)^2 / sum_tb m_tb
        return ((yhat - yt) ** 2).mean(dim=-1).mul(mt).sum() / msum

    def run_fused():
        for p in f_params:
            p.grad = None
        out, _ = fused(xt)
        loss = loss_of(head_f(out))
        loss.backward()
        return loss, fused.weight_hh_l0.grad

    def run_step():
        for p in s_params:
            p.grad = None
        h = xt.new_zeros(xt.shape[1], H)
        c = xt.new_zeros(xt.shape[1], H)
        hs = []
        for t in range(xt.shape[0]):
            if cell == "lstm":
                h, c = step(xt[t], (h, c))
            else:
                h = step(xt[t], h)
            h.retain_grad()
            hs.append(h)
        loss = loss_of(head_s(torch.stack(hs)))
        loss.backward()
        grad_h_norm = torch.linalg.vector_norm(torch.stack([h.grad for h in hs]), dim=(1, 2))
        return loss, step.weight_hh.grad, grad_h_norm

    return run_fused, run_step


def rel(a, b) -> float:
    """max|a - b| / max|b| (float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.max(np.abs(b))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b)))


def agreement(rec: dict, fused_out, step_out) -> float:
    """Largest relative disagreement between gradlab's record and PyTorch: loss, dL/dW_hh (vs fused and stepwise) and
    the per-step ||dL/dh_t|| (vs the stepwise loop's retained gradients)."""
    errs = []
    for out in (fused_out, step_out):
        errs.append(rel(out[0].item(), rec["loss"]))
        errs.append(rel(out[1].numpy(), rec["grads"]["weight_hh_l0"]))
    errs.append(rel(step_out[2].numpy(), rec["grad_h_norm"]))
    return max(errs)
