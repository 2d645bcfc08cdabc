"""The seed walkthrough: dyestuff, dyestuff2, sleepstudy and insteval, as in the MixedModels.jl documentation.

Run: python examples/seed_walkthrough.py   (MIXEDJAX_EXAMPLES_QUICK=1 skips the large insteval fit)
"""

import os
import time

import mixedjax as mj

QUICK = os.environ.get("MIXEDJAX_EXAMPLES_QUICK") == "1"


def timed(formula, data, **kw):
    t0 = time.perf_counter()
    m = mj.lmm(formula, data, **kw)
    print(f"[fit in {time.perf_counter() - t0:.2f} s]")
    return m


print("== dyestuff, maximum likelihood ==")
dyestuff = mj.dataset("dyestuff")
print(dyestuff.head())
fm1 = timed("yield ~ 1 + (1 | batch)", dyestuff)
print(fm1)
print("fixef:", fm1.fixef.to_dict())
print("ranef (b scale):\n", fm1.ranef()["batch"])
print("ranef (u scale):\n", fm1.ranef(uscale=True)["batch"])
print("deviance:", round(fm1.deviance, 6), " theta:", fm1.theta, " sigma:", round(fm1.sigma, 6))

print("\n== dyestuff, REML, verbose ==")
fm1r = timed("yield ~ 1 + (1 | batch)", dyestuff, reml=True, verbose=True)
print(fm1r)
print(fm1r.optsum)
print("fit log (θ, objective):")
for theta, value in fm1r.optsum.fitlog:
    print(f"  {list(map(float, theta))}  {value:.6f}")

print("\n== dyestuff2: a singular fit ==")
fm2 = timed("yield ~ 1 + (1 | batch)", mj.dataset("dyestuff2"))
print(fm2)
print("is_singular:", fm2.is_singular, " gradient:", fm2.gradient(), " hessian:", fm2.hessian())

print("\n== sleepstudy: vector-valued random effects ==")
fm3 = timed("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
print(fm3)
print(fm3.coeftable())
print(fm3.varcorr)
print("first rows of ranef:\n", fm3.ranef()["subj"].head())

if QUICK:
    print("\n== insteval skipped (MIXEDJAX_EXAMPLES_QUICK=1) ==")
else:
    print("\n== insteval: crossed random effects, 73,421 observations ==")
    fm4 = timed("y ~ 1 + service * dept + (1 | s) + (1 | d)", mj.dataset("insteval"))
    print(fm4)
    print("ngroups:", fm4.ngroups, " evaluations:", fm4.optsum.feval)
