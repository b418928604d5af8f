"""Export timings: kaleido's browser start (once per process), then each figure per format, and the full ZIP of
"Export all" at the dashboard's defaults (probe panels only, and with the training panels).

Targets: <= 0.5 s per figure after the first, <= 10 s for the full ZIP; `export --preset all` (every scene, every
default format) under 40 s and 40 MB. Also timed: a scene's images one at a time and in one batch over kaleido's tabs
(as export_all renders them), the handout, and the animated panel as GIF and MP4.
python benchmarks/bench_export.py
"""
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import gradlab  # noqa: E402
from gradlab import export  # noqa: E402
from gradlab.scenes import BY_NAME  # noqa: E402
from report import write_table  # noqa: E402


def main():
    cfg = BY_NAME["vanishing"].config
    probes = {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}
    figs = export.figures(probes, None, cfg)
    t = time.perf_counter()
    export.render(figs["grad_vs_time"], "png")  # starts kaleido's browser: once per process
    rows = [("first figure of a process (starts kaleido's Chromium)", time.perf_counter() - t, None)]
    for fmt in ("png", "svg", "pdf", "html"):
        times = []
        for fig in figs.values():
            t = time.perf_counter()
            export.render(fig, fmt)
            times.append(time.perf_counter() - t)
        rows.append((f"one figure as {fmt.upper()} (median over the {len(figs)} panels)", statistics.median(times), 0.5))
    specs = [export.image_spec(f, fmt) for f in figs.values() for fmt in export.IMAGE_FORMATS]
    one, batch = [], []
    for _ in range(3):  # paired, alternately: the machine may be shared
        t = time.perf_counter()
        for s in specs:
            export.render_images([s])
        one.append(time.perf_counter() - t)
        t = time.perf_counter()
        export.render_images(specs)
        batch.append(time.perf_counter() - t)
    rows.append((f"{len(specs)} images (the {len(figs)} panels as PNG, SVG, PDF) one at a time (median of 3)",
                 statistics.median(one), None))
    rows.append((f"the same {len(specs)} images in one batch over kaleido's {export.TABS} tabs (median of 3)",
                 statistics.median(batch), None))
    def export_all_seconds(runs) -> float:  # median of 3: the machine may be shared
        times = []
        for _ in range(3):
            t = time.perf_counter()
            export.zip_bytes(export.export_all(probes, runs, cfg))
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    rows.append((f"Export all (ZIP) at the defaults, at initialisation: {len(figs)} panels x 5 formats (median of 3)",
                 export_all_seconds(None), 10))
    runs = gradlab.train_pair(cfg.replace(steps=100))
    n = len(export.figures(probes, runs, cfg))
    rows.append((f"Export all (ZIP) after training: {n} panels x 5 formats (median of 3)", export_all_seconds(runs), 10))
    zipped = export.zip_bytes(export.export_all(probes, None, cfg))
    rows.append((f"(size of that ZIP, MB: {len(zipped) / 2**20:.1f})", 0.0, None))
    for fmt in ("gif", "mp4"):
        t = time.perf_counter()
        export.render(figs["unrolled"], fmt)
        rows.append((f"the unrolled network's backward pass as {fmt.upper()} (30 frames, 1280x720)",
                     time.perf_counter() - t, None))
    from gradlab import cli, handout
    t = time.perf_counter()
    handout.handout()
    from gradlab.scenes import SCENES
    rows.append((f"the handout ({len(SCENES)} scenes, {sum(s.train for s in SCENES)} of them trained)",
                 time.perf_counter() - t, None))
    with tempfile.TemporaryDirectory() as out:
        t = time.perf_counter()
        cli.main(["export", "--preset", "all", "--out", out])
        elapsed = time.perf_counter() - t
        files = [p for p in Path(out).rglob("*") if p.is_file()]
        size = sum(p.stat().st_size for p in files) / 2**20
        parts = {}
        for p in files:
            parts[p.suffix.lstrip(".")] = parts.get(p.suffix.lstrip("."), 0) + p.stat().st_size / 2**20
    rows.append((f"export --preset all, every default format ({size:.1f} MB written; target 40 MB)", elapsed, 40))
    rows.append(("(of which, MB: " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))
                 + f"; PNG at {export.PNG_SCALE}x)", 0.0, None))
    write_table("export", rows, command="python benchmarks/bench_export.py")

if __name__ == "__main__":
    main()
