"""R's algebra of model terms: ``+ - * / : ^ %in%`` and parentheses, expanded to a list of terms.

As R's ``terms.formula`` (src/library/stats/src/model.c): ``a*b = a + b + a:b``, ``a/b = a + a:b`` (every
variable of the left with the right), ``a %in% b`` each term of the left with every variable of the right,
``(a + b)^2 = (a + b)*(a + b)``, ``-`` removes terms, ``0``/``-1`` remove the intercept. Interactions list the left
term first; the result is ordered by degree, ties in order of appearance; a repeated term is kept once.

The input is the placeholder text of :mod:`mixedjax.formula.terms`: placeholders, numbers and those operators.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ..errors import FormulaError

_TOKEN = re.compile(r"\s*(_mjv\d+_|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|%in%|[-+*/:^()])")


class Terms(NamedTuple):
    """A formula's right-hand side, expanded."""

    intercept: bool
    terms: tuple[tuple[str, ...], ...]  # each term: its variables in order of first appearance; no intercept here


class _Value(NamedTuple):
    terms: tuple[frozenset, ...]
    intercept: bool | None  # None: not said; True: '+ 1'; False: '0' or '- 1'
    number: float | None = None  # a bare number (an exponent, or 0/1)


def _unique(terms) -> tuple[frozenset, ...]:
    return tuple(dict.fromkeys(terms))


_MAX_TERMS = 5000  # far beyond any model; keeps '(a + b + ... + z)^20' from exhausting memory


def _interact(a: _Value, b: _Value) -> _Value:
    if len(a.terms) * len(b.terms) > _MAX_TERMS:
        raise FormulaError(f"the terms expand to more than {_MAX_TERMS} interactions; simplify the formula")
    return _Value(_unique(x | y for x in a.terms for y in b.terms), None)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        pos, self.tokens = 0, []
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if m is None:
                if text[pos:].strip():
                    raise self.error()
                break
            self.tokens.append(m.group(1))
            pos = m.end()
        self.i = 0

    def error(self) -> FormulaError:
        return FormulaError("cannot read the terms: check the operators between them ('+', '-', '*', ':', '/', '^')")

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.peek()
        if tok is None:
            raise self.error()
        self.i += 1
        return tok

    def parse(self) -> _Value:
        v = self.sum()
        if self.peek() is not None:
            raise self.error()
        return v

    def sum(self) -> _Value:
        if self.peek() == "-":  # '-1 + x'
            self.take()
            v = self.remove(_Value((), None), self.product())
        elif self.peek() == "+":
            self.take()
            v = self.term_value(self.product())
        else:
            v = self.term_value(self.product())
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.product()
            v = self.add(v, self.term_value(right)) if op == "+" else self.remove(v, right)
        return v

    @staticmethod
    def term_value(v: _Value) -> _Value:
        """A bare 1 or 0 in a sum is the intercept said or removed."""
        if v.number is None:
            return v
        if v.number == 1:
            return _Value((), True)
        if v.number == 0:
            return _Value((), False)
        raise FormulaError(f"a number ({v.number:g}) cannot be a term; write I({v.number:g}) for a constant column")

    @staticmethod
    def add(a: _Value, b: _Value) -> _Value:
        return _Value(_unique(a.terms + b.terms), b.intercept if b.intercept is not None else a.intercept)

    def remove(self, a: _Value, b: _Value) -> _Value:
        if b.number is not None:
            if b.number not in (0, 1):
                raise self.error()
            return _Value(a.terms, b.number == 0)  # '- 1' removes the intercept ('- 0' keeps it)
        intercept = False if b.intercept else a.intercept
        return _Value(tuple(t for t in a.terms if t not in set(b.terms)), intercept)

    def product(self) -> _Value:
        v = self.nesting()
        while self.peek() in ("*", "/"):
            op = self.take()
            right = self.nesting()
            self.no_number(v, right)
            if op == "*":
                v = _Value(_unique(v.terms + right.terms + _interact(v, right).terms), None)
            else:  # a/b: a + (every variable of a):b
                every = _Value((frozenset().union(*v.terms),), None)
                v = _Value(_unique(v.terms + _interact(every, right).terms), None)
        return v

    def interaction(self) -> _Value:  # R: ':' binds tighter than %in%
        v = self.power()
        while self.peek() == ":":
            self.take()
            right = self.power()
            self.no_number(v, right)
            v = _interact(v, right)
        return v

    def nesting(self) -> _Value:
        v = self.interaction()
        while self.peek() == "%in%":
            self.take()
            right = self.interaction()
            self.no_number(v, right)
            every = frozenset().union(*right.terms)
            v = _Value(_unique(t | every for t in v.terms), None)
        return v

    def power(self) -> _Value:
        v = self.atom()
        if self.peek() == "^":
            self.take()
            n = self.atom()
            if n.number is None or n.number != int(n.number) or n.number < 1:
                raise FormulaError("the power of terms ('(a + b)^2') must be a whole number ≥ 1; "
                                   "write I(x^2) for the square of a column")
            self.no_number(v)
            out = v
            for _ in range(int(n.number) - 1):
                out = _Value(_unique(out.terms + _interact(out, v).terms), None)
            v = out
        return v

    def atom(self) -> _Value:
        tok = self.take()
        if tok == "(":
            v = self.sum()
            if self.take() != ")":
                raise self.error()
            return v
        if tok.startswith("_mjv"):
            return _Value((frozenset([tok]),), None)
        if tok[0].isdigit():
            return _Value((), None, float(tok))
        raise self.error()

    def no_number(self, *values: _Value) -> None:
        if any(v.number is not None or (not v.terms and v.intercept is not None) for v in values):
            raise FormulaError("a number (or the intercept) cannot be part of an interaction; "
                               "write I(...) for arithmetic")


def expand(placeholder: str, order: tuple[str, ...] = ()) -> Terms:
    """The terms of ``placeholder``, in R's order; each term's variables in ``order`` (first appearance)."""
    v = _Parser(placeholder).parse()
    v = _Parser.term_value(v)
    rank = {k: i for i, k in enumerate(order)}
    first = {}
    for t in v.terms:
        for k in sorted(t):
            first.setdefault(k, len(first))
    key = lambda k: (rank.get(k, len(rank)), first.get(k, 0), k)  # noqa: E731
    terms = [tuple(sorted(t, key=key)) for t in v.terms if t]
    terms.sort(key=len)  # stable: by degree, ties in order of appearance
    return Terms(v.intercept is not False, tuple(terms))
