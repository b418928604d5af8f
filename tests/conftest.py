import os

# One BLAS thread, as `make run` uses: the engine's and the Lyapunov QR's matrices are small, where OpenBLAS's threads
# only add synchronisation (measured: up to 50x slower QRs on a loaded 2-core machine). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path
from typing import NamedTuple

import pytest

# gradlab from the checkout and the tests' own helpers (reference.py): pytest's `pythonpath` in pyproject.toml

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "golden").glob("*.npz"))


class CliResult(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capsys):
    """`cli(*argv)` runs `python -m gradlab ARGV` inside this process and returns what a shell would see (exit code,
    stdout, stderr), named as subprocess.run names them; seconds faster than a new interpreter per call. The tests
    that need a real process (the entry points, Ctrl-C, determinism across hash seeds) start one themselves."""
    from gradlab.cli import main

    def run(*argv) -> CliResult:
        capsys.readouterr()  # only this call's output
        try:
            code = main([str(a) for a in argv])
        except SystemExit as e:  # argparse's own exits (its errors, --help), as `python -m gradlab` would exit
            code = 0 if e.code is None else e.code
        out, err = capsys.readouterr()
        return CliResult(code, out, err)

    return run
