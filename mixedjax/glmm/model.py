"""``glmm``: fit a binomial or Poisson mixed model and return a frozen :class:`GeneralizedLinearMixedModel`."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..core.objective import lambdas
from ..design.build import Design, build_design
from ..design.input import as_frame as _as_frame
from ..errors import ArgumentError, DataError, MixedjaxError
from ..fitting.blas import single_blas_thread
from ..model.criteria import InformationCriteria
from ..model.groups import ByGroup, lme4_aliases
from ..model.lmm import _warn_status
from ..model.varcorr import VarCorr, VarCorrGroup
from .family import Family, loglik_constant, make_family, rounding_terms
from .fit import (
    GlmmOptions,
    StageResult,
    Status,
    fit_fast,
    fit_joint,
    free_parameters,
    glm_prefetch,
    glm_start,
)
from .laplace import Evaluation, compiled_for, modes_of, prefetch
from .plan import GlmmData, GlmmPlan, build_plan
from .response import response_values, split_response

_OPTIONS = ("maxiter", "gtol", "ftol")
RESPONSE_COLUMN = "mixedjax_glmm_response_"  # the response, as computed here, in the data handed to build_design
MAX_NAGQ = 25


def _vector(values, name: str, frame: pd.DataFrame) -> np.ndarray:
    """weights= or offset=: a column name or one number per row of the data."""
    if isinstance(values, str):
        if values not in frame.columns:
            raise DataError(f"{name}='{values}' is not a column of the data; pass a column name or one value per row")
        values = frame[values]
    try:
        arr = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError) as err:
        raise DataError(f"{name}= must be numbers (one per row of the data), not {type(values).__name__}") from err
    if arr.size == 1 and len(frame) != 1:
        arr = np.full(len(frame), float(arr[0]))
    if arr.size != len(frame):
        raise DataError(f"{name}= has {arr.size} values but the data have {len(frame)} rows; give one per row")
    if np.isinf(arr).any():
        raise DataError(f"{name}= has infinite values in {int(np.isinf(arr).sum())} rows; remove those rows")
    return arr


@single_blas_thread
def glmm(formula, data, family, *, link=None, weights=None, offset=None, nagq=1, fast=False, reml=False,
         verbose=False, **options) -> "GeneralizedLinearMixedModel":
    """Fit a generalized linear mixed model (binomial or Poisson) by the Laplace approximation (``nagq=1``) or
    adaptive Gauss–Hermite quadrature (``nagq > 1``, one scalar random-effects term), as lme4's ``glmer``.

    ``family``: "binomial" (links "logit", the default, "probit", "cloglog", "cauchit", "log"; "bernoulli" is the
    same family) or "poisson" (links "log", the default, "sqrt"), or R's call ('binomial(link = "probit")'). The binomial response: 0/1, boolean or a two-level factor (the second level is a
    success), ``cbind(successes, failures)``, or proportions with ``weights=`` the numbers of trials. ``offset=``:
    one value per row (or a column name), added to the linear predictor. ``fast=True`` optimises θ alone with β from
    PIRLS (lme4's nAGQ = 0; ``nagq=0`` is the same fit); the default then optimises θ and β together. Options: ``maxiter`` (1000), ``gtol``
    (1e-7, projected gradient), ``ftol`` (1e-14, relative decrease).
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ArgumentError(f"unknown keyword argument{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for "
                            f"glmm; valid ones are link, weights, offset, nagq, fast, reml, verbose, "
                            f"{', '.join(_OPTIONS)}")
    for name, val in (("reml", reml), ("verbose", verbose), ("fast", fast)):
        if not isinstance(val, (bool, np.bool_)):
            raise ArgumentError(f"{name} must be True or False, not {val!r}")
    if reml:
        raise ArgumentError("reml=True is not defined for generalized linear mixed models (lme4's glmer has no "
                            "REML either); fit by maximum likelihood (reml=False)")
    fam = make_family(family, link)
    if isinstance(nagq, (bool, np.bool_)) or not isinstance(nagq, (int, np.integer)) or not 0 <= nagq <= MAX_NAGQ:
        raise ArgumentError(f"nagq must be an integer from 0 to {MAX_NAGQ} (0: lme4's nAGQ = 0, the same as "
                            f"fast=True; 1: the Laplace approximation), not {nagq!r}")
    if fast and nagq > 1:
        raise ArgumentError("fast=True (lme4's nAGQ = 0) and nagq > 1 exclude each other; choose one")
    fast, nagq = bool(fast) or nagq == 0, max(int(nagq), 1)  # nAGQ = 0 is fast's Laplace fit in θ alone
    opts = GlmmOptions(**{k: (int(v) if k == "maxiter" else float(v)) for k, v in options.items()})
    if opts.maxiter <= 0 or not (opts.gtol > 0 and opts.ftol > 0):
        raise ArgumentError("maxiter, gtol and ftol must be positive")
    from ..model.lmm import _check_x64

    _check_x64()

    frame = _as_frame(data)
    labels = frame.index
    frame = frame.reset_index(drop=True)
    if RESPONSE_COLUMN in frame.columns:
        raise DataError(f"the data may not have a column named {RESPONSE_COLUMN!r} (mj.glmm uses that name)")
    w = None if weights is None else _vector(weights, "weights", frame)
    if w is not None and (w[np.isfinite(w)] < 0).any():
        raise DataError("weights= must be non-negative (the numbers of trials, or prior weights)")
    off = np.zeros(len(frame)) if offset is None else _vector(offset, "offset", frame)
    spec, rest = split_response(formula)
    resp = response_values(spec, fam, frame, w, formula)
    yfull = np.where(np.isfinite(resp.weights) & np.isfinite(off), resp.y, np.nan)
    frame = frame.assign(**{RESPONSE_COLUMN: yfull})
    try:
        design = build_design(RESPONSE_COLUMN + " " + rest, frame, residual=False)
    except MixedjaxError as err:
        raise type(err)(_in_user_terms(str(err), spec.text)) from err
    rows = np.asarray(design.rows, dtype=np.int64)
    y, wt, trials = resp.y[rows], resp.weights[rows], resp.trials[rows]
    offset_rows = off[rows] + (0.0 if design.offset is None else np.asarray(design.offset))  # formula offset(...)
    plan, gdata = build_plan(design, fam, y, wt, offset_rows, rounding_terms(fam, y, wt, trials))
    if verbose:
        print(f"Fitting {formula} ({fam.name}, {fam.link.value} link) by "
              f"{'the Laplace approximation' if nagq == 1 else f'adaptive Gauss-Hermite quadrature (nAGQ = {nagq})'}")
    if nagq > 1 and not plan.scalar_single:
        raise ArgumentError(f"nagq > 1 (adaptive Gauss–Hermite quadrature) needs a single scalar random-effects term "
                            f"such as (1 | g); this model has {len(plan.terms)} term(s) with "
                            f"{', '.join(str(t.s) for t in plan.terms)} column(s). Use nagq=1 (Laplace).")

    from ..fitting.mappings import guard

    guard()  # as for LMMs: free compiled programs before Linux's mapping limit
    glm_prefetch(design.X, fam)  # the programs made in the background from here on, in the order used
    prefetch(plan, gdata, nagq, fast)
    beta0 = glm_start(design.X, y, wt, offset_rows, fam)
    theta0 = np.concatenate([t.theta0() for t in design.terms])
    v0 = jax.device_put(np.concatenate([np.zeros(plan.q), beta0]))
    stage1 = fit_fast(plan, gdata, theta0, v0, opts, verbose, with_hessian=fast)
    ev1 = stage1.evaluation
    if fast:
        u0, stage, initial = v0, stage1, theta0
    else:
        # on the host, as stage 1's start: a device array would compile stage 2's programs twice
        u0 = np.concatenate([np.asarray(ev1.u), np.asarray(ev1.beta)])
        initial = np.concatenate([stage1.x, np.asarray(ev1.beta)])
        stage = fit_joint(plan, gdata, stage1, u0, nagq, opts, verbose)
    final = stage.evaluation
    canonical = design.formula.text  # the formula with lme4's spacing, the response as written
    canonical = spec.text + canonical[len(RESPONSE_COLUMN):] if canonical.startswith(RESPONSE_COLUMN) else formula
    model = GeneralizedLinearMixedModel(
        formula=canonical, family=fam, design=design, plan=plan, data=gdata, nagq=int(nagq), fast=bool(fast),
        labels=np.asarray(labels[rows]), trials=trials, constant=loglik_constant(fam, y, wt, trials), u0=u0,
        stage1=stage1, stage=stage, evaluation=jax.device_get(final), initial=initial,
        frame=frame)
    _warn_status(model)  # non-converged or singular: one warning at the caller's line, as for LMMs
    return model


def _in_user_terms(message: str, response: str) -> str:
    """A design error's message with the formula as the user wrote it: the response put back in place of the
    column computed here (and the marks under the formula moved with it)."""
    shift = len(response) - len(RESPONSE_COLUMN)
    out, after_formula = [], False
    for line in message.split("\n"):
        if line.startswith(RESPONSE_COLUMN):
            out.append(response + line[len(RESPONSE_COLUMN):])
            after_formula = True
            continue
        if after_formula and line.strip() and set(line.strip()) == {"^"}:
            lead = len(line) - len(line.lstrip())
            line = " " * max(lead + shift, 0) + line.lstrip()
        after_formula = False
        out.append(line.replace(f", {RESPONSE_COLUMN}", "").replace(RESPONSE_COLUMN, response))
    return "\n".join(out)


class GlmmOptSummary(NamedTuple):
    """What the optimiser did. initial/final: the optimised parameters (θ, then β unless fast); fmin; feval and
    iterations of the final stage (stage 1's in ``stage1_feval``); status (fit.Status); converged; gradient and
    Hessian eigenvalues at the result."""

    initial: np.ndarray
    final: np.ndarray
    fmin: float
    feval: int
    iterations: int
    stage1_feval: int
    status: Status
    converged: bool
    gradient: np.ndarray
    hessian_eigenvalues: np.ndarray


@dataclass(frozen=True, eq=False)
class GeneralizedLinearMixedModel(InformationCriteria):
    """A fitted GLMM. Immutable; reported quantities are computed from the fitted parameters."""

    formula: str
    family: Family
    design: Design = field(repr=False)
    plan: GlmmPlan = field(repr=False)
    data: GlmmData = field(repr=False)
    nagq: int
    fast: bool
    labels: np.ndarray = field(repr=False)
    trials: np.ndarray = field(repr=False)
    constant: float = field(repr=False)
    u0: jax.Array = field(repr=False)
    stage1: StageResult = field(repr=False)
    stage: StageResult = field(repr=False)
    evaluation: Evaluation = field(repr=False)
    initial: np.ndarray = field(repr=False)  # where the final stage started
    frame: pd.DataFrame = field(repr=False)  # the data as fitted (positional index), for predict on new data

    reml = False

    # ---- basic facts ------------------------------------------------------------------------------------------
    @property
    def link(self) -> str:
        return self.family.link.value

    @property
    def nobs(self) -> int:
        return self.design.n

    @property
    def is_bernoulli(self) -> bool:
        """A binomial model of 0/1 responses (one trial per row): MixedModels.jl's Bernoulli family."""
        return self.family.name == "binomial" and bool(np.all(self.trials == 1))

    @property
    def n_dropped(self) -> int:
        return self.design.n_dropped

    @property
    def ngroups(self) -> dict[str, int]:
        return {t.name: t.nlevels for t in self.design.terms}

    @property
    def dof(self) -> int:
        """Number of parameters: fixed effects and θ (no dispersion)."""
        return self.plan.p + self.plan.ntheta

    @property
    def objective(self) -> float:
        """The minimised criterion: the Laplace (or AGQ) deviance on lme4's devResid scale, without the
        normalising constants of the family."""
        return float(self.evaluation.objective)

    @property
    def loglik(self) -> float:
        """The log-likelihood on lme4's ``logLik`` scale: with the binomial or Poisson normalising constants for the
        Laplace approximation and nAGQ = 0; for ``nagq > 1`` without them, as lme4's (its AGQ deviance sums the
        deviance residuals alone: cbpp, nAGQ = 9, −50.005 where the Laplace fit's is −92.027). The value with the
        constants, comparable across nagq, is ``-(m.objective + m.constant) / 2``."""
        return -(self.objective + (self.constant if self.nagq == 1 else 0.0)) / 2

    @property
    def deviance(self) -> float:
        """−2 log-likelihood."""
        return -2 * self.loglik

    @property
    def theta(self) -> np.ndarray:
        return _readonly(self.stage.x[: self.plan.ntheta])

    @property
    def is_singular(self) -> bool:
        d = [t.theta_offset + i for t in self.plan.terms for i, (r, c) in enumerate(t.pattern) if r == c]
        return bool(np.any(np.abs(self.theta[d]) < 1e-4))

    @property
    def optsum(self) -> GlmmOptSummary:
        st = self.stage
        free = free_parameters(st.x, self.plan)
        eig = np.linalg.eigvalsh(st.hessian[np.ix_(free, free)]) if free.any() else np.zeros(0)
        return GlmmOptSummary(
            initial=_readonly(self.initial), final=_readonly(st.x), fmin=st.fmin, feval=st.feval,
            iterations=st.iterations, stage1_feval=self.stage1.feval, status=st.status,
            converged=st.status in (Status.CONVERGED, Status.CONVERGED_BOUNDARY), gradient=_readonly(st.gradient),
            hessian_eigenvalues=_readonly(eig))

    @property
    def converged(self) -> bool:
        return self.optsum.converged

    # ---- estimates --------------------------------------------------------------------------------------------
    @property
    def fixef(self) -> pd.Series:
        return pd.Series(_readonly(self.evaluation.beta), index=list(self.design.xnames), name="fixef")

    @cached_property
    def _vcov(self) -> np.ndarray:
        """Cov(β̂): 2 (H⁻¹)_ββ with H the exact Hessian of the objective in (θ, β) (lme4 takes it by finite
        differences); for ``fast`` the inverse of the β block of the penalised system at the modes (lme4's RX)."""
        if self.fast:
            v = np.concatenate([np.asarray(self.evaluation.u), np.asarray(self.evaluation.beta)])
            V = np.asarray(_fast_vcov(self.theta, v, self.data, self.plan))
            return _readonly((V + V.T) / 2)
        H = self.stage.hessian
        free = free_parameters(self.stage.x, self.plan)  # θ at the boundary held fixed
        Hf = H[np.ix_(free, free)]
        V = 2 * np.linalg.inv(Hf)
        V = (V + V.T) / 2
        return _readonly(V[-self.plan.p :, -self.plan.p :])

    @property
    def vcov(self) -> pd.DataFrame:
        names = list(self.design.xnames)
        return pd.DataFrame(self._vcov, index=names, columns=names)

    @property
    def stderror(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self._vcov)), index=list(self.design.xnames), name="stderror")

    def coeftable(self) -> pd.DataFrame:
        """Coef., Std. Error, z and the two-sided normal p-value, one row per fixed effect."""
        from ..inference.lazy import normal_p  # not scipy.stats: a second of the first printout

        beta, se = self.fixef, self.stderror
        z = beta / se
        return pd.DataFrame({"Coef.": beta, "Std. Error": se, "z": z, "Pr(>|z|)": normal_p(z)},
                            index=beta.index)

    def confint(self, method: str = "wald", level: float = 0.95, parm=None) -> pd.DataFrame:
        """Wald intervals of the fixed effects, β̂ ∓ z se (lme4's ``confint(m, method = "Wald")``, whose θ rows are
        NA): a DataFrame with columns lower, upper indexed by the coefficients, as the LMM's. ``parm`` picks rows as
        lme4's does (``"beta_"``, ``"theta_"``, names or 0-based positions into sd/cor names then coefficients);
        rows of variance parameters are NaN."""
        from ..inference.names import select_parameters, variance_names

        if isinstance(level, (bool, np.bool_)) or not (isinstance(level, (int, float)) and 0 < level < 1):
            raise ArgumentError(f"level must be between 0 and 1, not {level!r}")
        if str(method).lower() != "wald":
            raise ArgumentError(f"method must be 'wald' for a GLMM (profile and bootstrap intervals are not "
                                f"implemented for mj.glmm fits), not {method!r}")
        from scipy.special import ndtri

        names = select_parameters(parm, variance_names(self.design), list(self.fixef.index))
        z = float(ndtri((1 + level) / 2))
        b, se = self.fixef, self.stderror
        ci = pd.DataFrame({"lower": b - z * se, "upper": b + z * se}, index=b.index)
        return ci if parm is None else ci.reindex(names)

    @cached_property
    def _lambdas(self) -> list[np.ndarray]:
        return lambdas(np.asarray(self.theta, float), self.plan)

    def _u_by_term(self) -> list[np.ndarray]:
        u = np.asarray(self.evaluation.u)
        out, o = [], 0
        for t in self.plan.terms:
            out.append(u[o : o + t.nlevels * t.s].reshape(t.nlevels, t.s))
            o += t.nlevels * t.s
        return out

    def condvar(self) -> dict[str, np.ndarray]:
        """Grouping factor -> (levels, s, s) conditional covariance of its random effects given y at the modes
        (lme4's postVar, ``ranef(m, condVar = TRUE)``): the diagonal blocks of Λ (Λ'Z'WZΛ + I)⁻¹ Λ' with W Fisher's
        working weights at the modes, the factor lme4's L holds (σ = 1 for these families; conditional on β, as
        lme4's). Dense in the q random effects (host numpy), read-only."""
        q = sum(t.nlevels * t.s for t in self.design.terms)
        if q > 20_000:
            raise ArgumentError(f"condvar is computed densely here and this model has {q} random effects; "
                                "it is available up to 20,000")
        n = self.nobs
        ZL, o = np.zeros((n, q)), 0
        rows = np.arange(n)
        for t, lam in zip(self.design.terms, self._lambdas):
            zl = np.asarray(t.z, dtype=float) @ lam  # row i's effects on b = Λ u, at its level
            for j in range(t.s):
                ZL[rows, o + np.asarray(t.codes) * t.s + j] = zl[:, j]
            o += t.nlevels * t.s
        w = np.asarray(self.family.working_weights(jnp.asarray(self.evaluation.eta), jnp.asarray(self.data.wt)))
        Minv = np.linalg.inv(ZL.T @ (w[:, None] * ZL) + np.eye(q))
        out, o = {}, 0
        for t, lam in zip(self.design.terms, self._lambdas):
            idx = o + np.arange(t.nlevels)[:, None] * t.s + np.arange(t.s)[None, :]  # (levels, s)
            V = lam @ Minv[idx[:, :, None], idx[:, None, :]] @ lam.T
            out[t.name] = _readonly(V)
            o += t.nlevels * t.s
        return ByGroup(out, lme4_aliases(self.design))

    def ranef(self, uscale: bool = False, condvar: bool = False) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: grouping factor -> DataFrame (levels × the term's columns),
        indexed by the levels as the data hold them (integer ids stay integers; a combination ``a:b`` is text);
        ``uscale=True`` gives the spherical modes û (b = Λ û). ``condvar=True`` adds a column ``condsd_<column>``
        per column: the conditional standard deviation (``condvar``; on b's scale, with uscale of û), as the LMM's."""
        out = {}
        cv = self.condvar() if condvar else None
        for t, u, lam in zip(self.design.terms, self._u_by_term(), self._lambdas):
            vals = u if uscale else u @ lam.T
            # indexed by the levels as the data hold them, as the LMM's ranef (integer ids stay integers)
            df = pd.DataFrame(_readonly(vals), index=pd.Index(list(t.level_values), name=t.name),
                              columns=list(t.columns))
            if cv is not None:
                var = cv[t.name]
                if uscale:  # Var(û | y) = λ⁻¹ Var(b | y) λ⁻ᵀ
                    li = np.linalg.pinv(lam)
                    var = li @ var @ li.T
                sd = np.sqrt(np.maximum(np.diagonal(var, axis1=1, axis2=2), 0.0))
                for j, c in enumerate(t.columns):
                    df[f"condsd_{c}"] = sd[:, j]
            out[t.name] = df
        return ByGroup(out, lme4_aliases(self.design))

    @property
    def varcorr(self) -> VarCorr:
        groups = []
        for t, lam in zip(self.design.terms, self._lambdas):
            cov = lam @ lam.T
            sd = np.sqrt(np.diag(cov))
            corr = None
            if t.s > 1 and len(t.pattern) > t.s:
                free = set(t.pattern)
                with np.errstate(invalid="ignore", divide="ignore"):
                    c = cov / np.outer(sd, sd)
                corr = tuple(tuple(1.0 if i == j else (-0.0 if (max(i, j), min(i, j)) not in free
                                                       else float(np.nan_to_num(c[i, j]))) for j in range(t.s))
                             for i in range(t.s))
            groups.append(VarCorrGroup(t.name, t.columns, tuple(np.diag(cov)), tuple(sd), corr))
        return VarCorr(tuple(groups), None, None, tuple(lme4_aliases(self.design).items()))

    def fitted(self) -> pd.Series:
        """μ̂ per row used, on the response scale (proportions for a binomial), indexed by the data's row labels."""
        return pd.Series(_readonly(self.evaluation.mu), index=self.labels, name="fitted")

    def residuals(self, type: str = "response") -> pd.Series:
        """Residuals per row used: ``"response"`` y − μ̂; ``"deviance"`` sign(y − μ̂) √devres (lme4's default for
        glmer; their sum of squares is lme4's ``deviance()`` of a GLMM, the conditional deviance); ``"pearson"``
        (y − μ̂) √(wt / V(μ̂))."""
        if type not in ("response", "deviance", "pearson"):
            raise ArgumentError(f"type must be 'response', 'deviance' or 'pearson', not {type!r}")
        y, mu, wt = (np.asarray(a, dtype=float) for a in (self.data.y, self.evaluation.mu, self.data.wt))
        r = y - mu
        if type == "deviance":
            d = np.asarray(self.family.dev_resid(jnp.asarray(y), jnp.asarray(mu), jnp.asarray(wt)))
            r = np.where(r > 0, 1.0, -1.0) * np.sqrt(np.maximum(d, 0.0))
        elif type == "pearson":
            r = r * np.sqrt(wt / np.asarray(self.family.variance(jnp.asarray(mu))))
        return pd.Series(r, index=self.labels, name="residuals")

    def predict(self, newdata=None, *, type: str = "response", re_form=None, offset=None,
                new_levels: str = "population") -> pd.Series:
        """Predictions on the ``"response"`` or ``"link"`` scale; ``re_form``: None (all random effects),
        ``"~0"`` / ``"NA"`` (none) or a formula of some of the random-effects terms, such as ``"~(1 | herd)"``, as
        the LMM's predict reads it. ``offset``: the offset of ``newdata``'s rows where the fit's was given as an
        argument (the formula's ``offset(...)`` terms are evaluated on ``newdata``). ``new_levels``: as the LMM's,
        ``"population"`` gives a level of a grouping factor not seen in the fit random effects 0 (lme4's
        ``allow.new.levels=TRUE``), ``"error"`` raises a ``DataError`` naming the column and the levels."""
        from .predict import predict

        return predict(self, newdata, type, re_form, offset, new_levels)

    # ---- derivatives ------------------------------------------------------------------------------------------
    def objective_function(self):
        """The minimised criterion as a pure JAX function of the optimised parameters (θ, then β unless
        ``fast``), for jax.jit / jax.grad / jax.hessian (the modes' derivatives are implicit, in either mode)."""
        from .laplace import objective_fast, objective_joint

        d, u0, plan, nagq = self.data, self.u0, self.plan, self.nagq
        if self.fast:
            return lambda theta: objective_fast(theta, d, u0, plan)
        return lambda phi: objective_joint(phi, d, u0, plan, nagq)

    def _point(self, x):
        x = self.stage.x if x is None else np.asarray(x, dtype=float).reshape(-1)
        if x.shape != self.stage.x.shape:
            raise ArgumentError(f"the parameter vector has {self.stage.x.size} values (θ{'' if self.fast else ', β'})"
                                f" for this model, not {x.size}")
        return jnp.asarray(x)

    def gradient(self, x=None) -> np.ndarray:
        """Exact gradient of the objective in (θ, β) (θ alone when ``fast``), at the fit or at ``x``."""
        c = compiled_for(self.plan)
        if self.fast:
            return np.asarray(c.fast(self._point(x), self.data, self.u0, self.plan)[1])
        return np.asarray(c.joint(self._point(x), self.data, self.u0, self.plan, self.nagq)[1])

    def hessian(self, x=None) -> np.ndarray:
        """Exact Hessian of the objective in (θ, β) (θ alone when ``fast``), at the fit or at ``x`` (at the modes
        PIRLS finds there: one evaluation, then the Hessian program the fit used)."""
        c = compiled_for(self.plan)
        point = self._point(x)
        if self.fast:
            (_, ev), _ = c.fast(point, self.data, self.u0, self.plan)
            return np.asarray(c.hessian_fast(point, self.data, modes_of(ev), self.plan))
        (_, ev), _ = c.joint(point, self.data, self.u0, self.plan, self.nagq)
        return np.asarray(c.hessian(point, self.data, modes_of(ev), self.plan, self.nagq))

    # ---- display ----------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        from .display import glmm_text

        return glmm_text(self)

    __repr__ = __str__


@partial(jax.jit, static_argnames=("plan",))
def _fast_vcov(theta, v, data: GlmmData, plan: GlmmPlan):
    """The β block of M⁻¹, M PIRLS's system in (u, β) with Fisher's working weights at the modes v (lme4's RX for
    nAGQ = 0; for the probit and cloglog links it is not the observed information: a cloglog model's slope SE 0.07133
    by Fisher's weights, lme4's, and 0.07510 by the observed ones): one solve per fixed effect, in one program
    (called eagerly it dispatched and compiled operation by operation: seconds)."""
    from .pirls import linear_predictor, solve, split, system
    from .plan import z_lambda

    q, p = plan.q, plan.p
    A, _ = z_lambda(theta, plan, data)
    u, b = split(v, True, v[q:])
    F = system(theta, plan.family.working_weights(linear_predictor(A, u, b, data), data.wt), data, plan, True)
    E = jnp.zeros((p, q + p)).at[jnp.arange(p), q + jnp.arange(p)].set(1.0)
    return jax.vmap(lambda b: solve(F, b, data, plan, True))(E)[:, q:]


def _readonly(a) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.setflags(write=False)
    return a
