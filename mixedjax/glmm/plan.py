"""The host plan of a GLMM (static, hashable) and its data on the device.

Everything that depends only on the grouping structure is computed once here: the engine's blocked layout and the
index maps that assemble its blocks from the rows (``blocks.plan.build_blocks``, unmerged so that new weights
re-assemble), and for every row the columns of the random-effects vector u its entries of Z Λ fall in. What depends
on θ, β, y or the working weights is computed by the pure functions of :mod:`mixedjax.glmm.pirls` and
:mod:`mixedjax.glmm.laplace` from :class:`GlmmData`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..blocks.plan import Layout, build_blocks
from ..design.build import Design
from .family import Family


@dataclass(frozen=True)
class GlmmPlan:
    """Static description of a GLMM: the family and the engine's blocked layout (the random-effects terms as
    core.objective.lambdas reads them, the structured terms and the dense block), with the sizes."""

    family: Family
    layout: Layout
    q: int  # random effects: Σ ℓ_k s_k

    @property
    def terms(self):
        return self.layout.terms

    @property
    def p(self) -> int:  # fixed effects
        return self.layout.p

    @property
    def n(self) -> int:
        return self.layout.n

    @property
    def ntheta(self) -> int:
        return self.layout.ntheta

    @property
    def S(self) -> int:
        """Entries of Z Λ per row: Σ s_k."""
        return sum(t.s for t in self.terms)

    @property
    def scalar_single(self) -> bool:
        """One scalar random-effects term: adaptive Gauss–Hermite quadrature applies (lme4's rule)."""
        return len(self.terms) == 1 and self.terms[0].s == 1


class GlmmData(NamedTuple):
    """The model's data on the device. y: proportion or count (n,); wt: prior weights (n,); offset (n,);
    X (n, p); z: per term (n, s_k), in plan order; cols: (n, S) int32, the position in u of each entry of a row
    of Z Λ (term by term, then by column of λ_k); blocks: the engine's index maps that assemble the weighted blocks
    (blocks.types.Plan); skeleton: the engine's arrays whose index fields the factor reads (their numbers are
    re-assembled from the working weights at each PIRLS step); rounding: (n, 2) or None, family.rounding_terms
    (binomial successes that are not whole numbers: the term lme4's binomial aic adds to lme4's Laplace deviance)."""

    y: jax.Array
    wt: jax.Array
    offset: jax.Array
    X: jax.Array
    z: tuple
    cols: jax.Array
    blocks: object
    skeleton: object
    rounding: object = None


def build_plan(design: Design, family: Family, y, wt, offset, rounding=None) -> tuple[GlmmPlan, GlmmData]:
    """The plan and device data of a design (host numpy in, device arrays out)."""
    cols, off = [], 0
    for t in design.terms:
        cols.append(off + t.codes[:, None] * t.s + np.arange(t.s)[None, :])
        off += t.nlevels * t.s
    # the structure only: the blocks' numbers are assembled on the device from the working weights
    layout, arrays, blocks, _ = build_blocks(design, merge=False)  # the engine's fill-in rule, as for LMMs
    plan = GlmmPlan(family, layout, off)
    host = GlmmData(np.asarray(y, float), np.asarray(wt, float), np.asarray(offset, float), np.asarray(design.X),
                    tuple(np.asarray(t.z, float) for t in design.terms),
                    np.concatenate(cols, axis=1).astype(np.int32), blocks, arrays,
                    None if rounding is None else np.asarray(rounding, float))
    return plan, jax.device_put(host)


def z_lambda(theta, plan: GlmmPlan, data: GlmmData):
    """The entries of Z Λ(θ) per row, (n, S): for term k, the row z_ik' λ_k at columns ``data.cols``."""
    from ..core.objective import lambdas

    lams = lambdas(theta, plan.layout)
    return jnp.concatenate([z @ lam for z, lam in zip(data.z, lams)], axis=1), lams
