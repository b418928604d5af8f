"""Every scene's claims, checked over seeds: what a lecturer says over a scene must be true of the view on screen,
not of one lucky seed. Narratives carry no hand-typed number: each one is filled from the measurement."""
import re

import numpy as np
import pytest

import gradlab
from gradlab import panels, scenes

PROBE_SEEDS = range(5)
TRAIN_SEEDS = range(5)
PROBE_SCENES = [s for s in scenes.SCENES if not s.train]
TRAINED_SCENES = [s for s in scenes.SCENES if s.train]


def probes(cfg):
    return {c: gradlab.probe(cfg.replace(cell=c)) for c in ("rnn", "lstm")}


def test_the_shared_link_names_are_kept():
    assert {"vanishing", "exploding", "lstm-learns"} <= set(scenes.BY_NAME)


@pytest.mark.parametrize("scene", scenes.SCENES, ids=lambda s: s.name)
def test_no_hand_typed_numbers(scene):
    """Digits may appear only inside {placeholders} (filled from facts); an instruction to try something may name
    only the values of the scene's own contrast views."""
    for text in (scene.narrative, scene.title, *(c.text for c in scene.claims if not c.contrast)):
        assert not re.search(r"\d", re.sub(r"\{[^}]*\}", "", text)), text
    allowed = {f"{v:g}" if isinstance(v, (int, float)) else str(v) for c in scene.claims for v in c.contrast.values()}
    for c in scene.claims:  # a claim about a view one change away may name that change, and nothing else
        if c.contrast:
            rest = re.sub(r"\{[^}]*\}", "", c.text)
            assert not re.search(r"\d", rest), c.text
            assert set(re.findall(r"\{(\w+)", c.text)) <= set(c.contrast), c.text
    for number in re.findall(r"\d+(?:\.\d+)?", scene.try_next):
        assert number in allowed, (number, scene.try_next)


@pytest.mark.slow
@pytest.mark.parametrize("scene", PROBE_SCENES, ids=lambda s: s.name)
@pytest.mark.parametrize("seed", PROBE_SEEDS)
def test_probe_scene_claims_hold(scene, seed):
    cfg = scene.config.replace(seed=seed)
    f = scenes.facts(probes(cfg))
    text = scenes.say(scene, f)
    assert "?" not in text and "nan" not in text, text  # every placeholder measured on this view
    failed = [c.text for c, ok in scenes.check(scene, f) if not ok]
    assert not failed, (failed, text)
    for claim in scene.claims:
        if claim.contrast:
            assert claim.holds(scenes.facts(probes(cfg.replace(**claim.contrast)))), claim.text


@pytest.mark.slow
@pytest.mark.parametrize("scene", TRAINED_SCENES, ids=lambda s: s.name)
def test_trained_scene_claims_hold_in_most_seeds(scene):
    held, texts = 0, []
    for seed in TRAIN_SEEDS:
        cfg = scene.config.replace(seed=seed)
        runs = gradlab.train_pair(cfg)
        f = scenes.facts(runs, runs)
        results = scenes.check(scene, f)
        texts.append(scenes.say(scene, f))
        assert "?" not in texts[-1] and "nan" not in texts[-1], texts[-1]
        held += all(ok for _, ok in results)
    assert held >= 4, (held, texts)  # "learns in front of a class": at least 4 of 5 seeds
    for claim in scene.claims:
        if claim.contrast:
            ok = 0
            for seed in TRAIN_SEEDS:
                runs = gradlab.train_pair(scene.config.replace(seed=seed, **claim.contrast))
                ok += bool(claim.holds(scenes.facts(runs, runs)))
            assert ok >= 4, (claim.text, ok)


def test_claims_can_fail():
    """The checks are not decorative: the vanishing scene's claims fail on a view where the RNN explodes."""
    scene = scenes.BY_NAME["vanishing"]
    f = scenes.facts(probes(scenes.BY_NAME["exploding"].config))
    assert not all(ok for _, ok in scenes.check(scene, f))


def test_missing_numbers_show_as_question_marks():
    scene = scenes.BY_NAME["lstm-learns"]
    text = scenes.say(scene, {"T": 50})
    assert "50" in text and "?" in text


def test_facts_are_the_measurement():
    p = probes(gradlab.Config(seq_len=60, hidden=16, batch=8))
    f = scenes.facts(p)
    g = p["rnn"].grad_h_norm
    assert f["rnn_ratio"] == g[0] / g[-1]
    assert f["rnn_rate"] == pytest.approx((g[0] / g[-1]) ** (1 / 59), rel=1e-12)
    assert f["rnn_max_h"] == np.abs(p["rnn"].h).max() and f["T"] == 60 and f["H"] == 16


def test_every_scene_names_a_registered_panel_that_its_records_show():
    for s in scenes.SCENES:
        p = panels.BY_NAME[s.panel]  # a KeyError names the scene's typo
        assert s.train or not p.training, s.name  # a training panel only for a scene that trains
