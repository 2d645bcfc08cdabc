"""lme4's ``predict``: fixed effects plus the conditional modes of the random-effects terms that ``re_form`` keeps.

``re_form`` as in lme4: None keeps every term, ``"~0"`` (or ``"NA"``) none, and a formula of random-effects terms
like ``"~(1 | plate)"`` the terms (and term columns) it names. Rows at a level the fit has not seen get the
population value of that term (lme4's ``allow.new.levels = TRUE``) or an error.
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from ..errors import ArgumentError, DataError, FormulaError
from ..formula.parse import parse_formula

NEW_LEVELS = ("population", "error")
_NO_TERMS = re.compile(r"^\s*(~\s*(0|-1|1)?|NA)\s*$")


class TermSelection(NamedTuple):
    """Which columns of each of the design's terms a prediction uses: a boolean mask per term (in the design's
    order); all False drops the term."""

    masks: tuple


def select_terms(design, re_form) -> TermSelection:
    """The terms and columns ``re_form`` keeps (see the module docstring)."""
    if re_form is None:
        return TermSelection(tuple(np.ones(t.s, bool) for t in design.terms))
    if not isinstance(re_form, str):
        raise ArgumentError(f"re_form must be None, '~0' or a formula of random-effects terms like "
                            f"'~(1 | g)', not {type(re_form).__name__}")
    if _NO_TERMS.match(re_form):
        return TermSelection(tuple(np.zeros(t.s, bool) for t in design.terms))
    text = re_form.strip()
    if not text.startswith("~"):
        raise FormulaError(f"re_form must start with '~', like '~(1 | g)' or '~0'; got '{re_form}'")
    pf = parse_formula("re_form_response " + text)
    masks = {t.name: np.zeros(t.s, bool) for t in design.terms}
    by_name = {t.name: t for t in design.terms}
    from .newdata import _matrix, _spec

    for rt in pf.random:
        t = by_name.get(rt.group_name)
        if t is None:
            raise FormulaError(
                f"re_form names the grouping factor '{rt.group_name}' (in '{rt.source}'), which is not a "
                f"random-effects term of the model; its terms are on {', '.join(repr(n) for n in by_name)}."
            )
        spec = _spec(rt.expr, design.frame)
        _, names = _matrix(spec, design.frame.iloc[:1], rt.source)
        extra = [nm for nm in names if nm not in t.columns]
        if extra:
            raise FormulaError(
                f"re_form's term '{rt.source}' has the column{'s' if len(extra) > 1 else ''} "
                f"{', '.join(extra)}, which the model's term for '{t.name}' does not have (it has "
                f"{', '.join(t.columns)})."
            )
        masks[t.name] |= np.isin(np.array(t.columns, dtype=object), np.array(names, dtype=object))
    return TermSelection(tuple(masks[t.name] for t in design.terms))


def check_new_levels(rows, selection: TermSelection, new_levels: str) -> None:
    """Raise for an unseen level of a kept term when ``new_levels="error"``."""
    if new_levels not in NEW_LEVELS:
        raise ArgumentError(f"new_levels must be one of {', '.join(map(repr, NEW_LEVELS))}, not {new_levels!r}")
    if new_levels != "error":
        return
    for nt, mask in zip(rows.terms, selection.masks):
        if mask.any() and nt.unseen:
            shown = ", ".join(repr(v) for v in nt.unseen[:10]) + (", ..." if len(nt.unseen) > 10 else "")
            raise DataError(
                f"column '{nt.name}' of the new data has level{'s' if len(nt.unseen) > 1 else ''} {shown} that the "
                f"fit has not seen. Pass new_levels='population' to predict "
                f"{'them' if len(nt.unseen) > 1 else 'it'} at the population value of this term (lme4's "
                "allow.new.levels=TRUE), or re_form without the term."
            )


def linear_predictor(rows, beta: np.ndarray, b: list, selection: TermSelection) -> np.ndarray:
    """X β + Σ_k (z_k b_k[level]) over the kept columns; an unseen level contributes nothing (its mode is 0)."""
    eta = rows.X @ beta
    for nt, bk, mask in zip(rows.terms, b, selection.masks):
        if not mask.any():
            continue
        seen = nt.codes >= 0
        contrib = np.sum((nt.z[:, mask] * bk[np.where(seen, nt.codes, 0)][:, mask]), axis=1)
        eta = eta + np.where(seen, contrib, 0.0)
    return eta
