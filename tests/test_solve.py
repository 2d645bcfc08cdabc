"""The pure solve: result codes, the post-fit steps in JAX (rectification, zero snapping, the verdict) under vmap,
and read-only results."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.blocks.assembly import with_response
from mixedjax.fitting.solve import RESULTS, lmm_objective, snap, snap_host, units_shift, verdict

SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(SLEEP, mj.dataset("sleepstudy"))


def test_result_codes_of_single_fits(sleep):
    assert sleep.optsum.result in (RESULTS.gradient_zero, RESULTS.objective_stalled) and sleep.optsum.converged
    with pytest.warns(UserWarning, match="did not converge"):
        short = mj.fit(sleep.problem, opts=mj.FitOptions(maxiter=1), theta0="identity")
    assert short.optsum.result == RESULTS.max_iterations and not short.optsum.converged


def test_verdict_codes():
    """A converged stop is downgraded when the derivatives are not finite, the Hessian has negative curvature in
    a free direction, or a lone diagonal (alone in its column of λ) sits at zero with negative curvature; other
    directions on the boundary (θ_ii = 0) do not count."""
    p = mj.Problem.build(SLEEP, mj.dataset("sleepstudy"))
    lay, th, g = p.layout, jnp.array([0.9, 0.1, 0.2]), jnp.zeros(3)
    ok = jnp.diag(jnp.array([2.0, 1.0, 3.0]))
    saddle = ok.at[2, 2].set(-1.0)
    nan = ok.at[0, 1].set(jnp.nan)
    code = lambda H, t=th: int(verdict(jnp.int32(RESULTS.gradient_zero), t, g, H, lay)[0])  # noqa: E731
    assert code(ok) == RESULTS.gradient_zero
    assert code(saddle) == RESULTS.saddle_point
    assert code(nan) == RESULTS.nonfinite
    # θ_0 (a diagonal with an entry below it) held at zero: its curvature does not count (a bound, not a minimum of
    # an even function)
    assert code(ok.at[0, 0].set(-1.0), th.at[0].set(0.0)) == RESULTS.gradient_zero
    # θ_2 (alone in its column: d is even in it) at zero with negative curvature: zero is a maximum along it
    assert code(saddle, th.at[2].set(0.0)) == RESULTS.saddle_point
    assert code(ok, th.at[2].set(0.0)) == RESULTS.gradient_zero
    assert int(verdict(jnp.int32(RESULTS.max_iterations), th, g, ok, lay)[0]) == RESULTS.max_iterations


def test_verdict_keeps_small_eigenvalues_accurate_beside_a_boundary():
    """The free eigenvalues are judged to H's own precision when directions are on the boundary (kb07 was once
    called a saddle from eigenvalues of −1e284: the fixed directions had 1e300 on their diagonal)."""
    import pandas as pd

    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame({c: rng.standard_normal(n) for c in ("y", "x1", "x2", "x3")}).assign(
        g=rng.integers(0, 10, n).astype(str))
    lay = mj.Problem.build("y ~ 1 + (1 + x1 + x2 + x3 | g)", df).layout
    th = np.linspace(0.5, 1.0, 10)
    th[[7, 9]] = 0.0  # λ's (2,2) and (3,3) on the boundary
    free = th != 0
    Q, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    for small, expect in ((-1e-4, RESULTS.gradient_zero), (-5.0, RESULTS.saddle_point)):
        H = np.full((10, 10), 7.0)
        H[np.ix_(free, free)] = Q @ np.diag(np.r_[small, np.linspace(20.0, 980.0, 7)]) @ Q.T
        code, _, emin = verdict(jnp.int32(RESULTS.gradient_zero), jnp.asarray(th), jnp.zeros(10), jnp.asarray(H), lay)
        assert int(code) == expect
        np.testing.assert_allclose(float(emin), small, rtol=1e-6)


def _batch_fit(problem, Y, theta0):
    """Each response fitted by solve inside one jitted vmap, from the arrays re-assembled on the device."""
    lay = problem.layout
    f = lmm_objective(lay, False)

    def one(y):
        arrays = with_response(problem.plan, problem.arrays, problem.data, y, lay)
        return mj.solve(f, theta0, arrays, lay, mj.FitOptions(), jnp.asarray(problem.theta_scale),
                        units_shift(arrays, lay, False))

    return jax.jit(jax.vmap(one))(jnp.asarray(Y))


def test_vmapped_fits_are_rectified_verified_and_equal_single_fits(sleep):
    """A batch of responses (one with no subject effect at all, so its fit is singular) fitted under vmap: every
    θ has non-negative λ diagonals, the singular one is snapped to exactly zero, each carries its result code, and
    each equals the fit of that response alone."""
    p = sleep.problem
    rng = np.random.default_rng(11)
    y = np.asarray(p.data.y)
    days = p.design.X[:, 1]
    Y = np.stack([y + rng.normal(scale=20, size=y.size),
                  y[::-1].copy(),
                  250 + 10 * days + rng.normal(scale=25, size=y.size)])  # no subject effect
    # start with negative diagonals: the result must come back rectified
    sol = jax.device_get(_batch_fit(p, Y, -jnp.asarray(p.start())))
    diag = [0, 2]
    assert np.all(sol.theta[:, diag] >= 0)
    assert np.all(sol.converged) and set(sol.result.tolist()) <= {int(r) for r in (1, 2)}
    df = mj.dataset("sleepstudy")
    for i in range(len(Y)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the response without subject effects is singular, as it should be
            single = mj.lmm(SLEEP, df.assign(reaction=Y[i]))
        assert float(sol.value[i]) == pytest.approx(single.objective, rel=1e-9)
        np.testing.assert_allclose(sol.theta[i], single.theta, atol=2e-4)
    assert sol.theta[2, 2] == 0.0 or sol.theta[2, 0] == 0.0  # the response without subject effects


def test_results_are_read_only(sleep):
    before = str(sleep.varcorr)
    with pytest.raises(ValueError):
        sleep.theta[0] = 0.5
    with pytest.raises(ValueError):
        sleep.optsum.final[0] = 0.5
    with pytest.raises(ValueError):
        sleep.optsum.fitlog[0][0][0] = 0.5
    assert str(sleep.varcorr) == before


def test_singular_fit_warns_once():
    df = mj.dataset("dyestuff2")
    with pytest.warns(UserWarning, match="singular") as rec:
        m = mj.lmm("yield ~ 1 + (1 | batch)", df)
    assert m.is_singular and len([r for r in rec if "singular" in str(r.message)]) == 1
    assert rec[0].filename == __file__  # the warning names the caller's line


def test_host_snap_is_the_traced_rule(sleep):
    """BOBYQA's result is snapped on the host (snap_host, each trial one call of the deviance): the same θ and
    value as the traced rule (snap without the flatness test) for entries far from, just below and at zero, where
    the trial is taken and where it raises the objective too much."""
    p = sleep.problem
    layout, arrays, scale = p.layout, p.arrays, np.asarray(p.theta_scale)
    objective = lmm_objective(layout, False)
    traced = jax.jit(lambda t, v: snap(objective, t, v, arrays, layout, jnp.asarray(scale), None))
    deviance = jax.jit(lambda t: objective(t, arrays))
    th = np.asarray(sleep.theta)
    cases = [th, th * [1, 1, 1e-4], th * [1e-4, 1, 1], th * [1, 1, 0], th * [2e-3, 1, 1e-5], th * [1, 1, 0.3],
             th * [1e-4, 1, 1e-4]]
    taken = 0
    for t in cases:
        v = float(deviance(t))
        t_host, v_host = snap_host(deviance, t, v, layout, scale)
        t_jax, v_jax = traced(t, v)
        np.testing.assert_array_equal(t_host, np.asarray(t_jax))
        assert v_host == pytest.approx(float(v_jax), rel=1e-12, abs=1e-9)
        taken += int(np.any((t_host == 0) & (t != 0)))
    assert taken >= 2  # some trials were taken (and the others refused), so both branches were compared
