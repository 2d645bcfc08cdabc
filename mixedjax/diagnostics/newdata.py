"""Rows to predict: new data encoded by the fit's own encoding (``mixedjax.design.encode_new``: the same contrasts,
levels and stateful transforms), or the fit's own rows, in one form: the fixed-effect matrix, the offset, and per
random-effects term the model values and the level index of each row (−1 for a level the fit has not seen).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..design import encode_new
from ..design.input import as_frame
from ..errors import DataError
from ..formula.values import level_name


class NewTermRows(NamedTuple):
    """One random-effects term of the fit on the rows predicted.

    name: the grouping factor; codes: the fit's level index of each row, −1 for an unseen (or missing) level (r,);
    z: the term's model columns (r, s_k); unseen: the distinct unseen levels as the rows hold them (None: missing).
    """

    name: str
    codes: np.ndarray
    z: np.ndarray
    unseen: tuple


class PredictRows(NamedTuple):
    """Rows as the fit's design sees them: X (r, p), the offset (r,) or None, one NewTermRows per term in the
    design's order, and the index labels of the rows (rows with a missing predictor value are left out)."""

    X: np.ndarray
    offset: np.ndarray | None
    terms: tuple
    index: pd.Index


def _plain(x):
    return x.item() if isinstance(x, np.generic) else x


def _missing(v) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v))


def _group_values(new: pd.DataFrame, group: tuple[str, ...]) -> list:
    """Each row's grouping value (a combination of several variables as the fit names it, 'a:b')."""
    if len(group) == 1:
        return [_plain(v) for v in new[group[0]].astype(object).tolist()]
    cols = [new[g].astype(object).tolist() for g in group]
    return [None if any(_missing(v) for v in row) else ":".join(str(_plain(v)) for v in row) for row in zip(*cols)]


def _unseen(values: list, codes: np.ndarray) -> tuple:
    out = []
    for v, c in zip(values, codes):
        if c < 0:
            v = None if _missing(v) else v
            if v not in out:
                out.append(v)
    return tuple(out)


def _check_fixed_levels(design, new: pd.DataFrame) -> None:
    """A factor column of the fixed part holding a level the fit has not seen: a DataError naming the column and
    the levels (the encoder refuses them too; this says which)."""
    enc = design.encoding
    fixed = set(enc.fixed.model.atoms)
    for state in enc.atoms:
        col = state.atom.display
        if state.levels is None or state.atom.key not in fixed or col not in new.columns:
            continue
        values = new[col]
        if pd.api.types.is_numeric_dtype(values) and not isinstance(values.dtype, pd.CategoricalDtype):
            continue  # numbers coded as a factor: the encoder matches them by value
        seen = set(state.levels)
        unseen = [v for v in pd.unique(values.dropna().astype(object)) if level_name(v) not in seen]
        if unseen:
            shown = ", ".join(repr(_plain(v)) for v in unseen[:10]) + (", ..." if len(unseen) > 10 else "")
            raise DataError(
                f"column '{col}' of the new data has level{'s' if len(unseen) > 1 else ''} {shown} that the fit has "
                f"not seen; the fixed effects have no coefficient for {'them' if len(unseen) > 1 else 'it'}.\n"
                f"Levels of the fit: {', '.join(map(repr, state.levels[:20]))}"
                f"{', ...' if len(state.levels) > 20 else ''}. Predict only for those levels, or refit with the new "
                "levels in the data."
            )


def encode_rows(design, newdata, use_terms) -> PredictRows:
    """``newdata`` encoded for prediction; ``use_terms`` (one bool per term): the terms the prediction uses. A term
    left out needs no grouping column in ``newdata``."""
    new = as_frame(newdata)
    new = new.set_axis([str(c) for c in new.columns], axis=1)
    use_terms = list(use_terms)
    random = any(use_terms)
    if random:
        # a term left out of the prediction needs no grouping column: an all-missing one stands in for it
        for t, use in zip(design.encoding.terms, use_terms):
            for g in t.group:
                if not use and g not in new.columns:
                    new = new.assign(**{g: pd.Series([None] * len(new), index=new.index, dtype=object)})
    _check_fixed_levels(design, new)
    enc = encode_new(design, new, random=random)
    keep = ~np.asarray(enc.missing, dtype=bool)
    terms = []
    for k, (t, use) in enumerate(zip(design.terms, use_terms)):
        if not use:
            terms.append((t.name, np.full(len(new), -1, np.int64), np.zeros((len(new), t.s)), None))
            continue
        z = np.asarray(enc.z[k], dtype=float)
        keep &= np.all(np.isfinite(z), axis=1)
        terms.append((t.name, np.asarray(enc.codes[k]), z, _group_values(new, design.encoding.terms[k].group)))
    idx = np.flatnonzero(keep)
    out = []
    for name, codes, z, values in terms:
        codes = codes[idx]
        unseen = _unseen([values[i] for i in idx], codes) if values is not None else ()
        out.append(NewTermRows(name, codes, z[idx], unseen))
    offset = None if enc.offset is None else np.asarray(enc.offset, dtype=float)[idx]
    return PredictRows(np.asarray(enc.X, dtype=float)[idx], offset, tuple(out), new.index[idx])


def fitted_rows(design) -> PredictRows:
    """The fit's own rows in the same form (every level seen)."""
    terms = tuple(NewTermRows(t.name, np.asarray(t.codes), np.asarray(t.z), ()) for t in design.terms)
    offset = getattr(design, "offset", None)
    return PredictRows(np.asarray(design.X), offset, terms, pd.Index(design.rows))
