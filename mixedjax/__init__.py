"""mixedjax: linear mixed-effects models with JAX, using lme4 formulas.

    import mixedjax as mj
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    print(m); m.gradient(); m.hessian()

mixedjax computes in float64. Importing it switches JAX's 64-bit mode on unless JAX_ENABLE_X64 is set in the
environment (to any value); a fit refuses to run with 64-bit mode off and says how to turn it on. It also points
JAX's persistent compilation cache at ~/.cache/mixedjax/jax, unless you configured JAX's own cache directory, and
keeps traced programs beside it in ~/.cache/mixedjax/traces (MIXEDJAX_CACHE_DIR moves both: $MIXEDJAX_CACHE_DIR/jax
and $MIXEDJAX_CACHE_DIR/traces; an empty value switches both off). It changes no other global state. While a fit
or an inference table runs, BLAS is held to one thread and given back its count after (fitting/blas.py; not when a
count is set in the environment).
"""

import os as _os

from .fitting import collector as _collector

# JAX's and pandas' imports make some 100,000 long-lived objects; the garbage collector's full passes meanwhile
# find nothing to free (fitting/collector.py), so it is paused until they are done.
with _collector.paused():
    import jax as _jax

    if "JAX_ENABLE_X64" not in _os.environ:
        _jax.config.update("jax_enable_x64", True)

    # Compiled fits are kept in JAX's persistent compilation cache, so a new process fitting a model of a shape
    # seen before skips compilation (and fitting.traces keeps their traced programs beside it). Set
    # MIXEDJAX_CACHE_DIR to move both, or to an empty string to switch them off; a cache directory you configured
    # for JAX yourself is left alone.
    _cache = _os.environ.get("MIXEDJAX_CACHE_DIR", _os.path.join(_os.path.expanduser("~"), ".cache", "mixedjax"))
    if _cache and not _jax.config.jax_compilation_cache_dir:
        _jax.config.update("jax_compilation_cache_dir", _os.path.join(_cache, "jax"))
        _jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)

    from .datasets import dataset, datasets  # noqa: E402
    from .errors import (ArgumentError, DataError, FitError, FormulaError, MixedjaxError,  # noqa: E402
                         UnknownFunctionError)
    from .fitting.options import FitOptions  # noqa: E402
    from .fitting.solve import RESULTS, Solution, solve  # noqa: E402
    from .fitting.summary import OptSummary  # noqa: E402
    from .core.objective import deviance, fixed_sigma_objective  # noqa: E402
    from .model.lmm import LinearMixedModel, Problem, fit, lmm  # noqa: E402
    from .model.varcorr import VarCorr, VarCorrGroup  # noqa: E402
    from .glmm import GeneralizedLinearMixedModel, glmm  # noqa: E402


# Imported on first use (PEP 562): fitting a linear mixed model needs none of them, and a new process is shorter
# without.
_LAZY = {"anova": ".inference.lrt", "Profile": ".inference.profile", "FitBatch": ".batch.many",
         "fit_many": ".batch.many"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mixedjax' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))

__version__ = "0.1.0"

__all__ = [
    "lmm",
    "fit",
    "fit_many",
    "FitBatch",
    "anova",
    "Profile",
    "Problem",
    "LinearMixedModel",
    "glmm",
    "GeneralizedLinearMixedModel",
    "OptSummary",
    "FitOptions",
    "RESULTS",
    "Solution",
    "solve",
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
    "UnknownFunctionError",
]
