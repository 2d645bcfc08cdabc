import json
import os
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
# no persistent compilation cache in the tests (inherited by the subprocesses they start): two full runs crashed
# in its read and write paths (a segfault in jax's compilation_cache / _compile_and_write_cache, in the same test of
# test_objective.py, after the batched-fit tests), and the test that passes alone
os.environ["MIXEDJAX_CACHE_DIR"] = ""

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


@pytest.fixture(scope="module", autouse=True)
def _free_compiled_executables():
    """Free each module's compiled executables when it ends. Each XLA CPU executable holds a few memory mappings;
    the whole suite in one process compiles enough of them to pass Linux's default vm.max_map_count (65,530), after
    which XLA's next compile segfaults (CI crashed so, ~75% through, in whichever test compiled next)."""
    yield
    import gc

    jax.clear_caches()
    gc.collect()
