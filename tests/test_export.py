"""Exports: every panel in every format with real content checked, the data round-tripping to the records,
the ZIP reproducing its run, the CLI's presets, determinism, and the fallback without a browser.
Static images use real kaleido with a real Chromium (make test installs Debian's)."""
import io
import json
import re
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab
from gradlab import export, panels, plots

ROOT = Path(__file__).resolve().parent.parent
CFG = gradlab.Config(seq_len=40, hidden=8, batch=4, steps=30, record_every=10)
needs_browser = pytest.mark.skipif(export.chromium() is None,
                                   reason="no Chromium for kaleido (apt-get install chromium; make test does as root)")


@pytest.fixture(scope="module")
def records():
    probes = {c: gradlab.probe(CFG.replace(cell=c)) for c in ("rnn", "lstm")}
    return probes, gradlab.train_pair(CFG)


@pytest.fixture(scope="module")
def figs(records):
    return export.figures(*records, CFG, plots.Style(lecture=True))


def test_every_panel_is_built_with_its_stamp(figs):
    assert set(figs) == set(panels.BY_NAME)
    for fig in figs.values():
        assert any("T=40, H=8" in (a.text or "") for a in fig.layout.annotations)
    bare = export.figures(*export_records(), CFG, stamp=False)
    assert not any("gradlab 0" in (a.text or "") for f in bare.values() for a in f.layout.annotations)


def export_records():
    return {c: gradlab.probe(CFG.replace(cell=c)) for c in ("rnn", "lstm")}, None


@needs_browser
@pytest.mark.parametrize("panel", list(panels.BY_NAME))
def test_png_svg_pdf(figs, panel):
    fig = figs[panel]
    png = export.render(fig, "png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", png[16:24])
    assert (w, h) == (fig.layout.width * export.PNG_SCALE, fig.layout.height * export.PNG_SCALE) and w * 9 == h * 16
    svg = export.render(fig, "svg").decode()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert panels.BY_NAME[panel].title.split(':')[0] in svg  # the title is real text in the vector file
    pdf = export.render(fig, "pdf")
    assert pdf.startswith(b"%PDF-") and pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page/") + \
        pdf.count(b"/Type /Page>") + pdf.count(b"/Type/Page") >= 1


def _same_drawing(data: bytes, fmt: str) -> bytes:
    """What two renders of one figure share: plotly.js names each plot, trace and colour bar with a random 6-hex id
    (SVG), and Chromium stamps a PDF with the time; everything else is deterministic."""
    if fmt == "svg":
        ids = dict.fromkeys(re.findall(rb'(?:defs-|\btrace|\bcb)([0-9a-f]{6})\b', data))
        for i, uid in enumerate(ids):
            data = data.replace(uid, b"uid%02d" % i)
        return data
    if fmt == "pdf":
        return re.sub(rb"/(CreationDate|ModDate) \(D:[^)]*\)", b"", data)
    return data


@needs_browser
def test_a_batch_over_several_tabs_draws_what_one_render_at_a_time_draws(figs):
    """export_all renders all its images in one batch that kaleido spreads over its tabs: every image must be the
    one a render on its own gives (PNG: the same pixels; SVG and PDF: the same bytes, bar random ids and dates)."""
    from PIL import Image
    names = ["grad_vs_time", "gates", "spectrum", "unrolled", "learning"]
    specs = [export.image_spec(figs[n], fmt) for n in names for fmt in export.IMAGE_FORMATS]
    assert export.TABS >= 2
    batch = export.render_images(specs)
    alone = [export.render_images([s])[0] for s in specs]
    for (_, opts), a, b in zip(specs, batch, alone):
        if opts["format"] == "png":
            np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(a))), np.asarray(Image.open(io.BytesIO(b))))
        else:
            assert _same_drawing(a, opts["format"]) == _same_drawing(b, opts["format"]), opts
    assert len({_same_drawing(a, o["format"]) for (_, o), a in zip(specs, batch)}) == len(specs)  # all different
    files = export.export_all(*export_records(), CFG, formats=export.IMAGE_FORMATS)
    one = export.render(export.figures(*export_records(), CFG)["grad_vs_time"], "svg")
    assert _same_drawing(files[export.file_name("grad_vs_time", CFG, "svg")], "svg") == _same_drawing(one, "svg")

@pytest.mark.parametrize("panel", list(panels.BY_NAME))
def test_html_is_standalone_and_offline(figs, panel):
    html = export.render(figs[panel], "html").decode()
    assert "<script src=\"http" not in html and "cdn" not in html.split("<body>")[1][:2000].lower()
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js is embedded
    assert '"sendChartToCloud"' in html and '"displaylogo":false' in html.replace(" ", "")


def test_csv_round_trips_to_the_records(records):
    probes, runs = records
    tabs = export.tables(probes, runs)
    assert set(tabs) == set(panels.BY_NAME)
    back = {k: pd.read_csv(io.BytesIO(export.csv_bytes(v))) for k, v in tabs.items()}
    g = back["grad_vs_time"]
    for c in ("rnn", "lstm"):
        got = g[(g.cell == c) & (g.quantity == "grad_h_norm")].sort_values("t").value.to_numpy()
        np.testing.assert_array_equal(got, runs[c].grad_h_norm[-1])  # bit for bit
    h = back["grad_over_training"]
    got = h[h.cell == "lstm"].pivot(index="record_step", columns="t", values="grad_h_norm").to_numpy()
    np.testing.assert_array_equal(got, runs["lstm"].grad_h_norm)
    lr = back["learning"]
    np.testing.assert_array_equal(lr[lr.cell == "rnn"].loss.to_numpy(), runs["rnn"].loss)
    gt = back["gates"]
    f = gt[gt.gate == "f"].pivot(index="t", columns="unit", values="value").to_numpy()
    np.testing.assert_array_equal(f, runs["lstm"].latest.gates[:, 0, 8:16])
    # a finished run's latest state is its last record, bit for bit (the record model's promise)
    np.testing.assert_array_equal(runs["lstm"].latest.gates[:, :4], runs["lstm"].gates_last)
    np.testing.assert_array_equal(runs["rnn"].latest.grad_h_norm, runs["rnn"].grad_h_norm[-1])
    sp = back["spectrum"]
    sv = sp[(sp.cell == "rnn") & (sp.kind == "singular_value")].real.to_numpy()
    np.testing.assert_allclose(sv, runs["rnn"].singvals[-1][0], rtol=1e-14)


def test_zip_reproduces_the_run(records, tmp_path):
    probes, runs = records
    files = export.export_all(probes, runs, CFG, formats=("html", "csv"), url="http://localhost:8501/?seq_len=40")
    z = zipfile.ZipFile(io.BytesIO(export.zip_bytes(files)))
    names = set(z.namelist())
    assert {"config.json", "url.txt", "bundles/probe_rnn.npz", "bundles/run_lstm.npz"} <= names
    assert {f"data/{export.file_name(p, CFG, 'csv')}" for p in panels.BY_NAME} <= names
    assert {export.file_name(p, CFG, "html") for p in panels.BY_NAME} <= names
    cfg = gradlab.Config.from_dict(json.loads(z.read("config.json")))
    assert cfg == CFG
    (tmp_path / "r.npz").write_bytes(z.read("bundles/run_rnn.npz"))
    again = gradlab.train(cfg.replace(cell="rnn"))
    np.testing.assert_array_equal(gradlab.load(tmp_path / "r.npz").loss, again.loss)
    (tmp_path / "p.npz").write_bytes(z.read("bundles/probe_lstm.npz"))
    assert max(gradlab.verify(tmp_path / "p.npz").values()) == 0.0


def test_without_a_browser_html_csv_and_zip_still_work(records, monkeypatch):
    monkeypatch.setattr(export, "chromium", lambda: None)
    monkeypatch.setattr(export, "_browser", None)
    with pytest.raises(export.NoBrowser, match="apt-get install chromium"):
        export.render(panels.figure("grad_vs_time", records[0]), "svg")
    files = export.export_all(records[0], None, CFG, formats=("svg", "html", "csv"))
    assert "NO_IMAGES.txt" in files and not any(n.endswith(".svg") for n in files)
    assert any(n.endswith(".html") for n in files) and any(n.endswith(".csv") for n in files)


def test_file_names_are_sanitised_and_writes_stay_inside(tmp_path):
    assert export.file_name("grad_vs_time", CFG, "svg") == "grad_vs_time_adding_T40_pytorch.svg"
    with pytest.raises(ValueError, match="outside"):
        export.write_files({"../evil.txt": b"x"}, str(tmp_path / "out"))
    assert not (tmp_path / "evil.txt").exists()


def test_cli_preset_is_deterministic(cli, tmp_path):
    """Once here and once in a new interpreter (another hash seed, so no set or dict order can leak into a file)."""
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["export", "--preset", "vanishing", "--formats", "csv,html", "--bundles", "--out"]
    r = cli(*args, a)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "gradlab", *args, str(b)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    data = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix != ".html")
    assert Path("config.json") in data and Path("bundles/probe_rnn.npz") in data
    assert any(str(p).startswith("data/grad_vs_time_adding_T100_pytorch") for p in data)
    for p in data:
        assert (a / p).read_bytes() == (b / p).read_bytes(), p


@needs_browser
def test_cli_exports_every_format_from_flags(cli, tmp_path):
    r = cli("export", "--cell", "lstm", "--seq-len", "30", "--hidden", "8", "--out", tmp_path, "--formats", "svg,png")
    assert r.returncode == 0, r.stderr
    files = {p.name for p in tmp_path.iterdir()}
    assert "grad_vs_time_adding_T30_pytorch.svg" in files and "spectrum_adding_T30_pytorch.png" in files


def test_cli_export_errors_are_one_line(cli):
    for args, words in ((["--preset", "nope"], "--preset 'nope'"), (["--formats", "bmp"], "--formats 'bmp'")):
        r = cli("export", *args)
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_csv_theory_columns_are_the_plotted_curves(records):
    """Every theory curve in the figure's legend is in the CSV, with the same numbers, for both cells."""
    probes, _ = records
    fig = plots.grad_vs_time(probes)
    tab = export.tables(probes)["grad_vs_time"]
    checked = 0
    for c, p in probes.items():
        names = plots.theory_names(p, gradlab.analysis.summary(p))
        assert "theory_lyapunov" in names and ("theory_rho" in names if c == "rnn" else "theory_cell_path" in names)
        for q, name in names.items():
            trace = next(t for t in fig.data if t.name == name)
            col = tab[(tab.cell == c) & (tab.quantity == q)].sort_values("t").value.to_numpy()
            with np.errstate(invalid="ignore"):
                col = np.where(col > 0, col, np.nan)
            np.testing.assert_allclose(np.asarray(trace.y, dtype=float), col, rtol=1e-15, equal_nan=True)
            checked += 1
    assert checked >= 5


def test_csv_spells_every_non_finite_value_and_reads_it_back():
    df = pd.DataFrame({"value": [1.0, np.nan, np.inf, -np.inf]})
    text = export.csv_bytes(df).decode()
    assert text.splitlines()[1:] == ["1.0", "nan", "inf", "-inf"]
    back = pd.read_csv(io.BytesIO(export.csv_bytes(df))).value.to_numpy()
    np.testing.assert_array_equal(back, df.value.to_numpy())


def test_ctrl_c_during_a_training_export_is_one_line(tmp_path):
    import signal
    import time
    p = subprocess.Popen([sys.executable, "-m", "gradlab", "export", "--train", "--steps", "100000", "--formats",
                          "csv", "--out", str(tmp_path)], cwd=ROOT, stderr=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    time.sleep(4)  # well inside the training
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "Traceback" not in err and "gradlab: interrupted" in err
    assert not [f for f in tmp_path.rglob("*") if f.name.endswith(".part")]


def test_an_export_folder_shares_one_plotly_js(records):
    """Each HTML file loads plotly.min.js from beside it (one 4.6 MB copy per export, still offline)."""
    files = export.export_all(records[0], None, CFG, formats=("html",))
    html = [n for n in files if n.endswith(".html")]
    assert len(html) >= 8 and files[export.PLOTLY_JS] == export.plotly_js()
    for n in html:
        text = files[n].decode()
        assert f'src="{export.PLOTLY_JS}"></script>' in text and len(text) < 1_000_000, n
    embedded = export.export_all(records[0], None, CFG, formats=("html",), plotlyjs=True)
    assert export.PLOTLY_JS not in embedded and len(embedded[html[0]]) > 3_000_000


def test_cli_preset_all_writes_one_plotly_js_for_every_folder(tmp_path):
    from gradlab import cli
    assert cli.main(["export", "--preset", "all", "--out", str(tmp_path), "--formats", "html"]) == 0
    copies = list(tmp_path.rglob(export.PLOTLY_JS))
    assert copies == [tmp_path / export.PLOTLY_JS]
    pages = list(tmp_path.rglob("*.html"))
    assert len(pages) >= 6 * 8
    for page in pages:
        assert f'src="../{export.PLOTLY_JS}"></script>' in page.read_text(), page
    total = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert total < 40 * 2**20, total
