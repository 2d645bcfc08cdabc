"""The fit: no recompilation for a new response of the same shape, the fit log and verbose output, convergence
reporting, singular fits, immutability and purity with respect to the input data."""

from __future__ import annotations

import dataclasses
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
import mixedjax.fitting.loop as _fitmod
import mixedjax.fitting.solve as _solvemod
import mixedjax.fitting.summary as _summarymod

SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep_data():
    return mj.dataset("sleepstudy")


@pytest.fixture(scope="module")
def sleep_fit(sleep_data):
    return mj.lmm(SLEEP, sleep_data)


def _compile_messages(records):
    return [r.getMessage() for r in records if "compil" in r.getMessage().lower()]


def test_second_fit_of_same_shape_does_not_recompile(sleep_fit, sleep_data, caplog):
    rng = np.random.default_rng(1)
    df2 = sleep_data.copy()
    df2["reaction"] = df2["reaction"] * 1.5 + rng.normal(scale=5.0, size=len(df2))
    # the fit's one program: the solve and the estimates at its result (fitting.summary)
    loop = (_summarymod._solve_estimates_jit_quick() if _fitmod.use_quick(sleep_fit.problem.layout)
            else _summarymod._solve_estimates_jit)
    size_before = loop._cache_size() if hasattr(loop, "_cache_size") else None
    caplog.clear()
    with caplog.at_level(logging.DEBUG), jax.log_compiles():
        m2 = mj.lmm(SLEEP, df2)
    msgs = _compile_messages(caplog.records)
    assert msgs == [], msgs
    if size_before is not None:
        assert loop._cache_size() == size_before
    # the second fit is a real fit of the new response
    assert m2.optsum.converged
    assert not np.allclose(m2.fixef.to_numpy(), sleep_fit.fixef.to_numpy())
    np.testing.assert_allclose(m2.fixef["(Intercept)"], 1.5 * sleep_fit.fixef["(Intercept)"], rtol=0.05)

    # sanity: the logging hook does see a compilation when one happens
    caplog.clear()
    with caplog.at_level(logging.DEBUG), jax.log_compiles():
        jax.jit(lambda v: jnp.sin(v) * 3.25 + 17.0)(jnp.arange(7.0)).block_until_ready()
    assert _compile_messages(caplog.records)


def test_verbose_prints_every_evaluation(sleep_data, capsys):
    m = mj.lmm(SLEEP, sleep_data, verbose=True)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if re.match(r"^f_\d+: ", ln)]
    assert len(lines) == m.optsum.feval > 0
    assert len(m.optsum.fitlog) == m.optsum.feval
    pat = re.compile(r"^f_(\d+): (-?[0-9.]+(?:e[-+]?\d+)?), \[(.*)\]$")
    for k, (ln, (th, val)) in enumerate(zip(lines, m.optsum.fitlog), 1):
        mt = pat.match(ln)
        assert mt, ln
        assert int(mt.group(1)) == k
        assert float(mt.group(2)) == pytest.approx(val, abs=1e-5)
        vals = [float(v) for v in mt.group(3).split(",")]
        np.testing.assert_allclose(vals, th, rtol=1e-5, atol=1e-6)


def test_optsum(sleep_fit):
    os_ = sleep_fit.optsum
    assert os_.converged
    assert isinstance(os_.status, str) and os_.converged
    assert os_.result in (mj.RESULTS.gradient_zero, mj.RESULTS.objective_stalled)
    assert len(os_.fitlog) == os_.feval
    np.testing.assert_array_equal(os_.fitlog[0][0], os_.initial)
    # the default start is the method-of-moments estimate (tests/test_start.py)
    np.testing.assert_array_equal(os_.initial, sleep_fit.problem.start("moments"))
    # the first evaluation is d at the start
    assert os_.fitlog[0][1] == pytest.approx(float(sleep_fit.objective_function()(jnp.asarray(os_.initial))),
                                             rel=1e-12)
    # the log's best value is (at most round-off above) the reported minimum
    assert min(v for _, v in os_.fitlog) == pytest.approx(os_.fmin, rel=1e-9)
    assert os_.fmin == pytest.approx(sleep_fit.objective, rel=1e-14)
    np.testing.assert_array_equal(os_.final, sleep_fit.theta)
    assert os_.iterations >= 1


def test_maxiter_not_converged(sleep_data):
    m = mj.lmm(SLEEP, sleep_data, maxiter=2, theta0="identity")  # the default start is already at the optimum
    assert not m.optsum.converged and m.optsum.result == mj.RESULTS.max_iterations
    assert "not converge" in str(m)  # the printout says so in words
    assert m.optsum.iterations <= 2


def test_dyestuff2_singular():
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
    assert m.is_singular
    assert m.theta.tolist() == [0.0]
    assert m.optsum.converged
    assert "singular" in str(m).lower()
    assert m.varcorr.groups[0].stddevs[0] == 0.0


def test_fit_does_not_mutate_input(sleep_data):
    df = sleep_data.copy()
    df["extra"] = np.arange(len(df), dtype=float)  # a column the formula does not use
    df.loc[df.index[3], "extra"] = np.nan
    before = df.copy(deep=True)
    index_before = df.index.copy()
    dtypes_before = df.dtypes.copy()
    mj.lmm("reaction ~ 1 + days + (1 | subj)", df)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_index_equal(df.index, index_before)
    pd.testing.assert_series_equal(df.dtypes, dtypes_before)


def test_fitted_model_is_immutable(sleep_fit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        sleep_fit.theta = np.zeros(3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sleep_fit.objective = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        sleep_fit.optsum.feval = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        sleep_fit.problem.layout = None


def test_gradient_small_relative_to_hessian(sleep_fit):
    g = sleep_fit.gradient(profiled=True)
    H = sleep_fit.hessian(profiled=True)
    step = np.linalg.solve(H, g)  # the Newton step still to go
    assert np.max(np.abs(step)) < 1e-4, step
    assert np.all(np.linalg.eigvalsh(H) > 0)
    # the fixed-σ gradient agrees at the optimum
    np.testing.assert_allclose(sleep_fit.gradient(), g, atol=1e-6 * np.max(np.abs(H)))


def test_identity_start_is_lme4s(sleep_data):
    """theta0="identity" starts at λ = I like lme4 and MixedModels.jl, whose first evaluation it reproduces."""
    m = mj.lmm(SLEEP, sleep_data, theta0="identity")
    np.testing.assert_array_equal(m.optsum.initial, [1.0, 0.0, 1.0])
    assert m.optsum.fitlog[0][1] == pytest.approx(1784.642296192436, rel=1e-9)  # MixedModels.jl's value
    assert m.objective == pytest.approx(1751.9393444636682, rel=1e-8)


def test_theta0_option(sleep_data):
    """A fit started elsewhere reaches the same optimum, and the log starts there."""
    th0 = [0.5, 0.1, 0.5]
    m = mj.lmm(SLEEP, sleep_data, theta0=th0)
    np.testing.assert_array_equal(m.optsum.initial, th0)
    np.testing.assert_array_equal(m.optsum.fitlog[0][0], th0)
    assert m.objective == pytest.approx(1751.9393444636682, rel=1e-8)


def test_convergence_check_hessian_is_close_to_the_exact_one(sleep_data):
    """The fit's own Hessian check (forward differences of the exact gradient, one gradient per θ entry) gives the
    eigenvalues of jax.hessian's exact Hessian of d(θ) to 1e-4 relative, started away from the optimum."""
    m = mj.lmm(SLEEP, sleep_data, theta0=[0.5, 0.1, 0.5])
    exact = np.linalg.eigvalsh(m.hessian(profiled=True))
    np.testing.assert_allclose(m.optsum.hessian_eigenvalues, exact, rtol=1e-4)
    assert m.optsum.converged and np.all(m.optsum.hessian_eigenvalues > 0)


@pytest.mark.parametrize("reml", [False, True], ids=["ML", "REML"])
def test_bobyqa_option_reaches_the_lbfgs_optimum(sleep_data, reml):
    """optimizer="bobyqa" (NLopt's derivative-free BOBYQA on the host) reaches the default fit's optimum on a vector
    term and on crossed terms; every evaluation is in the log, and the summary says no derivative was checked."""
    pytest.importorskip("nlopt")
    for formula, data in ((SLEEP, sleep_data), ("diameter ~ 1 + (1 | plate) + (1 | sample)", mj.dataset("penicillin"))):
        ref = mj.lmm(formula, data, reml=reml)
        m = mj.lmm(formula, data, reml=reml, optimizer="bobyqa")
        assert m.objective == pytest.approx(ref.objective, rel=1e-9, abs=1e-7)
        np.testing.assert_allclose(m.theta, ref.theta, rtol=1e-4, atol=1e-5)
        assert m.optsum.converged and m.optsum.result == mj.RESULTS.tolerance_reached  # derivative-free: unverified
        assert m.optsum.optimizer.startswith("NLopt LN_BOBYQA")
        assert m.optsum.feval == len(m.optsum.fitlog) > 3
        assert min(f for _, f in m.optsum.fitlog) == pytest.approx(m.optsum.fmin, abs=1e-7)
        assert np.all(np.isnan(m.optsum.gradient)) and m.optsum.hessian_eigenvalues.size == 0


def test_bobyqa_singular_fit_and_verbose(capsys):
    """dyestuff2's between-batch variance is zero: BOBYQA's result is snapped to the boundary as the default's is;
    verbose prints one line per evaluation."""
    pytest.importorskip("nlopt")
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"), optimizer="bobyqa", verbose=True)
    assert m.theta[0] == 0.0 and m.is_singular and m.optsum.converged
    assert m.objective == pytest.approx(162.87303665382575, rel=1e-9)  # MixedModels.jl's value
    out = capsys.readouterr().out
    assert len(re.findall(r"^f_\d+: ", out, flags=re.M)) == m.optsum.feval


@pytest.mark.slow
def test_bobyqa_stops_where_steps_reach_the_objectives_rounding_noise():
    """On InstEval's three crossed terms, θ steps below about 1e-6 change the deviance (2.4e5) by less than its
    rounding noise. With MixedModels.jl's xtol_abs of 1e-10, BOBYQA sometimes sampled that noise for many more
    evaluations: from ten starts (the moment start moved by 1e-9 relative), 29 evaluations eight times but 40 and 48
    once each under pytest's threads (a one-thread run: up to 52). The last trust region BOBYQA_XTOL stopped every
    one within 29 to 37 (one thread: 29 to 35), at the default optimiser's optimum; the bound leaves room for
    another BLAS's rounding. The first six of those starts are run here: each is an InstEval fit, and ten made this the
    suite's slowest test."""
    pytest.importorskip("nlopt")
    problem = mj.Problem.build("y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", mj.dataset("insteval"))
    ref = mj.fit(problem)
    start = problem.start()
    for r in range(6):
        theta0 = start * (1 + 1e-9 * np.random.default_rng(r).standard_normal(start.size)) if r else start
        m = mj.fit(problem, theta0=theta0, opts=mj.FitOptions(optimizer="bobyqa"))
        assert m.optsum.converged
        assert m.optsum.feval <= 45, (r, m.optsum.feval)
        assert m.objective == pytest.approx(ref.objective, abs=1e-6)
        np.testing.assert_allclose(m.theta, ref.theta, atol=1e-5)


def test_quick_loop_drops_compile_options_this_xla_does_not_know(monkeypatch):
    """Small models compile their loop with XLA debug options (QUICK_OPTIONS), which XLA versions add and remove; an
    option this XLA rejects is left out instead of failing the fit."""
    known = dict(_fitmod.QUICK_OPTIONS)
    monkeypatch.setattr(_fitmod, "QUICK_OPTIONS", {**known, "xla_no_such_option_here": True,
                                                   "xla_backend_optimization_level": "not a number"})
    _fitmod.quick_options.cache_clear()
    _solvemod._solve_jit_quick.cache_clear()
    _summarymod._solve_estimates_jit_quick.cache_clear()
    try:
        kept = _fitmod.quick_options()
        assert kept == {k: v for k, v in known.items() if k != "xla_backend_optimization_level"}
        data = mj.dataset("dyestuff")
        problem = mj.Problem.build("yield ~ 1 + (1 | batch)", data)
        assert _fitmod.use_quick(problem.layout)
        m = mj.fit(problem)
        assert m.optsum.converged
        assert m.objective == pytest.approx(327.3270598811, rel=1e-10)  # MixedModels.jl's value
    finally:
        _fitmod.quick_options.cache_clear()
        _solvemod._solve_jit_quick.cache_clear()
        _summarymod._solve_estimates_jit_quick.cache_clear()


def test_solve_inside_jit_and_vmap(sleep_fit):
    """solve, the pure fit, runs inside a user's jax.jit (where the small-model loop's compiler options are not
    allowed), whether θ₀ or the arrays are traced, and under jax.vmap, and reaches the fit's optimum."""
    p = sleep_fit.problem
    th0 = jnp.asarray(p.start())
    f = _solvemod.lmm_objective(p.layout, False)
    f_jit = jax.jit(lambda t: mj.solve(f, t, p.arrays, p.layout).value)(th0)
    f_vmap = jax.vmap(lambda t: mj.solve(f, t, p.arrays, p.layout).value)(jnp.stack([th0, 0.9 * th0]))
    # traced arrays with a concrete start (e.g. a jitted refit over responses)
    f_arrays = jax.jit(lambda a: mj.solve(f, th0, a, p.layout).value)(p.arrays)
    np.testing.assert_allclose(float(f_jit), sleep_fit.objective, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(f_vmap), sleep_fit.objective, rtol=1e-10)
    np.testing.assert_allclose(float(f_arrays), sleep_fit.objective, rtol=1e-10)


def test_optimizer_option_errors(sleep_data, monkeypatch):
    with pytest.raises(mj.MixedjaxError, match="optimizer must be one of 'auto', 'lbfgs', 'bobyqa'"):
        mj.lmm(SLEEP, sleep_data, optimizer="nelder-mead")
    problem = mj.Problem.build(SLEEP, sleep_data)
    with pytest.raises(mj.MixedjaxError, match="opts must be a FitOptions"):
        mj.fit(problem, opts=mj.FitOptions(optimizer="newton"))
    monkeypatch.setitem(__import__("sys").modules, "nlopt", None)  # as if nlopt were not installed
    with pytest.raises(mj.MixedjaxError, match="pip install nlopt"):
        mj.fit(problem, opts=mj.FitOptions(optimizer="bobyqa"))
    assert mj.fit(problem).optsum.converged  # the default needs no nlopt
