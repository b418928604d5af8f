"""Curated scenes: named Configs that each make one point, with the words to say over them.

The dashboard's tour and the export CLI's presets both read this one table. A scene's Config is shown for both
cells (the dashboard draws the RNN and the LSTM of it side by side); `train` says the point needs training.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import Config


@dataclass(frozen=True)
class Scene:
    name: str
    title: str
    narrative: str
    config: Config
    train: bool = False


SCENES = [
    Scene("vanishing", "The vanishing gradient",
          "Both networks read the same 100-step adding problem. The loss sits at the last step; follow its gradient "
          "back in time. In the tanh RNN it shrinks by the same factor every step, so step 1 hears almost nothing. "
          "In the LSTM, whose forget gates start open (b_f = 3), the cell state carries it back almost intact.",
          Config(forget_bias=3.0)),
    Scene("exploding", "The exploding gradient",
          "A ReLU RNN whose recurrent matrix has eigenvalues well outside the unit circle: every step back multiplies "
          "the gradient instead of shrinking it, by trillions over 100 steps. This is why training needs gradient "
          "clipping (Pascanu et al. 2013).",
          Config(nonlinearity="relu", init="gaussian", init_scale=2.0)),
    Scene("saturation", "Saturation: large weights, vanishing gradient",
          "With a handful of units and a large initial gain, every tanh unit is pinned near +1 or -1, where its "
          "slope is almost 0: the gradient vanishes although the matrix is large. Raise the hidden size to 64 and "
          "the same gain makes the network chaotic instead: the gradient explodes.",
          Config(init="gaussian", init_scale=10.0, hidden=6)),
    Scene("forget-bias", "The forget-gate bias",
          "PyTorch starts the LSTM's forget bias at 0, so f is about 0.5 and the cell path halves the gradient at "
          "every step: 1e-30 after 100 steps. Slide the forget bias to 1 (Jozefowicz et al. 2015) and then to 3, "
          "and watch the LSTM's curve flatten.",
          Config(forget_bias=0.0)),
    Scene("orthogonal", "Orthogonal versus Gaussian initialisation",
          "An orthogonal matrix keeps the norm of every vector: all its eigenvalues sit on the unit circle. A tanh RNN "
          "started there loses gradient only through the tanh slopes. Switch init to gaussian with the same scale and "
          "compare the slope.",
          Config(init="orthogonal", init_scale=1.0)),
    Scene("lstm-learns", "The LSTM learns, the RNN does not",
          "Train both on the adding problem with 50 steps between the two numbers to add. The dotted lines are what "
          "a network scores with no memory. The RNN never gets below them; the LSTM does, because gradient from the "
          "loss reaches the marked steps.",
          Config(seq_len=50, lr=1e-2, steps=600), train=True),
]

BY_NAME = {s.name: s for s in SCENES}
