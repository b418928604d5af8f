"""The benchmarks' reports: `write_table`, a timing table with targets printed and written to results/NAME.md (for
the benchmarks of a few timings), and `engine_report`, the engine benchmark's tables of a grid of configurations."""
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def write_table(name: str, rows: list[tuple[str, float, float | None]], unit: str = "s", command: str = "") -> str:
    """rows: (what, measured seconds, target seconds or None). Returns the markdown it wrote."""
    scale, fmt = (1000, "{:.0f} ms") if unit == "ms" else (1, "{:.2f} s")
    lines = ["| what | time | target | met |", "|---|---:|---:|---|"]
    for what, t, target in rows:
        tgt = "" if target is None else fmt.format(target * scale)
        met = "" if target is None else ("yes" if t <= target else "no")
        lines.append(f"| {what} | {fmt.format(t * scale)} | {tgt} | {met} |")
    text = "\n".join(lines) + f"\n\nCommand: `{command or 'python benchmarks/' + name + '.py'}`\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(text)
    return text


# ---- the engine benchmark's report (bench_engine.py): one row per configuration --------------------------------------

def fmt_ms(v):
    return "-" if v is None else (f"{v:.1f}" if v >= 10 else f"{v:.2f}")


def sci(v: float) -> str:
    """1e-10 -> "1e-10", 1e-4 -> "1e-4"."""
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def table(headers, rows, markdown):
    """A markdown table, or columns aligned for a terminal (the first two left, the rest right)."""
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
                 f"{r['check']:.0e}" + ("" if r["agrees"] else " FAIL"), str(r["reps"]),
                 f"{r['spread']:.2f}", f"{r['others']:.2f}"] for r in rows]
    else:
        headers = ["cell", "dtype", "B", "H", "T", "gradlab ms", "gradlab GFLOP/s", "ms/step", "reps", "max/min",
                   "other procs' CPU (cores)"]
        body = [[r["cell"], r["dtype"], str(r["B"]), str(r["H"]), str(r["T"]), fmt_ms(r["gradlab_ms"]),
                 f"{r['gflops']:.1f}", f"{r['gradlab_ms'] / r['T']:.3f}", str(r["reps"]), f"{r['spread']:.2f}",
                 f"{r['others']:.2f}"] for r in rows]
    return table(headers, body, markdown)


def linear_table(rows, have_torch, markdown, anchor):
    """ms per step at each T, for every (cell, dtype, B, H) with more than one T; spread = max/min of gradlab's.
    anchor: the (B, H) whose row is marked."""
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
        cells.append(f"{max(per.values()) / min(per.values()):.2f}" + (" <- anchor" if (B, H) == anchor else ""))
        if have_torch:
            cells += [f"{byT[T]['fused_ms'] / T:.3f}" if T in byT else "-" for T in Ts]
        body.append(cells)
    return table(headers, body, markdown) if body else ""


def summary(rows, have_torch) -> list[str]:
    """One line per (cell, dtype): on how many configurations the target was met, the range of ratios."""
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
            out.append(f"{cell} {dtype}: target <= {rs[0]['target']:g}x fused met on {len(met)}/{len(rs)} "
                       f"configurations; ratio {best['ratio']:.2f} (B={best['B']} H={best['H']} T={best['T']}) to "
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


def engine_report(rows, header, rss, rss_cfg, have_torch, markdown, grid_note, targets, tol, anchor) -> str:
    """The whole engine report, as text or markdown (results/engine.md). targets and tol: {dtype: ratio} and
    {dtype: relative error} the rows were judged by; anchor: the (B, H) of the linear-in-T check."""
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
        p.append(f"ratio = median over rounds of gradlab/fused measured back to back; target: gradlab <= "
                 f"{targets['float64']:g}x fused PyTorch in float64, <= {targets['float32']:g}x in float32. GFLOP/s = "
                 "matmul flops of forward + backward "
                 "(T (6BGH + 4BGD + 6BHO), G = 4H LSTM / H RNN, D = 2, O = 1) / median time, for both sides (gradlab's "
                 "recording also forms every step's dW_hh term for its norm, another 2BGH a step, not credited). "
                 "max rel err: loss, dL/dW_hh and per-step ||dL/dh_t|| against PyTorch (tolerance "
                 f"{sci(tol['float64'])} float64, {sci(tol['float32'])} float32). gradlab max/min: "
                 "slowest over fastest round (2-thread BLAS is bimodal on these VMs). other procs' CPU: cores used by "
                 "other processes while the row ran (should be ~0).\n")
        s = summary(rows, have_torch)
        if s:
            p.append("## Targets\n" if markdown else "Targets:")
            p += [f"- {line}" for line in s]
            p.append("")
    lin = linear_table(rows, have_torch, markdown, anchor)
    if lin:
        p.append("## Linear in T: ms per step\n" if markdown else "Linear in T (ms per step; spread = max/min over T):")
        p.append(lin)
        p.append("")
    if rss:
        p.append("## Memory\n" if markdown else "Memory:")
        p += rss_lines(rss, rss_cfg)
        p.append("")
    return "\n".join(p)
