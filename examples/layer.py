"""A mixed model as a layer inside a larger JAX computation: the Box-Cox transformation of the response chosen by
maximum likelihood, where the likelihood of each candidate transformation is a fitted mixed model, and the loss is
differentiated end to end through the fit (jax.grad; derivatives by the implicit function theorem).

    python examples/layer.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import mixedjax as mj

m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
f = m.fit_function()
y = jnp.asarray(m.problem.design.y)
logy = jnp.log(y)
gm = jnp.exp(jnp.mean(logy))  # the geometric mean: the normalised transformation keeps the units of y


def boxcox(lam):
    """(y^λ − 1) / (λ g^(λ−1)); its Jacobian is 1 on average, so fitted deviances compare across λ."""
    return (jnp.exp(lam * logy) - 1) / (lam * gm ** (lam - 1))


def loss(lam):
    """-2 log-likelihood of the untransformed y under the model for the transformed one."""
    return f(boxcox(lam)).objective


value_and_grad = jax.jit(jax.value_and_grad(loss))  # one compiled program serves every call below
# the secant method on the gradient (the fit's derivatives are exact to first order; see docs/batched.md)
g1 = value_and_grad(1.0)[1]
lam_old, g_old = 1.0, g1
lam = 0.9
for step in range(12):
    v, g = value_and_grad(lam)
    print(f"step {step}: λ = {lam:.5f}, loss {float(v):.4f}, grad {float(g):+.3e}")
    if abs(float(g)) < 1e-5:
        break
    lam, lam_old, g_old = lam - float(g) * (lam - lam_old) / (float(g) - float(g_old)), lam, g
print(f"Box-Cox λ̂ = {lam:.4f}")
# the derivative through the fit against a central difference of refitted losses, at λ = 1 (no transformation)
eps = 1e-4
fd = (float(value_and_grad(1.0 + eps)[0]) - float(value_and_grad(1.0 - eps)[0])) / (2 * eps)
print(f"at λ = 1: grad {float(g1):+.6e}, central difference {fd:+.6e}")
