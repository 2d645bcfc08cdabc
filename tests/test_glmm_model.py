"""The fitted GeneralizedLinearMixedModel's API on cbpp: printout, predictions, random effects, derivatives."""

import importlib

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

import mixedjax as mj

F = "cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)"


@pytest.fixture(scope="module")
def cbpp():
    df = mj.dataset("cbpp")
    df = df.assign(herd=df.herd.astype(str).astype("category"), period=df.period.astype(str).astype("category"))
    df.index = [f"r{i}" for i in range(len(df))]
    return df


@pytest.fixture(scope="module")
def m(cbpp):
    return mj.glmm(F, cbpp, "binomial")


def test_printout(m):
    s = str(m)
    for part in ["Generalized Linear Mixed Model fit by maximum likelihood (nAGQ = 1)", F,
                 "Distribution: Binomial{Float64}", "Link: LogitLink()", "logLik", "deviance", "AIC", "BIC",
                 "Variance components:", "herd", "Number of obs: 56; levels of grouping factors: 15",
                 "Fixed-effects parameters:", "period2", "Pr(>|z|)"]:
        assert part in s, part
    assert "Residual" not in s


def test_statistics(m):
    k = 1 + 4
    assert m.dof == k
    assert m.deviance == pytest.approx(-2 * m.loglik)
    assert m.aic == pytest.approx(m.deviance + 2 * k)
    assert m.bic == pytest.approx(m.deviance + k * np.log(56))
    ct = m.coeftable()
    np.testing.assert_allclose(ct["z"], m.fixef / m.stderror)
    np.testing.assert_allclose(m.stderror, np.sqrt(np.diag(m.vcov)))
    np.testing.assert_allclose(m.vcov, m.vcov.T)
    assert not m.is_singular and m.converged
    assert m.varcorr.groups[0].stddevs[0] == pytest.approx(m.theta[0])
    with pytest.raises(ValueError):
        m.theta[0] = 1.0  # read-only


def test_fitted_predict_ranef(m, cbpp):
    fit = m.fitted()
    assert list(fit.index) == list(cbpp.index)
    np.testing.assert_allclose(m.predict(cbpp), fit, rtol=1e-12)
    np.testing.assert_allclose(m.predict(cbpp, type="link"), logit(fit), rtol=1e-10)
    np.testing.assert_allclose(m.predict(type="link"), logit(fit), rtol=1e-10)
    re = m.ranef()["herd"]
    assert re.shape == (15, 1) and re.index.name == "herd"
    np.testing.assert_allclose(re.to_numpy(), m.ranef(uscale=True)["herd"].to_numpy() * m.theta[0])
    X = pd.get_dummies(cbpp.period, drop_first=True).to_numpy(float)
    eta0 = m.fixef.iloc[0] + X @ m.fixef.iloc[1:].to_numpy()
    np.testing.assert_allclose(m.predict(cbpp, re_form="~0", type="link"), eta0, rtol=1e-10)
    np.testing.assert_allclose(m.predict(cbpp, re_form="~0"), expit(eta0), rtol=1e-10)
    # a herd the fit has not seen gets random effect 0
    new = cbpp.iloc[:3].assign(herd=["99", "1", "99"])
    p = m.predict(new, type="link").to_numpy()
    b1 = re.loc["1"].iloc[0]
    np.testing.assert_allclose(p, eta0[:3] + np.array([0.0, b1, 0.0]), rtol=1e-10)
    with pytest.raises(mj.ArgumentError):
        m.predict(cbpp, type="mu")


def test_derivatives_at_the_fit(m):
    g = m.gradient()
    assert np.max(np.abs(g)) < 1e-4
    H = m.hessian()
    assert H.shape == (5, 5)
    np.testing.assert_allclose(H, H.T, atol=1e-8)
    assert np.linalg.eigvalsh(H).min() > 0
    np.testing.assert_allclose(m.vcov, 2 * np.linalg.inv(H)[1:, 1:], rtol=1e-8)


def test_proportions_with_weights_equal_cbind(m, cbpp):
    m2 = mj.glmm("incidence / size ~ 1 + period + (1 | herd)", cbpp, "binomial", weights=cbpp["size"])
    assert m2.loglik == pytest.approx(m.loglik, rel=1e-10)
    np.testing.assert_allclose(m2.fixef, m.fixef, rtol=1e-6)


def test_missing_rows_are_dropped(m, cbpp):
    """A row with a missing response is dropped: cbpp with one extra row whose incidence is missing is cbpp's fit
    (and, of cbpp's shape once the row is dropped, runs the programs the fixture's fit compiled)."""
    extra = cbpp.loc[["r3"]].rename(index={"r3": "extra"}).assign(incidence=np.nan)
    df = pd.concat([cbpp.iloc[:10], extra, cbpp.iloc[10:]])
    mm = mj.glmm(F, df, "binomial")
    assert mm.nobs == 56 and mm.n_dropped == 1
    assert "extra" not in mm.fitted().index and list(mm.fitted().index) == list(cbpp.index)
    assert mm.loglik == pytest.approx(m.loglik, rel=1e-10)
    np.testing.assert_allclose(mm.fitted(), m.fitted(), rtol=1e-7)


@pytest.mark.slow
def test_fast_is_nagq0(m, cbpp):
    mf = mj.glmm(F, cbpp, "binomial", fast=True)
    assert mf.objective >= m.objective - 1e-9  # the joint optimum is at least as good
    assert mf.optsum.final.shape == (1,)
    assert "nAGQ = 0" in str(mf)
    assert np.max(np.abs(mf.gradient())) < 1e-4


@pytest.mark.slow
def test_fast_reruns_when_stopped_short(cbpp, monkeypatch):
    """fast=True's run stopped short (here by maxiter=2: θ 0.035 from the optimum, not converged) is run again
    whitened by its exact Hessian, as stage 2's (fit._rerun), and ends at the fast optimum; a converged fast fit is
    unchanged by it (no rerun: the same parameters as with the safeguard off)."""
    fit = importlib.import_module("mixedjax.glmm.fit")
    ref = mj.glmm(F, cbpp, "binomial", fast=True)
    short = mj.glmm(F, cbpp, "binomial", fast=True, maxiter=2)
    assert short.converged, short.optsum.status
    np.testing.assert_allclose(short.theta, ref.theta, rtol=1e-7)
    np.testing.assert_allclose(short.fixef, ref.fixef, rtol=1e-7)
    monkeypatch.setattr(fit, "RESTARTS", 0)
    with pytest.warns(UserWarning, match="converge"):
        stopped = mj.glmm(F, cbpp, "binomial", fast=True, maxiter=2)
    assert stopped.optsum.status is fit.Status.ITERATION_LIMIT
    assert abs(stopped.theta[0] - ref.theta[0]) > 1e-3
    again = mj.glmm(F, cbpp, "binomial", fast=True)
    np.testing.assert_array_equal(again.optsum.final, ref.optsum.final)
    assert again.optsum.feval == ref.optsum.feval


def test_singular_fit_is_reported(m, cbpp):
    """No herd effect in the simulated incidences (binomial draws from cbpp's sizes with a period effect only): θ is
    snapped to zero, the fit is singular, a warning says so. The data have cbpp's shape, so the fit runs the
    programs the fixture's fit compiled."""
    rng = np.random.default_rng(2)
    p = expit(-1.5 + 0.3 * (cbpp.period.astype(str) == "2").to_numpy())
    df = cbpp.assign(incidence=rng.binomial(cbpp["size"].to_numpy(), p))
    with pytest.warns(UserWarning, match="singular"):
        ms = mj.glmm(F, df, "binomial")
    assert ms.is_singular and ms.theta[0] == 0.0 and ms.converged
    assert "singular" in str(ms)


def test_pirls_start_changes_nothing_but_the_start(m):
    """The fit warm-starts PIRLS from the last evaluation's modes (glmm.fit.WarmStart): the objective and its
    gradient at a point are the same from u = 0 and from the fit's modes (to PIRLS's tolerance), and a non-finite
    evaluation does not move the start."""
    import jax.numpy as jnp

    from mixedjax.glmm.fit import WarmStart
    from mixedjax.glmm.laplace import compiled_for

    c = compiled_for(m.plan)
    phi = jnp.asarray(m.stage.x + 0.1)
    (v0, _), g0 = c.joint(phi, m.data, np.zeros(m.plan.q), m.plan, 1)
    (v1, _), g1 = c.joint(phi, m.data, np.asarray(m.evaluation.u), m.plan, 1)
    assert float(v1) == pytest.approx(float(v0), rel=1e-11)
    np.testing.assert_allclose(np.asarray(g1), np.asarray(g0), rtol=1e-7, atol=1e-8)

    class Ev:
        def __init__(self, v):
            self.u, self.beta = v[:2] + 1.0, v[2:] + 2.0

    start = WarmStart(np.zeros(3))
    call = start.wrap(lambda x, v: ((x[0], Ev(v)), jnp.concatenate([x, x])))
    (_, _), g = call(np.array([1.0]))
    np.testing.assert_array_equal(np.asarray(start.v), [1.0, 1.0, 2.0])  # moved to the finite evaluation's modes
    assert g.shape == (1,)  # the gradient's entries of x alone
    call(np.array([np.inf]))
    np.testing.assert_array_equal(np.asarray(start.v), [1.0, 1.0, 2.0])  # a non-finite one leaves it


@pytest.mark.parametrize("kw", [{}, {"fast": True}, {"nagq": 3}], ids=["laplace", "fast", "agq3"])
def test_hessian_at_given_modes_equals_the_hessian_through_pirls(cbpp, kw):
    """The Hessian programs take the modes of the evaluation at the point (no PIRLS in them): at the fit, at another
    point and as the fit stored it, they equal jax.hessian of the pure objective, which runs PIRLS."""
    import jax

    g = mj.glmm(F, cbpp, "binomial", **kw)
    x = np.asarray(g.stage.x)
    exact = jax.jit(jax.hessian(g.objective_function()))
    for point in (x, x + 0.05):
        ref = np.asarray(exact(point))
        np.testing.assert_allclose(g.hessian(point), ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    stored = g.stage.hessian
    np.testing.assert_allclose(stored, np.asarray(exact(x)), rtol=1e-7, atol=1e-7 * np.abs(stored).max())
