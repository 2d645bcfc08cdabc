"""The formula level: terms joined by ``+ - * / : ^ %in%``, each factor of a term (a column or a call like
``I(x^2)``, ``factor(days)``, ``poly(x, 2)``) read by the expression language.

The terms are expanded by R's algebra (mixedjax.formula.expand) over placeholders of ours (``_mjv3_``), one per atom;
the atoms are evaluated by the expression language. No text of the user reaches any other evaluator.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import FormulaError
from .expand import expand
from .language import Call, Checked, Name, Token, compile_expression, deparse, tokenize


class Atom(NamedTuple):
    """One factor of the terms: its placeholder, its checked expression and its name in coefficient names."""

    key: str  # "_mjv3_"
    checked: Checked
    display: str  # "I(days^2)", "factor(days)", "total.fruits"


class ModelFormula(NamedTuple):
    """A formula-level expression (the fixed part or a random-effects model) with placeholders for its atoms."""

    text: str  # as written
    placeholder: str  # the terms over placeholders, e.g. "1 + _mjv0_ + _mjv1_:_mjv2_"
    atoms: tuple[str, ...]  # the keys of the atoms it uses


class Atoms:
    """The registry of atoms of one formula: the same expression is the same atom wherever it appears."""

    def __init__(self):
        self.by_display: dict[str, Atom] = {}

    def add(self, text: str) -> Atom:
        checked = compile_expression(text)
        node = checked.tree
        display = node.name if isinstance(node, Name) else deparse(node)
        atom = self.by_display.get(display)
        if atom is None:
            atom = Atom(f"_mjv{len(self.by_display)}_", checked, display)
            self.by_display[display] = atom
        return atom

    def all(self) -> tuple[Atom, ...]:
        return tuple(self.by_display.values())


_FORMULA_OPS = {"+": "+", "-": "-", "*": "*", "/": "/", ":": ":", "^": "^", "**": "^", "%in%": ":", "(": "(",
                ")": ")"}


def _closing(tokens: list[Token], i: int) -> int:
    """Index of the ')' matching the '(' at ``i``."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].kind == "op" and tokens[j].text == "(":
            depth += 1
        elif tokens[j].kind == "op" and tokens[j].text == ")":
            depth -= 1
            if depth == 0:
                return j
    raise FormulaError(f"unbalanced parentheses in '{''.join(t.text for t in tokens)}'")


def read_model(text: str, atoms: Atoms, where: str) -> ModelFormula:
    """Replace every atom of ``text`` by its placeholder; refuse formula-level operators R's formulas lack."""
    tokens = tokenize(text)
    out, keys, i = [], [], 0
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "name":
            is_call = i + 1 < len(tokens) and tokens[i + 1].kind == "op" and tokens[i + 1].text == "("
            end = _closing(tokens, i + 1) if is_call else i
            piece = text[tok.start : tokens[end].end]
            if tok.text == "." and not is_call:
                raise FormulaError(f"'.' (all other columns) is not supported in {where}: list the columns")
            if is_call and tok.text == "offset":
                raise FormulaError(f"offset() must be a term of its own in the fixed part, e.g. "
                                   f"'y ~ x + offset(log(t)) + (1 | g)'; cannot read '{text}' in {where}")
            atom = atoms.add(piece)
            out.append(atom.key)
            keys.append(atom.key)
            i = end + 1
            continue
        if tok.kind == "num":
            out.append(tok.text)
        elif tok.kind == "op" and tok.text in _FORMULA_OPS:
            out.append(_FORMULA_OPS[tok.text])
        else:
            what = f"'{tok.text}'"
            raise FormulaError(
                f"{what} cannot stand between the terms of {where} ('{text}'). Wrap arithmetic, comparisons and "
                f"strings in I(), e.g. 'I(x > 2)' or 'I(x / 10)'."
            )
        i += 1
    return ModelFormula(text, " ".join(out), tuple(dict.fromkeys(keys)))


def split_double_bar(text: str) -> list[str]:
    """For ``(expr || g)``: every term of ``expr`` its own block, as lme4's expandDoubleVerts:
    '1 + x + z' -> ['1', '0 + x', '0 + z']; 'x * z' -> ['1', '0 + x', '0 + z', '0 + x:z']; 'x - 1' -> ['0 + x']."""
    atoms = Atoms()
    mf = read_model(text, atoms, f"'({text} || ...)'")
    written = {a.key: a.checked.text for a in atoms.all()}
    expanded = expand(mf.placeholder, mf.atoms)
    out = ["1"] if expanded.intercept else []
    return out + [f"0 + {':'.join(written[k] for k in term)}" for term in expanded.terms]


def offset_argument(piece: str) -> str | None:
    """The text of ``expr`` when ``piece`` is exactly ``offset(expr)``, else None."""
    tokens = tokenize(piece)
    if (len(tokens) >= 3 and tokens[0].kind == "name" and tokens[0].text == "offset" and tokens[1].text == "("
            and _closing(tokens, 1) == len(tokens) - 1):
        node = compile_expression(piece).tree
        assert isinstance(node, Call)
        return piece[tokens[2].start : tokens[-1].start].strip() if len(tokens) > 3 else ""
    return None
