"""The lecture handout: one PDF page per scene, each with its title, its narrative and claims worded as the dashboard
words them (read back from the PDF with pypdf), its figure, and the CLI that writes it. The probe scenes keep the
tests fast; the full tour, with its training scene, is marked slow. Figures use a real Chromium, as in test_export."""
import dataclasses
import io
from pathlib import Path

import pypdf
import pytest

from gradlab import export, handout, scenes
from gradlab.cli import main

needs_browser = pytest.mark.skipif(export.chromium() is None,
                                   reason="no Chromium for kaleido (apt-get install chromium; make test does as root)")
PROBE_SCENES = [s for s in scenes.SCENES if not s.train]
VERDICTS = ("✓ holds", "✗ not in this measurement")


def pages(pdf: bytes) -> list[str]:
    """Each page's text with whitespace collapsed (the PDF breaks lines where the page is full)."""
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return [" ".join(p.extract_text().split()) for p in reader.pages]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def probe_handout():
    seen = []
    pdf = handout.handout(PROBE_SCENES, progress=lambda i, n, what: seen.append((i, n, what)))
    return pdf, seen


@needs_browser
def test_one_page_per_scene_with_its_words_as_the_dashboard_says_them(probe_handout):
    pdf, _ = probe_handout
    assert pdf.startswith(b"%PDF")
    text = pages(pdf)
    assert len(text) == len(PROBE_SCENES)
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    for scene, page, raw in zip(PROBE_SCENES, text, reader.pages):
        w = handout.words(scene, *scenes.measure(scene))
        assert flat(scene.title) in page
        assert " ".join(w["narrative"].split()[:8]) in page
        assert flat(w["narrative"]).split()[-1] in page  # nothing cut at the end either
        for claim, held in w["claims"]:
            assert f"{VERDICTS[not held]} {flat(claim)}" in page
        assert sum(page.count(v) for v in VERDICTS) == len(w["claims"]) > 0
        assert f"Try next: {' '.join(scene.try_next.split()[:5])}" in page
        assert export.stamp_text(scene.config) in page  # the footer: Config and gradlab version
        assert len(raw.images) == 1  # the scene's key panel
        assert float(raw.mediabox.width) > float(raw.mediabox.height)  # landscape


@needs_browser
def test_progress_names_each_scene_and_ends_done(probe_handout):
    _, seen = probe_handout
    n = len(PROBE_SCENES)
    assert {what.split(":")[0] for _, _, what in seen[:-1]} == {s.name for s in PROBE_SCENES}
    assert all(total == n for _, total, _ in seen) and seen[-1] == (n, n, "done")


@needs_browser
def test_unicode_text_and_long_words_fit_on_one_page():
    """A narrative three times as long keeps its words whole (the figure shrinks); Greek and math symbols survive."""
    base = scenes.BY_NAME["exploding"]
    long = dataclasses.replace(base, title="ρ ≈ σ · 1 – 2", narrative=" ".join([base.narrative] * 3) + " The end.")
    (page,) = pages(handout.handout([long]))
    assert "ρ ≈ σ · 1 – 2" in page
    assert page.count("A tanh RNN whose recurrent weights") == 3 and "The end." in page


@needs_browser
def test_words_that_cannot_fit_are_an_error_not_a_cut_page():
    base = scenes.BY_NAME["vanishing"]
    with pytest.raises(ValueError, match="vanishing.*no room"):
        handout.handout([dataclasses.replace(base, narrative=" ".join([base.narrative] * 20))])


def test_the_shipped_font_is_found():
    regular, bold = handout.font_files()
    shipped = Path(handout.__file__).parent / "data" / "fonts"
    assert Path(regular) == shipped / "DejaVuSans.ttf" and Path(bold) == shipped / "DejaVuSans-Bold.ttf"
    assert (shipped / "LICENSE").is_file()


@needs_browser
def test_cli_writes_the_handout(tmp_path, capsys):
    out = tmp_path / "h.pdf"
    assert main(["export", "--handout", str(out), "--preset", "vanishing"]) == 0
    (page,) = pages(out.read_bytes())
    assert scenes.BY_NAME["vanishing"].title in page
    assert capsys.readouterr().out.splitlines() == [f"wrote {out}: 1 page, {out.stat().st_size / 1e6:.1f} MB"]


@pytest.mark.parametrize("args, says", [
    (["--handout", "{tmp}/missing/h.pdf"], "existing folder"),
    (["--handout", "{tmp}"], "existing folder"),
    (["--handout", "{tmp}/h.pdf", "--seq-len", "20"], "own settings"),
    (["--handout", "{tmp}/h.pdf", "--preset", "nope"], "is not one of"),
])
def test_cli_refuses_in_one_line(tmp_path, capsys, args, says):
    assert main(["export", *(a.format(tmp=tmp_path) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err and "Traceback" not in err
    assert not (tmp_path / "h.pdf").exists()


def test_cli_without_chromium_says_so_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "chromium", lambda: None)
    monkeypatch.setattr(export, "_browser", None)
    assert main(["export", "--handout", str(tmp_path / "h.pdf")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--handout" in err and "apt-get install chromium" in err
    assert not (tmp_path / "h.pdf").exists()


@pytest.mark.slow
@needs_browser
def test_the_whole_tour_including_training():
    text = pages(handout.handout())
    assert len(text) == len(scenes.SCENES)
    for scene, page in zip(scenes.SCENES, text):
        assert flat(scene.title) in page and "Try next:" in page
    learns = scenes.BY_NAME["lstm-learns"]
    w = handout.words(learns, *scenes.measure(learns))
    assert "?" not in w["narrative"]  # every number filled from the trained runs
    assert " ".join(w["narrative"].split()[:8]) in text[scenes.SCENES.index(learns)]
