"""Type I and III F tables and contrasts against lmerTest (tests/reference/lme4_inference.json, the alfalfa
split-plot design under treatment coding): F and DenDF 1e-3 relative, NumDF exact."""

import numpy as np
import pandas as pd
import pytest
from inference_reference import case, fitted

import mixedjax as mj
from mixedjax.inference.coding import fixed_coding
from mixedjax.inference.hypotheses import type3

COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


@pytest.fixture(scope="module")
def alfalfa_reml():
    return fitted("alfalfa_splitplot", True)


@pytest.mark.slow
@pytest.mark.parametrize("key,typ,ddf,reml", [("anova_type3_satterthwaite", 3, "satterthwaite", True),
                                              ("anova_type1_satterthwaite", 1, "satterthwaite", True),
                                              ("anova_type3_kenward_roger", 3, "kenward-roger", True),
                                              ("anova_type3_satterthwaite", 3, "satterthwaite", False)])
def test_anova_matches_lmertest(key, typ, ddf, reml):
    ref = case("alfalfa_splitplot")["REML" if reml else "ML"][key]
    a = fitted("alfalfa_splitplot", reml).anova(type=typ, ddf=ddf)
    assert list(a.columns) == COLUMNS
    assert list(a.index) == ref["terms"]
    np.testing.assert_array_equal(a["NumDF"], ref["numdf"])
    np.testing.assert_allclose(a["F value"], ref["F"], rtol=1e-3)
    np.testing.assert_allclose(a["DenDF"], ref["dendf"], rtol=1e-3)
    np.testing.assert_allclose(a["Sum Sq"], ref["sumsq"], rtol=1e-3)
    np.testing.assert_allclose(a["Pr(>F)"], ref["p"], rtol=5e-3)


def test_type3_hypotheses_are_marginal_under_treatment_coding(alfalfa_reml):
    """Date's type III rows average the Date effect over Variety's three levels: 1 on a DateX column and 1/3 on each
    DateX:Variety column (by hand from the treatment coding)."""
    L = type3(fixed_coding(alfalfa_reml.problem.design))
    names = list(alfalfa_reml.fixef.index)
    row = pd.Series(L["Date"][0], index=names)
    assert row["DateO7"] == pytest.approx(1.0)
    assert row["DateO7:VarietyLadak"] == pytest.approx(1 / 3)
    assert row["DateO7:VarietyRanger"] == pytest.approx(1 / 3)
    assert row["DateS1"] == 0 and row["(Intercept)"] == 0
    assert L["Date:Variety"].shape == (6, 12)


def test_contrast_one_row_is_the_coefficient_t_test():
    m = fitted("sleepstudy_slope", True)
    c = m.contrast([0, 1])
    t = m.coeftable(ddf="satterthwaite")
    assert c["df"][0] == pytest.approx(t["df"].iloc[1], rel=1e-12)
    assert c["t value"][0] == pytest.approx(t["t"].iloc[1], rel=1e-12)
    named = m.contrast(pd.Series({"days": 1.0}))
    assert named["Estimate"][0] == pytest.approx(m.fixef["days"], rel=1e-12)


def test_joint_contrast_of_one_term_is_its_f_test(alfalfa_reml):
    a = alfalfa_reml.anova(type=3)
    L = type3(fixed_coding(alfalfa_reml.problem.design))["Variety"]
    c = alfalfa_reml.contrast(L)
    assert c["F value"].iloc[0] == pytest.approx(a.loc["Variety", "F value"], rel=1e-10)
    assert c["DenDF"].iloc[0] == pytest.approx(a.loc["Variety", "DenDF"], rel=1e-10)


def test_contrast_input_errors():
    m = fitted("sleepstudy_slope", True)
    with pytest.raises(mj.ArgumentError, match="2 columns"):
        m.contrast([1, 0, 0])
    with pytest.raises(mj.ArgumentError, match="not fixed effects"):
        m.contrast(pd.Series({"nope": 1.0}))
    with pytest.raises(mj.ArgumentError, match="type must be"):
        m.anova(type=4)


@pytest.mark.slow
def test_unbalanced_f_tables_and_kenward_roger_match_lmertest():
    """Five rows dropped from alfalfa, so no table coincides by balance (KR's F scaling and adjusted covariance are
    not 1 and Φ here); the values were printed by lmerTest / pbkrtest (tests/reference/lmertest_alfalfa_unbalanced.json).
    F, df and Sum Sq 1e-4 relative (R printed F to 7 digits; the two fits' σ̂ agree to about 1e-6 and the Sum Sq to
    1.3e-5), standard errors 1e-5 relative."""
    import json

    from inference_reference import REF, data

    ref = json.loads((REF / "lmertest_alfalfa_unbalanced.json").read_text())
    df = data("alfalfa").drop(index=ref["drop_rows"]).reset_index(drop=True)
    m = mj.lmm(ref["formula"], df, reml=True)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-5)
    for key, typ, ddf in (("type3_kenward_roger", 3, "kenward-roger"), ("type3_satterthwaite", 3, "satterthwaite"),
                          ("type1_satterthwaite", 1, "satterthwaite")):
        a = m.anova(type=typ, ddf=ddf)
        assert list(a.index) == ref["terms"]
        np.testing.assert_array_equal(a["NumDF"], ref[key]["numdf"])
        np.testing.assert_allclose(a["F value"], ref[key]["F"], rtol=1e-4)
        np.testing.assert_allclose(a["DenDF"], ref[key]["dendf"], rtol=1e-4)
        np.testing.assert_allclose(a["Sum Sq"], ref[key]["sumsq"], rtol=1e-4)
    t = m.coeftable(ddf="kenward-roger")
    np.testing.assert_allclose(t["Std. Error"], ref["kenward_roger_coef"]["se"], rtol=1e-5)
    np.testing.assert_allclose(t["df"], ref["kenward_roger_coef"]["df"], rtol=1e-4)


@pytest.mark.slow
def test_f_tables_with_numeric_covariates_match_lmertest():
    """A numeric covariate interacting with a factor (days * grp) and a lone covariate x, unbalanced; values printed
    by lmerTest / pbkrtest (tests/reference/lmertest_sleepstudy_covariates.json). F, DenDF and Sum Sq 1e-4 relative
    (R printed F to 5-7 digits; the two fits differ by about 1e-5)."""
    import json

    from inference_reference import REF, data

    ref = json.loads((REF / "lmertest_sleepstudy_covariates.json").read_text())
    base = data("sleepstudy")
    subjects = sorted(base["subj"].astype(str).unique())
    df = base.assign(grp=[f"g{subjects.index(s) % 3}" for s in base["subj"].astype(str)],
                     x=np.round(np.sin(np.arange(len(base))), 4))
    df = df[np.arange(len(df)) % 7 != 3].reset_index(drop=True)
    df["grp"] = df["grp"].astype("category")
    m = mj.lmm(ref["formula"], df, reml=True)
    for key, typ, ddf in (("type3_satterthwaite", 3, "satterthwaite"), ("type1_satterthwaite", 1, "satterthwaite"),
                          ("type3_kenward_roger", 3, "kenward-roger")):
        a = m.anova(type=typ, ddf=ddf)
        assert list(a.index) == ref["terms"]
        np.testing.assert_array_equal(a["NumDF"], ref[key]["numdf"])
        np.testing.assert_allclose(a["F value"], ref[key]["F"], rtol=1e-4)
        np.testing.assert_allclose(a["DenDF"], ref[key]["dendf"], rtol=1e-4)
        np.testing.assert_allclose(a["Sum Sq"], ref[key]["sumsq"], rtol=1e-4)
