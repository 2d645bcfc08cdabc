"""The distribution-free comparison of a bootstrap's replicates with R's quantiles of its own replicates (the tests
of m.bootstrap against lme4; the reasoning is in test_bootstrap_designs.py's docstring)."""

import numpy as np


def percentile_fractions(v, is_sd: bool, probs, qs, nr: int, z: float):
    """(q, R's quantile x, the fractions of our values v below and at or below x, the tolerance) for each
    probability q and R's quantile x of nr replicates. A sd below a thousandth of the median counts as zero on both
    sides (a boundary replicate stopped a little off zero by lme4's optimiser)."""
    v = np.asarray(v, float)
    floor = 1e-3 * np.median(v) if is_sd else -np.inf
    v = np.where(v < floor, 0.0, v)
    eps = 1e-9 * np.ptp(v)
    out = []
    for q, x in zip(probs, qs):
        x = 0.0 if x < floor else x
        tol = z * np.sqrt(q * (1 - q) * (1 / nr + 1 / v.size))
        out.append((q, x, np.mean(v < x - eps), np.mean(v <= x + eps), tol))
    return out
