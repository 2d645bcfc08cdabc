"""The batched fits' engine: the Newton solve (fitting/newton.py) and the refilling lanes (batch/queue.py).

Fits on fewer lanes than rows (lanes refill as fits finish) equal the single fits of the same rows, rows past the
real count are not fitted, a second chunk of the same shape traces nothing, and the Newton fit of a model's own
response lands on the model's optimum."""

import dataclasses
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.batch import queue
from mixedjax.batch.function import fit_one_jit
from mixedjax.batch.many import fit_chunk
from mixedjax.fitting.newton import lone_diagonals
from mixedjax.fitting.start import moment_start

REF = Path(__file__).resolve().parent / "reference" / "lme4.json"
SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(SLEEP, mj.dataset("sleepstudy"))


@pytest.fixture(scope="module")
def Y(sleep):
    return np.asarray(sleep.simulate(8, seed=11))


def test_refilling_lanes_equal_single_fits(sleep, Y):
    """3 lanes for 7 real rows of a chunk of 8: every lane is refilled at least once; each row equals its single
    fit (the same Newton passes: feval equal, objective to 1e-12 relative); the padding row is not fitted."""
    ctx, layout, opts = sleep._batch_context, sleep.problem.layout, mj.FitOptions()
    rows = jnp.asarray(Y)
    raw = queue.chunk_loop(rows, np.int32(7), ctx, layout, False, opts, 3, None)
    out = queue.chunk_finished()(raw, rows, ctx, layout, False)
    for i in range(7):
        est, sol = fit_one_jit(rows[i], None, ctx, layout, False, opts)
        assert int(out.feval[i]) == int(sol.feval) and int(out.iterations[i]) == int(sol.iterations)
        np.testing.assert_allclose(float(out.objective[i]), float(est.objective), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(out.theta[i]), np.asarray(est.theta), rtol=1e-9, atol=1e-12)
        assert bool(out.converged[i])
    assert int(raw.feval[7]) == 0  # not fitted


def test_each_lane_starts_at_its_own_responses_moment_start(sleep, Y):
    """The lanes' starts, computed in the compiled loop, are the host moment starts of the rows' responses (the
    start a fresh mj.lmm of each takes), to rounding; not the model's θ̂."""
    ctx, layout, opts = sleep._batch_context, sleep.problem.layout, mj.FitOptions()
    raw = queue.chunk_loop(jnp.asarray(Y), np.int32(7), ctx, layout, False, opts, 3, None)
    design = sleep.problem.design
    for i in range(7):
        host = moment_start(dataclasses.replace(design, y=Y[i]))
        np.testing.assert_allclose(np.asarray(raw.theta0[i]), host, rtol=1e-12, atol=1e-14)
        assert not np.allclose(host, sleep.theta, rtol=1e-3)


def test_lane_count_does_not_change_the_fits(sleep, Y):
    """One lane a row (fit_chunk's choice for 8 rows) against 3 lanes: the same fits."""
    ctx, layout, opts = sleep._batch_context, sleep.problem.layout, mj.FitOptions()
    rows = jnp.asarray(Y)
    wide = fit_chunk(rows, np.int32(8), ctx, layout, False, opts, None)
    raw = queue.chunk_loop(rows, np.int32(8), ctx, layout, False, opts, 3, None)
    narrow = queue.chunk_finished()(raw, rows, ctx, layout, False)
    np.testing.assert_allclose(np.asarray(wide.objective), np.asarray(narrow.objective), rtol=1e-12)
    np.testing.assert_array_equal(np.asarray(wide.feval), np.asarray(narrow.feval))


def test_a_second_chunk_traces_nothing(sleep, Y):
    mj.fit_many(sleep, Y)
    before = queue.TRACES["fit_queue"]
    b = mj.fit_many(sleep, Y[::-1].copy())
    assert queue.TRACES["fit_queue"] == before and b.converged.all()


def test_newton_refit_of_the_models_response_is_the_optimum(sleep):
    """Refitting the model's own response (from its moment start, the model's own start) reaches the optimum
    (lme4's objective, to 1e-9 relative) with a gradient at rounding level."""
    ref = next(x for x in json.loads(REF.read_text()) if x["id"] == "sleepstudy_slope" and x["reml"] == sleep.reml)
    r = sleep.refit(np.asarray(sleep.problem.design.y))
    np.testing.assert_allclose(r.objective, ref["objective"], rtol=1e-9)
    np.testing.assert_allclose(r.theta, sleep.theta, rtol=1e-5)
    assert r.optsum.converged and np.max(np.abs(r.optsum.gradient)) < 1e-5


def test_a_zero_diagonal_with_negative_curvature_is_left(sleep):
    """From θ̂ with its lone diagonal set to zero (d is even there, its gradient zero, its curvature negative: a
    maximum along it), the Newton lanes leave zero and reach the model's optimum; they once held such a zero and
    stopped there, converged (9 of 1,000 sleepstudy bootstrap replicates, up to 0.57 above their optimum)."""
    from mixedjax.fitting.newton import newton_solve
    from mixedjax.fitting.solve import lmm_objective

    ctx, layout = sleep._batch_context, sleep.problem.layout
    th0 = jnp.asarray(sleep.theta).at[2].set(0.0)
    obj = lmm_objective(layout, False)
    d0 = float(obj(th0, sleep.problem.arrays))
    assert d0 > sleep.objective + 1.0  # zero is well above the optimum along θ_2
    sol = jax.jit(newton_solve, static_argnums=(0, 3, 4))(obj, th0, sleep.problem.arrays, layout, mj.FitOptions(),
                                                          ctx.scale)
    assert bool(sol.converged)
    np.testing.assert_allclose(float(sol.value), sleep.objective, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(sol.theta), sleep.theta, rtol=1e-5)


def test_lone_diagonals(sleep):
    """Only the last column's diagonal of a 2 × 2 term is alone in its column (d is even in it alone)."""
    assert lone_diagonals(sleep.problem.layout) == [2]
    dye = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    assert lone_diagonals(dye.problem.layout) == [0]


@pytest.mark.slow
def test_singular_replicates_reach_the_boundary():
    """dyestuff2's fit is singular (θ̂ = 0); its refits that are singular come back with θ exactly 0 and converged."""
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
    b = mj.fit_many(m, m.simulate(16, seed=2))
    assert b.converged.all() and np.sum(b.theta[:, 0] == 0) > 0
    assert b.feval.max() < 30
