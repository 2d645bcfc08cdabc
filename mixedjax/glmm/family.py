"""Response distributions and link functions of a GLMM, as pure JAX functions of the linear predictor.

A :class:`Family` is static (hashable: it chooses the traced program); its methods take and return JAX arrays.
The clamps follow R's ``make.link`` and lme4's glmFamily, so that μ stays inside the open range of the family
(μ ∈ (0, 1) for the binomial, μ > 0 for the Poisson) and the working weights stay positive.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax.scipy.special import gammaln, ndtr, xlogy

from ..errors import ArgumentError

EPS = float(np.finfo(np.float64).eps)
_LOGIT_THRESH = -float(np.log(EPS))  # R's logit link: |η| beyond this gives μ = eps or 1 − eps
_PROBIT_THRESH = 8.125890664701906  # -qnorm(.Machine$double.eps) in R
_CLOGLOG_MAX = 700.0  # R's cloglog: η capped here in μ'(η)
_CAUCHIT_THRESH = float(1.0 / np.tan(np.pi * EPS))  # -qcauchy(.Machine$double.eps) in R


class Dist(enum.Enum):
    BINOMIAL = "binomial"
    POISSON = "poisson"


class Link(enum.Enum):
    LOGIT = "logit"
    PROBIT = "probit"
    CLOGLOG = "cloglog"
    CAUCHIT = "cauchit"
    LOG = "log"
    SQRT = "sqrt"


# R's links of these families that lme4 fits (poisson's identity is left out: μ = η leaves (0, ∞) at once)
_ALLOWED = {Dist.BINOMIAL: (Link.LOGIT, Link.PROBIT, Link.CLOGLOG, Link.CAUCHIT, Link.LOG),
            Dist.POISSON: (Link.LOG, Link.SQRT)}
_DEFAULT = {Dist.BINOMIAL: Link.LOGIT, Dist.POISSON: Link.LOG}
_NAMES = {"binomial": Dist.BINOMIAL, "bernoulli": Dist.BINOMIAL, "poisson": Dist.POISSON}
# families lme4 fits that need a dispersion parameter (not supported: the Laplace deviance here has none)
_DISPERSION = ("gaussian", "gamma", "inverse.gaussian", "inverse_gaussian", "normal", "negative.binomial",
               "negativebinomial", "negbin")

# MixedModels.jl's names, for the printout
_JULIA_DIST = {Dist.BINOMIAL: "Binomial{Float64}", Dist.POISSON: "Poisson{Float64}"}
_JULIA_LINK = {Link.LOGIT: "LogitLink()", Link.PROBIT: "ProbitLink()", Link.CLOGLOG: "CloglogLink()",
               Link.CAUCHIT: "CauchitLink()", Link.LOG: "LogLink()", Link.SQRT: "SqrtLink()"}


@dataclass(frozen=True)
class Family:
    """A distribution with its link: ``dist`` (Dist) and ``link`` (Link)."""

    dist: Dist
    link: Link

    @property
    def name(self) -> str:
        return self.dist.value

    @property
    def canonical(self) -> bool:
        """The canonical link (logit for the binomial, log for the Poisson): the observed information of the unit
        deviance in η is then Fisher's working weight."""
        return (self.dist, self.link) in ((Dist.BINOMIAL, Link.LOGIT), (Dist.POISSON, Link.LOG))

    @property
    def julia_name(self) -> str:
        return _JULIA_DIST[self.dist]

    @property
    def julia_link(self) -> str:
        return _JULIA_LINK[self.link]

    # ---- link ---------------------------------------------------------------------------------------------
    def linkfun(self, mu):
        """η = g(μ)."""
        if self.link is Link.LOGIT:
            return jnp.log(mu) - jnp.log1p(-mu)
        if self.link is Link.PROBIT:
            from jax.scipy.special import ndtri

            return ndtri(mu)
        if self.link is Link.CLOGLOG:
            return jnp.log(-jnp.log1p(-mu))
        if self.link is Link.CAUCHIT:
            return jnp.tan(jnp.pi * (mu - 0.5))
        if self.link is Link.SQRT:
            return jnp.sqrt(mu)
        return jnp.log(mu)

    def linkinv(self, eta):
        """μ = g⁻¹(η), clamped into the open range of the family."""
        if self.link is Link.LOGIT:
            return 1.0 / (1.0 + jnp.exp(-jnp.clip(eta, -_LOGIT_THRESH, _LOGIT_THRESH)))
        if self.link is Link.PROBIT:
            return ndtr(jnp.clip(eta, -_PROBIT_THRESH, _PROBIT_THRESH))
        if self.link is Link.CLOGLOG:
            return jnp.clip(-jnp.expm1(-jnp.exp(jnp.minimum(eta, _CLOGLOG_MAX))), EPS, 1.0 - EPS)
        if self.link is Link.CAUCHIT:
            mu = 0.5 + jnp.arctan(jnp.clip(eta, -_CAUCHIT_THRESH, _CAUCHIT_THRESH)) / jnp.pi
            return jnp.clip(mu, EPS, 1.0 - EPS)  # 0.5 + atan(η)/π rounds to 1 long before R's threshold
        if self.link is Link.SQRT:
            return eta**2  # R's sqrt link: no clamp
        return jnp.maximum(jnp.exp(jnp.minimum(eta, _CLOGLOG_MAX)), EPS)

    def mu_eta(self, eta):
        """dμ/dη, at least eps (R's rule; the sqrt link's 2η as R's, unfloored)."""
        if self.link is Link.LOGIT:
            e = jnp.exp(-jnp.abs(eta))
            return jnp.maximum(e / (1.0 + e) ** 2, EPS)
        if self.link is Link.PROBIT:
            return jnp.maximum(jnp.exp(-0.5 * eta**2) / jnp.sqrt(2.0 * jnp.pi), EPS)
        if self.link is Link.CLOGLOG:
            e = jnp.minimum(eta, _CLOGLOG_MAX)
            return jnp.maximum(jnp.exp(e - jnp.exp(e)), EPS)
        if self.link is Link.CAUCHIT:
            return jnp.maximum(1.0 / (jnp.pi * (1.0 + eta**2)), EPS)
        if self.link is Link.SQRT:
            return 2.0 * eta  # R's: no floor (its sign does not matter: the weights take its square)
        return jnp.maximum(jnp.exp(jnp.minimum(eta, _CLOGLOG_MAX)), EPS)

    # ---- distribution -------------------------------------------------------------------------------------
    def variance(self, mu):
        if self.dist is Dist.BINOMIAL:
            return mu * (1.0 - mu)
        return mu

    def dev_resid(self, y, mu, wt):
        """Unit deviances times the prior weights: 2 wt (log p(y | y) − log p(y | μ))."""
        if self.dist is Dist.BINOMIAL:
            return 2.0 * wt * (xlogy(y, y) - xlogy(y, mu) + xlogy(1.0 - y, 1.0 - y) - xlogy(1.0 - y, 1.0 - mu))
        return 2.0 * wt * (xlogy(y, y) - xlogy(y, mu) - (y - mu))

    def working_weights(self, eta, wt):
        """Fisher's working weights wt μ'(η)² / V(μ) (PIRLS and lme4's log-determinant use these)."""
        mu = self.linkinv(eta)
        return wt * self.mu_eta(eta) ** 2 / self.variance(mu)


def loglik_constant(family: Family, y: np.ndarray, wt: np.ndarray, trials: np.ndarray) -> float:
    """c with −2 log p(y | μ) = Σ dev_resid(y, μ) + c for every μ (host numpy): lme4's logLik adds it back.

    Binomial (lme4's binomial aic, glmFamily.cpp): −2 Σ (wt/m) log C(m, round(M y)) − 2 Σ wt (y log y +
    (1 − y) log(1 − y)), M the trials, m = round(M).
    Poisson (R's poisson()$aic): 2 Σ wt (log y! − y log y + y).
    """
    import scipy.special as sp  # numpy on the host: jax.scipy's would compile a program per operation

    y, wt, trials = (np.asarray(a, dtype=float) for a in (y, wt, trials))
    if family.dist is Dist.BINOMIAL:
        per, s, m = _r_counts(y, wt, trials)
        with np.errstate(divide="ignore", invalid="ignore"):
            logchoose = sp.gammaln(m + 1) - sp.gammaln(s + 1) - sp.gammaln(m - s + 1)
        sat = sp.xlogy(y, y) + sp.xlogy(1 - y, 1 - y)
        return float(-2 * np.sum(per * logchoose) - 2 * np.sum(wt * sat))
    return float(2 * np.sum(wt * (sp.gammaln(y + 1) - sp.xlogy(y, y) + y)))


def rounding_terms(family: Family, y: np.ndarray, wt: np.ndarray, trials: np.ndarray) -> np.ndarray | None:
    """(a, b) per row (n, 2) with lme4's binomial aic − Σ dev_resid − loglik_constant = −2 Σ (a log μ + b log(1 − μ))
    when the successes m y or the trials m are not whole numbers (the aic rounds them, as R's binomial()$aic;
    lme4's Laplace deviance is log|L|² + ‖u‖² + aic(μ), so the criterion it minimises moves with that term); None
    when they are whole (a = b = 0), and for the Poisson family (its aic does not round)."""
    if family.dist is not Dist.BINOMIAL:
        return None
    y, wt, trials = (np.asarray(a, dtype=float) for a in (y, wt, trials))
    per, s, m = _r_counts(y, wt, trials)
    a, b = per * s - wt * y, per * (m - s) - wt * (1.0 - y)
    if np.all(np.abs(a) + np.abs(b) <= 1e-10 * np.maximum(1.0, wt)):
        return None
    return np.stack([a, b], axis=1)


def _r_counts(y, wt, trials):
    """wt/m, round(m y) and m of lme4's binomial aic (glmFamily.cpp), m the trials if any exceeds 1, else wt: m y is
    rounded before m, and wt is divided by the rounded m (R's binomial()$aic divides by m itself; lme4's logLik
    is lme4's: they differ when the weights are not whole numbers)."""
    M = trials if np.any(trials > 1) else wt
    s, m = np.round(M * y), np.round(M)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = np.where(m > 0, wt / np.where(m > 0, m, 1.0), 0.0)
    return per, s, m


# R's family calls as glmer takes them: binomial, binomial(), binomial(link = "probit"), binomial("probit"),
# binomial(link = probit), poisson(link = 'log')
_R_CALL = re.compile(r"^\s*([A-Za-z_.]+)\s*(?:\(\s*(?:link\s*=\s*)?(?:\"([^\"]*)\"|'([^']*)'|([A-Za-z_.]*))\s*\))?\s*$")


def _r_call(family: str, link):
    """(family name, link) from a family written as R's call; a link in both the call and link= must agree."""
    match = _R_CALL.match(family)
    if match is None:
        raise ArgumentError(f"family must be 'binomial', 'bernoulli' or 'poisson' (or R's call, such as "
                            f"'binomial(link = \"probit\")'), not {family!r}")
    name, inner = match.group(1), next((g for g in match.groups()[1:] if g), None)
    if inner is not None and link is not None and inner.strip().lower() != str(link).strip().lower():
        raise ArgumentError(f"the family {family!r} has link {inner!r} and link={link!r} differs; give the link once")
    return name.strip().lower(), link if inner is None else inner


def make_family(family, link=None) -> Family:
    """The Family for a name ("binomial", "bernoulli", "poisson", or R's call such as 'binomial(link = "probit")')
    and an optional link name."""
    if isinstance(family, Family):
        if link is not None and Link(link) is not family.link:
            raise ArgumentError(f"the family already has link {family.link.value!r}; do not pass link={link!r}")
        return family
    if not isinstance(family, str):
        raise ArgumentError(f"family must be 'binomial', 'bernoulli' or 'poisson', not {family!r}")
    key, link = _r_call(family, link)
    if key in _DISPERSION:
        raise ArgumentError(
            f"family {family!r} has a dispersion parameter, which mj.glmm does not estimate; fit a Gaussian model "
            "with mj.lmm, or use family='binomial' or 'poisson'"
        )
    if key.startswith("quasi"):
        raise ArgumentError(f"family {family!r} has no likelihood, so no Laplace approximation (lme4's glmer refuses "
                            "quasi families too); for overdispersed data use family='binomial' or 'poisson' with an "
                            "observation-level term such as (1 | obs)")
    if key not in _NAMES:
        raise ArgumentError(f"family must be 'binomial', 'bernoulli' or 'poisson', not {family!r}")
    dist = _NAMES[key]
    if link is None:
        return Family(dist, _DEFAULT[dist])
    names = [ln.value for ln in _ALLOWED[dist]]
    if not isinstance(link, str) or link.strip().lower() not in names:
        raise ArgumentError(f"link for the {dist.value} family must be one of {', '.join(map(repr, names))}, "
                            f"not {link!r}")
    return Family(dist, Link(link.strip().lower()))


def eta_second_derivative(family: Family, y, eta, wt):
    """½ ∂²dev_resid/∂η² per observation (the observed information; equals the working weights for canonical
    links), by forward-over-reverse differentiation of the scalar unit deviance."""
    import jax

    f = lambda e, yy, ww: family.dev_resid(yy, family.linkinv(e), ww)
    return 0.5 * jax.vmap(jax.grad(jax.grad(f)))(eta, y, wt)
