"""Profile likelihood intervals and Wald intervals against lme4's confint (tests/reference/lme4_inference.json):
the profile ends to 1e-3 of the interval's width, Wald to 1e-5 relative."""

import numpy as np
import pytest
from inference_reference import case, fitted


@pytest.mark.parametrize("reml", [False, True])
def test_wald_confint_matches_lme4(reml):
    ref = case("sleepstudy_slope")["REML" if reml else "ML"]["wald_ci"]
    ci = fitted("sleepstudy_slope", reml).confint(method="wald")
    assert list(ci.columns) == ["lower", "upper"] and list(ci.index) == ref["names"]
    np.testing.assert_allclose(ci["lower"], ref["lower"], rtol=1e-5)
    np.testing.assert_allclose(ci["upper"], ref["upper"], rtol=1e-5)


def _check_profile(case_id, reml):
    ref = case(case_id)["REML" if reml else "ML"]["profile_ci"]
    ci = fitted(case_id, reml).confint(method="profile")
    assert list(ci.index) == ref["names"]  # lme4's names in lme4's order
    width = np.abs(np.asarray(ref["upper"]) - np.asarray(ref["lower"]))
    assert np.max(np.abs(ci["lower"].to_numpy() - ref["lower"]) / width) < 1e-3
    assert np.max(np.abs(ci["upper"].to_numpy() - ref["upper"]) / width) < 1e-3


@pytest.mark.slow
def test_profile_confint_intercept_model():
    _check_profile("sleepstudy_intercept", False)


@pytest.mark.slow
def test_profile_confint_correlated_slope_reml_fit_is_profiled_by_ml():
    _check_profile("sleepstudy_slope", True)


@pytest.mark.slow
def test_profile_confint_crossed():
    _check_profile("penicillin_crossed", False)


@pytest.mark.slow
def test_profile_object_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    pr = fitted("sleepstudy_intercept", False).profile(threshold=3)
    assert set(pr.table["parameter"]) == set(pr.parameters)
    block = pr.table[pr.table["parameter"] == "days"].sort_values("value")
    assert np.all(np.diff(block["zeta"].to_numpy()) > 0)  # ζ increases with the parameter
    assert block["zeta"].abs().max() > 3
    fig = pr.plot()
    assert len([a for a in fig.axes if a.get_visible()]) == len(pr.parameters)


@pytest.mark.slow
def test_profile_at_a_boundary_fit_matches_lme4():
    """dyestuff2 (batch sd estimated as 0): the zero sd is a stationary point of every inner fit (the deviance is even
    in it), so the inner fits also start off zero. lme4 1.1 / R on this machine, confint(lmer(Yield ~ 1 + (1 | Batch),
    Dyestuff2), oldNames = FALSE): sd 0 to 2.084043489, sigma 2.892831020 to 4.815832552, (Intercept) 4.312100217 to
    7.019092347; 1e-3 of each width (our exact ζ at lme4's intercept ends is ∓1.9609, so lme4's own error there is
    about 3e-4 of the width)."""
    import mixedjax as mj

    ref = {"sd_(Intercept)|batch": (0.0, 2.084043489), "sigma": (2.892831020, 4.815832552),
           "(Intercept)": (4.312100217, 7.019092347)}
    ci = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"), reml=True).confint()
    assert list(ci.index) == list(ref)
    for name, (lo, hi) in ref.items():
        assert abs(ci.loc[name, "lower"] - lo) <= 1e-3 * (hi - lo)
        assert abs(ci.loc[name, "upper"] - hi) <= 1e-3 * (hi - lo)


def test_confint_parm_picks_rows_as_lme4():
    """lme4's confint(parm = "theta_" | "beta_" | names): Wald rows of variance parameters are NA (NaN here); the
    profile's rows are the same intervals as the full table's."""
    import mixedjax as mj

    m = fitted("sleepstudy_slope", False)
    ref = case("sleepstudy_slope")["ML"]["wald_ci"]
    beta = m.confint(method="wald", parm="beta_")
    assert list(beta.index) == ref["names"]
    np.testing.assert_allclose(beta["lower"], ref["lower"], rtol=1e-5)
    theta = m.confint(method="wald", parm="theta_")
    assert list(theta.index) == ["sd_(Intercept)|subj", "cor_days.(Intercept)|subj", "sd_days|subj", "sigma"]
    assert theta.isna().all().all()
    two = m.confint(method="wald", parm=["sigma", "days", -1])
    assert list(two.index) == ["sigma", "days", "days"] and np.isnan(two.iloc[0]).all()
    np.testing.assert_allclose(two.iloc[1].to_numpy(), beta.loc["days"].to_numpy())
    with pytest.raises(mj.ArgumentError, match="'slope' is not a parameter"):
        m.confint(method="wald", parm="slope")
    with pytest.raises(mj.ArgumentError, match="out of range"):
        m.confint(method="wald", parm=6)
