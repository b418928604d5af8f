"""An independent, deliberately naive re-implementation of the forward pass and loss, for gradient checks.

It shares no code with gradlab's engine (textbook sigmoid, no chunking, no fused biases), and lets a test inject a
perturbation into any h_t / c_t or give each step its own copy of W_hh, so central differences can check not only
the parameter gradients but the *total* dL/dh_t, dL/dc_t and each step's term of dL/dW_hh. (dL/dx_t needs no hook:
central differences perturb x itself.)

For the LSTM's split of dL/dc_t, `dc_read` perturbs c_t only where the read-out at step t sees it (h_t's copy that
goes into the head, not the one the next step uses), which isolates the loss's own entries into c_t; and `gates_out`
collects the forward's (i, f, g, o) per step (the GRU's (r, z, n)), so `direct_cell_path` can carry those entries back
through prod f.

The GRU is written from PyTorch's nn.GRU documentation, with the input and hidden halves apart:
  r = sig(W_ir x + b_ir + W_hr h + b_hr), z = sig(W_iz x + b_iz + W_hz h + b_hz),
  n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.

Truncated BPTT is a detach, and a detach is a constant: `detach` = {t: (h, c)} replaces the state entering step t by
those values, computed beforehand (`cut_states`) from the unperturbed parameters and inputs. Central differences of
that loss see a perturbation only within its own chunk, which is exactly what `h = h.detach()` does to autograd; the
forward values (the loss) are those of the plain forward pass.
"""
import numpy as np


def sig(v):
    return 1 / (1 + np.exp(-v))


def loss(params, x, y, mask, cell, nonlinearity="tanh", loss_kind="mse", dh=None, dc=None, W_steps=None,
         dc_read=None, gates_out=None, detach=None, states_out=None):
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    h, c = np.zeros((B, H)), np.zeros((B, H))
    total = 0.0
    for t in range(T):
        if detach is not None and t in detach:
            h, c = (v.copy() for v in detach[t])
        W = params["weight_hh_l0"] if W_steps is None else W_steps[t]
        a = x[t] @ params["weight_ih_l0"].T + params["bias_ih_l0"] + h @ W.T + params["bias_hh_l0"]
        if cell == "rnn":
            h = {"tanh": np.tanh, "relu": lambda v: np.maximum(v, 0), "linear": lambda v: v}[nonlinearity](a)
        elif cell == "gru":
            gi = x[t] @ params["weight_ih_l0"].T + params["bias_ih_l0"]
            gh = h @ W.T + params["bias_hh_l0"]
            r = sig(gi[:, :H] + gh[:, :H])
            z = sig(gi[:, H:2 * H] + gh[:, H:2 * H])
            n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
            h = (1 - z) * n + z * h
            if gates_out is not None:
                gates_out.append((r, z, n))
        else:
            i, f, g, o = (a[:, k * H:(k + 1) * H] for k in range(4))
            i, f, o, g = 1 / (1 + np.exp(-i)), 1 / (1 + np.exp(-f)), 1 / (1 + np.exp(-o)), np.tanh(g)
            c = f * c + i * g
            if dc is not None:
                c = c + dc[t]
            h = o * np.tanh(c)
            if gates_out is not None:
                gates_out.append((i, f, g, o))
        if states_out is not None:
            states_out.append((h.copy(), c.copy()))
        if dh is not None:
            h = h + dh[t]
        h_read = h if dc_read is None else h + o * (np.tanh(c + dc_read[t]) - np.tanh(c))
        out = h_read @ params["head.weight"].T + params["head.bias"]
        if loss_kind == "mse":
            total += np.sum(mask[t] * np.mean((out - y[t]) ** 2, axis=-1))
        else:
            logz = np.log(np.sum(np.exp(out - out.max(-1, keepdims=True)), -1)) + out.max(-1)
            total += np.sum(mask[t] * (logz - out[np.arange(B), y[t]]))
    return total / mask.sum()


def cut_states(params, x, cell, nonlinearity="tanh", truncate=0):
    """{t: (h_{t-1}, c_{t-1})} for every step t > 0 with t % truncate == 0: the constants a detach leaves there."""
    T, B, _ = x.shape
    states = []
    loss(params, x, np.zeros((T, B, 1)), np.ones((T, B)), cell, nonlinearity, "mse", states_out=states)
    return {t: states[t - 1] for t in range(1, T) if truncate and t % truncate == 0}


def direct_cell_path(params, x, y, mask, loss_kind="mse", truncate=0):
    """The LSTM's direct cell path d (T, B, H): the loss's own entries into c_s (central differences through the
    read-out alone), carried back to c_t by f_{t+1} ... f_s of this module's forward: d_t = own_t + d_{t+1} f_{t+1}
    (nothing crosses a truncation's cut: at a cut t + 1, d_t = own_t)."""
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    gates = []
    loss(params, x, y, mask, "lstm", loss_kind=loss_kind, gates_out=gates)
    dc_read = np.zeros((T, B, H))
    own = numeric_grad(lambda: loss(params, x, y, mask, "lstm", loss_kind=loss_kind, dc_read=dc_read), dc_read)
    d = np.zeros((T, B, H))
    later = np.zeros((B, H))  # d_{t+1} f_{t+1}; nothing comes from beyond the last step
    for t in range(T - 1, -1, -1):
        d[t] = own[t] + later
        later = d[t] * gates[t][1] if not (truncate and t > 0 and t % truncate == 0) else np.zeros((B, H))
    return d


def numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of `a` (perturbed in place, restored)."""
    g = np.zeros_like(a)
    it = np.nditer(a, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        old = a[i]
        a[i] = old + eps
        plus = f()
        a[i] = old - eps
        minus = f()
        a[i] = old
        g[i] = (plus - minus) / (2 * eps)
    return g


def rel_error(a, b):
    """max |a - b| / max(|a| + |b|), CS231n's measure taken over the whole array."""
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(a) + np.abs(b)), 1e-300))
