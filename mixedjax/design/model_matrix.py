"""R's model.matrix from evaluated atoms: which factor of a term gets contrasts and which full indicators.

mixedjax.formula.expand expands the terms (``a*b``, ``(a + b)^2``, ``a/b``, ``-``); the coding follows R (stats:::model.matrix,
TermCode in src/library/stats/src/model.c): in a term T, a factor F is coded by treatment contrasts when T without F
is empty or is contained in a preceding term, else by indicators of all its levels; without an intercept, the first
factor of the first term that has one gets all its indicators. Columns of an interaction vary fastest in its first
variable, and are named as lme4 prints them ('DateNone:VarietyCossack', 'poly(x, 2)1', 'factor(days)3').
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DataError, FormulaError
from ..formula.expand import expand
from ..formula.values import Factor, Matrix

NUMERIC, CONTRASTS, INDICATORS = "numeric", "contrasts", "indicators"


class TermCoding(NamedTuple):
    """One term of the model matrix: its variables (atom keys, in the part's variable order) and their codings."""

    keys: tuple[str, ...]  # () for the intercept
    codings: tuple[str, ...]  # NUMERIC, CONTRASTS or INDICATORS per key


def plan_terms(placeholder: str, values: dict, order: tuple[str, ...]) -> tuple[TermCoding, ...]:
    """The terms of ``placeholder`` (R's term algebra over our placeholders) and R's coding of each factor."""
    expanded = expand(placeholder, order)
    rank = {k: i for i, k in enumerate(order)}
    terms = ([()] if expanded.intercept else []) + list(expanded.terms)
    intercept = expanded.intercept
    is_factor = {k: isinstance(values[k], Factor) for t in terms for k in t}
    codings = []
    for j, keys in enumerate(terms):
        cod = []
        for k in keys:
            if not is_factor[k]:
                cod.append(NUMERIC)
                continue
            rest = set(keys) - {k}
            earlier = any(rest <= set(terms[i]) for i in range(j))
            cod.append(CONTRASTS if not rest or earlier else INDICATORS)
        codings.append(cod)
    if not intercept:  # R: the first factor (in variable order) of the first term holding one gets all indicators
        done = False
        for j, keys in enumerate(terms):
            for k in sorted(keys, key=lambda k: rank.get(k, len(rank))):
                if is_factor[k]:
                    codings[j][keys.index(k)] = INDICATORS
                    done = True
                    break
            if done:
                break
    return tuple(TermCoding(keys, tuple(c)) for keys, c in zip(terms, codings))


def _variable_columns(value, coding: str, display: str, suffixes: tuple[str, ...], n: int):
    """(n, k) columns and names of one variable in a term."""
    if coding == NUMERIC:
        if isinstance(value, Matrix):
            return value.values, [display + s for s in suffixes]
        return np.asarray(value, dtype=np.float64).reshape(n, 1), [display]
    f: Factor = value
    k = len(f.levels)
    if k < 2 and coding == CONTRASTS:
        raise DataError(f"the factor '{display}' has only {k} level in the rows used; a factor in a model term "
                        "needs 2 or more (R: 'contrasts can be applied only to factors with 2 or more levels')")
    if coding == CONTRASTS and f.ordered:
        contrast, names = contr_poly(k)
    else:
        first = 1 if coding == CONTRASTS else 0
        contrast, names = np.eye(k)[:, first:], list(f.levels[first:])
    # one gather of the contrast's rows (treatment: code 0 is the zero row); a fancy-indexed scatter is slower
    ind = np.take(contrast, np.maximum(f.codes, 0), axis=0)
    if (f.codes < 0).any():
        ind[f.codes < 0] = np.nan  # missing (new data only: the fit drops those rows)
    return ind, [display + nm for nm in names]


def contr_poly(k: int) -> tuple[np.ndarray, list[str]]:
    """R's contr.poly(k), an ordered factor's contrasts: the orthonormal polynomials of degrees 1..k-1 on the scores
    1..k (the part of each power orthogonal to the lower ones, unit length, leading coefficient positive), named
    .L, .Q, .C, ^4, ^5, ... as R names them."""
    y = np.arange(1, k + 1, dtype=np.float64)
    q, r = np.linalg.qr(np.vander(y - y.mean(), k, increasing=True))
    z = q * np.sign(np.diag(r))
    return z[:, 1:], [".L", ".Q", ".C"][: k - 1] + [f"^{d}" for d in range(4, k)]


def _width(value, coding: str) -> int:
    if coding == NUMERIC:
        return value.values.shape[1] if isinstance(value, Matrix) else 1
    return len(value.levels) - (coding == CONTRASTS)


_MAX_CELLS = 50_000_000  # 400 MB of float64: a larger matrix with more columns than rows is refused unbuilt


def build_columns(terms: tuple[TermCoding, ...], values: dict, displays: dict, suffixes: dict, n: int):
    """The model matrix (n, p) and its column names."""
    p = sum(int(np.prod([_width(values[k], c) for k, c in zip(t.keys, t.codings)])) for t in terms)
    if p > n and p * n > _MAX_CELLS:
        raise DataError(f"the terms give {p} model columns for {n} observations; simplify the interactions")
    X, names, at = np.empty((n, p)), [], 0  # each term's columns written in place (no stacking copy)
    for t in terms:
        if not t.keys:
            X[:, at] = 1.0
            at += 1
            names.append("(Intercept)")
            continue
        cols, nm = None, [""]
        for k, coding in zip(t.keys, t.codings):
            c, cn = _variable_columns(values[k], coding, displays[k], suffixes[k], n)
            # the first variable varies fastest: new columns are (old column j, this column i) in order i, j
            cols = c if cols is None else (cols[:, None, :] * c[:, :, None]).reshape(n, -1)
            nm = [f"{a}:{b}" if a else b for b in cn for a in nm]
        X[:, at : at + cols.shape[1]] = cols
        at += cols.shape[1]
        names.extend(nm)
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise FormulaError(f"the model matrix would have two columns named {dup[0]!r}; remove the repeated term")
    return X, tuple(names)
