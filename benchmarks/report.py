"""Shared by the benchmarks: a timing table with targets, printed and written to results/NAME.md."""
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
