"""The starting θ: a method-of-moments guess at each term's covariance, from ordinary least-squares residuals.

lme4 and MixedModels.jl start every fit at λ = I. On large crossed designs that start is far from the optimum in the
metric the optimiser sees (InstEval's θ is about [0.28, 0.43]), and L-BFGS spends half its evaluations getting
close. A moment estimate costs one pass over the data on the host and lands near the optimum on such designs:
InstEval seed model 14 -> 10 evaluations, three crossed terms 38 -> 14, d3 70 -> 43, ml1m 19 -> 9 (benchmark
runs of 2026-11-21, benchmarks/RESULTS.md). The batched refits start here too, each at its own response's start:
sleepstudy's bootstrap replicates take 2.2 Newton passes on average from it against 7.4 from the fitted θ̂
(docs/batched.md, "Per-response moment starts").

The estimate (a crossed-design ANOVA argument, in the spirit of Henderson's method 3): with r the OLS residuals and,
per level j of term k, the per-level regression b_j = G_j⁻¹ Z_jᵀ r_j (G_j = Z_jᵀ Z_j),

    E[mean_j b_j b_jᵀ] ≈ Σ_k + σ² mean_j G_j⁻¹          (other terms average out within a level of k)
    E[mean r²]        ≈ σ² + Σ_k tr(Σ_k mean_i z_i z_iᵀ)

which is linear in σ² once each Σ_k is written through it. λ_k is then the Cholesky factor of Σ_k / σ², its
correlations shrunk (eigenvalues of the correlation matrix at least MIN_EIG) and its diagonal kept away from zero
(θ = 0 is a stationary point of d for a scalar term, so a start there would never move; a floor of 0.05 instead of
FLOOR = 0.2 sent the near-singular kb07 maximal model on a 532-evaluation crawl). Any term it cannot estimate (fewer
than two levels with a non-singular G_j) starts at λ = I, as in lme4; so does the whole fit when the residuals are
zero or the estimate is not finite.

Two parts, one copy of the mathematics. :func:`start_plan` (host numpy, once per design) holds everything that
depends on the design alone: per term the level codes, z, the well-conditioned levels' G_j⁻¹ and their mean,
W_k = mean z zᵀ, the unit diagonal and the θ pattern; the OLS projection; the σ² denominator. :func:`start_from`
is the response's part, written against an array namespace (``xp``): numpy for the model's own fit
(``Problem.start``, :func:`moment_start`), so a new process's first ``mj.lmm`` compiles nothing more, and
jax.numpy inside the batched fits' compiled programs (``refit``, ``fit_function``, every ``fit_many`` and
``bootstrap`` row, vmapped), where the responses are traced or on the device. No Python branch looks at a value of
y: the fallbacks are ``where``s.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..design.build import Design, Term

FLOOR = 0.2  # smallest diagonal entry of a starting λ, in the units of unit_diagonal
CEILING = 1e3  # largest, likewise
MIN_EIG = 0.05  # smallest eigenvalue kept in a starting correlation matrix
COND_MAX = 1e8  # levels whose G_j has a larger condition number are left out of the moments


class TermStart(NamedTuple):
    """The design's part of one term's start (arrays only: sizes come from the shapes).

    codes (n,) level of each row; z (n, s); ginv (ℓ, s, s) G_j⁻¹ of the well-conditioned levels, zero for the others;
    count: how many levels are used (at least 1, to divide by); estimable: at least two are; vbar (s, s): their mean
    G_j⁻¹; w (s, s): W = mean z zᵀ; unit (s,): :func:`unit_diagonal`; rows, cols (m,): the θ pattern's (row, col)
    entries of λ; identity (m,): the term's θ at λ = I."""

    codes: np.ndarray
    z: np.ndarray
    ginv: np.ndarray
    count: np.ndarray
    estimable: np.ndarray
    vbar: np.ndarray
    w: np.ndarray
    unit: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    identity: np.ndarray


class StartPlan(NamedTuple):
    """The design's part of the start: X (n, p), proj (p, p) with β_OLS = proj · Xᵀy, den = 1 − Σ_k tr(V̄_k W_k)
    over the estimable terms (the coefficient of σ² in mean r²), the terms' parts and θ at λ = I."""

    X: np.ndarray
    proj: np.ndarray
    den: np.ndarray
    terms: tuple
    identity: np.ndarray


def unit_diagonal(term: Term) -> np.ndarray:
    """Per column j of z, 1 / rms(z_j): a λ_jj of this size makes column j's random effect contribute as much to
    the variance of y as the residual does. The bounds FLOOR and CEILING are in these units, so the start does not
    depend on the units of a covariate."""
    rms = np.sqrt(np.mean(term.z**2, axis=0)) if len(term.z) else np.ones(term.s)
    return 1.0 / np.where(np.isfinite(rms) & (rms > 0), rms, 1.0)


def _term_plan(term: Term) -> TermStart:
    s, nl = term.s, term.nlevels
    G = np.empty((nl, s, s))
    for a in range(s):
        for b in range(a + 1):
            G[:, a, b] = G[:, b, a] = np.bincount(term.codes, weights=term.z[:, a] * term.z[:, b], minlength=nl)
    with np.errstate(all="ignore"):
        cond = np.linalg.cond(G) if s > 1 else np.where(G[:, 0, 0] > 0, 1.0, np.inf)
    ok = np.isfinite(cond) & (cond < COND_MAX)
    ginv = np.zeros((nl, s, s))
    if ok.any():
        ginv[ok] = np.linalg.inv(G[ok])
    count = int(ok.sum())
    rows = np.array([r for r, _ in term.pattern], dtype=np.int32)
    cols = np.array([c for _, c in term.pattern], dtype=np.int32)
    return TermStart(np.asarray(term.codes, np.int32), np.asarray(term.z, float), ginv, np.float64(max(count, 1)),
                     np.bool_(count >= 2), ginv[ok].mean(axis=0) if count else np.zeros((s, s)),
                     term.z.T @ term.z / max(len(term.z), 1), unit_diagonal(term), rows, cols, term.theta0())


def _projection(X: np.ndarray) -> np.ndarray:
    """proj with proj · Xᵀy the least-squares coefficients, from the column-equilibrated normal equations: a start
    needs only rough residuals, and an SVD least-squares solve of InstEval's 73,421 × 28 X took 25 ms of a 0.5 s
    fit (this: 5 ms). The pseudo-inverse's cutoff is numpy lstsq's (eps · p of the largest singular value)."""
    p = X.shape[1]
    if p == 0:
        return np.zeros((0, 0))
    G = X.T @ X
    d = np.sqrt(np.where(np.diag(G) > 0, np.diag(G), 1.0))
    return np.linalg.pinv(G / np.outer(d, d), rcond=np.finfo(float).eps * p) / np.outer(d, d)


def start_plan(design: Design) -> StartPlan:
    """The design's part of the moment start (host numpy; see the module docstring)."""
    terms = tuple(_term_plan(t) for t in design.terms)
    den = 1.0
    for t in terms:
        if t.estimable:
            den -= float(np.trace(t.vbar @ t.w))
    identity = np.concatenate([t.identity for t in terms])
    return StartPlan(np.asarray(design.X, float), _projection(np.asarray(design.X, float)), np.float64(den), terms,
                     identity)


def _segment_sum(xp, values, codes, nlevels: int):
    """Per-level column sums of values (n, s)."""
    if xp is np:
        return np.stack([np.bincount(codes, weights=values[:, a], minlength=nlevels) for a in range(values.shape[1])],
                        axis=1)
    import jax

    return jax.ops.segment_sum(values, codes, num_segments=nlevels)


def _cholesky(xp, A):
    """The lower Cholesky factor; NaN where A is not positive definite (numpy raises, jax.numpy returns NaN)."""
    if xp is np:
        try:
            return np.linalg.cholesky(A)
        except np.linalg.LinAlgError:
            return np.full_like(A, np.nan)
    return xp.linalg.cholesky(A)


def _lambda(xp, S, unit):
    """A lower-triangular λ with λλᵀ close to S (a relative covariance), diagonal within [FLOOR, CEILING]·unit."""
    eye = xp.eye(S.shape[0], dtype=bool)
    d = xp.clip(xp.sqrt(xp.maximum(xp.diagonal(S), 0.0)), FLOOR * unit, CEILING * unit)
    R = xp.where(eye, 1.0, xp.clip(S / xp.outer(d, d), -1.0, 1.0))
    w, V = xp.linalg.eigh(xp.where(xp.isfinite(R), R, 0.0))  # non-finite S ends at λ = I (start_from)
    R = (V * xp.maximum(w, MIN_EIG)) @ V.T
    R = R / xp.sqrt(xp.outer(xp.diagonal(R), xp.diagonal(R)))
    L = _cholesky(xp, d[:, None] * R * d[None, :])
    return xp.where(eye, xp.maximum(L, (FLOOR * unit)[:, None]), L)  # a correlation shrinks λ_jj below d_j


def start_from(plan: StartPlan, y, xp=np):
    """θ₀ for response ``y`` on the design of ``plan`` (see the module docstring); λ = I wherever the estimate is
    not available. ``xp``: numpy (host) or jax.numpy (traced; vmappable).

    The same start serves ML and REML fits: dividing the sums of squares by degrees of freedom instead (n - p,
    ℓ - 1) was tried and started REML fits further from their optimum (penicillin, dyestuff)."""
    r = y - plan.X @ (plan.proj @ (plan.X.T @ y))
    total = xp.mean(r**2)
    num, moments = total, []
    for t in plan.terms:
        # b_j = G_j⁻¹ Z_jᵀ r_j (zero for the levels left out), their mean outer product over the used levels
        b = xp.einsum("jab,jb->ja", t.ginv, _segment_sum(xp, t.z * r[:, None], t.codes, t.ginv.shape[0]))
        B = xp.einsum("ja,jb->ab", b, b) / t.count
        moments.append(B)
        # σ² from  mean r² = σ² + Σ_k tr((B_k - σ² V̄_k) W_k)
        num = num - xp.where(t.estimable, xp.trace(B @ t.w), 0.0)
    sigma2 = xp.where((plan.den > 0.1) & (num > 0), num / xp.where(plan.den > 0.1, plan.den, 1.0), xp.nan)
    sigma2 = xp.where(xp.isfinite(sigma2), xp.maximum(sigma2, 0.05 * total), 0.5 * total)
    good = xp.isfinite(sigma2) & (sigma2 > 0)
    s2 = xp.where(good, sigma2, 1.0)
    out = []
    for t, B in zip(plan.terms, moments):
        S = (B - s2 * t.vbar) / s2
        s = S.shape[0]
        if t.rows.shape[0] == s * (s + 1) // 2:
            lam = _lambda(xp, S, t.unit)
        else:
            lam = xp.diag(xp.clip(xp.sqrt(xp.maximum(xp.diagonal(S), 0.0)), FLOOR * t.unit, CEILING * t.unit))
        th = lam[t.rows, t.cols]
        out.append(xp.where(t.estimable, xp.where(xp.all(xp.isfinite(S)), th, xp.nan), t.identity))
    theta = xp.concatenate(out)
    return xp.where(good & xp.all(xp.isfinite(theta)), theta, plan.identity)


def moment_start(design: Design) -> np.ndarray:
    """θ₀ for ``design`` and its response (host numpy): :func:`start_from` on :func:`start_plan`."""
    with np.errstate(all="ignore"):
        return np.asarray(start_from(start_plan(design), np.asarray(design.y, float), np), float)
