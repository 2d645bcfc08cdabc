"""fitting.loop.lbfgs_direction, the loop's L-BFGS directions, against a plain numpy two-loop recursion (Nocedal &
Wright, Numerical Optimization, Algorithm 7.4) over the same pairs, including a memory that has wrapped round."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mixedjax.fitting.loop import lbfgs_direction, memory_init


def _two_loop(g, pairs, gamma):
    """H g for the pairs (s, y), oldest first, with H₀ = γ I; pairs with s'y = 0 are skipped."""
    q, alphas = g.copy(), []
    for s, y in reversed(pairs):
        rho = 0.0 if s @ y == 0 else 1.0 / (s @ y)
        a = rho * (s @ q)
        alphas.append(a)
        q = q - a * y
    r = gamma * q
    for (s, y), a in zip(pairs, reversed(alphas)):
        rho = 0.0 if s @ y == 0 else 1.0 / (s @ y)
        r = r + (a - rho * (y @ r)) * s
    return r


@pytest.mark.parametrize("m, steps", [(5, 3), (5, 13), (10, 10)])
def test_direction_is_the_two_loop_recursion(m, steps):
    rng = np.random.default_rng(m * 100 + steps)
    n = 4
    A = rng.normal(size=(n, n))
    A = A @ A.T + n * np.eye(n)  # a convex quadratic: every pair has s'y > 0
    step = jax.jit(lbfgs_direction)
    mem = memory_init(jnp.zeros(n), m)
    xs = [rng.normal(size=n) for _ in range(steps)]
    for k, x in enumerate(xs):
        g = A @ x
        d, mem = step(jnp.asarray(g), mem, jnp.asarray(x))
        pairs = [(xs[i + 1] - xs[i], A @ (xs[i + 1] - xs[i])) for i in range(max(0, k - m), k)]
        if k == 0:
            want = min(1.0, 1.0 / np.linalg.norm(g)) * g
        else:
            s, y = pairs[-1]
            want = _two_loop(g, pairs, (s @ y) / (y @ y))
        np.testing.assert_allclose(np.asarray(d), want, rtol=1e-12, atol=1e-14 * np.abs(want).max())
    assert int(mem.count) == steps
