"""Families and links against scipy: unit deviances plus the normalising constant are −2 log p(y | μ); μ'(η) is
the derivative of the inverse link; the observed weights are the second derivative of the unit deviance."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import binom, poisson

from mixedjax.glmm.family import eta_second_derivative, loglik_constant, make_family

ETA = np.linspace(-4, 3, 15)


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog", "cauchit", "log"])
def test_binomial_links(link):
    f = make_family("binomial", link)
    mu = np.asarray(f.linkinv(jnp.asarray(ETA)))
    np.testing.assert_allclose(np.asarray(f.linkfun(jnp.asarray(mu))), ETA, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(np.asarray(f.mu_eta(jnp.asarray(ETA))),
                               np.asarray(jax.vmap(jax.grad(f.linkinv))(jnp.asarray(ETA))), rtol=1e-7)  # μ near 1: rounding


def test_log_link():
    f = make_family("poisson")
    np.testing.assert_allclose(np.asarray(f.linkinv(jnp.asarray(ETA))), np.exp(ETA), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(f.mu_eta(jnp.asarray(ETA))), np.exp(ETA), rtol=1e-14)


def test_cauchit_and_sqrt_links_are_r_s():
    """R: pcauchy(eta), dcauchy(eta); poisson(link = "sqrt"): eta^2 and 2 eta; and their observed weights are the
    second derivative of the unit deviance by differences."""
    from scipy.stats import cauchy

    f = make_family("binomial", "cauchit")
    np.testing.assert_allclose(np.asarray(f.linkinv(jnp.asarray(ETA))), cauchy.cdf(ETA), rtol=1e-14)
    np.testing.assert_allclose(np.asarray(f.mu_eta(jnp.asarray(ETA))), cauchy.pdf(ETA), rtol=1e-14)
    g = make_family("poisson", "sqrt")
    e = np.abs(ETA) + 0.1
    np.testing.assert_allclose(np.asarray(g.linkinv(jnp.asarray(e))), e**2, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(g.mu_eta(jnp.asarray(e))), 2 * e, rtol=1e-15)
    np.testing.assert_allclose(np.asarray(g.linkfun(jnp.asarray(e**2))), e, rtol=1e-14)
    for fam, y, x in ((f, (ETA > 0).astype(float), ETA), (g, np.round(e**2), e)):
        y, wt, h = jnp.asarray(y), jnp.ones(x.shape), 1e-4
        dev = lambda z: np.asarray(fam.dev_resid(y, fam.linkinv(jnp.asarray(z)), wt))
        fd = (dev(x + h) - 2 * dev(x) + dev(x - h)) / (2 * h * h)
        np.testing.assert_allclose(np.asarray(eta_second_derivative(fam, y, jnp.asarray(x), wt)), fd, rtol=1e-5,
                                   atol=1e-6)


def test_binomial_deviance_and_constant_are_minus_twice_the_log_pmf():
    rng = np.random.default_rng(0)
    m = rng.integers(1, 12, 40).astype(float)
    s = rng.binomial(m.astype(int), 0.3).astype(float)
    y, mu = s / m, rng.uniform(0.05, 0.95, 40)
    f = make_family("binomial")
    dev = np.sum(np.asarray(f.dev_resid(jnp.asarray(y), jnp.asarray(mu), jnp.asarray(m))))
    assert dev + loglik_constant(f, y, m, m) == pytest.approx(-2 * np.sum(binom.logpmf(s, m, mu)), rel=1e-12)


def test_poisson_deviance_and_constant_are_minus_twice_the_log_pmf():
    rng = np.random.default_rng(1)
    y = rng.poisson(3.0, 40).astype(float)
    mu = rng.uniform(0.5, 6, 40)
    f = make_family("poisson")
    dev = np.sum(np.asarray(f.dev_resid(jnp.asarray(y), jnp.asarray(mu), jnp.ones(40))))
    assert dev + loglik_constant(f, y, np.ones(40), np.ones(40)) == pytest.approx(
        -2 * np.sum(poisson.logpmf(y, mu)), rel=1e-12)


@pytest.mark.parametrize("family, link", [("binomial", "logit"), ("poisson", "log")])
def test_canonical_links_observed_equals_fisher_weights(family, link):
    f = make_family(family, link)
    y = jnp.asarray(np.where(ETA > 0, 1.0, 0.0) if family == "binomial" else np.round(np.exp(ETA)))
    wt = jnp.full(ETA.shape, 2.0)
    np.testing.assert_allclose(np.asarray(eta_second_derivative(f, y, jnp.asarray(ETA), wt)),
                               np.asarray(f.working_weights(jnp.asarray(ETA), wt)), rtol=1e-9)


def test_probit_observed_weights_by_differences():
    f = make_family("binomial", "probit")
    y, wt = jnp.asarray((ETA > 0).astype(float)), jnp.ones(ETA.shape)
    h = 1e-4
    dev = lambda e: np.asarray(f.dev_resid(y, f.linkinv(jnp.asarray(e)), wt))
    fd = (dev(ETA + h) - 2 * dev(ETA) + dev(ETA - h)) / (2 * h * h)
    np.testing.assert_allclose(np.asarray(eta_second_derivative(f, y, jnp.asarray(ETA), wt)), fd, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("text, dist, link", [
    ("binomial()", "binomial", "logit"), ('binomial(link = "probit")', "binomial", "probit"),
    ("binomial(link='cloglog')", "binomial", "cloglog"), ("binomial(probit)", "binomial", "probit"),
    ('binomial("logit")', "binomial", "logit"), ("poisson(link = log)", "poisson", "log"),
    (" Poisson() ", "poisson", "log")])
def test_family_written_as_r_call(text, dist, link):
    """glmer's family= as R code (binomial(link = "probit")) names the family and the link, as in R."""
    f = make_family(text)
    assert (f.dist.value, f.link.value) == (dist, link)
    assert make_family(text, link).link.value == link  # the same link twice is fine


@pytest.mark.parametrize("text, link, match", [
    ('binomial(link = "probit")', "logit", "give the link once"),
    ('binomial(link = "probit"', None, "R's call"),
    ("quasipoisson", None, "observation-level"), ("quasibinomial(link = 'logit')", None, "no likelihood"),
    ('Gamma(link = "log")', None, "dispersion parameter"), ('poisson(link = "identity")', None, "'log'")])
def test_family_call_errors(text, link, match):
    from mixedjax import ArgumentError

    with pytest.raises(ArgumentError, match=match):
        make_family(text, link)
