"""Fits compared with the reference values of lme4 1.1-31 (tests/reference/lme4.json) and MixedModels.jl 5.8
(tests/reference/mixedmodels_jl.json).

Every distinct (data, formula, reml) is fitted once per test session (``_fit`` is cached), so the many small
parametrised tests below share their fits.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj

REFERENCE_DIR = Path(__file__).resolve().parent / "reference"
with open(REFERENCE_DIR / "lme4.json", encoding="utf-8") as _fh:
    _LME4 = json.load(_fh)
with open(REFERENCE_DIR / "mixedmodels_jl.json", encoding="utf-8") as _fh:
    _MM = json.load(_fh)["fits"]

SLOW_NOBS = 20000


@functools.lru_cache(maxsize=None)
def _fit(data: str, formula: str, reml: bool):
    return mj.lmm(formula, mj.dataset(data), reml=reml)


def _lme4_params():
    out = []
    for i, r in enumerate(_LME4):
        marks = [pytest.mark.slow] if r["nobs"] > SLOW_NOBS else []
        out.append(pytest.param(i, id=f"{r['id']}-{'REML' if r['reml'] else 'ML'}", marks=marks))
    return out


LME4_CASES = _lme4_params()


@pytest.fixture
def case(request, reference_lme4):
    """(reference dict, fitted model) for the parametrised lme4 case index."""
    r = reference_lme4[request.param]
    return r, _fit(r["data"], r["formula"], r["reml"])


def _parametrize_cases(fn):
    return pytest.mark.parametrize("case", LME4_CASES, indirect=True)(fn)


# ---------------------------------------------------------------------------------------------------------------
# lme4
# ---------------------------------------------------------------------------------------------------------------
@_parametrize_cases
def test_lme4_objective(case):
    r, m = case
    ref = r["objective"]
    # ours may be lower (a better optimum) but not by more than the same relative amount
    assert abs(m.objective - ref) <= 1e-6 * abs(ref), (m.objective, ref)
    assert m.deviance == m.objective
    assert m.reml == r["reml"]
    assert m.nobs == r["nobs"]


@_parametrize_cases
def test_lme4_theta(case):
    r, m = case
    # lme4's own optimum (bobyqa) is only this precise
    np.testing.assert_allclose(m.theta, r["theta"], rtol=2e-3, atol=1e-4)
    assert len(m.theta) == len(r["theta_names"])


@_parametrize_cases
def test_lme4_fixef_stderror_sigma(case):
    r, m = case
    assert list(m.fixef.index) == r["beta_names"]
    beta = np.asarray(r["beta"])
    scale = max(1.0, float(np.max(np.abs(beta))))
    np.testing.assert_allclose(m.fixef.to_numpy(), beta, rtol=1e-5, atol=1e-8 * scale)
    assert list(m.stderror.index) == r["beta_names"]
    np.testing.assert_allclose(m.stderror.to_numpy(), r["se"], rtol=1e-4)
    np.testing.assert_allclose(m.sigma, r["sigma"], rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(m.vcov.to_numpy())), m.stderror.to_numpy(), rtol=1e-12)


@_parametrize_cases
def test_lme4_information_criteria(case):
    r, m = case
    p, ntheta = len(r["beta"]), len(r["theta"])
    dof = p + ntheta + 1
    assert m.dof == dof
    # the reference's own AIC fixes its dof: the same count as ours
    assert round((r["aic"] - r["objective"]) / 2) == dof
    np.testing.assert_allclose(m.loglik, r["loglik"], rtol=1e-6)
    np.testing.assert_allclose(m.aic, r["aic"], rtol=1e-6)
    np.testing.assert_allclose(m.bic, r["bic"], rtol=1e-6)
    np.testing.assert_allclose(m.aic, m.objective + 2 * dof, rtol=1e-14)
    np.testing.assert_allclose(m.bic, m.objective + dof * math.log(r["nobs"]), rtol=1e-14)


@_parametrize_cases
def test_lme4_fitted(case):
    r, m = case
    if "fitted" not in r:
        pytest.skip("no fitted values in the reference")
    ref = np.asarray(r["fitted"])
    ours = m.fitted()
    assert ours.shape == ref.shape
    # dyestuff2 is singular: all fitted values are equal and their sd is 0; fall back to the response's sd
    sd = float(np.std(ref))
    if sd < 1e-8 * max(1.0, float(np.max(np.abs(ref)))):
        sd = float(np.std(m.problem.design.y))
    assert np.max(np.abs(ours - ref)) <= 1e-4 * sd
    np.testing.assert_allclose(m.residuals(), m.problem.design.y - ours, rtol=1e-12, atol=1e-12 * sd)


@_parametrize_cases
def test_lme4_ngroups_and_singular(case):
    r, m = case
    # lme4 names the nested term of (1|batch/cask) 'cask:batch', ours is 'batch:cask': key on the set of factors
    ours = {frozenset(k.split(":")): v for k, v in m.ngroups.items()}
    ref = {frozenset(k.split(":")): v for k, v in r["ngroups"].items()}
    assert ours == ref
    assert sorted(m.ngroups.values()) == sorted(r["ngroups"].values())
    assert m.is_singular == r["singular"]


@_parametrize_cases
def test_lme4_varcorr(case):
    r, m = case
    grp, var2, sdcor = r["vc_grp"], r["vc_var2"], r["vc_sdcor"]
    ref_sds = [v for g, v2, v in zip(grp, var2, sdcor) if g != "Residual" and v2 is None]
    ref_cor = [v for g, v2, v in zip(grp, var2, sdcor) if g != "Residual" and v2 is not None]
    ref_res = [v for g, v in zip(grp, sdcor) if g == "Residual"]
    vc = m.varcorr
    sds = [s for g in vc.groups for s in g.stddevs]
    cors = []
    for g in vc.groups:
        if g.corr is not None:
            s = len(g.stddevs)
            cors += [g.corr[i][j] for j in range(s) for i in range(j + 1, s)]  # lower triangle, column by column
    np.testing.assert_allclose(sds, ref_sds, rtol=1e-3, atol=1e-6 * r["sigma"])
    # correlations are ratios of small θ entries: compare absolutely
    np.testing.assert_allclose(cors, ref_cor, atol=5e-3)
    assert len(ref_res) == 1
    np.testing.assert_allclose(vc.residual_sd, ref_res[0], rtol=1e-4)
    np.testing.assert_allclose(vc.residual_sd, m.sigma, rtol=1e-14)


@functools.lru_cache(maxsize=None)
def _jit_hessian(data: str, formula: str, reml: bool, profiled: bool) -> np.ndarray:
    """The model's Hessian in θ (``m.hessian``), once per model; ``test_hessian_api_matches_jitted`` checks it
    against an independent jax.hessian of ``m.objective_function``."""
    m = _fit(data, formula, reml)
    return np.asarray(m.hessian(profiled=profiled))


def _hessian_params():
    out = []
    for i, r in enumerate(_LME4):
        # a Hessian compile per model: the REML ones (same code path plus log det X'V⁻¹X, whose gradient
        # test_objective.py checks) run with the slow tests to keep the default run short
        marks = [pytest.mark.slow] if (r["nobs"] > SLOW_NOBS or r["reml"]) else []
        out.append(pytest.param(i, id=f"{r['id']}-{'REML' if r['reml'] else 'ML'}", marks=marks))
    return out


@pytest.mark.parametrize("case", _hessian_params(), indirect=True)
def test_lme4_profiled_hessian(case):
    r, m = case
    ref = r.get("profiled_hessian_theta")
    if ref is None:
        pytest.skip("no Hessian in the reference")
    ref = np.asarray(ref, dtype=float).reshape(len(r["theta"]), len(r["theta"]))
    H = _jit_hessian(r["data"], r["formula"], r["reml"], True)
    np.testing.assert_allclose(H, H.T, rtol=1e-8, atol=1e-8 * np.max(np.abs(H)))
    # lme4's is a finite-difference Hessian (deriv12) at its own, slightly different θ; elementwise relative 2e-3
    # holds, but judge the small off-diagonal entries against the size of the matrix
    np.testing.assert_allclose(H, ref, rtol=2e-3, atol=2e-3 * 1e-2 * np.max(np.abs(ref)))


# ---------------------------------------------------------------------------------------------------------------
# MixedModels.jl
# ---------------------------------------------------------------------------------------------------------------
def _mm_params(pred):
    out = []
    for i, f in enumerate(_MM):
        if not pred(f):
            continue
        marks = [pytest.mark.slow] if f["data"] == "insteval" else []
        tag = "at_theta" if "at_theta" in f else ("REML" if f["reml"] else "ML")
        out.append(pytest.param(i, id=f"{i}-{f['data']}-{tag}", marks=marks))
    return out


@pytest.fixture
def mm(request, reference_mm):
    f = reference_mm["fits"][request.param]
    return f, _fit(f["data"], f["formula"], f["reml"])


@pytest.mark.parametrize("mm", _mm_params(lambda f: "objective" in f), indirect=True)
def test_mm_objective(mm):
    f, m = mm
    if "at_theta" in f:
        th = np.asarray(f["at_theta"], dtype=float)
        val = float(m.objective_function()(jnp.asarray(th)))
        val2 = float(mj.deviance(jnp.asarray(th), m.problem.arrays, m.problem.layout, f["reml"]))
        assert val == pytest.approx(val2, rel=1e-14)
    else:
        val = m.objective
    assert abs(val - f["objective"]) <= 1e-6 * abs(f["objective"]), (val, f["objective"])


@pytest.mark.parametrize("mm", _mm_params(lambda f: "theta" in f), indirect=True)
def test_mm_theta(mm):
    f, m = mm
    np.testing.assert_allclose(m.theta, f["theta"], rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("mm", _mm_params(lambda f: "at_theta" not in f and "objective" in f), indirect=True)
def test_mm_objective_reproduced_at_its_theta(mm):
    """Our objective at the reference θ is the reference objective (when the reference gives θ)."""
    f, m = mm
    if "theta" not in f:
        pytest.skip("no theta")
    val = float(m.objective_function()(jnp.asarray(f["theta"], dtype=float)))
    assert abs(val - f["objective"]) <= 1e-8 * abs(f["objective"]), (val, f["objective"])
    assert m.objective <= val + 1e-8 * abs(val)


@pytest.mark.parametrize(
    "mm", _mm_params(lambda f: any(k in f for k in ("fixef", "stderror", "sigma", "vcov"))), indirect=True
)
def test_mm_fixef_sigma(mm):
    f, m = mm
    if "fixef" in f:
        np.testing.assert_allclose(m.fixef.to_numpy(), f["fixef"], rtol=1e-5, atol=1e-8)
    if "stderror" in f:
        np.testing.assert_allclose(m.stderror.to_numpy(), f["stderror"], rtol=1e-4)
    if "sigma" in f:
        np.testing.assert_allclose(m.sigma, f["sigma"], rtol=1e-4)
    if "vcov" in f:
        np.testing.assert_allclose(m.vcov.to_numpy(), f["vcov"], rtol=1e-4)
    for key in ("loglik", "aic", "bic"):
        if key in f:
            np.testing.assert_allclose(getattr(m, key), f[key], rtol=1e-6)
    if "aicc" in f:
        np.testing.assert_allclose(m.aicc, f["aicc"], rtol=1e-6)


@pytest.mark.parametrize("mm", _mm_params(lambda f: any(k.startswith("sigma_") for k in f)), indirect=True)
def test_mm_variance_components(mm):
    f, m = mm
    # 'sigma_batch_cask' is the nested term batch:cask
    sds = {g.name.replace(":", "_"): list(g.stddevs) for g in m.varcorr.groups}
    for key, val in f.items():
        if not key.startswith("sigma_"):
            continue
        name = key[len("sigma_") :]
        np.testing.assert_allclose(sds[name], np.atleast_1d(val), rtol=1e-3, err_msg=key)


@pytest.mark.parametrize("mm", _mm_params(lambda f: "objective_at_initial_theta" in f), indirect=True)
def test_mm_objective_at_initial_theta(mm):
    """MixedModels.jl's objective at its start λ = I (our fits start elsewhere by default: tests/test_start.py)."""
    f, m = mm
    identity = m.problem.start("identity")
    np.testing.assert_allclose(identity, np.concatenate([t.theta0() for t in m.problem.design.terms]))
    val = float(m.objective_function()(jnp.asarray(identity)))
    np.testing.assert_allclose(val, f["objective_at_initial_theta"], rtol=1e-9)


def test_hessian_api_matches_jitted():
    """m.hessian() / m.gradient() (the API) equal jax.hessian / jax.grad of m.objective_function()."""
    args = ("dyestuff", "yield ~ 1 + (1 | batch)", False)
    m = _fit(*args)
    for profiled in (True, False):
        f = m.objective_function(profiled)
        h = jax.jit(jax.hessian(f))(jnp.asarray(m.theta))
        np.testing.assert_allclose(_jit_hessian(*args, profiled), h, rtol=1e-10)
        g = jax.jit(jax.grad(f))(jnp.asarray(m.theta))
        np.testing.assert_allclose(m.gradient(profiled=profiled), g, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("mm", _mm_params(lambda f: "fixed_sigma_hessian" in f), indirect=True)
def test_mm_fixed_sigma_hessian(mm):
    f, m = mm
    ref = np.asarray(f["fixed_sigma_hessian"])
    H = _jit_hessian(f["data"], f["formula"], f["reml"], False)
    # at our optimum, not exactly MixedModels.jl's
    np.testing.assert_allclose(H, ref, rtol=1e-3)
    np.testing.assert_allclose(H, H.T, rtol=1e-8, atol=1e-10 * np.max(np.abs(H)))


@pytest.mark.parametrize("mm", _mm_params(lambda f: "fixed_sigma_gradient" in f), indirect=True)
def test_mm_fixed_sigma_gradient(mm):
    f, m = mm
    np.testing.assert_allclose(m.gradient(), f["fixed_sigma_gradient"], rtol=0, atol=1e-8)


@pytest.mark.parametrize("mm", _mm_params(lambda f: "seed_fixed_sigma_gradient" in f), indirect=True)
def test_mm_fixed_sigma_gradient_seed(mm):
    """The seed's gradient was taken at a rougher optimum (entries ~1e-3); ours must be at least that small."""
    f, m = mm
    g = m.gradient()
    assert np.max(np.abs(g)) <= 1.5 * np.max(np.abs(f["seed_fixed_sigma_gradient"]))
    # and the fixed-σ gradient equals the profiled one at the optimum
    np.testing.assert_allclose(g, m.gradient(profiled=True), atol=1e-6 * np.max(np.abs(_jit_hessian(f["data"], f["formula"], f["reml"], False))))


@pytest.mark.parametrize(
    "mm", _mm_params(lambda f: any(k in f for k in ("ranef_first", "ranef_uscale_first", "ranef_last"))), indirect=True
)
def test_mm_ranef(mm):
    f, m = mm
    terms = m.problem.design.terms
    b = m.ranef()
    u = m.ranef(uscale=True)
    first = terms[0].name
    assert list(b) == [t.name for t in terms]
    assert list(b[first].index) == list(terms[0].levels)
    if "ranef_first" in f:
        np.testing.assert_allclose(b[first].iloc[0, 0], f["ranef_first"], rtol=1e-4)
    if "ranef_uscale_first" in f:
        np.testing.assert_allclose(u[first].iloc[0, 0], f["ranef_uscale_first"], rtol=1e-4)
    if "ranef_last" in f:
        # MixedModels.jl's 'ranef_last' is the last level of the LAST term (penicillin: sample F, -3.0018);
        # for a one-term model that is the same as the first term
        last = terms[-1].name
        np.testing.assert_allclose(b[last].iloc[-1, 0], f["ranef_last"], rtol=1e-4)
    # b = Λ u level by level
    for t in terms:
        lam = np.asarray(m._solution.lams[terms.index(t)])
        np.testing.assert_allclose(b[t.name].to_numpy(), u[t.name].to_numpy() @ lam.T, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mm", _mm_params(lambda f: "fitted_first" in f), indirect=True)
def test_mm_fitted_first(mm):
    f, m = mm
    np.testing.assert_allclose(m.fitted()[0], f["fitted_first"], rtol=1e-4)
    np.testing.assert_allclose(m.residuals()[0], f["residual_first"], rtol=1e-3)


def test_merged_terms_equal_zerocorr():
    """(1|subj) + (0+days|subj) is the || model: one merged term, same objective (MixedModels.jl reference)."""
    a = _fit("sleepstudy", "reaction ~ 1 + days + (1 | subj) + (0 + days | subj)", False)
    b = _fit("sleepstudy", "reaction ~ 1 + days + (1 + days || subj)", False)
    assert len(a.problem.design.terms) == 1
    assert a.problem.design.terms[0].pattern == b.problem.design.terms[0].pattern == ((0, 0), (1, 1))
    assert a.objective == pytest.approx(b.objective, rel=1e-10)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-5)
