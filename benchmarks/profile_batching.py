"""The profile's batched inner fits (inference/profile_fit.py): a whole ``m.profile()`` and its intervals, cold and
warm, and how often the batched solves were traced.

    python benchmarks/profile_batching.py [MODEL]     (a name in benchmarks/models.py; default sleepstudy)

ML fit (REML fits are profiled through their ML refit). Cold: the first profile of the process (traces and
compiles included, unless a cache on disk holds them); warm: the best of three more on the same model.
"""
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import models  # noqa: E402

import mixedjax as mj  # noqa: E402
from mixedjax.inference import profile_fit  # noqa: E402

name = sys.argv[1] if len(sys.argv) > 1 else "sleepstudy"
_, formula, df, _ = getattr(models, name)()
m = mj.lmm(formula, df, reml=False)


def once():
    t0 = time.perf_counter()
    pr = m.profile()
    t1 = time.perf_counter()
    pr.confint()
    return t1 - t0, time.perf_counter() - t1, len(pr.table)


cold = once()
warm = min(once() for _ in range(3))
print(f"{name}: profile() cold {cold[0]:.2f} s + confint {cold[1]:.2f} s; warm {warm[0]:.2f} s + {warm[1]:.2f} s; "
      f"{warm[2]} grid points; batched solves traced {dict(profile_fit.TRACES)} | {os.popen('uptime').read().strip()}")
