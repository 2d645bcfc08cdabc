"""Prediction, residuals and influence of fitted models (issue 17)."""
