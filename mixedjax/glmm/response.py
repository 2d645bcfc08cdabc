"""The response of a GLMM as lme4 takes it, checked and turned into (y, prior weights, trials) on the host.

Binomial: a 0/1, boolean or two-level factor column (the second level is a success, as in R), ``cbind(successes,
failures)``, or proportions with ``weights=`` the number of trials. Poisson: non-negative integer counts.
"""

from __future__ import annotations

import ast
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DataError, FormulaError, mark_formula
from ..formula.parse import _split_top
from .family import Dist, Family


class ResponseSpec(NamedTuple):
    """The response part of the formula: ``text`` as written; ``parts`` the expressions (two for cbind)."""

    text: str
    parts: tuple[str, ...]

    @property
    def is_cbind(self) -> bool:
        return len(self.parts) == 2


class Response(NamedTuple):
    """Per row of the data (NaN where a value is missing): ``y`` the proportion or count the family models,
    ``weights`` the prior weights (trials for a binomial proportion), ``trials`` m of R's binomial (1 otherwise)."""

    y: np.ndarray
    weights: np.ndarray
    trials: np.ndarray


def split_response(formula: str) -> tuple[ResponseSpec, str]:
    """The response of ``formula`` and the rest of it (from '~' on)."""
    if not isinstance(formula, str) or "~" not in formula:
        raise FormulaError(f"the formula must be a string 'response ~ terms', not {formula!r}")
    i = formula.index("~")
    lhs = formula[:i].strip()
    if not lhs:
        raise FormulaError(f"the formula has no response before '~'.\n{formula}\nWrite it as 'y ~ terms'.")
    if lhs.startswith("cbind(") and lhs.endswith(")"):
        args = [a.strip() for a in _split_top(lhs[len("cbind("):-1], ",")]
        if len(args) != 2 or not all(args):
            raise FormulaError(
                f"cbind in the response takes two arguments, successes and failures: "
                f"'cbind(successes, failures)'.\n{mark_formula(formula, lhs)}"
            )
        return ResponseSpec(lhs, tuple(args)), formula[i:]
    return ResponseSpec(lhs, (lhs,)), formula[i:]


_OPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply, ast.Div: np.divide, ast.Pow: np.power}


def _evaluate(expr: str, data: pd.DataFrame, formula: str):
    """The values of a response expression: a column (as a Series: a factor keeps its level order), else the
    formula language's allow-list evaluator (mixedjax.formula.evaluate), else arithmetic of columns and numbers."""
    if expr in data.columns:
        return data[expr]
    try:
        from ..formula import evaluate
    except ImportError:  # before the formula package's evaluator: + − * / ** of columns and numbers below
        evaluate = None
    if evaluate is not None:
        out = evaluate(expr, data)
        return out if out.dtype != object else pd.Series(out, index=data.index, dtype=object)
    try:
        tree = ast.parse(expr.replace("`", ""), mode="eval").body
    except SyntaxError as err:
        raise FormulaError(f"cannot read the response '{expr}'.\n{mark_formula(formula, expr)}") from err

    def ev(node):
        if isinstance(node, ast.Name):
            if node.id not in data.columns:
                raise DataError(f"column '{node.id}' (used in the response '{expr}') is not found in the data.\n"
                                f"{mark_formula(formula, expr)}\nAvailable columns: "
                                f"{', '.join(map(str, data.columns[:20]))}.")
            col = data[node.id]
            vals = pd.to_numeric(col, errors="coerce") if not pd.api.types.is_bool_dtype(col) else col.astype(float)
            return np.asarray(vals, dtype=float)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return float(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = ev(node.operand)
            return -v if isinstance(node.op, ast.USub) else v
        raise FormulaError(f"the response '{expr}' may only use columns, numbers and + - * /.\n"
                           f"{mark_formula(formula, expr)}")

    return np.broadcast_to(np.asarray(ev(tree), dtype=float), (len(data),)).copy()


def _numeric(values, what: str, formula: str, part: str) -> np.ndarray:
    if isinstance(values, pd.Series):
        if pd.api.types.is_bool_dtype(values):
            return values.astype(float).to_numpy()
        if not pd.api.types.is_numeric_dtype(values):
            raise DataError(f"{what} must be numeric; it has dtype {values.dtype}.\n{mark_formula(formula, part)}")
        return values.to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float)


def _first(mask: np.ndarray, labels) -> str:
    rows = np.flatnonzero(mask)
    shown = ", ".join(str(labels[r]) for r in rows[:5])
    return f"{len(rows)} row{'s' if len(rows) > 1 else ''} (first: {shown})"


def _integer(v: np.ndarray) -> np.ndarray:
    return np.abs(v - np.round(v)) <= 1e-8 * np.maximum(1.0, np.abs(v))


NON_INTEGER = 1e-3  # R's binomial()$initialize warns beyond this distance from a whole number


def _warn_non_integer(ok, vals, what: str, r_word: str, labels) -> None:
    """R's binomial family warns ("non-integer counts" / "#successes in a binomial glm!") and fits; so does mj.glmm
    (the log-likelihood then rounds as lme4's binomial aic: family.rounding_terms)."""
    bad = ok & (np.abs(np.where(ok, vals, 0.0) - np.round(np.where(ok, vals, 0.0))) > NON_INTEGER)
    if bad.any():
        import warnings

        warnings.warn(f"{what} not whole numbers in {_first(bad, labels)}: non-integer {r_word} in a binomial "
                      f"glm (R and lme4 warn likewise and fit; the log-likelihood rounds them as lme4's "
                      f"binomial()$aic does)", UserWarning, stacklevel=4)


def response_values(spec: ResponseSpec, family: Family, data: pd.DataFrame, weights, formula: str) -> Response:
    """Check the response for ``family`` and return it per row of ``data`` (missing values stay NaN)."""
    labels = data.index
    n = len(data)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if spec.is_cbind:
        if family.dist is not Dist.BINOMIAL:
            raise FormulaError(f"cbind(successes, failures) is a binomial response; the family is "
                               f"{family.name}.\n{mark_formula(formula, spec.text)}\nUse family='binomial'.")
        s_expr, f_expr = spec.parts
        s = _numeric(_evaluate(s_expr, data, formula), f"the successes '{s_expr}'", formula, s_expr)
        f = _numeric(_evaluate(f_expr, data, formula), f"the failures '{f_expr}'", formula, f_expr)
        ok = np.isfinite(s) & np.isfinite(f)
        for vals, name in ((s, f"the successes '{s_expr}'"), (f, f"the failures '{f_expr}'")):
            bad = ok & (vals < 0)
            if bad.any():
                extra = (" (the successes are greater than the trials there)" if vals is f else "")
                raise DataError(f"{name} must be non-negative counts; negative in {_first(bad, labels)}{extra}.\n"
                                f"{mark_formula(formula, spec.text)}")
            _warn_non_integer(ok, vals, f"{name} are", "counts", labels)
        m = s + f
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(m > 0, s / np.where(m > 0, m, 1.0), 0.0)
        y = np.where(ok, y, np.nan)
        return Response(y, w * m, m)

    col = _evaluate(spec.parts[0], data, formula)
    what = f"the response '{spec.text}'"
    if family.dist is Dist.BINOMIAL:
        values = col if isinstance(col, pd.Series) else pd.Series(col, index=labels)
        if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or \
                pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_numeric_dtype(values.dtype):
            levels = (list(values.cat.categories) if isinstance(values.dtype, pd.CategoricalDtype)
                      else sorted(values.dropna().unique(), key=str))
            if len(levels) != 2:
                shown = ", ".join(map(repr, levels[:5])) + (", ..." if len(levels) > 5 else "")
                count = "no levels" if not levels else "one level" if len(levels) == 1 else f"{len(levels)} levels"
                raise DataError(f"{what} is a factor with {count}{f' ({shown})' if levels else ''}; a binomial "
                                "response needs exactly two, of which the second counts as a success: recode it as "
                                f"two levels, 0/1 or True/False.\n{mark_formula(formula, spec.text)}")
            y = np.where(values.isna(), np.nan, (values == levels[1]).to_numpy(dtype=float))
            return Response(y, w, np.ones(n))
        y = _numeric(values, what, formula, spec.text)
        ok = np.isfinite(y)
        if weights is None:
            bad = ok & ~np.isin(y, (0.0, 1.0))
            if bad.any():
                raise DataError(f"{what} must be 0/1 (or boolean, or a two-level factor) for a Bernoulli model; "
                                f"it is not in {_first(bad, labels)}.\n{mark_formula(formula, spec.text)}\n"
                                f"For counts of successes out of trials write 'cbind(successes, failures) ~ ...', or "
                                f"give proportions with weights= the numbers of trials.")
            return Response(y, w, np.ones(n))
        bad = ok & ((y < 0) | (y > 1))
        if bad.any():
            raise DataError(f"{what} must be proportions in [0, 1] when weights= gives the trials; it is not in "
                            f"{_first(bad, labels)} (the successes are greater than the trials there).\n"
                            f"{mark_formula(formula, spec.text)}")
        _warn_non_integer(ok & np.isfinite(w), y * w, f"{what} times the weights (trials) are", "#successes",
                          labels)
        return Response(y, w, w.copy())
    y = _numeric(col, what, formula, spec.text)
    ok = np.isfinite(y)
    bad = ok & (y < 0)
    if bad.any():
        raise DataError(f"{what} must be non-negative counts for a Poisson model; negative in "
                        f"{_first(bad, labels)}.\n{mark_formula(formula, spec.text)}")
    bad = ok & ~_integer(np.where(ok, y, 0.0))
    if bad.any():
        raise DataError(f"{what} must be whole numbers (counts) for a Poisson model; not in {_first(bad, labels)}."
                        f"\n{mark_formula(formula, spec.text)}")
    return Response(y, w, np.ones(n))
