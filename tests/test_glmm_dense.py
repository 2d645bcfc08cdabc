"""The blocked Laplace and AGQ objectives against a direct dense computation (numpy) on small random designs, and
their exact derivatives against finite differences."""

import importlib

import jax
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from scipy.stats import norm

import mixedjax as mj
from mixedjax.fitting.loop import quick_options

laplace = importlib.import_module("mixedjax.glmm.laplace")

# random designs may give singular fits (and a warning); these tests compare objectives, not fits
pytestmark = pytest.mark.filterwarnings("ignore:.*singular:UserWarning")

# ---- an independent dense reference: numpy, Z and Λ as dense matrices ---------------------------------------


def _links(link):
    if link == "logit":
        return expit, lambda e: expit(e) * (1 - expit(e))
    if link == "probit":
        return norm.cdf, norm.pdf
    if link == "cloglog":
        return lambda e: -np.expm1(-np.exp(e)), lambda e: np.exp(e - np.exp(e))
    return np.exp, np.exp


def _devres(dist, y, mu, wt):
    def xlogy(a, b):
        return np.where(a == 0, 0.0, a * np.log(np.where(a == 0, 1.0, b)))

    if dist == "binomial":
        return 2 * wt * (xlogy(y, y) - xlogy(y, mu) + xlogy(1 - y, 1 - y) - xlogy(1 - y, 1 - mu))
    return 2 * wt * (xlogy(y, y) - xlogy(y, mu) - (y - mu))


def _dense(m):
    """Z (n × q) and a function θ -> Λ (q × q), from the design's terms."""
    d = m.design
    Zs, blocks = [], []
    for t in d.terms:
        Z = np.zeros((d.n, t.nlevels * t.s))
        for a in range(t.s):
            Z[np.arange(d.n), t.codes * t.s + a] = t.z[:, a]
        Zs.append(Z)
        blocks.append(t)

    def Lam(theta):
        out, o, k = [], 0, 0
        for t in blocks:
            lam = np.zeros((t.s, t.s))
            for (r, c) in t.pattern:
                lam[r, c] = theta[k]
                k += 1
            out.append(np.kron(np.eye(t.nlevels), lam))
        from scipy.linalg import block_diag

        return block_diag(*out)

    return np.hstack(Zs), Lam


def dense_laplace(m, theta, beta, nagq=1):
    dist, link = m.family.name, m.link
    linkinv, mu_eta = _links(link)
    var = (lambda mu: mu * (1 - mu)) if dist == "binomial" else (lambda mu: mu)
    y, wt, off, X = (np.asarray(a) for a in (m.data.y, m.data.wt, m.data.offset, m.data.X))
    Z, Lam = _dense(m)
    ZL = Z @ Lam(theta)
    q = ZL.shape[1]
    u = np.zeros(q)

    def g(u):
        return np.sum(_devres(dist, y, linkinv(off + X @ beta + ZL @ u), wt)) + u @ u

    for _ in range(200):  # Newton (Fisher scoring) with step halving, to the mode
        eta = off + X @ beta + ZL @ u
        mu, me = linkinv(eta), mu_eta(eta)
        w = wt * me**2 / var(mu)
        H = ZL.T @ (w[:, None] * ZL) + np.eye(q)
        step = np.linalg.solve(H, ZL.T @ (wt * (y - mu) * me / var(mu)) - u)
        t = 1.0
        while g(u + t * step) > g(u) and t > 1e-8:
            t /= 2
        u = u + t * step
        if np.max(np.abs(t * step)) < 1e-13:
            break
    eta = off + X @ beta + ZL @ u
    mu, me = linkinv(eta), mu_eta(eta)
    w = wt * me**2 / var(mu)
    H = ZL.T @ (w[:, None] * ZL) + np.eye(q)
    logdet = np.linalg.slogdet(H)[1]
    if nagq == 1:
        return g(u) + logdet
    # adaptive Gauss–Hermite, one scalar term: groups are the columns of Z
    z, wq = np.polynomial.hermite_e.hermegauss(nagq)
    wq = wq / np.sqrt(2 * np.pi)
    grp = np.argmax(Z != 0, axis=1)
    sd = 1 / np.sqrt(np.diag(H))

    def devc(uu):
        e = off + X @ beta + ZL @ uu
        return np.bincount(grp, _devres(dist, y, linkinv(e), wt), minlength=q) + uu**2

    d0 = devc(u)
    mult = sum(wk * np.exp(-(devc(u + zk * sd) - d0) / 2 + zk**2 / 2) for zk, wk in zip(z, wq))
    return d0.sum() + np.sum(np.log(np.diag(H))) - 2 * np.sum(np.log(mult))


def _value(m):
    """The objective at x by the fit's own compiled value-and-gradient program (already compiled by the fit: the
    finite differences below call it dozens of times; m.objective_function() called eagerly dispatches and compiles
    op by op, and jitted it is one more program to compile). test_laplace_equals_dense checks the public
    objective_function, jitted, against it."""
    c = laplace.compiled_for(m.plan)
    if m.fast:
        return lambda x: float(c.fast(np.asarray(x, float), m.data, m.u0, m.plan)[0][0])
    return lambda x: float(c.joint(np.asarray(x, float), m.data, m.u0, m.plan, m.nagq)[0][0])


def _jitted_objective(m):
    return jax.jit(m.objective_function(), compiler_options=quick_options())


# ---- small random designs ----------------------------------------------------------------------------------


def _data(seed, dist):
    rng = np.random.default_rng(seed)
    n = 90
    df = pd.DataFrame({"g": rng.integers(0, 7, n).astype(str), "h": rng.integers(0, 4, n).astype(str),
                       "x": rng.normal(size=n), "x2": rng.normal(size=n)})
    b = rng.normal(size=7) * 0.7
    eta = -0.3 + 0.5 * df.x + b[df.g.astype(int)] + 0.4 * df.x * rng.normal(size=7)[df.g.astype(int)]
    if dist == "binomial":
        df["m"] = rng.integers(1, 8, n)
        df["s"] = rng.binomial(df.m, expit(eta))
    else:
        df["s"] = rng.poisson(np.exp(eta + 0.5))
    return df


CASES = [
    ("binomial", "logit", "cbind(s, m - s) ~ 1 + x + x2 + (1 + x | g) + (1 | h)"),
    ("binomial", "probit", "cbind(s, m - s) ~ 1 + x + (1 | g) + (1 | h)"),
    ("binomial", "cloglog", "cbind(s, m - s) ~ 1 + x + (1 | g)"),
    ("poisson", "log", "s ~ 1 + x + x2 + (1 + x | g) + (1 | h)"),
]
SLOW = {"logit", "probit"}  # over 5 s each (compiles)


@pytest.fixture(scope="module", params=[pytest.param(c, id=f"{c[0]}-{c[1]}",
                                                     marks=[pytest.mark.slow] if c[1] in SLOW else [])
                                        for c in CASES])
def fitted(request):
    dist, link, formula = request.param
    df = _data(hash(link) % 1000, dist)
    off = np.random.default_rng(3).normal(size=len(df)) * 0.2
    return mj.glmm(formula, df, dist, link=link, offset=off)


def test_laplace_equals_dense(fitted):
    """At the fit and at random points, to 1e-9 relative."""
    m = fitted
    f = _value(m)
    rng = np.random.default_rng(0)
    k = m.plan.ntheta
    for trial in range(3):
        phi = m.stage.x + (0 if trial == 0 else 0.2 * rng.normal(size=m.stage.x.size))
        phi[:k] = np.where([r == c for t in m.plan.terms for r, c in t.pattern], np.abs(phi[:k]), phi[:k])
        ours = f(phi)
        ref = dense_laplace(m, phi[:k], phi[k:])
        assert ours == pytest.approx(ref, rel=1e-9), (trial, ours, ref)
        if trial == 1:  # the public pure function gives the same value
            assert float(_jitted_objective(m)(phi)) == pytest.approx(ours, rel=1e-12)


def test_gradient_and_hessian_against_differences(fitted):
    """The implicit-function gradient and Hessian against central differences of the objective and gradient."""
    m = fitted
    f = _value(m)
    x = m.stage.x + 0.05
    g = m.gradient(x)
    h = 1e-5
    fd = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5 * max(1, np.abs(fd).max()))
    H = m.hessian(x)
    hfd = np.array([(m.gradient(x + h * e) - m.gradient(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    np.testing.assert_allclose(H, (hfd + hfd.T) / 2, rtol=1e-5, atol=1e-5 * np.abs(H).max())
    np.testing.assert_allclose(H, H.T, atol=1e-8 * np.abs(H).max())


@pytest.mark.slow
def test_agq_equals_dense():
    df = _data(5, "binomial")
    m = mj.glmm("cbind(s, m - s) ~ 1 + x + (1 | g)", df, "binomial", nagq=7)
    f = _value(m)
    for shift in (0.0, 0.15):
        phi = m.stage.x + shift
        assert f(phi) == pytest.approx(dense_laplace(m, phi[:1], phi[1:], nagq=7), rel=1e-9)
    # one node is the Laplace approximation
    m1 = mj.glmm("cbind(s, m - s) ~ 1 + x + (1 | g)", df, "binomial", nagq=1)
    assert _value(m1)(m.stage.x) == pytest.approx(dense_laplace(m, m.stage.x[:1], m.stage.x[1:]), rel=1e-9)


def test_fast_gradient_against_differences():
    df = _data(11, "poisson")
    m = mj.glmm("s ~ 1 + x + (1 | g) + (1 | h)", df, "poisson", fast=True)
    f = _value(m)
    x = m.stage.x + 0.1
    h = 1e-5
    fd = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    np.testing.assert_allclose(m.gradient(x), fd, rtol=1e-5, atol=1e-6)
    # at the fast fit β is the PIRLS solution: the joint objective's β-gradient there is not zero in general,
    # but the dense objective at (θ, β̂) is the fast objective's value
    assert f(m.stage.x) == pytest.approx(dense_laplace(m, m.theta, m.fixef.to_numpy()), rel=1e-9)


def test_schur_block_equals_dense(fitted):
    """Stage 1's evaluation carries the Cholesky factor L of the fixed effects' Schur block of PIRLS's system, what
    stage 2 whitens β with: L L' = X'WX − X'WZΛ(Λ'Z'WZΛ + I)⁻¹Λ'Z'WX with Fisher's weights at stage 1's η, to 1e-9."""
    m = fitted
    ev = m.stage1.evaluation
    linkinv, mu_eta = _links(m.link)
    eta = np.asarray(ev.eta)
    mu = linkinv(eta)
    var = mu * (1 - mu) if m.family.name == "binomial" else mu
    w = np.asarray(m.data.wt) * mu_eta(eta) ** 2 / var
    Z, Lam = _dense(m)
    ZL = Z @ Lam(m.stage1.x)
    X = np.asarray(m.data.X)
    A = ZL.T @ (w[:, None] * ZL) + np.eye(ZL.shape[1])
    B = ZL.T @ (w[:, None] * X)
    ref = X.T @ (w[:, None] * X) - B.T @ np.linalg.solve(A, B)
    L = np.asarray(ev.schur)
    np.testing.assert_allclose(L @ L.T, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    assert np.allclose(L, np.tril(L))
