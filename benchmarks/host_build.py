"""Time the host build of the benchmark models: `Problem.build`, its design (`build_design`) and its blocks
(`build_blocks`), and on the small models the warm whole call `mj.lmm`. CPU time of this process
(`time.process_time`), minimum and median of ``--repeats`` calls, BLAS on one thread.

    python benchmarks/host_build.py                                  # sleepstudy, penicillin, InstEval seed, kb07
    python benchmarks/host_build.py --models insteval_three,d3 --repeats 5
    python benchmarks/host_build.py --models insteval_three --warm insteval_three --repeats 7   # its warm call too

The load average is printed with each model: on a shared machine, compare before and after in alternating runs
(``PYTHONPATH=/path/to/other/checkout python benchmarks/host_build.py`` times that checkout's mixedjax).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy is imported
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
if not os.environ.get("PYTHONPATH"):  # this checkout's mixedjax (PYTHONPATH=/other/checkout times another one)
    sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import models  # noqa: E402

import mixedjax as mj  # noqa: E402
from mixedjax.blocks.plan import build_blocks  # noqa: E402
from mixedjax.design.build import build_design  # noqa: E402

SMALL = ("sleepstudy", "penicillin", "kb07")  # warm whole calls are timed on these (a few ms to a few tenths each)


def _times(fn, repeats: int) -> tuple[float, float]:
    """(minimum, median) CPU seconds of ``repeats`` calls."""
    ts = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        ts.append(time.process_time() - t)
    ts.sort()
    return ts[0], ts[len(ts) // 2]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="sleepstudy,penicillin,insteval_seed,kb07")
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--warm", default=",".join(SMALL), help="models whose warm mj.lmm is timed too")
    args = ap.parse_args()
    warnings.simplefilter("ignore")  # rank-deficiency and convergence warnings of the models say nothing here
    print(f"{'model':<16}{'Problem.build':>22}{'design':>22}{'blocks':>22}{'mj.lmm warm':>22}   load average")
    for name in args.models.split(","):
        _, formula, df, _ = getattr(models, name)()
        design = build_design(formula, df)
        cells = [_times(lambda: mj.Problem.build(formula, df), args.repeats),
                 _times(lambda: build_design(formula, df), args.repeats),
                 _times(lambda: build_blocks(design, "auto", weights=design.weights, offset=design.offset),
                        args.repeats)]
        if name in args.warm.split(","):
            mj.lmm(formula, df)  # the compile (or the read-back of a kept program) is not timed
            cells.append(_times(lambda: mj.lmm(formula, df), args.repeats))
        text = "".join(f"{f'{lo * 1e3:.2f} / {mid * 1e3:.2f} ms':>22}" for lo, mid in cells)
        print(f"{name:<16}{text}{'':>22}"[: 16 + 22 * 4] + f"   {os.getloadavg()[0]:.1f}", flush=True)
    print("(minimum / median CPU time of", args.repeats, "calls each)")


if __name__ == "__main__":
    main()
