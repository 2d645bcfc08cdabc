"""Does batching the profile's inner fits over grid points pay?

    python benchmarks/profile_batching.py MODEL      (a name in benchmarks/models.py: sleepstudy, insteval_seed, ...)

Times one jitted value and gradient of the profile's objective (inference/profile.py's _psi_deviance) against a vmap
of it over 8 grid points (warm, best of 20), and for sleepstudy the wall time of a whole ``m.profile()``.
"""
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

jax.config.update("jax_enable_x64", True)
import models  # noqa: E402

import mixedjax as mj  # noqa: E402
from mixedjax.inference import profile as P  # noqa: E402

name = sys.argv[1]
_, formula, df, _ = getattr(models, name)()
m = mj.lmm(formula, df)
lay, a = m.problem.layout, m.problem.arrays
psi = jnp.asarray(P.psi_from_theta(np.asarray(m.theta), m.sigma, lay))
one = P._psi_vg
many = jax.jit(jax.vmap(jax.value_and_grad(P._psi_deviance), in_axes=(0, None, None)), static_argnames=("layout",))
batch = psi[None, :] * (1 + 0.01 * jnp.arange(8.0)[:, None])
def best(f, *args, n=20):
    jax.block_until_ready(f(*args)); ts = []
    for _ in range(n):
        t0 = time.perf_counter(); jax.block_until_ready(f(*args)); ts.append(time.perf_counter() - t0)
    return min(ts)
t1 = best(one, psi, a, lay); t8 = best(many, batch, a, lay)
def host_loop():  # what the scipy inner fit pays per evaluation: the call and the transfer to numpy
    v, g = one(psi, a, lay); float(v); np.asarray(g)
t1h = best(lambda: host_loop())
print(f"{name}: one value+grad {t1*1e3:.2f} ms (with host transfer {t1h*1e3:.2f} ms); vmap over 8 points {t8*1e3:.2f} ms "
      f"({t8/8*1e3:.2f} ms a point) | {os.popen('uptime').read().strip()}", flush=True)
if name == "sleepstudy":
    t0 = time.perf_counter(); pr = m.profile(); t = time.perf_counter() - t0
    print(f"sleepstudy profile(): {t:.1f} s, {len(pr.table)} grid points", flush=True)
