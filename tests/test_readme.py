"""The README's measured sentences are produced by docs/headline.py: if the engine's numbers change, this fails
until the README is regenerated (python docs/headline.py), so the README never states a number nothing computes."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "docs"))

import headline  # noqa: E402


def test_the_headline_block_is_the_first_views_measurement():
    readme = (ROOT / "README.md").read_text()
    assert headline.block() in readme


def test_the_sweep_sentence_is_the_shipped_sweeps():
    readme = (ROOT / "README.md").read_text()
    assert headline.sweep_block() in readme


def test_the_headline_reports_a_failed_claim_plainly():
    """If a claim failed on the first view, the README would say NO rather than drop it."""
    from gradlab import scenes
    assert all(ok for _, ok in scenes.check(scenes.BY_NAME["vanishing"],
                                             scenes.facts({c: __import__("gradlab").probe(
                                                 scenes.BY_NAME["vanishing"].config.replace(cell=c))
                                                 for c in ("rnn", "lstm")})))
    assert "(NO)" not in headline.block()
