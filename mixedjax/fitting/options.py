"""The fit's options (a frozen, hashable dataclass: it is a static argument of the compiled fit)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FitOptions:
    """maxiter: L-BFGS iterations. gtol: stop when max|∇d| <= gtol · max(1, |d|). ftol: ... or when an iteration
    lowers d by less than ftol · |d| (MixedModels.jl's ftol_rel; docs/performance.md says why not lower). memory:
    L-BFGS pairs. maxeval: the fit log's size (the fit stops when it is full). max_linesearch: trials per line
    search. optimizer: "auto" (the default: BOBYQA for models with at most 3 θ and an evaluation too large for the
quick-compile loop and dominated by the dense block's Cholesky, when NLopt is installed, its result checked by the
exact gradient and refined by the L-BFGS loop when the check fails; the L-BFGS loop elsewhere, and whenever maxiter,
gtol, ftol, memory or max_linesearch differ from their defaults, since BOBYQA reads none of them; see
fitting/choice.py), "lbfgs" (the compiled loop, always verified by the gradient and Hessian) or "bobyqa" (NLopt's
derivative-free BOBYQA on the host, unchecked, as in MixedModels.jl). refit, fit_function, fit_many and bootstrap run
the batched fits' solve (batch/solve.py: the Newton solve of fitting/newton.py for small models, which reads gtol,
ftol, maxiter and max_linesearch; the L-BFGS loop for large ones).
    live: print each line-search evaluation as the compiled loop makes it (``verbose=True``; jax.debug.callback, a
    separately compiled loop, so the silent one stays cacheable)."""

    maxiter: int = 500
    gtol: float = 1e-8
    ftol: float = 1e-12
    memory: int = 10
    maxeval: int = 2000
    max_linesearch: int = 30
    optimizer: str = "auto"
    live: bool = False


OPTIMIZERS = ("auto", "lbfgs", "bobyqa")
