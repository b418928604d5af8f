"""The fast paths of the figures agree with the reference.

gradlab.plots builds the probe panels as plain dicts validated once (plots.Spec). Before that change the builders went
through plotly's incremental API (make_subplots, add_trace(row=, col=), update_xaxes); what they drew, for every probe
panel over cells, styles, truncation, a copy task and a long sequence, is kept in tests/fixtures/panels_snapshot.json.gz
(the figure, and the panel as the dashboard shows it). Every panel must still come out the same, trace by trace, every
number to 1e-12 and every word exactly. When a figure changes on purpose, rewrite the snapshot with
`python tests/test_panels_speed.py --write` and read the diff of what changed. The dashboard's shortcuts are checked
too: a panel declared as not reading analysis.summary does not read it, and a figure cached by what it draws
(panels.drawn) is the figure of any record with the same digest.
"""
import base64
import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab import analysis, panels, plots
from gradlab.config import Config

SNAPSHOT = Path(__file__).resolve().parent / "fixtures" / "panels_snapshot.json.gz"

CASES = {
    "rnn+lstm": (Config(seq_len=30, hidden=8, batch=4), ("rnn", "lstm")),
    "three cells": (Config(seq_len=25, hidden=6, batch=3, init="orthogonal", init_scale=1.2), ("rnn", "lstm", "gru")),
    "truncated": (Config(seq_len=40, hidden=8, batch=4, truncate=10), ("rnn", "lstm")),
    "copy task": (Config(task="copy", seq_len=30, hidden=8, batch=4), ("lstm", "gru")),
    "exploding": (Config(seq_len=60, hidden=8, batch=4, init="gaussian", init_scale=6.0, nonlinearity="relu"),
                  ("rnn",)),
    "long (downsampled heatmaps, nodes)": (Config(seq_len=700, hidden=4, batch=2), ("rnn", "lstm")),
}
STYLES = (plots.Style(), plots.Style(lecture=True, theme="dark"))
PROBE_PANELS = [p for p in panels.PANELS if not p.training]


@pytest.fixture(scope="module", params=list(CASES))
def records(request):
    cfg, cells = CASES[request.param]
    return {c: gradlab.probe(cfg.replace(cell=c)) for c in cells}


def _decoded(v):
    """plotly's typed arrays ({"dtype", "bdata"}) as numpy arrays, so that two encodings of equal numbers compare."""
    if isinstance(v, dict):
        if set(v) >= {"dtype", "bdata"}:
            a = np.frombuffer(base64.b64decode(v["bdata"]), np.dtype(v["dtype"]))
            return a.reshape([int(d) for d in str(v["shape"]).split(",")]) if "shape" in v else a
        return {k: _decoded(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_decoded(x) for x in v]
    return v


def assert_same(a, b, path="fig"):
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(set(a) ^ set(b))} differ"
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        if a.dtype.kind in "fc":  # the engine may move a value by ~1e-14 (summation order); a figure may not
            assert np.allclose(a, b, rtol=1e-12, atol=0, equal_nan=True), f"{path}: values differ"
        else:
            assert np.array_equal(a, b), f"{path}: values differ"
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{path}: {len(a)} vs {len(b)} items"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float) and np.isnan(a):
        assert np.isnan(b), path
    else:
        assert a == b and type(a) is type(b), f"{path}: {a!r} vs {b!r}"


def _key(case: str, style: int, panel) -> str:
    return f"{case}|{style}|{panel.name}"


def _drawn(records, style, panel) -> list[str]:
    """The figure as its builder returns it, and the panel as the dashboard shows it (legends, ticks, title)."""
    return [panel.figure(records, style).to_json(), panels.figure(panel.name, records, style).to_json()]


@pytest.fixture(scope="module")
def snapshot():
    return json.loads(gzip.decompress(SNAPSHOT.read_bytes()))


@pytest.mark.parametrize("style", range(len(STYLES)), ids=["light", "lecture-dark"])
@pytest.mark.parametrize("panel", PROBE_PANELS, ids=[p.name for p in PROBE_PANELS])
def test_each_probe_panel_draws_what_the_snapshot_holds(records, panel, style, snapshot, request):
    case = request.node.callspec.params["records"]
    for fast, ref in zip(_drawn(records, STYLES[style], panel), snapshot[_key(case, style, panel)]):
        assert_same(_decoded(json.loads(fast)), _decoded(json.loads(ref)))


def test_a_panel_declared_without_summary_never_reads_it(monkeypatch):
    """The dashboard draws these while the spectra are computed on other threads: reading a summary there would
    compute it twice (correct, but the time saved would be lost)."""
    records = {c: gradlab.probe(Config(seq_len=20, hidden=6, batch=3, cell=c)) for c in ("rnn", "lstm", "gru")}

    def forbidden(p):
        raise AssertionError("analysis.summary was read")
    monkeypatch.setattr(analysis, "summary", forbidden)
    for p in PROBE_PANELS:
        if not p.summary:
            panels.figure(p.name, records, plots.Style())


def test_a_figure_cached_by_what_it_draws_is_the_figure_of_any_record_with_that_digest():
    """The spectrum draws W_hh alone: T does not change it, the init does; equal digests give equal figures."""
    base = Config(seq_len=20, hidden=6, batch=3)
    a, b, c = ({cell: gradlab.probe(cfg.replace(cell=cell)) for cell in ("rnn", "lstm")}
               for cfg in (base, base.replace(seq_len=45), base.replace(init="orthogonal")))
    for p in PROBE_PANELS:
        if p.draws is None:
            assert panels.drawn(p.name, a) is None
            continue
        assert panels.drawn(p.name, a) == panels.drawn(p.name, b) != panels.drawn(p.name, c)
        assert_same(_decoded(panels.figure(p.name, a).to_dict()), _decoded(panels.figure(p.name, b).to_dict()))
    assert panels.drawn("spectrum", {"rnn": a["rnn"]}) != panels.drawn("spectrum", a)  # the cells drawn count too


def test_magic_underscores_and_merges_spell_what_plotly_does():
    spec = plots.Spec(plots.Style(), ["a", ""], rows=1, cols=2)
    spec.axes("x", 2, title_text="t", title_font_size=9)
    spec.update(margin_t=120, legend=dict(font_color="red"))
    fig = spec.figure()
    assert fig.layout.xaxis2.title.text == "t" and fig.layout.xaxis2.title.font.size == 9
    assert fig.layout.margin.t == 120 and fig.layout.margin.l == 70  # merged into the style's margins
    assert fig.layout.legend.font.color == "red" and fig.layout.legend.font.size == round(14 * 0.8)
    assert [a.text for a in fig.layout.annotations] == ["a"]  # an empty title gets no annotation, as make_subplots


def test_the_dashboard_has_a_tab_per_panel_in_registry_order_and_draws_only_the_open_one():
    """Each tab draws its own panel, and only it; a T change redraws every panel but W_hh's spectrum, which is cached
    by what it draws."""
    import json
    from pathlib import Path

    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard.py"), default_timeout=120)
    at.run()
    assert not at.exception
    shown = panels.shown({"rnn": 1, "lstm": 1}, trained=False)
    assert [t.label for t in at.tabs] == [p.tab for p in shown] + ["Sweeps"]

    def drawn():
        out = {}
        for p in shown:
            at.session_state["panel"] = p.name
            at.run()
            assert not at.exception
            (chart,) = at.get("plotly_chart")
            out[p.name] = json.loads(chart.proto.spec)
            assert out[p.name]["layout"]["title"]["text"] == p.title
        return out
    before = drawn()
    at.slider(key="seq_len").set_value(at.slider(key="seq_len").value + 5).run()
    after = drawn()
    assert [name for name in before if before[name] == after[name]] == ["spectrum"]


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    out = {}
    for case, (cfg, cells) in CASES.items():
        recs = {c: gradlab.probe(cfg.replace(cell=c)) for c in cells}
        for i, style in enumerate(STYLES):
            for p in PROBE_PANELS:
                out[_key(case, i, p)] = _drawn(recs, style, p)
    SNAPSHOT.write_bytes(gzip.compress(json.dumps(out, sort_keys=True).encode(), 9))
    print(f"wrote {SNAPSHOT} ({SNAPSHOT.stat().st_size / 1e6:.1f} MB)")
