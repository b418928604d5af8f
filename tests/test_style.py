"""The look of every figure: 16:9, both themes readable, one legend per column."""
import re

import pytest

import gradlab
from gradlab import panels, plots
from gradlab.config import Config


def luminance(color: str) -> float:
    r, g, b = (int(color.lstrip("#")[i:i + 2], 16) / 255 for i in (0, 2, 4))
    lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in (r, g, b)]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize("theme", plots.THEMES)
def test_every_line_colour_has_3_to_1_contrast_on_its_background(theme):
    """WCAG 2.1's rule for graphics (1.4.11): lines and marks at least 3:1 against the background."""
    pal = plots.PALETTES[theme]
    lines = {**{f"cell {c}": v for c, v in plots.COLORS.items()}, "ink": pal["ink"], "grey": pal["grey"],
             "rho": pal["rho"], "sigma_max": pal["sigma_max"], "cell_path": pal["cell_path"],
             **{f"gate {n}": v for n, v in zip(plots.GATE_NAMES, pal["gates"])}}
    low = {k: round(contrast(v, pal["paper"]), 2) for k, v in lines.items() if contrast(v, pal["paper"]) < 3}
    assert not low, low


def test_one_look_per_meaning_within_a_theme():
    """No two theory curves share colour and dash; no gate shares a cell's colour."""
    for theme in plots.THEMES:
        style = plots.Style(theme=theme)
        looks = [style.theory(k) for k in plots.DASHES]
        assert len(set(looks)) == len(looks)
        assert not set(style.gates) & set(plots.COLORS.values())


def test_an_unknown_theme_is_refused_in_one_line():
    with pytest.raises(ValueError, match="theme 'sepia' is not one of light, dark"):
        plots.Style(theme="sepia")


@pytest.fixture(scope="module")
def probes():
    cfg = Config(seq_len=20, hidden=8, batch=4)
    return {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}


@pytest.mark.parametrize("style", [plots.Style(), plots.Style(lecture=True), plots.Style(True, "dark")], ids=str)
def test_every_probe_panel_is_16_to_9_in_its_theme(probes, style):
    for p in panels.shown(probes, trained=False):
        fig = panels.figure(p.name, probes, style)
        assert fig.layout.width / fig.layout.height == pytest.approx(16 / 9), p.name
        assert fig.layout.template.layout.paper_bgcolor == plots.PALETTES[style.theme]["paper"], p.name


def test_each_column_has_its_own_legend_holding_its_cells_curves(probes):
    fig = panels.figure("grad_vs_time", probes, plots.Style(lecture=True))
    by_legend = {}
    for tr in fig.data:
        by_legend.setdefault(tr.legend or "legend", set()).add(tr.xaxis)
    assert by_legend == {"legend": {"x"}, "legend2": {"x2"}}
    assert fig.layout.legend2.x > 0.5 > fig.layout.legend.x  # the LSTM's under the LSTM's plot


def test_legend_lines_fit_under_their_plot(probes):
    """Where a figure has a legend per column, each line is at most about fifty characters, so that two columns of
    them fit side by side at 16:9 (a one-plot figure's legend has the whole width)."""
    for p in panels.shown(probes, trained=False):
        fig = panels.figure(p.name, probes, plots.Style(lecture=True))
        if "legend2" not in fig.layout.to_plotly_json():
            continue
        for tr in fig.data:
            for line in (tr.name or "").split(plots.BR):
                assert len(re.sub(r"<[^>]+>", "", line)) <= 56, (p.name, line)


def test_log_axes_are_labelled_at_powers_of_ten_only_where_plotly_would_crowd_them(probes):
    """Two to eight decades: one label per power of ten (no 2s and 5s). Wider, and on axes shared with a wider one,
    plotly's own spacing stays (a label every decade there would crowd the axis instead)."""
    lyap = panels.figure("lyapunov", probes, plots.Style(lecture=True))
    assert lyap.layout.yaxis.dtick == 1
    long = {c: gradlab.probe(Config(cell=c)) for c in ("rnn", "lstm")}  # at T = 100 the RNN's spans >20 decades
    share = panels.figure("whh_share", long, plots.Style(lecture=True))
    assert all(share.layout[k].dtick is None for k in share.layout if k.startswith("yaxis"))
    short = panels.figure("whh_share", probes, plots.Style(lecture=True))  # T = 20: a few decades, shared axes alike
    assert {short.layout[k].dtick for k in short.layout if k.startswith("yaxis")} == {1}
