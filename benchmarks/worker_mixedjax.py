"""The mixedjax worker, run by run.py in a subprocess with BLAS pinned to one thread.

    python benchmarks/worker_mixedjax.py new-process DATA.pkl FORMULA
        what a user's new script does: import, read the data, mj.lmm, print(m); prints the summary, then one JSON
        line with the stages' times (the harness times the whole process from outside)
    python benchmarks/worker_mixedjax.py warm DATA.pkl FORMULA OUT.json REPS
        in one process: another model fitted first (a running session), then this model's first call (compile,
        fit, summary), warm whole calls and their printouts, the host build and the fit alone, the derivative-free
        option, and one objective and one value-and-gradient evaluation; writes OUT.json after every step

Timed with ``time.perf_counter`` (wall); CPU time (every thread of the process) beside it for the refits.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()  # before any import: the new-process mode times its imports

import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # this checkout's mixedjax, not another installed copy

FIRST_CALL_CAP = 300.0  # no warm repeats when the first call took longer (seconds)
REPEAT_BUDGET = 60.0  # repeats of one kind stop once their total passes this
EVAL_BUDGET = 10.0  # per evaluation kind (objective, value-and-gradient)
WARMUP = ("yield ~ 1 + (1 | batch)", "dyestuff")  # the model a running session has fitted before


def new_process(data: str, formula: str) -> None:
    t = time.perf_counter()
    import pandas as pd

    import mixedjax as mj

    res = {"import_s": time.perf_counter() - t, "start_to_import_s": t - T_START}
    t = time.perf_counter()
    df = pd.read_pickle(data)
    res["read_s"] = time.perf_counter() - t
    t = time.perf_counter()
    m = mj.lmm(formula, df, reml=False)
    res["fit_s"] = time.perf_counter() - t
    t = time.perf_counter()
    print(m, flush=True)
    res["print_s"] = time.perf_counter() - t
    res.update(objective=float(m.objective), feval=int(m.optsum.feval), mixedjax_file=mj.__file__)
    print(json.dumps(res), flush=True)


def _repeat(fn, reps: int, budget: float = REPEAT_BUDGET) -> tuple[list[float], list[float], object]:
    """Wall and CPU times of up to ``reps`` calls of ``fn`` (stopping once they pass ``budget``), and the last
    result."""
    walls, cpus, out = [], [], None
    while len(walls) < reps and sum(walls) <= budget:
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return walls, cpus, out


def warm(data: str, formula: str, out: str, reps: int) -> None:
    import jax
    import pandas as pd

    import mixedjax as mj
    from mixedjax.blocks.plan import build_blocks
    from mixedjax.design.build import build_design

    df = pd.read_pickle(data)
    res: dict = {"mixedjax_file": mj.__file__}

    def dump():
        Path(out).write_text(json.dumps(res, indent=1))

    # a running session: another model fitted and printed before this one
    t = time.perf_counter()
    str(mj.lmm(WARMUP[0], mj.dataset(WARMUP[1])))
    res["warmup_s"] = time.perf_counter() - t

    # this model's shape for the first time in the process: compile, fit, first summary
    t = time.perf_counter()
    m = mj.lmm(formula, df, reml=False)
    res["first_call_s"] = time.perf_counter() - t
    t = time.perf_counter()
    str(m)
    res["first_call_print_s"] = time.perf_counter() - t
    res["new_shape_s"] = res["first_call_s"] + res["first_call_print_s"]
    res.update(objective=float(m.objective), feval=int(m.optsum.feval), iterations=int(m.optsum.iterations),
               status=str(m.optsum.status), converged=bool(m.optsum.converged), theta=[float(x) for x in m.theta])
    problem = m.problem
    res["q"] = int(sum(tt.nlevels * tt.s for tt in problem.design.terms))
    res["p"] = int(problem.design.p)
    res["ntheta"] = int(problem.layout.ntheta)
    dump()
    if res["first_call_s"] > FIRST_CALL_CAP:
        res["note"] = f"first call > {FIRST_CALL_CAP:.0f} s: no warm repeats"
        dump()
        return

    # the whole call from the DataFrame, warm, and the printout of each new model
    calls, prints = [], []
    while len(calls) < reps and sum(calls) <= REPEAT_BUDGET:
        t = time.perf_counter()
        m2 = mj.lmm(formula, df, reml=False)
        calls.append(time.perf_counter() - t)
        t = time.perf_counter()
        str(m2)
        prints.append(time.perf_counter() - t)
    res.update(calls_s=calls, call_s=statistics.median(calls), prints_s=prints, print_s=statistics.median(prints))
    dump()

    # the host build alone (and its two parts) and the fit alone
    build_budget = REPEAT_BUDGET / 4  # ml1m's build takes seconds, and its share is what matters
    # at least seven builds: one InstEval process gave 0.090, 0.191 and 0.130 s for three (page faults and the
    # collector after the fit's allocations), 80-84 ms a build in a steady run
    build_reps = max(reps, 7)
    kernel = []  # the kernel's CPU time in each build: first touches of fresh pages (ml1m: most of its build)

    def build():
        k = resource.getrusage(resource.RUSAGE_SELF).ru_stime
        out = mj.Problem.build(formula, df)
        kernel.append(resource.getrusage(resource.RUSAGE_SELF).ru_stime - k)
        return out

    builds, _, _ = _repeat(build, build_reps, build_budget)
    res.update(builds_s=builds, build_s=statistics.median(builds), build_kernel_s=statistics.median(kernel))
    designs, _, design = _repeat(lambda: build_design(formula, df), build_reps, build_budget)
    blocks, _, _ = _repeat(lambda: build_blocks(design, "auto"), build_reps, build_budget)
    res.update(design_s=statistics.median(designs), blocks_s=statistics.median(blocks))
    fits, cpu, m3 = _repeat(lambda: mj.fit(problem), reps)
    res.update(fits_s=fits, fit_s=statistics.median(fits), cpu_per_wall=sum(cpu) / sum(fits),
               refit_objective=float(m3.objective))
    res["compile_s"] = max(res["first_call_s"] - res["call_s"], 0.0)
    dump()

    # the derivative-free option, when nlopt is installed
    if importlib.util.find_spec("nlopt") is not None:
        opts = mj.FitOptions(optimizer="bobyqa")
        t = time.perf_counter()
        mb = mj.fit(problem, opts=opts)
        first = time.perf_counter() - t
        bq, bq_cpu, mb = _repeat(lambda: mj.fit(problem, opts=opts), reps)
        res["bobyqa"] = {"fit_s": statistics.median(bq), "fits_s": bq, "first_fit_s": first,
                         "cpu_per_wall": sum(bq_cpu) / sum(bq), "feval": int(mb.optsum.feval),
                         "objective": float(mb.objective), "converged": bool(mb.optsum.converged)}
        dump()

    # one objective and one value-and-gradient evaluation, jitted, at the fitted θ
    layout = problem.layout

    def dev(th, a):
        return mj.deviance(th, a, layout, False)

    th = jax.numpy.asarray(m.theta)
    for key, f in (("obj", jax.jit(dev)), ("vg", jax.jit(jax.value_and_grad(dev)))):
        t = time.perf_counter()
        jax.block_until_ready(f(th, problem.arrays))
        res[f"{key}_compile_s"] = time.perf_counter() - t
        ts, _, _ = _repeat(lambda: jax.block_until_ready(f(th, problem.arrays)), 25, EVAL_BUDGET)
        res[f"{key}_s"] = statistics.median(ts)
        dump()
    res["vg_ratio"] = res["vg_s"] / res["obj_s"]
    res["jax_devices"] = [str(d) for d in jax.devices()]
    res["complete"] = True
    dump()


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "new-process":
        new_process(rest[0], rest[1])
    elif mode == "warm":
        warm(rest[0], rest[1], rest[2], int(rest[3]))
    else:
        sys.exit(f"unknown mode {mode!r}: new-process or warm")
