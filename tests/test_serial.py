"""The batched fits of large models (batch/serial.py): the L-BFGS solve, fits one after another by the single fit's
program.

Which solve a layout gets (batch.solve.batch_solver), and on sleepstudy with the L-BFGS solve forced: each row of a
serial chunk equals the single fit of the same solve (objective to 1e-12 relative, the same evaluations), the padding
rows are not fitted, and a second chunk traces nothing."""

import sys
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.batch import function, serial
from mixedjax.batch.function import fit_one_jit
from mixedjax.batch.solve import Result, Solver, batch_solver

SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(SLEEP, mj.dataset("sleepstudy"))


def test_solver_by_size(sleep):
    """Small models get the Newton solve on lanes; the kb07-shaped design (nθ = 20, a 137-row dense block) L-BFGS."""
    assert batch_solver(sleep.problem.layout) == Solver.newton
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import models

    _, formula, df, _ = models.kb07()
    assert batch_solver(mj.Problem.build(formula, df).layout) == Solver.lbfgs


@pytest.mark.slow
def test_serial_rows_equal_single_fits(sleep):
    Y = np.asarray(sleep.simulate(4, seed=5))
    ctx, layout, opts = sleep._batch_context, sleep.problem.layout, mj.FitOptions()
    rows = jnp.asarray(Y)
    out = serial.chunk_serial(rows, np.int32(3), ctx, layout, False, opts, Solver.lbfgs, None)
    for i in range(3):
        est, sol = fit_one_jit(rows[i], None, ctx, layout, False, opts, Solver.lbfgs)
        assert int(out.feval[i]) == int(sol.feval) > 0
        np.testing.assert_allclose(float(out.objective[i]), float(est.objective), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(out.theta[i]), np.asarray(est.theta), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.asarray(out.beta[i]), np.asarray(est.beta), rtol=1e-10)
        assert bool(out.converged[i]) and int(out.result[i]) in (Result.gradient_zero, Result.objective_stalled)
        # the L-BFGS refit lands on the Newton refit's optimum
        newton, _ = fit_one_jit(rows[i], None, ctx, layout, False, opts, Solver.newton)
        np.testing.assert_allclose(float(out.objective[i]), float(newton.objective), rtol=1e-9)
    assert int(out.feval[3]) == 0  # padding: not fitted
    before = function.TRACES["fit_at"]
    serial.chunk_serial(rows[::-1], np.int32(4), ctx, layout, False, opts, Solver.lbfgs, None)
    assert function.TRACES["fit_at"] == before
