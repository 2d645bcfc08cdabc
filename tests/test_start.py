"""The starting θ (mixedjax/_start.py): the method-of-moments estimate and the "identity" start."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.fitting.loop import quick_options
from mixedjax.fitting.start import CEILING, FLOOR, unit_diagonal

CASES = [
    ("dyestuff", "yield ~ 1 + (1 | batch)"),
    ("dyestuff2", "yield ~ 1 + (1 | batch)"),
    ("sleepstudy", "reaction ~ 1 + days + (1 + days | subj)"),
    ("sleepstudy", "reaction ~ 1 + days + (1 + days || subj)"),
    ("pastes", "strength ~ 1 + (1 | batch/cask)"),
    ("penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)"),
]


@functools.cache
def _deviance_jit():
    # Compiled with the quick options: op by op, each new shape's many small kernels took about 5 s a design.
    return jax.jit(mj.deviance, static_argnums=(2, 3), compiler_options=quick_options())


def _d(problem, theta, reml=False):
    return float(_deviance_jit()(jnp.asarray(theta), problem.arrays, problem.layout, reml))


@pytest.mark.parametrize("name,formula", CASES)
def test_moment_start_is_closer_than_identity(name, formula):
    """On every shipped example the moment start has a lower objective than λ = I, ML and REML."""
    pr = mj.Problem.build(formula, mj.dataset(name))
    start, identity = pr.start("moments"), pr.start("identity")
    assert start.shape == identity.shape
    assert np.all(np.isfinite(start))
    for reml in (False, True):
        assert _d(pr, start, reml) < _d(pr, identity, reml)


def test_balanced_one_way_start_is_the_ml_estimate():
    """Balanced one-way data: the moment estimate with divisors n and ℓ is the ML estimate itself (lme4: θ̂ =
    0.752583 for dyestuff by ML), so the fit needs one evaluation."""
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    assert m.optsum.initial[0] == pytest.approx(0.752583, rel=1e-5)
    assert m.theta[0] == pytest.approx(0.752583, rel=1e-5)
    assert m.optsum.feval <= 3
    # the fit still stands on its own: the gradient there is zero to tolerance and the Hessian is checked
    assert m.optsum.converged and np.all(m.optsum.hessian_eigenvalues > 0)


def test_floor_keeps_a_scalar_term_off_zero():
    """dyestuff2's between-batch variance estimate is negative; the start is clamped to FLOOR (θ = 0 is a
    stationary point, a start there would never move) and the fit still reaches the boundary."""
    pr = mj.Problem.build("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
    assert pr.start()[0] == pytest.approx(FLOOR)
    m = mj.fit(pr)
    assert m.theta[0] == 0.0 and m.optsum.converged


def test_start_is_free_of_the_units_of_a_slope():
    """λ is in the units of z: multiplying the covariate of a random slope by c divides that row of λ by c."""
    df = mj.dataset("sleepstudy")
    f = "reaction ~ 1 + days + (1 + days | subj)"
    a = mj.Problem.build(f, df).start()
    b = mj.Problem.build(f, df.assign(days=df["days"] * 10.0)).start()
    np.testing.assert_allclose(b, a * np.array([1.0, 0.1, 0.1]), rtol=1e-8)


def test_unestimable_term_starts_at_identity():
    """A random slope on a covariate that is constant within each group: no level has a non-singular Z'Z, so that
    term starts at λ = I while the scalar term beside it is estimated."""
    rng = np.random.default_rng(3)
    n = 120
    g = np.repeat(np.arange(20), 6)
    h = rng.integers(0, 8, n)
    x = rng.normal(size=20)[g]
    y = 2.0 + x + rng.normal(size=8)[h] * 1.5 + rng.normal(size=n)
    df = pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in h]})
    pr = mj.Problem.build("y ~ 1 + x + (1 + x | g) + (1 | h)", df)
    start, identity = pr.start(), pr.start("identity")
    offsets = np.cumsum([0] + [t.ntheta for t in pr.design.terms])
    by_term = {t.name: slice(o, o + t.ntheta) for t, o in zip(pr.design.terms, offsets)}
    np.testing.assert_array_equal(start[by_term["g"]], identity[by_term["g"]])
    assert start[by_term["h"]][0] != 1.0
    assert FLOOR <= start[by_term["h"]][0] <= CEILING


def test_random_designs_give_valid_starts():
    """Crossed and nested random designs, scalar and vector terms, covariates of any size: the start is finite, its
    diagonal lies within [FLOOR, CEILING] of unit_diagonal, and d is finite there."""
    rng = np.random.default_rng(11)
    for trial in range(12):
        n = int(rng.integers(60, 300))
        df = pd.DataFrame({
            "y": rng.normal(size=n) * rng.uniform(0.01, 100),
            "x": rng.normal(size=n) * 10.0 ** rng.integers(-2, 3),
            "a": [f"a{i}" for i in rng.integers(0, int(rng.integers(3, 15)), n)],
            "b": [f"b{i}" for i in rng.integers(0, int(rng.integers(3, 15)), n)],
        })
        formula = ["y ~ 1 + x + (1 | a) + (1 | b)", "y ~ 1 + x + (1 + x | a)", "y ~ 1 + (1 + x || a) + (1 | b)",
                   "y ~ 1 + x + (1 | a/b)"][trial % 4]
        pr = mj.Problem.build(formula, df)
        start = pr.start()
        diag = np.array([i for t, o in zip(pr.design.terms, np.cumsum([0] + [t.ntheta for t in pr.design.terms]))
                         for i, (r, c) in enumerate(t.pattern, o) if r == c])
        unit = np.concatenate([unit_diagonal(t) for t in pr.design.terms])
        assert np.all(np.isfinite(start)), formula
        ratio = start[diag] / unit
        assert np.all(ratio >= FLOOR * (1 - 1e-12)) and np.all(ratio <= CEILING * (1 + 1e-12)), (formula, ratio)
        assert np.isfinite(_d(pr, start)), formula


def test_start_option_checks():
    df = mj.dataset("dyestuff")
    pr = mj.Problem.build("yield ~ 1 + (1 | batch)", df)
    with pytest.raises(mj.ArgumentError, match="moments"):
        pr.start("lme4")
    with pytest.raises(mj.ArgumentError, match="theta0"):
        mj.lmm("yield ~ 1 + (1 | batch)", df, theta0="lme4")
    m = mj.lmm("yield ~ 1 + (1 | batch)", df, theta0="identity")
    assert m.optsum.initial.tolist() == [1.0]


def test_fit_takes_a_problem_or_a_fitted_model():
    df = mj.dataset("dyestuff")
    m = mj.lmm("yield ~ 1 + (1 | batch)", df)
    r = mj.fit(m, reml=True)  # refit the same problem by REML
    assert r.reml and r.problem is m.problem
    assert r.objective == pytest.approx(319.6542768422625, rel=1e-9)  # lme4's REML criterion
    with pytest.raises(mj.ArgumentError, match="Problem"):
        mj.fit("yield ~ 1 + (1 | batch)")


@functools.cache
def _start_jit():
    # the traced start, vmapped over responses, with the quick options (each design compiles once)
    from mixedjax.fitting.start import start_from

    return jax.jit(jax.vmap(lambda plan, y: start_from(plan, y, jnp), in_axes=(None, 0)),
                   compiler_options=quick_options())


def _unestimable_frame():
    rng = np.random.default_rng(3)
    g, h = np.repeat(np.arange(20), 6), rng.integers(0, 8, 120)
    x = rng.normal(size=20)[g]
    y = 2.0 + x + rng.normal(size=8)[h] * 1.5 + rng.normal(size=120)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g], "h": [f"h{i}" for i in h]})


TRACED_CASES = CASES + [("unestimable", "y ~ 1 + x + (1 + x | g) + (1 | h)"), ("unestimable", "y ~ 0 + x + (1 | h)")]


@pytest.mark.parametrize("name,formula", TRACED_CASES)
def test_traced_start_equals_the_host_start(name, formula):
    """One source, two namespaces: the start traced by jax.numpy (what the batched fits compute on the device,
    vmapped over responses) equals the host numpy start of the model's own fit on the same response, to rounding;
    on the data's response and on 8 perturbed ones (some of them far from the data: other branches of the floors)."""
    from mixedjax.fitting.start import moment_start, start_plan

    df = _unestimable_frame() if name == "unestimable" else mj.dataset(name)
    design = mj.Problem.build(formula, df).design
    rng = np.random.default_rng(5)
    Y = np.concatenate([design.y[None], design.y[None] + rng.normal(size=(8, design.n)) * np.std(design.y)
                        * rng.uniform(0.1, 10, (8, 1))])
    traced = np.asarray(_start_jit()(jax.device_put(start_plan(design)), Y))
    for y, t in zip(Y, traced):
        np.testing.assert_allclose(t, moment_start(dataclasses.replace(design, y=y)), rtol=1e-11, atol=1e-13)


def test_no_residual_starts_at_identity_traced_and_host():
    """A response with zero residuals (all zero): no σ² to estimate, so λ = I, by numpy and traced alike (a where,
    not a branch)."""
    from mixedjax.fitting.start import moment_start, start_plan

    pr = mj.Problem.build("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    y = np.zeros(pr.design.n)
    design = dataclasses.replace(pr.design, y=y)
    identity = pr.start("identity")
    np.testing.assert_array_equal(moment_start(design), identity)
    np.testing.assert_array_equal(np.asarray(_start_jit()(jax.device_put(start_plan(design)), y[None]))[0], identity)
