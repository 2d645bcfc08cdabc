"""The default optimiser ("auto", fitting/choice.py): which optimiser a model gets, and that the default's BOBYQA
result is verified by the exact gradient (or refined by the L-BFGS loop when that check fails)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
import mixedjax.fitting.choice as choice
import mixedjax.fitting.summary as summary
from mixedjax.fitting.loop import use_quick
from mixedjax.fitting.solve import lmm_objective

SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


def crossed_frame(n=3000, n1=300, n2=60, seed=7):
    rng = np.random.default_rng(seed)
    g1, g2, x = rng.integers(0, n1, n), rng.integers(0, n2, n), rng.normal(size=n)
    y = 1 + 0.5 * x + 0.8 * rng.normal(size=n1)[g1] + 0.6 * rng.normal(size=n2)[g2] + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "g1": pd.Categorical(g1), "g2": pd.Categorical(g2)})


def test_default_is_auto():
    assert mj.FitOptions().optimizer == "auto"


def test_which_optimiser_a_model_gets(monkeypatch):
    small = mj.Problem.build(SLEEP, mj.dataset("sleepstudy")).layout  # 3 θ, a quick-compile model
    # 2 θ, a large evaluation dominated by the dense block's Cholesky (g2's 500 levels in the dense block)
    big_few = mj.Problem.build("y ~ 1 + x + (1 | g1) + (1 | g2)", crossed_frame(n2=500)).layout
    # 2 θ, a large evaluation, but the dense block is small (60 levels) and the pairs are most of it
    pairs_few = mj.Problem.build("y ~ 1 + x + (1 | g1) + (1 | g2)", crossed_frame()).layout
    big_many = mj.Problem.build("y ~ 1 + x + (1 + x | g1) + (1 + x | g2)", crossed_frame()).layout  # 6 θ
    assert use_quick(small) and not any(use_quick(x) for x in (big_few, pairs_few, big_many))
    assert choice.cholesky_share(big_few) >= choice.AUTO_MIN_CHOLESKY_SHARE > choice.cholesky_share(pairs_few)
    auto = mj.FitOptions()
    assert choice.choose_optimizer(small, auto) == "lbfgs"
    assert choice.choose_optimizer(big_many, auto) == "lbfgs"
    assert choice.choose_optimizer(pairs_few, auto) == "lbfgs"
    expected = "bobyqa" if choice.nlopt_available() else "lbfgs"
    assert choice.choose_optimizer(big_few, auto) == expected
    assert choice.choose_optimizer(big_few, mj.FitOptions(maxeval=3000)) == expected  # BOBYQA's own limit
    for changed in (dict(maxiter=50), dict(gtol=1e-6), dict(ftol=1e-10), dict(memory=5), dict(max_linesearch=10)):
        # the loop's own options given: the loop they are for
        assert choice.choose_optimizer(big_few, mj.FitOptions(**changed)) == "lbfgs"
    for named in ("lbfgs", "bobyqa"):  # asked for by name: that one
        for layout in (small, big_few, big_many):
            assert choice.choose_optimizer(layout, mj.FitOptions(optimizer=named)) == named
    monkeypatch.setattr(choice, "nlopt_available", lambda: False)  # without NLopt the default is the JAX loop
    assert choice.choose_optimizer(big_few, auto) == "lbfgs"


def test_default_fit_of_a_small_model_is_the_verified_loop():
    m = mj.lmm(SLEEP, mj.dataset("sleepstudy"))
    assert m.optsum.optimizer.startswith("L-BFGS directions")
    assert m.optsum.converged and m.optsum.hessian_eigenvalues.size == 3


def _checked_bobyqa(problem):
    """The default's BOBYQA path (check=True) on a built problem."""
    layout = problem.layout
    return summary._fit_theta_bobyqa(lmm_objective(layout, False), problem.start(), problem.arrays, layout,
                                     mj.FitOptions(), False, problem.theta_scale, False, check=True)


def test_checked_bobyqa_reports_the_exact_gradient():
    pytest.importorskip("nlopt")
    p = mj.Problem.build(SLEEP, mj.dataset("sleepstudy"))
    fitted = _checked_bobyqa(p)
    ref = mj.fit(p, opts=mj.FitOptions(optimizer="lbfgs"))
    s = fitted.optsum
    assert s.converged and "exact gradient is zero to tolerance" in s.status
    assert "gradient checked" in s.optimizer
    # the gradient reported is the exact one at the result (jax.grad of d), small in the optimiser's units
    m = mj.LinearMixedModel(problem=p, reml=False, theta=fitted.theta, objective=fitted.fmin, optsum=s)
    np.testing.assert_allclose(s.gradient, m.gradient(profiled=True), rtol=1e-8, atol=1e-10)
    assert np.max(np.abs(s.gradient * p.theta_scale)) <= choice.BOBYQA_GTOL * max(1.0, abs(fitted.fmin))
    assert fitted.fmin == pytest.approx(ref.objective, abs=1e-6)  # lme4 reports 1751.939 (ML)
    np.testing.assert_allclose(fitted.estimates.beta, ref.fixef.to_numpy(), rtol=1e-5)


def test_checked_bobyqa_snaps_a_singular_fit():
    """dyestuff2's between-batch variance is zero: the checked BOBYQA path snaps its result to the boundary (on the
    host) and checks the gradient in the free directions (none), reaching MixedModels.jl's objective."""
    pytest.importorskip("nlopt")
    p = mj.Problem.build("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
    fitted = _checked_bobyqa(p)
    s = fitted.optsum
    assert fitted.theta[0] == 0.0 and s.converged and "singular" in s.status and "gradient checked" in s.optimizer
    assert fitted.fmin == pytest.approx(162.87303665382575, rel=1e-9)  # MixedModels.jl's value
    assert fitted.estimates.b[0].shape == (6, 1) and np.all(fitted.estimates.b[0] == 0.0)


def test_failed_gradient_check_is_refined_by_lbfgs(monkeypatch):
    pytest.importorskip("nlopt")
    monkeypatch.setattr(summary, "BOBYQA_GTOL", 0.0)  # no gradient passes: the L-BFGS loop must take over
    p = mj.Problem.build(SLEEP, mj.dataset("sleepstudy"))
    fitted = _checked_bobyqa(p)
    s = fitted.optsum
    assert "then (L-BFGS directions" in s.optimizer
    assert s.converged and s.hessian_eigenvalues.size == 3  # the loop's full verdict: gradient and Hessian
    assert len(s.fitlog) == s.feval and s.feval > 17  # BOBYQA's evaluations and the loop's
    np.testing.assert_allclose(s.initial, p.start())
    ref = mj.fit(p, opts=mj.FitOptions(optimizer="lbfgs"))
    assert fitted.fmin == pytest.approx(ref.objective, abs=1e-8)


@pytest.mark.slow
def test_default_fit_of_a_large_two_theta_model_is_checked_bobyqa():
    pytest.importorskip("nlopt")
    p = mj.Problem.build("y ~ 1 + x + (1 | g1) + (1 | g2)", crossed_frame(n2=500))
    m = mj.fit(p)
    assert "BOBYQA" in m.optsum.optimizer and m.optsum.converged
    assert np.all(np.isfinite(m.optsum.gradient))
    ref = mj.fit(p, opts=mj.FitOptions(optimizer="lbfgs"))
    assert m.objective == pytest.approx(ref.objective, abs=1e-6)
