"""The dashboard through Streamlit's AppTest: it runs, its controls and URL drive the figures, it never crashes."""
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from gradlab import panels, scenes
from serve import app

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(Path(__file__).resolve().parent.parent / "dashboard.py")


def charts(at) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def values(d):
    """Plotly 6+ serialises numpy arrays as {"dtype", "bdata"}."""
    if isinstance(d, dict) and "bdata" in d:
        return np.frombuffer(base64.b64decode(d["bdata"]), d["dtype"])
    return np.asarray(d, dtype=float)


def grad_trace(at, cell_name="vanilla RNN"):
    fig = charts(at)[0]
    return next(t for t in fig["data"] if t.get("name", "").startswith(f"{cell_name}: ||dL/dh_t||"))


def text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_default_view_tells_the_vanishing_story():
    at = app()
    assert not at.exception
    # every probe panel of the registry (both cells present), and the shipped trainability map
    # a tab per panel and one for the saved sweeps; only the open one is drawn
    assert [t.label for t in at.tabs] == [p.tab for p in panels.shown({"rnn": 1, "lstm": 1}, False)] + ["Sweeps"]
    assert len(charts(at)) == 1 and at.query_params["panel"] == "grad_vs_time"
    assert any(c.value.startswith("Switch the mode to **train** and press *Train both cells* for more tabs")
               for c in at.caption)
    # the honest default: at initialisation both vanish, the RNN far faster (tests/test_scenes.py over seeds)
    assert "**vanilla RNN**: vanishing" in text(at) and "**LSTM**: hidden state: vanishing" in text(at)
    assert "; cell state: vanishing" in text(at)  # the LSTM's two states each get their own verdict
    titles = " ".join(a["text"] for a in charts(at)[0]["layout"]["annotations"])
    assert "pytorch init" in titles and "b_f = 1" in titles  # both cells' settings are stated on the figure
    assert len(values(grad_trace(at)["y"])) == 100
    assert [c["layout"]["title"]["text"] for c in charts(at)][0] == "Gradient reaching each time step"
    assert all(c.value for c in at.caption)  # every panel says what to look at


def test_moving_the_sequence_length_changes_the_figures():
    at = app()
    at.slider(key="seq_len").set_value(250).run()
    assert not at.exception
    assert len(values(grad_trace(at)["y"])) == 250
    assert len(values(grad_trace(at, "LSTM")["y"])) == 250


def test_each_control_reaches_the_engine():
    at = app()
    before = values(grad_trace(at)["y"])
    at.selectbox(key="init").select("orthogonal").run()
    after = values(grad_trace(at)["y"])
    assert not np.allclose(before, after)
    at.selectbox(key="nonlinearity").select("relu").run()
    assert "relu" in json.dumps(charts(at)[0]["layout"]["annotations"])
    at.slider(key="forget_bias").set_value(0.0).run()
    assert "b_f = 0" in json.dumps(charts(at)[0]["layout"]["annotations"])
    at.selectbox(key="task").select("copy").run()
    assert len(values(grad_trace(at)["y"])) == at.slider(key="seq_len").value + 20
    assert not at.exception


def test_url_parameters_are_honoured():
    at = app(seq_len="200", init="orthogonal", init_scale="1.1")
    assert not at.exception and not at.warning
    assert at.slider(key="seq_len").value == 200 and at.selectbox(key="init").value == "orthogonal"
    assert len(values(grad_trace(at)["y"])) == 200
    names = [t.get("name", "") for t in charts(at)[0]["data"]]
    assert any("rho = 1.100" in n for n in names)  # orthogonal x 1.1


@pytest.mark.parametrize("query", [
    {"seq_len": "abc"}, {"seq_len": "-5"}, {"seq_len": "100000"}, {"init_scale": "nan"}, {"init": "he"},
    {"hidden": "7"}, {"lr": "1e9"}, {"mode": "fly"}, {"bogus": "1"},
])
def test_malformed_url_values_fall_back_with_a_notice(query):
    at = app(**query)
    assert not at.exception
    assert at.warning and any(next(iter(query)) in w.value for w in at.warning)
    assert len(values(grad_trace(at)["y"])) == 100  # defaults


def test_lecture_mode_changes_the_layout():
    normal, lecture = app(), app(lecture="true")
    assert not lecture.exception
    f0, f1 = charts(normal)[0]["layout"], charts(lecture)[0]["layout"]
    assert f1["font"]["size"] > f0["font"]["size"]
    assert f0["width"] / f0["height"] == pytest.approx(16 / 9) and f1["width"] / f1["height"] == pytest.approx(16 / 9)
    assert grad_trace(lecture)["line"]["width"] > grad_trace(normal)["line"]["width"]


def test_training_mode_draws_the_heatmap_and_learning_curves():
    at = app(mode="train", steps="100", seq_len="20")
    tabs = [t.label for t in at.tabs]
    assert not at.exception and "Learning" not in tabs
    hint = "Press *Train both cells* for more tabs: *Over training*, *Learning*, *Clipping*."
    assert hint in [c.value for c in at.caption]  # named as the tabs will be
    at.button[[b.label for b in at.button].index("Train both cells")].click().run()
    assert not at.exception
    assert [t.label for t in at.tabs] == [p.tab for p in panels.shown({"rnn": 1, "lstm": 1}, True)] + ["Sweeps"]
    assert charts(at)[0]["layout"]["title"]["text"] == "Gradient reaching each time step"  # still the open tab
    at.session_state["panel"] = "grad_over_training"
    at.run()
    assert "heatmap" in [t["type"] for t in charts(at)[0]["data"]]
    at.session_state["panel"] = "learning"
    at.run()
    learning = charts(at)[0]
    assert learning["layout"]["title"]["text"] == "Learning curves"
    assert len(values(learning["data"][0]["y"])) == 100
    assert "predict 1" in json.dumps(learning["layout"]["annotations"])


def test_tour_steps_through_scenes():
    at = app()
    at.button(key="scene_next").click().run()
    assert not at.exception and at.selectbox(key="scene").value == "vanishing"  # the tour starts at its beginning
    at.button(key="scene_next").click().run()
    assert at.selectbox(key="scene").value == "exploding"
    assert at.selectbox(key="init").value == "gaussian" and at.slider(key="init_scale").value == 2.0
    assert "The exploding gradient" in " ".join(i.value for i in at.info)
    at.button(key="scene_previous").click().run()
    assert at.selectbox(key="scene").value == "vanishing" and at.selectbox(key="init").value == "pytorch"
    at.button(key="scene_previous").click().run()
    assert at.selectbox(key="scene").value == scenes.SCENES[-1].name  # Previous from the first wraps to the last


def test_scene_links():
    at = app(scene="saturation")  # a bare scene link applies the scene's settings
    assert not at.exception and "Saturated units do not decide" in " ".join(i.value for i in at.info)
    assert at.select_slider(key="hidden").value == 6 and at.slider(key="init_scale").value == 10.0
    at = app(scene="saturation", hidden="8")  # explicit settings win over the scene's
    assert at.select_slider(key="hidden").value == 8


def test_the_share_link_reproduces_the_view():
    from urllib.parse import parse_qsl, urlsplit
    at = app()
    at.slider(key="seq_len").set_value(150).run()
    at.selectbox(key="init").select("xavier").run()
    at.slider(key="init_scale").set_value(1.5).run()
    link = at.code[0].value
    params = dict(parse_qsl(urlsplit(link).query))
    assert params["seq_len"] == "150" and params["init"] == "xavier" and params["mode"] == "at initialisation"
    again = app(**params)
    assert not again.exception and not again.warning
    assert np.array_equal(values(grad_trace(again)["y"]), values(grad_trace(at)["y"]))


def test_a_lecture_mode_link_keeps_the_hidden_settings():
    from urllib.parse import parse_qsl, urlsplit
    at = app(scene="saturation", lecture="true")
    assert not at.exception
    params = dict(parse_qsl(urlsplit(at.code[0].value).query))
    assert params["hidden"] == "6" and params["lecture"] == "true"
    again = app(**params)
    assert not again.exception
    assert "vanilla RNN**: vanishing" in text(again) and text(again) == text(at)


def test_an_interrupted_training_is_marked_stopped():
    """Stop reruns the script, which ends the training loop mid-way; the next run must label what was kept."""
    at = app(mode="train", steps="100", seq_len="20")
    at.button[[b.label for b in at.button].index("Train both cells")].click().run()
    store = at.session_state["runs"]
    cfg = next(iter(store))
    for r in store[cfg].values():  # make it look cut short: as if Stop had interrupted it
        r.stopped = None
    at.session_state["_training"] = cfg
    at.button[[b.label for b in at.button].index("Stop")].click().run()
    assert not at.exception
    assert any("stopped by the user after 100 steps" in w.value for w in at.warning)


def test_the_trainability_map_panel_shows_the_shipped_sweep():
    at = app(panel="sweep")
    fig = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("Trainability map"))
    assert [t["type"] for t in fig["data"]].count("heatmap") == 2
    at.radio(key="sweep_value").set_value("final_loss").run()
    fig = next(c for c in charts(at) if c["layout"]["title"]["text"].startswith("Trainability map"))
    assert "final loss" in fig["layout"]["title"]["text"] and not at.exception


def test_a_scene_says_only_what_its_view_measures():
    """The narrative's numbers are this view's; its claims are checked on it, and change when the view does."""
    at = app(scene="vanishing")
    info = " ".join(i.value for i in at.info)
    assert not at.exception and ":material/check_circle:" in info and ":material/cancel:" not in info
    from gradlab import scenes
    import gradlab
    f = scenes.facts({c: gradlab.probe(gradlab.Config(cell=c)) for c in ("rnn", "lstm")})
    assert f"{f['rnn_ratio']:.0e}" in info and f"{f['lstm_lyap']:.3f}" in info
    at.selectbox(key="init").select("orthogonal").run()  # the RNN no longer vanishes by the scene's measure
    info = " ".join(i.value for i in at.info)
    assert "You changed Recurrent init" in info and ":material/cancel:" in info and "not on this view" in info
    assert f"{f['rnn_ratio']:.0e}" not in info  # the story's words are not put over a view they do not describe


def test_every_scene_config_is_reachable_from_the_controls():
    """A scene may set only fields the dashboard has controls for, with values the widgets can show."""
    import dataclasses
    from gradlab import Config
    from gradlab.scenes import SCENES
    for scene in SCENES:
        for f in dataclasses.fields(Config):
            if getattr(scene.config, f.name) != getattr(Config(), f.name):
                assert "ui" in f.metadata, (scene.name, f.name)
    at = app()
    for scene in SCENES:
        at.selectbox(key="scene").select(scene.name).run()
        assert not at.exception
        for f in ("seq_len", "init_scale", "forget_bias"):
            assert at.slider(key=f).value == getattr(scene.config, f), (scene.name, f)


def test_slow_training_steps_draw_without_error_and_finish_unlabelled(monkeypatch):
    """Steps slower than the progress interval made the live chart draw twice with one element id ("This app has
    encountered an error"), and the next run called the run "stopped by the user". Slow the steps down for real."""
    import time as _time

    import gradlab
    real = gradlab.train_many

    def slow_pair(cfgs, on_record=None):
        def slow(p):
            _time.sleep(0.05)
            return on_record(p)
        return real(cfgs, on_record=slow)

    import importlib
    monkeypatch.setattr(importlib.import_module("gradlab.train"), "CALLBACK_EVERY_S", 0.0)  # progress every step
    monkeypatch.setattr(gradlab, "train_many", slow_pair)  # what the dashboard trains the cells shown with
    at = app(mode="train", steps="40", seq_len="20")
    at.button[[b.label for b in at.button].index("Train both cells")].click().run()
    assert not at.exception
    at.run()  # the next rerun must not relabel a finished run
    assert not at.exception and not any("stopped" in w.value for w in at.warning)


def test_a_training_error_is_one_line_and_not_called_a_stop(monkeypatch):
    import gradlab
    real = gradlab.train_many

    def failing_pair(cfgs, on_record=None):
        def fail(p):
            on_record(p)
            if p.step >= 5:
                raise RuntimeError("disk on fire")
        return real(cfgs, on_record=fail)

    monkeypatch.setattr(gradlab, "train_many", failing_pair)
    at = app(mode="train", steps="50", seq_len="20")
    at.button[[b.label for b in at.button].index("Train both cells")].click().run()
    assert not at.exception
    assert any("disk on fire" in e.value for e in at.error)
    at.run()
    assert not any("stopped by the user" in w.value for w in at.warning)


@pytest.mark.parametrize("query,key,kind,value", [
    ({"hidden": "128.0"}, "hidden", "select_slider", 128),
    ({"clip": "5"}, "clip", "select_slider", 5.0),
    ({"lr": "1e-2"}, "lr", "select_slider", 1e-2),
    ({"seq_len": "2e2"}, "seq_len", "slider", 200),
])
def test_every_spelling_of_a_valid_value_is_honoured(query, key, kind, value):
    at = app(**query)
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    assert getattr(at, kind)(key=key).value == value


def test_lecture_true_in_capitals_turns_lecture_mode_on_without_a_false_notice():
    at = app(lecture="TRUE")
    assert not at.exception and not at.warning
    assert at.toggle(key="lecture").value is True


def test_a_full_server_refuses_a_training_in_one_line_and_frees_it_after():
    from gradlab import budget
    with budget.SERVER.hold(budget.SERVER.limit, "another session's training"):
        at = app(mode="train", steps="50", seq_len="20")
        at.button[[b.label for b in at.button].index("Train both cells")].click().run()
        assert not at.exception
        assert any("Training did not run" in e.value and "try again when it finishes" in e.value for e in at.error), \
            [e.value for e in at.error]
    assert budget.SERVER.used == 0 and budget.SERVER.holders == 0
    at.button[[b.label for b in at.button].index("Train both cells")].click().run()  # free again: it trains
    assert not at.exception and not at.error and budget.SERVER.used == 0


def test_a_session_keeps_only_its_latest_trainings():
    at = app(mode="train", steps="50")
    for T in (20, 25, 30, 35, 40):
        at.slider(key="seq_len").set_value(T).run()
        at.button[[b.label for b in at.button].index("Train both cells")].click().run()
        assert not at.exception
    at.run()
    kept = at.session_state["runs"]
    assert [cfg.seq_len for cfg, cells in kept] == [30, 35, 40]  # the three latest, oldest first


def test_the_address_bar_holds_every_setting_of_the_view():
    """Defaults included: a reload or a bookmark must not depend on what the defaults happen to be."""
    at = app(scene="forget-bias")
    at.slider(key="forget_bias").set_value(1.0).run()  # the sidebar's default value, yet part of this view
    q = at.query_params
    assert not at.exception
    for c in dashboard_controls():
        assert c in q, c
    assert q["forget_bias"] == "1.0" and q["seq_len"] == "1000" and q["scene"] == "forget-bias"
    assert q["theme"] == "light" and q["view"] == "explore" and q["panel"] == scenes.BY_NAME["forget-bias"].panel
    again = app(**dict(q))
    assert not again.exception and not again.warning
    assert text(again) == text(at) and [i.value for i in again.info] == [i.value for i in at.info]
    assert charts(again)[0]["layout"]["title"] == charts(at)[0]["layout"]["title"]  # the same tab open
    assert "You changed Forget-gate bias" in again.info[0].value  # not reset to the scene's own settings


def dashboard_controls() -> list[str]:
    import dataclasses
    from gradlab import Config
    return [f.name for f in dataclasses.fields(Config) if "ui" in f.metadata]


@pytest.mark.parametrize("key,value", [("theme", "dark"), ("view", "present")])
def test_theme_and_view_come_from_the_url(key, value):
    at = app(**{key: value})
    assert not at.exception and not at.warning
    assert at.query_params[key] == value
    if key == "theme":
        assert charts(at)[0]["layout"]["template"]["layout"]["paper_bgcolor"] == "#0e1117"
    else:
        assert len(charts(at)) == 1 and at.query_params["scene"] == "vanishing"  # one scene, from the first


def test_the_record_cache_is_bounded_by_bytes_and_still_serves_a_record_larger_than_it(monkeypatch):
    """Least recently used records go first, with a cyclic collection after (see probe_one); a record larger than
    the whole cache is served and kept alone, not refused."""
    from types import SimpleNamespace

    import gradlab
    from gradlab import Config
    d = {"__name__": "dashboard_cache_under_test"}
    exec(compile(Path(APP).read_text(), APP, "exec"), d)  # the module without running the page (not __main__)
    d["_record_cache"].clear()
    d["CACHE_BYTES"] = 100
    sizes, made, collected = {10: 40, 11: 40, 12: 40, 13: 500}, [], []
    monkeypatch.setattr(gradlab, "probe", lambda cfg: made.append(cfg.seq_len) or SimpleNamespace(
        nbytes=sizes[cfg.seq_len]))
    d["gc"] = SimpleNamespace(collect=lambda: collected.append(True))
    probe = d["probe_one"]
    first = probe(Config(seq_len=10))
    probe(Config(seq_len=11))
    assert probe(Config(seq_len=10)) is first and made == [10, 11] and not collected  # a hit; nothing evicted yet
    probe(Config(seq_len=12))  # 120 bytes > 100: the least recently used, T = 11, goes
    assert collected == [True]
    probe(Config(seq_len=10))
    probe(Config(seq_len=11))
    assert made == [10, 11, 12, 11]
    big = probe(Config(seq_len=13))
    assert big.nbytes == 500 and probe(Config(seq_len=13)) is big and made.count(13) == 1
    assert list(d["_record_cache"]()[0]) == [Config(seq_len=13)]


def test_the_page_styling_is_read_from_its_file_section_by_section():
    """gradlab/data/dashboard.css is split at its markers: every view gets the base, and only its own additions."""
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"lecture": "true", "theme": "dark"})
    at.run()
    assert not at.exception
    css = " ".join(el.proto.body for el in at.get("html"))
    assert 'aspect-ratio: 16 / 9' in css and "font-size: 19px" in css and "#0e1117" in css
    assert "100vh - 170px" not in css  # the present view's sizes stay out of the explore view
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    css = " ".join(el.proto.body for el in at.get("html"))
    assert 'aspect-ratio: 16 / 9' in css and "font-size: 19px" not in css and "#0e1117" not in css


def title(at) -> str:
    (chart,) = charts(at)  # only the open tab is drawn
    return chart["layout"]["title"]["text"]


def test_the_open_tab_comes_from_the_url_and_a_bad_one_gets_a_notice():
    at = app(panel="lyapunov")
    assert not at.exception and not at.warning
    assert title(at) == panels.BY_NAME["lyapunov"].title and at.query_params["panel"] == "lyapunov"
    bad = app(panel="nope")
    assert [w.value for w in bad.warning] == ["URL value `panel=nope` is not valid here; using the default instead."]
    assert title(bad) == panels.PANELS[0].title and bad.query_params["panel"] == "grad_vs_time"


def test_a_tab_asked_for_before_it_exists_opens_when_it_does():
    """A link to the learning curves opens the first tab until there are curves, then them: the tab asked for is
    kept by name while tabs come and go."""
    at = app(mode="train", steps="60", seq_len="20", panel="learning")
    assert title(at) == panels.PANELS[0].title and at.query_params["panel"] == "learning"
    at.button[[b.label for b in at.button].index("Train both cells")].click().run()
    assert not at.exception and title(at) == "Learning curves"


def test_each_scene_opens_its_key_panel():
    at = app(mode="train", steps="60")
    for scene in scenes.SCENES:
        at.button(key="scene_next").click().run()
        assert not at.exception and at.session_state["scene"] == scene.name
        opened = scene.panel if not panels.BY_NAME[scene.panel].training else panels.PANELS[0].name
        assert title(at) == panels.BY_NAME[opened].title, scene.name


def test_the_sweep_tab_keeps_its_settings_while_another_tab_is_open():
    at = app(panel="sweep")
    at.radio(key="sweep_value").set_value("final_loss").run()
    at.session_state["panel"] = "gates"
    at.run()
    assert title(at) == "LSTM gates"
    at.session_state["panel"] = "sweep"
    at.run()
    assert at.radio(key="sweep_value").value == "final_loss" and "final loss" in title(at)


def test_the_page_draws_the_figure_the_library_draws():
    """The spectra behind the prediction are computed in worker processes for the page: its figure is the one
    panels.figure draws from records probed here, number for number."""
    import gradlab
    at = app(seq_len="60")
    direct = panels.figure("grad_vs_time", {c: gradlab.probe(gradlab.Config(cell=c, seq_len=60))
                                            for c in ("rnn", "lstm")}).to_plotly_json()
    page = charts(at)[0]
    assert [t.get("name") for t in page["data"]] == [t.get("name") for t in direct["data"]]
    for a, b in zip(page["data"], direct["data"]):
        np.testing.assert_array_equal(values(a["y"]), values(b["y"]))


def test_a_broken_spectrum_worker_costs_time_not_the_page(monkeypatch):
    """A worker process that dies (or a pool that cannot start) leaves the summary to be computed in the script: the
    same numbers, no error, and a fresh pool next time."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool
    from types import SimpleNamespace

    import gradlab
    from gradlab import Config, analysis
    d = {"__name__": "dashboard_pool_under_test"}
    exec(compile(Path(APP).read_text(), APP, "exec"), d)
    cleared = []

    def broken_future(*args):
        f = Future()
        f.set_exception(BrokenProcessPool("a worker died"))
        return f

    def no_pool():
        raise OSError("cannot start processes here")
    cfg = Config(cell="lstm", seq_len=30)
    want = analysis.summary(gradlab.probe(cfg))["lyapunov"]
    for pool in (lambda: SimpleNamespace(submit=broken_future), no_pool):
        d["_processes"] = type("Cached", (), {"__call__": staticmethod(pool), "clear": lambda self: cleared.append(1)})()
        got = d["summarised"](gradlab.probe(cfg))()["lyapunov"]
        np.testing.assert_array_equal(got, want)
    assert len(cleared) == 2
