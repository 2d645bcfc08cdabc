"""The host-side checks of the design: rank of X, the response fitted exactly, random effects confounded with X.

Each check has a fast path for rows that repeat (designs of factors) and the general one for rows as given; both
are tested on exact, near (far on either side of the tolerance) and clearly full-rank cases, against decisions
that hold by construction and residuals from numpy's SVD least squares on the dense [X Z].
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mixedjax.design.build import (
    Term,
    _confounded,
    _exact_fit,
    _independent_columns,
    _row_groups,
)
from mixedjax.design.sums import sum_by_level, sum_by_row

RNG = np.random.default_rng(7)
N = 600
F = RNG.integers(0, 4, N)  # a fixed-effect factor, 4 levels
G = RNG.integers(0, 9, N)  # a grouping factor, 9 levels
X_COV = RNG.normal(size=N)  # a continuous covariate


def _dummies(codes, k, drop_first=True):
    D = (codes[:, None] == np.arange(k)[None, :]).astype(float)
    return D[:, 1:] if drop_first else D


def _term(codes, z, name="g"):
    nlev = int(codes.max()) + 1
    z = np.asarray(z, float).reshape(len(codes), -1)
    s = z.shape[1]
    pattern = tuple((r, c) for c in range(s) for r in range(c, s))
    return Term(name=name, levels=tuple(str(i) for i in range(nlev)), codes=np.asarray(codes, np.int64), z=z,
                columns=tuple(f"z{j}" for j in range(s)), pattern=pattern, correlated=True)


def _z_dense(term):
    """The dense n × (levels · s) random-effects matrix, for the reference least squares."""
    n, s = term.z.shape
    Z = np.zeros((n, term.nlevels * s))
    for a in range(s):
        Z[np.arange(n), term.codes * s + a] = term.z[:, a]
    return Z


def _relative_residual(A, y):
    """‖(I − P_A) y‖ / ‖y‖ by numpy's SVD least squares."""
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return np.linalg.norm(y - A @ coef) / np.linalg.norm(y)


FACTOR_X = np.column_stack([np.ones(N), _dummies(F, 4)])  # 4 distinct rows


# ---- grouping equal rows ------------------------------------------------------------------------------------------
def test_row_groups_hold_equal_rows_only():
    group, rep = _row_groups(FACTOR_X, G)
    assert len(rep) == len(np.unique(np.column_stack([FACTOR_X, G]), axis=0))  # 36 combinations
    np.testing.assert_array_equal(FACTOR_X, FACTOR_X[rep][group])
    np.testing.assert_array_equal(G, G[rep][group])


def test_row_groups_none_for_distinct_rows():
    assert _row_groups(np.column_stack([np.ones(N), X_COV])) is None


def test_row_groups_projection_collision_is_refused():
    # [1e20, 0] and [1e20, 1] project to the same float (1 is below the spacing of floats near 1e20)
    X = np.column_stack([np.full(10, 1e20), np.arange(10) % 2])
    assert _row_groups(X) is None
    keep, Q = _independent_columns(X)  # then judged on the rows as given
    assert keep.tolist() == [0, 1]
    np.testing.assert_allclose(Q.T @ Q, np.eye(2), atol=1e-12)


# ---- rank of X ----------------------------------------------------------------------------------------------------
def _check_basis(X, keep, Q):
    np.testing.assert_allclose(Q.T @ Q, np.eye(len(keep)), atol=1e-10)
    Xk = X[:, keep]
    np.testing.assert_allclose(Q @ (Q.T @ Xk), Xk, atol=1e-9 * np.abs(X).max())


@pytest.mark.parametrize("compressible", [True, False])
def test_exactly_dependent_columns_dropped(compressible):
    base = FACTOR_X if compressible else np.column_stack([FACTOR_X, X_COV])
    # a repeated column and a sum of two earlier ones
    X = np.column_stack([base, base[:, 1], base[:, 1] + 2 * base[:, 2]])
    p = base.shape[1]
    assert (_row_groups(X) is not None) == compressible
    keep, Q = _independent_columns(X)
    assert keep.tolist() == list(range(p))
    _check_basis(X, keep, Q)


@pytest.mark.parametrize("compressible", [True, False])
@pytest.mark.parametrize("delta, kept", [(1e-10, False), (1e-12, False), (1e-4, True), (1e-3, True)])
def test_nearly_dependent_column(compressible, delta, kept):
    # v = a combination of earlier columns + delta · a direction outside their span; the tolerance is 1e-7 relative
    if compressible:
        base = np.column_stack([FACTOR_X, _dummies(G % 3, 3)])
        outside = (F == 1) * (G % 3 == 2)  # an interaction: constant on the 12 distinct rows
    else:
        base = np.column_stack([FACTOR_X, X_COV])
        outside = X_COV**2
    v = base[:, 1] + 0.5 * base[:, -1] + delta * outside
    X = np.column_stack([base, v])
    ref = _relative_residual(base, v)
    assert (ref > 1e-7) == kept  # the construction is far from the tolerance on either side
    assert (_row_groups(X) is not None) == compressible
    keep, Q = _independent_columns(X)
    assert keep.tolist() == list(range(X.shape[1] if kept else X.shape[1] - 1))
    _check_basis(X, keep, Q)


def test_zero_column_and_more_columns_than_distinct_rows():
    X = np.column_stack([FACTOR_X, np.zeros(N), _dummies(F, 4, drop_first=False)])  # 4 distinct rows, 9 columns
    keep, Q = _independent_columns(X)
    assert keep.tolist() == [0, 1, 2, 3]
    _check_basis(X, keep, Q)


# ---- the response fitted exactly by X and one term ----------------------------------------------------------------
def _cases():
    b = RNG.normal(size=(9, 2))
    beta = RNG.normal(size=FACTOR_X.shape[1])
    exact_scalar = FACTOR_X @ beta + b[G, 0]
    inter = RNG.normal(size=(4, 9))[F, G]  # constant on the (F, G) groups, not additive
    exact_slope = 1.0 + 0.3 * X_COV + b[G, 0] + b[G, 1] * X_COV
    x0 = np.where(G == 0, 0.0, X_COV)  # level 0's slope column is all zero (a singular Gram block)
    return {
        # name: (X, term, y, exact?)
        "scalar, exact": (FACTOR_X, _term(G, np.ones(N)), exact_scalar, True),
        "scalar, exact to rounding": (FACTOR_X, _term(G, np.ones(N)),
                                      exact_scalar * (1 + 1e-15 * RNG.normal(size=N)), True),
        "scalar, 1e-8 off": (FACTOR_X, _term(G, np.ones(N)), exact_scalar + 1e-8 * RNG.normal(size=N), False),
        "scalar, constant on groups but not additive": (FACTOR_X, _term(G, np.ones(N)), inter, False),
        "scalar, tiny interaction": (FACTOR_X, _term(G, np.ones(N)), exact_scalar + 1e-9 * inter, False),
        "slope, exact": (np.column_stack([np.ones(N), X_COV]), _term(G, np.column_stack([np.ones(N), X_COV])),
                         exact_slope, True),
        "slope, 1e-8 off": (np.column_stack([np.ones(N), X_COV]), _term(G, np.column_stack([np.ones(N), X_COV])),
                            exact_slope + 1e-8 * RNG.normal(size=N), False),
        "slope only, zero column on a level, exact": (np.ones((N, 1)), _term(G, x0), 2.0 + b[G, 1] * x0, True),
        "slope only, zero column on a level, off": (np.ones((N, 1)), _term(G, x0),
                                                    2.0 + b[G, 1] * x0 + 1e-6 * (G == 0) * X_COV, False),
        "clearly not": (FACTOR_X, _term(G, np.ones(N)), RNG.normal(size=N), False),
    }


CASES = _cases()


@pytest.mark.parametrize("name", list(CASES))
def test_exact_fit(name):
    X, term, y, exact = CASES[name]
    ref = _relative_residual(np.column_stack([X, _z_dense(term)]), y)
    assert (ref <= 1e-12) == exact, ref  # the construction is far from the tolerance on either side
    assert _exact_fit(term, X, y, 1e-12) == exact


@pytest.mark.parametrize("scale", [1e-200, 1e200])
@pytest.mark.parametrize("name", ["scalar, exact", "scalar, 1e-8 off", "slope, exact", "clearly not"])
def test_exact_fit_on_extreme_scales(name, scale):
    X, term, y, exact = CASES[name]
    assert _exact_fit(term, X, scale * y, 1e-12) == exact


def test_exact_fit_general_path_agrees():
    # the same models with one continuous column added to X, so that no two rows are equal: the general path
    for name, (X, term, y, exact) in CASES.items():
        X2 = np.column_stack([X, X_COV**3])
        assert _row_groups(X2, term.codes, term.z) is None
        ref = _relative_residual(np.column_stack([X2, _z_dense(term)]), y)
        assert _exact_fit(term, X2, y, 1e-12) == (ref <= 1e-12), name


# ---- random effects confounded with X -----------------------------------------------------------------------------
@pytest.mark.parametrize("compressible", [True, False])
def test_confounded(compressible):
    X = FACTOR_X if compressible else np.column_stack([FACTOR_X, X_COV])
    _, Q = _independent_columns(X)
    inside = _term(F, np.ones(N), "f")  # every column of Z (one dummy per level of F) is in the span of X
    outside = _term(G, np.ones(N))
    assert np.all([_relative_residual(X, c) < 1e-12 for c in _z_dense(inside).T])
    assert _confounded(inside, Q)
    assert not _confounded(outside, Q)
    if compressible:  # Q's rows through X's groups of equal rows, as build_design passes them
        groups = _row_groups(X)
        keep, Qg = _independent_columns(X, groups=groups)
        assert _confounded(inside, Qg, groups) and not _confounded(outside, Qg, groups)


# ---- sums by level ------------------------------------------------------------------------------------------------
def test_sum_by_level_matches_a_plain_loop():
    left, right = RNG.normal(size=(N, 2)), RNG.normal(size=(N, 3))
    nlev = 11  # levels 9 and 10 have no rows
    ref = np.zeros((nlev, 2, 3))
    for i in range(N):
        ref[G[i]] += np.outer(left[i], right[i])
    np.testing.assert_allclose(sum_by_level(G, left, right, nlev), ref, rtol=1e-12, atol=1e-12)


def test_sum_by_level_through_groups_of_equal_rows():
    """right's rows taken from 4 distinct ones (a factor's dummies): the sum by (level, group) cells equals the
    plain loop, and so does Z'R by rows of the dense block."""
    distinct = RNG.normal(size=(4, 3))
    right, left = distinct[F], RNG.normal(size=(N, 2))
    groups = _row_groups(right)
    assert groups is not None and len(groups[1]) == 4
    ref = np.zeros((11, 2, 3))
    for i in range(N):
        ref[G[i]] += np.outer(left[i], right[i])
    np.testing.assert_allclose(sum_by_level(G, left, right, 11, groups), ref, rtol=1e-12, atol=1e-12)
    rows = np.stack([G, 11 + RNG.integers(0, 5, N)], axis=1)  # two D columns per row: one nonzero each
    zr = np.zeros((16, 3))
    for i in range(N):
        for a in range(2):
            zr[rows[i, a]] += left[i, a] * right[i]
    np.testing.assert_allclose(sum_by_row(rows, left, right, 16, groups), zr, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(sum_by_row(rows, left, right, 16), zr, rtol=1e-12, atol=1e-12)


def test_design_of_a_frame_uses_the_fast_path():
    # through build_design: a factor design with a rank-deficient column, its checks on the distinct rows
    from mixedjax.design.build import build_design

    df = pd.DataFrame({"y": RNG.normal(size=N), "f": pd.Categorical(F), "f2": pd.Categorical(F),
                       "g": pd.Categorical(G)})
    with pytest.warns(UserWarning, match="rank deficient so dropping 3 columns"):
        d = build_design("y ~ 1 + f + f2 + (1 | g)", df)
    assert d.xnames == ("(Intercept)", "f1", "f2", "f3")
    assert d.dropped_columns == ("f21", "f22", "f23")
    assert _row_groups(d.X) is not None


# ---- the response in the span of X ----------------------------------------------------------------------------------
@pytest.mark.parametrize("in_span", [True, False])
def test_span_residual_through_groups_of_equal_rows(in_span):
    """y − QQ'y computed through X's groups of equal rows (as build_design does) is the residual of least squares."""
    from mixedjax.design.build import _span_residual

    groups = _row_groups(FACTOR_X)
    _, Q = _independent_columns(FACTOR_X, groups=groups)
    y = FACTOR_X @ RNG.normal(size=FACTOR_X.shape[1]) + (0 if in_span else RNG.normal(size=N))
    r = _span_residual(Q, y, groups)
    want = y - FACTOR_X @ np.linalg.lstsq(FACTOR_X, y, rcond=None)[0]
    np.testing.assert_allclose(r, want, atol=1e-12 * np.linalg.norm(y))
    assert (np.linalg.norm(r) <= 1e-12 * np.linalg.norm(y)) == in_span
