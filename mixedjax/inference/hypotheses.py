"""The hypothesis matrices of the F tests per term, as lmerTest builds them (Kuznetsova et al. 2017, section 3).

Type I (sequential): the rows of the unit upper-triangular Doolittle factor U of X'X = U' D U that belong to the
term's columns. Type III: the contrasts of each term's marginal means. Every column of the full, rank-deficient
treatment-coded design (all level combinations of each term's factors) is expressed in X's columns; a term's
columns of that coefficient matrix are orthogonalised against those of every term containing it (higher-order
terms first), and the rows for X's own columns are kept. Under treatment coding this tests, e.g., a main effect
averaged over the levels of the factors it interacts with, not the coefficient at their baseline.
"""

from __future__ import annotations

from itertools import product

import numpy as np

from ..design.model_matrix import contr_poly
from ..errors import ArgumentError
from .coding import FixedCoding


def type1(X: np.ndarray, coding: FixedCoding) -> dict[str, np.ndarray]:
    """Term -> its rows of the Doolittle factor of X'X (type I, sequential)."""
    R = np.linalg.cholesky(X.T @ X).T  # X'X = R'R, R = D^½ U
    U = R / np.diag(R)[:, None]
    return {t: U[_columns(coding, t)] for t in coding.terms}


def type2(X: np.ndarray, coding: FixedCoding) -> dict[str, np.ndarray]:
    """Term -> its type II rows (lmerTest's get_contrasts_type2_unfolded): a term no other term contains is tested by
    its coefficients; any other term by its rows of the Doolittle factor of X'X with X's columns reordered so that
    the term's columns, then those of every term containing it, come last (the term adjusted for every term that
    does not contain it). Containment is lmerTest's (:func:`_contains`)."""
    p = X.shape[1]
    cols = {t: _columns(coding, t) for t in coding.terms}
    out = {}
    for term in coding.terms:
        outer = [o for o in coding.terms if _contains(coding, term, o)]
        if not outer:
            out[term] = np.eye(p)[cols[term]]
            continue
        last = np.concatenate([cols[term]] + [cols[o] for o in outer])
        order = np.concatenate([np.setdiff1d(np.arange(p), last), last])
        Xn = X[:, order]
        R = np.linalg.cholesky(Xn.T @ Xn).T
        U = R / np.diag(R)[:, None]
        start = p - len(last)
        L = np.zeros((len(cols[term]), p))
        L[:, order] = U[start : start + len(cols[term])]
        out[term] = L
    return out


def _columns(coding: FixedCoding, term: str) -> np.ndarray:
    return np.array([j for j, t in enumerate(coding.column_terms) if t == term], dtype=int)


def _key(factors) -> tuple:
    """A column's identity: its categorical (variable, level) pairs and numeric variables, order-free."""
    return (frozenset((v, l) for v, l in factors if l is not None), frozenset(v for v, l in factors if l is None))


def _expander(coding: FixedCoding):
    """expand(cat, numeric): Π I(f = l) Π numeric as coefficients on X's columns (treatment coding), None when X's
    columns do not span it."""
    p = len(coding.column_terms)
    index = {_key(f): j for j, f in enumerate(coding.column_factors)}
    levels = dict(coding.levels)
    memo: dict = {}

    def product_row(pairs: frozenset, numeric: frozenset):
        """X's own column where it has one, else a baseline indicator I(f = l₀) = 1 − Σ the other indicators
        written out, recursively (in f + f:h, fa:hA is fa − Σ fa:h·, and fa is 1 − fb − fc − fd)."""
        key = (pairs, numeric)
        if key not in memo:
            memo[key] = None
            j = index.get(key)
            if j is not None:
                memo[key] = np.eye(p)[j]
            else:
                for v, l in sorted(pairs):
                    if l != levels[v][0]:
                        continue
                    rest = pairs - {(v, l)}
                    parts = [product_row(rest, numeric)] + [product_row(rest | {(v, o)}, numeric)
                                                            for o in levels[v][1:]]
                    if all(r is not None for r in parts):
                        memo[key] = parts[0] - sum(parts[1:])
                        break
        return memo[key]

    def expand(cat, numeric):
        return product_row(frozenset(cat), frozenset(numeric))

    return expand


def _full_columns(coding: FixedCoding) -> tuple[list[str], np.ndarray]:
    """The full treatment-coded design's columns (lmerTest's rdX), each as coefficients on X's columns (r, p)."""
    expand = _expander(coding)
    levels = dict(coding.levels)
    names, rows = [], []
    if coding.intercept:
        names.append("(Intercept)")
        rows.append(expand((), ()))
    for term, variables in zip(coding.terms, coding.term_variables):
        cats = [v for v in variables if v in levels]
        numeric = tuple(v for v in variables if v not in levels)
        for combo in product(*(levels[v] for v in cats)):
            row = expand(tuple(zip(cats, combo)), numeric)
            if row is None:
                raise ArgumentError(
                    f"type III hypotheses for the term '{term}' need the fixed part to contain every term marginal "
                    f"to it (e.g. a*b, not a:b alone) with treatment coding; use anova(type=1) or contrast(L)")
            names.append(":".join(f"{v}{l}" for v, l in zip(cats, combo)) if cats else term)
            rows.append(row)
    return names, np.array(rows)


def _full_columns_on_rows(coding: FixedCoding, X: np.ndarray) -> np.ndarray:
    """lmerTest's rdX on the fit's rows (n, r), for an X whose rank-deficient columns were dropped (a missing cell of
    an interaction): each full column is the product of its variables' main-effect columns of X, a baseline level's
    indicator being 1 − Σ the other levels' indicators. Its coefficients on X's columns are then ginv(X) rdX, as
    lmerTest computes them (a full column for a missing cell is 0 on the rows, and gets no coefficients)."""
    levels = dict(coding.levels)
    main = {f[0]: j for j, f in enumerate(coding.column_factors) if len(f) == 1}

    def column(v, l, term):
        if (v, l) in main:
            return X[:, main[(v, l)]]
        others = [main.get((v, o)) for o in levels.get(v, ()) if o != l]
        if l is not None and l == levels[v][0] and None not in others:
            return 1.0 - X[:, others].sum(axis=1)
        raise ArgumentError(
            f"type III hypotheses for the term '{term}' with dropped (rank-deficient) columns need every variable of "
            f"it as a main effect in the fixed part ('{v}' is not); use anova(type=1) or contrast(L)")

    cols = [np.ones(len(X))] if coding.intercept else []
    for term, variables in zip(coding.terms, coding.term_variables):
        cats = [v for v in variables if v in levels]
        numeric = [v for v in variables if v not in levels]
        for combo in product(*(levels[v] for v in cats)):
            c = np.ones(len(X))
            for v, l in zip(cats, combo):
                c = c * column(v, l, term)
            for v in numeric:
                c = c * column(v, None, term)
            cols.append(c)
    return np.column_stack(cols)


def _coded_variables(coding: FixedCoding, term: str) -> frozenset:
    """The variables R's terms() marks 1 in its "factors" matrix for ``term`` (coded by contrasts): those whose
    removal leaves a term of the model, or nothing where there is an intercept. A variable marked 2 (its margin
    absent, as x1 in x1:f of y ~ x1 + x1:f) does not count in lmerTest's containment."""
    variables = coding.term_variables[coding.terms.index(term)]
    present = {frozenset(v) for v in coding.term_variables}
    if coding.intercept:
        present.add(frozenset())
    return frozenset(v for v in variables if frozenset(variables) - {v} in present)


def _contains(coding: FixedCoding, inner: str, outer: str) -> bool:
    """lmerTest's containment: ``outer`` has every contrast-coded variable of ``inner`` and more, and the same
    numeric ones (age:Sex contains age, not Sex)."""
    vi, vo = _coded_variables(coding, inner), _coded_variables(coding, outer)
    categorical = {v for v, _ in coding.levels}
    return vi <= vo and bool(vo - vi) and vi - categorical == vo - categorical


def _residual(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """B minus its projection on the column space of A (R's resid(qr(A), B)); an SVD basis copes with a rank-deficient
    A."""
    U, s, _ = np.linalg.svd(A, full_matrices=False)
    U = U[:, s > 1e-10 * max(1.0, s.max(initial=0.0))]
    return B - U @ (U.T @ B)


def _as_treatment(coding: FixedCoding) -> tuple[FixedCoding, np.ndarray]:
    """An ordered factor's polynomial columns as treatment columns: the treatment coding of the same model and A
    with X = X_t A, so β_t = A β (a hypothesis L_t β_t = 0 is L_t A β = 0). Each polynomial column
    c_m(f) = Σ_l C[l, m] I(f = l) (C = contr.poly) is expanded on the treatment columns."""
    levels = dict(coding.levels)
    polys = {v: contr_poly(len(levels[v])) for v in coding.ordered}
    position = {v: {nm: m for m, nm in enumerate(names)} for v, (_, names) in polys.items()}

    def poly(v, l):
        return v in position and l in position[v]

    relabeled = tuple(tuple((v, levels[v][position[v][l] + 1]) if poly(v, l) else (v, l) for v, l in f)
                      for f in coding.column_factors)
    treatment = coding._replace(column_factors=relabeled, ordered=())
    expand = _expander(treatment)
    A = np.zeros((len(relabeled), len(relabeled)))
    for j, f in enumerate(coding.column_factors):
        fixed = tuple((v, l) for v, l in f if l is not None and not poly(v, l))
        numeric = tuple(v for v, l in f if l is None)
        ords = [(v, position[v][l]) for v, l in f if poly(v, l)]
        for combo in product(*(range(len(levels[v])) for v, _ in ords)):
            coef = np.prod([polys[v][0][i, m] for (v, m), i in zip(ords, combo)])
            row = expand(fixed + tuple((v, levels[v][i]) for (v, _), i in zip(ords, combo)), numeric)
            if row is None:
                raise ArgumentError("type III hypotheses need the fixed part to contain every term marginal to each "
                                    "term (e.g. a*b, not a:b alone); use anova(type=1) or contrast(L)")
            A[:, j] += coef * row
    return treatment, A


def type3(coding: FixedCoding, X: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Term -> its type III hypothesis rows (on β). ``X`` (the design's fixed-effect matrix) is needed when
    rank-deficient columns were dropped: the full columns are then written in X's columns by least squares on the
    rows (lmerTest's ginv(X) rdX), not symbolically."""
    if coding.ordered:  # the same hypotheses on the treatment-coded model, mapped back to β
        treatment, A = _as_treatment(coding)
        Xt = None if X is None else X @ np.linalg.inv(A)  # X = X_t A
        out = {}
        for term, Lt in type3(treatment, Xt).items():
            L = Lt @ A
            out[term] = np.where(np.abs(L) < 1e-12, 0.0, L)
        return out
    if coding.rank_deficient:
        if X is None:
            raise ArgumentError("type III hypotheses of a rank-deficient fixed part need the design's X")
        M = np.linalg.lstsq(X, _full_columns_on_rows(coding, X), rcond=None)[0].T
        M = np.where(np.abs(M) < 1e-10, 0.0, M)  # lmerTest's zapsmall
    else:
        _, M = _full_columns(coding)  # M[i, j]: coefficient of X column j in full column i
    L = M.copy()
    cols = {t: _columns(coding, t) for t in coding.terms}
    order = sorted(coding.terms, key=lambda t: -len(coding.term_variables[coding.terms.index(t)]))
    for term in order:
        outer = [o for o in coding.terms if _contains(coding, term, o)]
        if outer:
            A = L[:, np.concatenate([cols[o] for o in outer])]
            L[:, cols[term]] = _residual(A, L[:, cols[term]])
    # the rows for X's own columns: the full column named as X's column j is X's column j itself
    own = [int(np.flatnonzero(np.all(np.isclose(M, np.eye(M.shape[1])[j], atol=1e-8), axis=1))[0])
           for j in range(M.shape[1])]
    L = L[own]
    out = {}
    for term in coding.terms:
        Lt = L[:, cols[term]].T
        Lt = np.where(np.abs(Lt) < 1e-12, 0.0, Lt)
        out[term] = Lt[np.sum(np.abs(Lt), axis=1) > 1e-8]
    return out
