"""NLopt's BOBYQA on the host: the derivative-free alternative to the compiled L-BFGS loop (MixedModels.jl's default).

It evaluates the same jitted objective. No derivatives are taken, so its results are not checked against the
gradient and Hessian (as in MixedModels.jl); ``LinearMixedModel.gradient()`` and ``hessian()`` give them exactly.
"""

from __future__ import annotations

import functools
import os
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import jax
import numpy as np

from .options import FitOptions


@partial(jax.jit, static_argnames="objective")
def _objective_jit(objective, theta, args):
    return objective(theta, args)


def print_eval(k: int, theta, f: float) -> None:
    """One line of the verbose fit log, in MixedModels.jl's layout."""
    print(f"f_{k}: {f:.5f}, [{', '.join(f'{x:.6g}' for x in theta)}]")


BOBYQA_STEP = 0.1  # BOBYQA's first trust region: this fraction of each |θ| in the optimiser's units (at least 0.1)
# BOBYQA's last trust region (NLopt's xtol_abs), in the optimiser's units. MixedModels.jl uses 1e-10, but steps below
# about 1e-6 change InstEval's deviance (2.4e5, curvature about 2e4) by less than its rounding noise (about 1e-8), and
# BOBYQA then samples noise until a lucky decrease meets ftol: the three-term model took 29 to 52 evaluations from
# starts 1e-9 apart with 1e-10, 29 to 35 with 1e-7 (1e-6: 34 or 35), all at the same objective
# (benchmarks/bobyqa_paths.py). lme4 stops far earlier (nloptr's default xtol_rel 1e-4).
BOBYQA_XTOL = 1e-7

# BOBYQA's first 2n + 1 points are fixed by the start and the step, so after the first they are evaluated two at a
# time, one in a worker thread (on two cores at once; calls dispatched from one thread ran one after another, CPU
# time equal to wall time, so dispatching ahead overlapped nothing). Only while one evaluation's temporaries (about
# three dense blocks and four values per fill-in pair, in float64) stay below this many bytes.
AHEAD_BYTES = 2**28


@functools.cache
def _worker() -> ThreadPoolExecutor:
    """The thread that evaluates one of two foreseen points while the caller's thread evaluates the other (XLA
    runs with the GIL released)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="mixedjax-bobyqa")


os.register_at_fork(after_in_child=_worker.cache_clear)  # a forked child has the executor but not its thread


def _value(program, theta, args) -> float:
    return float(program(theta, args))


def ahead_affordable(layout) -> bool:
    """May two evaluations of this layout's objective be in flight at once (see AHEAD_BYTES)? One evaluation's
    temporaries are estimated as three dense blocks, four values per fill-in pair and the heavy columns' W."""
    dn = layout.dz + layout.p + 1
    return 8 * (3 * dn * dn + 4 * sum(layout.npairs) + dn * sum(layout.nheavy)) <= AHEAD_BYTES


def initial_points(phi0: np.ndarray, step: np.ndarray) -> list[np.ndarray]:
    """BOBYQA's first 2n + 1 points, in the order NLopt asks for them: x0, then x0 + ρ e_i, then x0 − ρ e_i
    (Powell 2009, section 2), computed as NLopt does, in its units x / (step / step[0]) with ρ = step[0], so that the
    points are equal to NLopt's bit for bit (checked against NLopt in tests/test_bobyqa_ahead.py)."""
    s = step / step[0]
    xs0 = phi0 / s
    out = [xs0 * s]
    for sign in (1.0, -1.0):
        for i in range(phi0.size):
            x = xs0.copy()
            x[i] = xs0[i] + sign * step[0]
            out.append(x * s)
    return out


# NLopt's return codes that mean BOBYQA stopped on one of its tolerances
_NLOPT_DONE = {1: "success", 2: "stopval reached", 3: "ftol reached", 4: "xtol reached"}


def bobyqa(objective, theta0, args, opts: FitOptions, scale, verbose: bool, program=None, ahead: bool = False):
    """Minimise ``objective(theta, args)`` with NLopt's BOBYQA (Powell 2009; MixedModels.jl's default optimiser),
    derivative-free, on the host: each evaluation calls the jitted objective. θ is unconstrained, in the units
    ``scale``; tolerances on d as in MixedModels.jl (ftol_rel 1e-12, ftol_abs 1e-8), on θ BOBYQA_XTOL; the first
    trust region is BOBYQA_STEP (a tenth) of each θ's size. Returns (θ, d, converged, status words, log); the log holds every evaluation. ``program``:
    ``(theta, args) -> d`` compiled (default: ``objective`` jitted; the LMM passes its cached program). ``ahead``:
    evaluate BOBYQA's first points (:func:`initial_points`) after the first two at a time, one in a worker thread;
    the values are the same, only sooner."""
    try:
        import nlopt
    except ImportError as err:
        from ..errors import ArgumentError

        raise ArgumentError("optimizer='bobyqa' needs NLopt's Python package: pip install nlopt (or install "
                            "mixedjax with its bobyqa extra: pip install 'mixedjax[bobyqa]')") from err
    log = []
    program = partial(_objective_jit, objective) if program is None else program
    phi0 = np.asarray(theta0, float) / scale
    step = BOBYQA_STEP * np.maximum(np.abs(phi0), 0.1)
    queue = initial_points(phi0, step) if ahead else []
    done = {}  # phi's bytes -> its objective, evaluated ahead of NLopt's asking

    def evaluate(phi, grad):
        th = phi * scale
        key = phi.tobytes()
        if key in done:
            v = done.pop(key)
        else:
            if queue and queue[0].tobytes() == key:
                queue.pop(0)
            else:  # not the point foreseen: NLopt's path is not the one initial_points describes
                queue.clear()
                done.clear()
            if queue and log:  # this point in the worker, the next foreseen one here, at once
                fut = _worker().submit(_value, program, th, args)
                nxt = queue.pop(0)
                done[nxt.tobytes()] = _value(program, nxt * scale, args)
                v = fut.result()
            else:  # alone (the first call alone: it may compile the program, which two threads would do twice)
                v = _value(program, th, args)  # numpy in: no separate device_put (0.1 ms a call)
        log.append((th, v))
        if verbose:
            print_eval(len(log), th, v)
        # a failed factorisation (NaN) is a very bad point, not a crash: BOBYQA's models cannot take NaN or inf
        return v if np.isfinite(v) else 1e300

    o = nlopt.opt(nlopt.LN_BOBYQA, phi0.size)
    o.set_min_objective(evaluate)
    o.set_ftol_rel(1e-12)
    o.set_ftol_abs(1e-8)
    o.set_xtol_abs(BOBYQA_XTOL)
    o.set_maxeval(opts.maxeval)
    o.set_initial_step(step)
    try:
        o.optimize(phi0)
        code = int(o.last_optimize_result())
    except nlopt.RoundoffLimited:
        code = -4
    except (RuntimeError, ValueError):  # NLopt's other failure codes come as exceptions
        code = -1
    finite = [(v, i) for i, (_, v) in enumerate(log) if np.isfinite(v)]
    th, f = log[min(finite)[1]] if finite else (np.full(phi0.size, np.nan), np.nan)
    words = {**_NLOPT_DONE, 5: "evaluation limit reached", 6: "time limit reached",
             -4: "stopped by round-off"}.get(code, f"failed (NLopt return code {code})")
    converged = code in _NLOPT_DONE or code == -4  # round-off: no further progress possible at float64
    return np.asarray(th, float), float(f), converged, words, tuple(log)


