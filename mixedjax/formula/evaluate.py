"""Evaluate a checked expression of the formula language against a table of data, by walking its tree.

``evaluate(expr, data)`` is the public entry point. Inside the package, :func:`run` evaluates in one of two modes:
"fit" records the state of stateful functions (levels, ``poly`` and ``scale`` coefficients) computed on the fit's
data, "apply" replays that state on new data, so that prediction encodes new rows exactly as the fit did.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError
from .functions import FUNCTIONS, Listed, logical, numeric
from .language import Binary, Checked, Const, Name, Node, Unary, compile_expression, deparse, names_used
from .values import (Factor, Matrix, Value, column_value, factor_of, level_name, missing_rows, recode,
                     recode_by_value)

_CONSTANTS = {"pi": float(np.pi), "T": True, "F": False}


class Recorded(NamedTuple):
    """The state of an expression's stateful calls on the fit's data, in evaluation order."""

    states: tuple


class _Context:
    """What one evaluation needs: the data, the mode and the recorded state."""

    def __init__(self, data: pd.DataFrame, text: str, recorded: Recorded | None):
        self.data, self.text = data, text
        self.n = len(data)
        self.fitting = recorded is None
        self.states = [] if recorded is None else list(recorded.states)
        self.pos = 0

    def remember(self, compute):
        """The state of the next stateful call: computed now (fit) or the fit's (apply)."""
        if self.fitting:
            value = compute()
            self.states.append(value)
            return value
        value = self.states[self.pos]
        self.pos += 1
        return value

    def known_levels(self, f: Factor, what: str) -> Factor:
        """In new data, a value that was not a level in the fit is an error naming it."""
        if (f.codes == -2).any():
            raise DataError(f"'{what}' has values in the new data that are not levels in the fit "
                            f"(levels: {', '.join(f.levels[:20])}{', ...' if len(f.levels) > 20 else ''}); "
                            "predict only for levels the model was fitted to")
        return f

    def column(self, name: str) -> Value:
        if name not in self.data.columns:
            if name in _CONSTANTS:
                return _CONSTANTS[name]
            raise DataError(f"column '{name}' is not found in the data (used in '{self.text}')")
        col = self.data[name]
        if isinstance(col, pd.DataFrame):
            raise DataError(f"the data have more than one column named '{name}'; rename them")
        v = column_value(col)
        # every lookup records the column's levels (None for numbers), so new data are matched to the fit's
        levels = self.remember(lambda: v.levels if isinstance(v, Factor) else None)
        if levels is None:
            if isinstance(v, Factor):
                v = self._numbers_from_text(v, name)  # new data: numbers stored as text
            return v
        if self.fitting:
            return recode(v, levels)
        # new data: levels matched by value, whatever the column's dtype (3, 3.0 and "3" are one level)
        f = v if isinstance(v, Factor) else factor_of(v)._replace(from_text=True)
        return self.known_levels(recode_by_value(f, levels), name)

    @staticmethod
    def _numbers_from_text(f: Factor, name: str) -> np.ndarray:
        try:
            as_num = np.array([float(lv) for lv in f.levels] + [np.nan])
        except ValueError:
            raise DataError(f"column '{name}' held numbers in the fit but holds text in the new data") from None
        return as_num[np.where(f.codes >= 0, f.codes, len(f.levels))]


_ARITH = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "^": np.power, "%/%": np.floor_divide,
          "%%": np.mod}
_COMPARE = {"==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
            ">=": np.greater_equal}


def _factor_compare(op: str, f: Factor, other, what: str):
    if op not in ("==", "!="):
        raise FormulaError(f"'{what}' compares a factor by order; only == and != compare a factor with a level")
    if isinstance(other, Factor):
        raise FormulaError(f"'{what}' compares two factors; compare a factor with a level, e.g. f == \"A\"")
    if isinstance(other, np.ndarray):
        raise FormulaError(f"'{what}' compares a factor with numbers; compare it with a level, e.g. f == \"A\"")
    name = other if isinstance(other, str) else level_name(other)
    hit = np.array([lv == name for lv in f.levels] + [False])[np.where(f.codes >= 0, f.codes, len(f.levels))]
    return hit if op == "==" else ~hit


def _membership(left, right, what: str):
    """R's ``x %in% c(...)``: is each value among the constants listed (levels compared by name)?"""
    values = right.values if isinstance(right, Listed) else (right,)
    if isinstance(right, (np.ndarray, Factor, Matrix)):
        raise FormulaError(f"'{what}': the right of %in% must be constants, e.g. f %in% c(\"a\", \"b\")")
    if isinstance(left, Factor):
        wanted = {v if isinstance(v, str) else level_name(v) for v in values}
        hit = np.array([lv in wanted for lv in left.levels] + [False])
        return hit[np.where(left.codes >= 0, left.codes, len(left.levels))]
    if any(isinstance(v, str) for v in values):
        raise FormulaError(f"'{what}' looks for strings among numbers")
    return np.isin(numeric(left, what), np.array([float(v) for v in values]))


def _eval(node: Node, ctx: _Context) -> Value:
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Name):
        return ctx.column(node.name)
    if isinstance(node, Unary):
        v = _eval(node.operand, ctx)
        what = deparse(node)
        if node.op == "!":
            return np.logical_not(logical(v, what))
        v = numeric(v, what)
        return -v if node.op == "-" else v
    if isinstance(node, Binary):
        left, right = _eval(node.left, ctx), _eval(node.right, ctx)
        what = deparse(node)
        if node.op in ("&", "|"):
            fn = np.logical_and if node.op == "&" else np.logical_or
            return fn(logical(left, what), logical(right, what))
        if node.op == "%in%":
            return _membership(left, right, what)
        if node.op in _COMPARE:
            if isinstance(left, Factor):
                return _factor_compare(node.op, left, right, what)
            if isinstance(right, Factor):  # == and != are symmetric; an order comparison is refused either way
                return _factor_compare(node.op, right, left, what)
            if isinstance(left, str) or isinstance(right, str):
                raise FormulaError(f"'{what}' compares numbers with a string")
            with np.errstate(invalid="ignore"):
                return _COMPARE[node.op](numeric(left, what), numeric(right, what))
        with np.errstate(all="ignore"):
            return _ARITH[node.op](numeric(left, what), numeric(right, what))
    spec = FUNCTIONS[node.fn]
    if spec.params == ("...",):
        return spec.impl(ctx, node, [_eval(a, ctx) for a in node.args])
    values = {p: _eval(a, ctx) for p, a in zip(spec.params, node.args)}
    values.update({k: _eval(v, ctx) for k, v in node.kwargs})
    return spec.impl(ctx, node, values)


def run(checked: Checked, data: pd.DataFrame, recorded: Recorded | None = None) -> tuple[Value, Recorded]:
    """Evaluate ``checked`` on ``data``: in "fit" mode (``recorded`` None) returning the state it recorded, in
    "apply" mode replaying ``recorded``."""
    ctx = _Context(data, checked.text, recorded)
    value = _eval(checked.tree, ctx)
    if isinstance(value, (bool, float, int, np.floating, np.bool_)) and not isinstance(value, str):
        value = np.full(ctx.n, value, dtype=np.asarray(value).dtype)
    elif isinstance(value, np.ndarray) and value.ndim == 0:
        value = np.full(ctx.n, value[()])
    return value, Recorded(tuple(ctx.states))


def evaluate(expr: str, data) -> np.ndarray:
    """Evaluate one expression of the formula language (``"log(t)"``, ``"cbind(s, f)"``, ``"w / 2"``) on
    ``data`` (a pandas DataFrame), with the same allow-list as formulas: no Python is run.

    Returns a read-only numpy array with one row per row of ``data``: float64 for numbers (NaN where a value is
    missing), bool for a logical expression (objects True / False / None where a column read is missing), (n, k)
    float64 for ``cbind``/``poly``, an object array of level names (None where missing) for a factor. Raises
    FormulaError for anything outside the language, DataError for a column that is not in the data.
    """
    from ..design.input import as_frame  # the one conversion of user data to a table

    if not isinstance(expr, str):
        raise FormulaError(f"the expression must be a string, not {type(expr).__name__}")
    frame = as_frame(data)
    frame = frame.set_axis([str(c) for c in frame.columns], axis=1)
    checked = compile_expression(expr)
    value, _ = run(checked, frame)
    missing = missing_rows(frame, names_used(checked.tree))
    if isinstance(value, Factor):
        names = np.array(list(value.levels) + [None], dtype=object)
        out = names[np.where(value.codes >= 0, value.codes, len(value.levels))]
    elif isinstance(value, Matrix):
        out = np.array(value.values, dtype=np.float64)
    elif isinstance(value, (str, Listed)):
        raise FormulaError(f"'{expr}' is a constant, not a column of values")
    else:
        out = np.array(value)
        if out.dtype != bool:
            out = out.astype(np.float64)
    if missing.any():
        # a row with a missing value in a column read has no value, whatever the expression computed there
        if out.dtype == bool:
            out = out.astype(object)
            out[missing] = None
        elif out.dtype == object:
            out[missing] = None
        else:
            out[missing] = np.nan
    out.flags.writeable = False
    return out
