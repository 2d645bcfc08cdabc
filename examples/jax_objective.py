"""The objective as a pure JAX function of θ: jit it, differentiate it, vmap it over many θ."""

import jax
import jax.numpy as jnp
import numpy as np

import mixedjax as mj

np.set_printoptions(precision=6, linewidth=110)

# -- dyestuff: a profile-like curve of d(θ) over a grid of θ -------------------------------------------------------
m = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff"))
f = m.objective_function()  # profiled d(θ); m.objective_function(profiled=False) gives the fixed-σ one
print("fitted θ:", m.theta, " d(θ̂):", m.objective)
print("f(θ̂) =", float(f(jnp.asarray(m.theta))))

fj = jax.jit(f)
print("jit(f)([0.5]) =", float(fj(jnp.array([0.5]))))
print("grad(f)([0.5]) =", jax.grad(f)(jnp.array([0.5])))

grid = jnp.linspace(0.0, 2.0, 21)[:, None]  # 21 values of the single θ
curve = jax.vmap(fj)(grid)
print("\nθ       d(θ) - d(θ̂)")
for th, v in zip(np.asarray(grid[:, 0]), np.asarray(curve)):
    print(f"{th:4.1f}  {v - m.objective:12.4f}  " + "*" * min(60, int(round((v - m.objective) * 4))))

# -- sleepstudy: the pure function with explicit arrays -------------------------------------------------------------
problem = mj.Problem.build("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
arrays, layout = problem.arrays, problem.layout
print("\nsleepstudy: θ has", layout.ntheta, "entries; arrays:", ", ".join(arrays._fields))


@jax.jit
def dev(theta):
    return mj.deviance(theta, arrays, layout, False)  # layout is static: closed over, not traced


theta0 = jnp.array([1.0, 0.0, 1.0])
print("d([1, 0, 1]) =", float(dev(theta0)))
print("value_and_grad:", jax.value_and_grad(dev)(theta0))

batch = theta0 + 0.1 * jax.random.normal(jax.random.PRNGKey(0), (8, 3))
values = jax.vmap(dev)(batch)
print("vmap over a batch of 8 θ:")
for th, v in zip(np.asarray(batch), np.asarray(values)):
    print(f"  {th}  {v:.4f}")

# the fitted model's θ minimises the same function
m3 = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
print("d(θ̂) via mj.deviance:", float(dev(jnp.asarray(m3.theta))), " model objective:", m3.objective)
