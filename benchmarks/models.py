"""The benchmark models: each function returns ``(name, formula, DataFrame, statsmodels spec or None)``.

Bundled data (sleepstudy, penicillin, InstEval) comes from ``mixedjax.dataset``. The larger shapes (kb07, d3,
ml1m) are simulated here with a fixed seed from a linear mixed model with known parameters, so that every engine
fits the same data and the fits are meaningful. The generators are deterministic: the same call returns the same
frame on every machine (numpy's PCG64 ``default_rng``).

A statsmodels spec is a dict understood by ``run.py``'s statsmodels worker:

* ``{"formula": ..., "groups": COLUMN, "re_formula": ...}``: one grouping factor (``MixedLM.from_formula``);
* ``{"formula": ..., "vc_formula": {name: patsy formula}}``: crossed scalar terms as variance components within
  a single all-observations group (dense in statsmodels, so only practical for small data).

``None`` means statsmodels cannot express the model (correlated vector terms on crossed factors).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEED = 20240611


def _factor(codes: np.ndarray, prefix: str, nlevels: int) -> pd.Categorical:
    width = len(str(nlevels))
    labels = np.array([f"{prefix}{i + 1:0{width}d}" for i in range(nlevels)])
    return pd.Categorical.from_codes(codes.astype(np.int64), categories=labels)


def _correlated(rng, nlevels: int, sds, corr) -> np.ndarray:
    """nlevels draws from N(0, Σ) with Σ = diag(sds) corr diag(sds)."""
    sds = np.asarray(sds, float)
    cov = np.outer(sds, sds) * np.asarray(corr, float)
    return rng.multivariate_normal(np.zeros(len(sds)), cov, size=nlevels)


# ---- bundled data -----------------------------------------------------------------------------------------------
def sleepstudy():
    import mixedjax as mj

    df = mj.dataset("sleepstudy")
    spec = {"formula": "reaction ~ 1 + days", "groups": "subj", "re_formula": "1 + days"}
    return "sleepstudy", "reaction ~ 1 + days + (1 + days | subj)", df, spec


def penicillin():
    import mixedjax as mj

    df = mj.dataset("penicillin")
    spec = {"formula": "diameter ~ 1", "vc_formula": {"plate": "0 + C(plate)", "sample": "0 + C(sample)"}}
    return "penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", df, spec


def insteval_seed():
    import mixedjax as mj

    df = mj.dataset("insteval")
    spec = {"formula": "y ~ 1 + service * dept", "vc_formula": {"s": "0 + C(s)", "d": "0 + C(d)"}}
    return "insteval_seed", "y ~ 1 + service * dept + (1 | s) + (1 | d)", df, spec


def insteval_three():
    import mixedjax as mj

    df = mj.dataset("insteval")
    spec = {
        "formula": "y ~ 1 + service",
        "vc_formula": {"s": "0 + C(s)", "d": "0 + C(d)", "dept_service": "0 + C(dept):C(service)"},
    }
    return "insteval_three", "y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept:service)", df, spec


# ---- simulated shapes -------------------------------------------------------------------------------------------
def kb07_data(seed: int = SEED) -> pd.DataFrame:
    """56 subjects × 32 items, one trial each, 3 trials dropped (n = 1,789), as in Kronmüller & Barr (2007).

    spkr, prec and load are ±0.5 contrasts; each subject sees each item in one of the 8 conditions, assigned by a
    Latin square, so all three vary within subjects and within items (the maximal model has slopes on both).
    """
    rng = np.random.default_rng(seed)
    ns, ni = 56, 32
    s, i = np.meshgrid(np.arange(ns), np.arange(ni), indexing="ij")
    s, i = s.ravel(), i.ravel()
    cond = (s + i) % 8
    spkr = np.where(cond & 1, 0.5, -0.5)
    prec = np.where(cond & 2, 0.5, -0.5)
    load = np.where(cond & 4, 0.5, -0.5)
    X = np.column_stack([np.ones_like(spkr), spkr, prec, load])
    # fixed effects: (Intercept), spkr, prec, load, spkr:prec, spkr:load, prec:load, spkr:prec:load
    beta = np.array([2180.0, 68.0, -334.0, 79.0, -22.0, 18.0, 5.0, -24.0])
    Xf = np.column_stack(
        [X, spkr * prec, spkr * load, prec * load, spkr * prec * load]
    )
    corr_s = np.array([[1, 0.2, -0.1, 0.1], [0.2, 1, 0.0, 0.3], [-0.1, 0.0, 1, -0.2], [0.1, 0.3, -0.2, 1]])
    corr_i = np.array([[1, -0.3, 0.4, 0.0], [-0.3, 1, 0.1, 0.2], [0.4, 0.1, 1, -0.1], [0.0, 0.2, -0.1, 1]])
    bs = _correlated(rng, ns, [300.0, 40.0, 60.0, 70.0], corr_s)
    bi = _correlated(rng, ni, [350.0, 90.0, 300.0, 40.0], corr_i)
    rt = Xf @ beta + np.sum(X * bs[s], axis=1) + np.sum(X * bi[i], axis=1) + rng.normal(0.0, 670.0, size=s.size)
    keep = np.ones(s.size, bool)
    keep[rng.choice(s.size, 3, replace=False)] = False
    df = pd.DataFrame(
        {
            "subj": _factor(s, "S", ns),
            "item": _factor(i, "I", ni),
            "spkr": spkr,
            "prec": prec,
            "load": load,
            "rt": np.round(rt, 1),
        }
    )
    return df[keep].reset_index(drop=True)


def kb07():
    df = kb07_data()
    formula = "rt ~ 1 + spkr * prec * load + (1 + spkr + prec + load | subj) + (1 + spkr + prec + load | item)"
    return "kb07", formula, df, None


def _skewed_codes(rng, nlevels: int, n: int, sigma: float) -> np.ndarray:
    """n level codes, every level at least once, the rest drawn with lognormal(σ) level weights."""
    w = rng.lognormal(0.0, sigma, size=nlevels)
    rest = rng.choice(nlevels, size=n - nlevels, p=w / w.sum())
    codes = np.concatenate([np.arange(nlevels), rest])
    return codes[rng.permutation(n)]


def d3_data(seed: int = SEED, n: int = 130_000) -> pd.DataFrame:
    """Three crossed factors of 4,726, 172 and 34 levels with skewed level frequencies (the shape of
    MixedModels.jl's d3), a continuous covariate u, and (1 + u) random effects on each factor."""
    rng = np.random.default_rng(seed + 3)
    sizes = {"g1": 4726, "g2": 172, "g3": 34}
    codes = {g: _skewed_codes(rng, L, n, s) for (g, L), s in zip(sizes.items(), (1.0, 1.2, 1.2))}
    u = rng.normal(0.0, 1.0, size=n)
    params = {
        "g1": ([1.0, 0.3], 0.2),
        "g2": ([0.6, 0.25], -0.3),
        "g3": ([0.8, 0.4], 0.5),
    }
    y = 1.0 + 0.5 * u + rng.normal(0.0, 1.5, size=n)
    for g, (sds, r) in params.items():
        b = _correlated(rng, sizes[g], sds, [[1, r], [r, 1]])
        c = codes[g]
        y = y + b[c, 0] + b[c, 1] * u
    df = pd.DataFrame({g: _factor(codes[g], g.upper() + "_", L) for g, L in sizes.items()})
    df["u"] = u
    df["y"] = y
    return df


def d3():
    return "d3", "y ~ 1 + u + (1 + u | g1) + (1 + u | g2) + (1 + u | g3)", d3_data(), None


def _user_counts(rng, nusers: int, total: int, minimum: int = 20, cap: int = 2314) -> np.ndarray:
    """Heavy-tailed ratings per user (minimum + lognormal), capped, summing to exactly ``total``."""
    x = rng.lognormal(0.0, 1.1, size=nusers)
    lo, hi = 0.0, 10.0 * total / x.sum()
    for _ in range(200):  # bisect the scale so that Σ min(minimum + s x, cap) = total
        mid = 0.5 * (lo + hi)
        if np.minimum(minimum + mid * x, cap).sum() < total:
            lo = mid
        else:
            hi = mid
    k = np.minimum(np.floor(minimum + lo * x), cap).astype(np.int64)
    short = total - int(k.sum())
    while short > 0:  # hand out the remainder one rating at a time to users with room, heaviest first
        room = np.flatnonzero(k < cap)
        take = room[np.argsort(-x[room])][:short]
        k[take] += 1
        short -= take.size
    return k


def ml1m_data(seed: int = SEED) -> pd.DataFrame:
    """MovieLens-1M-shaped ratings: 1,000,209 (user, movie) pairs, 6,040 users × 3,706 movies, no duplicates.

    Per-user activity: 20 + lognormal(σ = 1.1), capped at 2,314 (every user ≥ 20 ratings, median ≈ 100, as in the
    real data). Movie popularity: lognormal(σ = 1.3) weights; each user's movies are a weighted sample without
    replacement (Gumbel top-k). Every movie is rated at least once. Ratings: round(3.58 + b_user + b_movie + ε),
    clipped to 1..5, with sd(b_user) = 0.45, sd(b_movie) = 0.55, sd(ε) = 0.9.
    """
    rng = np.random.default_rng(seed + 1)
    nusers, nmovies, total = 6040, 3706, 1_000_209
    k = _user_counts(rng, nusers, total)
    logw = rng.normal(0.0, 1.3, size=nmovies)
    users, movies = [], []
    chunk = 512
    for start in range(0, nusers, chunk):
        kk = k[start : start + chunk]
        keys = logw[None, :] + rng.gumbel(size=(kk.size, nmovies))
        order = np.argsort(-keys, axis=1)
        mask = np.arange(nmovies)[None, :] < kk[:, None]
        users.append(np.repeat(np.arange(start, start + kk.size), kk))
        movies.append(order[mask])  # row-major: user by user, the top k_u movies of each
    users, movies = np.concatenate(users), np.concatenate(movies)
    # every movie at least once: give each unrated movie one rating taken from a heavy user's most popular movie
    counts = np.bincount(movies, minlength=nmovies)
    heavy = np.argsort(-k)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    for j, m in enumerate(np.flatnonzero(counts == 0)):
        u = heavy[j % 50]
        rows = np.arange(starts[u], starts[u] + k[u])
        r = rows[np.argmax(counts[movies[rows]])]
        counts[movies[r]] -= 1
        movies[r] = m
        counts[m] += 1
    assert counts.min() >= 1 and np.bincount(users, minlength=nusers).min() >= 20
    assert np.unique(users.astype(np.int64) * nmovies + movies).size == total, "duplicate (user, movie) pair"
    bu = rng.normal(0.0, 0.45, size=nusers)
    bm = rng.normal(0.0, 0.55, size=nmovies)
    latent = 3.58 + bu[users] + bm[movies] + rng.normal(0.0, 0.9, size=total)
    y = np.clip(np.rint(latent), 1, 5).astype(np.int64)
    perm = rng.permutation(total)
    return pd.DataFrame(
        {"user": _factor(users[perm], "U", nusers), "movie": _factor(movies[perm], "M", nmovies), "y": y[perm]}
    )


def ml1m():
    return "ml1m", "y ~ 1 + (1 | user) + (1 | movie)", ml1m_data(), None


MODELS = {
    "sleepstudy": sleepstudy,
    "penicillin": penicillin,
    "insteval_seed": insteval_seed,
    "insteval_three": insteval_three,
    "kb07": kb07,
    "d3": d3,
    "ml1m": ml1m,
}
DATA = {
    "sleepstudy": "bundled (lme4's sleepstudy)",
    "penicillin": "bundled (lme4's Penicillin)",
    "insteval_seed": "bundled (lme4's InstEval)",
    "insteval_three": "bundled (lme4's InstEval)",
    "kb07": f"simulated, `models.kb07_data(seed={SEED})`: 56 subjects × 32 items (Latin square over the 8 "
    "spkr × prec × load conditions, ±0.5 contrasts), 3 trials dropped; true σ = 670",
    "d3": f"simulated, `models.d3_data(seed={SEED})`: g1/g2/g3 of 4,726/172/34 levels with lognormal level "
    "frequencies, u ~ N(0, 1); true σ = 1.5",
    "ml1m": f"simulated, `models.ml1m_data(seed={SEED})`: 6,040 users (≥ 20 ratings each, lognormal activity) × "
    "3,706 movies (lognormal popularity), no duplicate pairs, ratings round(3.58 + b_user + b_movie + ε) in 1..5",
}
# why statsmodels is not run where the spec is None
SM_NOT_RUN = {
    "kb07": "not expressible (correlated vector terms on crossed factors)",
    "d3": "not expressible (correlated vector terms on crossed factors)",
    "ml1m": "impractical: crossed terms only as dense variance components (1,000,209 × 9,746 design)",
}
# why lme4 is not run by default (benchmarks/run.py --r-all runs it anyway)
R_NOT_RUN = {
    "ml1m": "skipped by default: `lmer` ran past the 900 s subprocess limit on this 2-core machine "
    "(2026-12-01; --r-all runs it)",
}
QUICK = ("sleepstudy", "penicillin", "insteval_seed", "kb07")


if __name__ == "__main__":
    import time

    for name, f in MODELS.items():
        t = time.perf_counter()
        _, formula, df, spec = f()
        print(f"{name:15s} n={len(df):>9,d} {time.perf_counter() - t:6.2f}s  {formula}")
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                vc = df[c].value_counts()
                print(f"    {c}: {len(vc)} levels, counts min {vc.min()} median {vc.median():.0f} max {vc.max()}")
