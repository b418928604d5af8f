#!/usr/bin/env python
"""Time gradlab's engine (forward + full BPTT + per-step recording) against PyTorch CPU on the same problem.

    .venv/bin/python benchmarks/bench_engine.py              # full grid (~6-8 min on 2 cores); writes results/engine.md
    .venv/bin/python benchmarks/bench_engine.py --quick      # a small subset in well under a minute
    .venv/bin/python benchmarks/bench_engine.py --cells lstm --dtypes float64 --markdown

What is timed (batch generation and parameter initialisation are excluded; both sides get the same arrays):
  gradlab   `gradlab.bptt.run(params, x, y, y_mask, cell, "tanh", "mse")`: what `gradlab.probe` spends its time in:
            forward, full BPTT, the per-step norms of dL/dh_t, dL/dc_t and of every step's dW_hh term, h, c and gates.
  fused     `nn.LSTM` / `nn.RNN` + `nn.Linear` head, masked MSE, `loss.backward()` (no per-step information).
  stepwise  an `nn.LSTMCell` / `nn.RNNCell` loop with `retain_grad()` on every h_t, the same head and loss,
            `backward()`, then the per-step norms ||dL/dh_t|| from the retained gradients (PyTorch's way to record).
PyTorch gets gradlab's parameters copied in, so all three compute the same loss and gradients; this is checked once
per configuration (loss, dL/dW_hh against both, and the per-step ||dL/dh_t|| against the stepwise loop), and the
run fails (exit status 1) if float64 disagrees by more than 1e-10 relative.

Timing: an untimed warm-up round (which also provides the check), then `reps` rounds of gradlab, fused, stepwise in
that order, with a 0.2 s pause before the PyTorch calls (OpenBLAS's threads keep spinning for ~0.1 s after numpy's
last call and would otherwise take the cores from PyTorch: measured here, up to 2x slower PyTorch without it).
`reps` adapts to the cost of a round so that a configuration takes about `--budget` seconds (at least 3 rounds).
Times are medians; ratios are medians of the per-round paired ratios (absolute times drift by +-30% between runs on
these VMs and 2-thread BLAS is bimodal; paired ratios move much less). Every row also reports the CPU that other
processes used meanwhile: run it on a quiet machine (not during a test run).

PyTorch runs with torch.set_num_threads equal to numpy's BLAS thread count. Targets (from the issue): gradlab
<= 0.6x fused PyTorch in float64 and <= 1.2x in float32 on every configuration.
"""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import gradlab  # noqa: E402
from gradlab import bptt  # noqa: E402
from gradlab.init import init_params  # noqa: E402
from gradlab.probe import rngs  # noqa: E402
from gradlab.tasks import make_batch  # noqa: E402

torch = None  # imported by load_torch(), so the peak-RSS child of gradlab runs without it


def load_torch() -> bool:
    global torch
    try:
        import torch as _torch
    except ImportError:  # the engine's own figures are still printed
        return False
    torch = _torch
    return True

TARGET = {"float64": 0.6, "float32": 1.2}
TOL = {"float64": 1e-10, "float32": 1e-4}
TASK, NONLINEARITY, LOSS = "adding", "tanh", "mse"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "engine.md"

FULL = {"B": (32, 128), "H": (32, 64, 128), "T": (50, 200, 1000)}
QUICK = {"B": (32,), "H": (32, 64), "T": (50, 200)}
ANCHOR = (32, 64)  # (B, H) of the linear-in-T check (the PERFORMANCE.md anchor)


# ---- environment ---------------------------------------------------------------------------------------------------

def _openblas_ctypes():
    """numpy's OpenBLAS, found among the loaded libraries, as (get_num_threads, set_num_threads, config) or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return None
    for path in sorted(p for p in paths if p.startswith("/")):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if get is None:
                    continue
                get.restype = ctypes.c_int
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                if setter is not None:
                    setter.argtypes = [ctypes.c_int]
                cfg = getattr(lib, f"{prefix}_get_config{suffix}", None)
                text = ""
                if cfg is not None:
                    cfg.restype = ctypes.c_char_p
                    text = cfg().decode(errors="replace")
                return get, setter, text
    return None


def numpy_threads() -> tuple[int, str]:
    """numpy's BLAS thread count and how it was found: threadpoolctl, else OpenBLAS via ctypes, else env, else cpus."""
    np.ones((64, 64)) @ np.ones((64, 64))  # make sure the BLAS library is loaded
    try:
        from threadpoolctl import threadpool_info
        blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if blas:
            i = blas[0]
            return int(i["num_threads"]), f"threadpoolctl: {i.get('internal_api')} {i.get('version')}"
    except ImportError:
        pass
    found = _openblas_ctypes()
    if found is not None:
        return int(found[0]()), f"OpenBLAS get_num_threads via ctypes ({found[2].strip()})"
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.strip().isdigit():
            return int(v), f"${var}"
    return os.cpu_count() or 1, "assumed = os.cpu_count() (no threadpoolctl, BLAS not identified)"


def set_numpy_threads(n: int) -> None:
    """Limit numpy's BLAS to n threads for the rest of the process (threadpoolctl, else OpenBLAS via ctypes)."""
    np.ones((64, 64)) @ np.ones((64, 64))
    try:
        from threadpoolctl import threadpool_limits
        threadpool_limits(limits=n, user_api="blas")
        return
    except ImportError:
        pass
    found = _openblas_ctypes()
    if found is None or found[1] is None:
        raise SystemExit("--threads: cannot set numpy's BLAS threads (no threadpoolctl, OpenBLAS not found); "
                         "set OPENBLAS_NUM_THREADS instead")
    found[1](n)


class OtherLoad:
    """CPU time used by everything but this process (and its waited children) between two instants, in cores.

    The grid is meaningless if something else shares the 2 cores (a test run, a build): every row reports it."""

    def __init__(self):
        self.start = self._snap()

    @staticmethod
    def _snap():
        try:
            with open("/proc/stat") as f:
                v = [int(x) for x in f.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
            busy = (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            busy = float("nan")
        t = os.times()
        return busy, t.user + t.system + t.children_user + t.children_system, time.perf_counter()

    def cores(self) -> float:
        b1, o1, w1 = self._snap()
        b0, o0, w0 = self.start
        return max(0.0, (b1 - b0) - (o1 - o0)) / max(w1 - w0, 1e-9)


BUSY = 0.15  # cores used by other processes above which a row is considered disturbed


def wait_quiet(limit_s: float) -> float:
    """Wait (up to limit_s) for a second in which other processes use < 0.1 cores; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        probe = OtherLoad()
        time.sleep(1.0)
        if probe.cores() < 0.1:
            break
    return time.perf_counter() - t0


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- the problem ---------------------------------------------------------------------------------------------------

def make_problem(cell: str, dtype: str, B: int, H: int, T: int):
    """Exactly what gradlab.probe(cfg) feeds bptt.run: the first batch of the task and the initial parameters."""
    cfg = gradlab.Config(cell=cell, task=TASK, seq_len=T, hidden=H, batch=B, dtype=dtype, nonlinearity=NONLINEARITY)
    data_rng, param_rng = rngs(cfg.seed)
    batch = make_batch(cfg.task, T, B, data_rng)
    params = init_params(cfg, batch.x.shape[-1], batch.n_out, param_rng)
    return cfg, params, batch.x.astype(dtype), batch.y.astype(dtype), batch.y_mask.astype(dtype)


def matmul_flops(cell: str, B: int, H: int, T: int, D: int = 2, O: int = 1) -> int:
    """Matmul flops of one forward + backward, counting a multiply-add as 2; G = 4H (LSTM) or H (RNN). Per step:
         forward   x_t W_ih^T: 2BDG    h_{t-1} W_hh^T: 2BHG    read-out h_t W_y^T: 2BHO
         backward  da_t W_hh -> dh_{t-1}: 2BGH    dW_hh += da_t^T h_{t-1}: 2BGH    dW_ih += da_t^T x_t: 2BGD
                   dyhat_t W_y -> dh_t: 2BOH     dW_y += dyhat_t^T h_t: 2BOH
       total = T * (6BGH + 4BGD + 6BHO). Elementwise work (nonlinearities, gate products, norms) is not counted, nor
       is what gradlab's recording adds: every step's own dW_hh term da_t^T h_{t-1} (for its norm), another 2BGH a step.
       Both sides are credited with the same count, so the GFLOP/s columns compare like with like."""
    G = 4 * H if cell == "lstm" else H
    return T * (6 * B * G * H + 4 * B * G * D + 6 * B * H * O)


def gradlab_fn(cell, params, x, y, m):
    return lambda: bptt.run(params, x, y, m, cell, NONLINEARITY, LOSS)


def torch_fns(cell, params, x, y, m):
    """(fused, stepwise) closures on torch modules holding gradlab's parameters; each returns its results."""
    dt = getattr(torch, str(params["weight_hh_l0"].dtype))
    G, H = params["weight_hh_l0"].shape
    D, O = params["weight_ih_l0"].shape[1], params["head.weight"].shape[0]
    xt, yt, mt = (torch.from_numpy(np.ascontiguousarray(a)) for a in (x, y, m))
    msum = mt.sum()
    if cell == "lstm":
        fused, step = torch.nn.LSTM(D, H), torch.nn.LSTMCell(D, H)
    else:
        fused, step = torch.nn.RNN(D, H, nonlinearity=NONLINEARITY), torch.nn.RNNCell(D, H, nonlinearity=NONLINEARITY)
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


def agreement(rec, fused_out, step_out) -> float:
    """Largest relative disagreement between gradlab and PyTorch: loss, dL/dW_hh (vs fused and stepwise) and the
    per-step ||dL/dh_t|| (vs the stepwise loop's retained gradients)."""
    errs = []
    for out in (fused_out, step_out):
        errs.append(rel(out[0].item(), rec["loss"]))
        errs.append(rel(out[1].numpy(), rec["grads"]["weight_hh_l0"]))
    errs.append(rel(step_out[2].numpy(), rec["grad_h_norm"]))
    return max(errs)


# ---- timing --------------------------------------------------------------------------------------------------------

def timed(fn) -> float:
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


def bench_one(cell, dtype, B, H, T, args, have_torch) -> dict:
    load = OtherLoad()
    _, params, x, y, m = make_problem(cell, dtype, B, H, T)
    impls = [("gradlab", gradlab_fn(cell, params, x, y, m))]
    if have_torch:
        fused, step = torch_fns(cell, params, x, y, m)
        impls += [("fused", fused), ("stepwise", step)]

    # warm-up round: untimed for the statistics, but it gives the agreement check and the cost of a round
    t0 = time.perf_counter()
    outs = {}
    for name, fn in impls:
        if name == "fused":
            time.sleep(args.pause)
        outs[name] = fn()
    warm = time.perf_counter() - t0
    row = {"cell": cell, "dtype": dtype, "B": B, "H": H, "T": T}
    if have_torch:
        row["check"] = agreement(outs["gradlab"], outs["fused"], outs["stepwise"])
    del outs
    reps = max(args.min_reps, min(args.max_reps, int(args.budget / max(warm, 1e-9))))

    times = {name: [] for name, _ in impls}
    for _ in range(reps):
        gc.collect()
        for name, fn in impls:
            if name == "fused":
                time.sleep(args.pause)  # let OpenBLAS's spinning threads go to sleep before PyTorch runs
            times[name].append(timed(fn))
    row["reps"] = reps
    for name, ts in times.items():
        row[name + "_ms"] = 1e3 * statistics.median(ts)
    row["spread"] = max(times["gradlab"]) / min(times["gradlab"])
    row["others"] = load.cores()
    if have_torch:
        row["ratio"] = statistics.median(g / f for g, f in zip(times["gradlab"], times["fused"]))
        row["ratio_step"] = statistics.median(g / s for g, s in zip(times["gradlab"], times["stepwise"]))
        row["target"] = TARGET[dtype]
        row["met"] = row["ratio"] <= TARGET[dtype]
    row["gflops"] = matmul_flops(cell, B, H, T) / (row["gradlab_ms"] * 1e-3) / 1e9
    row["fused_gflops"] = matmul_flops(cell, B, H, T) / (row["fused_ms"] * 1e-3) / 1e9 if have_torch else None
    return row


# ---- peak memory in a fresh process --------------------------------------------------------------------------------

def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_child(impl, cell, dtype, B, H, T) -> None:
    """Run one call of `impl` in this (fresh) process and print peak RSS figures (KiB) as JSON.

    ru_maxrss of a child started by a big parent can report the parent's size (Linux carries the high-water mark
    of the pre-exec image over), so the child also reports VmHWM, the high-water mark of its own address space."""
    _, params, x, y, m = make_problem(cell, dtype, B, H, T)
    if impl == "gradlab":
        fn = gradlab_fn(cell, params, x, y, m)
    else:
        fused, step = torch_fns(cell, params, x, y, m)
        fn = fused if impl == "fused" else step
    gc.collect()
    before = _status_kb("VmRSS")
    out = fn()
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    hwm = _status_kb("VmHWM") or maxrss
    del out
    print(json.dumps({"impl": impl, "before_kb": before, "peak_kb": hwm, "ru_maxrss_kb": maxrss}))


def measure_rss(cell, dtype, B, H, T, have_torch, threads) -> list[dict]:
    res = []
    for impl in ("gradlab", "fused", "stepwise") if have_torch else ("gradlab",):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", impl, cell, dtype, str(B), str(H), str(T),
               "--threads", str(threads)]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            res.append({"impl": impl, "error": p.stderr.strip().splitlines()[-1:] or ["failed"]})
            continue
        res.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return res


# ---- report --------------------------------------------------------------------------------------------------------

def fmt_ms(v):
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def table(headers, rows, markdown):
    if markdown:
        rule = "|" + "|".join("---:" if i >= 2 else "---" for i in range(len(headers))) + "|"
        out = ["| " + " | ".join(headers) + " |", rule]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.rjust(w[i]) if i >= 2 else c.ljust(w[i]) for i, c in enumerate(cells))

    return "\n".join([line(headers), line(["-" * x for x in w])] + [line(r) for r in rows])


def main_table(rows, have_torch, markdown):
    if have_torch:
        headers = ["cell", "dtype", "B", "H", "T", "gradlab ms", "fused torch ms", "ratio (gradlab/fused)", "target",
                   "met?", "stepwise torch ms", "ratio vs stepwise", "gradlab GFLOP/s", "fused GFLOP/s",
                   "max rel err vs torch", "reps", "gradlab max/min", "other procs' CPU (cores)"]
        body = [[r["cell"], r["dtype"], str(r["B"]), str(r["H"]), str(r["T"]), fmt_ms(r["gradlab_ms"]),
                 fmt_ms(r["fused_ms"]), f"{r['ratio']:.2f}", f"{r['target']:.1f}",
                 "yes" if r["met"] else "**no**" if markdown else "NO", fmt_ms(r["stepwise_ms"]),
                 f"{r['ratio_step']:.2f}", f"{r['gflops']:.1f}", f"{r['fused_gflops']:.1f}",
                 f"{r['check']:.0e}" + ("" if r["check"] <= TOL[r["dtype"]] else " FAIL"), str(r["reps"]),
                 f"{r['spread']:.2f}", f"{r['others']:.2f}"] for r in rows]
    else:
        headers = ["cell", "dtype", "B", "H", "T", "gradlab ms", "gradlab GFLOP/s", "ms/step", "reps", "max/min",
                   "other procs' CPU (cores)"]
        body = [[r["cell"], r["dtype"], str(r["B"]), str(r["H"]), str(r["T"]), fmt_ms(r["gradlab_ms"]),
                 f"{r['gflops']:.1f}", f"{r['gradlab_ms'] / r['T']:.3f}", str(r["reps"]), f"{r['spread']:.2f}",
                 f"{r['others']:.2f}"] for r in rows]
    return table(headers, body, markdown)


def linear_table(rows, have_torch, markdown):
    """ms per step at each T, for every (cell, dtype, B, H) with more than one T; spread = max/min of gradlab's."""
    groups = {}
    for r in rows:
        groups.setdefault((r["cell"], r["dtype"], r["B"], r["H"]), {})[r["T"]] = r
    Ts = sorted({r["T"] for r in rows})
    headers = ["cell", "dtype", "B", "H"] + [f"gradlab ms/step T={T}" for T in Ts] + ["spread (max/min)"]
    if have_torch:
        headers += [f"fused ms/step T={T}" for T in Ts]
    body = []
    for (cell, dtype, B, H), byT in groups.items():
        if len(byT) < 2:
            continue
        per = {T: byT[T]["gradlab_ms"] / T for T in byT}
        cells = [cell, dtype, str(B), str(H)] + [f"{per[T]:.3f}" if T in per else "-" for T in Ts]
        cells.append(f"{max(per.values()) / min(per.values()):.2f}" + (" <- anchor" if (B, H) == ANCHOR else ""))
        if have_torch:
            cells += [f"{byT[T]['fused_ms'] / T:.3f}" if T in byT else "-" for T in Ts]
        body.append(cells)
    return table(headers, body, markdown) if body else ""


def summary(rows, have_torch) -> list[str]:
    out = []
    if not have_torch:
        return out
    for cell in dict.fromkeys(r["cell"] for r in rows):
        for dtype in dict.fromkeys(r["dtype"] for r in rows):
            rs = [r for r in rows if r["cell"] == cell and r["dtype"] == dtype]
            if not rs:
                continue
            met = [r for r in rs if r["met"]]
            worst = max(rs, key=lambda r: r["ratio"])
            best = min(rs, key=lambda r: r["ratio"])
            step = max(rs, key=lambda r: r["ratio_step"])
            out.append(f"{cell} {dtype}: target <= {TARGET[dtype]}x fused met on {len(met)}/{len(rs)} configurations; "
                       f"ratio {best['ratio']:.2f} (B={best['B']} H={best['H']} T={best['T']}) to "
                       f"{worst['ratio']:.2f} (B={worst['B']} H={worst['H']} T={worst['T']}); vs stepwise at most "
                       f"{step['ratio_step']:.2f}x; max rel err vs torch {max(r['check'] for r in rs):.0e}")
    return out


def rss_lines(rss, cfg) -> list[str]:
    cell, dtype, B, H, T = cfg
    out = [f"Peak RSS of one call, each in a fresh process, {cell} {dtype} B={B} H={H} T={T} (high-water mark VmHWM, "
           f"= resource.getrusage ru_maxrss when the child's own peak exceeds its parent's size; 'call' = peak minus "
           f"the RSS just before the call, after imports, data and parameters; only the PyTorch children import "
           f"torch):"]
    for r in rss:
        if "error" in r:
            out.append(f"- {r['impl']}: failed ({r['error'][0]})")
        else:
            call = (r["peak_kb"] - r["before_kb"]) / 1024
            out.append(f"- {r['impl']}: peak {r['peak_kb'] / 1024:.0f} MiB, call {call:.0f} MiB "
                       f"(ru_maxrss {r['ru_maxrss_kb'] / 1024:.0f} MiB)")
    return out


def report(rows, header, rss, rss_cfg, have_torch, markdown, grid_note) -> str:
    p = []
    if markdown:
        p.append("# gradlab engine benchmark\n")
        p += [f"- {h}" for h in header] + [f"- {g}" for g in grid_note]
    else:
        p += header + grid_note
    p.append("")
    if not have_torch:
        p.append("PyTorch is absent (or disabled with --no-torch): only gradlab's own figures are shown. Install it "
                 "with `make bench` (requirements-bench.txt pins torch==2.13.0, a CPU build) to get the comparison.\n")
    p.append("## Time per forward + BPTT (median)\n" if markdown else "Time per forward + BPTT (median):")
    p.append(main_table(rows, have_torch, markdown))
    p.append("")
    if have_torch:
        p.append("ratio = median over rounds of gradlab/fused measured back to back; target: gradlab <= 0.6x fused "
                 "PyTorch in float64, <= 1.2x in float32. GFLOP/s = matmul flops of forward + backward "
                 "(T (6BGH + 4BGD + 6BHO), G = 4H LSTM / H RNN, D = 2, O = 1) / median time, for both sides (gradlab's "
                 "recording also forms every step's dW_hh term for its norm, another 2BGH a step, not credited). "
                 "max rel err: loss, dL/dW_hh and per-step ||dL/dh_t|| against PyTorch (tolerance 1e-10 float64, "
                 "1e-4 float32). gradlab max/min: "
                 "slowest over fastest round (2-thread BLAS is bimodal on these VMs). other procs' CPU: cores used by "
                 "other processes while the row ran (should be ~0).\n")
        s = summary(rows, have_torch)
        if s:
            p.append("## Targets\n" if markdown else "Targets:")
            p += [f"- {line}" for line in s]
            p.append("")
    lin = linear_table(rows, have_torch, markdown)
    if lin:
        p.append("## Linear in T: ms per step\n" if markdown else "Linear in T (ms per step; spread = max/min over T):")
        p.append(lin)
        p.append("")
    if rss:
        p.append("## Memory\n" if markdown else "Memory:")
        p += rss_lines(rss, rss_cfg)
        p.append("")
    return "\n".join(p)


# ---- main ----------------------------------------------------------------------------------------------------------

def grid(cells, dtypes, quick):
    configs, notes = [], []
    for cell in cells:
        g = QUICK if quick else FULL
        notes.append(f"grid {cell}: B in {list(g['B'])}, H in {list(g['H'])}, T in {list(g['T'])}, "
                     f"dtypes {list(dtypes)}")
        for dtype in dtypes:
            for B in g["B"]:
                for H in g["H"]:
                    for T in g["T"]:
                        configs.append((cell, dtype, B, H, T))
    return configs, notes


def check_probe_path() -> None:
    """The benchmarked call is what gradlab.probe runs: same loss and gradients on a small configuration."""
    for cell in ("rnn", "lstm"):
        cfg, params, x, y, m = make_problem(cell, "float64", 4, 8, 20)
        rec = bptt.run(params, x, y, m, cell, NONLINEARITY, LOSS)
        p = gradlab.probe(cfg)
        assert p.loss == rec["loss"] and all(np.array_equal(p.grads[k], rec["grads"][k]) for k in rec["grads"]), cell


def progress(r, label, t_start, have_torch) -> None:
    msg = f"[{label} {time.perf_counter() - t_start:5.0f}s] {r['cell']} {r['dtype']} B={r['B']} H={r['H']} " \
          f"T={r['T']}: gradlab {fmt_ms(r['gradlab_ms'])} ms (max/min {r['spread']:.2f}, " \
          f"others {r['others']:.2f} cores)"
    if have_torch:
        msg += (f", fused {fmt_ms(r['fused_ms'])} ms (ratio {r['ratio']:.2f}), stepwise {fmt_ms(r['stepwise_ms'])}"
                f" ms, err {r['check']:.0e}")
    print(msg + f", {r['reps']} reps", file=sys.stderr)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small subset (B=32, H in 32,64, T in 50,200), 1 s per config")
    ap.add_argument("--cells", default="lstm,rnn", help="comma-separated: lstm,rnn (default both)")
    ap.add_argument("--dtypes", default="float64,float32", help="comma-separated: float64,float32")
    ap.add_argument("--threads", type=int, default=None,
                    help="set numpy's BLAS threads (and so PyTorch's) to N; default: numpy's own setting")
    ap.add_argument("--budget", type=float, default=None, help="seconds per configuration (default 3, quick 1)")
    ap.add_argument("--min-reps", type=int, default=3)
    ap.add_argument("--max-reps", type=int, default=15)
    ap.add_argument("--pause", type=float, default=0.2, help="seconds of sleep before the PyTorch calls (default 0.2)")
    ap.add_argument("--retries", type=int, default=2,
                    help=f"times to re-measure, at the end, a configuration during which other processes used > {BUSY} "
                         "cores (default 2)")
    ap.add_argument("--max-wait", type=float, default=600.0,
                    help="total seconds to spend waiting for a quiet machine before re-measuring (default 600)")
    ap.add_argument("--no-torch", action="store_true", help="time gradlab alone even if torch is importable")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-RSS measurement")
    ap.add_argument("--markdown", action="store_true", help="print the report as markdown")
    ap.add_argument("--out", default=None,
                    help=f"write the markdown report here (default {DEFAULT_OUT.relative_to(ROOT)} for a full run, "
                         "nothing for --quick or a partial run); '-' for none")
    ap.add_argument("--rss-child", nargs=6, metavar=("IMPL", "CELL", "DTYPE", "B", "H", "T"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.budget is None:
        args.budget = 1.0 if args.quick else 3.0
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        set_numpy_threads(args.threads)
    if args.rss_child:
        impl, cell, dtype, B, H, T = args.rss_child
        if impl != "gradlab":
            load_torch()
            torch.set_num_threads(args.threads or 1)
        rss_child(impl, cell, dtype, int(B), int(H), int(T))
        return 0

    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    for c in cells:
        if c not in ("lstm", "rnn"):
            raise SystemExit(f"--cells: unknown cell {c!r} (lstm, rnn)")
    for d in dtypes:
        if d not in TARGET:
            raise SystemExit(f"--dtypes: unknown dtype {d!r} (float64, float32)")
    have_torch = not args.no_torch and load_torch()

    n_np, how = numpy_threads()
    header = [
        f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {cpu_model()}, {os.cpu_count()} cpus; "
        f"python {platform.python_version()}",
        f"numpy {np.__version__}, BLAS threads {n_np} ({how}"
        + (f"; set by --threads {args.threads})" if args.threads is not None else ")"),
    ]
    if have_torch:
        torch.set_num_threads(n_np)
        header.append(f"torch {torch.__version__}, torch.set_num_threads({n_np}) -> get_num_threads() = "
                      f"{torch.get_num_threads()}")
    elif not args.no_torch:
        header.append("torch: not importable -> gradlab only (install with `make bench`, which installs "
                      "requirements-bench.txt: torch==2.13.0)")
    else:
        header.append("torch not used (--no-torch)")
    header.append(f"task {TASK}, tanh RNN / LSTM, loss mse, D=2, O=1; gradlab timed at bptt.run (what probe runs), "
                  f"batch generation excluded; budget {args.budget:g} s per configuration, {args.min_reps}-"
                  f"{args.max_reps} rounds, pause {args.pause:g} s before PyTorch")
    given = argv if argv is not None else sys.argv[1:]
    header.append("command: " + " ".join(["python", "benchmarks/bench_engine.py"] + given))

    check_probe_path()
    configs, grid_note = grid(cells, dtypes, args.quick)
    out_path = args.out
    full_run = not args.quick and set(cells) >= {"lstm", "rnn"} and set(dtypes) == set(TARGET)
    if out_path is None:
        out_path = str(DEFAULT_OUT) if full_run else "-"

    for line in header + grid_note:
        print(line, file=sys.stderr)
    t_start = time.perf_counter()
    whole = OtherLoad()

    # peak memory first, while this process is still small (see rss_child)
    rss, rss_cfg = [], None
    if not args.no_rss:
        lstm64 = [c for c in configs if c[0] == "lstm" and c[1] == "float64"] or configs
        rss_cfg = max(lstm64, key=lambda c: c[2] * c[3] * c[3] * c[4])
        rss = measure_rss(*rss_cfg, have_torch, n_np)
        for line in rss_lines(rss, rss_cfg):
            print(line, file=sys.stderr)

    rows, redo = [], []
    for i, (cell, dtype, B, H, T) in enumerate(configs, 1):
        r = bench_one(cell, dtype, B, H, T, args, have_torch)
        progress(r, f"{i}/{len(configs)}", t_start, have_torch)
        if r["others"] > BUSY and args.retries > 0:
            print(f"  other processes used {r['others']:.2f} cores meanwhile: measured again at the end",
                  file=sys.stderr)
            redo.append(len(rows))
        rows.append(r)
    # configurations disturbed by other processes: wait for a quiet machine and measure them again (keep the quieter)
    wait_left = args.max_wait
    for _ in range(args.retries):
        still = []
        for idx in redo:
            if wait_left <= 0:
                break
            wait_left -= wait_quiet(min(wait_left, 120.0))
            old = rows[idx]
            r = bench_one(old["cell"], old["dtype"], old["B"], old["H"], old["T"], args, have_torch)
            progress(r, "again", t_start, have_torch)
            if r["others"] < old["others"]:
                rows[idx] = r
            if rows[idx]["others"] > BUSY:
                still.append(idx)
        redo = still
        if not redo:
            break

    busy = [r for r in rows if r["others"] > BUSY]
    verdict = (f"{len(busy)} configuration(s) still disturbed after re-measuring (other procs' CPU > {BUSY}): "
               "rerun on a quiet machine" if busy
               else f"every configuration measured while other processes used <= {BUSY} cores")
    header.append(f"wall time {time.perf_counter() - t_start:.0f} s; other processes used {whole.cores():.2f} cores on "
                  f"average over the run; {verdict}")

    print(report(rows, header, rss, rss_cfg, have_torch, args.markdown, grid_note))
    if out_path != "-":
        path = Path(out_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(report(rows, header, rss, rss_cfg, have_torch, True, grid_note) + "\n")
        tmp.replace(path)
        print(f"wrote {path}", file=sys.stderr)

    bad = [r for r in rows if have_torch and r["dtype"] == "float64" and not r["check"] <= TOL["float64"]]
    if bad:
        print(f"FAIL: gradlab and PyTorch disagree beyond {TOL['float64']:g} on {len(bad)} float64 configuration(s)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
