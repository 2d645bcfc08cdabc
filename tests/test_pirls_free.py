"""PIRLS's fixed effects free or held (glmm/pirls.py): one value-and-gradient program serves both stages with
``free`` a 0/1 array given at the call, and the Hessian programs take ``free`` as a Python bool known when tracing.
The two forms must give the same numbers, and PIRLS's score must be the gradient of the penalised deviance."""

import jax
import numpy as np
import pandas as pd
import pytest

from mixedjax.design.build import build_design
from mixedjax.fitting.loop import quick_options
from mixedjax.glmm import laplace, pirls
from mixedjax.glmm.family import make_family
from mixedjax.glmm.plan import build_plan, z_lambda


def _model(family, link, formula, seed):
    rng = np.random.default_rng(seed)
    ns, ni = 12, 5
    s, i = np.repeat(np.arange(ns), ni), np.tile(np.arange(ni), ns)
    x = rng.normal(size=s.size)
    eta = -0.2 + 0.5 * x + rng.normal(0, 0.8, ns)[s] + rng.normal(0, 0.4, ni)[i]
    y = rng.poisson(np.exp(eta)) if family == "poisson" else (rng.uniform(size=s.size) < 1 / (1 + np.exp(-eta)))
    df = pd.DataFrame({"s": pd.Categorical([f"s{k}" for k in s]), "i": pd.Categorical([f"i{k}" for k in i]),
                       "x": x, "y": np.asarray(y, float)})
    design = build_design(formula, df, residual=False)
    yy = np.asarray(design.y, float)
    plan, data = build_plan(design, make_family(family, link), yy, np.ones_like(yy), np.zeros_like(yy))
    return plan, data


CASES = [("binomial", "probit", "y ~ 1 + x + (1 | s) + (1 | i)", 1),  # non-canonical: observed ≠ Fisher
         ("poisson", None, "y ~ 1 + x + (1 + x | s)", 2)]


@pytest.fixture(scope="module", params=CASES, ids=[c[0] for c in CASES])
def model(request):
    return _model(*request.param)


def test_score_is_the_gradient(model):
    """PIRLS's Newton right-hand side, the score written out, is −∇_v(g/2) by reverse mode, for free all, none, and
    a mix (array and bool forms)."""
    plan, data = model
    k, q, p = plan.ntheta, plan.q, plan.p
    rng = np.random.default_rng(5)
    theta = 0.3 + rng.uniform(size=k)
    v, beta = 0.3 * rng.normal(size=q + p), rng.normal(size=p)
    for free in (True, False, np.ones(p), np.zeros(p), (np.arange(p) % 2).astype(float)):
        ad = jax.grad(pirls.penalised_deviance)(v, theta, beta, free, plan, data) / 2
        A, _ = z_lambda(theta, plan, data)
        eta = pirls.linear_predictor(A, *pirls.split(v, free, beta), data)
        np.testing.assert_allclose(pirls._score(A, v, eta, beta, free, plan, data), -ad, rtol=1e-10, atol=1e-10)


def test_array_and_bool_forms_agree(model):
    """The objective, its gradient and the Hessian with free as an array (the fit's value-and-gradient program)
    equal those with free as a bool (the Hessian programs), for stage 1 (all free) and stage 2 (none)."""
    plan, data = model
    k, q, p = plan.ntheta, plan.q, plan.p
    rng = np.random.default_rng(6)
    phi = np.concatenate([0.4 + rng.uniform(size=k), rng.normal(0, 0.3, size=p)])
    v0 = np.zeros(q + p)
    jit = lambda f: jax.jit(f, compiler_options=quick_options())
    as_array = jit(lambda ph, f: jax.value_and_grad(laplace.objective)(ph, data, v0, f, plan))
    for static, mask in ((True, np.ones(p)), (False, np.zeros(p))):
        val, grad = as_array(phi, mask)
        ref, ref_grad = jit(jax.value_and_grad(lambda ph: laplace.objective(ph, data, v0, static, plan)))(phi)
        assert float(val) == pytest.approx(float(ref), rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-10)
    # held β: its gradient is the objective's; free β: PIRLS's own, so no gradient in φ's β entries
    val, grad = as_array(phi, np.ones(p))
    np.testing.assert_array_equal(np.asarray(grad)[k:], 0.0)
    H = jit(lambda ph: jax.hessian(laplace.objective)(ph, data, v0, np.zeros(p), plan))(phi)
    Hs = jit(lambda ph: laplace.hessian_of(laplace.objective_joint, pairs=True)(ph, data, v0, plan))(phi)
    np.testing.assert_allclose(Hs, H, rtol=1e-8, atol=1e-9)
