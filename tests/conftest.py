import json
import os
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
# a compilation cache of the test run's own (inherited by the subprocesses it starts): a user's cache, possibly
# written by other processes at the same time, never reaches the tests, and the tests never write into it
if "MIXEDJAX_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["MIXEDJAX_CACHE_DIR"] = tempfile.mkdtemp(prefix="mixedjax-test-cache-")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@pytest.fixture(scope="session")
def reference_lme4():
    """List of lme4 1.1-31 fits (one dict per fit)."""
    with open(REFERENCE_DIR / "lme4.json", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="session")
def reference_mm():
    """Dict of published MixedModels.jl 5.8 reference values."""
    with open(REFERENCE_DIR / "mixedmodels_jl.json", encoding="utf-8") as fh:
        return json.load(fh)
