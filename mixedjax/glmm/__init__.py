"""Generalized linear mixed models: binomial and Poisson, by the Laplace approximation or adaptive Gauss–Hermite
quadrature, with PIRLS in JAX and exact derivatives (docs/glmm.md)."""

from .family import Family, make_family
from .model import GeneralizedLinearMixedModel, glmm

__all__ = ["glmm", "GeneralizedLinearMixedModel", "Family", "make_family"]
