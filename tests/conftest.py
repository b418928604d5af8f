import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests' own helpers (reference.py)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # gradlab from the checkout

GOLDEN = sorted((Path(__file__).parent / "fixtures" / "golden").glob("*.npz"))
