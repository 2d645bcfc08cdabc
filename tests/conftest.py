import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_ENABLE_X64", "1")
# A persistent compilation cache of this run's own (one per pytest worker, inherited by the subprocesses the tests
# start, removed at the end): programs freed after each module (below) and those of the example scripts are read
# back instead of compiled again. Never the user's cache, and never shared between workers that write at once.
_CACHE = Path(tempfile.gettempdir()) / "mixedjax-tests" / "-".join(
    [os.environ.get("PYTEST_XDIST_TESTRUNUID", str(os.getpid())), os.environ.get("PYTEST_XDIST_WORKER", "main")])
os.environ["MIXEDJAX_CACHE_DIR"] = str(_CACHE)


def _quick_xla_flags() -> None:
    """XLA's quick code generation (LLVM -O0, no fusion emitters) for every program that does not choose its own
    options. The suite is compile-bound: 12.3 -> 8.9 min on 2 cores, every test passing either way. The options
    change the machine code XLA generates for a program, not the program; tests/test_xla_defaults.py runs the lme4
    reference tests again under XLA's defaults, which a user's fits compile with, and MIXEDJAX_TEST_XLA_DEFAULTS=1
    runs the whole suite so. XLA aborts on a flag it does not know, so the flags are tried in a subprocess once (by
    the first process; pytest-xdist's workers inherit the verdict)."""
    if "MIXEDJAX_TEST_USER_XLA_FLAGS" in os.environ:
        return
    if os.environ.get("MIXEDJAX_TEST_XLA_DEFAULTS") == "1":
        os.environ["MIXEDJAX_TEST_USER_XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "")
        return
    user = os.environ.get("XLA_FLAGS", "")
    # a flag the user set keeps the user's value (XLA takes the last of a repeated flag)
    quick = [f for f in ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")
             if f.split("=")[0] not in user]
    flags = " ".join([user, *quick]).strip()
    os.environ["MIXEDJAX_TEST_USER_XLA_FLAGS"] = user
    if not quick:
        return
    try:
        probe = subprocess.run([sys.executable, "-c", "import jax; jax.jit(lambda x: x + 1)(1.0).block_until_ready()"],
                               env={**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}, capture_output=True,
                               timeout=120)
    except subprocess.TimeoutExpired:
        return
    if probe.returncode == 0:
        os.environ["XLA_FLAGS"] = flags


_quick_xla_flags()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import pytest  # noqa: E402

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


def pytest_collection_modifyitems(config, items):
    """The cases marked ``sweep`` (the rest of the session-10 reference sweeps: a new model shape each, so a compile
    each) run only with MIXEDJAX_SWEEP=1, keeping the default run (CI's) within its 10 minutes on 2 cores."""
    if os.environ.get("MIXEDJAX_SWEEP") == "1":
        return
    skip = pytest.mark.skip(reason="the full reference sweep: run with MIXEDJAX_SWEEP=1")
    for item in items:
        if "sweep" in item.keywords:
            item.add_marker(skip)


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


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)
