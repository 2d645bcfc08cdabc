"""Inference for fitted linear mixed models: Satterthwaite and Kenward–Roger degrees of freedom, t and F tests per
term, contrasts, likelihood-ratio tests, profile likelihood, confidence intervals and conditional variances.

Everything is computed from the pure JAX objective and its exact derivatives (no finite differences).
"""
