"""The host build's fast paths give what the general computations give (issue 14, docs/performance.md "The host
build (fourth pass)"): X's groups of equal rows from factor codes, the sorted packings, the unique keys and levels,
the term-0 representatives, the cached parse, and the imports left to first use."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import mixedjax as mj
from mixedjax.blocks.plan import _representatives, _sort, sorted_unique
from mixedjax.design.build import _factor_row_groups, _groups_of_key, build_design
from mixedjax.errors import FormulaError
from mixedjax.formula.parse import parse_formula
from mixedjax.formula.values import used_codes


def _equal_row_partition(X):
    """numpy's grouping of equal rows, renumbered by first appearance, and the last row of each group."""
    _, inv = np.unique(X, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    _, first = np.unique(inv, return_index=True)
    number = np.empty(len(first), dtype=np.int64)
    number[np.argsort(first, kind="stable")] = np.arange(len(first))
    group = number[inv]
    last = np.empty(len(first), dtype=np.int64)
    last[group] = np.arange(len(X))
    return group, last


@pytest.fixture(scope="module")
def frame():
    df = mj.dataset("sleepstudy")
    rng = np.random.default_rng(3)
    return df.assign(h=(df["days"] % 3).astype(str), k=(df["days"] % 2).astype(str),
                     x=rng.integers(0, 5, len(df)).astype(float))


@pytest.mark.filterwarnings("ignore:fixed-effect model matrix is rank deficient")
@pytest.mark.parametrize("fixed", ["1 + h * k", "h:k", "0 + h:k", "h + h:k", "1", "0 + h", "h * x"])
def test_x_groups_are_the_equal_rows(frame, fixed):
    """Whatever the coding (contrasts, indicators, interactions whose combinations give equal rows, a numeric
    column), the design's groups are numpy's partition of X into equal rows, numbered by first appearance."""
    d = build_design(f"reaction ~ {fixed} + (1 | subj)", frame)
    assert d.xgroups is not None
    group, rep = d.xgroups
    want_group, want_last = _equal_row_partition(d.X)
    np.testing.assert_array_equal(group, want_group)
    np.testing.assert_array_equal(rep, want_last)


def test_factor_groups_fall_back_when_combinations_share_a_row():
    """h:k coded by contrasts in both factors gives the zero row for every combination with a first level: the
    codes alone would split those rows, so the groups come from the rows."""
    from mixedjax.design.model_matrix import CONTRASTS, TermCoding, build_columns
    from mixedjax.formula.values import Factor

    rng = np.random.default_rng(4)
    values = {"h": Factor(rng.integers(0, 3, 200), ("a", "b", "c"), True),
              "k": Factor(rng.integers(0, 2, 200), ("u", "v"), True)}
    terms = (TermCoding((), ()), TermCoding(("h", "k"), (CONTRASTS, CONTRASTS)))
    X, _ = build_columns(terms, values, {"h": "h", "k": "k"}, {"h": (), "k": ()}, 200)
    group, last = _factor_row_groups(X, terms, values)
    want_group, want_last = _equal_row_partition(X)
    assert len(last) == 3  # the zero row, b:v and c:v
    np.testing.assert_array_equal(group, want_group)
    np.testing.assert_array_equal(last, want_last)


def test_groups_of_key_number_by_first_appearance():
    key = np.array([5, 3, 5, 9, 3, 3, 0])
    group, last = _groups_of_key(key)
    np.testing.assert_array_equal(group, [0, 1, 0, 2, 1, 1, 3])
    np.testing.assert_array_equal(last, [2, 5, 3, 6])


@pytest.mark.parametrize("n, top", [(1, 1), (1000, 10), (5000, 2**40), (3000, 2**52)])
def test_sort_is_a_stable_argsort(n, top):
    """Every packing (shifts, products, the argsort fallback for keys too large to pack) sorts equal keys by their
    position, as a stable argsort does."""
    key = np.random.default_rng(n).integers(0, top, n)
    order, skey = _sort(key)
    want = np.argsort(key, kind="stable")
    if top < 2**52:
        np.testing.assert_array_equal(order, want)
    np.testing.assert_array_equal(skey, key[want])
    np.testing.assert_array_equal(key[order], skey)


def test_sorted_unique_and_used_codes_are_numpys():
    a = np.random.default_rng(1).integers(0, 500, 4000)
    np.testing.assert_array_equal(sorted_unique(a), np.unique(a))
    assert len(sorted_unique(a[:0])) == 0
    codes = np.where(a % 7 == 0, -1, a)
    np.testing.assert_array_equal(used_codes(codes, 500), np.unique(codes[codes >= 0]))


def test_scalar_representatives_are_the_first_equal_level():
    v = np.random.default_rng(2).integers(1, 6, 300).astype(float).reshape(-1, 1, 1)
    _, first, same = np.unique(v.reshape(300, -1), axis=0, return_index=True, return_inverse=True)
    np.testing.assert_array_equal(_representatives(v, True), first[same.reshape(-1)])
    np.testing.assert_array_equal(_representatives(v, False), np.arange(300))


def test_parse_is_cached_and_errors_are_raised_each_time():
    f = "reaction ~ 1 + days + (1 + days | subj)"
    assert parse_formula(f) is parse_formula(f)
    for _ in range(2):
        with pytest.raises(FormulaError):
            parse_formula("reaction 1 + days")


def test_import_leaves_optional_parts_for_first_use():
    """`import mixedjax` imports neither optax (the loop's L-BFGS, needed only to trace it) nor the profile, the
    likelihood-ratio tests or the batched fits; the names still resolve."""
    code = ("import sys, mixedjax as mj\n"
            "lazy = ['optax', 'mixedjax.inference.profile', 'mixedjax.inference.lrt', 'mixedjax.batch.many']\n"
            "print([m for m in lazy if m in sys.modules])\n"
            "print(mj.anova.__name__, mj.fit_many.__name__, mj.Profile.__name__, mj.FitBatch.__name__)\n"
            "print(sorted(set(mj.__all__) - set(dir(mj))))\n"
            "import jax; print(jax.config.jax_enable_x64)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={k: v for k, v in __import__("os").environ.items() if k != "JAX_ENABLE_X64"})
    lines = out.stdout.splitlines()
    assert lines == ["[]", "anova fit_many Profile FitBatch", "[]", "True"]


def test_problem_arrays_stay_on_the_host_until_asked_for():
    """A fit reads the Problem's host arrays (read-only numpy, no device_put); `arrays`, `plan` and `data` are
    moved to the device on first access, once, with the same values, also when first asked for inside a trace."""
    import dataclasses

    import jax

    df = mj.dataset("sleepstudy")
    m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", df)
    p = m.problem
    str(m)  # the printout reads the fit's estimates, not the arrays
    assert not any(k.startswith("_device_") for k in vars(p))
    leaves = jax.tree_util.tree_leaves(p.host)
    arrays = [x for x in leaves if isinstance(x, np.ndarray)]
    assert len(arrays) > 20 and not any(x.flags.writeable for x in arrays)
    assert all(isinstance(x, (np.ndarray, np.generic)) for x in leaves)
    # inside a trace the first access gives concrete device arrays, kept for later calls (no leaked tracer)
    q = mj.Problem.build("reaction ~ 1 + days + (1 + days | subj)", df)
    total = jax.jit(lambda t: t * q.plan.drow.sum() + q.data.y.sum())(1.0)
    assert float(total) == pytest.approx(float(np.sum(q.host.plan.drow) + np.sum(q.host.data.y)))
    assert isinstance(q.plan.drow, jax.Array) and q.plan is q.plan
    for a, b in zip(jax.tree_util.tree_leaves(q.arrays), jax.tree_util.tree_leaves(q.host.arrays)):
        np.testing.assert_array_equal(np.asarray(a), b)
    # dataclasses.replace sets the fields like __init__ (batch.refit replaces arrays and data)
    r = dataclasses.replace(q, arrays=q.host.arrays)
    assert r.host.arrays is q.host.arrays and isinstance(r.arrays.ADD, jax.Array)
    assert float(mj.deviance(m.theta, p.arrays, p.layout)) == pytest.approx(m.objective, rel=1e-12)


@pytest.mark.parametrize("formula", ["reaction ~ 1 + days + num + (1 | subj)", "reaction ~ 1 + h + (1 | g) + (1 | h:k)",
                                     "reaction ~ 1 + days + (1 + days | subj)"])
def test_design_without_a_frame_is_the_frames(frame, formula):
    """While every row is kept the design reads the selected columns without making a DataFrame (build._Columns);
    with a row to drop it makes one. Both give the same design: the same rows plus one with a missing response
    (dropped) build the same arrays, levels and names, with an unused category, an object column of numbers and
    text grouping columns among the columns."""
    df = frame.assign(num=frame["x"].astype(object), g=frame["subj"].astype(str))
    df = df[df["subj"] != df["subj"].iloc[0]]  # the first subject's category is unused
    extra = df.iloc[:1].assign(reaction=np.nan)
    with_missing = pd.concat([df, extra.set_axis([10_000], axis=0)])
    a, b = build_design(formula, df), build_design(formula, with_missing)
    assert b.n_dropped == 1 and a.n_dropped == 0
    for x, y in ((a.X, b.X), (a.y, b.y), (a.rows, b.rows)):
        np.testing.assert_array_equal(x, y)
    assert a.xnames == b.xnames
    for s, t in zip(a.terms, b.terms):
        assert (s.name, s.levels, s.values, s.columns) == (t.name, t.levels, t.values, t.columns)
        np.testing.assert_array_equal(s.codes, t.codes)
        np.testing.assert_array_equal(s.z, t.z)


def _pairs_by_loops(rows, cols, stride, rowblock):
    """Every pair (i1, i2) of one column with rows[i1] >= rows[i2], mirrored within a level block, by loops; sorted
    by (slot, i1)."""
    out = []
    for i1 in range(len(rows)):
        for i2 in range(len(rows)):
            if cols[i1] == cols[i2] and rows[i1] >= rows[i2]:
                out.append((rows[i2] * stride + rows[i1], i1, i2))
                if rowblock is not None and rows[i1] != rows[i2] and rowblock[rows[i1]] == rowblock[rows[i2]]:
                    out.append((rows[i1] * stride + rows[i2], i1, i2))
    out.sort()
    return [np.array([o[j] for o in out], dtype=np.int64) for j in (1, 2, 0)]


@pytest.mark.parametrize("mirror", [False, True])
@pytest.mark.parametrize("key_bits", [63, 8])
def test_sorted_pairs_are_every_pair_in_slot_order(monkeypatch, mirror, key_bits):
    """The packed key and the two-field sort it falls back to (too many bits) give every pair, sorted alike."""
    import mixedjax.blocks.plan as plan

    monkeypatch.setattr(plan, "KEY_BITS", key_bits)
    rng = np.random.default_rng(5 + mirror)
    keys = np.unique(rng.integers(0, 12, 90) * 30 + rng.integers(0, 30, 90))  # (column, row), sorted, distinct
    cols, rows = keys // 30, keys % 30
    rowblock = np.repeat(np.arange(15) * 2, 2) if mirror else None
    got = plan._sorted_pairs(rows, cols, 31, rowblock)
    for g, w in zip(got, _pairs_by_loops(rows, cols, 31, rowblock)):
        np.testing.assert_array_equal(g, w)


def test_columns_by_representative_keep_their_order():
    """Entries grouped by column are put by their column's representative, columns and rows otherwise in order:
    a stable sort by the representative."""
    from mixedjax.blocks.plan import _by_representative

    rng = np.random.default_rng(7)
    cols = np.sort(rng.integers(0, 40, 300))
    rep = rng.integers(0, 6, 40)
    np.testing.assert_array_equal(_by_representative(cols, rep), np.argsort(rep[cols], kind="stable"))
