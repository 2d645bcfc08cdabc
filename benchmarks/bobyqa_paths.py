"""How many objectives BOBYQA takes from starts that differ by rounding, for a few first and last trust regions.

    python benchmarks/bobyqa_paths.py insteval_three            # 8 starts × steps 0.05, 0.1, 0.2, 0.3
    python benchmarks/bobyqa_paths.py insteval_seed --starts 4 --steps 0.1
    python benchmarks/bobyqa_paths.py insteval_three --steps 0.1 --xtols 1e-10,1e-7,1e-6

Start r is the fit's moment start times (1 + 1e-9 z_r), z_r standard normal (r = 0: the start itself). The step is
the first trust region as a fraction of each |θ| (mixedjax's ``_fit.BOBYQA_STEP``, 0.1 by default); xtol the last
one (NLopt's xtol_abs, ``_fit.BOBYQA_XTOL``, 1e-7 by default). Prints, per step and xtol, the sorted evaluation
counts and the spread of the objectives reached. A count that changes with such a perturbation is a property of
the optimiser's path, not of the machine: a single benchmark run draws one of them.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
os.environ.setdefault("MIXEDJAX_CACHE_DIR", "")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's mixedjax

import numpy as np  # noqa: E402

import mixedjax as mj  # noqa: E402
import models  # noqa: E402
from mixedjax.fitting import bobyqa as _fit  # noqa: E402
from mixedjax.fitting.solve import lmm_objective  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", choices=sorted(models.MODELS))
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--steps", default="0.05,0.1,0.2,0.3", help="comma-separated initial trust-region fractions")
    ap.add_argument("--xtols", default=str(_fit.BOBYQA_XTOL), help="comma-separated final trust regions (xtol_abs)")
    args = ap.parse_args(argv)
    _, formula, df, _ = models.MODELS[args.model]()
    problem = mj.Problem.build(formula, df)
    start = problem.start()
    opts = mj.FitOptions(optimizer="bobyqa")
    defaults = _fit.BOBYQA_STEP, _fit.BOBYQA_XTOL
    print(f"{args.model}: {formula}; start {np.round(start, 6).tolist()}")
    try:
        for step, xtol in ((float(s), float(x)) for s in args.steps.split(",") for x in args.xtols.split(",")):
            _fit.BOBYQA_STEP, _fit.BOBYQA_XTOL = step, xtol
            evals, fs = [], []
            for r in range(args.starts):
                z = np.random.default_rng(r).standard_normal(start.size)
                th0 = start * (1 + 1e-9 * z) if r else start
                _, f, _, _, log = _fit.bobyqa(lmm_objective(problem.layout, False), th0, problem.arrays, opts,
                                              problem.theta_scale, False)
                evals.append(len(log))
                fs.append(f)
            print(f"  step {step:g}, xtol {xtol:g}: evaluations {sorted(evals)} (median {np.median(evals):g}); "
                  f"objective {min(fs):.7f}, spread {max(fs) - min(fs):.1e}", flush=True)
    finally:
        _fit.BOBYQA_STEP, _fit.BOBYQA_XTOL = defaults


if __name__ == "__main__":
    main()
