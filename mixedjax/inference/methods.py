"""``InferenceMethods``: the inference methods of a fitted :class:`~mixedjax.LinearMixedModel` (a mixin).

Each method is a thin shell around a pure module of this package; the expensive parts (Satterthwaite's and
Kenward–Roger's derivatives, the profile) are computed once per model on first use.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from ..display.tables import TestTable
from ..errors import ArgumentError
from ..fitting.blas import single_blas_thread
from ..model.groups import ByGroup, lme4_aliases
from .coding import fixed_coding
from .ftest import DDF, ddf_method, f_test, t_test
from .hypotheses import type1, type2, type3
from .lazy import normal_p
from .lazy import scipy_module as _scipy

_TYPES = {1: 1, 2: 2, 3: 3, "I": 1, "II": 2, "III": 3, "1": 1, "2": 2, "3": 3}


class Summary:
    """A fit's printout with a chosen coefficient table (``m.summary(ddf=...)``); ``str()`` or ``print`` it."""

    def __init__(self, model, table: pd.DataFrame):
        self.model = model
        self.coeftable = table

    def __str__(self) -> str:
        from ..display.text import summary_text

        return summary_text(_WithTable(self.model, self.coeftable))

    __repr__ = __str__

    def _repr_html_(self) -> str:
        from ..display.text import summary_html

        return summary_html(_WithTable(self.model, self.coeftable))


class _WithTable:
    """The model as the display code sees it, with another coefficient table."""

    def __init__(self, model, table):
        self._model, self._table = model, table

    def coeftable(self):
        return self._table

    def __getattr__(self, name):
        return getattr(self._model, name)


class InferenceMethods:
    """t and F tests with Satterthwaite or Kenward–Roger df, contrasts, profiles, intervals, conditional variances.

    Mixed into LinearMixedModel; needs ``problem``, ``reml``, ``theta``, ``sigma``, ``fixef``, ``stderror``,
    ``vcov`` and ``_solution`` from it.
    """

    # ---- the derivatives, once per model ----------------------------------------------------------------------
    @cached_property
    def _satterthwaite_parts(self):
        from .satterthwaite import satterthwaite_parts

        return satterthwaite_parts(self.theta, self.sigma, self._solution.vcov, self.problem.arrays,
                                   self.problem.layout, self.reml)

    @cached_property
    def _kenward_roger_parts(self):
        from .kenward_roger import kenward_roger_parts

        return kenward_roger_parts(self.theta, self.sigma, self.problem.arrays, self.problem.layout)

    def _parts(self, ddf):
        method = ddf_method(ddf)
        if method is DDF.KENWARD_ROGER:
            if not self.reml:
                raise ArgumentError("Kenward-Roger's method is defined for REML fits only (as in lmerTest and "
                                    "pbkrtest); refit by REML with mj.fit(m, reml=True), or use ddf='satterthwaite'")
            return self._kenward_roger_parts
        return self._satterthwaite_parts

    # ---- coefficient tables -----------------------------------------------------------------------------------
    @single_blas_thread
    def coeftable(self, ddf=None) -> pd.DataFrame:
        """The fixed-effects table. ``ddf=None``: Coef., Std. Error, z and the normal p-value. ``ddf="satterthwaite"``
        or ``"kenward-roger"`` (REML only; its Std. Error is the adjusted one): Coef., Std. Error, df, t, Pr(>|t|)."""
        from ..display.tables import CoefTable

        beta = self.fixef
        if ddf is None:
            se = self.stderror
            z = beta / se
            return CoefTable({"Coef.": beta, "Std. Error": se, "z": z, "Pr(>|z|)": normal_p(z)},
                             index=beta.index)
        parts = self._parts(ddf)
        p = len(beta)
        tests = [t_test(np.eye(p)[j], beta.to_numpy(), parts) for j in range(p)]
        return CoefTable({"Coef.": beta.to_numpy(), "Std. Error": [t.se for t in tests],
                          "df": [t.df for t in tests], "t": [t.t for t in tests],
                          "Pr(>|t|)": [t.p for t in tests]}, index=beta.index)

    @single_blas_thread
    def summary(self, ddf=None) -> Summary:
        """The printout of the fit with ``coeftable(ddf)`` as its fixed-effects table."""
        return Summary(self, self.coeftable(ddf))

    # ---- F tests ----------------------------------------------------------------------------------------------
    @single_blas_thread
    def anova(self, type=3, ddf="satterthwaite") -> pd.DataFrame:
        """F tests per term of the fixed part (lmerTest's ``anova``): ``type`` 1 (sequential), 2 (each term adjusted
        for the terms not containing it) or 3 (marginal, as lmerTest builds the hypotheses), ``ddf`` "satterthwaite"
        or "kenward-roger". Rows are the formula's terms; columns Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F) (Mean Sq = F σ̂², as lmerTest)."""
        if type not in _TYPES:
            raise ArgumentError(f"type must be 1, 2 or 3 (or 'I', 'II', 'III'), not {type!r}")
        design = self.problem.design
        coding = fixed_coding(design)
        if not coding.terms:
            return _f_frame([], [])
        # lmerTest uses the type I hypotheses for type III too when there is at most one term (its df depend on the
        # rows chosen, not only on their span)
        sequential = _TYPES[type] == 1 or len(coding.terms) <= 1
        if sequential:
            hyps = type1(design.X, coding)
        else:
            hyps = type2(design.X, coding) if _TYPES[type] == 2 else type3(coding, design.X)
        parts = self._parts(ddf)
        beta = self.fixef.to_numpy()
        names, tests = [], []
        for term, L in hyps.items():
            if L.shape[0] == 0:
                continue
            names.append(term)
            tests.append(f_test(L, beta, parts))
        return _f_frame(names, tests, self.sigma**2)

    @single_blas_thread
    def drop1(self, ddf="satterthwaite") -> pd.DataFrame:
        """F tests of the marginal terms (lmerTest's ``drop1``): each term of the fixed part that no other term
        contains, tested by its coefficients being 0 (the model without it). Columns as ``anova``."""
        design = self.problem.design
        coding = fixed_coding(design)
        variables = dict(zip(coding.terms, map(set, coding.term_variables)))
        marginal = [t for t in coding.terms if not any(variables[t] < v for v in variables.values())]
        parts = self._parts(ddf)
        beta = self.fixef.to_numpy()
        names, tests = [], []
        for term in marginal:
            cols = [j for j, t in enumerate(coding.column_terms) if t == term]
            if not cols:
                continue
            names.append(term)
            tests.append(f_test(np.eye(len(beta))[cols], beta, parts))
        return _f_frame(names, tests, self.sigma**2)

    @single_blas_thread
    def contrast(self, L, ddf="satterthwaite", rhs=None, joint=True) -> pd.DataFrame:
        """Test the hypothesis L β = rhs (lmerTest's ``contest``). ``L``: a vector or matrix with one column per fixed
        effect (a DataFrame or Series may name its columns by coefficient; missing ones are 0). One row, or
        ``joint=False``: a t test per row (Estimate, Std. Error, df, t value, Pr(>|t|)); several rows jointly: one
        F test (Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F))."""
        names = list(self.fixef.index)
        Lm = _as_matrix(L, names)
        beta = self.fixef.to_numpy()
        parts = self._parts(ddf)
        r = np.zeros(Lm.shape[0]) if rhs is None else np.broadcast_to(np.asarray(rhs, float), (Lm.shape[0],))
        if Lm.shape[0] == 1 or not joint:
            tests = [t_test(l, beta, parts, float(ri)) for l, ri in zip(Lm, r)]
            return TestTable({"Estimate": [t.estimate for t in tests], "Std. Error": [t.se for t in tests],
                              "df": [t.df for t in tests], "t value": [t.t for t in tests],
                              "Pr(>|t|)": [t.p for t in tests]})
        return _f_frame(["contrast"], [f_test(Lm, beta, parts, None if rhs is None else r)], self.sigma**2)

    @single_blas_thread
    def ranova(self, reduce_terms: bool = True) -> pd.DataFrame:
        """Likelihood-ratio tests of the random-effects terms (lmerTest's ``ranova``): each term removed, or with
        ``reduce_terms`` (the default) each of its slopes removed in turn, refitted with the model's own criterion
        (REML or ML). Rows '<none>' and one per reduced model, named as lmerTest names them; columns npar, logLik,
        AIC, LRT, Df, Pr(>Chisq)."""
        from .ranova import ranova

        if not isinstance(reduce_terms, (bool, np.bool_)):
            raise ArgumentError(f"reduce_terms must be True or False, not {reduce_terms!r}")
        return ranova(self, reduce_terms=bool(reduce_terms))

    # ---- profiles and intervals -------------------------------------------------------------------------------
    def profile(self, threshold: float = 4.0):
        """The profile likelihood of every parameter (a :class:`~mixedjax.inference.profile.Profile`); REML fits
        are profiled through their ML refit, as lme4 does."""
        from .profile import profile

        return profile(self, threshold=threshold)

    @single_blas_thread
    def confint(self, method: str = "profile", level: float = 0.95, parm=None, **options) -> pd.DataFrame:
        """Confidence intervals, a DataFrame with columns lower, upper indexed by lme4's names.

        ``method="profile"`` (every parameter: sd_…|group, cor_…|group, sigma, then the fixed effects),
        ``"wald"`` (the fixed effects, β̂ ∓ z se), ``"bootstrap"`` (percentile intervals of ``m.bootstrap``; its
        options ``nsim`` (1000) and ``seed`` are passed on). ``parm`` picks rows as lme4's does: ``"theta_"`` (the
        variance parameters and sigma), ``"beta_"`` (the fixed effects), names, or 0-based positions into the full
        list; the default is every row the method gives. Wald rows of variance parameters are NaN, as lme4's are NA.
        """
        from .names import select_parameters, variance_names

        if not (isinstance(level, (int, float)) and 0 < level < 1):
            raise ArgumentError(f"level must be between 0 and 1, not {level!r}")
        method = str(method).lower()
        if method not in ("wald", "profile", "bootstrap", "boot"):
            raise ArgumentError(f"method must be 'profile', 'wald' or 'bootstrap', not {method!r}")
        design = self.problem.design
        fixed = list(design.xnames)
        names = select_parameters(parm, variance_names(design) + ["sigma"], fixed)
        if method == "wald":
            z = _scipy('stats').norm.ppf((1 + level) / 2)
            b, se = self.fixef, self.stderror
            ci = pd.DataFrame({"lower": b - z * se, "upper": b + z * se}, index=b.index)
            return ci.reindex(fixed if parm is None else names)
        if method == "profile":
            z = _scipy('stats').norm.ppf((1 + level) / 2)
            ci = self.profile(threshold=max(4.0, z + 0.5)).confint(level)
        else:
            ci = self._bootstrap_confint(level, **options)
        return ci.loc[[n for n in names if n in ci.index]] if parm is not None else ci

    def _bootstrap_confint(self, level, nsim=1000, seed=None):
        from .names import parameter_names

        boot = getattr(self, "bootstrap", None)
        if boot is None:
            raise ArgumentError("confint(method='bootstrap') needs m.bootstrap (the batched fits); this build "
                                "of mixedjax does not have it. Use method='profile' or 'wald'.")
        table = boot(nsim, seed=seed, progress=False).table
        names = [n for n in parameter_names(self.problem.design) if n in table]
        a = (1 - level) / 2
        q = np.quantile(table[names].to_numpy(float), [a, 1 - a], axis=0)
        return pd.DataFrame({"lower": q[0], "upper": q[1]}, index=names)

    # ---- conditional variances --------------------------------------------------------------------------------
    @single_blas_thread
    def condvar(self) -> dict[str, np.ndarray]:
        """Grouping factor -> (levels, s, s) conditional covariance of its random effects given y (lme4's postVar),
        read-only."""
        from .condvar import condvar

        out = {}
        for t, v in zip(self.problem.design.terms,
                        condvar(self.theta, self.sigma, self.problem.arrays, self.problem.layout)):
            v = np.array(v, dtype=float)
            v.setflags(write=False)
            out[t.name] = v
        return ByGroup(out, lme4_aliases(self.problem.design))

    def ranef(self, uscale: bool = False, condvar: bool = False) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects: grouping factor -> DataFrame (levels × the term's columns),
        indexed by the levels as the data hold them (integer ids stay integers; a combination ``a:b`` is text).

        ``uscale=True`` gives the spherical modes û (b = Λ û). ``condvar=True`` adds a column ``condsd_<column>`` per
        column: the conditional standard deviation of b given y (on b's scale; with uscale, of û).
        """
        vals = (self._solution.u if uscale else self._solution.b)
        out = {}
        cv = self.condvar() if condvar else None
        for k, (t, v) in enumerate(zip(self.problem.design.terms, vals)):
            df = pd.DataFrame(v, index=pd.Index(list(t.level_values), name=t.name), columns=list(t.columns))
            if cv is not None:
                var = cv[t.name]
                if uscale:  # Var(û | y) = λ⁻¹ Var(b | y) λ⁻ᵀ
                    lam = self._solution.lams[k]
                    li = np.linalg.pinv(lam)
                    var = li @ var @ li.T
                sd = np.sqrt(np.maximum(np.diagonal(var, axis1=1, axis2=2), 0.0))
                for j, c in enumerate(t.columns):
                    df[f"condsd_{c}"] = sd[:, j]
            out[t.name] = df
        return ByGroup(out, lme4_aliases(self.problem.design))


def _f_frame(names, tests, sigma2=1.0) -> pd.DataFrame:
    F = np.array([t.F for t in tests], float)
    q = np.array([t.numdf for t in tests], int)
    # lmerTest's Mean Sq is the unscaled F times σ̂² (Kenward–Roger's scaling λ changes only the F value)
    ms = np.array([t.F_unscaled for t in tests], float) * sigma2
    return TestTable({"Sum Sq": ms * q, "Mean Sq": ms, "NumDF": q, "DenDF": [t.dendf for t in tests],
                      "F value": F, "Pr(>F)": [t.p for t in tests]}, index=pd.Index(names, dtype=object))


def _as_matrix(L, names) -> np.ndarray:
    """A hypothesis matrix (rows × fixed effects) from a vector, a matrix, a Series or a DataFrame."""
    p = len(names)
    if isinstance(L, (pd.Series, pd.DataFrame)):
        frame = L.to_frame().T if isinstance(L, pd.Series) else L
        unknown = [c for c in frame.columns if c not in names]
        if unknown:
            raise ArgumentError(f"the contrast names {', '.join(map(repr, unknown))}, which are not fixed effects "
                                f"of this model ({', '.join(names)})")
        frame = frame.reindex(columns=names, fill_value=0.0)
        M = frame.to_numpy(dtype=float)
    else:
        try:
            M = np.atleast_2d(np.asarray(L, dtype=float))
        except (TypeError, ValueError) as err:
            raise ArgumentError(f"L must be numbers (a vector or matrix with {p} columns), not {L!r}") from err
    if M.ndim != 2 or M.shape[1] != p:
        raise ArgumentError(f"L must have {p} columns, one per fixed effect ({', '.join(names)}), not shape "
                            f"{np.shape(L)}")
    if not np.all(np.isfinite(M)):
        raise ArgumentError("L must be finite")
    return M


