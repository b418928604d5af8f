"""Truncated BPTT (Config.truncate = K): the state entering step t (h, and c for the LSTM) is detached when t > 0 and
t % K == 0, as `h = h.detach()` between chunks in a PyTorch loop. Central differences in float64 against the naive
reference with the detach written as a constant (tests/reference.py), for every cell; then what the records, the
flags, the summary, training and bundles make of the exact zeros a cut leaves."""
import json

import numpy as np
import pytest
import reference as ref
from test_gradcheck import CASES, TOL, norms, per_step_rel_error, problem

import gradlab
from gradlab import analysis, bptt
from gradlab.config import CELLS, Config


def truncated(cell, nonlinearity, loss_kind, K, T=9):
    params, x, y, mask = problem(cell, loss_kind, T=T)
    consts = ref.cut_states(params, x, cell, nonlinearity, K)
    def f(**hooks):
        return ref.loss(params, x, y, mask, cell, nonlinearity, loss_kind, detach=consts, **hooks)
    return params, x, y, mask, f, bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind, truncate=K)


@pytest.mark.parametrize("K", [1, 4])
@pytest.mark.parametrize("cell,nonlinearity,loss_kind", CASES)
def test_truncated_gradients_match_central_differences(cell, nonlinearity, loss_kind, K):
    params, x, y, mask, f, rec = truncated(cell, nonlinearity, loss_kind, K)
    full = bptt.run(params, x, y, mask, cell, nonlinearity, loss_kind)
    assert rec["loss"] == full["loss"] and np.array_equal(rec["h"], full["h"])  # the forward pass is unchanged
    assert abs(rec["loss"] - f()) < 1e-14 * abs(f())  # and the reference's detached forward has the same values
    for name in params:
        err = ref.rel_error(rec["grads"][name], ref.numeric_grad(f, params[name]))
        assert err < TOL, (name, err)
    T, B, _ = x.shape
    H = params["weight_hh_l0"].shape[1]
    dh = np.zeros((T, B, H))
    assert per_step_rel_error(rec["grad_h_norm"], norms(ref.numeric_grad(lambda: f(dh=dh), dh))) < TOL
    W_steps = np.repeat(params["weight_hh_l0"][None], T, axis=0)
    num = ref.numeric_grad(lambda: f(W_steps=W_steps), W_steps)
    assert per_step_rel_error(rec["grad_whh_contrib_norm"][1:], norms(num)[1:]) < TOL
    assert ref.rel_error(rec["grads"]["weight_hh_l0"], num.sum(axis=0)) < TOL  # the terms sum to the gradient
    assert per_step_rel_error(rec["grad_x_norm"], norms(ref.numeric_grad(f, x))) < TOL
    if cell == "lstm":
        dc = np.zeros((T, B, H))
        total = ref.numeric_grad(lambda: f(dc=dc), dc)
        assert per_step_rel_error(rec["grad_c_norm"], norms(total)) < TOL
        d = ref.direct_cell_path(params, x, y, mask, loss_kind, truncate=K)
        assert per_step_rel_error(rec["grad_c_direct_norm"], norms(d)) < TOL
        rest = rec["grad_c_rest_norm"]
        last = np.r_[np.arange(T - 1) % K == K - 1, True] if K > 1 else np.ones(T, bool)  # no later step in the chunk
        assert np.all(rest[last] == 0.0)
        if (~last).any():
            assert per_step_rel_error(rest[~last], norms(total - d)[~last]) < TOL
    # the truncation really changed something: the gradients are not full BPTT's
    assert ref.rel_error(rec["grads"]["weight_hh_l0"], full["grads"]["weight_hh_l0"]) > 1e-3


@pytest.mark.parametrize("cell", CELLS)
def test_truncate_one_leaves_each_step_its_own_loss(cell):
    """Known answer: K = 1 cuts before every step, so dL/dh_t is exactly what the read-out at t sends, dyhat_t W_y."""
    params, x, y, mask = problem(cell, "mse")
    rec = bptt.run(params, x, y, mask, cell, "tanh", "mse", truncate=1)
    _, dyhat = bptt.head_loss(rec["yhat"], y, mask, "mse")
    np.testing.assert_allclose(rec["grad_h_norm"], norms(dyhat @ params["head.weight"]), rtol=1e-14)


@pytest.mark.parametrize("cell", CELLS)
def test_no_cut_before_the_end_is_full_bptt_bitwise(cell):
    params, x, y, mask = problem(cell, "xent", T=6)
    full = bptt.run(params, x, y, mask, cell, "tanh", "xent")
    for K in (6, 100):
        rec = bptt.run(params, x, y, mask, cell, "tanh", "xent", truncate=K)
        for k in ("grad_h_norm", "grad_x_norm", "grad_whh_contrib_norm"):
            assert np.array_equal(rec[k], full[k])
        assert all(np.array_equal(rec["grads"][k], full["grads"][k]) for k in params)


@pytest.mark.parametrize("cell", CELLS)
def test_cuts_and_backward_blocks_are_independent(monkeypatch, cell):
    """The backward pass works in blocks of CHUNK steps; cuts inside a block, on its edge, or across several blocks
    give the same records."""
    params, x, y, mask = problem(cell, "mse", T=40, seed=3)
    whole = bptt.run(params, x, y, mask, cell, "tanh", "mse", truncate=6)
    monkeypatch.setattr(bptt, "CHUNK", 4)  # cuts at 6, 12, ...: inside blocks and on the edges 12, 24, 36
    parts = bptt.run(params, x, y, mask, cell, "tanh", "mse", truncate=6)
    for k in ("grad_h_norm", "grad_whh_contrib_norm", "grad_x_norm"):
        assert ref.rel_error(parts[k], whole[k]) < 1e-13
    for k in params:
        assert ref.rel_error(parts["grads"][k], whole["grads"][k]) < 1e-13


def test_cut_helpers():
    assert bptt.cut_steps(9, 4).tolist() == [False, False, False, False, True, False, False, False, True]
    assert not bptt.cut_steps(9, 0).any()
    assert bptt.cut_at(99, 30) == 90 and bptt.cut_at(99, 100) is None and bptt.cut_at(99, 0) is None
    assert bptt.cut_at(29, 30) is None and bptt.cut_at(30, 30) == 30
    mask = np.zeros((10, 2))
    mask[[2, 6], 0] = 1  # losses at steps 2 and 6; K = 4: chunks 0-3, 4-7, 8-9
    # full BPTT reaches steps 0-6; truncated, 0-2 (step 2's loss) and 4-6 (step 6's): 3 is cut off
    assert np.flatnonzero(bptt.cut_off(mask, 4)).tolist() == [3]
    assert not bptt.cut_off(mask, 0).any()


# ---- what the records, flags and summary say about a cut ------------------------------------------------------

@pytest.mark.parametrize("cell", CELLS)
def test_a_last_step_loss_is_exactly_zero_before_the_last_chunk_and_called_cut(cell):
    K, T = 20, 50
    p = gradlab.probe(Config(cell=cell, seq_len=T, hidden=8, batch=4, truncate=K))
    start = 40  # the last chunk is steps 40..49
    profiles = ["grad_h_norm", "grad_x_norm", "grad_whh_contrib_norm"]
    profiles += ["grad_c_norm", "grad_c_direct_norm", "grad_c_rest_norm"] if cell == "lstm" else []
    for k in profiles:
        v = getattr(p, k)
        assert np.all(v[:start] == 0.0), k  # exactly zero, not small
    assert np.all(p.grad_h_norm[start:] > 0) and np.all(p.grad_whh_contrib_norm[start:] > 0)
    assert p.nonfinite == {}  # zeros by construction are not underflow
    sm = analysis.summary(p)
    assert sm["cut_at"] == start and sm["first"] == start and sm["end"] == T - 1
    verdict, sentence = sm["diagnosis"]
    assert verdict == "cut" and "reaches back only to step 41" in sentence and "steps 1-40 get exactly 0" in sentence
    assert "underflow" not in sentence
    g = p.grad_c_norm if cell == "lstm" else p.grad_h_norm
    assert sm["mean_rate"] == pytest.approx((g[start] / g[-1]) ** (1 / (T - 1 - start)), rel=1e-12)
    assert sm["rate"] == analysis.fit_rate(p.grad_h_norm[start:])  # only the uncut chunk is fitted
    assert sm["ratio"] == 0.0 and sm["ratio_first"] == p.grad_h_norm[start] / p.grad_h_norm[-1]
    for name, curve in sm["curves"].items():
        assert np.all(np.isnan(curve[:start])) and np.isfinite(curve[start]), name
        assert np.isfinite(sm["off_at_1"][name]) and sm["off_at_1"][name] > 0, name
    if cell == "lstm":
        assert sm["diagnosis_c"][0] == "cut"
    untruncated = analysis.summary(gradlab.probe(p.config.replace(truncate=0)))
    assert untruncated["cut_at"] is None and untruncated["diagnosis"][0] != "cut"


def test_a_genuine_underflow_is_still_flagged_under_truncation():
    """The cut exempts only the steps it zeroes: an underflow inside the last chunk is still an underflow."""
    cfg = Config(init="gaussian", init_scale=0.1, seq_len=1000, hidden=16, batch=4, truncate=500)
    p = gradlab.probe(cfg)  # full BPTT underflows at step 687 and before; the cut is at 500 (last chunk 500..999)
    g = p.grad_h_norm
    assert np.all(g[:501] == 0) and g[-1] > 0
    flag = p.nonfinite["grad_h_norm:zero"]
    assert flag["step"] == np.flatnonzero(g == 0)[-1] == 686 and flag["count"] == 187  # steps 500..686 only
    assert analysis.summary(p)["diagnosis"][0] == "underflow"


def test_the_many_losses_of_copy_are_judged_from_the_last_steps_chunk():
    p = gradlab.probe(Config(task="copy", seq_len=30, hidden=8, batch=4, truncate=16))
    assert np.all(p.grad_h_norm > 0)  # every chunk has its own losses
    assert np.all(p.grad_h_norm_last[:48] == 0) and np.all(p.grad_h_norm_last[48:] > 0)  # L = 50: chunk 48..49
    sm = analysis.summary(p)
    assert sm["last_only"] and sm["cut_at"] == 48 and sm["diagnosis"][0] == "cut"
    assert sm["diagnosis"][1].startswith("from the last step's loss alone, cut by truncation")


# ---- Config, training and bundles ------------------------------------------------------------------------------

def test_config_field():
    assert Config().truncate == 0
    assert Config.from_dict({"truncate": "25"}).truncate == 25
    assert Config.from_json(Config(truncate=7).to_json()).truncate == 7
    d = Config().to_dict()
    del d["truncate"]
    assert Config.from_dict(d).truncate == 0  # a config written before the field: full BPTT
    for bad in (-1, 2.5, True, "x", float("nan")):
        with pytest.raises(ValueError, match="truncate"):
            Config(truncate=bad)


def test_training_uses_the_truncated_gradients():
    """One plain SGD step without clipping moves the parameters by -lr times the truncated gradient of the first
    training batch (the one after the probe batch in the data stream)."""
    from gradlab.probe import setup
    from gradlab.tasks import make_batch
    cfg = Config(cell="gru", seq_len=30, hidden=6, batch=4, truncate=8, steps=1, optimizer="sgd", momentum=0.0,
                 lr=0.5, clip_mode="none")
    run = gradlab.train(cfg)
    _, params, data_rng = setup(cfg)
    b = make_batch(cfg.task, cfg.seq_len, cfg.batch, data_rng)
    grads = {K: bptt.run(params, b.x, b.y, b.y_mask, "gru", "tanh", "mse", truncate=K)["grads"] for K in (8, 0)}
    for k in params:
        np.testing.assert_allclose(run.params[k], params[k] - 0.5 * grads[8][k], rtol=1e-13, atol=1e-15)
    assert not np.allclose(grads[8]["weight_hh_l0"], grads[0]["weight_hh_l0"])
    np.testing.assert_array_equal(run.grad_h_norm[0], gradlab.probe(cfg).grad_h_norm)  # records are truncated too
    assert run.latest.truncate == 8


def test_bundles_keep_truncate_and_old_ones_are_full_bptt(tmp_path):
    cfg = Config(cell="lstm", seq_len=12, hidden=5, batch=3, truncate=5)
    p = gradlab.probe(cfg)
    p.save(tmp_path / "t.npz")
    q = gradlab.load(tmp_path / "t.npz")
    assert q.config == cfg and q.truncate == 5
    assert max(gradlab.verify(tmp_path / "t.npz").values()) == 0.0
    # a bundle written before the field existed: its config has no truncate, and it means full BPTT
    full = gradlab.probe(cfg.replace(truncate=0))
    full.save(tmp_path / "full.npz")
    with np.load(tmp_path / "full.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    d = json.loads(str(arrays["config"]))
    del d["truncate"]
    np.savez(tmp_path / "old.npz", **dict(arrays, config=np.array(json.dumps(d))))
    old = gradlab.load(tmp_path / "old.npz")
    assert old.truncate == 0 and old.config == cfg.replace(truncate=0)
    assert max(gradlab.verify(tmp_path / "old.npz").values()) == 0.0
    # a reference's note (not a Config) keeps its truncate through load and save
    q.config, q.note = None, "computed elsewhere"
    q.save(tmp_path / "note.npz")
    back = gradlab.load(tmp_path / "note.npz")
    assert back.config is None and back.truncate == 5 and "computed elsewhere" in back.note
    assert max(gradlab.verify(tmp_path / "note.npz").values()) == 0.0
    np.savez(tmp_path / "bad.npz", **dict(arrays, config=np.array('{"truncate": -2}')))
    with pytest.raises(ValueError, match="truncate"):
        gradlab.load(tmp_path / "bad.npz")
