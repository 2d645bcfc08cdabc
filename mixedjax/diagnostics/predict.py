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
from ..model.groups import lme4_aliases

NEW_LEVELS = ("population", "error")
_NO_TERMS = re.compile(r"^\s*(~\s*(0|-1|1)?|NA)\s*$")


class TermSelection(NamedTuple):
    """Which columns of each of the design's terms a prediction uses: a boolean mask per term (in the design's
    order); all False drops the term."""

    masks: tuple


def _part_columns(design, k: int) -> list[tuple[str, tuple[str, ...]]]:
    """(expression as written, its columns) for each part merged into term k (one per ``(expr | g)`` or ``||``
    column)."""
    t = design.terms[k]
    members = [rt for rt in design.formula.random if rt.group_name == t.name]
    sizes = [len(p.keep) for p in design.encoding.terms[k].parts] if design.encoding is not None else None
    if sizes is None or len(sizes) != len(members) or sum(sizes) != t.s:
        return [(" + ".join(rt.expr for rt in members), tuple(t.columns))]
    out, o = [], 0
    for rt, n in zip(members, sizes):
        out.append((rt.expr, tuple(t.columns[o : o + n])))
        o += n
    return out


def _norm(expr: str) -> str:
    return "".join(expr.split())


def _columns_of(expr: str, design, k: int, source: str) -> list[str]:
    """The columns of term k that the re_form expression ``expr`` names."""
    t = design.terms[k]
    parts = _part_columns(design, k)
    for text, cols in parts:  # a part of the model as written
        if _norm(text) == _norm(expr):
            return list(cols)
    pieces = [p.strip() for p in expr.split("+") if p.strip()]
    intercept = not any(p in ("0", "-1") for p in pieces)
    names = []
    for p in pieces:
        if p in ("0", "-1"):
            continue
        if p == "1":
            names.append("(Intercept)")
            continue
        match = [c for text, cols in parts if _norm(text) in (_norm(p), _norm("0 + " + p)) for c in cols]
        match = match or [c for c in t.columns if c == p]
        if not match:
            raise FormulaError(
                f"re_form's term '{source}' names '{p}', which is not a column of the model's term for '{t.name}' "
                f"(its columns: {', '.join(t.columns)}).\nName the term as in the model's formula, e.g. "
                + ", ".join(f"'({text} | {t.name})'" for text, _ in parts[:3]) + "."
            )
        names.extend(match)
    if intercept and "(Intercept)" in t.columns and "(Intercept)" not in names:
        names.insert(0, "(Intercept)")
    missing = [c for c in names if c not in t.columns]
    if missing:
        raise FormulaError(
            f"re_form's term '{source}' has the column{'s' if len(missing) > 1 else ''} {', '.join(missing)}, "
            f"which the model's term for '{t.name}' does not have (it has {', '.join(t.columns)})."
        )
    return names


def _factors(name: str) -> frozenset:
    """The columns whose combination a grouping factor is: 'b:a', 'a:b' and lme4's 'c:(b:a)' name the same levels
    whatever the order."""
    return frozenset(p.strip("() ") for p in name.split(":"))


def _term_index(design, index: dict, name: str):
    """The design's term for a grouping factor named in re_form: by mixedjax's name, by lme4's (``b:a`` for the inner
    term of ``(1 | a/b)``, as lme4's predict takes it), or as the same columns combined in another order."""
    if name in index:
        return index[name]
    alias = lme4_aliases(design).get(name)
    if alias in index:
        return index[alias]
    same = [k for n, k in index.items() if _factors(n) == _factors(name)]
    return same[0] if len(same) == 1 else None


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
    index = {t.name: k for k, t in enumerate(design.terms)}
    masks = [np.zeros(t.s, bool) for t in design.terms]
    for rt in pf.random:
        k = _term_index(design, index, rt.group_name)
        if k is None:
            raise FormulaError(
                f"re_form names the grouping factor '{rt.group_name}' (in '{rt.source}'), which is not a "
                f"random-effects term of the model; its terms are on {', '.join(repr(n) for n in index)}."
            )
        cols = _columns_of(rt.expr, design, k, rt.source)
        masks[k] |= np.isin(np.array(design.terms[k].columns, dtype=object), np.array(cols, dtype=object))
    return TermSelection(tuple(masks))


def check_new_levels_option(new_levels: str) -> None:
    """An ArgumentError unless ``new_levels`` is one of NEW_LEVELS."""
    if new_levels not in NEW_LEVELS:
        raise ArgumentError(f"new_levels must be one of {', '.join(map(repr, NEW_LEVELS))}, not {new_levels!r}")


def check_new_levels(rows, selection: TermSelection, new_levels: str) -> None:
    """Raise for an unseen level of a kept term when ``new_levels="error"``."""
    check_new_levels_option(new_levels)
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
    """X β (+ offset) + Σ_k (z_k b_k[level]) over the kept columns; an unseen level contributes nothing (its mode
    is 0)."""
    eta = rows.X @ beta
    if rows.offset is not None:
        eta = eta + rows.offset
    for nt, bk, mask in zip(rows.terms, b, selection.masks):
        if not mask.any():
            continue
        seen = nt.codes >= 0
        contrib = np.sum((nt.z[:, mask] * bk[np.where(seen, nt.codes, 0)][:, mask]), axis=1)
        eta = eta + np.where(seen, contrib, 0.0)
    return eta
