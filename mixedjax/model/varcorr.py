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

    def __str__(self) -> str:
        return format_varcorr(self)

    def __repr__(self) -> str:
        return format_varcorr(self).rstrip("\n")

    def _repr_html_(self) -> str:
        return varcorr_html(self)

    def to_frame(self):
        """One row per (group, column), plus a ``Residual`` row.

        Columns: ``group``, ``column``, ``variance``, ``stddev``.
        """
        import pandas as pd

        rows = []
        for g in self.groups:
            for col, var, sd in zip(g.columns, g.variances, g.stddevs):
                rows.append(
                    {"group": g.name, "column": col, "variance": float(var), "stddev": float(sd)}
                )
        if self.residual_sd is not None:
            rv = self.residual_variance
            if rv is None:
                rv = float(self.residual_sd) ** 2
            rows.append(
                {
                    "group": "Residual",
                    "column": "",
                    "variance": float(rv),
                    "stddev": float(self.residual_sd),
                }
            )
        return pd.DataFrame(rows, columns=["group", "column", "variance", "stddev"])
