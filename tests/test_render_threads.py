"""Downloads are rendered in Streamlit's threads, several at once when a room of students clicks: each must get the
panel and the format it asked for. (Unguarded, kaleido's shared browser handed back other panels' figures and
other formats: 6 of 8 SVGs wrong with two threads.)"""
import threading

import pytest

import gradlab
from gradlab import export, panels

needs_browser = pytest.mark.skipif(export.chromium() is None,
                                   reason="no Chromium for kaleido (apt-get install chromium; make test does as root)")


def kind(data: bytes) -> str:
    if data.startswith(b"\x89PNG"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if b"<svg" in data[:400]:
        return "svg"
    return "?"


@needs_browser
def test_concurrent_renders_each_get_their_own_figure_and_format():
    cfg = gradlab.Config(seq_len=30, hidden=8, batch=4)
    probes = {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}
    names = ["grad_vs_time", "lyapunov", "spectrum", "unrolled"]
    figs = {n: panels.figure(n, probes) for n in names}
    for n, f in figs.items():  # a marker only this panel's figure carries, to recognise it in its SVG
        f.update_layout(title=dict(text=f"panel-{n}-marker"))
    export.start_browser()
    jobs = [(n, fmt) for _ in range(2) for n in names for fmt in ("svg", "png", "pdf")]
    results: dict[int, bytes] = {}
    errors: list[BaseException] = []

    def work(i, n, fmt):
        try:
            results[i] = export.render(figs[n], fmt)
        except BaseException as e:  # noqa: BLE001 (reported below)
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i, n, fmt)) for i, (n, fmt) in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    wrong = [(n, fmt, kind(results[i])) for i, (n, fmt) in enumerate(jobs) if kind(results[i]) != fmt]
    assert not wrong, wrong
    for i, (n, fmt) in enumerate(jobs):
        if fmt == "svg":
            svg = results[i].decode()
            assert f"panel-{n}-marker" in svg and all(f"panel-{m}-marker" not in svg for m in names if m != n)
