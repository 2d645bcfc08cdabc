"""mj.anova likelihood-ratio tests against lme4's anova (tests/reference/lme4_inference.json): Chisq 1e-4 relative,
deviance 1e-7 relative, npar exact."""

import numpy as np
import pytest
from inference_reference import data, lrt_case

import mixedjax as mj


@pytest.mark.parametrize("case_id", ["sleepstudy_slope_vs_intercept", "pastes_nested_vs_inner", "alfalfa_fixed"])
def test_lrt_matches_lme4(case_id, capsys):
    c = lrt_case(case_id)
    models = [mj.lmm(f, data(c["data"]), reml=c["reml"]) for f in c["formulas"]]
    t = mj.anova(*reversed(models))  # sorted by npar whatever the order given
    assert list(t.columns) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
    np.testing.assert_array_equal(t["npar"], c["npar"])
    np.testing.assert_allclose(t["deviance"], c["deviance"], rtol=1e-7)
    np.testing.assert_allclose(t["AIC"], c["AIC"], rtol=1e-7)
    np.testing.assert_allclose(t["Chisq"].to_numpy()[1:], c["Chisq"][1:], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(t["Pr(>Chisq)"].to_numpy()[1:], c["p"][1:], rtol=1e-3)
    assert ("refitting model(s) with ML" in capsys.readouterr().err) == c["reml"]


def test_lrt_without_refit_keeps_reml():
    df = data("sleepstudy")
    m0 = mj.lmm("reaction ~ 1 + days + (1 | subj)", df, reml=True)
    m1 = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", df, reml=True)
    t = mj.anova(m0, m1, refit=False)
    assert t["deviance"].iloc[0] == pytest.approx(m0.objective)


def test_lrt_on_different_data_is_an_error():
    df = data("sleepstudy")
    m0 = mj.lmm("reaction ~ 1 + days + (1 | subj)", df)
    m1 = mj.lmm("reaction ~ 1 + days + (1 | subj)", df.iloc[:-10])
    with pytest.raises(mj.DataError, match="different data"):
        mj.anova(m0, m1)
    with pytest.raises(mj.ArgumentError):
        mj.anova(m0)


def test_lrt_of_a_model_with_itself_has_chisq_zero():
    """lme4 prints Chisq 0 for two equal fits; -0.0 (a deviance minus itself) would print as "-0.0"."""
    m = mj.lmm("reaction ~ 1 + days + (1 | subj)", mj.dataset("sleepstudy"), reml=False)
    t = mj.anova(m, m)
    assert t["Chisq"].iloc[1] == 0.0 and np.copysign(1.0, t["Chisq"].iloc[1]) == 1.0
    assert "-0.0" not in str(t)
