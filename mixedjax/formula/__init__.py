"""Formulas: lme4's syntax, read as data (an allow-list evaluator of our own), never as Python code."""

from .evaluate import evaluate

__all__ = ["evaluate"]
