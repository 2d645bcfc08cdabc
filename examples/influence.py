"""The influence of each observation on β̂ by jax.jacrev (the infinitesimal jackknife): the derivative of β̂ with
respect to each observation's prior weight, at unit weights, exact by the implicit function theorem. Removing
observation i (wᵢ = 0) changes β̂ by about −dβ̂/dwᵢ; checked against the refit without it.

    python examples/influence.py
"""

import jax
import jax.numpy as jnp
import numpy as np

import mixedjax as mj

m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
f = m.fit_function()
y = jnp.asarray(m.problem.design.y)
w = jnp.ones(m.nobs)

# (p, n): column i is dβ̂/dwᵢ, one reverse pass per fixed effect
J = np.asarray(jax.jit(jax.jacrev(lambda w: f(y, w).beta))(w))
IJ = -J  # the infinitesimal jackknife's change of β̂ on deleting each observation
order = np.argsort(-np.abs(IJ[1]))
print("jacrev: influence on the days slope of the five most influential observations")
for i in order[:5]:
    wi = np.ones(m.nobs)
    wi[i] = 0.0
    exact = m.refit(np.asarray(y), weights=wi).fixef.to_numpy() - m.fixef.to_numpy()
    print(f"  row {i:3d} (subject {m.problem.design.terms[0].levels[m.problem.design.terms[0].codes[i]]}): "
          f"infinitesimal jackknife {IJ[1, i]:+.4f}, deleted and refitted {exact[1]:+.4f}")
print(f"most influential observation: row {order[0]}")
