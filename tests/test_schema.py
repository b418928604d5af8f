"""Config is the one schema: the dashboard's controls, the values the URL may hold and the tasks' minimum lengths are
all read from gradlab/config.py and gradlab/tasks.py, and the running app shows and round-trips exactly them."""
import dataclasses

import numpy as np
import pytest

from gradlab import Config, tasks
from gradlab.config import TASKS, parse
from gradlab.scenes import SCENES
from serve import app

UI_FIELDS = [f for f in dataclasses.fields(Config) if "ui" in f.metadata]
WIDGET = {"select": "selectbox", "slider": "slider", "number": "number_input", "options": "select_slider"}


def ui(name: str):
    return next(f.metadata["ui"] for f in UI_FIELDS if f.name == name)


# ---- the schema itself ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("f", UI_FIELDS, ids=lambda f: f.name)
def test_every_control_offers_only_values_config_accepts(f):
    """A widget that could show a value Config refuses would break the page; one typed unlike its field would make
    Streamlit refuse the widget (a float step on an int slider)."""
    hint, m = f.metadata["ui"], f.metadata
    assert hint.label and hint.widget in WIDGET
    if hint.widget == "select":
        assert hint.domain == m["choices"]
        return
    kind = m["kind"]
    assert all(type(v) is kind for v in hint.domain), hint.domain
    offered = hint.domain if hint.widget == "options" else hint.domain[:2]  # a range: both of its ends
    for v in offered:
        assert parse(f.name, str(v)) == v
        assert getattr(Config(**{f.name: v}), f.name) == v


@pytest.mark.parametrize("scene", SCENES, ids=lambda s: s.name)
def test_every_scene_value_is_one_its_control_can_hold(scene):
    """Applying a scene (or opening its link) sets every control to the scene's value: each must be offered."""
    for f in UI_FIELDS:
        value = getattr(scene.config, f.name)
        assert parse(f.name, str(value)) == value, f.name


@pytest.mark.parametrize("name,raw,value", [
    ("hidden", "128.0", 128), ("clip", "5", 5.0), ("lr", "1e-2", 0.01), ("lr", "0.0001", 1e-4),
    ("seq_len", "2e2", 200), ("task", " copy ", "copy"), ("truncate", "0", 0), ("seed", "9999", 9999),
    ("forget_bias", "-2", -2.0), ("optimizer", "sgd", "sgd"),
])
def test_every_spelling_of_a_value_parses_to_it(name, raw, value):
    got = parse(name, raw)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("name,raw,words", [
    ("init", "he", ["init", "'he'", "orthogonal"]),  # a select
    ("seq_len", "1001", ["seq_len", "'1001'", "[5, 1000]"]),  # an int slider: Config allows 5000, the slider not
    ("forget_bias", "6.5", ["forget_bias", "[-2, 6]"]),  # a float slider: Config allows 10
    ("seed", "10000", ["seed", "[0, 9999]"]),  # the number box
    ("hidden", "7", ["hidden", "4, 6, 8"]),  # options: Config allows any H
    ("lr", "0.5", ["lr", "0.0001"]),
    ("seq_len", "2.5", ["seq_len", "integer"]), ("init_scale", "nan", ["init_scale"]), ("bogus", "1", ["bogus"]),
])
def test_a_value_no_control_can_hold_is_refused_in_one_line(name, raw, words):
    with pytest.raises(ValueError) as e:
        parse(name, raw)
    msg = str(e.value)
    assert all(w in msg for w in words) and "\n" not in msg, msg


@pytest.mark.parametrize("name,raw,value", [("seq_len", "1001", 1001), ("hidden", "7", 7), ("forget_bias", "6.5", 6.5),
                                            ("momentum", "0.5", 0.5)])
def test_without_the_ui_only_configs_own_range_applies(name, raw, value):
    """The CLI's flags take Config's full range; only the dashboard's widgets are narrower."""
    assert parse(name, raw, ui=False) == value


@pytest.mark.parametrize("task", TASKS)
def test_each_tasks_minimum_length_is_the_one_config_enforces(task):
    """tasks.py is the only task registry: Config's choices and its minimum seq_len are read from it."""
    assert TASKS == tuple(tasks.TASKS)
    lo = tasks.TASKS[task].min_seq_len
    b = tasks.make_batch(task, lo, 3, np.random.default_rng(0))
    assert tasks.information(task, b.x).any(axis=0).all()  # at its minimum every sequence still carries information
    Config(task=task, seq_len=lo)
    if lo > 1:
        with pytest.raises(ValueError, match=f"too short for task '{task}': expected seq_len >= {lo}"):
            Config(task=task, seq_len=lo - 1)


def test_config_imports_no_ui_library():
    import subprocess
    import sys
    code = ("import sys, gradlab.config; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('streamlit', 'plotly', 'pandas', 'cachetools')]; assert not bad, bad")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# ---- the running app ---------------------------------------------------------------------------------------------

def controls(block) -> dict:
    """{field name: widget} of the controls drawn in a block, in the order they are drawn."""
    names = {f.name for f in UI_FIELDS}
    return {w.key: w for w in block if getattr(w, "key", None) in names}


@pytest.fixture(scope="module")
def plain():
    at = app()
    assert not at.exception
    return at


def test_every_field_with_a_ui_is_a_control_with_its_label_in_configs_order(plain):
    drawn = controls(plain.sidebar)
    advanced = [f.name for f in UI_FIELDS if f.metadata["ui"].advanced]
    assert sorted(drawn) == sorted(f.name for f in UI_FIELDS)
    assert [n for n in drawn if n not in advanced] == [f.name for f in UI_FIELDS if f.name not in advanced]
    assert list(controls(plain.sidebar.expander[0])) == advanced  # folded away, in Config's order too
    for name, w in drawn.items():
        hint = ui(name)
        assert (w.type, w.label, w.help or "") == (WIDGET[hint.widget], hint.label, hint.help), name


def other_value(name: str, default):
    """A value the control can hold that is not the default: the first option, or a step above the range's start."""
    hint = ui(name)
    if hint.widget in ("select", "options"):
        return next(v for v in hint.domain if v != default)
    lo, hi, step = hint.domain
    return lo + step if lo + step != default else lo + 2 * step


@pytest.mark.parametrize("f", UI_FIELDS, ids=lambda f: f.name)
def test_every_control_round_trips_through_the_url(plain, f):
    """A non-default value in the link is what the widget holds, and the address bar spells it back identically."""
    default = controls(plain.sidebar)[f.name].value
    value = other_value(f.name, default)
    raw = str(value)
    at = app(**{f.name: raw})
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    w = controls(at.sidebar)[f.name]
    assert w.value == value and type(w.value) is type(value)
    assert at.query_params[f.name] == raw
    assert plain.query_params[f.name] == str(default) != raw


@pytest.mark.parametrize("name,raw", [("init", "he"), ("seq_len", "1001"), ("forget_bias", "6.5"), ("seed", "10000"),
                                      ("hidden", "7"), ("lr", "0.5")])
def test_a_url_value_out_of_a_controls_domain_gives_one_notice_and_the_default(plain, name, raw):
    """One of each widget kind; every value here but `he` is one Config itself accepts (only the widget cannot)."""
    at = app(**{name: raw})
    assert not at.exception
    (notice,) = [w.value for w in at.warning]
    with pytest.raises(ValueError) as e:
        parse(name, raw)
    allowed = str(e.value).partition("expected ")[2]  # what config.parse allows, in its words
    assert allowed
    assert notice == f"URL value `{name}={raw}` is not valid here (expected {allowed}); using the default instead."
    if name == "seq_len":  # and those words say what the slider holds
        assert "(expected an integer in [5, 1000])" in notice
    assert controls(at.sidebar)[name].value == controls(plain.sidebar)[name].value
    assert at.query_params[name] == plain.query_params[name]

