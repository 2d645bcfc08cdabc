"""The batched fits of large models (batch/serial.py): the L-BFGS solve, fits one after another by the single fit's
program, each row from the moment start of its own response.

Which solve a layout gets (batch.solve.batch_solver), and on sleepstudy with the L-BFGS solve forced: each row of a
serial chunk equals the single fit of the same solve (objective to 1e-12 relative, the same evaluations), the padding
rows are not fitted, and a second chunk traces nothing; each row's start, computed in the compiled fit, is the moment
start of the model built from data holding that response (to rounding), and on a large design (kb07's data) a refit
and a fit_many row make the evaluations of a fresh fit of that response. Rows fitted in threads, a core's worth at
a time, equal rows fitted one by one."""

import dataclasses
import sys
import threading
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.batch import function, serial
from mixedjax.batch.function import fit_one_jit, start_at
from mixedjax.batch.solve import Result, Solver, batch_solver
from mixedjax.fitting.start import moment_start

SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


@pytest.fixture(scope="module")
def sleep():
    return mj.lmm(SLEEP, mj.dataset("sleepstudy"))


def _kb07():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import models

    _, formula, df, _ = models.kb07()
    return formula, df


def test_solver_by_size(sleep):
    """Small models get the Newton solve on lanes; the kb07-shaped design (nθ = 20, a 137-row dense block) L-BFGS."""
    assert batch_solver(sleep.problem.layout) == Solver.newton
    formula, df = _kb07()
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


def test_row_start_is_the_moment_start_of_that_response(sleep):
    """The start of a row (traced, in the compiled fit) is the start mj.lmm takes on data holding the row's response
    (host numpy, the same source), to rounding."""
    y = np.asarray(sleep.simulate(1, seed=2))[0]
    fresh = mj.Problem.build(SLEEP, mj.dataset("sleepstudy").assign(reaction=y)).start()
    traced = np.asarray(jax.jit(start_at)(sleep._batch_context, y))
    np.testing.assert_allclose(traced, fresh, rtol=1e-12, atol=1e-14)
    assert not np.allclose(fresh, sleep.problem.start())  # a start of its own, not the model's


def test_per_row_starts_equal_single_fits_and_trace_nothing(sleep):
    """Each row starts at its response's start: the row equals the single fit (the same start, the same evaluations,
    objective to 1e-12 relative), and a new response traces nothing."""
    Y = np.asarray(sleep.simulate(3, seed=7))
    ctx, layout, opts = sleep._batch_context, sleep.problem.layout, mj.FitOptions()
    rows = jnp.asarray(Y)
    design = sleep.problem.design
    out = serial.chunk_serial(rows, np.int32(2), ctx, layout, False, opts, Solver.lbfgs, None)
    before = function.TRACES["fit_at"]
    for i in range(2):
        est, sol = fit_one_jit(rows[i], None, ctx, layout, False, opts, Solver.lbfgs)
        host = moment_start(dataclasses.replace(design, y=Y[i]))
        np.testing.assert_allclose(np.asarray(sol.theta0), host, rtol=1e-12, atol=1e-14)
        assert int(out.feval[i]) == int(sol.feval) > 0
        np.testing.assert_allclose(float(out.objective[i]), float(est.objective), rtol=1e-12)
    serial.chunk_serial(rows[::-1], np.int32(3), ctx, layout, False, opts, Solver.lbfgs, None)
    assert function.TRACES["fit_at"] == before


KB07_SMALL = "rt ~ 1 + spkr + (1 + spkr | subj) + (1 | item)"  # kb07's data, few θ: the L-BFGS solve, a quick compile


@pytest.mark.slow
def test_large_model_rows_start_from_their_response():
    """A large design (kb07's data, the L-BFGS solve): a refit and a fit_many row start at the response's moment
    start, so they make the evaluations of mj.lmm on data holding the response (objective to 1e-10 relative), and
    the fit_many row equals the refit."""
    formula, df = _kb07()
    m = mj.lmm(KB07_SMALL, df)
    assert batch_solver(m.problem.layout) == Solver.lbfgs
    y = np.asarray(m.simulate(1, seed=1))[0]
    b = mj.fit_many(m, y[None])
    r = m.refit(y)
    fresh = mj.lmm(KB07_SMALL, df.assign(rt=y))
    np.testing.assert_allclose(r.optsum.initial, fresh.optsum.initial, rtol=1e-12, atol=1e-14)
    assert r.optsum.feval == fresh.optsum.feval == int(b.feval[0])
    np.testing.assert_allclose(r.objective, fresh.objective, rtol=1e-10)
    np.testing.assert_allclose(b.objective[0], r.objective, rtol=1e-12)
    # fit_function of a large model starts there too (it is traced): the refit's fit
    est = jax.jit(m.fit_function())(jnp.asarray(y))
    np.testing.assert_allclose(float(est.objective), r.objective, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(est.theta), r.theta, rtol=1e-6, atol=1e-9)


def test_rows_in_threads_equal_rows_one_by_one(sleep, monkeypatch):
    """On a CPU the rows run a core's worth at a time, each in a thread of its own: the same fits as one by one,
    in the rows' order, and the fits ran in more than one thread."""
    Y = np.asarray(sleep.simulate(6, seed=11))
    ctx, layout, opts = sleep._batch_context, sleep.problem.layout, mj.FitOptions()
    rows = jnp.asarray(Y)
    monkeypatch.setattr(serial, "_threads", lambda layout: 1)
    alone = serial.chunk_serial(rows, np.int32(5), ctx, layout, False, opts, Solver.lbfgs, None)
    names, inner = set(), serial.fit_one_jit

    def recording(*args, **kwargs):
        names.add(threading.current_thread().name)
        return inner(*args, **kwargs)

    monkeypatch.setattr(serial, "fit_one_jit", recording)
    monkeypatch.setattr(serial, "_threads", lambda layout: 3)
    threaded = serial.chunk_serial(rows, np.int32(5), ctx, layout, False, opts, Solver.lbfgs, None)
    assert "MainThread" in names and any(n.startswith("mixedjax-fits") for n in names)  # the first row alone
    for a, b in zip(alone, threaded):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(threaded.feval[5]) == 0  # padding: not fitted


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="rows run in threads on a CPU only")
def test_threads_per_core_on_a_cpu_while_temporaries_are_small(sleep):
    """One thread a core (at most MAX_THREADS) for a small layout on a CPU; one where a term's per-level blocks go
    through LAPACK's batched kernels (s = 5 here)."""
    import os

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert serial._threads(sleep.problem.layout) == max(1, min(cores, serial.MAX_THREADS))
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(12)], 8), "y": rng.normal(size=96),
                       **{f"x{k}": rng.normal(size=96) for k in range(4)}})
    wide = mj.Problem.build("y ~ 1 + (1 + x0 + x1 + x2 + x3 | g)", df).layout
    assert max(t.s for t in wide.terms) == 5 and serial._threads(wide) == 1
