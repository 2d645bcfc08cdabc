"""The starting θ: a method-of-moments guess at each term's covariance, from ordinary least-squares residuals.

lme4 and MixedModels.jl start every fit at λ = I. On large crossed designs that start is far from the optimum in the
metric the optimiser sees (InstEval's θ is about [0.28, 0.43]), and L-BFGS spends half its evaluations getting
close. A moment estimate costs one pass over the data on the host and lands near the optimum on such designs:
InstEval seed model 14 -> 10 evaluations, three crossed terms 38 -> 14, d3 70 -> 43, ml1m 19 -> 9 (benchmark
runs of 2026-11-21, benchmarks/RESULTS.md).

The estimate (a crossed-design ANOVA argument, in the spirit of Henderson's method 3): with r the OLS residuals and,
per level j of term k, the per-level regression b_j = G_j⁻¹ Z_jᵀ r_j (G_j = Z_jᵀ Z_j),

    E[mean_j b_j b_jᵀ] ≈ Σ_k + σ² mean_j G_j⁻¹          (other terms average out within a level of k)
    E[mean r²]        ≈ σ² + Σ_k tr(Σ_k mean_i z_i z_iᵀ)

which is linear in σ² once each Σ_k is written through it. λ_k is then the Cholesky factor of Σ_k / σ², its
correlations shrunk (eigenvalues of the correlation matrix at least MIN_EIG) and its diagonal kept away from zero
(θ = 0 is a stationary point of d for a scalar term, so a start there would never move; a floor of 0.05 instead of
FLOOR = 0.2 sent the near-singular kb07 maximal model on a 532-evaluation crawl). Any term it cannot estimate (fewer than two levels with a non-singular G_j) starts
at λ = I, as in lme4; so does the whole fit when the residuals are zero or the estimate is not finite.
"""

from __future__ import annotations

import numpy as np

from ..design.build import Design, Term

FLOOR = 0.2  # smallest diagonal entry of a starting λ, in the units of unit_diagonal
CEILING = 1e3  # largest, likewise
MIN_EIG = 0.05  # smallest eigenvalue kept in a starting correlation matrix


def _per_level_moments(term: Term, r: np.ndarray):
    """mean_j b_j b_jᵀ and mean_j G_j⁻¹ over the levels whose G_j is well conditioned; None if fewer than two."""
    s, nl = term.s, term.nlevels
    G = np.empty((nl, s, s))
    for a in range(s):
        for b in range(a + 1):
            G[:, a, b] = G[:, b, a] = np.bincount(term.codes, weights=term.z[:, a] * term.z[:, b], minlength=nl)
    zr = np.stack([np.bincount(term.codes, weights=term.z[:, a] * r, minlength=nl) for a in range(s)], axis=1)
    cond = np.linalg.cond(G) if s > 1 else np.where(G[:, 0, 0] > 0, 1.0, np.inf)
    ok = np.isfinite(cond) & (cond < 1e8)
    if ok.sum() < 2:
        return None
    Ginv = np.linalg.inv(G[ok])
    b = np.einsum("jab,jb->ja", Ginv, zr[ok])
    return np.einsum("ja,jb->ab", b, b) / ok.sum(), Ginv.mean(axis=0)


def unit_diagonal(term: Term) -> np.ndarray:
    """Per column j of z, 1 / rms(z_j): a λ_jj of this size makes column j's random effect contribute as much to
    the variance of y as the residual does. The bounds FLOOR and CEILING are in these units, so the start does not
    depend on the units of a covariate."""
    rms = np.sqrt(np.mean(term.z**2, axis=0)) if len(term.z) else np.ones(term.s)
    return 1.0 / np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)


def _lambda(S: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """A lower-triangular λ with λλᵀ close to S (a relative covariance), diagonal within [FLOOR, CEILING]·unit."""
    d = np.clip(np.sqrt(np.maximum(np.diag(S), 0.0)), FLOOR * unit, CEILING * unit)
    R = np.clip(S / np.outer(d, d), -1.0, 1.0)
    np.fill_diagonal(R, 1.0)
    w, V = np.linalg.eigh(R)
    R = (V * np.maximum(w, MIN_EIG)) @ V.T
    R = R / np.sqrt(np.outer(np.diag(R), np.diag(R)))
    L = np.linalg.cholesky(d[:, None] * R * d[None, :])
    np.fill_diagonal(L, np.maximum(np.diag(L), FLOOR * unit))  # a correlation shrinks λ_jj below d_j
    return L


def _ols(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Least-squares coefficients from the column-equilibrated normal equations: a start needs only rough
    residuals, and an SVD least-squares solve of InstEval's 73,421 × 28 X took 25 ms of a 0.5 s fit (this: 5 ms)."""
    G = X.T @ X
    d = np.sqrt(np.where(np.diag(G) > 0, np.diag(G), 1.0))
    return np.linalg.lstsq(G / np.outer(d, d), (X.T @ y) / d, rcond=None)[0] / d


def moment_start(design: Design) -> np.ndarray:
    """θ₀ for ``design`` (see the module docstring); λ = I wherever the estimate is not available.

    The same start serves ML and REML fits: dividing the sums of squares by degrees of freedom instead (n - p,
    ℓ - 1) was tried and started REML fits further from their optimum (penicillin, dyestuff)."""
    identity = np.concatenate([t.theta0() for t in design.terms])
    try:
        with np.errstate(all="ignore"):
            r = design.y - design.X @ _ols(design.X, design.y)
            total = float(np.mean(r**2))
            moments = [_per_level_moments(t, r) for t in design.terms]
            # σ² from  mean r² = σ² + Σ_k tr((B_k - σ² V_k) W_k),  W_k = mean z zᵀ
            num, den = total, 1.0
            for t, mom in zip(design.terms, moments):
                if mom is not None:
                    W = t.z.T @ t.z / len(t.z)
                    num -= np.trace(mom[0] @ W)
                    den -= np.trace(mom[1] @ W)
            sigma2 = num / den if den > 0.1 and num > 0 else np.nan
            sigma2 = max(sigma2, 0.05 * total) if np.isfinite(sigma2) else 0.5 * total
            if not (np.isfinite(sigma2) and sigma2 > 0):
                return identity
            out = []
            for t, mom in zip(design.terms, moments):
                eye = t.theta0()
                if mom is None:
                    out.append(eye)
                    continue
                unit = unit_diagonal(t)
                S = (mom[0] - sigma2 * mom[1]) / sigma2
                full = len(t.pattern) == t.s * (t.s + 1) // 2
                lam = _lambda(S, unit) if full else np.diag(
                    np.clip(np.sqrt(np.maximum(np.diag(S), 0.0)), FLOOR * unit, CEILING * unit))
                out.append(np.array([lam[r_, c_] for r_, c_ in t.pattern]))
            theta = np.concatenate(out)
    except np.linalg.LinAlgError:
        return identity
    return theta if np.all(np.isfinite(theta)) else identity
