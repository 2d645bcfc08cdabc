"""optimistix's BFGS / L-BFGS against mixedjax's own L-BFGS loop on the benchmark models: evaluations and time.

Usage: python benchmarks/optimistix_compare.py [model ...]   (default: the small models)

Each optimiser minimises the same jitted profiled deviance from the same start (the moment estimate) with the same
tolerance on the gradient; the table shows objective evaluations (value and gradient), the warm time of one fit
(median of three, after a compile) and the objective reached. docs/design.md section 6 says what was kept.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("JAX_ENABLE_X64", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import mixedjax as mj  # noqa: E402
from mixedjax.fitting.solve import lmm_objective, units_shift  # noqa: E402

SMALL = {
    "dyestuff": ("yield ~ 1 + (1 | batch)", "dyestuff"),
    "sleepstudy": ("reaction ~ 1 + days + (1 + days | subj)", "sleepstudy"),
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin"),
    "pastes": ("strength ~ 1 + (1 | batch/cask)", "pastes"),
    "insteval": ("y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", "insteval"),
}


def _time(fn, reps=3):
    out = fn()
    jax.block_until_ready(out)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        ts.append(time.perf_counter() - t)
    return out, float(np.median(ts))


def compare(name):
    import optimistix as optx

    formula, data = SMALL[name]
    p = mj.Problem.build(formula, mj.dataset(data))
    f = lmm_objective(p.layout, False)
    th0 = jnp.asarray(p.start())
    rows = []
    sol, t = _time(lambda: mj.solve(f, th0, p.arrays, p.layout, mj.FitOptions(), None,
                                    units_shift(p.arrays, p.layout, False)))
    rows.append(("mixedjax loop", int(sol.feval), t, float(sol.value)))
    counter = {"n": 0}

    for label, solver in (("optimistix BFGS", optx.BFGS(rtol=1e-10, atol=1e-8)),
                          ("optimistix L-BFGS", getattr(optx, "LBFGS", None))):
        if solver is None:
            rows.append((label, -1, float("nan"), float("nan")))
            continue
        if label.endswith("L-BFGS"):
            solver = solver(rtol=1e-10, atol=1e-8)

        def counted(t, a):
            jax.debug.callback(lambda: counter.__setitem__("n", counter["n"] + 1))
            return f(t, a)

        def run(th, arrays, objective, solver=solver):
            r = optx.minimise(objective, solver, th, args=arrays, max_steps=500, throw=False,
                              adjoint=optx.ImplicitAdjoint())
            return r.value

        counter["n"] = 0
        jax.block_until_ready(jax.jit(lambda th, a: run(th, a, counted))(th0, p.arrays))
        timed = jax.jit(lambda th, a: run(th, a, f))  # compiled once, then timed warm
        th, t = _time(lambda: timed(th0, p.arrays))
        rows.append((label, counter["n"], t, float(f(th, p.arrays))))
    return rows


def main(argv):
    names = argv or ["dyestuff", "sleepstudy", "penicillin", "pastes"]
    print(f"{'model':<11} {'optimiser':<19} {'evaluations':>11} {'warm fit':>10} {'objective':>18}")
    for name in names:
        for label, ev, t, val in compare(name):
            print(f"{name:<11} {label:<19} {ev:>11} {t * 1e3:>8.2f}ms {val:>18.8f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
