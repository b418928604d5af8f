"""Sweeps: the schema, serial == LocalCluster, resuming without redoing or losing runs, the CLI and the map."""
import importlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gradlab
from gradlab import plots
from gradlab.files import shipped

sweep = importlib.import_module("gradlab.sweep")
SHIPPED = shipped("sweep_adding.parquet")
ROOT = Path(__file__).resolve().parent.parent
BASE = gradlab.Config(hidden=6, batch=4, steps=12, record_every=12)
GRID = {"seq_len": [8, 12], "init_scale": [0.5, 1.0]}
NUMBERS = ["seq_len", "init_scale", "seed", "cell", "final_loss", "baseline", "solved", "rate", "rho", "steps_done",
           "config"]


def test_schema_is_documented_and_complete(tmp_path):
    df = sweep.sweep(BASE, GRID, [0], out=str(tmp_path / "s.csv"), scheduler="serial")
    assert list(df.columns) == ["seq_len", "init_scale"] + list(sweep.SCHEMA)
    assert len(df) == 2 * 2 * 2 and set(df.cell) == {"rnn", "lstm"}
    assert df.solved.dtype == bool and (df.steps_done == 12).all() and (df.baseline == 1 / 6).all()
    assert np.allclose(df[df.cell == "rnn"].rho.to_numpy()[[0, 1]], [0.5, 1.0], rtol=0.6)  # rho follows the gain
    back = sweep.load(str(tmp_path / "s.csv"))
    pd.testing.assert_frame_equal(back[NUMBERS], df[NUMBERS], check_dtype=False)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="missing columns"):
        sweep.load(str(tmp_path / "bad.csv"))


def test_the_gru_joins_a_sweep_when_asked(tmp_path):
    df = sweep.sweep(BASE, {"seq_len": [8]}, [0], out=str(tmp_path / "s.csv"), scheduler="serial",
                     cells=("rnn", "lstm", "gru"))
    assert list(df.cell) == ["rnn", "lstm", "gru"] and (df.steps_done == 12).all()
    assert set(sweep.load(str(tmp_path / "s.csv")).cell) == {"rnn", "lstm", "gru"}
    with pytest.raises(ValueError, match="cells"):
        sweep.configs(BASE, {"seq_len": [8]}, [0], cells=("rnn", "transformer"))


def _worker_setup() -> tuple:
    import sys
    return os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS"), "gradlab.sweep" in sys.modules


def test_local_cluster_gives_the_serial_numbers():
    serial = sweep.sweep(BASE, GRID, [0, 1], scheduler="serial")
    cluster = sweep.sweep(BASE, GRID, [0, 1], workers=2)
    pd.testing.assert_frame_equal(cluster[NUMBERS], serial[NUMBERS])


def test_a_scheduler_address_gives_the_serial_numbers_on_warm_single_threaded_workers():
    """The --scheduler path (a cluster started elsewhere, here sweep's own LocalCluster) gives the same rows; the
    workers come from the fork server with gradlab imported and numpy's BLAS on one thread (one process per core)."""
    from dask.distributed import Client
    serial = sweep.sweep(BASE, GRID, [0], scheduler="serial")
    with sweep.local_cluster(2) as cluster:
        with Client(cluster) as client:
            assert set(client.run(_worker_setup).values()) == {("1", "1", True)}
        remote = sweep.sweep(BASE, GRID, [0], scheduler=cluster.scheduler_address)
    pd.testing.assert_frame_equal(remote[NUMBERS], serial[NUMBERS])


def test_batches_hold_every_run_once_biggest_first_in_about_equal_work():
    cfgs = [c.to_json() for c in sweep.configs(BASE.replace(steps=50), {"seq_len": [5, 10, 20, 40]}, [0, 1, 2])]
    out = sweep.batches(cfgs, workers=2, per_worker=4)
    assert sorted(j for b in out for j in b) == sorted(cfgs)
    costs = [sweep._cost(j) for b in out for j in b]
    assert costs == sorted(costs, reverse=True)  # the longest runs are handed out first
    assert 2 * 4 <= len(out) <= 2 * 4 + 1
    work = [sum(map(sweep._cost, b)) for b in out]
    assert max(work) <= 2 * sum(work) / len(work)  # no batch holds much more than its share
    lstm, rnn = (BASE.replace(cell=c).to_json() for c in ("lstm", "rnn"))
    assert sweep._cost(lstm) == 4 * sweep._cost(rnn)
    assert sweep.batches([rnn], workers=8) == [[rnn]]


def test_resume_neither_redoes_nor_loses_finished_runs(tmp_path, monkeypatch):
    out = str(tmp_path / "s.parquet")
    real = sweep.run_one
    calls, crash = [], [True]

    def crashing(cfg_json, varied=()):
        calls.append(cfg_json)
        if len(calls) == 3 and crash and crash.pop():
            raise RuntimeError("the machine died")
        return real(cfg_json, varied)

    monkeypatch.setattr(sweep, "run_one", crashing)
    with pytest.raises(RuntimeError):
        sweep.sweep(BASE, GRID, [0], out=out, scheduler="serial")
    assert len(sweep.load(out)) == 2  # the two finished runs were saved as they finished
    calls.clear()
    df = sweep.sweep(BASE, GRID, [0], out=out, scheduler="serial")
    assert len(calls) == 6 and len(df) == 8  # only the missing six ran
    calls.clear()
    again = sweep.sweep(BASE, GRID, [0], out=out, scheduler="serial")
    assert calls == [] and again[NUMBERS].equals(df[NUMBERS])
    calls.clear()
    sweep.sweep(BASE, {**GRID, "seq_len": [8, 12, 16]}, [0], out=out, scheduler="serial")
    assert len(calls) == 4  # a wider grid runs only its new points


def test_cli_sweep_and_export(cli, tmp_path):
    out = tmp_path / "s.parquet"
    r = cli("sweep", "--hidden", "4", "--batch", "4", "--steps", "8", "--record-every", "8", "--vary", "seq_len=6,9",
            "--vary", "init_scale=0.5:1.5:3", "--scheduler", "serial", "--out", out)
    assert r.returncode == 0, r.stderr
    df = sweep.load(str(out))
    assert sorted(df.init_scale.unique()) == [0.5, 1.0, 1.5] and len(df) == 12
    assert (tmp_path / "s.parquet.json").exists()
    r = cli("export", "--sweep", out, "--formats", "html,csv", "--out", tmp_path / "figs")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "figs" / "trainability_solved_s.html").exists()
    assert (tmp_path / "figs" / "data" / "sweep_s.csv").exists()
    r = cli("sweep", "--vary", "cell=rnn", "--out", out)
    assert r.returncode == 2 and "cannot vary 'cell'" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_shipped_sweep_draws_a_map_per_cell():
    df = sweep.load(str(SHIPPED))
    fig = plots.trainability_map(df, value="final_loss")
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 2
    z = np.asarray(heat[1].z, dtype=float)  # the LSTM's map
    assert z.shape == (df.init_scale.nunique(), df.seq_len.nunique())
    lstm = df[df.cell == "lstm"].groupby(["init_scale", "seq_len"]).final_loss.mean().unstack().to_numpy()
    np.testing.assert_allclose(z, lstm)


def test_malformed_sweeps_are_refused_in_one_line(tmp_path):
    good = sweep.load(str(SHIPPED))
    cases = {
        "no varied Config field": good.drop(columns=["seq_len", "init_scale"]),
        "'solved' must hold True or False": good.assign(solved="maybe"),
        "'cell' must hold rnn, lstm, gru": good.assign(cell="gru?"),
        "not Config fields": good.rename(columns={"seq_len": "bogus"}),
    }
    for words, df in cases.items():
        path = tmp_path / "bad.csv"
        df.to_csv(path, index=False)
        with pytest.raises(ValueError, match=words):
            sweep.load(str(path))
    good.to_csv(tmp_path / "ok.csv", index=False)  # a CSV round trip: True/False text back to booleans
    assert sweep.load(str(tmp_path / "ok.csv")).solved.dtype == bool


def test_the_dashboard_draws_a_malformed_sweep_as_one_line_and_lists_names_only(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    (tmp_path / "sweeps").mkdir()
    sweep.load(str(SHIPPED)).assign(solved="maybe").to_csv(tmp_path / "sweeps" / "broken.csv", index=False)
    monkeypatch.chdir(tmp_path)  # the dashboard lists ./sweeps of where it runs
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard.py"), default_timeout=120)
    at.query_params["panel"] = "sweep"  # the saved sweeps' tab
    box = at.run().selectbox(key="sweep_file")
    assert box.options == [SHIPPED.name, "broken.csv"]  # names, never paths a client could send back
    box.select("broken.csv").run()
    assert not at.exception
    assert any("broken.csv" in e.value and "'solved' must hold True or False" in e.value for e in at.error)


def test_two_sweeps_on_one_output_keep_every_row_once(tmp_path):
    """Two processes sweeping different grids into the same file at the same time: every run is kept exactly once
    (they used to overwrite each other's rows, and one exited on the shared temporary name)."""
    out = tmp_path / "shared.csv"
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import gradlab; from gradlab import sweep\n"
            "base = gradlab.Config(hidden=4, batch=4, steps=3, record_every=3)\n"
            "sweep.sweep(base, {'seq_len': %s}, [0, 1, 2], out=%r, scheduler='serial')\n")
    root = str(Path(__file__).resolve().parent.parent)
    procs = [subprocess.Popen([sys.executable, "-c", code % (root, lens, str(out))], stderr=subprocess.PIPE, text=True)
             for lens in ("[5, 6, 7, 8]", "[9, 10, 11, 12]")]
    for p in procs:
        assert p.wait(300) == 0, p.stderr.read()
    df = sweep.load(str(out))
    assert len(df) == 2 * 4 * 3 * 2  # two grids x 4 lengths x 3 seeds x 2 cells
    assert df.config.is_unique and sorted(df.seq_len.unique()) == list(range(5, 13))


def test_writes_never_follow_a_planted_link(tmp_path):
    """The temporary names are unpredictable and created exclusively: a link planted where the old predictable
    name was (<out>.tmp.npz, <out>.part) is left alone, and so is its target."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "b.npz"
    for planted in (str(out) + ".tmp.npz", str(out) + ".part"):
        Path(planted).symlink_to(victim)
    gradlab.probe(gradlab.Config(seq_len=5, hidden=3, batch=2)).save(out)
    assert victim.read_text() == "precious" and gradlab.load(out).seq_len == 5
    assert sorted(p.name for p in tmp_path.iterdir() if not p.is_symlink()) == ["b.npz", "victim.txt"]  # no debris


def test_writing_n_rows_costs_o_n_the_file_is_rewritten_only_when_they_double(tmp_path, monkeypatch):
    """Each run is one journal line; the output file is rewritten at 2, 4, 8, ... rows and at the end (it used to be
    read back and rewritten after every run: quadratic in the sweep's size)."""
    import math
    out = str(tmp_path / "s.parquet")
    writes = []
    real = sweep.atomic_write
    monkeypatch.setattr(sweep, "atomic_write", lambda path, write: writes.append(path) or real(path, write))
    df = sweep.sweep(BASE, GRID, [0], out=out, scheduler="serial")
    n = len(df)
    assert n == 8 and len(writes) <= math.ceil(math.log2(n)) + 1
    assert len(sweep.load(out)) == n and os.path.getsize(sweep.journal(out)) == 0  # all in the file, journal empty


def test_a_killed_sweep_loses_no_finished_run(tmp_path, monkeypatch):
    """Killed before the file was ever written (no finally runs on SIGKILL): the journal alone keeps the finished
    runs, and the next sweep skips them."""
    out = str(tmp_path / "s.parquet")
    real_run, real_save = sweep.run_one, sweep._save
    calls = []

    def dies_at_the_third(cfg_json, varied=()):
        calls.append(cfg_json)
        if len(calls) == 3:
            raise SystemExit("killed")
        return real_run(cfg_json, varied)

    monkeypatch.setattr(sweep, "run_one", dies_at_the_third)
    monkeypatch.setattr(sweep, "_save", lambda *a: None)  # as if killed: nothing but the journal reached the disk
    with pytest.raises(SystemExit):
        sweep.sweep(BASE, GRID, [0], out=out, scheduler="serial")
    assert not os.path.exists(out) and len(sweep._journal_rows(out)) == 2
    monkeypatch.setattr(sweep, "_save", real_save)
    calls.clear()
    monkeypatch.setattr(sweep, "run_one", lambda c, v=(): calls.append(c) or real_run(c, v))
    df = sweep.sweep(BASE, GRID, [0], out=out, scheduler="serial")
    assert len(calls) == 6 and len(df) == 8 and len(sweep.load(out)) == 8
