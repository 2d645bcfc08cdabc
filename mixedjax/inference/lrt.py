"""Likelihood-ratio tests between nested models, as lme4's ``anova(m0, m1, ...)``."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ..display.tables import TestTable
from ..errors import ArgumentError, DataError
from .lazy import scipy_module as _scipy


def _design(m):
    return m.design if hasattr(m, "family") else m.problem.design  # a GLMM keeps its design itself


def _response(m) -> np.ndarray:
    """The response as fitted: a GLMM's design holds a computed column (proportions), its data the values."""
    return np.asarray(m.data.y) if hasattr(m, "family") else np.asarray(_design(m).y)


def _response_name(m) -> str:
    return m.formula.split("~")[0].strip() if hasattr(m, "family") else _design(m).formula.response


def _same_data(a, b) -> bool:
    da, db = _design(a), _design(b)
    return (da.n == db.n and np.array_equal(np.asarray(da.rows), np.asarray(db.rows))
            and np.array_equal(_response(a), _response(b)))


def _deviance(m) -> float:
    """lme4's deviance column: −2 logLik (a GLMM's with its normalising constants, as its logLik)."""
    return float(m.deviance) if hasattr(m, "family") else float(m.objective)


def anova(*models, refit: bool = True) -> pd.DataFrame:
    """Compare nested fits by likelihood-ratio tests (lme4's ``anova``).

    Models are sorted by their number of parameters; columns ``npar``, ``AIC``, ``BIC``, ``logLik``, ``deviance``,
    ``Chisq``, ``Df``, ``Pr(>Chisq)``, one row per model (indexed by its formula). REML fits are refitted by ML first
    (printing a message), unless ``refit=False``. All models must be fitted to the same rows and response.
    Generalized linear mixed models (``mj.glmm``) compare as lme4's ``anova`` of ``glmer`` fits, all of one family.
    """
    from ..glmm.model import GeneralizedLinearMixedModel
    from ..model.lmm import LinearMixedModel, fit

    if len(models) < 2:
        raise ArgumentError("mj.anova compares two or more fitted models; for one model's F tests use m.anova()")
    for i, m in enumerate(models):
        if not isinstance(m, (LinearMixedModel, GeneralizedLinearMixedModel)):
            raise ArgumentError(f"argument {i + 1} of mj.anova is a {type(m).__name__}, not a fitted model "
                                "(mj.lmm or mj.glmm)")
    kinds = {(m.family.dist.value if hasattr(m, "family") else "gaussian") for m in models}
    if len(kinds) > 1:
        raise ArgumentError(f"mj.anova compares models of one family; these are {', '.join(sorted(kinds))} "
                            "(their likelihoods are of different responses)")
    if not isinstance(refit, (bool, np.bool_)):
        raise ArgumentError(f"refit must be True or False, not {refit!r}")
    for i, m in enumerate(models[1:], start=2):
        if not _same_data(models[0], m):
            raise DataError(
                f"models 1 and {i} were fitted to different data (rows used or response differ: "
                f"{models[0].nobs} vs {m.nobs} observations, response '{_response_name(models[0])}' "
                f"vs '{_response_name(m)}'); fit all models to the same rows (drop missing values "
                f"of every variable first)")
    if refit and any(m.reml for m in models):
        print("refitting model(s) with ML (instead of REML)", file=sys.stderr)
        models = tuple(fit(m.problem, reml=False, theta0=np.asarray(m.theta)) if m.reml else m for m in models)
    elif not refit and len({m.reml for m in models}) > 1:
        raise ArgumentError("with refit=False the models must all be ML fits or all REML fits")
    order = sorted(range(len(models)), key=lambda i: models[i].dof)  # stable: ties keep the argument order
    ms = [models[i] for i in order]
    npar = np.array([m.dof for m in ms])
    dev = np.array([_deviance(m) for m in ms])
    chisq = np.concatenate([[np.nan], np.maximum(0.0, -np.diff(dev)) + 0.0])  # + 0.0: no -0.0 for equal fits
    df = np.concatenate([[np.nan], np.diff(npar)]).astype(float)
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, _scipy('stats').chi2.sf(chisq, np.where(df > 0, df, 1)), np.nan)
    p[0] = np.nan
    names = [m.formula for m in ms]
    if len(set(names)) < len(names):
        names = [f"MODEL{i + 1}" for i in order]
    return TestTable({
        "npar": npar,
        "AIC": [m.aic for m in ms],
        "BIC": [m.bic for m in ms],
        "logLik": [m.loglik for m in ms],
        "deviance": dev,
        "Chisq": chisq,
        "Df": df,
        "Pr(>Chisq)": p,
    }, index=pd.Index(names, name="model"))
