"""The device assembly (blocks/assembly.py) against the host path (blocks/plan.py) on every block kind, with and
without weights; re-assembly for a new response without host work."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import mixedjax as mj
import mixedjax.blocks.plan as plan_mod
import mixedjax.model.problem as problem_mod
from mixedjax.blocks.assembly import assemble, with_response
from mixedjax.errors import ArgumentError

from test_objective import KINDS, _DEV, dense_deviance, make_case, random_thetas

_ASSEMBLE = jax.jit(assemble, static_argnames="layout")
_WITH_Y = jax.jit(with_response, static_argnames="layout")


def assert_same_arrays(a, b, rtol=1e-10):
    """Leaf by leaf: integer leaves equal, float leaves equal to rtol of the leaf's largest entry."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        assert x.shape == y.shape and x.dtype == y.dtype
        if x.dtype.kind in "iu":
            np.testing.assert_array_equal(x, y)
        elif x.size:
            np.testing.assert_allclose(x, y, rtol=0, atol=rtol * max(1.0, float(np.max(np.abs(y)))))


def _weights(n, seed):
    return np.random.default_rng(seed).uniform(0.3, 3.0, n)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_assemble_equals_host_blocks(kind, weighted):
    """Every block assembled on the device from the data equals the host's, for a plan that keeps term 0's pairs."""
    formula, df = make_case(kind, 0)
    w = _weights(len(df), 1) if weighted else None
    host = mj.Problem.build(formula, df, weights=w, merge=False)
    # start from other numbers (unit weights, another response) so that nothing is copied through
    other = mj.Problem.build(formula, df.assign(y=df["y"] * 3 + 1), merge=False)
    got = _ASSEMBLE(host.plan, other.arrays, host.data, layout=host.layout)
    assert_same_arrays(got, host.arrays)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fill", ["auto", "pairs"])
def test_with_response_equals_rebuild(kind, fill):
    """A new response re-assembled on the device equals a full host rebuild, merged plans included."""
    formula, df = make_case(kind, 0)
    w = _weights(len(df), 2)
    base = mj.Problem.build(formula, df, weights=w, fill=fill)
    y2 = np.random.default_rng(3).normal(size=len(df)) * 5 + 2
    rebuilt = mj.Problem.build(formula, df.assign(y=y2), weights=w, fill=fill)
    got = _WITH_Y(base.plan, base.arrays, base.data, jnp.asarray(y2), layout=base.layout)
    assert_same_arrays(got, rebuilt.arrays)


def test_merge_under_non_uniform_weights():
    """Term-0 levels are merged when their weighted Gram blocks are equal: unit weights merge levels of equal size,
    non-uniform weights make the blocks differ (fewer merges), and either way the objective equals the dense one.
    A merged plan refuses to assemble new weights (its grouping belongs to the weights it was built with)."""
    formula, df = make_case("crossed", 0)
    plain = mj.Problem.build(formula, df, fill="pairs")
    w = _weights(len(df), 4)
    weighted = mj.Problem.build(formula, df, weights=w, fill="pairs")
    unmerged = mj.Problem.build(formula, df, weights=w, fill="pairs", merge=False)
    n_plain, n_w, n_un = (len(p.arrays.fill[0].pcol) for p in (plain, weighted, unmerged))
    assert n_plain < n_w <= n_un == plain.layout.npairs[0]
    sw = np.sqrt(w)
    for th in random_thetas(weighted, seed=5):
        ref = dense_deviance(_scaled_design(weighted.design, sw), th, False) - np.sum(np.log(w))
        for p in (weighted, unmerged):
            assert float(_DEV(jnp.asarray(th), p.arrays, p.layout, False)) == pytest.approx(ref, rel=1e-10)
    with pytest.raises(ArgumentError, match="merge=False"):
        assemble(weighted.plan, weighted.arrays, weighted.data, weighted.layout)


def _scaled_design(design, sw):
    """The design with z, X and y multiplied by √w: the weighted problem as an unweighted one."""
    import dataclasses

    terms = tuple(dataclasses.replace(t, z=t.z * sw[:, None]) for t in design.terms)
    return dataclasses.replace(design, X=design.X * sw[:, None], y=design.y * sw, terms=terms, weights=None)


@pytest.mark.parametrize("kind", ["scalar", "nested_vector", "vector_crossed_scalar"])
@pytest.mark.parametrize("reml", [False, True])
def test_weighted_deviance_equals_dense(kind, reml):
    """d(θ) with prior weights is the dense deviance of the √w-scaled problem minus Σ log wᵢ (lme4's)."""
    formula, df = make_case(kind, 1)
    w = _weights(len(df), 6)
    p = mj.Problem.build(formula, df, weights=w)
    for th in random_thetas(p, seed=2):
        ref = dense_deviance(_scaled_design(p.design, np.sqrt(w)), th, reml) - np.sum(np.log(w))
        assert float(_DEV(jnp.asarray(th), p.arrays, p.layout, reml)) == pytest.approx(ref, rel=1e-10)


def test_new_response_needs_no_host_work(monkeypatch):
    """After the build, new responses are assembled and their objective evaluated on the device: the host
    assembly is never called again, and the jitted re-assembly traces once for any number of responses."""
    formula, df = make_case("nested_plus_crossed", 0)
    p = mj.Problem.build(formula, df)
    traces = []

    def objective(y, theta):
        traces.append(1)
        return mj.deviance(theta, with_response(p.plan, p.arrays, p.data, y, p.layout), p.layout)

    def boom(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("host assembly called")

    monkeypatch.setattr(plan_mod, "build_blocks", boom)
    monkeypatch.setattr(problem_mod, "build_blocks", boom)
    f = jax.jit(objective)
    th = jnp.asarray(random_thetas(p, seed=0)[0])
    rng = np.random.default_rng(0)
    for _ in range(3):
        f(jnp.asarray(rng.normal(size=p.design.n)), th)
    assert len(traces) == 1
    Y = jnp.asarray(rng.normal(size=(4, p.design.n)))
    batched = jax.vmap(f, in_axes=(0, None))(Y, th)
    single = [float(f(y, th)) for y in Y]
    np.testing.assert_allclose(np.asarray(batched), single, rtol=1e-12)


def test_gradient_in_the_response_matches_differences():
    """d(θ; y) is differentiable in y through the assembly: jax.grad against central differences."""
    formula, df = make_case("vector_crossed_scalar", 0)
    p = mj.Problem.build(formula, df)
    th = jnp.asarray(random_thetas(p, seed=1)[0])

    def dev(y):
        return mj.deviance(th, with_response(p.plan, p.arrays, p.data, y, p.layout), p.layout)

    y0 = np.asarray(p.data.y)
    g = np.asarray(jax.jit(jax.grad(dev))(jnp.asarray(y0)))
    for i in (0, 7, len(y0) - 1):
        assert g[i] == pytest.approx(_richardson(jax.jit(dev), y0, i, 1e-3 * np.std(y0)), rel=1e-7, abs=1e-9)


def test_gradient_in_the_weights_matches_differences():
    """Through assemble, d(θ; w) is differentiable in the prior weights."""
    formula, df = make_case("crossed", 2)
    w0 = _weights(len(df), 8)
    p = mj.Problem.build(formula, df, weights=w0, merge=False)
    th = jnp.asarray(random_thetas(p, seed=4)[0])

    def dev(w):
        return mj.deviance(th, assemble(p.plan, p.arrays, p.data._replace(weights=w), p.layout), p.layout)

    g = np.asarray(jax.jit(jax.grad(dev))(jnp.asarray(w0)))
    # h = 1e-2: at 1e-3 the differences of d (about 1,100, rounding near 1e-13 relative) vary by 1e-7 relative
    # with the order of the sums (the assembly's w z z' against √w z √w z'); Richardson's O(h⁴) error is below 1e-8
    for i in (1, 20, len(w0) - 2):
        assert g[i] == pytest.approx(_richardson(jax.jit(dev), w0, i, 1e-2), rel=1e-7, abs=1e-9)


def _richardson(f, x0, i, h):
    """∂f/∂x_i by central differences at h and 2h, extrapolated (error O(h⁴))."""
    def at(step):
        x = x0.copy()
        x[i] += step
        return float(f(jnp.asarray(x)))

    return (8 * (at(h) - at(-h)) - (at(2 * h) - at(-2 * h))) / (12 * h)
