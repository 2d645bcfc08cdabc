"""Binomial and Poisson mixed models with mj.glmm: the Laplace approximation, adaptive quadrature, predictions and
exact derivatives.

    python examples/glmm.py
"""

import numpy as np
import pandas as pd

import mixedjax as mj

# cbpp: contagious bovine pleuropneumonia, incidence out of herd size per period (lme4's example)
cbpp = mj.dataset("cbpp")
cbpp = cbpp.assign(herd=cbpp.herd.astype(str).astype("category"), period=cbpp.period.astype(str).astype("category"))

m = mj.glmm("cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)", cbpp, "binomial")
print(m)

# the same model by adaptive Gauss-Hermite quadrature with 9 nodes (one scalar random-effects term)
m9 = mj.glmm("cbind(incidence, size - incidence) ~ 1 + period + (1 | herd)", cbpp, "binomial", nagq=9)
print("\nnAGQ = 9: theta", np.round(m9.theta, 5), "fixef", np.round(m9.fixef.to_numpy(), 5))

# proportions with weights= the trials give the same fit as cbind
mp = mj.glmm("incidence / size ~ 1 + period + (1 | herd)", cbpp, "binomial", weights=cbpp["size"])
print("proportions + weights: same log-likelihood:", np.isclose(mp.loglik, m.loglik))

# a Poisson model of the counts with log(size) as offset
mpois = mj.glmm("incidence ~ 1 + period + (1 | herd)", cbpp, "poisson", offset=np.log(cbpp["size"]))
print("Poisson with offset: logLik", round(mpois.loglik, 4))

# predictions: on the response or link scale, with or without the random effects, for herds not in the fit
new = pd.DataFrame({"period": pd.Categorical(["1", "4"], categories=["1", "2", "3", "4"]), "herd": ["1", "new"]})
print("predict (response):", np.round(m.predict(new).to_numpy(), 5))
print("predict (link, re_form='~0'):", np.round(m.predict(new, type="link", re_form="~0").to_numpy(), 5))

# exact derivatives of the Laplace objective in (θ, β), by implicit differentiation through PIRLS
print("gradient at the fit:", np.array2string(m.gradient(), precision=2))
print("Hessian eigenvalues:", np.round(np.linalg.eigvalsh(m.hessian()), 3))
print("standard errors from it:", np.round(m.stderror.to_numpy(), 5))
