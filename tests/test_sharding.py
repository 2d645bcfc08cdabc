"""fit_many splits each chunk across devices (jax.sharding) with no change by the user: four simulated CPU devices in
a subprocess give the fits one device gives."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import mixedjax as mj

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
import numpy as np, jax, mixedjax as mj
from mixedjax.batch.sharding import batch_sharding
Y = np.asarray(json.loads(sys.stdin.read()))
m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
b = mj.fit_many(m, Y)
sh = batch_sharding()
print(json.dumps({"devices": jax.device_count(), "mesh": None if sh is None else sh.mesh.size,
                  "objective": b.objective.tolist(), "theta": b.theta.tolist(), "beta": b.beta.tolist()}))
"""


def test_four_devices_give_the_one_device_fits():
    m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
    Y = np.asarray(m.simulate(6, seed=8))  # 6 rows: the chunk is padded to 8, two a device
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "JAX_ENABLE_X64": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", SCRIPT], input=json.dumps(Y.tolist()), cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["devices"] == 4 and out["mesh"] == 4
    one = mj.fit_many(m, Y)
    np.testing.assert_allclose(out["objective"], one.objective, rtol=1e-12)
    np.testing.assert_allclose(out["theta"], one.theta, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out["beta"], one.beta, rtol=1e-12)
