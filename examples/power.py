"""Simulation-based power of a planned design: 1,000 simulated experiments fitted in one call each for the model and
its null, and the likelihood-ratio test's rejection rate (simr's powerSim, without the days of waiting).

    python examples/power.py
"""

import os

import numpy as np
import pandas as pd
from scipy.stats import chi2

import mixedjax as mj

QUICK = os.environ.get("MIXEDJAX_EXAMPLES_QUICK") == "1"
NSIM = 32 if QUICK else 1000  # quick: the example as a test (tests/test_examples.py)

# the planned study: 12 subjects, 10 days each; the effect sizes and variance components we expect
plan = pd.DataFrame({"subj": np.repeat([f"S{i}" for i in range(12)], 10), "days": np.tile(np.arange(10.0), 12)})
plan["reaction"] = np.random.default_rng(0).normal(250, 30, len(plan))  # a placeholder response to set up the design
full = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", plan)
null = mj.lmm("reaction ~ 1 + (1 + days | subj)", plan)

for slope in (2.0, 4.0, 6.0):
    # θ is relative to σ: sd(intercept) 25, sd(slope) 6, correlation 0.1, residual sd 25
    sigma = 25.0
    L = np.linalg.cholesky(np.array([[25.0**2, 0.1 * 25 * 6], [0.1 * 25 * 6, 6.0**2]])) / sigma
    theta = [L[0, 0], L[1, 0], L[1, 1]]
    Y = full.simulate(NSIM, seed=1, theta=theta, beta=[250.0, slope], sigma=sigma)
    f1, f0 = mj.fit_many(full, Y), mj.fit_many(null, Y)
    lrt = np.maximum(f0.objective - f1.objective, 0.0)
    power = np.mean(chi2.sf(lrt, df=1) < 0.05)
    se = np.sqrt(power * (1 - power) / NSIM)
    print(f"slope {slope:.0f} ms/day: power {power:.3f} ± {se:.3f} ({NSIM} simulations, "
          f"{f1.nconverged + f0.nconverged} of {2 * NSIM} fits converged, {f1.seconds + f0.seconds:.2f} s)")
