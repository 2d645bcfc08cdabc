"""The lme4 reference tests under XLA's default code generation, what a user's fits compile with.

The rest of the suite compiles with XLA's quick options (conftest.py, ``_quick_xla_flags``) to keep CI short; these
run again, in a pytest of their own, with the XLA_FLAGS the suite was started with: lme4's objective, θ, β, standard
errors, σ and fitted values of the first-wave LMMs (all but InstEval, whose 73,421-row design the main run checks),
the cbpp logistic GLMM (Laplace, nAGQ = 9, nAGQ = 0) and the bootstrap against lme4's bootMer: about 20 s."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SELECTION = ["tests/test_reference.py", "tests/test_glmm_reference.py", "tests/test_bootstrap.py",
             "-k", "not insteval and (test_lme4_objective or test_lme4_theta or test_lme4_fixef or test_lme4_fitted"
                   " or cbpp_logit or test_percentiles)"]


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("XLA_FLAGS", "") == os.environ.get("MIXEDJAX_TEST_USER_XLA_FLAGS", ""),
                    reason="this run compiles with the flags it was started with already")
def test_references_pass_under_xla_defaults():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(MIXEDJAX_TEST_XLA_DEFAULTS="1", XLA_FLAGS=os.environ.get("MIXEDJAX_TEST_USER_XLA_FLAGS",
                                                                         os.environ.get("XLA_FLAGS", "")))
    env.pop("MIXEDJAX_CACHE_DIR")  # the inner run makes its own
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                        *SELECTION], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert int(r.stdout.split(" passed")[0].split()[-1]) >= 50, r.stdout[-2000:]  # the selection still selects
