"""``lmm``: build the problem, fit it, and return a frozen :class:`LinearMixedModel` built in one step."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..batch.methods import BatchMethods
from ..core.derived import Estimates, estimates_jit
from ..core.objective import deviance, fixed_sigma_objective
from ..diagnostics.methods import DiagnosticsMethods
from ..display.text import model_repr, summary_html, summary_markdown, summary_text
from ..errors import ArgumentError, FitError
from ..fitting.blas import single_blas_thread
from ..fitting.options import OPTIMIZERS, FitOptions
from ..fitting.solve import diagonal_indices
from ..fitting.summary import OptSummary, fit_theta
from ..inference.methods import InferenceMethods
from ..model.varcorr import VarCorr, VarCorrGroup
from .groups import lme4_aliases
from .criteria import InformationCriteria
from .problem import Problem

_OPTIONS = ("maxiter", "gtol", "ftol", "theta0", "optimizer")
START_KINDS = ("moments", "identity")


def _check_x64():
    if not jax.config.jax_enable_x64:
        raise FitError(
            "mixedjax computes in float64 but JAX's 64-bit mode is off. Set the environment variable "
            "JAX_ENABLE_X64=1 before starting Python, or call jax.config.update('jax_enable_x64', True) "
            "before creating any JAX arrays."
        )


@single_blas_thread
def lmm(formula, data, *, reml=False, verbose=False, weights=None, offset=None, **options) -> "LinearMixedModel":
    """Fit a linear mixed-effects model given by an lme4 formula (ML by default, like MixedModels.jl).

    ``weights``: prior weights, a column name or one value per row (lme4's meaning: the residual variance of row i
    is σ²/wᵢ, and the objective is lme4's deviance or REML criterion of the weighted fit). ``offset``: a column name
    or one value per row, a known term added to the linear predictor (as ``offset(...)`` in the formula; the two
    add up). Rows with a missing weight or offset are dropped and counted like any missing value; weights that are
    negative, infinite or all zero are a DataError.

    Options: ``maxiter`` (500), ``gtol`` (1e-8, relative gradient tolerance), ``ftol`` (1e-12, relative change of
    the objective), ``theta0`` (the starting θ: ``"moments"``, the default, a method-of-moments estimate from least-
    squares residuals (see ``Problem.start``); ``"identity"``, λ = I as in lme4 and MixedModels.jl; or the values),
    ``optimizer`` (``"auto"``, the default: the fastest verified fit by a rule measured on the benchmark models
    (fitting/choice.py): NLopt's BOBYQA for models with at most 3 θ whose evaluation is large (InstEval-sized), when
    the ``nlopt`` package is installed, its result checked by the exact gradient and refined by the L-BFGS loop when
    the check fails; the jitted L-BFGS loop elsewhere, and whenever ``maxiter``, ``gtol`` or ``ftol`` differs
    from its default (options of the loop, which BOBYQA does not read). ``"lbfgs"``: always the L-BFGS loop with
    exact gradients, verified by the gradient and Hessian at the result. ``"bobyqa"``: always BOBYQA, derivative-free and unchecked,
    as in MixedModels.jl). ``m.optsum.optimizer`` says which one ran.
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ArgumentError(
            f"unknown keyword argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for lmm; "
            f"valid ones are reml, verbose, weights, offset, {', '.join(_OPTIONS)}"
        )
    for name, val in (("reml", reml), ("verbose", verbose)):
        if not isinstance(val, (bool, np.bool_)):
            raise ArgumentError(f"{name} must be True or False, not {val!r}")
    maxiter = options.get("maxiter", FitOptions.maxiter)
    if isinstance(maxiter, (bool, np.bool_)) or not isinstance(maxiter, (int, np.integer)) or maxiter <= 0:
        raise ArgumentError(f"maxiter must be a positive integer, not {maxiter!r}")
    for name in ("gtol", "ftol"):
        v = options.get(name, getattr(FitOptions, name))
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.floating, np.integer)) or not (
            math.isfinite(v) and v > 0
        ):
            raise ArgumentError(f"{name} must be a positive finite number, not {v!r}")
    optimizer = options.get("optimizer", FitOptions.optimizer)
    if optimizer not in OPTIMIZERS:
        raise ArgumentError(f"optimizer must be one of {', '.join(map(repr, OPTIMIZERS))}, not {optimizer!r}")
    opts = FitOptions(optimizer=optimizer, **{k: (int(options[k]) if k == "maxiter" else float(options[k]))
                                              for k in ("maxiter", "gtol", "ftol") if k in options})
    theta0 = options.get("theta0")
    if theta0 is not None and not (isinstance(theta0, str) and theta0 in START_KINDS):
        if isinstance(theta0, str):
            raise ArgumentError(f"theta0 must be 'moments', 'identity' or a sequence of numbers, not {theta0!r}")
        try:
            theta0 = np.asarray(theta0, dtype=float).reshape(-1)
        except (TypeError, ValueError) as err:
            raise ArgumentError(f"theta0 must be a sequence of numbers, not {options['theta0']!r}") from err
        if not np.all(np.isfinite(theta0)):
            raise ArgumentError(f"theta0 must be finite, got {theta0.tolist()}")
    _check_x64()
    problem = Problem.build(formula, data, weights=weights, offset=offset)
    return fit(problem, reml=bool(reml), verbose=bool(verbose), opts=opts, theta0=theta0)


@single_blas_thread
def fit(problem: Problem, *, reml=False, verbose=False, opts=FitOptions(), theta0=None) -> "LinearMixedModel":
    """Fit a built :class:`Problem` (or refit the problem of a fitted model, e.g. by REML). ``theta0``: as for
    :func:`lmm` (None means "moments")."""
    if isinstance(problem, LinearMixedModel):
        problem = problem.problem
    if not isinstance(problem, Problem):
        raise ArgumentError(
            f"fit takes a Problem (mj.Problem.build(formula, data)) or a fitted LinearMixedModel, not "
            f"{type(problem).__name__}; to fit a formula use mj.lmm(formula, data)"
        )
    if not isinstance(opts, FitOptions) or opts.optimizer not in OPTIMIZERS:
        raise ArgumentError(f"opts must be a FitOptions with optimizer one of {', '.join(map(repr, OPTIMIZERS))}, "
                            f"not {opts!r}")
    layout = problem.layout
    if theta0 is None or isinstance(theta0, str):
        theta0 = problem.start("moments" if theta0 is None else theta0)
    theta0 = np.asarray(theta0, dtype=float).reshape(-1)
    if theta0.shape != (layout.ntheta,):
        raise ArgumentError(f"theta0 must have {layout.ntheta} values for this model, not {theta0.size}")
    if verbose:
        print(f"Fitting {problem.design.formula.text} by {'REML' if reml else 'maximum likelihood'}")
    # the host arrays: the compiled fit takes numpy without a device_put first (model.problem.Problem.host)
    fitted = fit_theta(theta0, problem.host.arrays, layout, reml, opts, verbose, problem.theta_scale)
    model = LinearMixedModel(problem=problem, reml=reml, theta=_readonly(fitted.theta), objective=fitted.fmin,
                             optsum=fitted.optsum, _estimates=fitted.estimates)
    _warn_status(model)
    return model


def _warn_status(model: "LinearMixedModel") -> None:
    """Warn once per fit when it did not converge or is singular, as lme4 does (a loop over fits does not hide it)."""
    if not model.optsum.converged:
        warnings.warn(f"{model.formula}: the fit did not converge ({model.optsum.status})", UserWarning,
                      stacklevel=_user_stacklevel())
    elif model.is_singular:
        warnings.warn(f"{model.formula}: boundary (singular) fit: a variance component is zero (see m.varcorr)",
                      UserWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The warnings stacklevel of the first caller outside the mixedjax package (so the warning names user code)."""
    import os
    import sys

    pkg = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(pkg + os.sep):
        frame, level = frame.f_back, level + 1
    return level


@dataclass(frozen=True, eq=False)
class LinearMixedModel(InferenceMethods, DiagnosticsMethods, BatchMethods, InformationCriteria):
    """A fitted linear mixed-effects model. Immutable; every derived quantity is computed from θ on demand."""

    problem: Problem = field(repr=False)
    reml: bool
    theta: np.ndarray
    objective: float
    optsum: OptSummary = field(repr=False)
    # the estimates at θ computed with the fit (host arrays); None: computed on first use (one jitted call)
    _estimates: Estimates | None = field(default=None, repr=False)

    # ---- basic facts ------------------------------------------------------------------------------------------
    @property
    def formula(self) -> str:
        return self.problem.design.formula.text

    @property
    def nobs(self) -> int:
        return self.problem.design.n

    @property
    def n_dropped(self) -> int:
        return self.problem.design.n_dropped

    @property
    def dropped_columns(self) -> tuple[str, ...]:
        return self.problem.design.dropped_columns

    @property
    def ngroups(self) -> dict[str, int]:
        return {t.name: t.nlevels for t in self.problem.design.terms}

    @property
    def dof(self) -> int:
        """Number of parameters: fixed effects, θ and σ."""
        return self.problem.design.p + self.problem.layout.ntheta + 1

    @property
    def deviance(self) -> float:
        """-2 log-likelihood (the REML criterion for a REML fit)."""
        return self.objective

    @property
    def loglik(self) -> float:
        return -self.objective / 2

    @property
    def is_singular(self) -> bool:
        """True when a diagonal element of some λ_k is (near) zero: the fit is on the boundary."""
        d = diagonal_indices(self.problem.layout)
        return bool(np.any(np.abs(self.theta[d] / self.problem.theta_scale[d]) < 1e-4))

    # ---- the solution at θ ------------------------------------------------------------------------------------
    @cached_property
    def _solution(self) -> Estimates:
        """The reported quantities at θ̂ (core.derived.Estimates), computed in the fit's compiled program (or by one
        jitted call), as read-only numpy."""
        est = self._estimates
        if est is None:
            est = jax.device_get(estimates_jit(self.theta, self.problem.arrays, self.problem.layout, self.reml))
        return jax.tree_util.tree_map(_readonly, est)

    @property
    def sigma(self) -> float:
        return math.sqrt(float(self._solution.sigma2))

    @property
    def fixef(self) -> pd.Series:
        return pd.Series(self._solution.beta, index=self.problem.coef_names.copy(), name="fixef")

    @property
    def vcov(self) -> pd.DataFrame:
        names = self.problem.coef_names.copy()
        return pd.DataFrame(self._solution.vcov, index=names, columns=names)

    @property
    def stderror(self) -> pd.Series:
        return pd.Series(
            np.sqrt(np.diag(self._solution.vcov)), index=self.problem.coef_names.copy(), name="stderror"
        )

    @property
    def varcorr(self) -> VarCorr:
        sigma = self.sigma
        groups = []
        for t, cov in zip(self.problem.design.terms, self._solution.cov):
            sd = np.sqrt(np.diag(cov))
            corr = None
            if t.s > 1 and len(t.pattern) > t.s:
                free = set(t.pattern)
                with np.errstate(invalid="ignore", divide="ignore"):
                    c = cov / np.outer(sd, sd)
                rows = []
                for i in range(t.s):
                    rows.append(
                        tuple(
                            1.0 if i == j else (-0.0 if _structural_zero(free, i, j) else float(np.nan_to_num(c[i, j])))
                            for j in range(t.s)
                        )
                    )
                corr = tuple(rows)
            groups.append(VarCorrGroup(t.name, t.columns, tuple(np.diag(cov)), tuple(sd), corr))
        return VarCorr(tuple(groups), sigma**2, sigma, tuple(lme4_aliases(self.problem.design).items()))

    # ---- derivatives (the seed's ForwardDiff extension, exact here) -------------------------------------------
    def objective_function(self, profiled: bool = True):
        """The objective as a pure function of θ, for ``jax.jit``, ``jax.grad``, ``jax.vmap``.

        ``profiled=True``: d(θ) as minimised by the fit; ``False``: the fixed-σ objective at the fitted σ.
        """
        a, layout, reml = self.problem.arrays, self.problem.layout, self.reml
        if profiled:
            return lambda theta: deviance(theta, a, layout, reml)
        s2 = self.sigma**2
        return lambda theta: fixed_sigma_objective(theta, a, layout, s2, reml)

    def _theta_arg(self, theta):
        th = self.theta if theta is None else np.asarray(theta, dtype=float).reshape(-1)
        if th.shape != self.theta.shape:
            raise ArgumentError(f"theta must have {self.theta.size} values for this model, not {th.size}")
        return jnp.asarray(th)

    def _derivative(self, which: str, theta, profiled: bool) -> np.ndarray:
        a, layout, reml = self.problem.arrays, self.problem.layout, self.reml
        th = self._theta_arg(theta)
        if profiled:
            return np.asarray(_DERIVATIVES[which, True](th, a, layout, reml))
        return np.asarray(_DERIVATIVES[which, False](th, a, layout, self.sigma**2, reml))

    def gradient(self, theta=None, *, profiled: bool = False) -> np.ndarray:
        """Gradient in θ of the fixed-σ objective (or of d(θ) with ``profiled=True``), at the fit or at ``theta``.

        ``jax.grad`` of the same pure objective the fit minimises; compiled once per model shape.
        """
        return self._derivative("gradient", theta, profiled)

    def hessian(self, theta=None, *, profiled: bool = False) -> np.ndarray:
        """Hessian in θ of the fixed-σ objective (or of d(θ) with ``profiled=True``), at the fit or at ``theta``.

        ``jax.hessian`` (forward over reverse) of the same pure objective; compiled once per model shape.
        """
        return self._derivative("hessian", theta, profiled)

    # ---- display ----------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        return summary_text(self)

    def __repr__(self) -> str:
        return model_repr(self)

    def _repr_html_(self) -> str:
        return summary_html(self)

    def _repr_markdown_(self) -> str:
        return summary_markdown(self)


_STATIC = ("layout", "reml")
_DERIVATIVES = {
    ("gradient", True): jax.jit(jax.grad(deviance), static_argnames=_STATIC),
    ("hessian", True): jax.jit(jax.hessian(deviance), static_argnames=_STATIC),
    ("gradient", False): jax.jit(jax.grad(fixed_sigma_objective), static_argnames=_STATIC),
    ("hessian", False): jax.jit(jax.hessian(fixed_sigma_objective), static_argnames=_STATIC),
}


def _readonly(a) -> np.ndarray:
    """A read-only numpy copy: results handed out cannot be changed in place."""
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a


def _structural_zero(free: set, i: int, j: int) -> bool:
    """Is cov[i, j] zero by construction (λ block diagonal with i and j in different blocks)?"""
    r, c = max(i, j), min(i, j)
    # i and j are in one block exactly when λ has the free entry (r, c)
    return (r, c) not in free
