"""Bundles (save, load, refuse), non-finite flags, the CLI, and weights from PyTorch's state_dict layout."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_save_load_round_trip(tmp_path, cell):
    p = gradlab.probe(gradlab.Config(cell=cell, seq_len=20, hidden=5, batch=3, task="copy"))
    p.save(tmp_path / "b.npz")
    q = gradlab.load(tmp_path / "b.npz")
    assert q.config == p.config and q.loss == p.loss and q.nonfinite == p.nonfinite
    for k in ("x", "y", "y_mask", "grad_h_norm", "grad_whh_contrib_norm", "h"):
        assert np.array_equal(getattr(q, k), getattr(p, k))
    assert all(np.array_equal(q.grads[k], p.grads[k]) for k in p.grads)
    assert (q.gates is None) == (cell == "rnn")
    with np.load(tmp_path / "b.npz", allow_pickle=False) as z:  # anyone can read it with numpy alone
        assert str(z["format"]) == "gradlab-bundle/1" and "grad.weight_hh_l0" in z.files
    assert list(tmp_path.iterdir()) == [tmp_path / "b.npz"]  # no temporary file left behind


def test_load_refuses_what_is_not_a_bundle(tmp_path):
    good = gradlab.probe(gradlab.Config(seq_len=5, hidden=3, batch=2))
    good.save(tmp_path / "g.npz")
    arrays = dict(np.load(tmp_path / "g.npz"))
    cases = {
        "format": dict(arrays, format=np.array("gradlab-bundle/99")),
        "missing array 'h'": {k: v for k, v in arrays.items() if k != "h"},
        "weight_hh_l0 has shape": dict(arrays, weight_hh_l0=np.zeros((3, 4))),
        "non-numeric": dict(arrays, x=np.full(arrays["x"].shape, "a")),
    }
    for words, content in cases.items():
        np.savez(tmp_path / "bad.npz", **content)
        with pytest.raises(ValueError, match=words):
            gradlab.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "pickled.npz", **dict(arrays, x=np.array([{"evil": 1}], dtype=object)))
    with pytest.raises(ValueError, match="pickled"):
        gradlab.load(tmp_path / "pickled.npz")
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(ValueError, match="not a gradlab bundle"):
        gradlab.load(tmp_path / "text.npz")


def test_underflow_to_zero_is_recorded_and_flagged():
    p = gradlab.probe(gradlab.Config(init="gaussian", init_scale=0.3, seq_len=1000, hidden=16, batch=4))
    g = p.grad_h_norm
    assert g[0] == 0.0 and g[-1] > 0
    flag = p.nonfinite["grad_h_norm:zero"]
    assert flag["step"] == np.flatnonzero(g == 0)[-1] and flag["count"] == np.sum(g == 0)
    nz = g[g > 0]
    assert nz.min() < 1e-300  # followed into the subnormals, not cut off at 1e-154


def test_overflow_is_recorded_and_flagged_without_warnings():
    p = gradlab.probe(gradlab.Config(nonlinearity="relu", init="gaussian", init_scale=3.0, seq_len=1000, hidden=16,
                                     batch=4))
    assert not np.isfinite(p.loss) or not np.all(np.isfinite(p.grad_h_norm))
    assert p.nonfinite  # flagged, with a step


def test_float32_underflows_where_float64_does_not():
    cfg = gradlab.Config(seq_len=400, hidden=16, batch=4)
    assert np.all(gradlab.probe(cfg).grad_h_norm > 0)
    p32 = gradlab.probe(cfg.replace(dtype="float32"))
    assert p32.h.dtype == np.float32 and "grad_h_norm:zero" in p32.nonfinite


def test_weights_from_a_pytorch_style_state_dict(tmp_path):
    """A model with an `lstm` submodule and a `head` Linear saves keys like lstm.weight_hh_l0 / head.weight."""
    cfg = gradlab.Config(cell="lstm", seq_len=30, hidden=6, batch=4)
    p = gradlab.probe(cfg)
    sd = {("lstm." + k if not k.startswith("head") else k): v for k, v in p.params.items()}
    np.savez(tmp_path / "w.npz", **sd)
    q = gradlab.probe(cfg, params=dict(np.load(tmp_path / "w.npz")))
    assert q.loss == p.loss and np.array_equal(q.grad_h_norm, p.grad_h_norm)
    with pytest.raises(ValueError, match="hidden"):
        gradlab.probe(cfg.replace(hidden=7), params=p.params)
    with pytest.raises(ValueError, match="missing parameter"):
        gradlab.probe(cfg, params={k: v for k, v in p.params.items() if k != "head.bias"})
    with pytest.raises(ValueError, match="unexpected parameter 'weight_ih_l1'"):
        gradlab.probe(cfg, params=dict(p.params, weight_ih_l1=p.params["weight_ih_l0"]))


def test_cli_probe_then_verify(tmp_path, capsys):
    out = tmp_path / "lstm.npz"
    assert main(["probe", "--cell", "lstm", "--seq-len", "40", "--hidden", "8", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "LSTM on adding, T=40, H=8" in text and "saved" in text
    assert gradlab.load(out).config == gradlab.Config(cell="lstm", seq_len=40, hidden=8)
    assert main(["verify", str(out)]) == 0
    assert "OK: largest relative error 0.00e+00" in capsys.readouterr().out


def test_cli_config_file_and_flags_override(tmp_path, capsys):
    (tmp_path / "c.json").write_text('{"cell": "lstm", "seq_len": 25, "hidden": 4}')
    out = tmp_path / "b.npz"
    assert main(["probe", "--config", str(tmp_path / "c.json"), "--seq-len", "12", "--out", str(out)]) == 0
    assert gradlab.load(out).config == gradlab.Config(cell="lstm", seq_len=12, hidden=4)


@pytest.mark.parametrize("argv,words", [
    (["probe", "--seq-len", "-3"], "seq_len = -3"),
    (["probe", "--init", "he"], "init = 'he'"),
    (["probe", "--bogus"], "unrecognized arguments"),
    (["verify", "/nonexistent.npz"], "no such file"),
    (["probe", "--config", "/nonexistent.json"], "cannot read --config"),
    (["probe", "--weights", "/nonexistent.npz"], "no such file"),
])
def test_cli_errors_are_one_line_exit_2(cli, argv, words):
    r = cli(*argv)
    assert r.returncode == 2
    assert words in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_python_m_gradlab_end_to_end(tmp_path):
    """The real entry point in a new interpreter: a probe's summary on stdout, a bundle, exit 0; an error is one line
    on stderr with exit code 2 (argparse's and gradlab's own alike). The console script: tests/test_packaging.py."""
    def run(*argv):
        return subprocess.run([sys.executable, "-m", "gradlab", *argv], cwd=ROOT, capture_output=True, text=True)

    r = run("probe", "--seq-len", "10", "--hidden", "3", "--batch", "2", "--out", str(tmp_path / "b.npz"))
    assert r.returncode == 0 and "RNN (tanh) on adding, T=10, H=3" in r.stdout and r.stderr == "", r.stderr
    assert gradlab.load(tmp_path / "b.npz").config == gradlab.Config(seq_len=10, hidden=3, batch=2)
    for argv, words in ((["probe", "--seq-len", "-3"], "seq_len = -3"), (["probe", "--bogus"], "unrecognized")):
        r = run(*argv)
        assert r.returncode == 2 and r.stdout == "" and words in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr, r.stderr


def test_cli_verify_fails_on_a_mismatch(tmp_path, capsys):
    p = gradlab.probe(gradlab.Config(seq_len=10, hidden=3, batch=2))
    p.grad_h_norm = p.grad_h_norm * 1.001
    p.save(tmp_path / "t.npz")
    assert main(["verify", str(tmp_path / "t.npz")]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_memory_estimate_tracks_the_real_peak_and_refuses_huge_configs(cli):
    from gradlab.probe import estimate_bytes
    cfg = gradlab.Config(cell="lstm", seq_len=1000, hidden=128, batch=32)
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's peak (fork), VmHWM is its own
    code = ("import re, gradlab\n"
            "hwm = lambda: int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) * 1024\n"
            f"r0 = hwm(); gradlab.probe(gradlab.Config.from_json({cfg.to_json()!r})); print(hwm() - r0)")
    grew = int(subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout)
    est = estimate_bytes(cfg)
    assert 0.5 * grew < est < 2.0 * grew, (est, grew)
    huge = gradlab.Config(cell="lstm", seq_len=5000, hidden=1024, batch=4096)
    with pytest.raises(ValueError, match=r"needs about .* GB .* reduce seq_len \(5000\)"):
        gradlab.probe(huge)
    with pytest.raises(ValueError, match="reduce"):
        gradlab.train(huge)
    r = cli("probe", "--cell", "lstm", "--seq-len", "5000", "--hidden", "1024", "--batch", "4096")
    assert r.returncode == 2 and "reduce" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_weights_that_are_not_an_npz_are_refused_in_one_line(cli, tmp_path):
    np.save(tmp_path / "w.npy", np.zeros(3))
    (tmp_path / "t.npz").write_text("not a zip")
    for path in (tmp_path / "w.npy", tmp_path / "t.npz"):
        r = cli("probe", "--weights", path)
        assert r.returncode == 2 and "not a .npz" in r.stderr and "Traceback" not in r.stderr


def test_flags_change_a_preset(cli, tmp_path):
    r = cli("export", "--preset", "exploding", "--seq-len", "30", "--formats", "csv", "--out", tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "grad_vs_time_adding_T30_gaussian.csv").exists()
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["init_scale"] == 2.0 and saved["seq_len"] == 30  # the flag changed T; the rest is the preset's
