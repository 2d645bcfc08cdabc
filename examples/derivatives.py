"""Exact gradients and Hessians of the objective in θ, checked against central finite differences.

Two objectives: the fixed-σ one (σ held at its fitted value; what MixedModels.jl's ForwardDiff extension
differentiates) and the profiled d(θ) the optimiser minimises. Their gradients agree at the optimum; their Hessians
do not.
"""

import numpy as np

import mixedjax as mj

np.set_printoptions(precision=6, suppress=False, linewidth=110)


def central_diff(f, theta, h=1e-5):
    theta = np.asarray(theta, dtype=float)
    g = np.empty_like(theta)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = h
        g[i] = (float(f(theta + e)) - float(f(theta - e))) / (2 * h)
    return g


m = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
print(m.formula)
print("theta at the fit:", m.theta)

print("\n-- at the fit --")
print("gradient, fixed-σ:  ", m.gradient())
print("gradient, profiled: ", m.gradient(profiled=True))
H, Hp = m.hessian(), m.hessian(profiled=True)
print("Hessian, fixed-σ:\n", H)
print("Hessian, profiled:\n", Hp)
print("eigenvalues, fixed-σ: ", np.linalg.eigvalsh(H))
print("eigenvalues, profiled:", np.linalg.eigvalsh(Hp))

theta1 = np.array([0.8, 0.1, 0.3])
print(f"\n-- at another θ = {theta1} --")
for profiled in (False, True):
    name = "profiled" if profiled else "fixed-σ"
    exact = m.gradient(theta1, profiled=profiled)
    numeric = central_diff(m.objective_function(profiled), theta1)
    print(f"{name} gradient, jax.grad:      ", exact)
    print(f"{name} gradient, central diff.: ", numeric)
    err = np.max(np.abs(exact - numeric) / np.maximum(1.0, np.abs(exact)))
    print(f"{name} max relative difference:  {err:.2e}")
    assert err < 1e-5, err
    print(f"{name} Hessian eigenvalues:      ", np.linalg.eigvalsh(m.hessian(theta1, profiled=profiled)))

print("\n-- dyestuff2 (singular fit: θ = 0) --")
m2 = mj.lmm("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
print("theta:", m2.theta, " gradient:", m2.gradient(), " Hessian:", m2.hessian())
