"""gradlab: watch gradients vanish, explode or survive through time in a vanilla RNN and an LSTM."""
from .config import Config
from .probe import probe, verify
from .record import FORMAT, Probe, load
from .tasks import Baseline, Batch, make_batch

__version__ = "0.1.0"
__all__ = ["Config", "probe", "verify", "load", "Probe", "FORMAT", "Baseline", "Batch", "make_batch", "__version__"]
