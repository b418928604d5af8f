"""gradlab: watch gradients vanish, explode or survive through time in a vanilla RNN, an LSTM and a GRU."""
from . import analysis
from .config import Config
from .probe import probe, verify
from .record import FORMAT, RUN_FORMAT, Probe, Progress, Run, load
from .tasks import Baseline, Batch, make_batch
from .train import train, train_many, train_pair

__version__ = "0.1.0"
__all__ = ["Config", "probe", "verify", "load", "train", "train_pair", "train_many", "analysis", "Probe", "Run", "Progress",
           "FORMAT", "RUN_FORMAT", "Baseline", "Batch", "make_batch", "__version__"]
