"""mixedjax: linear mixed-effects models with JAX, using lme4 formulas.

    import mixedjax as mj
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    print(m); m.gradient(); m.hessian()

mixedjax computes in float64. Importing it switches JAX's 64-bit mode on unless JAX_ENABLE_X64 is set in the
environment (to any value); a fit refuses to run with 64-bit mode off and says how to turn it on.
"""

import os as _os

import jax as _jax

if "JAX_ENABLE_X64" not in _os.environ:
    _jax.config.update("jax_enable_x64", True)

from ._datasets import dataset, datasets  # noqa: E402
from ._errors import ArgumentError, DataError, FitError, FormulaError, MixedjaxError  # noqa: E402
from ._fit import FitOptions, OptSummary  # noqa: E402
from ._objective import deviance, fixed_sigma_objective  # noqa: E402
from ._results import LinearMixedModel, Problem, fit, lmm  # noqa: E402
from ._varcorr import VarCorr, VarCorrGroup  # noqa: E402

__version__ = "0.1.0"

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
