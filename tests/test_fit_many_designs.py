"""fit_many, refit and fit_function beyond one-term models: crossed (penicillin), nested (pastes), weighted, REML
and ML. Each fit_many row equals m.refit of its response (objective to 1e-10 relative, θ to 1e-6), a refit equals
a fresh lmm of the new data (objective to 1e-8), and fit_function's implicit derivatives on the crossed model agree
with central differences of refits (relative 1e-4, as tests/test_fit_function.py on sleepstudy)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
from test_fit_function import assert_derivative, central, check_y_derivatives, flat

CASES = {
    "crossed_reml": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", {}),
    "nested_ml": ("strength ~ 1 + (1 | batch/cask)", "pastes", {"reml": False}),
    "weighted_reml": ("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy", {"weights": True}),
}


def model(name):
    formula, data, kw = CASES[name]
    df = mj.dataset(data)
    kw = dict(kw)
    if kw.pop("weights", False):
        kw["weights"] = np.random.default_rng(5).uniform(0.5, 2.0, len(df))
    return mj.lmm(formula, df, **kw), formula, df, kw


@pytest.mark.parametrize("name", sorted(CASES))
def test_rows_equal_refits_and_fresh_fits(name):
    m, formula, df, kw = model(name)
    Y = np.asarray(m.simulate(6, seed=21))
    b = mj.fit_many(m, Y)
    assert b.reml == m.reml and b.converged.all()
    for i in range(len(Y)):
        r = m.refit(Y[i])
        np.testing.assert_allclose(b.objective[i], r.objective, rtol=1e-10)
        np.testing.assert_allclose(b.theta[i], r.theta, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(b.beta[i], r.fixef.to_numpy(), rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(b.sigma[i], r.sigma, rtol=1e-8)
    fresh = mj.lmm(formula, df.assign(**{formula.split(" ~")[0]: Y[0]}), **kw)
    np.testing.assert_allclose(m.refit(Y[0]).objective, fresh.objective, rtol=1e-8)
    other = mj.fit_many(m, Y[:2], reml=not m.reml)  # the other criterion: each row a fresh fit of it
    for i in range(2):
        fresh = mj.lmm(formula, df.assign(**{formula.split(" ~")[0]: Y[i]}), **{**kw, "reml": not m.reml})
        np.testing.assert_allclose(other.objective[i], fresh.objective, rtol=1e-8)


@pytest.mark.slow
def test_crossed_derivatives_against_refits():
    """dβ̂, dσ̂, dθ̂, db̂ in y (forward and reverse mode) and in the weights, on penicillin's two crossed terms."""
    m, *_ = model("crossed_reml")
    f, y0, rng = check_y_derivatives(m)
    w0 = rng.uniform(0.5, 2.0, m.nobs)
    dw = rng.choice([-0.5, 0.5], m.nobs)
    Jw = np.asarray(jax.jit(jax.jacfwd(lambda t: flat(f(jnp.asarray(y0), jnp.asarray(w0) + t * jnp.asarray(dw)))))(0.0))
    assert_derivative(Jw, central(m, dw, 1e-5, w=w0), 1e-4)
