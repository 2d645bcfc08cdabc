"""R's term algebra (mixedjax.formula.expand) against formulaic's expansion of the same formulas, and R's own
rules where formulaic differs (%in% with a sum on the right)."""

from __future__ import annotations

import formulaic
import pytest

from mixedjax.errors import FormulaError
from mixedjax.formula.expand import expand

A, B, C, D = "_mjv0_", "_mjv1_", "_mjv2_", "_mjv3_"
ORDER = (A, B, C, D)


def _formulaic(text: str):
    terms = [tuple(sorted((str(f) for f in t.factors if str(f) != "1"), key=ORDER.index)) for t in
             formulaic.Formula(text)]
    return ("1" in [str(t) for t in formulaic.Formula(text)]), tuple(t for t in terms if t)


@pytest.mark.parametrize(
    "text",
    [f"{A}", f"1 + {A}", f"0 + {A}", f"{A} - 1", f"-1 + {A}", f"{A} + {B}", f"{A} * {B}", f"{A}:{B}",
     f"{A} * {B} * {C}", f"({A} + {B} + {C})^2", f"({A} + {B})^3", f"{A}/{B}", f"({A} + {B})/{C}", f"{A}/{B}/{C}",
     f"{A} * {B} - {A}:{B}", f"{A} * {B} - {A}", f"{B} + {A}:{B}", f"({A} + {B}):({C} + {D})", f"{A}^2",
     f"0 + {A} * {B}", f"{A} + {A}", f"{A}:{A}", f"({A} + {B}) * {C} - 1", "1", "0 + 1", f"{A} + 0"],
)
def test_as_formulaic(text):
    got = expand(text, ORDER)
    assert (got.intercept, got.terms) == _formulaic(text)


def test_in_as_r():
    # R's InTerms: every term of the left with all variables of the right
    assert expand(f"{A} %in% {B}", ORDER).terms == ((A, B),)
    assert expand(f"{A} %in% ({B} + {C})", ORDER).terms == ((A, B, C),)
    assert expand(f"({A} + {B}) %in% {C}", ORDER).terms == ((A, C), (B, C))
    assert expand(f"{B} + {A} %in% {B}", ORDER).terms == ((B,), (A, B))


@pytest.mark.parametrize("text", [f"{A} +", f"{A} {B}", f"2 + {A}", f"{A}^{B}", f"{A}^1.5", f"({A}", f"{A}:1"])
def test_malformed(text):
    with pytest.raises(FormulaError):
        expand(text, ORDER)
