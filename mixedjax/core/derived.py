"""What a fit reports, as pure JAX functions of θ (and σ): β̂, σ̂², Cov(β̂), û and b̂ (docs/design.md, section 2).

Each function takes the prepared arrays and the static layout like the objective does, so it can be jitted, vmapped
and differentiated in (θ, σ) (Satterthwaite's df differentiate ``vcov_beta``). Values are on the scale of the
response as given (the arrays hold y divided by its scale; ``arrays.log_yscale2`` undoes it).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from ..blocks.plan import Layout
from .objective import conditional_modes


class Estimates(NamedTuple):
    """The quantities a fitted model reports, at one θ.

    beta: β̂ (p,); sigma2: σ̂² (ML: r²/n, REML: r²/(n − p)); vcov: Cov(β̂) = σ̂² (L_XX L_XX')⁻¹ (p, p);
    u: spherical conditional modes û per term (ℓ_k, s_k); b: b̂ = Λ û per term; lams: λ_k per term (s_k, s_k);
    r2: the penalised residual sum of squares (y's own scale).
    """

    beta: jax.Array
    sigma2: jax.Array
    vcov: jax.Array
    u: tuple
    b: tuple
    lams: tuple
    r2: jax.Array


def xx_factor(f, layout: Layout):
    """L_XX, the fixed-effects block of the factor (p × p, lower triangular)."""
    dz, p = layout.dz, layout.p
    return f.LDD[dz : dz + p, dz : dz + p]


def vcov_from_factor(LXX, sigma2):
    """σ² (L_XX L_XX')⁻¹ by one triangular solve."""
    p = LXX.shape[0]
    Linv = solve_triangular(LXX, jnp.eye(p, dtype=LXX.dtype), lower=True)
    return sigma2 * Linv.T @ Linv


def estimates(theta, arrays, layout: Layout, reml: bool = False) -> Estimates:
    """All reported quantities at θ in one pass through the factor."""
    theta = jnp.asarray(theta)
    beta, us, r2, f = conditional_modes(theta, arrays, layout)
    c = jnp.exp(arrays.log_yscale2 / 2)  # the scale y was divided by
    dof = layout.n - layout.p if reml else layout.n
    r2 = r2 * c**2
    sigma2 = r2 / dof
    us = tuple(u * c for u in us)
    lams = tuple(f.lams)
    bs = tuple(u @ lam.T for u, lam in zip(us, lams))
    return Estimates(beta * c, sigma2, vcov_from_factor(xx_factor(f, layout), sigma2), us, bs, lams, r2)


def vcov_beta(theta, sigma, arrays, layout: Layout):
    """Cov(β̂) as a function of (θ, σ): σ² (L_XX(θ) L_XX(θ)')⁻¹; L_XX does not depend on y."""
    from .objective import factor

    f = factor(jnp.asarray(theta), arrays, layout)
    return vcov_from_factor(xx_factor(f, layout), sigma**2)


estimates_jit = jax.jit(estimates, static_argnames=("layout", "reml"))
