"""Many fits in one compiled call: simulate, refit, fit_many, the parametric bootstrap and derivatives of a fit."""
