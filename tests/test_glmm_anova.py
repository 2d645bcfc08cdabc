"""mj.anova of nested GLMMs against lme4's anova() of glmer fits (tests/reference/sweep_glmm_anova.json, made by
make_sweep_glmm_anova.R on the sweep's CSVs): cbpp with and without period (binomial), epil with and without an
observation-level term (Poisson). Columns npar, AIC, BIC, logLik, deviance (−2 logLik with the normalising
constants), Chisq, Df, Pr(>Chisq)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

HERE = Path(__file__).parent / "reference"
REF = json.loads((HERE / "sweep_glmm_anova.json").read_text())
MODELS = {
    "cbpp": ("cbpp", "binomial", ["cbind(incidence, size - incidence) ~ 1 + (1 | herd)",
                                  "cbind(incidence, size - incidence) ~ factor(period) + (1 | herd)"]),
    "epil": ("epil", "poisson", ["y ~ trt + lbase * trt + lage + V4 + (1 | subject) + (1 | obs)",
                                 "y ~ trt + lbase * trt + lage + V4 + (1 | subject)"]),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_likelihood_ratio_table_is_lme4_s(name):
    data, family, formulas = MODELS[name]
    df = pd.read_csv(HERE / "sweep_glmm" / f"{data}.csv")
    fits = [mj.glmm(f, df, family) for f in formulas]
    got = mj.anova(*fits)  # sorted by npar, as lme4's
    ref = REF[name]
    assert list(got.columns) == ref["cols"]
    assert list(got.index) == sorted(formulas, key=len)  # the smaller model first
    for col in ref["cols"]:
        want = np.array([np.nan if v is None else v for v in ref["values"][col]], dtype=float)
        rtol = 1e-3 if col == "Pr(>Chisq)" else 1e-6
        np.testing.assert_allclose(got[col].to_numpy(dtype=float), want, rtol=rtol, atol=1e-300, equal_nan=True)


def test_families_and_data_must_match():
    cbpp = pd.read_csv(HERE / "sweep_glmm" / "cbpp.csv")
    g = mj.glmm("incidence ~ 1 + (1 | herd)", cbpp, "poisson")
    b = mj.glmm("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp, "binomial")
    with pytest.raises(mj.ArgumentError, match="one family"):
        mj.anova(g, b)
    with pytest.raises(mj.DataError, match="different data"):
        mj.anova(g, mj.glmm("size ~ 1 + (1 | herd)", cbpp, "poisson"))
    with pytest.raises(mj.ArgumentError, match="mj.lmm or mj.glmm"):
        mj.anova(g, "not a model")
