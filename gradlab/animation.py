"""The backward pass as an animation: the unrolled network lighting up from the loss at step T back to step 1, as
plotly frames (dashboard, HTML) and as GIF or MP4 (slides).

`animate(fig, style, frames)` turns a still picture whose node rows are marker traces over t, coloured by the
gradient (plots.unrolled's), into a plotly animation with a play button and a step slider. Its base data is the last
frame, the picture itself, so a still export shows the finished pass; `still(fig)` drops the controls for it.
`flow(records, ...)` is the unrolled panel animated. `encode(fig, "gif" | "mp4")` renders every frame with kaleido
(gradlab.export's browser, its tabs in parallel) and encodes them with imageio, which is imported only there.

Nothing here measures or interpolates: a frame shows the gradients the probe recorded and hides the steps the pass
has not reached yet. That is exact for BPTT: the total dL/dh_t is final once the pass has left step t.
"""
from __future__ import annotations

import copy

import numpy as np
import plotly.graph_objects as go

from . import plots

FRAMES = 30  # 3 s at 10 fps: long enough to follow on a slide, short enough to loop
FPS = 10
SIZE = (1280, 720)  # GIF/MP4 pixels: 16:9, both multiples of 16 (H.264's macroblock: no rescaling by ffmpeg)
FORMATS = ("gif", "mp4")
CONTROLS = 80  # px added under the plot for the play button and the slider; still() takes them out again
NO_ENCODER_HINT = "GIF/MP4 export needs imageio and imageio-ffmpeg: pip install imageio imageio-ffmpeg"


class NoEncoder(RuntimeError):
    pass


# ---- the animation ----------------------------------------------------------------------------------------------

def flow(records: dict, style: plots.Style = plots.Style(), frames: int = FRAMES) -> go.Figure:
    """The unrolled network (plots.unrolled: h_t, and c_t for the LSTM, per cell) with the backward pass replayed in
    `frames` steps from t = T back to the first step shown."""
    return plots.unrolled(records, style, frames=frames)


def _node_rows(fig: go.Figure) -> list[int]:
    """Indices of the traces drawing nodes: markers over t coloured by a colour scale (the gradient)."""
    return [i for i, tr in enumerate(fig.data)
            if tr.type == "scatter" and tr.mode == "markers" and tr.marker.colorscale is not None]


def animate(fig: go.Figure, style: plots.Style = plots.Style(), frames: int = FRAMES, fps: int = FPS) -> go.Figure:
    """A copy of `fig` as the backward pass reaching its nodes: frame k has reached the k-th of `frames` evenly spaced
    stops from the last step shown back to the first (fewer frames when fewer steps are shown); nodes not reached yet
    are hollow grey circles; Play shows `fps` frames a second. Frames carry only the traces that change, never
    layout (the front's caption is a text trace, not an annotation, so exports may add annotations freely)."""
    rows = _node_rows(fig)
    if not rows or frames < 1:
        return fig
    fig = go.Figure(fig)
    # compact dtypes keep the frames light (plotly sends typed arrays); customdata keeps float64 for the hover, where a
    # gradient of 1e-60 must not read 0
    xs = {i: np.asarray(fig.data[i].x).astype(np.int32) for i in rows}
    ys = {i: np.asarray(fig.data[i].y, dtype=np.float32) for i in rows}
    zs = {i: np.asarray(fig.data[i].marker.color, dtype=np.float32) for i in rows}
    cds = {i: np.asarray(fig.data[i].customdata, dtype=float) for i in rows}
    stops = np.unique(np.concatenate(list(xs.values())))[::-1]  # the steps shown, from the loss back
    n = min(frames, len(stops))
    # frame 0 has reached the loss step only, the last one every step; evenly spaced in between
    fronts = [int(stops[j]) for j in np.linspace(0, len(stops) - 1, n).round().astype(int)]
    y_all = np.concatenate(list(ys.values()))
    top, bottom = y_all.min() - 0.55, y_all.max() + 0.45  # the front's extent (the y axis runs top to bottom)

    pending = len(fig.data)
    for i in rows:  # the hollow nodes: paper-filled, so the row's line does not show through
        fig.add_trace(go.Scatter(x=[], y=[], mode="markers", showlegend=False,
                                 marker=dict(size=fig.data[i].marker.size, color=style.paper,
                                             line=dict(color=style.grey, width=2)),
                                 hovertemplate="t=%{x}: not reached yet<extra></extra>"))
    front = len(fig.data)
    fig.add_trace(go.Scatter(x=[], y=[], mode="lines+text", showlegend=False, hoverinfo="skip", cliponaxis=False,
                             line=dict(color=style.ink, width=style.line * 0.6, dash="dot"),
                             textfont=dict(color=style.ink, size=style.font)))
    traces = rows + list(range(pending, front + 1))
    mid = (stops[0] + stops[-1]) / 2

    def state(k: int) -> list[dict]:
        t = fronts[k]
        done = k == n - 1
        out = []
        for i in rows:
            m = xs[i] >= t
            out.append(dict(type="scatter", x=xs[i][m], y=ys[i][m], marker=dict(color=zs[i][m]), customdata=cds[i][m]))
        for i in rows:
            m = xs[i] >= t
            out.append(dict(type="scatter", x=xs[i][~m], y=ys[i][~m]))
        label = f"backward pass complete: back to t = {t}" if done else f"backward pass at t = {t}"
        out.append(dict(type="scatter", x=[t, t], y=[top, bottom], text=[label, ""],
                        textposition="top left" if t > mid else "top right"))
        return out

    # Frames of plain dicts, validated once as the frames are set (go.Scatter per trace, then go.Frame, validated every
    # trace twice: most of a dashboard redraw at T = 100).
    fig.frames = [dict(name=str(t), data=state(k), traces=traces) for k, t in enumerate(fronts)]
    for j, tr in zip(traces, fig.frames[-1].data):  # the base is the last frame: stills show the finished pass
        fig.data[j].update(tr)

    pad = max(1.0, 0.02 * (stops[0] - stops[-1]))
    fig.update_xaxes(range=[stops[-1] - pad, stops[0] + pad], autorange=False, zeroline=False)  # fixed: no rescaling
    fig.update_yaxes(range=[bottom + 0.15, top - 0.45], autorange=False)  # reversed, room for the front's label
    ms = round(1000 / fps)
    play = dict(label="Play", method="animate",  # from t = T each time; mode "immediate" here threw in plotly.js
                args=[None, dict(frame=dict(duration=ms, redraw=True), transition=dict(duration=0), fromcurrent=False)])
    pause = dict(label="Pause", method="animate",
                 args=[[None], dict(frame=dict(duration=0, redraw=False), transition=dict(duration=0),
                                    mode="immediate")])
    look = dict(font=dict(color=style.ink, size=style.font), bgcolor=style.paper, bordercolor=style.grey)
    # the slider runs along the time axis, earliest step on the left: its knob moves leftwards with the pass
    steps = [dict(label=f.name, method="animate",
                  args=[[f.name], dict(frame=dict(duration=0, redraw=True), transition=dict(duration=0),
                                       mode="immediate")]) for f in fig.frames[::-1]]
    fig.update_layout(
        margin=dict(b=(fig.layout.margin.b or 80) + CONTROLS),
        updatemenus=[dict(type="buttons", direction="left", buttons=[play, pause], showactive=False, x=0, y=0,
                          xanchor="right", yanchor="top", pad=dict(t=CONTROLS - 10, r=10), **look)],
        sliders=[dict(active=0, steps=steps, x=0, len=1, y=0, yanchor="top", pad=dict(t=CONTROLS - 20),
                      currentvalue=dict(visible=False), tickcolor=style.grey, activebgcolor=style.grey,
                      transition=dict(duration=0), **look)])
    return fig


def still(fig: go.Figure) -> go.Figure:
    """An animated figure as a still image shows it: its base data (the last frame), without frames or controls."""
    if not fig.frames:
        return fig
    fig = go.Figure(fig)
    controls = bool(fig.layout.sliders)
    fig.frames, fig.layout.updatemenus, fig.layout.sliders = (), (), ()
    if controls and fig.layout.margin.b:
        fig.update_layout(margin_b=max(0, fig.layout.margin.b - CONTROLS))
    return fig


def stills(fig: go.Figure) -> list[dict]:
    """Every frame as a still figure (dicts for kaleido): the base with the frame's traces merged in, as plotly.js
    merges them when it plays (objects key by key, arrays replaced whole)."""
    base = still(fig).to_plotly_json()
    out = []
    for f in fig.frames:
        spec = {**base, "data": list(base["data"])}
        for j, tr in zip(f.traces, f.data):
            spec["data"][j] = copy.deepcopy(base["data"][j])
            _merge(spec["data"][j], tr.to_plotly_json())
        out.append(spec)
    return out


def _merge(into: dict, update: dict) -> None:
    for key, v in update.items():
        if isinstance(v, dict) and isinstance(into.get(key), dict):
            _merge(into[key], v)
        else:
            into[key] = v


# ---- GIF and MP4 ------------------------------------------------------------------------------------------------

def encoder(fmt: str):
    """imageio's v3 API, checked before any rendering; one line naming the fix when it (or its ffmpeg) is missing."""
    try:
        import imageio.v3 as iio
        if fmt == "mp4":
            import imageio_ffmpeg  # noqa: F401  (the FFMPEG plugin's binary)
    except ImportError:
        raise NoEncoder(NO_ENCODER_HINT) from None
    return iio


def render_frames(fig: go.Figure, size: tuple[int, int] = SIZE) -> list[bytes]:
    """Every frame as PNG bytes at `size` pixels, in order, in one batch over kaleido's tabs (gradlab.export).
    Raises export.NoBrowser without a Chromium."""
    from . import export
    w, h = size
    return export.render_images([(spec, {"format": "png", "width": w, "height": h, "scale": 1})
                                 for spec in stills(fig)])


def _one_palette(images: np.ndarray) -> tuple[np.ndarray, bytes]:
    """(F, H, W, 3) frames as (F, H, W) indices into one palette of 256 colours (768 bytes): no palette flicker between
    frames, a smooth colour bar, and the GIF writer has nothing left to quantize. The frames are quantized as one tall
    image, and median cut's box averages are put back to the exact colour for the 16 commonest colours (paper, ink,
    grey, the cells'): averaged, the white paper came out grey-blue."""
    from PIL import Image
    F, H, W, _ = images.shape
    q = Image.fromarray(images.reshape(F * H, W, 3)).quantize(256, method=Image.Quantize.MEDIANCUT)
    colours = np.asarray(q.getpalette()[:768]).reshape(-1, 3)
    code = images[-1].reshape(-1, 3).astype(np.int64) @ [65536, 256, 1]
    values, counts = np.unique(code, return_counts=True)
    for v in values[np.argsort(counts)[::-1][:16]]:
        exact = np.array([v >> 16, (v >> 8) & 255, v & 255])
        colours[np.argmin(((colours - exact) ** 2).sum(axis=1))] = exact
    return np.asarray(q).reshape(F, H, W), colours.astype(np.uint8).tobytes()


def encode(fig: go.Figure, fmt: str, fps: int = FPS, hold: float = 1.0, size: tuple[int, int] = SIZE) -> bytes:
    """An animated figure as GIF or MP4 bytes: every frame at `size` (16:9, multiples of 16), `fps` frames a second,
    the last (the finished pass) held `hold` seconds more; the GIF loops. Kaleido takes ~0.3 s a frame in one tab (it
    reloads its page after every image); the frames go to all of its tabs at once (export.TABS)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if not fig.frames:
        raise ValueError(f"{fmt.upper()} needs an animated figure (one with frames)")
    if fps < 1 or hold < 0 or any(s % 16 for s in size):
        raise ValueError(f"fps {fps} must be >= 1, hold {hold} >= 0, size {size} multiples of 16")
    iio = encoder(fmt)
    images = np.stack([iio.imread(png)[..., :3] for png in render_frames(fig, size)])  # (F, H, W, 3), alpha dropped
    if fmt == "gif":
        ms = 1000 / fps
        indices, palette = _one_palette(images)
        return iio.imwrite("<bytes>", indices, extension=".gif", mode="P", palette=palette, optimize=True, loop=0,
                           duration=[ms] * (len(images) - 1) + [ms + 1000 * hold])
    images = np.concatenate([images, np.repeat(images[-1:], round(hold * fps), axis=0)])  # constant frame rate
    return iio.imwrite("<bytes>", images, extension=".mp4", plugin="FFMPEG", fps=fps, codec="libx264",
                       pixelformat="yuv420p", macro_block_size=16)
