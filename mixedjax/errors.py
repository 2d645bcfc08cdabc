"""Exception family raised by mixedjax for bad input or failed fits."""

from __future__ import annotations

__all__ = [
    "MixedjaxError",
    "FormulaError",
    "DataError",
    "FitError",
    "ArgumentError",
    "mark_formula",
    "mark_position",
]


class MixedjaxError(Exception):
    """Base class of every mixedjax error.

    Every error caused by bad input (formula, data, keyword arguments) or by a
    fit that cannot proceed is an instance of this class, so callers can catch
    ``MixedjaxError`` alone.  Each subclass also derives from the matching
    builtin (``ValueError``, ``TypeError``, ``RuntimeError``).  When the error
    was triggered by an exception from another library (formulaic, pandas,
    JAX, ...), that original exception is kept as ``__cause__``
    (``raise ... from err``).
    """


class FormulaError(MixedjaxError, ValueError):
    """The model formula cannot be parsed or is not supported."""


class DataError(MixedjaxError, ValueError):
    """The data are missing, malformed or inconsistent with the formula."""


class FitError(MixedjaxError, RuntimeError):
    """The model could not be fitted (e.g. the optimizer failed)."""


class ArgumentError(MixedjaxError, TypeError):
    """A keyword argument has a bad value or type."""


def mark_formula(formula: str, part: str, start: int = 0) -> str:
    """Return ``formula`` with a second line of ``^`` under the first ``part`` at or after index ``start``.

    If ``part`` is empty or does not occur there, return ``formula``.
    """
    i = formula.find(part, start) if part else -1
    if i < 0 and start:
        i = formula.find(part)
    if i < 0:
        return formula
    return f"{formula}\n{' ' * i}{'^' * len(part)}"


def mark_position(formula: str, i: int, width: int = 1) -> str:
    """Return ``formula`` with a second line marking ``width`` characters from index ``i``."""
    return f"{formula}\n{' ' * i}{'^' * max(width, 1)}"


class UnknownFunctionError(FormulaError, DataError):
    """A formula calls a function outside the allow-list (a FormulaError; also a DataError, as an unknown name is)."""
