import os

# One BLAS thread, as `make run` uses: the engine's and the Lyapunov QR's matrices are small, where OpenBLAS's threads
# only add synchronisation (measured: up to 50x slower QRs on a loaded 2-core machine). Set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path

# gradlab from the checkout and the tests' own helpers (reference.py): pytest's `pythonpath` in pyproject.toml

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "golden").glob("*.npz"))
