"""Hostile bundles and weight files: each class is refused in one line, naming the user's file, and nothing is
inflated before its declared shape is checked (a small file that unpacks to gigabytes is refused cheaply)."""
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import gradlab
from gradlab import record

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    d = tmp_path_factory.mktemp("good")
    gradlab.probe(gradlab.Config(seq_len=6, hidden=3, batch=2)).save(d / "g.npz")
    return dict(np.load(d / "g.npz"))


def npy_header(shape, dtype="<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()  # magic string and header


def bomb(path: Path, arrays: dict, name: str, shape: tuple, chunk: int = 2**22) -> None:
    """A bundle whose `name` member inflates to prod(shape) * 8 bytes of zeros (deflate: ~1000x smaller on disk)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for k, v in arrays.items():
            if k != name:
                with z.open(k + ".npy", "w") as fh:
                    np.lib.format.write_array(fh, v)
        with z.open(name + ".npy", "w", force_zip64=True) as fh:
            fh.write(npy_header(shape))
            left = int(np.prod(shape)) * 8
            zeros = bytes(chunk)
            while left > 0:
                fh.write(zeros[:min(chunk, left)])
                left -= chunk


def refused(path, words):
    with pytest.raises(ValueError, match=words) as e:
        gradlab.load(path)
    msg = str(e.value)
    assert "\n" not in msg and str(path) in msg  # one line, naming the user's file
    return msg


def test_a_deflate_bomb_is_refused_before_inflating_in_bounded_memory(arrays, tmp_path):
    """200 MB of zeros in a ~0.2 MB file, against a 64 MB reading budget: refused, and the process that reads it
    stays far below what inflating would cost (measured in a fresh process)."""
    path = tmp_path / "bomb.npz"
    bomb(path, arrays, "x", (25_000_000,))
    assert path.stat().st_size < 2**20
    code = ("import resource, sys; sys.path.insert(0, %r); from gradlab import record; import gradlab\n"
            "record.READ_BUDGET = 64 * 2**20\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "try:\n    gradlab.load(%r)\nexcept ValueError as e:\n    print('REFUSED', e)\n"
            "print('GROWTH_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n") % (str(ROOT), str(path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "REFUSED" in out and "reading budget" in out, out
    growth_kb = int(out.split("GROWTH_KB")[1])
    assert growth_kb < 50_000, growth_kb  # inflating would have cost 200 MB


def test_a_member_that_declares_more_than_it_holds(arrays, tmp_path):
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as z:
        for k, v in arrays.items():
            if k != "x":
                with z.open(k + ".npy", "w") as fh:
                    np.lib.format.write_array(fh, v)
        z.writestr("x.npy", npy_header((400_000_000,)) + bytes(64))  # "3 GB", holding 64 bytes
    msg = refused(path, "declares 3.0 GB but holds 64 bytes")
    assert "pickled" not in msg


def test_a_member_that_is_not_an_array(arrays, tmp_path):
    path = tmp_path / "extra.npz"
    np.savez(path, **arrays)
    with zipfile.ZipFile(path, "a") as z:
        z.writestr("notes.txt", "hello")
    refused(path, "member 'notes.txt' is not an array")


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_integer_or_boolean_parameters(arrays, tmp_path, dtype):
    path = tmp_path / "ints.npz"
    np.savez(path, **dict(arrays, weight_hh_l0=arrays["weight_hh_l0"].astype(dtype)))
    refused(path, "weight_hh_l0' has (integer|boolean) dtype .* expected floating-point numbers")


def test_json_nested_too_deep(arrays, tmp_path):
    path = tmp_path / "deep.npz"
    np.savez(path, **dict(arrays, nonfinite=np.array("[" * 100_000 + "]" * 100_000)))
    refused(path, "'nonfinite' is not valid JSON")
    np.savez(path, **dict(arrays, config=np.array("[" * 100_000)))
    assert gradlab.load(path).config is None  # an unreadable config is kept as a note, the bundle still loads
    with pytest.raises(ValueError, match="not valid JSON"):
        gradlab.Config.from_json("{\"a\":" * 100_000)


@pytest.mark.parametrize("axis", [0, 1])
def test_zero_sizes(arrays, tmp_path, axis):
    path = tmp_path / "empty.npz"
    cut = {k: (np.take(v, [], axis=axis) if k in ("x", "y", "y_mask", "h") and v.ndim > axis else v)
           for k, v in arrays.items()}
    np.savez(path, **cut)
    refused(path, "must each be at least 1|do not match|has shape")


def test_the_cli_refuses_in_one_line(cli, arrays, tmp_path):
    path = tmp_path / "forged.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weight_hh_l0.npy", npy_header((400_000_000,)) + bytes(64))
    for args in (["verify", str(path)], ["probe", "--weights", str(path)]):
        r = cli(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and str(path) in r.stderr and "declares" in r.stderr
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000)
    r = cli("probe", "--config", deep)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "not valid JSON" in r.stderr


from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

KEYS = ["x", "y", "y_mask", "h", "loss", "weight_hh_l0", "weight_ih_l0", "head.weight", "grad_h_norm", "grad_x_norm",
        "nonfinite", "config", "cell", "format"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(KEYS),
       change=st.sampled_from(["int", "bool", "complex", "zero_first_axis", "extra_axis", "text", "forged_size"]))
def test_any_tampered_entry_is_loaded_or_refused_in_one_line(arrays, tmp_path_factory, key, change):
    """Whatever one entry of a good bundle is turned into, load either reads a consistent bundle or refuses with a
    single line that names the file: never a traceback from inside numpy or zipfile."""
    path = tmp_path_factory.mktemp("tamper") / "t.npz"
    a = np.asarray(arrays[key])
    if change == "forged_size":
        with zipfile.ZipFile(path, "w") as z:
            for k, v in arrays.items():
                if k != key:
                    with z.open(k + ".npy", "w") as fh:
                        np.lib.format.write_array(fh, v)
            z.writestr(key + ".npy", npy_header((10**9,)) + bytes(16))
    else:
        new = {"int": lambda: a.astype(np.int64) if a.dtype.kind in "fiub" else a,
               "bool": lambda: a.astype(bool) if a.dtype.kind in "fiub" else a,
               "complex": lambda: a.astype(complex) if a.dtype.kind in "fiub" else a,
               "zero_first_axis": lambda: a[:0] if a.ndim else a,
               "extra_axis": lambda: a[None],
               "text": lambda: np.array("surprise")}[change]()
        np.savez(path, **dict(arrays, **{key: new}))
    try:
        b = gradlab.load(path)
    except ValueError as e:
        assert "\n" not in str(e) and str(path) in str(e), str(e)
    else:
        assert b.x.shape[0] >= 1 and b.params["weight_hh_l0"].dtype.kind == "f"


def test_verify_refuses_a_recomputation_over_the_memory_budget(tmp_path, monkeypatch):
    """verify recomputes a bundle from its arrays; the same memory model as probe's says beforehand whether that
    fits (here against a budget made tiny), and refuses in one line naming the file."""
    import importlib
    path = tmp_path / "b.npz"
    gradlab.probe(gradlab.Config(seq_len=50, hidden=8, batch=4)).save(path)
    probe_module = importlib.import_module("gradlab.probe")
    monkeypatch.setattr(probe_module, "MEMORY_BUDGET", 10_000)
    with pytest.raises(ValueError, match="recomputing this bundle needs about .* GB") as e:
        gradlab.verify(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_a_run_bundle_with_deep_json_is_refused_in_one_line(tmp_path):
    run = gradlab.train(gradlab.Config(seq_len=6, hidden=3, batch=2, steps=2, record_every=1))
    run.save(tmp_path / "r.npz")
    arrays = dict(np.load(tmp_path / "r.npz"))
    np.savez(tmp_path / "deep.npz", **dict(arrays, stopped=np.array("[" * 100_000 + "]" * 100_000)))
    refused(tmp_path / "deep.npz", "'stopped' is not valid JSON")
    np.savez(tmp_path / "cfg.npz", **dict(arrays, config=np.array("{\"a\":" * 100_000)))
    refused(tmp_path / "cfg.npz", "a run bundle's config is not valid JSON")


def test_weights_that_are_not_floating_point_name_the_file(cli, arrays, tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, **{k: arrays[k].astype(bool) if k == "weight_ih_l0" else arrays[k]
                      for k in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "head.weight", "head.bias")})
    r = cli("probe", "--seq-len", "6", "--hidden", "3", "--batch", "2", "--weights", path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert str(path) in r.stderr and "'weight_ih_l0' has boolean dtype" in r.stderr


def test_the_lock_file_is_never_opened_through_a_planted_link(tmp_path):
    from gradlab import files
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "sweep.csv"
    Path(str(out) + ".lock").symlink_to(victim)
    with pytest.raises(OSError, match="cannot use the lock file"):
        with files.locked(out):
            pass
    assert victim.read_text() == "precious"


def test_written_files_get_the_permissions_open_would_give(tmp_path):
    """A handout or an export is for sharing: not the private 0600 of a temporary file."""
    import os
    from gradlab.files import write_bytes
    old = os.umask(0o022)
    try:
        write_bytes(tmp_path / "a.pdf", b"%PDF-")
        assert (tmp_path / "a.pdf").stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        write_bytes(tmp_path / "b.pdf", b"%PDF-")
        assert (tmp_path / "b.pdf").stat().st_mode & 0o777 == 0o600  # a stricter umask is respected
    finally:
        os.umask(old)
