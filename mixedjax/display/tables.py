"""Tidy tables (broom.mixed's layout) from a coefficient table and the variance components: layout only."""

from __future__ import annotations

import numpy as np
import pandas as pd

TIDY_COLUMNS = ["effect", "group", "term", "estimate", "std_error", "statistic", "df", "p_value"]


def _column(ct: pd.DataFrame, test) -> pd.Series | None:
    for name in ct.columns:
        if test(str(name)):
            return ct[name]
    return None


def tidy_frame(ct: pd.DataFrame, vc) -> pd.DataFrame:
    """One row per fixed effect (from the coefficient table ``ct``: estimate, standard error, statistic, df when
    it has a ``df`` column, p-value) and per random-effects standard deviation and correlation and the residual."""
    est = ct.iloc[:, 0]
    se = ct.iloc[:, 1]
    stat = _column(ct, lambda n: n in ("z", "t", "z value", "t value"))
    df = _column(ct, lambda n: n.lower() in ("df", "dendf"))
    p = _column(ct, lambda n: n.startswith("Pr("))
    nan = pd.Series(np.nan, index=ct.index)
    fixed = pd.DataFrame({
        "effect": "fixed", "group": None, "term": [str(i) for i in ct.index], "estimate": est.to_numpy(float),
        "std_error": se.to_numpy(float), "statistic": (stat if stat is not None else nan).to_numpy(float),
        "df": (df if df is not None else nan).to_numpy(float), "p_value": (p if p is not None else nan).to_numpy(float),
    })
    rows = []
    for g in vc.groups:
        for col, sd in zip(g.columns, g.stddevs):
            rows.append((str(g.name), f"sd__{col}", float(sd)))
        if g.corr is not None:
            for j in range(len(g.columns)):
                for i in range(j + 1, len(g.columns)):
                    r = float(g.corr[i][j])
                    if r == 0.0 and np.signbit(r):
                        continue  # a structural zero (block-diagonal λ) is no parameter
                    rows.append((str(g.name), f"cor__{g.columns[j]}.{g.columns[i]}", r))
    if vc.residual_sd is not None:
        rows.append(("Residual", "sd__Observation", float(vc.residual_sd)))
    ran = pd.DataFrame({"effect": "ran_pars", "group": [r[0] for r in rows], "term": [r[1] for r in rows],
                        "estimate": [r[2] for r in rows], "std_error": np.nan, "statistic": np.nan, "df": np.nan,
                        "p_value": np.nan})
    return pd.concat([fixed, ran], ignore_index=True)[TIDY_COLUMNS]


class CoefTable(pd.DataFrame):
    """A coefficient table: a plain DataFrame that prints as MixedModels.jl's table and renders in notebooks
    (``_repr_html_``, ``_repr_markdown_``). Operations on it return plain DataFrames."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def __str__(self) -> str:
        from .text import format_coeftable

        return format_coeftable(self)

    def __repr__(self) -> str:
        return self.__str__()

    def _repr_html_(self) -> str:
        from .text import coeftable_html

        return coeftable_html(self)

    def _repr_markdown_(self) -> str:
        from .text import coeftable_markdown

        return coeftable_markdown(self)


class TestTable(pd.DataFrame):
    """An F, t or likelihood-ratio table (anova, contrast, mj.anova): a DataFrame that also renders as Markdown in
    notebooks (``_repr_markdown_``; ``_repr_html_`` is pandas'). Operations on it return plain DataFrames."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def _repr_markdown_(self) -> str:
        from .text import frame_markdown

        return frame_markdown(self)
