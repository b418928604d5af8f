"""The package as a user installs it: a wheel with the shipped data and a `gradlab` command equal to
`python -m gradlab`, and the extras a dashboard or a sweep needs. Built from a copy, so the repository stays clean."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # builds and installs a wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    src = tmp_path_factory.mktemp("src")
    shutil.copy(ROOT / "pyproject.toml", src)
    shutil.copytree(ROOT / "gradlab", src / "gradlab", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                        "-w", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return next(out.glob("gradlab-*.whl"))


def test_the_wheel_carries_the_data_the_command_and_the_extras(wheel):
    z = zipfile.ZipFile(wheel)
    names = set(z.namelist())
    for data in ("gradlab/data/sweep_adding.parquet", "gradlab/data/fonts/DejaVuSans.ttf",
                 "gradlab/data/fonts/DejaVuSans-Bold.ttf", "gradlab/data/fonts/LICENSE"):
        assert data in names, data
    meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    extras = {line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Provides-Extra:")}
    assert {"dashboard", "sweep", "all"} <= extras
    needs = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert any("streamlit" in n and "dashboard" in n for n in needs) and any("dask" in n and "sweep" in n for n in needs)
    entry = z.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert "gradlab = gradlab.cli:main" in entry


def test_the_installed_command_probes_and_the_handout_finds_its_font(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, str(target / "bin" / "gradlab"), "probe", "--cell", "gru", "--seq-len", "10"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "GRU" in out.stdout and "top Lyapunov factor" in out.stdout
    fonts = subprocess.run([sys.executable, "-c", "import gradlab.handout as h; print(h.font_files())"],
                           capture_output=True, text=True, env=env, cwd=tmp_path)
    assert fonts.returncode == 0, fonts.stderr
    assert str(target) in fonts.stdout  # the copy installed with the package, not the repository's
