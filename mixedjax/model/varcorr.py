"""Plain-data containers for estimated variance components.

These classes hold numbers only; they do no statistics.  Their text and HTML
renderings are produced by :mod:`mixedjax._display`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..display.text import format_varcorr, varcorr_html

__all__ = ["VarCorrGroup", "VarCorr"]


@dataclass(frozen=True)
class VarCorrGroup:
    """Variance components of one random-effects term.

    Attributes
    ----------
    name:
        Grouping-factor name (e.g. ``"subj"``).
    columns:
        Names of the random-effects columns (e.g. ``("(Intercept)", "days")``).
    variances, stddevs:
        Estimated variances and standard deviations, one per column.
    corr:
        Full correlation matrix (tuple of rows), or ``None`` when the term has
        a single column or is uncorrelated (``||``).  For block-diagonal
        structures, structurally-zero entries are given as ``-0.0`` and are
        displayed as ``.``.
    """

    name: str
    columns: tuple[str, ...]
    variances: tuple[float, ...]
    stddevs: tuple[float, ...]
    corr: tuple[tuple[float, ...], ...] | None = None


@dataclass(frozen=True)
class VarCorr:
    """Estimated variance components of a fitted model.

    ``residual_variance`` / ``residual_sd`` are ``None`` for models without a
    residual (dispersion) term.
    """

    groups: tuple[VarCorrGroup, ...]
    residual_variance: float | None = None
    residual_sd: float | None = None
    aliases: tuple[tuple[str, str], ...] = ()  # (lme4's group name, mixedjax's) where they differ (model.groups)

    def __getitem__(self, name: str) -> VarCorrGroup:
        """The group of that name: mixedjax's (``a:b`` for the inner term of ``(1 | a/b)``) or lme4's (``b:a``)."""
        for key in (name, dict(self.aliases).get(name)):
            for g in self.groups:
                if g.name == key:
                    return g
        raise KeyError(f"{name!r} is not a group of these variance components ({', '.join(g.name for g in self.groups)})")

    def __str__(self) -> str:
        return format_varcorr(self)

    def __repr__(self) -> str:
        return format_varcorr(self).rstrip("\n")

    def _repr_html_(self) -> str:
        return varcorr_html(self)

    def _repr_markdown_(self) -> str:
        from ..display.text import varcorr_markdown

        return varcorr_markdown(self)

    def to_frame(self):
        """One row per (group, column), one per correlation, and a ``Residual`` row (lme4's
        ``as.data.frame(VarCorr(m))``).

        Columns: ``group``, ``column``, ``variance``, ``stddev``, and ``column2`` and ``corr`` for the correlation
        rows (whose ``variance`` is the covariance of ``column`` and ``column2``; ``stddev`` is missing there).
        """
        import math

        import pandas as pd

        nan = float("nan")
        rows = []
        for g in self.groups:
            for col, var, sd in zip(g.columns, g.variances, g.stddevs):
                rows.append({"group": g.name, "column": col, "variance": float(var), "stddev": float(sd),
                             "column2": None, "corr": nan})
            if g.corr is not None:
                for j in range(len(g.columns)):
                    for i in range(j + 1, len(g.columns)):
                        r = float(g.corr[i][j])
                        if r == 0.0 and math.copysign(1.0, r) < 0:
                            continue  # structurally zero: no parameter
                        rows.append({"group": g.name, "column": g.columns[j], "column2": g.columns[i],
                                     "variance": r * float(g.stddevs[i]) * float(g.stddevs[j]), "stddev": nan,
                                     "corr": r})
        if self.residual_sd is not None:
            rv = self.residual_variance
            if rv is None:
                rv = float(self.residual_sd) ** 2
            rows.append({"group": "Residual", "column": "", "variance": float(rv), "stddev": float(self.residual_sd),
                         "column2": None, "corr": nan})
        return pd.DataFrame(rows, columns=["group", "column", "variance", "stddev", "column2", "corr"])
