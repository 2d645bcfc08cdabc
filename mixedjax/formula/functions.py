"""The fixed table of functions a formula may call: R's idioms, numpy's elementwise functions (plain and ``np.``).

Each entry names its parameters, so a call with an unknown keyword or too many arguments is refused when the
formula is read, before anything is evaluated. Functions with state computed on the fit's data (``poly``'s
recurrence coefficients, ``scale``'s centre and scale, the levels of ``factor``) record it through ``ctx.remember``
so that new data for prediction are encoded exactly as the fit's data were.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np

from ..errors import DataError, FormulaError
from .values import Factor, Matrix, factor_of, level_name


class Spec(NamedTuple):
    """A function of the table: its parameters (``"..."`` for any number of positional ones) and implementation."""

    params: tuple[str, ...]
    required: int  # how many leading parameters must be given
    impl: Callable  # impl(ctx, call, values: dict[str, Value] | list) -> Value

    def check(self, call, text: str) -> None:
        from .language import deparse

        where = f"'{deparse(call)}' in '{text}'"
        if self.params == ("...",):
            if call.kwargs:
                raise FormulaError(f"{call.fn}() takes no named arguments: {where}")
            if len(call.args) < self.required:
                raise FormulaError(f"{call.fn}() needs at least {self.required} argument(s): {where}")
            return
        if len(call.args) > len(self.params):
            raise FormulaError(f"{call.fn}() takes at most {len(self.params)} argument(s) "
                               f"({', '.join(self.params)}): {where}")
        given = list(self.params[: len(call.args)])
        for k, _ in call.kwargs:
            if k not in self.params:
                raise FormulaError(f"{call.fn}() has no argument '{k}' (it has {', '.join(self.params)}): {where}")
            if k in given:
                raise FormulaError(f"the argument '{k}' of {call.fn}() is given twice: {where}")
            given.append(k)
        missing = [p for p in self.params[: self.required] if p not in given]
        if missing:
            raise FormulaError(f"{call.fn}() needs the argument '{missing[0]}': {where}")


class Table(dict):
    """Function name -> Spec; ``public()`` lists the names documented to users."""

    def public(self) -> list[str]:
        return [k for k in self if not k.startswith("numpy.")]

    def r_idioms(self) -> list[str]:
        """The R functions, for messages (numpy's are named as a family)."""
        return [k for k in self if k in _R_NAMES]


class Listed(NamedTuple):
    """``c(...)`` of constants: only an argument (``factor(x, levels = c("b", "a"))``), never a column."""

    values: tuple


# ---- argument kinds ------------------------------------------------------------------------------------------------
def numeric(v, what: str) -> np.ndarray | float:
    """A number or a vector of numbers (logicals as 0/1); anything else is a FormulaError that says what to write."""
    if isinstance(v, Factor):
        hint = "as.numeric(f) for the level codes 1, 2, ..." if not v.from_text else "a numeric column"
        raise FormulaError(f"{what} needs numbers, but it is given a factor (or text column); use {hint}")
    if isinstance(v, str):
        raise FormulaError(f"{what} needs numbers, but it is given the string \"{v}\"")
    if isinstance(v, Matrix):
        raise FormulaError(f"{what} needs one column of numbers, but it is given {v.values.shape[1]} columns")
    if isinstance(v, Listed):
        raise FormulaError(f"{what}: c(...) lists constants for arguments like factor(x, levels = c(...)) only")
    if isinstance(v, (bool, np.bool_)):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.astype(np.float64)
    return float(v)


def constant(v, what: str, kinds: tuple[type, ...]):
    if isinstance(v, np.ndarray) or not isinstance(v, kinds) or isinstance(v, (Factor, Matrix, Listed)):
        names = " or ".join({bool: "TRUE/FALSE", float: "a number", str: "a string"}[k] for k in kinds)
        raise FormulaError(f"{what} must be {names} written in the formula")
    return v


def logical(v, what: str) -> np.ndarray | bool:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, np.ndarray) and v.dtype == bool:
        return v
    return numeric(v, what) != 0


def _name(call) -> str:
    from .language import deparse

    return deparse(call)


# ---- R's idioms ----------------------------------------------------------------------------------------------------
def _identity(ctx, call, a):
    return a["x"]


def _offset(ctx, call, a):
    return numeric(a["object"], _name(call))


def _factor(ctx, call, a):
    x = a["x"]
    if isinstance(x, (Matrix, str, Listed)):
        raise FormulaError(f"{_name(call)}: factor() needs one column")
    given = a.get("levels")
    if given is not None:
        values = given.values if isinstance(given, Listed) else (
            constant(given, f"'levels' of {_name(call)}", (str, float, bool)),)
        given = tuple(level_name(v) for v in values)
    levels = ctx.remember(lambda: factor_of(x).levels if given is None else given)
    f = factor_of(x, levels)
    if given is not None and (f.codes == -2).any():
        # R would make these values NA and drop their rows without a word: name them instead
        extra = sorted(set(factor_of(x).levels) - set(levels))
        raise DataError(f"{_name(call)}: the values {', '.join(extra[:10])} are not among the levels given; "
                        "list every level, or drop those rows first")
    if a.get("ordered") is not None:  # R: factor(x, ordered = is.ordered(x)), so factor() keeps an ordered factor
        f = f._replace(ordered=bool(constant(a["ordered"], f"'ordered' of {_name(call)}", (bool,))))
    return ctx.known_levels(f, _name(call))


def _ordered(ctx, call, a):
    """R's ordered(x, levels): a factor whose contrasts are polynomial (contr.poly)."""
    return _factor(ctx, call, {"x": a["x"], "levels": a.get("levels"), "ordered": True})


def _c(ctx, call, args):
    for v in args:
        constant(v, f"an element of {_name(call)}", (str, float, bool))
    return Listed(tuple(args))


def _reduction(fn):
    """mean(x), sd(x), ...: one number computed on the fit's rows (and reused for new data, unlike R's predict)."""

    def impl(ctx, call, a):
        x = np.broadcast_to(np.asarray(numeric(a["x"], _name(call)), dtype=np.float64), (ctx.n,))
        return ctx.remember(lambda: float(fn(x[np.isfinite(x)])))

    return impl


def _relevel(ctx, call, a):
    f = a["x"]
    if not isinstance(f, Factor):
        f = factor_of(numeric(f, _name(call)))
    if f.ordered:
        raise FormulaError(f"{_name(call)}: relevel() is for unordered factors (as in R); an ordered factor's "
                           "contrasts are polynomial, with no reference level. Use factor(x, ordered = FALSE) first")
    ref = constant(a["ref"], f"the 'ref' of {_name(call)}", (str, float))
    levels = ctx.remember(lambda: factor_of(f).levels if not isinstance(a["x"], Factor) else f.levels)
    f = ctx.known_levels(factor_of(f, levels), _name(call))
    if isinstance(ref, float):
        if not (ref.is_integer() and 1 <= ref <= len(levels)):
            raise DataError(f"{_name(call)}: ref = {level_name(ref)} is not a level position 1..{len(levels)}")
        ref = levels[int(ref) - 1]
    if ref not in levels:
        raise DataError(f"{_name(call)}: '{ref}' is not a level of the factor; its levels are "
                        f"{', '.join(levels[:20])}{', ...' if len(levels) > 20 else ''}")
    order = (ref,) + tuple(lv for lv in levels if lv != ref)
    return factor_of(f, order)


def _as_character(ctx, call, a):
    """R's as.character: text (a factor's labels, numbers as R prints them); as.numeric() of it parses the text."""
    x = a["x"]
    if isinstance(x, (Matrix, str, Listed)):
        raise FormulaError(f"{_name(call)}: as.character() needs one column")
    f = x if isinstance(x, Factor) else factor_of(x)
    levels = ctx.remember(lambda: tuple(sorted(factor_of(f).levels)))
    return ctx.known_levels(factor_of(f, levels)._replace(from_text=True, ordered=False), _name(call))


def _as_numeric(ctx, call, a):
    x = a["x"]
    if isinstance(x, Factor):
        if x.from_text:
            try:
                as_num = np.array([float(lv) for lv in x.levels] + [np.nan])
            except ValueError:
                raise DataError(
                    f"{_name(call)}: the column holds text that is not numbers (R would give NA). For the level "
                    "codes 1, 2, ... make it a factor first: as.numeric(factor(x)), or store the column as a "
                    "pandas category."
                ) from None
            return as_num[np.where(x.codes >= 0, x.codes, len(x.levels))]
        return np.where(x.codes >= 0, x.codes + 1.0, np.nan)  # R's level codes 1, 2, ...
    v = numeric(x, _name(call))
    return np.trunc(v) if call.fn == "as.integer" else v


_MAX_DEGREE = 25  # higher orders are numerically meaningless (and would only cost memory)


def _poly(ctx, call, a):
    x = numeric(a["x"], _name(call))
    degree = constant(a.get("degree", 1.0), f"the degree of {_name(call)}", (float,))
    raw = constant(a.get("raw", False), f"'raw' of {_name(call)}", (bool,))
    if not (degree.is_integer() and 1 <= degree <= _MAX_DEGREE):
        raise FormulaError(f"the degree of {_name(call)} must be a whole number from 1 to {_MAX_DEGREE}")
    d = int(degree)
    x = np.broadcast_to(np.asarray(x, dtype=np.float64), (ctx.n,))
    suffixes = tuple(str(k) for k in range(1, d + 1))
    if raw:
        return Matrix(np.column_stack([x**k for k in range(1, d + 1)]), suffixes)

    def fit():
        xs = x[np.isfinite(x)]
        if len(np.unique(xs)) <= d:
            raise DataError(f"{_name(call)}: the degree must be less than the number of distinct values "
                            f"({len(np.unique(xs))})")
        return _poly_coefs(xs, d)

    alpha, norm2 = ctx.remember(fit)
    return Matrix(_poly_values(x, alpha, norm2), suffixes)


def _poly_coefs(x: np.ndarray, d: int) -> tuple[np.ndarray, np.ndarray]:
    """R's poly() coefficients: the three-term recurrence (Stieltjes) of the polynomials orthogonal on ``x``.

    alpha[k] = <x P_k, P_k> / |P_k|^2 and norm2 = (1, |P_0|^2, ..., |P_d|^2), as stats::poly stores them.
    """
    P_prev, P = np.zeros_like(x), np.ones_like(x)
    alpha, norm2 = [], [1.0, float(len(x))]
    for k in range(d):
        a = float(np.sum(x * P**2) / norm2[-1])
        alpha.append(a)
        b = norm2[-1] / norm2[-2] if k > 0 else 0.0
        P_prev, P = P, (x - a) * P - b * P_prev
        norm2.append(float(np.sum(P**2)))
    return np.array(alpha), np.array(norm2)


def _poly_values(x: np.ndarray, alpha: np.ndarray, norm2: np.ndarray) -> np.ndarray:
    """stats::predict.poly: the orthonormal polynomial columns of degree 1..d at ``x``."""
    d = len(alpha)
    Z = np.ones((len(x), d + 1))
    Z[:, 1] = x - alpha[0]
    for i in range(1, d):
        Z[:, i + 1] = (x - alpha[i]) * Z[:, i] - (norm2[i + 1] / norm2[i]) * Z[:, i - 1]
    return Z[:, 1:] / np.sqrt(norm2[2:])


def _spline_design(knots: np.ndarray, x: np.ndarray, order: int, deriv: int = 0) -> np.ndarray:
    """splines::splineDesign: the B-spline basis of ``order`` on ``knots`` (or its ``deriv``-th derivative) at ``x``
    inside the boundary knots, the right end included."""
    from scipy.interpolate import BSpline

    spl = BSpline(knots, np.eye(len(knots) - order), order - 1, extrapolate=False)
    return (spl.derivative(deriv) if deriv else spl)(x)


def _spline_basis(kind: str, x: np.ndarray, inner: np.ndarray, bounds: tuple, degree: int) -> np.ndarray:
    """splines::bs / ns: the full basis on the knots (before dropping the intercept column); outside the boundary
    knots a Taylor expansion at the nearer one (ns: linear, bs: of its degree), as R's predict does."""
    order = degree + 1
    knots = np.sort(np.concatenate([np.repeat(bounds, order), inner]))
    out = np.full((len(x), len(knots) - order), np.nan)
    ok = np.isfinite(x)
    inside = ok & (x >= bounds[0]) & (x <= bounds[1])
    out[inside] = _spline_design(knots, x[inside], order)
    for side, pivot in ((x < bounds[0]) & ok, bounds[0]), ((x > bounds[1]) & ok, bounds[1]):
        if side.any():
            terms = 2 if kind == "ns" else order
            derivs = np.stack([_spline_design(knots, np.array([pivot]), order, j)[0] for j in range(terms)])
            powers = np.stack([(x[side] - pivot) ** j / math.factorial(j) for j in range(terms)], axis=1)
            out[side] = powers @ derivs
    return out


def _spline(kind: str):
    """R's splines::ns (natural cubic) and splines::bs (B-spline) bases: knots at the quantiles of x (type 7) for a
    given df, boundary knots its range; the fit's knots are reused for new data."""

    def impl(ctx, call, a):
        x = np.broadcast_to(np.asarray(numeric(a["x"], _name(call)), dtype=np.float64), (ctx.n,))
        degree = 3 if kind == "ns" else constant(a.get("degree", 3.0), f"the degree of {_name(call)}", (float,))
        intercept = constant(a.get("intercept", False), f"'intercept' of {_name(call)}", (bool,))
        if not (float(degree).is_integer() and 1 <= degree <= 10):
            raise FormulaError(f"the degree of {_name(call)} must be a whole number from 1 to 10")
        degree = int(degree)

        def fit():
            xs = x[np.isfinite(x)]
            if len(xs) == 0:
                raise DataError(f"{_name(call)}: the column has no values")
            given = a.get("knots")
            if given is not None:
                vals = given.values if isinstance(given, Listed) else (given,)
                inner = np.array([constant(v, f"a knot of {_name(call)}", (float,)) for v in vals])
            else:
                df = a.get("df")
                df = (1.0 + intercept if kind == "ns" else float(degree + intercept)) if df is None else \
                    constant(df, f"the df of {_name(call)}", (float,))
                if not float(df).is_integer():
                    raise FormulaError(f"the df of {_name(call)} must be a whole number")
                n_inner = max(int(df) - (1 if kind == "ns" else degree) - int(intercept), 0)
                inner = np.quantile(xs, np.linspace(0, 1, n_inner + 2)[1:-1]) if n_inner else np.array([])
            return np.sort(inner), (float(xs.min()), float(xs.max()))

        inner, bounds = ctx.remember(fit)
        basis = _spline_basis(kind, x, inner, bounds, degree)
        if kind == "ns":
            const = _spline_design(np.sort(np.concatenate([np.repeat(bounds, 4), inner])), np.array(bounds), 4, 2)
            if not intercept:
                basis, const = basis[:, 1:], const[:, 1:]
            # R: t(qr.qty(qr(t(const)), t(basis)))[, -(1:2)], the basis in the null space of the second derivatives
            # at the boundary knots; Householder QR (LINPACK's and LAPACK's reflectors agree, so Q does)
            q, _ = np.linalg.qr(const.T, mode="complete")
            basis = (basis @ q)[:, 2:]
        elif not intercept:
            basis = basis[:, 1:]
        return Matrix(basis, tuple(str(k) for k in range(1, basis.shape[1] + 1)))

    return impl


def _scale(ctx, call, a):
    x = np.broadcast_to(np.asarray(numeric(a["x"], _name(call)), dtype=np.float64), (ctx.n,))
    center = constant(a.get("center", True), f"'center' of {_name(call)}", (bool, float))
    scale = constant(a.get("scale", True), f"'scale' of {_name(call)}", (bool, float))

    def fit():
        ok = x[np.isfinite(x)]
        c = float(np.mean(ok)) if center is True else (0.0 if center is False else float(center))
        if scale is True:  # R: the root mean square of the centred values, with n - 1
            s = float(np.sqrt(np.sum((ok - c) ** 2) / max(len(ok) - 1, 1)))
            if s == 0:
                raise DataError(f"{_name(call)}: the column is constant; it cannot be scaled")
        else:
            s = 1.0 if scale is False else float(scale)
        return c, s

    c, s = ctx.remember(fit)
    return (x - c) / s


def _log(ctx, call, a):
    x = numeric(a["x"], _name(call))
    with np.errstate(all="ignore"):
        out = np.log(x)
        if "base" in a:
            out = out / np.log(numeric(a["base"], _name(call)))
    return out


def _round(ctx, call, a):
    digits = constant(a.get("digits", 0.0), f"'digits' of {_name(call)}", (float,))
    if not (digits.is_integer() and abs(digits) <= 15):
        raise FormulaError(f"'digits' of {_name(call)} must be a whole number from -15 to 15")
    return np.round(numeric(a["x"], _name(call)), int(digits))  # half to even, as R's round


def _ifelse(ctx, call, a):
    test = logical(a["test"], _name(call))
    return np.where(test, numeric(a["yes"], _name(call)), numeric(a["no"], _name(call)))


def _reduce(fn):
    def impl(ctx, call, args):
        vals = [numeric(v, _name(call)) for v in args]
        out = vals[0]
        for v in vals[1:]:
            out = fn(out, v)
        return out

    return impl


def _cbind(ctx, call, args):
    from .language import deparse

    cols = [np.broadcast_to(numeric(v, _name(call)), (ctx.n,)) for v in args]
    return Matrix(np.column_stack(cols).astype(np.float64), tuple(deparse(n) for n in call.args))


def _ufunc(fn, nargs: int):
    def impl(ctx, call, a):
        vals = [numeric(a[p], _name(call)) for p in ("x", "y", "z")[:nargs]]
        with np.errstate(all="ignore"):
            return fn(*vals)

    return impl


# ---- the table -----------------------------------------------------------------------------------------------------
_R_UNARY = {"log2": np.log2, "log10": np.log10, "log1p": np.log1p, "exp": np.exp, "expm1": np.expm1,
            "sqrt": np.sqrt, "abs": np.abs, "sin": np.sin, "cos": np.cos, "tan": np.tan, "asin": np.arcsin,
            "acos": np.arccos, "atan": np.arctan, "sinh": np.sinh, "cosh": np.cosh, "tanh": np.tanh,
            "floor": np.floor, "ceiling": np.ceil, "trunc": np.trunc, "sign": np.sign}
_NP_UNARY = ("exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "square", "abs", "absolute",
             "fabs", "sign", "floor", "ceil", "trunc", "rint", "sin", "cos", "tan", "arcsin", "arccos", "arctan",
             "sinh", "cosh", "tanh", "arcsinh", "arccosh", "arctanh", "deg2rad", "rad2deg", "reciprocal")
_NP_BINARY = ("power", "maximum", "minimum", "fmax", "fmin", "hypot", "arctan2", "fmod", "add", "subtract",
              "multiply", "divide")


_R_NAMES = ("I", "factor", "ordered", "as.factor", "C", "relevel", "as.numeric", "as.integer", "as.character", "poly", "ns", "bs", "scale", "center", "log",
            "exp", "sqrt", "abs", "pmin", "pmax", "ifelse", "round", "mean", "sd", "offset", "cbind")


def _table() -> Table:
    t = Table()
    t["I"] = Spec(("x",), 1, _identity)
    t["offset"] = Spec(("object",), 1, _offset)
    t["factor"] = Spec(("x", "levels", "ordered"), 1, _factor)
    t["ordered"] = Spec(("x", "levels"), 1, _ordered)
    for fn in ("as.factor", "C"):
        t[fn] = Spec(("x",), 1, _factor)
    t["c"] = Spec(("...",), 1, _c)
    for name, fn in {"mean": np.mean, "sd": lambda v: np.std(v, ddof=1), "var": lambda v: np.var(v, ddof=1),
                     "median": np.median, "min": np.min, "max": np.max}.items():
        t[name] = Spec(("x",), 1, _reduction(fn))
    t["relevel"] = Spec(("x", "ref"), 2, _relevel)
    for fn in ("as.numeric", "as.double", "as.integer"):
        t[fn] = Spec(("x",), 1, _as_numeric)
    t["as.character"] = Spec(("x",), 1, _as_character)
    t["poly"] = Spec(("x", "degree", "raw"), 1, _poly)
    t["scale"] = Spec(("x", "center", "scale"), 1, _scale)
    t["ns"] = t["splines::ns"] = Spec(("x", "df", "knots", "intercept"), 1, _spline("ns"))
    t["bs"] = t["splines::bs"] = Spec(("x", "df", "knots", "degree", "intercept"), 1, _spline("bs"))
    t["center"] = Spec(("x",), 1, lambda ctx, call, a: _scale(ctx, call, {"x": a["x"], "scale": False}))
    t["log"] = Spec(("x", "base"), 1, _log)
    t["round"] = Spec(("x", "digits"), 1, _round)
    t["ifelse"] = Spec(("test", "yes", "no"), 3, _ifelse)
    t["pmin"] = Spec(("...",), 1, _reduce(np.minimum))
    t["pmax"] = Spec(("...",), 1, _reduce(np.maximum))
    t["cbind"] = Spec(("...",), 1, _cbind)
    for name, fn in _R_UNARY.items():
        t[name] = Spec(("x",), 1, _ufunc(fn, 1))
    for name in _NP_UNARY:
        spec = Spec(("x",), 1, _ufunc(getattr(np, name), 1))
        t.setdefault(name, spec)
        t[f"np.{name}"] = spec
        t[f"numpy.{name}"] = spec
    for name in _NP_BINARY:
        spec = Spec(("x", "y"), 2, _ufunc(getattr(np, name), 2))
        t.setdefault(name, spec)
        t[f"np.{name}"] = spec
        t[f"numpy.{name}"] = spec
    t["np.clip"] = t["numpy.clip"] = t["clip"] = Spec(("x", "y", "z"), 3, _ufunc(np.clip, 3))
    t["np.where"] = t["numpy.where"] = Spec(("test", "yes", "no"), 3, _ifelse)
    return t


FUNCTIONS = _table()
