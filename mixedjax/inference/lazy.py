"""scipy's submodules imported when first needed: scipy.stats alone costs about a second of ``import mixedjax``."""

import importlib


def scipy_module(name: str):
    """``scipy.<name>``, imported on first use."""
    return importlib.import_module(f"scipy.{name}")
