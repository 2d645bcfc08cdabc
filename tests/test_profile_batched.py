"""The profile's inner fits (inference/profile_fit.py): one traced program per group and model shape, whatever the
number of grid points, parameters and confint root steps; and what the batched solve minimises."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import mixedjax as mj
from mixedjax.inference import profile as P
from mixedjax.inference import profile_fit as PF


@pytest.mark.slow
def test_profile_traces_each_batched_solve_once_per_model_shape():
    """dyestuff2 (ML): a whole profile and its intervals trace the ψ lanes' and the β lanes' solve once each; a
    second model of the same shape (another response) traces nothing."""
    df = mj.dataset("dyestuff2")
    before = dict(PF.TRACES)
    pr = mj.lmm("yield ~ 1 + (1 | batch)", df, reml=False).profile()
    pr.confint()
    traced = {k: PF.TRACES[k] - before.get(k, 0) for k in ("psi", "beta")}
    assert len(pr.table) > 20 and traced["psi"] <= 1 and traced["beta"] <= 1
    df2 = df.assign(**{"yield": df["yield"] * 1.5 + np.arange(len(df)) % 3})
    again = dict(PF.TRACES)
    pr2 = mj.lmm("yield ~ 1 + (1 | batch)", df2, reml=False).profile()
    pr2.confint()
    assert dict(PF.TRACES) == again
    assert len(pr2.table) > 20


@pytest.mark.slow
def test_batched_lanes_match_one_dimensional_minimisation():
    """dyestuff (ML, θ one-dimensional): a β lane (intercept held at c, minimised over θ) against scipy's bounded
    scalar minimisation of the same closed form; a ψ lane holding σ (free: the batch sd) against the scalar
    minimisation of the fixed-σ deviance over the sd. Both to 1e-8 in the deviance."""
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"), reml=False)
    lay, arrays = m.problem.layout, m.problem.arrays
    c = float(m.fixef.iloc[0]) + 2 * float(m.stderror.iloc[0])
    res = PF.beta_solve(np.tile(np.asarray(m.theta), (2, 1)), [0, 0], [c, c], arrays, lay)
    ref = minimize_scalar(lambda t: float(P._beta_deviance(np.array([t]), c, np.array([1.0]), arrays, lay)),
                          bounds=(0.0, 10.0), method="bounded", options={"xatol": 1e-10})
    assert abs(float(res.value[0]) - ref.fun) < 1e-8

    psi = P.psi_from_theta(np.asarray(m.theta), m.sigma, lay)
    s = 1.2 * psi[-1]
    out = PF.psi_solve(np.tile(psi, (4, 1)), [1] * 4, [s] * 4, P._psi_scale(lay, psi), arrays, lay)
    ref = minimize_scalar(lambda sd: float(P._psi_deviance(np.array([sd, s]), arrays, lay)), bounds=(0.0, 500.0),
                          method="bounded", options={"xatol": 1e-10})
    assert abs(float(out.value[0]) - ref.fun) < 1e-8
    # at the estimate, the profiled deviance is the fit's minimum
    at_hat = PF.psi_solve(np.tile(psi, (4, 1)), [1] * 4, [psi[-1]] * 4, P._psi_scale(lay, psi), arrays, lay)
    assert abs(float(at_hat.value[0]) - float(m.objective)) < 1e-7
