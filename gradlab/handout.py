"""The lecture handout: one PDF page per scene, A4 landscape, for students to take home.

Each page carries what the dashboard says over the scene, measured afresh at the scene's own Config
(`scenes.measure`): its title, its narrative with the measured numbers, each claim marked as holding or not on this
measurement, what to try next, the scene's key panel (`scene.panel`) and a footer with the Config and gradlab's
version. Nothing here computes or words anything itself: the numbers and sentences come from gradlab.scenes, the
figure from gradlab.panels, the image from gradlab.export.render (so, like every static export, it needs Chromium).
It lays out; the figures are PNG (at export.PNG_SCALE), as fpdf2 cannot draw plotly's SVG (clip paths, CSS units).

Text is set in DejaVu Sans, shipped in gradlab/data/fonts (its licence beside it) because the PDF core fonts are
Latin-1 only; nothing is downloaded. The words keep a readable size (MIN_PT at least): where they need more room,
the figure gives it up.
"""
from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Callable, Sequence

from fpdf import FPDF

from . import __version__, export, panels, plots
from .scenes import SCENES, Scene, check, facts, measure, say

PAGE = (297.0, 210.0)  # A4 landscape, mm
MARGIN = 13.0  # mm, every side
FOOTER = 9.0  # mm kept at the bottom for the footer line
GAP = 4.0  # mm between blocks
TITLE_PT = 22
TEXT_PT = (12.0, 11.5, 11.0, 10.5, 10.0)  # tried in turn until the figure keeps MIN_FIG_H mm
MIN_PT = TEXT_PT[-1]
MIN_FIG_H = 95.0  # mm: below this the words shrink first; at MIN_PT they stop and the figure shrinks instead
LABEL_PAD = 5.0  # mm between a claim's verdict and its words
MAX_ASPECT = 2.3  # the widest a figure is drawn (width / height): wider, its plots turn into strips
LEADING = 1.42  # line height / font size
MM_PER_PT = 25.4 / 72
INK, GREY, HOLDS, FAILS = (0, 0, 0), (95, 95, 95), (0, 110, 60), (176, 0, 32)
FONT = "DejaVu"
SHIPPED = ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
SYSTEM_FONTS = (  # (regular, bold) used only when the shipped font is missing (e.g. a wheel built without data files)
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/TTF/DejaVuSans.ttf", "/usr/share/fonts/TTF/DejaVuSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
     "/usr/share/fonts/truetype/liberation/LiberationSans-Bold.ttf"),
    ("/usr/share/fonts/truetype/open-sans/OpenSans-Regular.ttf", "/usr/share/fonts/truetype/open-sans/OpenSans-Bold.ttf"),
)

Progress = Callable[[int, int, str], None]  # (scenes done, scenes, what is happening now)


def font_files() -> tuple[str, str]:
    """(regular, bold) TrueType files with Greek and math symbols: the shipped DejaVu Sans, else a system font."""
    shipped = resources.files(__package__) / "data" / "fonts"
    for regular, bold in ((shipped / SHIPPED[0], shipped / SHIPPED[1]), *SYSTEM_FONTS):
        if Path(str(regular)).is_file() and Path(str(bold)).is_file():
            return str(regular), str(bold)
    raise ValueError("no Unicode font for the handout: gradlab/data/fonts/DejaVuSans.ttf is missing and none of "
                     "DejaVu Sans, Liberation Sans or Open Sans is installed (apt-get install fonts-dejavu-core)")


def handout(scenes: Sequence[Scene] = SCENES, style: plots.Style = plots.Style(lecture=True),
            progress: Progress | None = None) -> bytes:
    """The handout as PDF bytes, one page per scene in the order given. Training scenes are trained here (seconds
    to minutes); `progress(i, n, what)` reports i of n scenes done and what is being done now. Raises
    export.NoBrowser (before any measuring) when no Chromium can draw the figures."""
    if not scenes:
        raise ValueError("a handout needs at least one scene")
    export.start_browser()  # fail in a second, not after the training
    progress = progress or (lambda i, n, what: None)
    pdf = _document()
    n = len(scenes)
    for i, scene in enumerate(scenes):
        progress(i, n, f"{scene.name}: measuring")
        probes, runs = measure(scene, on_record=lambda p, i=i, scene=scene: progress(
            i, n, f"{scene.name}: training the {plots.NAMES[p.cell]}, step {p.step} of {p.steps}"))
        progress(i, n, f"{scene.name}: drawing")
        _page(pdf, scene, probes, runs, style, i + 1, n)
    progress(n, n, "done")
    return bytes(pdf.output())


def _document() -> FPDF:
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(False)  # each page is laid out to fit; a break would split a scene over two pages
    pdf.set_margins(MARGIN, MARGIN, MARGIN)
    regular, bold = font_files()
    pdf.add_font(FONT, "", regular)
    pdf.add_font(FONT, "B", bold)
    pdf.set_title("gradlab: why recurrent networks forget")
    pdf.set_creator(f"gradlab {__version__}")
    return pdf


def words(scene: Scene, probes: dict, runs: dict | None) -> dict:
    """What the page says, as the dashboard says it: the narrative, [(claim words, held)], try next."""
    f = facts(runs or probes, runs)
    return {"narrative": say(scene, f),
            "claims": [(say(scene, f, c.text), ok) for c, ok in check(scene, f)],
            "try_next": scene.try_next}


def _blocks(w: dict) -> list[tuple[str, tuple, str]]:
    """(label, label colour, text) per block of words; the narrative has no label."""
    out = [("", INK, w["narrative"])]
    out += [("✓ holds" if ok else "✗ not in this measurement", HOLDS if ok else FAILS, text) for text, ok in w["claims"]]
    if w["try_next"]:
        out.append(("Try next:", INK, w["try_next"]))
    return out


def _set(pdf: FPDF, blocks: list, pt: float, width: float, top: float, draw: bool = True) -> float:
    """Set the blocks from `top` at `pt` points, or only measure them (draw=False); returns the y below them."""
    line = pt * LEADING * MM_PER_PT
    pdf.set_font(FONT, "B", pt)
    label_w = max((pdf.get_string_width(label) for label, _, _ in blocks if label), default=0) + LABEL_PAD
    y = top
    for k, (label, colour, text) in enumerate(blocks):
        indent = label_w if label else 0
        if label and draw:
            pdf.set_font(FONT, "B", pt)
            pdf.set_text_color(*colour)
            pdf.set_xy(MARGIN, y)
            pdf.cell(indent, line, label)
        pdf.set_font(FONT, "", pt)
        pdf.set_text_color(*INK)
        pdf.set_xy(MARGIN + indent, y)
        lines = pdf.multi_cell(width - indent, line, text, align="L", dry_run=not draw, output="LINES")
        y += line * len(lines) + (GAP if k == 0 else line * 0.3)  # the narrative stands apart; the list is tight
    return y


def _page(pdf: FPDF, scene: Scene, probes: dict, runs: dict | None, style: plots.Style, i: int, n: int):
    width = PAGE[0] - 2 * MARGIN
    bottom = PAGE[1] - MARGIN - FOOTER
    pdf.add_page()
    pdf.set_text_color(*INK)
    pdf.set_font(FONT, "B", TITLE_PT)
    pdf.set_xy(MARGIN, MARGIN)
    pdf.multi_cell(width, TITLE_PT * 1.25 * MM_PER_PT, scene.title, align="L", new_x="LMARGIN", new_y="NEXT")
    top = pdf.get_y() + GAP

    blocks = _blocks(words(scene, probes, runs))
    for pt in TEXT_PT:  # the largest size that leaves the figure its room; at MIN_PT the figure takes what is left
        if bottom - _set(pdf, blocks, pt, width, top, draw=False) - GAP >= MIN_FIG_H:
            break
    fig_top = _set(pdf, blocks, pt, width, top) + GAP
    box_h = bottom - fig_top
    if box_h < MIN_FIG_H / 4:
        raise ValueError(f"scene {scene.name!r}: its words leave no room for its figure, even at {MIN_PT:g} pt")

    records = runs or probes
    fig = export.with_stamp(panels.figure(scene.panel, records, style), scene.config, style)
    # Wider than its 16:9, towards the shape of the room the words leave (the height, and so every font and legend
    # position, stays as designed: a smaller canvas made legends run into axis titles).
    w_px, h_px = fig.layout.width or style.size[0], fig.layout.height or style.size[1]
    aspect = min(max(width / box_h, w_px / h_px), MAX_ASPECT)
    fig.update_layout(width=round(h_px * aspect), height=h_px)
    h = min(box_h, width / aspect)
    png = export.render(fig, "png")
    pdf.image(io.BytesIO(png), x=MARGIN + (width - h * aspect) / 2, y=fig_top, w=h * aspect, h=h)

    pdf.set_font(FONT, "", MIN_PT)
    pdf.set_text_color(*GREY)
    pdf.set_xy(MARGIN, PAGE[1] - MARGIN - FOOTER / 2)
    pdf.cell(width * 0.8, FOOTER / 2, export.stamp_text(scene.config), align="L")
    pdf.set_xy(MARGIN + width * 0.8, PAGE[1] - MARGIN - FOOTER / 2)
    pdf.cell(width * 0.2, FOOTER / 2, f"scene {scene.name} · {i} / {n}", align="R")
