"""Property tests: any valid Config probes cleanly; any hostile value gives a clean ValueError."""
import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import gradlab
from gradlab import tasks
from gradlab.config import CELLS, DTYPES, INITS, NONLINEARITIES, TASKS

valid = st.builds(
    lambda task, extra, **kw: gradlab.Config(task=task, seq_len=tasks.TASKS[task].min_seq_len + extra, **kw),
    task=st.sampled_from(TASKS), extra=st.integers(0, 40),
    cell=st.sampled_from(CELLS), nonlinearity=st.sampled_from(NONLINEARITIES), hidden=st.integers(1, 12),
    batch=st.integers(1, 5), seed=st.integers(0, 2**32 - 1), init=st.sampled_from(INITS),
    init_scale=st.floats(0, 10), forget_bias=st.floats(-10, 10), dtype=st.sampled_from(DTYPES))


@settings(max_examples=150, deadline=None)
@given(valid)
def test_any_valid_config_probes_with_right_shapes_and_honest_flags(cfg):
    p = gradlab.probe(cfg)
    L = p.x.shape[0]
    assert p.grad_h_norm.shape == (L,) and p.grad_whh_contrib_norm.shape == (L,)
    assert p.h.shape == (L, cfg.batch, cfg.hidden) and p.h.dtype == np.dtype(cfg.dtype)
    if cfg.cell == "lstm":
        assert p.gates.shape == (L, cfg.batch, 4 * cfg.hidden) and p.grad_c_norm.shape == (L,)
    profile_ok = np.all(np.isfinite(p.grad_h_norm) & (p.grad_h_norm > 0))
    assert profile_ok == (not any(k.startswith("grad_h_norm") for k in p.nonfinite))


hostile = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(allow_nan=True),
                    st.text(max_size=8), st.lists(st.integers(), max_size=2), st.just(float("inf")),
                    st.just("1e400"), st.just("nan"), st.just(" 12 "), st.just("-0"))


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([f.name for f in dataclasses.fields(gradlab.Config)]), hostile)
def test_hostile_values_give_clean_value_errors(field, value):
    for build in (lambda: gradlab.Config(**{field: value}), lambda: gradlab.Config.from_dict({field: value})):
        try:
            cfg = build()
        except ValueError as e:
            assert field in str(e) or "seq_len" in str(e)
        else:
            assert gradlab.Config.from_json(cfg.to_json()) == cfg  # whatever is accepted is a sound Config
