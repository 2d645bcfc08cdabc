"""Kenward–Roger against pbkrtest / lmerTest (tests/reference/lme4_inference.json): df 1e-3 relative, adjusted
standard errors 1e-4 relative; and the derivatives it is built from against finite differences."""

from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from inference_reference import case, fitted

import mixedjax as mj
from mixedjax.inference.kenward_roger import _F, kenward_roger_parts


@pytest.mark.parametrize("case_id", ["sleepstudy_slope", "sleepstudy_intercept"])
def test_kenward_roger_coeftable_matches_pbkrtest(case_id):
    ref = case(case_id)["REML"]["kenward_roger"]
    t = fitted(case_id, True).coeftable(ddf="kenward-roger")
    assert list(t.columns) == ["Coef.", "Std. Error", "df", "t", "Pr(>|t|)"]
    np.testing.assert_allclose(t["df"], ref["df"], rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], ref["se"], rtol=1e-4)
    np.testing.assert_allclose(t["Pr(>|t|)"], ref["p"], rtol=5e-3)


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["penicillin_crossed", "pastes_nested", "alfalfa_splitplot"])
def test_kenward_roger_coeftable_matches_pbkrtest_more(case_id):
    ref = case(case_id)["REML"]["kenward_roger"]
    t = fitted(case_id, True).coeftable(ddf="kenward-roger")
    np.testing.assert_allclose(t["df"], np.atleast_1d(ref["df"]), rtol=1e-3)
    np.testing.assert_allclose(t["Std. Error"], np.atleast_1d(ref["se"]), rtol=1e-4)


def test_kenward_roger_needs_reml():
    with pytest.raises(mj.ArgumentError, match="REML fits only"):
        fitted("sleepstudy_slope", False).coeftable(ddf="kenward-roger")


def test_kr_derivatives_match_finite_differences():
    """P_i = ∂(X'Σ⁻¹X)/∂φ_i from the exact derivatives, against central differences of X'Σ⁻¹X in φ."""
    m = fitted("sleepstudy_slope", True)
    a, layout = m.problem.arrays, m.problem.layout
    parts = kenward_roger_parts(m.theta, m.sigma, a, layout)
    np.testing.assert_allclose(parts.vcov, m.vcov.to_numpy(), rtol=1e-8)
    for i in range(len(parts.phi)):
        h = 1e-6 * max(1.0, abs(parts.phi[i]))
        e = np.zeros_like(parts.phi)
        e[i] = h
        Fp = np.asarray(_F(jnp.asarray(parts.phi + e), a, layout))
        Fm = np.asarray(_F(jnp.asarray(parts.phi - e), a, layout))
        dF = (Fp - Fm) / (2 * h)
        np.testing.assert_allclose(parts.P[i], dF, rtol=1e-5, atol=1e-7 * np.abs(dF).max())


def _boundary_cases():
    import json

    with open(REFERENCE_DIR / "kr_boundary.json", encoding="utf-8") as fh:
        return json.load(fh)["cases"]


REFERENCE_DIR = Path(__file__).resolve().parent / "reference"


@pytest.mark.parametrize("bcase", _boundary_cases(), ids=lambda c: c["id"])
def test_kenward_roger_at_a_boundary_fit(bcase):
    """Singular REML fits (an uncorrelated slope's variance at 0, a correlation at +1, dyestuff2's batch variance at
    0) against pbkrtest (tests/reference/make_kr_boundary.R): adjusted standard errors and df to 1e-3 relative (the
    measured differences are below 1e-7), at lme4's θ and σ and at mixedjax's own fit; the Satterthwaite table stays
    finite."""
    import pandas as pd

    from mixedjax.inference.kenward_roger import kenward_roger_parts, kr_ddf

    df = mj.dataset("dyestuff2") if not bcase["data"] else pd.read_csv(REFERENCE_DIR / bcase["data"])
    m = mj.lmm(bcase["formula"], df, reml=True)
    assert m.is_singular
    se_ref, df_ref = np.atleast_1d(bcase["kr_se"]), np.atleast_1d(bcase["kr_df"])
    parts = kenward_roger_parts(np.atleast_1d(np.asarray(bcase["theta"], float)), bcase["sigma"], m.problem.arrays,
                                m.problem.layout)
    p = len(se_ref)
    np.testing.assert_allclose(np.sqrt(np.diag(parts.vcov_adj)), se_ref, rtol=1e-3)
    np.testing.assert_allclose([kr_ddf(parts, np.eye(p)[j])[0] for j in range(p)], df_ref, rtol=1e-3)
    np.testing.assert_allclose(parts.vcov_adj.ravel(), np.asarray(bcase["vcov_adj"], float), rtol=1e-3,
                               atol=1e-3 * np.abs(bcase["vcov_adj"]).max())
    t = m.coeftable(ddf="kenward-roger")
    assert list(t.index) == list(np.atleast_1d(bcase["coef_names"]))
    np.testing.assert_allclose(t["Std. Error"].to_numpy(), se_ref, rtol=1e-3)
    np.testing.assert_allclose(t["df"].to_numpy(), df_ref, rtol=1e-3)
    assert np.all(np.isfinite(m.coeftable(ddf="satterthwaite").to_numpy()))