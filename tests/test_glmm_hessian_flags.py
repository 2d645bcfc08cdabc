"""The exact GLMM Hessian on the dense fill-in path stays finite and unchanged under XLA's single-threaded Eigen
(--xla_cpu_multi_thread_eigen=false) and when its compiled program is read back from JAX's compilation cache by a
second process: reverse over reverse gave an all-NaN Hessian there on verbagg (docs/glmm.md, "The NaN Hessian")."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent

# a small crossed Bernoulli design: the engine's rule puts the second factor in the dense block and takes the first
# factor's fill-in of it as dense products (nheavy > 0), the path that gave NaN
SCRIPT = r"""
import json, sys
import numpy as np, pandas as pd
import jax, jax.numpy as jnp
jax.config.update("jax_enable_x64", True)
import mixedjax  # noqa: F401 (sets the compilation cache from MIXEDJAX_CACHE_DIR)
from mixedjax.design.build import build_design
from mixedjax.glmm.family import make_family
from mixedjax.glmm.laplace import compiled_for, modes_of
from mixedjax.glmm.fit import glm_start
plan_mod = sys.modules["mixedjax.glmm.plan"]

rng = np.random.default_rng(4)
ns, ni = 30, 8
subj, item = np.repeat(np.arange(ns), ni), np.tile(np.arange(ni), ns)
x = rng.normal(size=subj.size)
eta = -0.3 + 0.7 * x + rng.normal(0, 1, ns)[subj] + rng.normal(0, 0.6, ni)[item]
y = (rng.uniform(size=subj.size) < 1 / (1 + np.exp(-eta))).astype(float)
df = pd.DataFrame({"s": pd.Categorical([f"s{i}" for i in subj]), "i": pd.Categorical([f"i{i}" for i in item]),
                   "x": x, "y": y})
design = build_design("y ~ 1 + x + (1 | s) + (1 | i)", df, residual=False)
fam = make_family("binomial", None)
yy = np.asarray(design.y, float)
one, zero = np.ones_like(yy), np.zeros_like(yy)
plan, data = plan_mod.build_plan(design, fam, yy, one, zero)
phi = np.concatenate([[0.9, 0.5], glm_start(design.X, yy, one, zero, fam)])
c = compiled_for(plan)
(_, ev), _ = c.joint(phi, data, np.zeros(plan.q + plan.p), plan, 1)  # the modes at phi, where the Hessian is taken
H = np.asarray(c.hessian(phi, data, modes_of(ev), plan, 1))
print(json.dumps({"nheavy": list(plan.layout.nheavy), "H": H.tolist()}))
"""


def _run(cache, flags):
    env = dict(os.environ, MIXEDJAX_CACHE_DIR=str(cache), JAX_ENABLE_X64="1")
    env.pop("XLA_FLAGS", None)
    if flags:
        env["XLA_FLAGS"] = flags
    r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    return out["nheavy"], np.array(out["H"])


@pytest.mark.slow
def test_dense_path_hessian_finite_under_flag_and_cache(tmp_path):
    flag = "--xla_cpu_multi_thread_eigen=false"
    nheavy, H_flag = _run(tmp_path / "a", flag)  # compiles under the flag, writes the cache
    assert sum(nheavy) > 0  # the dense-product path
    _, H_read = _run(tmp_path / "a", flag)  # a second process reading the compiled programs back
    _, H_plain = _run(tmp_path / "b", "")  # XLA's defaults, a cache of its own
    for H in (H_flag, H_read, H_plain):
        assert np.all(np.isfinite(H))
        np.testing.assert_allclose(H, H.T, atol=1e-8 * np.abs(H).max())
        assert np.all(np.linalg.eigvalsh(H)[-1] > 0)
    np.testing.assert_allclose(H_flag, H_plain, rtol=1e-9, atol=1e-9 * np.abs(H_plain).max())
    np.testing.assert_allclose(H_read, H_plain, rtol=1e-9, atol=1e-9 * np.abs(H_plain).max())
