"""The host plan of a GLMM (static, hashable) and its data on the device.

Everything that depends only on the grouping structure is computed once here: for every row, the columns of the
random-effects vector u its entries of Z Λ fall in. What depends on θ, β, y or the weights is computed by the pure
functions of :mod:`mixedjax.glmm.pirls` and :mod:`mixedjax.glmm.laplace` from :class:`GlmmData`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import TermLayout
from ..design.build import Design
from ..errors import DataError
from .family import Family

# The penalised system is factored by blocks (glmm/factor.py): term 0's levels one by one, the rest as one dense
# block of r = q − ℓ_0 s_0 + p rows, with an ℓ_0 s_0 × r coupling block; these bound r and that block.
MAX_REST = 4000
MAX_COUPLING = 50_000_000


@dataclass(frozen=True)
class GlmmPlan:
    """Static description of a GLMM: the family, the random-effects terms (as core.objective.lambdas reads them),
    the sizes and the number of entries S of Z Λ per row (Σ s_k)."""

    family: Family
    terms: tuple[TermLayout, ...]
    q: int  # random effects: Σ ℓ_k s_k
    p: int  # fixed effects
    n: int
    ntheta: int

    @property
    def S(self) -> int:
        return sum(t.s for t in self.terms)

    @property
    def scalar_single(self) -> bool:
        """One scalar random-effects term: adaptive Gauss–Hermite quadrature applies (lme4's rule)."""
        return len(self.terms) == 1 and self.terms[0].s == 1


class GlmmData(NamedTuple):
    """The model's data on the device. y: proportion or count (n,); wt: prior weights (n,); offset (n,);
    X (n, p); z: per term (n, s_k), in plan order; cols: (n, S) int32, the position in u of each entry of a row
    of Z Λ (term by term, then by column of λ_k)."""

    y: jax.Array
    wt: jax.Array
    offset: jax.Array
    X: jax.Array
    z: tuple
    cols: jax.Array


def build_plan(design: Design, family: Family, y, wt, offset) -> tuple[GlmmPlan, GlmmData]:
    """The plan and device data of a design (host numpy in, device arrays out)."""
    terms, cols, off, toff = [], [], 0, 0
    for t in design.terms:
        terms.append(TermLayout(t.s, t.nlevels, toff, t.pattern))
        toff += t.ntheta
        cols.append(off + t.codes[:, None] * t.s + np.arange(t.s)[None, :])
        off += t.nlevels * t.s
    t0 = design.terms[0]
    rest = off - t0.nlevels * t0.s + design.p
    if rest > MAX_REST or t0.nlevels * t0.s * rest > MAX_COUPLING:
        names = ", ".join(f"{t.name} ({t.nlevels:,} levels × {t.s})" for t in design.terms[1:])
        raise DataError(f"this model's dense block would have {rest:,} rows (the random effects of {names} and the "
                        f"{design.p} fixed effects; the first term, {t0.name}, is factored level by level), and "
                        f"mj.glmm supports at most {MAX_REST:,} (and {MAX_COUPLING:,} entries coupling it to "
                        f"{t0.name}). Fit fewer or smaller crossed terms.")
    plan = GlmmPlan(family, tuple(terms), off, design.p, design.n, toff)
    host = GlmmData(np.asarray(y, float), np.asarray(wt, float), np.asarray(offset, float), np.asarray(design.X),
                    tuple(np.asarray(t.z, float) for t in design.terms),
                    np.concatenate(cols, axis=1).astype(np.int32))
    return plan, jax.device_put(host)


def z_lambda(theta, plan: GlmmPlan, data: GlmmData):
    """The entries of Z Λ(θ) per row, (n, S): for term k, the row z_ik' λ_k at columns ``data.cols``."""
    from ..core.objective import lambdas

    lams = lambdas(theta, plan)
    return jnp.concatenate([z @ lam for z, lam in zip(data.z, lams)], axis=1), lams
