"""A GLMM whose random-effect SD is small but positive is fitted there, not at zero (lme4 1.1-31's glmer, PIRLS and
BOBYQA converged tightly: tests/reference/make_glmm_small_theta.R).

The Laplace objective is even in a diagonal θ entry, so its derivative at θ = 0 is zero whatever the curvature: a
gradient-based run that reaches zero stops there. The fit probes a few values off zero (glmm.fit.PROBES); with a
single probe at 0.1, where the objective is already above its value at zero, these fits stopped at θ = 0 with a
lower log-likelihood than lme4's (the cloglog model by 0.009)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj

REF = json.loads((Path(__file__).parent / "reference" / "glmm_small_theta.json").read_text())
DATA = pd.read_csv(Path(__file__).parent / "reference" / "glmm_small_theta.csv", dtype={"fb": str, "g": str})


DEFAULT = {"cloglog", "cloglog_agq20", "probit_nagq0"}  # Laplace, quadrature, fast; each a compile: the rest swept


@pytest.mark.parametrize("case", [c if c["id"] in DEFAULT else pytest.param(c, marks=pytest.mark.sweep)
                                  for c in REF["cases"]], ids=[c["id"] for c in REF["cases"]])
def test_small_positive_theta_matches_glmer(case):
    kw = dict(fast=True) if case["nagq"] == 0 else dict(nagq=case["nagq"])
    m = mj.glmm(REF["formula"], DATA, "binomial", link=case["link"], **kw)
    assert m.loglik == pytest.approx(case["loglik"], rel=1e-8)  # not below lme4's: 1e-8 of 328 is 3e-6
    np.testing.assert_allclose(m.theta, case["theta"], atol=1e-3)
    np.testing.assert_allclose(m.fixef.to_numpy(), case["beta"], atol=1e-3)
    assert m.theta[0] > 0.02  # off the boundary: not a singular fit
