"""The backward pass as an animation (gradlab.animation): the frames show exactly the recorded gradients of the steps
reached, the still it leaves is the finished picture, and the GIF/MP4 read back with the promised frames, size and
timing, through export_all and the CLI too. Encoding uses real kaleido with a real Chromium, like tests/test_export."""
import io
import sys

import numpy as np
import pytest

import gradlab
from gradlab import animation, export, panels, plots
from gradlab.cli import main

CFG = gradlab.Config(seq_len=20, hidden=8, batch=4)
FRAMES = 6
STYLE = plots.Style(lecture=True)
needs_browser = pytest.mark.skipif(export.chromium() is None,
                                   reason="no Chromium for kaleido (apt-get install chromium; make test does as root)")


@pytest.fixture(scope="module")
def probes():
    return {c: gradlab.probe(CFG.replace(cell=c)) for c in ("rnn", "lstm")}


@pytest.fixture(scope="module")
def fig(probes):
    return animation.flow(probes, STYLE, frames=FRAMES)


@pytest.fixture
def few_frames(monkeypatch):
    """The panel's default frame count made small, so export_all and the CLI render a few frames only."""
    monkeypatch.setattr(animation, "FRAMES", 4)
    return 4


def _json(trace) -> dict:
    return trace.to_plotly_json()


def _same(a, b) -> bool:
    """Plotly property values equal, arrays element by element."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, list, tuple)) or isinstance(b, (np.ndarray, list, tuple)):
        return np.array_equal(np.asarray(a), np.asarray(b))
    return a == b


def test_frames_slider_and_base_is_the_last_frame(fig):
    assert len(fig.frames) == FRAMES
    steps = fig.layout.sliders[0].steps
    assert len(steps) == len(fig.frames)
    assert sorted(s.args[0][0] for s in steps) == sorted(f.name for f in fig.frames)
    assert [b.label for b in fig.layout.updatemenus[0].buttons] == ["Play", "Pause"]
    assert all(f.layout.to_plotly_json() == {} for f in fig.frames)  # light: no per-frame layout
    last = fig.frames[-1]
    for j, tr in zip(last.traces, last.data):
        base = _json(fig.data[j])
        for key, value in _json(tr).items():
            assert _same(base[key] if key != "marker" else {k: base[key][k] for k in value}, value), (j, key)


def test_each_frame_shows_the_recorded_gradients_of_the_steps_reached(probes, fig):
    """Frame k: nodes at t >= front carry the still picture's colours (the measured log10 gradient), the rest are
    hollow; the front runs from the loss step T back to the first step, and its label says where it is."""
    ref = plots.unrolled(probes, STYLE, frames=0)
    rows = animation._node_rows(ref)
    assert len(rows) == 3  # RNN h_t, LSTM h_t and c_t
    fronts = [int(f.name) for f in fig.frames]
    assert fronts[0] == CFG.seq_len and fronts[-1] == 1 and fronts == sorted(fronts, reverse=True)
    for f, t in zip(fig.frames, fronts):
        reached, pending, front = f.data[:3], f.data[3:6], f.data[6]
        for i, r, p in zip(rows, reached, pending):
            x = np.asarray(ref.data[i].x)
            np.testing.assert_array_equal(r.x, x[x >= t])
            np.testing.assert_array_equal(p.x, x[x < t])
            np.testing.assert_allclose(r.marker.color, np.asarray(ref.data[i].marker.color)[x >= t], rtol=1e-6)
            np.testing.assert_array_equal(r.customdata, np.asarray(ref.data[i].customdata)[x >= t])
        label = "backward pass complete: back to t = 1" if t == fronts[-1] else f"backward pass at t = {t}"
        assert list(front.x) == [t, t] and front.text[0] == label
    hollow = fig.data[len(ref.data)]
    assert hollow.marker.color == STYLE.paper and hollow.marker.line.color == STYLE.grey


def test_only_the_unrolled_panel_is_animated_and_its_still_drops_the_controls(probes, fig):
    figs = export.figures(probes, None, CFG, STYLE)
    assert [name for name, f in figs.items() if f.frames] == ["unrolled"]
    assert len(panels.figure("unrolled", probes).frames) > 1
    s = animation.still(fig)
    assert not s.frames and not s.layout.sliders and not s.layout.updatemenus
    assert s.layout.margin.b == fig.layout.margin.b - animation.CONTROLS
    assert all(_same(_json(a), _json(b)) for a, b in zip(s.data, fig.data))
    assert animation.still(figs["grad_vs_time"]) is figs["grad_vs_time"]


def test_encode_refuses_stills_and_odd_sizes(probes):
    with pytest.raises(ValueError, match="frames"):
        animation.encode(plots.grad_vs_time(probes), "gif")
    with pytest.raises(ValueError, match="multiples of 16"):
        animation.encode(animation.flow(probes, frames=2), "mp4", size=(1200, 675))


@pytest.mark.parametrize("missing", ["imageio", "imageio_ffmpeg"])
def test_without_imageio_the_error_is_one_line(probes, monkeypatch, capsys, missing):
    monkeypatch.setitem(sys.modules, missing, None)  # `import missing` now raises ImportError
    if missing == "imageio":
        monkeypatch.setitem(sys.modules, "imageio.v3", None)
    with pytest.raises(animation.NoEncoder) as e:
        animation.encode(animation.flow(probes, frames=2), "mp4")
    assert "pip install imageio imageio-ffmpeg" in str(e.value) and "\n" not in str(e.value)
    assert main(["export", "--seq-len", "5", "--formats", "csv,mp4", "--out", "/nonexistent/never"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pip install imageio imageio-ffmpeg" in err


def test_gif_and_mp4_are_opt_in(monkeypatch, tmp_path):
    import inspect
    assert {"gif", "mp4"} <= set(export.FORMATS) and not {"gif", "mp4"} & set(export.DEFAULT_FORMATS)
    assert inspect.signature(export.export_all).parameters["formats"].default == export.DEFAULT_FORMATS
    seen = []
    monkeypatch.setattr(export, "export_all", lambda probes, runs, cfg, formats, *a, **k: seen.append(formats) or {})
    assert main(["export", "--seq-len", "5", "--out", str(tmp_path)]) == 0
    assert seen and not {"gif", "mp4"} & set(seen[0])


@needs_browser
def test_frames_rendered_in_one_batch_come_back_in_order_as_drawn_alone(fig):
    """The frames go to kaleido's tabs all at once; each must come back in its place, the picture of its own frame."""
    from PIL import Image
    size = (320, 176)
    batch = animation.render_frames(fig, size)
    alone = [export.render_images([(spec, {"format": "png", "width": size[0], "height": size[1], "scale": 1})])[0]
             for spec in animation.stills(fig)]
    pixels = [np.asarray(Image.open(io.BytesIO(b))) for b in batch]
    assert len(batch) == FRAMES and pixels[0].shape[:2] == (176, 320)
    for a, b in zip(pixels, alone):
        np.testing.assert_array_equal(a, np.asarray(Image.open(io.BytesIO(b))))
    assert all((p != q).any() for p, q in zip(pixels, pixels[1:]))  # every frame moves the pass on


@pytest.fixture(scope="module")
def encoded(fig):
    if export.chromium() is None:
        pytest.skip("no Chromium for kaleido (apt-get install chromium; make test does as root)")
    return {fmt: animation.encode(fig, fmt, fps=10, hold=1.0) for fmt in ("gif", "mp4")}


def test_gif_frames_size_and_timing(encoded):
    from PIL import Image
    im = Image.open(io.BytesIO(encoded["gif"]))
    durations = []
    for k in range(im.n_frames):
        im.seek(k)
        durations.append(im.info["duration"])
    assert im.n_frames == FRAMES and im.size == (1280, 720) and im.info.get("loop") == 0
    assert sum(durations) / 1000 == pytest.approx(FRAMES / 10 + 1.0, rel=0.1)
    im.seek(0)
    first = np.asarray(im.convert("RGB"))
    im.seek(im.n_frames - 1)
    last = np.asarray(im.convert("RGB"))
    assert (first[5, 5] == 255).all() and (last[5, 5] == 255).all()  # the paper stays exactly white (one palette)
    assert (first != last).any(axis=-1).mean() > 0.005  # the pass visibly moves


def test_mp4_size_fps_and_frame_count(encoded):
    import imageio.v3 as iio
    meta = iio.immeta(encoded["mp4"], extension=".mp4", plugin="FFMPEG")
    assert meta["fps"] == 10 and meta["size"] == (1280, 720) and meta["codec"] == "h264"
    assert meta["pix_fmt"].startswith("yuv420p")
    frames = iio.imread(encoded["mp4"], extension=".mp4", plugin="FFMPEG", index=None)
    assert frames.shape == (FRAMES + 10, 720, 1280, 3)  # + 1 s of the finished pass at 10 fps
    diff = [np.abs(frames[-1].astype(int) - frames[k]).mean() for k in (FRAMES - 1, 0)]
    assert diff[0] < 0.5 and diff[1] > 1  # the hold repeats the last frame (H.264 is lossy), not the first


@needs_browser
def test_export_all_makes_gifs_of_the_animated_panels_only(probes, few_frames):
    from PIL import Image
    files = export.export_all(probes, None, CFG, formats=("gif",))
    gifs = [n for n in files if n.endswith(".gif")]
    assert gifs == [export.file_name("unrolled", CFG, "gif")] and "NO_IMAGES.txt" not in files
    assert Image.open(io.BytesIO(files[gifs[0]])).n_frames == few_frames
    assert export.MIME["gif"] == "image/gif" and export.MIME["mp4"] == "video/mp4"


@needs_browser
def test_cli_exports_a_gif(tmp_path, few_frames):
    out = tmp_path / "figs"
    assert main(["export", "--seq-len", "20", "--hidden", "8", "--batch", "4", "--formats", "gif",
                 "--out", str(out)]) == 0
    gifs = sorted(p.name for p in out.iterdir() if p.suffix == ".gif")
    assert gifs == ["unrolled_adding_T20_pytorch.gif"]
    assert (out / gifs[0]).read_bytes()[:6] == b"GIF89a"


def test_a_long_sequence_still_ends_at_step_1():
    """Shown at evenly spaced steps, the unrolled network keeps step 1 (and the loss step): the pass ends where it says."""
    cfg = gradlab.Config(seq_len=1000, hidden=4, batch=2)
    pr = {"rnn": gradlab.probe(cfg.replace(cell="rnn"))}
    fig = plots.unrolled(pr, STYLE)
    xs = np.asarray(fig.data[0].x)
    assert xs.min() == 1 and xs.max() == 1000
    assert int(fig.frames[-1].name) == 1
