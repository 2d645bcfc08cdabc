"""A bootstrap's replicates do not depend on the cache state: a new process that compiles everything (an empty
cache) and one that reads the traced programs and XLA's executables back from the cache the first one filled give
the same replicates bit for bit, hence the same singular count (the benchmark's cold and cached processes once
reported 30 and 32 singular replicates: they had bootstrapped different seeds)."""

import os
import subprocess
import sys

import numpy as np

SCRIPT = """
import sys, numpy as np, mixedjax as mj
m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
b = m.bootstrap(300, seed=1, progress=False)
np.savez(sys.argv[1], theta=b.fits.theta, objective=b.fits.objective, feval=b.fits.feval, nsingular=b.nsingular)
"""


def _run(cache, out):
    env = dict(os.environ, MIXEDJAX_CACHE_DIR=str(cache), JAX_ENABLE_X64="1")
    subprocess.run([sys.executable, "-c", SCRIPT, str(out)], env=env, check=True, timeout=600)
    return np.load(out)


def test_cold_and_cached_processes_agree(tmp_path):
    cache = tmp_path / "cache"
    cold = _run(cache, tmp_path / "cold.npz")
    assert any((cache / "jax").iterdir()) and any((cache / "traces").iterdir())  # the second process reads these
    cached = _run(cache, tmp_path / "cached.npz")
    for k in ("theta", "objective", "feval", "nsingular"):
        np.testing.assert_array_equal(cached[k], cold[k], err_msg=k)
