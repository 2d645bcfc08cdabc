"""BOBYQA's first points dispatched ahead (fitting/bobyqa.py ``initial_points``, ``ahead``): the foreseen points are
NLopt's own, bit for bit, and a fit with them dispatched ahead evaluates the same points to the same values, once
each."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import mixedjax as mj
import mixedjax.fitting.bobyqa as bq
from mixedjax.fitting.solve import lmm_objective
from test_optimizer_choice import crossed_frame

nlopt = pytest.importorskip("nlopt")


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_initial_points_are_nlopts_first_points(n):
    """Random starts over five decades and the step BOBYQA is given: the first 2n + 1 points NLopt asks for are
    initial_points', byte for byte (a foreseen point that differs in one bit would never be used)."""
    rng = np.random.default_rng(n)
    for _ in range(50):
        phi0 = rng.standard_normal(n) * 10 ** rng.uniform(-3, 2, n)
        step = bq.BOBYQA_STEP * np.maximum(np.abs(phi0), 0.1)
        asked = []

        def f(x, grad):
            asked.append(np.array(x, copy=True))
            return float(np.sum((x - 0.3) ** 2))

        o = nlopt.opt(nlopt.LN_BOBYQA, n)
        o.set_min_objective(f)
        o.set_maxeval(2 * n + 1)
        o.set_initial_step(step)
        try:
            o.optimize(phi0)
        except nlopt.RoundoffLimited:
            pass
        want = bq.initial_points(phi0, step)
        assert len(asked) == len(want) == 2 * n + 1
        assert [a.tobytes() for a in asked] == [w.tobytes() for w in want]


def test_ahead_evaluates_the_same_points_once_each():
    """With ``ahead`` the log (points and values) is the one without it, and the program runs once per
    evaluation: every foreseen point was one NLopt asked for."""
    p = mj.Problem.build("y ~ 1 + x + (1 | g1) + (1 | g2)", crossed_frame(n=2000, n1=150, n2=40, seed=3))
    objective = lmm_objective(p.layout, False)
    calls = []

    def program(theta, args):
        calls.append(np.array(theta, copy=True))
        return bq._objective_jit(objective, theta, args)

    opts = mj.FitOptions(optimizer="bobyqa")
    runs = {}
    for ahead in (False, True):
        calls.clear()
        th, f, converged, _, log = bq.bobyqa(objective, p.start(), p.arrays, opts, p.theta_scale, False,
                                             program=program, ahead=ahead)
        runs[ahead] = (th, f, log, len(calls))
    (th0, f0, log0, n0), (th1, f1, log1, n1) = runs[False], runs[True]
    assert converged and len(log1) > 2 * p.layout.ntheta + 1
    assert [(t.tobytes(), v) for t, v in log0] == [(t.tobytes(), v) for t, v in log1]
    assert th0.tobytes() == th1.tobytes() and f0 == f1
    assert n0 == n1 == len(log1)


def test_two_evaluations_in_flight_only_for_small_temporaries():
    """The estimate grows with the dense block and the pairs: a model whose estimated temporaries pass
    AHEAD_BYTES is fitted one evaluation at a time."""
    small = mj.Problem.build("y ~ 1 + x + (1 | g1) + (1 | g2)", crossed_frame(n=2000, n1=150, n2=40, seed=3)).layout
    assert bq.ahead_affordable(small)
    big = dataclasses.replace(small, dz=6000)
    assert not bq.ahead_affordable(big)  # 3 · 6,042² doubles: 876 MB


def test_foreseen_points_are_evaluated_two_at_a_time():
    """After the first point, BOBYQA's foreseen points run in pairs, one in the worker thread, so each pair's two
    calls overlap in time (a program that waits 50 ms with the GIL released); later points run one at a time."""
    import threading
    import time

    p = mj.Problem.build("y ~ 1 + x + (1 | g1) + (1 | g2)", crossed_frame(n=2000, n1=150, n2=40, seed=3))
    objective = lmm_objective(p.layout, False)
    spans = []

    def program(theta, args):
        t = time.perf_counter()
        time.sleep(0.05)
        out = float(bq._objective_jit(objective, theta, args))
        spans.append((t, time.perf_counter(), threading.get_ident()))
        return out

    bq.bobyqa(objective, p.start(), p.arrays, mj.FitOptions(optimizer="bobyqa"), p.theta_scale, False,
              program=program, ahead=True)
    n = p.layout.ntheta
    spans.sort()
    overlaps = sum(b[0] < a[1] for a, b in zip(spans, spans[1:]))
    assert overlaps == n  # the pairs (x1, x2), ..., (x_{2n-1}, x_2n): 2n + 1 points in n + 1 rounds
    assert len({s[2] for s in spans}) == 2
