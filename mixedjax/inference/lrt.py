"""Likelihood-ratio tests between nested models, as lme4's ``anova(m0, m1, ...)``."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from ..display.tables import TestTable
from ..errors import ArgumentError, DataError
from .lazy import scipy_module as _scipy


def _same_data(a, b) -> bool:
    da, db = a.problem.design, b.problem.design
    return (da.n == db.n and np.array_equal(np.asarray(da.rows), np.asarray(db.rows))
            and np.array_equal(da.y, db.y))


def anova(*models, refit: bool = True) -> pd.DataFrame:
    """Compare nested fits by likelihood-ratio tests (lme4's ``anova``).

    Models are sorted by their number of parameters; columns ``npar``, ``AIC``, ``BIC``, ``logLik``, ``deviance``,
    ``Chisq``, ``Df``, ``Pr(>Chisq)``, one row per model (indexed by its formula). REML fits are refitted by ML first
    (printing a message), unless ``refit=False``. All models must be fitted to the same rows and response.
    """
    from ..model.lmm import LinearMixedModel, fit

    if len(models) < 2:
        raise ArgumentError("mj.anova compares two or more fitted models; for one model's F tests use m.anova()")
    for i, m in enumerate(models):
        if not isinstance(m, LinearMixedModel):
            raise ArgumentError(f"argument {i + 1} of mj.anova is a {type(m).__name__}, not a fitted model")
    if not isinstance(refit, (bool, np.bool_)):
        raise ArgumentError(f"refit must be True or False, not {refit!r}")
    for i, m in enumerate(models[1:], start=2):
        if not _same_data(models[0], m):
            raise DataError(
                f"models 1 and {i} were fitted to different data (rows used or response differ: "
                f"{models[0].nobs} vs {m.nobs} observations, response '{models[0].problem.design.formula.response}' "
                f"vs '{m.problem.design.formula.response}'); fit all models to the same rows (drop missing values "
                f"of every variable first)")
    if refit and any(m.reml for m in models):
        print("refitting model(s) with ML (instead of REML)", file=sys.stderr)
        models = tuple(fit(m.problem, reml=False, theta0=np.asarray(m.theta)) if m.reml else m for m in models)
    elif not refit and len({m.reml for m in models}) > 1:
        raise ArgumentError("with refit=False the models must all be ML fits or all REML fits")
    order = sorted(range(len(models)), key=lambda i: models[i].dof)  # stable: ties keep the argument order
    ms = [models[i] for i in order]
    npar = np.array([m.dof for m in ms])
    dev = np.array([m.objective for m in ms])
    chisq = np.concatenate([[np.nan], np.maximum(0.0, -np.diff(dev))])
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
