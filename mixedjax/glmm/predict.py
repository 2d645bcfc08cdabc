"""Predictions of a fitted GLMM on new data (host numpy: the design of the new rows, then η = offset + Xβ + Zb)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from ..design.build import build_design
from ..design.input import as_frame as _as_frame
from ..diagnostics.predict import select_terms
from ..errors import ArgumentError, DataError


def _selection(m, re_form) -> dict:
    """Term name -> the mask of its columns that ``re_form`` keeps, read as the LMM's predict reads it
    (``diagnostics.predict.select_terms``: None every term, "~0" / "NA" none, or a formula of terms); False is
    accepted for none."""
    if re_form is False:
        re_form = "~0"
    sel = select_terms(m.design, re_form)
    return {t.name: mask for t, mask in zip(m.design.terms, sel.masks)}


def _new_design(m, newdata: pd.DataFrame):
    """The design of the training rows followed by the new ones (so factors keep the fit's levels), and the
    positions of the new rows in it that have no missing value."""
    from .model import RESPONSE_COLUMN

    train = m.frame.copy()
    new = newdata.reset_index(drop=True).copy()
    for c in train.columns:
        if c == RESPONSE_COLUMN or c not in new.columns or not isinstance(train[c].dtype, pd.CategoricalDtype):
            continue
        # the fit's levels first (so a fixed factor keeps its reference level), then levels new to the fit
        cats = list(train[c].cat.categories)
        vals = new[c].astype(object)
        if all(isinstance(v, str) for v in cats):
            vals = vals.map(lambda v: v if pd.isna(v) else str(v))
        known = set(cats)
        dtype = pd.CategoricalDtype(cats + [v for v in pd.unique(vals.dropna()) if v not in known])
        train[c] = train[c].astype(dtype)
        new[c] = pd.Categorical(vals, dtype=dtype)
    new[RESPONSE_COLUMN] = 0.0  # any number: the response does not enter the new rows' design
    cols = [c for c in train.columns if c in new.columns]
    union = pd.concat([train[cols], new[cols]], ignore_index=True)
    # the response varies, so the design's checks on it hold: keep the training values
    rest = m.formula[m.formula.index("~"):]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = build_design(RESPONSE_COLUMN + " " + rest, union, residual=False)
    rows = np.asarray(d.rows, dtype=np.int64)
    return d, rows, len(train), len(new)


def predict(m, newdata, type: str, re_form, offset) -> pd.Series:
    if type not in ("response", "link"):
        raise ArgumentError(f"type must be 'response' or 'link', not {type!r}")
    keep_cols = _selection(m, re_form)
    ranef = m.ranef()
    if newdata is None:
        ev = m.evaluation
        if all(mask.all() for mask in keep_cols.values()):
            out = np.asarray(ev.eta)
        else:
            out = np.asarray(m.data.offset) + np.asarray(m.data.X) @ np.asarray(ev.beta)
            for t in m.design.terms:
                mask = keep_cols[t.name]
                out = out + np.sum(t.z[:, mask] * ranef[t.name].to_numpy()[t.codes][:, mask], axis=1)
        labels = m.labels
    else:
        newdata = _as_frame(newdata)
        labels = newdata.index
        off = np.zeros(len(newdata)) if offset is None else np.asarray(offset, dtype=float).reshape(-1)
        if off.size == 1:
            off = np.full(len(newdata), off[0])
        if off.size != len(newdata):
            raise DataError(f"offset= has {off.size} values for {len(newdata)} rows of newdata; give one per row")
        d, rows, ntrain, nnew = _new_design(m, newdata)
        keep = rows >= ntrain
        pos = rows[keep] - ntrain  # the new rows with every value present
        names = list(m.design.xnames)
        col = {nm: j for j, nm in enumerate(d.xnames)}
        missing = [nm for nm in names if nm not in col]
        if missing:
            raise DataError(f"newdata do not give the fixed-effect columns {', '.join(missing)} of the fit")
        Xn = d.X[keep][:, [col[nm] for nm in names]]
        extra = [j for nm, j in col.items() if nm not in set(names)]
        if extra and np.any(d.X[keep][:, extra] != 0):
            bad = [d.xnames[j] for j in extra if np.any(d.X[keep][:, j] != 0)]
            raise DataError(f"newdata have levels of a fixed-effect factor not seen in the fit ({', '.join(bad)}); "
                            "predictions need the fit's levels")
        eta = off[pos] + Xn @ m.fixef.to_numpy()
        if d.offset is not None:  # offset(...) terms of the formula, evaluated on the new rows
            eta = eta + np.asarray(d.offset)[keep]
        for t in d.terms:
            b = ranef[t.name]
            cols = [c for c, k in zip(b.columns, keep_cols[t.name]) if k]
            if not cols:
                continue
            index = {lv: i for i, lv in enumerate(b.index)}
            where = np.array([index.get(t.levels[c], -1) for c in t.codes[keep]], dtype=np.int64)
            vals = np.vstack([b[cols].to_numpy(), np.zeros((1, len(cols)))])[where]  # unseen levels: b = 0
            zcols = [list(t.columns).index(c) for c in cols]
            eta = eta + np.sum(t.z[keep][:, zcols] * vals, axis=1)
        out = np.full(len(newdata), np.nan)
        out[pos] = eta
    if type == "response":
        import jax.numpy as jnp

        out = np.where(np.isfinite(out), np.asarray(m.family.linkinv(jnp.asarray(np.nan_to_num(out)))), np.nan)
    return pd.Series(out, index=labels, name="predict")
