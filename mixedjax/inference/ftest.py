"""t and F tests of linear hypotheses L β = rhs with Satterthwaite's or Kenward–Roger's denominator df.

Satterthwaite's multi-df F test is lmerTest's (``contestMD``): L C L' = P diag(d) P' is split into q independent
1-df contrasts P'L, each with its own df ν_m, and the F statistic's df are 2E / (E − q) with E = Σ ν_m / (ν_m − 2)
(Fai & Cornelius 1996). Kenward–Roger's is pbkrtest's scaled F (kenward_roger.kr_test).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

import numpy as np

from ..errors import ArgumentError
from .kenward_roger import KenwardRogerParts, kr_ddf, kr_test
from .lazy import scipy_module as _scipy
from .satterthwaite import contrast_df


class DDF(Enum):
    """How the denominator degrees of freedom are computed."""

    SATTERTHWAITE = "satterthwaite"
    KENWARD_ROGER = "kenward-roger"


_SPELLINGS = {"satterthwaite": DDF.SATTERTHWAITE, "kenward-roger": DDF.KENWARD_ROGER, "kenward_roger": DDF.KENWARD_ROGER,
              "kenwardroger": DDF.KENWARD_ROGER, "kr": DDF.KENWARD_ROGER}


def ddf_method(ddf) -> DDF:
    """The DDF of a user's spelling ("satterthwaite", "Kenward-Roger", "kr", or a DDF)."""
    if isinstance(ddf, DDF):
        return ddf
    if isinstance(ddf, str) and ddf.lower() in _SPELLINGS:
        return _SPELLINGS[ddf.lower()]
    raise ArgumentError(f"ddf must be None (z statistics), 'satterthwaite' or 'kenward-roger', not {ddf!r}")


class TTest(NamedTuple):
    """A 1-df test of l'β = rhs: estimate, standard error, df, t and the two-sided p-value."""

    estimate: float
    se: float
    df: float
    t: float
    p: float


class FTest(NamedTuple):
    """A q-df test of Lβ = rhs: the F statistic, NumDF q, DenDF and p; F_unscaled is the F before Kenward–Roger's
    scaling λ (the same as F for Satterthwaite), from which lmerTest's Sum Sq and Mean Sq are computed."""

    F: float
    numdf: int
    dendf: float
    p: float
    F_unscaled: float


def t_test(l, beta, parts, rhs=0.0) -> TTest:
    """l'β = rhs by Satterthwaite (SatterthwaiteParts) or Kenward–Roger (KenwardRogerParts, adjusted variance)."""
    l = np.asarray(l, float)
    est = float(l @ beta)
    if isinstance(parts, KenwardRogerParts):
        var = float(l @ parts.vcov_adj @ l)
        df = kr_ddf(parts, l[None, :])[0]
    else:
        var = float(l @ parts.vcov @ l)
        df = contrast_df(parts, l)
    se = float(np.sqrt(var))
    t = (est - rhs) / se
    return TTest(est, se, df, t, float(2 * _scipy('stats').t.sf(abs(t), df)))


def _fstat_ddf(nu: np.ndarray) -> float:
    """lmerTest's get_Fstat_ddf: the F statistic's df from the df of its q independent t statistics."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = float(np.sum(nu / (nu - 2)))
    return 2 * E / (E - len(nu))


def f_test(L, beta, parts, rhs=None) -> FTest:
    """Lβ = rhs (L: q × p) by Satterthwaite or Kenward–Roger (the kind of ``parts`` decides)."""
    L = np.atleast_2d(np.asarray(L, float))
    if L.shape[1] != len(beta):
        raise ArgumentError(f"the hypothesis matrix must have {len(beta)} columns (one per fixed effect), "
                            f"not {L.shape[1]}")
    if not np.any(L):
        raise ArgumentError("the hypothesis matrix is all zeros: there is nothing to test")
    if isinstance(parts, KenwardRogerParts):
        # independent rows only (pbkrtest uses L's rank)
        _, s, Vt = np.linalg.svd(L, full_matrices=False)
        keep = s > 1e-10 * s.max()
        Lr = (np.diag(s[keep]) @ Vt[keep]) if rhs is None else L
        if rhs is not None and keep.sum() < L.shape[0]:
            raise ArgumentError("the hypothesis matrix has dependent rows; with rhs give independent rows only")
        r = kr_test(parts, Lr, beta, None if rhs is None else rhs)
        return FTest(r.F, r.ndf, r.ddf, float(_scipy('stats').f.sf(r.F, r.ndf, r.ddf)), r.F_unscaled)
    d = L @ beta - (0.0 if rhs is None else np.asarray(rhs, float))
    VL = L @ parts.vcov @ L.T
    w, P = np.linalg.eigh(VL)
    order = np.argsort(w)[::-1]
    w, P = w[order], P[:, order]
    pos = w > max(np.finfo(float).eps ** 0.5 * w[0], 0.0)
    q = int(pos.sum())
    PtL = P[:, :q].T @ L
    t2 = (P[:, :q].T @ d) ** 2 / w[:q]
    F = float(np.sum(t2) / q)
    g = np.einsum("mi,kij,mj->mk", PtL, parts.jac, PtL)
    nu = 2 * w[:q] ** 2 / np.einsum("mk,kl,ml->m", g, parts.A, g)
    dendf = _fstat_ddf(nu)
    return FTest(F, q, dendf, float(_scipy('stats').f.sf(F, q, dendf)), F)
