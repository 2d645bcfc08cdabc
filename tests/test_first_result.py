"""The first result is free: the estimates behind print(m), coeftable, ranef, fitted and varcorr come out of the
fit's own compiled program, so asking for them compiles nothing; they equal the separately jitted estimates."""

from __future__ import annotations

import logging
import math
import warnings

import jax
import numpy as np
import pytest

import mixedjax as mj
from mixedjax.core.derived import estimates_jit

SLEEP = "reaction ~ 1 + days + (1 + days | subj)"


def _compiles(records):
    return [r.getMessage() for r in records if "compil" in r.getMessage().lower()]


@pytest.mark.parametrize("optimizer", ["lbfgs", "bobyqa"])
def test_printout_after_a_fit_compiles_nothing(optimizer, caplog):
    if optimizer == "bobyqa":
        pytest.importorskip("nlopt")
    data = mj.dataset("sleepstudy")
    m = mj.lmm(SLEEP, data, optimizer=optimizer)
    assert m._estimates is not None
    caplog.clear()
    with caplog.at_level(logging.DEBUG), jax.log_compiles():
        text = str(m)
        m.coeftable(), m.ranef(), m.fitted(), m.varcorr, m.vcov, m.sigma
    assert _compiles(caplog.records) == []
    assert "days" in text
    # the same numbers as the estimates computed on their own at θ̂
    est = jax.device_get(estimates_jit(m.theta, m.problem.arrays, m.problem.layout, m.reml))
    np.testing.assert_allclose(m.fixef.to_numpy(), est.beta, rtol=1e-12)
    np.testing.assert_allclose(m.vcov.to_numpy(), est.vcov, rtol=1e-10)
    np.testing.assert_allclose(m.ranef()["subj"].to_numpy(), est.b[0], rtol=1e-10, atol=1e-10)
    assert m.sigma == pytest.approx(math.sqrt(float(est.sigma2)), rel=1e-12)


def test_refit_by_reml_carries_its_own_estimates():
    m = mj.lmm(SLEEP, mj.dataset("sleepstudy"))
    r = mj.fit(m, reml=True)
    est = jax.device_get(estimates_jit(r.theta, r.problem.arrays, r.problem.layout, True))
    np.testing.assert_allclose(r.fixef.to_numpy(), est.beta, rtol=1e-12)
    assert r.sigma == pytest.approx(math.sqrt(float(est.sigma2)), rel=1e-12)
    assert r.sigma > m.sigma  # REML's σ̂² divides by n − p


def test_model_built_without_estimates_computes_them():
    """A LinearMixedModel made by hand (no estimates from a fit) computes them on first use, the same numbers."""
    import dataclasses

    m = mj.lmm(SLEEP, mj.dataset("sleepstudy"))
    bare = dataclasses.replace(m, _estimates=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(bare.fixef.to_numpy(), m.fixef.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(bare.vcov.to_numpy(), m.vcov.to_numpy(), rtol=1e-12)


GLMM_PRINT = r"""
import sys
import mixedjax as mj
df = mj.dataset("cbpp")
m = mj.glmm("cbind(incidence, size - incidence) ~ period + (1 | herd)", df, "binomial")
before = set(sys.modules)
import jax, logging
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format="LOG %(message)s")
with jax.log_compiles():
    text = str(m)
    m.coeftable(), m.varcorr
print("NEW", sorted(k for k in set(sys.modules) - before if k.startswith("scipy")))
print(text)
"""


def test_glmm_printout_compiles_nothing_and_imports_no_scipy_stats():
    """A GLMM's first printout (coeftable's z tests, varcorr's λ) neither compiles a program per operation nor
    imports scipy.stats (together about a second of a new process's first print(m))."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, JAX_ENABLE_X64="1")
    r = subprocess.run([sys.executable, "-c", GLMM_PRINT], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = r.stdout
    assert "NEW []" in out
    assert [line for line in out.splitlines() if line.startswith("LOG") and "ompil" in line] == []
    assert "period2" in out and "herd" in out
