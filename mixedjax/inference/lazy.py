"""scipy's submodules imported when first needed: scipy.stats alone costs about a second of ``import mixedjax``."""

import importlib
import math

import numpy as np


def scipy_module(name: str):
    """``scipy.<name>``, imported on first use."""
    return importlib.import_module(f"scipy.{name}")


def normal_p(z) -> np.ndarray:
    """Two-sided normal p-values, erfc(|z|/√2), without importing scipy.stats (about a second) for a first
    printout."""
    return np.array([math.erfc(abs(float(v)) / math.sqrt(2.0)) for v in np.ravel(np.asarray(z, float))])
