"""Predictions of a fitted GLMM (host numpy: new rows encoded by the fit's encoding, then η = offset + Xβ + Zb)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..design.input import as_frame as _as_frame
from ..diagnostics.newdata import encode_rows
from ..diagnostics.predict import check_new_levels, check_new_levels_option, linear_predictor, select_terms
from ..errors import ArgumentError, DataError


def predict(m, newdata, type: str, re_form, offset, new_levels: str = "population") -> pd.Series:
    if type not in ("response", "link"):
        raise ArgumentError(f"type must be 'response' or 'link', not {type!r}")
    check_new_levels_option(new_levels)
    # re_form read as the LMM's predict reads it: None every term, "~0" / "NA" (or False) none, or a formula of terms
    sel = select_terms(m.design, "~0" if re_form is False else re_form)
    keep_cols = {t.name: mask for t, mask in zip(m.design.terms, sel.masks)}
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
        # encoded by the fit's own encoding (as the LMM's predict): the fit's levels and contrasts, and the fit's
        # scale()/poly() coefficients; computing them again on the new rows (or on fit + new rows) moves X
        new = newdata.reset_index(drop=True)
        rows = encode_rows(m.design, new, [bool(mk.any()) for mk in sel.masks])
        check_new_levels(rows, sel, new_levels)
        pos = np.asarray(rows.index, dtype=np.int64)  # the new rows with every value present
        b = [ranef[t.name].to_numpy() for t in m.design.terms]
        eta = off[pos] + linear_predictor(rows, m.fixef.to_numpy(), b, sel)  # unseen levels: b = 0
        out = np.full(len(newdata), np.nan)
        out[pos] = eta
    if type == "response":
        import jax.numpy as jnp

        # an infinite η (an offset log(0) of zero exposure) has a limit, clamped as R's linkinv; only NaN stays NaN
        known = ~np.isnan(out)
        out = np.where(known, np.asarray(m.family.linkinv(jnp.asarray(np.where(known, out, 0.0)))), np.nan)
    return pd.Series(out, index=labels, name="predict")
