"""New data encoded as the fit encoded its own: the fixed-effect matrix and, per random-effects term, the model
values and the level index of each row (−1 for a level the fit has not seen).

The fixed effects and the random-effects model columns go through the fit's own formulaic ``ModelSpec`` (the same
contrasts, levels and stateful transforms such as ``center(x)``, learned from the rows the model was fitted to), so
a factor level the fit has not seen is an error here, never a silently dropped column. Grouping levels are matched
by value (integer ids stay integers; a text id matches the same text).
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..design.build import _lme4_name
from ..design.input import as_frame
from ..errors import DataError


class NewTermRows(NamedTuple):
    """One random-effects term of the fit, evaluated on new rows.

    name: the grouping factor; codes: the fit's level index of each row, −1 for an unseen (or missing) level (r,);
    z: the term's model columns (r, s_k); unseen: the distinct unseen levels, as the new data hold them.
    """

    name: str
    codes: np.ndarray
    z: np.ndarray
    unseen: tuple


class NewRows(NamedTuple):
    """New data as the fit's design sees it: X (r, p), one NewTermRows per term in the design's order, and the
    index labels of the rows kept (rows with a missing value in a fixed-effect or random-effects column are
    left out)."""

    X: np.ndarray
    terms: tuple
    index: pd.Index


def _spec(expr: str, frame: pd.DataFrame):
    import formulaic

    return formulaic.model_matrix(expr, frame, ensure_full_rank=True, na_action="ignore").model_spec


def _check_levels(spec, frame: pd.DataFrame, new: pd.DataFrame, part: str) -> None:
    """Every categorical column ``spec`` reads must hold only levels seen in the fit."""
    for var in sorted(map(str, spec.required_variables)):
        if var not in frame.columns or var not in new.columns:
            continue
        col = frame[var]
        if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
            continue
        seen = set(col.cat.categories) if isinstance(col.dtype, pd.CategoricalDtype) else set(col.dropna())
        unseen = [v for v in pd.unique(new[var].dropna()) if v not in seen]
        if unseen:
            shown = ", ".join(repr(_plain(v)) for v in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            raise DataError(
                f"column '{var}' of the new data has level{'s' if len(unseen) > 1 else ''} {shown} that the fit has "
                f"not seen (used in '{part}'); the fixed effects have no coefficient for "
                f"{'them' if len(unseen) > 1 else 'it'}.\nLevels of the fit: "
                + ", ".join(repr(_plain(v)) for v in sorted(seen, key=str)[:20])
                + ". Predict only for those levels, or refit with the new levels in the data."
            )


def _matrix(spec, new: pd.DataFrame, part: str) -> tuple[np.ndarray, tuple[str, ...]]:
    from formulaic.errors import DataMismatchWarning

    missing = sorted(set(map(str, spec.required_variables)) - set(map(str, new.columns)))
    if missing:
        raise DataError(
            f"the new data lack the column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))} "
            f"(used in '{part}').\nAvailable columns: {', '.join(map(str, new.columns[:20]))}. The response is "
            "not needed."
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataMismatchWarning)
        try:
            mm = spec.get_model_matrix(new, na_action="ignore")
        except DataMismatchWarning as err:  # a backstop: _check_levels names the column first
            raise DataError(f"the new data do not match the fit's encoding of '{part}': {err}") from err
    names = tuple(_lme4_name(c) for c in mm.columns)
    return np.asarray(mm, dtype=np.float64).reshape(len(new), -1), names


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def _group_values(new: pd.DataFrame, group: tuple[str, ...]) -> list:
    if len(group) == 1:
        return [_plain(v) for v in new[group[0]].tolist()]
    cols = [new[g].astype(object).tolist() for g in group]
    return [None if any(_missing(v) for v in row) else ":".join(str(v) for v in row) for row in zip(*cols)]


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA or v is pd.NaT


def _codes(values: list, term) -> tuple[np.ndarray, tuple]:
    """Level index of each value (by value, then by its text as the fit writes the level), −1 when unseen."""
    by_value = {}
    for i, v in enumerate(term.level_values):
        by_value.setdefault(v, i)
    by_text = {str(lv): i for i, lv in enumerate(term.levels)}
    codes = np.full(len(values), -1, dtype=np.int64)
    unseen = []
    for r, v in enumerate(values):
        if _missing(v):  # a missing level is no level of the fit: unseen (reported as None)
            if None not in unseen:
                unseen.append(None)
            continue
        try:
            c = by_value.get(v)
        except TypeError:  # an unhashable value is no level of the fit
            c = None
        if c is None:
            c = by_text.get(str(v))
        if c is None:
            if v not in unseen:
                unseen.append(v)
        else:
            codes[r] = c
    return codes, tuple(unseen)


def encode_new(design, newdata, use_terms=None) -> NewRows:
    """Encode ``newdata`` (any table ``lmm`` accepts) with the fit's formulaic specs; no response needed.

    ``use_terms``: one bool per term of the design; a term left out needs no columns in ``newdata`` (its rows
    come back with every level unseen and z zero). None: every term.
    """
    frame = design.frame
    new = as_frame(newdata)
    new = new.rename(columns=str)
    pf = design.formula
    xspec = _spec(pf.fixed, frame)
    _check_levels(xspec, frame, new, pf.fixed)
    X, xnames = _matrix(xspec, new, pf.fixed)
    pos = {nm: j for j, nm in enumerate(xnames)}
    X = X[:, [pos[nm] for nm in design.xnames]]  # the columns the fit kept (rank-deficient ones dropped)
    keep = np.all(np.isfinite(X), axis=1)
    terms = []
    use_terms = [True] * len(design.terms) if use_terms is None else list(use_terms)
    for t, use in zip(design.terms, use_terms):
        if not use:
            terms.append((t, np.zeros((len(new), t.s)), [None] * len(new)))
            continue
        members = [rt for rt in pf.random if rt.group_name == t.name]
        zs, names = [], []
        for rt in members:
            spec = _spec(rt.expr, frame)
            _check_levels(spec, frame, new, rt.source)
            z, zn = _matrix(spec, new, rt.source)
            zs.append(z)
            names.extend(zn)
        missing = [g for g in members[0].group if g not in new.columns]
        if missing:
            raise DataError(
                f"the new data lack the grouping column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(map(repr, missing))} (of the random-effects term '{members[0].source}').\nAdd "
                f"{'them' if len(missing) > 1 else 'it'}, or predict without this term: re_form='~0' (population "
                "level) or a formula naming only the terms the data have."
            )
        z = np.column_stack(zs)
        keep &= np.all(np.isfinite(z), axis=1)
        terms.append((t, z, _group_values(new, members[0].group)))
    idx = np.flatnonzero(keep)
    out = []
    for t, z, values in terms:
        codes, unseen = _codes([values[i] for i in idx], t)  # unseen levels of the rows predicted only
        out.append(NewTermRows(t.name, codes, z[idx], unseen))
    return NewRows(X[idx], tuple(out), new.index[idx])


def fitted_rows(design) -> NewRows:
    """The fit's own rows in the same form (every level seen)."""
    index = design.frame.index if design.frame is not None else pd.Index(design.rows)
    terms = tuple(NewTermRows(t.name, np.asarray(t.codes), np.asarray(t.z), ()) for t in design.terms)
    return NewRows(np.asarray(design.X), terms, index)

