"""grad_x_norm and the LSTM's direct/rest split of dL/dc_t through every record: probe bundles, verify, training
runs and run bundles; bundles written before these were recorded still load."""
import numpy as np
import pytest

import gradlab

NEW = ("grad_x_norm", "grad_c_direct_norm", "grad_c_rest_norm")
SMALL = dict(seq_len=12, hidden=5, batch=3)


def strip(src, dst, keys):
    """Rewrite a bundle without `keys`, as an older gradlab wrote it."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in keys}
    np.savez(dst, **arrays)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_probe_bundle_round_trips_the_new_records(tmp_path, cell):
    p = gradlab.probe(gradlab.Config(cell=cell, **SMALL))
    T = p.seq_len
    present = NEW if cell == "lstm" else NEW[:1]
    for k in present:
        assert getattr(p, k).shape == (T,) and np.all(np.isfinite(getattr(p, k)))
    for k in set(NEW) - set(present):
        assert getattr(p, k) is None
    p.save(tmp_path / "b.npz")
    with np.load(tmp_path / "b.npz", allow_pickle=False) as z:
        assert set(present) <= set(z.files) and not (set(NEW) - set(present)) & set(z.files)
    q = gradlab.load(tmp_path / "b.npz")
    for k in NEW:
        if k in present:
            assert np.array_equal(getattr(q, k), getattr(p, k)), k
        else:
            assert getattr(q, k) is None, k
    errors = gradlab.verify(tmp_path / "b.npz")
    assert set(present) <= set(errors) and all(errors[k] == 0.0 for k in present)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_an_old_probe_bundle_without_them_still_loads_and_verifies(tmp_path, cell):
    gradlab.probe(gradlab.Config(cell=cell, **SMALL)).save(tmp_path / "new.npz")
    strip(tmp_path / "new.npz", tmp_path / "old.npz", NEW)
    old = gradlab.load(tmp_path / "old.npz")
    assert all(getattr(old, k) is None for k in NEW)
    errors = gradlab.verify(tmp_path / "old.npz")
    assert not set(NEW) & set(errors)  # only what the bundle holds is compared...
    assert {"grad_h_norm", "grad_whh_contrib_norm", "h"} <= set(errors) and max(errors.values()) == 0.0  # ...all of it


def test_a_misshapen_new_record_is_refused(tmp_path):
    p = gradlab.probe(gradlab.Config(cell="lstm", **SMALL))
    p.save(tmp_path / "good.npz")
    with np.load(tmp_path / "good.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for k in NEW:
        np.savez(tmp_path / "bad.npz", **dict(arrays, **{k: np.zeros(p.seq_len + 1)}))
        with pytest.raises(ValueError, match=f"'{k}' has shape"):
            gradlab.load(tmp_path / "bad.npz")


def test_verify_catches_a_wrong_split(tmp_path):
    """verify must be able to fail on the split: a relative change is reported as such, and a saved 1e-300 where
    the engine has an exact 0 (the last step: nothing comes back through h_T) as wrong by all of itself."""
    p = gradlab.probe(gradlab.Config(cell="lstm", **SMALL))
    assert p.grad_c_rest_norm[-1] == 0.0
    p.grad_c_direct_norm[2] *= 1 + 2e-6
    p.grad_c_rest_norm[-1] = 1e-300
    p.save(tmp_path / "tampered.npz")
    errors = gradlab.verify(tmp_path / "tampered.npz")
    assert errors["grad_c_direct_norm"] == pytest.approx(2e-6, rel=1e-3)
    assert errors["grad_c_rest_norm"] == 1.0
    assert errors["grad_c_norm"] == 0.0 and errors["grad_x_norm"] == 0.0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_training_records_them_per_record_and_the_run_bundle_keeps_them(tmp_path, cell):
    cfg = gradlab.Config(cell=cell, **SMALL, steps=5, record_every=2)
    run = gradlab.train(cfg)
    R, T = len(run.record_steps), cfg.seq_len
    assert R == 4  # steps 0, 2, 4 and the end
    present = NEW if cell == "lstm" else NEW[:1]
    for k in present:
        assert getattr(run, k).shape == (R, T), k
    for k in set(NEW) - set(present):
        assert getattr(run, k) is None
    # the first record is taken at initialisation on the probe batch: it is exactly probe(cfg)'s
    p = gradlab.probe(cfg)
    for k in present:
        np.testing.assert_array_equal(getattr(run, k)[0], getattr(p, k))
        assert not np.array_equal(getattr(run, k)[-1], getattr(run, k)[0])  # and later records follow training
    run.save(tmp_path / "run.npz")
    back = gradlab.load(tmp_path / "run.npz")
    for k in NEW:
        if k in present:
            np.testing.assert_array_equal(getattr(back, k), getattr(run, k))
        else:
            assert getattr(back, k) is None


def test_an_old_run_bundle_without_them_still_loads(tmp_path):
    run = gradlab.train(gradlab.Config(cell="lstm", **SMALL, steps=3, record_every=2))
    run.save(tmp_path / "new.npz")
    strip(tmp_path / "new.npz", tmp_path / "old.npz", NEW)
    old = gradlab.load(tmp_path / "old.npz")
    assert isinstance(old, gradlab.Run) and all(getattr(old, k) is None for k in NEW)
    np.testing.assert_array_equal(old.grad_c_norm, run.grad_c_norm)
    with np.load(tmp_path / "new.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(tmp_path / "bad.npz", **dict(arrays, grad_x_norm=arrays["grad_x_norm"][:, :-1]))
    with pytest.raises(ValueError, match="grad_x_norm has shape"):
        gradlab.load(tmp_path / "bad.npz")
