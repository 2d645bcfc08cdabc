"""mixedjax: linear mixed-effects models with JAX, using lme4 formulas.

    import mixedjax as mj
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    print(m); m.gradient(); m.hessian()

mixedjax computes in float64. Importing it switches JAX's 64-bit mode on unless JAX_ENABLE_X64 is set in the
environment (to any value); a fit refuses to run with 64-bit mode off and says how to turn it on. It also points
JAX's persistent compilation cache at ~/.cache/mixedjax/jax (MIXEDJAX_CACHE_DIR moves it; empty switches it off).
Last, it moves the objects that exist once JAX, numpy and pandas are imported into the garbage collector's permanent
generation (``gc.freeze()``), which takes about half a second off a short script; MIXEDJAX_GC_FREEZE=0 switches
that off.
"""

import os as _os

import jax as _jax

if "JAX_ENABLE_X64" not in _os.environ:
    _jax.config.update("jax_enable_x64", True)

# Compiled fits are kept in JAX's persistent compilation cache, so a new process fitting a model of a shape seen
# before skips compilation. Set MIXEDJAX_CACHE_DIR to move it, or to an empty string to switch it off; a cache
# directory you configured for JAX yourself is left alone.
_cache = _os.environ.get("MIXEDJAX_CACHE_DIR", _os.path.join(_os.path.expanduser("~"), ".cache", "mixedjax", "jax"))
if _cache and not _jax.config.jax_compilation_cache_dir:
    _jax.config.update("jax_compilation_cache_dir", _cache)
    _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)

from ._datasets import dataset, datasets  # noqa: E402
from ._errors import ArgumentError, DataError, FitError, FormulaError, MixedjaxError  # noqa: E402
from ._fit import FitOptions, OptSummary  # noqa: E402
from ._objective import deviance, fixed_sigma_objective  # noqa: E402
from ._results import LinearMixedModel, Problem, fit, lmm  # noqa: E402
from ._varcorr import VarCorr, VarCorrGroup  # noqa: E402

__version__ = "0.1.0"

# JAX, numpy and pandas leave several hundred thousand long-lived objects behind after import. Every full collection
# of the cyclic garbage collector walks them all again: during tracing and compilation, and once more when the
# interpreter exits. Freezing them (they live as long as the process anyway) cut a cold sleepstudy fit from about
# 3.4 s to 2.8 s of wall time on the 2-core development machine (benchmarks/RESULTS.md). Objects are still freed by
# reference counting; only cycles already unreachable at this moment are never collected.
if _os.environ.get("MIXEDJAX_GC_FREEZE", "1") != "0":
    import gc as _gc

    _gc.freeze()

__all__ = [
    "lmm",
    "fit",
    "Problem",
    "LinearMixedModel",
    "OptSummary",
    "FitOptions",
    "VarCorr",
    "VarCorrGroup",
    "deviance",
    "fixed_sigma_objective",
    "dataset",
    "datasets",
    "MixedjaxError",
    "FormulaError",
    "DataError",
    "FitError",
    "ArgumentError",
]
