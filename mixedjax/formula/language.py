"""The expression language of formulas: R's syntax read into a small tree, never into Python code.

An expression (the response, an argument of ``I()``, ``log()``, ``poly()``, ...) is tokenised here with R's
lexical rules (dotted names like ``total.fruits``, backquoted names, ``^``, ``%%``, ``TRUE``), translated to a Python
expression in which *every* identifier is a placeholder of ours (``_mjv3_``), parsed with :mod:`ast`, and walked
with an allow-list into the node types below. Python never evaluates any of it: the tree is interpreted by
:mod:`mixedjax.formula.evaluate`. A name can only ever be a column of the data or a constant, a call can only be to
the fixed table of :mod:`mixedjax.formula.functions`, so there is no attribute access, subscript, lambda,
comprehension or import to reach.
"""

from __future__ import annotations

import ast
import re
from typing import NamedTuple, Union

import numpy as np

from ..errors import DataError, FormulaError, UnknownFunctionError  # noqa: F401  (raised here and re-exported)





# ---- the tree ------------------------------------------------------------------------------------------------------
class Const(NamedTuple):
    """A literal: a number (float), a string or a boolean."""

    value: Union[float, str, bool]


class Name(NamedTuple):
    """A column of the data (or the constants ``pi``, ``T``, ``F`` when no column has that name)."""

    name: str


class Unary(NamedTuple):
    op: str  # "-", "+" or "!"
    operand: "Node"


class Binary(NamedTuple):
    op: str  # one of "+ - * / ^ %/% %% %in% == != < <= > >= & | && ||"
    left: "Node"
    right: "Node"


class Call(NamedTuple):
    """``fn(args..., key = value...)``; ``fn`` is a name of the function table (checked when the tree is built)."""

    fn: str
    args: tuple["Node", ...]
    kwargs: tuple[tuple[str, "Node"], ...]


Node = Union[Const, Name, Unary, Binary, Call]


# ---- tokens --------------------------------------------------------------------------------------------------------
class Token(NamedTuple):
    kind: str  # "name", "num", "str", "op"
    text: str  # for "name": the column name itself (backquotes removed)
    start: int  # offset in the expression text
    end: int


_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<bq>`[^`]*`)"
    r"|(?P<num>(?:0[xX][0-9a-fA-F]+|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)L?(?![\w.]))"
    # R's names: letters (any script), digits, '.', '_'; 'pkg::name' one name (splines::ns, a function of the table)
    r"|(?P<name>(?:[^\W\d]|\.)[\w.]*(?:::(?:[^\W\d]|\.)[\w.]*)?)"
    r"|(?P<str>\"[^\"\\\n]*\"|'[^'\\\n]*')"
    r"|(?P<op>%[^%\s]*%|\*\*|<<-|<-|->>|->|==|!=|<=|>=|&&|\|\||//|[-+*/^<>!&|(),=:~])"
)

_WHY = {
    "[": "subscripts are not allowed in a formula",
    "]": "subscripts are not allowed in a formula",
    "$": "'$' is not allowed in a formula: name the column itself",
    "@": "'@' is not allowed in a formula",
    "{": "braces are not allowed in a formula",
    "}": "braces are not allowed in a formula",
    ";": "';' is not allowed in a formula",
    "\\": "backslashes are not allowed in a formula (string literals take no escapes)",
    "#": "comments are not allowed in a formula",
}


def _syntax(message: str, text: str, at: int, width: int = 1) -> FormulaError:
    mark = f"{text}\n{' ' * at}{'^' * max(width, 1)}"
    err = FormulaError(f"{message}:\n{mark}")
    err.__cause__ = SyntaxError(message)  # the reason, kept like another library's exception would be
    return err


def tokenize(text: str) -> list[Token]:
    """R tokens of ``text``; anything outside the language is a FormulaError that marks it."""
    out, i = [], 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            c = text[i]
            why = _WHY.get(c, f"the character {c!r} is not part of the formula language")
            if c in "\"'":
                why = "a string is not closed, or holds a backslash or a line break"
            raise _syntax(why, text, i)
        kind = m.lastgroup
        if kind == "bq":
            out.append(Token("name", m.group()[1:-1], m.start(), m.end()))
        elif kind != "ws":
            out.append(Token(kind, m.group(), m.start(), m.end()))
        i = m.end()
    return out


# ---- R tokens -> Python source with placeholders ---------------------------------------------------------------------
# R's '&' and '|' are elementwise logical operators below the comparisons, as Python's 'and'/'or' are: never bitwise
_OPS = {"^": "**", "%%": "%", "%/%": "//", "&&": " and ", "||": " or ", "&": " and ", "|": " or ", "!": " not "}
_PY_OPS = {"**", "==", "!=", "<=", ">=", "//", "-", "+", "*", "/", "<", ">", "(", ")", ",", "="}
_CONSTANTS = {"TRUE": "True", "FALSE": "False", "True": "True", "False": "False"}


def _number(text: str) -> str:
    t = text[:-1] if text.endswith("L") else text
    return repr(float(int(t, 16))) if t[:2].lower() == "0x" else repr(float(t))


def _is_dunder(name: str) -> bool:
    return "__" in name


class _Translation(NamedTuple):
    source: str
    names: tuple[str, ...]  # placeholder k -> the name as written


def _check_modulo_precedence(text: str, tokens: list[Token]) -> None:
    """R binds %% and %/% tighter than * and /, Python does not: 'a * b %% c' would change meaning. Refused."""
    seen = [False]  # per parenthesis depth: a '*' or '/' since the last lower-precedence operator
    for tok in tokens:
        if tok.kind != "op":
            continue
        if tok.text == "(":
            seen.append(False)
        elif tok.text == ")":
            seen.pop() if len(seen) > 1 else None
        elif tok.text in ("*", "/"):
            seen[-1] = True
        elif tok.text in ("%%", "%/%") and seen[-1]:
            raise _syntax(f"'{tok.text}' after '*' or '/' needs parentheses ('a * (b {tok.text} c)' as R reads it, "
                          f"or '(a * b) {tok.text} c')", text, tok.start, tok.end - tok.start)
        elif tok.text not in ("^", "**", "%%", "%/%"):
            seen[-1] = False


_ARITHMETIC = {"+", "-", "*", "/", "%%", "%/%"}
_BOUNDARY = {"(", ")", ",", "=", "==", "!=", "<", "<=", ">", ">=", "&", "&&", "|", "||", "!"}


def _binary_at(tokens: list[Token], k: int) -> bool:
    """Is the operator at ``k`` binary (after an operand), not a sign?"""
    return k > 0 and (tokens[k - 1].kind != "op" or tokens[k - 1].text == ")")


def _check_in_precedence(text: str, tokens: list[Token]) -> None:
    """R binds %in% tighter than arithmetic, Python's 'in' looser: 'a * b %in% c' would change meaning. Refused."""
    for j, tok in enumerate(tokens):
        if tok.kind != "op" or tok.text != "%in%":
            continue
        bad = False
        depth, k = 0, j - 1  # the left operand, back to a boundary outside any parentheses it holds
        while k >= 0 and not bad:
            t = tokens[k]
            if t.kind == "op":
                if t.text == ")":
                    depth += 1
                elif t.text == "(":
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and t.text in _BOUNDARY:
                    break
                elif depth == 0 and t.text in _ARITHMETIC | {"%in%"}:
                    bad = _binary_at(tokens, k)
            k -= 1
        depth, k = 0, j + 1  # the right operand, on to a boundary
        while k < len(tokens) and not bad:
            t = tokens[k]
            if t.kind == "op":
                if t.text == "(":
                    depth += 1
                elif t.text == ")":
                    if depth == 0:
                        break
                    depth -= 1
                elif depth == 0 and t.text in _BOUNDARY:
                    break
                elif depth == 0 and t.text in _ARITHMETIC | {"%in%"}:
                    bad = _binary_at(tokens, k)
            k += 1
        if bad:
            raise _syntax("'%in%' next to arithmetic needs parentheses: R reads 'a * b %in% c' as 'a * (b %in% c)'",
                          text, tok.start, tok.end - tok.start)


def _translate(text: str, tokens: list[Token]) -> _Translation:
    names: list[str] = []
    index: dict[str, int] = {}
    out = []
    for j, tok in enumerate(tokens):
        if tok.kind == "name":
            if tok.text in _CONSTANTS:
                out.append(_CONSTANTS[tok.text])
                continue
            if _is_dunder(tok.text):
                raise _syntax(f"the name '{tok.text}' is not allowed (no name in a formula may contain '__')",
                              text, tok.start, tok.end - tok.start)
            k = index.setdefault(tok.text, len(names))
            if k == len(names):
                names.append(tok.text)
            out.append(f"_mjv{k}_")
        elif tok.kind == "num":
            num = _number(tok.text)
            if num in ("inf", "nan"):
                raise _syntax(f"the number {tok.text} is too large", text, tok.start, tok.end - tok.start)
            out.append(num)
        elif tok.kind == "str":
            out.append(repr(tok.text[1:-1]))
        elif tok.text == "%in%":
            out.append(" in ")
        elif tok.text in _OPS:
            out.append(_OPS[tok.text])
        elif tok.text in _PY_OPS:
            out.append(tok.text)
        else:
            hint = {
                "~": "'~' may appear once, between the response and the terms",
                "<-": "assignment ('<-') is not allowed in a formula; for a comparison write 'x < -3' with a space",
                "<<-": "assignment is not allowed in a formula", "->": "assignment is not allowed in a formula",
                "->>": "assignment is not allowed in a formula",
                ":": "':' inside a function call (R's sequence) is not supported; outside one it is an interaction",
            }.get(tok.text, f"the operator '{tok.text}' is not supported in a formula")
            raise _syntax(hint, text, tok.start, tok.end - tok.start)
    return _Translation(" ".join(out).strip(), tuple(names))


# ---- Python ast -> the tree, through the allow-list -----------------------------------------------------------------
_BIN = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "^", ast.FloorDiv: "%/%", ast.Mod: "%%"}
_CMP = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.In: "%in%"}
_UN = {ast.USub: "-", ast.UAdd: "+", ast.Not: "!"}
_PLACEHOLDER = re.compile(r"_mjv(\d+)_")

_CONSTRUCTS = {
    ast.Attribute: "attribute access", ast.Subscript: "a subscript", ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension", ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension", ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
    ast.Starred: "a starred argument", ast.IfExp: "a conditional expression", ast.NamedExpr: "an assignment",
    ast.JoinedStr: "an f-string", ast.Await: "await", ast.Yield: "yield", ast.Slice: "a slice",
}


class Checked(NamedTuple):
    """An expression that passed the allow-list: its tree and its text as written."""

    tree: Node
    text: str


def _walk(node: ast.AST, names: tuple[str, ...], text: str, functions) -> Node:
    def bad(what: str) -> FormulaError:
        return FormulaError(f"{what} is not allowed in a formula (in '{text}'). A formula may use column names, "
                            "numbers, strings, TRUE/FALSE, arithmetic, comparisons and the functions listed in "
                            "docs/formulas.md.")

    def name_of(n: ast.AST) -> str:
        if isinstance(n, ast.Name):
            m = _PLACEHOLDER.fullmatch(n.id)
            if m:
                return names[int(m.group(1))]
        raise bad(_CONSTRUCTS.get(type(n), type(n).__name__))

    def go(n: ast.AST, depth: int = 0) -> Node:
        if depth > _MAX_DEPTH:
            raise FormulaError(f"the expression '{text[:80]}' is nested too deeply to be a model term")
        return node_of(n, lambda m: go(m, depth + 1))

    def node_of(n: ast.AST, go) -> Node:
        if isinstance(n, ast.Constant):
            v = n.value
            if isinstance(v, bool) or isinstance(v, str):
                return Const(v)
            if isinstance(v, float):
                return Const(v)
            raise bad(f"the literal {v!r}")
        if isinstance(n, ast.Name):
            return Name(name_of(n))
        if isinstance(n, ast.BinOp) and type(n.op) in _BIN:
            return Binary(_BIN[type(n.op)], go(n.left), go(n.right))
        if isinstance(n, ast.UnaryOp) and type(n.op) in _UN:
            return Unary(_UN[type(n.op)], go(n.operand))
        if isinstance(n, ast.BoolOp):
            op = "&" if isinstance(n.op, ast.And) else "|"
            out = go(n.values[0])
            for v in n.values[1:]:
                out = Binary(op, out, go(v))
            return out
        if isinstance(n, ast.Compare):
            if len(n.ops) != 1 or type(n.ops[0]) not in _CMP:
                raise bad("a chained comparison (like 'a < b < c')" if len(n.ops) > 1 else "this comparison")
            return Binary(_CMP[type(n.ops[0])], go(n.left), go(n.comparators[0]))
        if isinstance(n, ast.Call):
            if not isinstance(n.func, ast.Name):
                raise bad("a call of something that is not a function name")
            fn = name_of(n.func)
            spec = functions.get(fn)
            if spec is None:
                raise UnknownFunctionError(
                    f"'{fn}' is not a function a formula may call (in '{text}'); formulas are evaluated by an "
                    f"allow-list, not by Python. Allowed: {', '.join(functions.r_idioms())} and numpy's elementwise "
                    "functions (log, sqrt, arcsin, ... also as np.log, np.sqrt, ...); see docs/formulas.md."
                )
            args = tuple(go(a) for a in n.args)
            kwargs = []
            for kw in n.keywords:
                if kw.arg is None:
                    raise bad("'**' in a call")
                m = _PLACEHOLDER.fullmatch(kw.arg)
                key = names[int(m.group(1))] if m else kw.arg
                kwargs.append((key, go(kw.value)))
            call = Call(fn, args, tuple(kwargs))
            spec.check(call, text)
            return call
        raise bad(_CONSTRUCTS.get(type(n), f"the construct '{type(n).__name__}'"))

    return go(node)


_MAX_DEPTH, _MAX_TOKENS = 200, 5000  # far beyond any model term; keeps the recursive readers off Python's stack limit


def compile_expression(text: str, functions=None) -> Checked:
    """Read one expression of the formula language into a checked tree; nothing is evaluated."""
    if functions is None:
        from .functions import FUNCTIONS as functions
    if not text.strip():
        raise FormulaError("an expression in the formula is empty")
    tokens = tokenize(text)
    depth = max(np.cumsum([(t.text == "(") - (t.text == ")") for t in tokens if t.kind == "op"] or [0]))
    if depth > _MAX_DEPTH or len(tokens) > _MAX_TOKENS:
        raise FormulaError(f"the expression '{text[:80]}...' is nested too deeply or too long to be a model term")
    _check_modulo_precedence(text, tokens)
    _check_in_precedence(text, tokens)
    tr = _translate(text, tokens)
    try:
        tree = ast.parse(tr.source, mode="eval")
    except (RecursionError, MemoryError) as err:
        raise FormulaError(f"the expression '{text[:80]}' is nested too deeply to be a model term") from err
    except SyntaxError as err:
        raise FormulaError(
            f"cannot read '{text}' as an expression: check the parentheses, commas and operators "
            "(e.g. 'log(x)', 'I(x^2)', 'poly(x, 2)')."
        ) from err
    return Checked(_walk(tree.body, tr.names, text, functions), text)


# ---- the tree back to R's text (coefficient names as lme4 prints them) ------------------------------------------------
_PREC = {"||": 1, "&&": 2, "|": 1, "&": 2, "!": 3, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4, "+": 5, "-": 5,
         "*": 6, "/": 6, "%/%": 7, "%%": 7, "%in%": 7, "u-": 8, "^": 9}
_SPACED = {"+", "-", "*", "==", "!=", "<", "<=", ">", ">=", "&", "|", "&&", "||", "%in%"}  # R: PP_BINARY; "/ ^ %% %/%" are PP_BINARY2
_SYNTACTIC = re.compile(r"(?:[^\W\d_]|\.)[\w.]*")


def r_name(name: str) -> str:
    """A name as R deparses it: backquoted unless it is syntactic."""
    return name if _SYNTACTIC.fullmatch(name) and not re.match(r"\.\d", name) else f"`{name}`"


def r_number(v: float) -> str:
    """A number as R's deparse writes it (15 significant digits, the shorter of fixed and e-notation): 2, 0.5, 1e-10,
    1e+05."""
    if v != v:
        return "NaN"
    if v in (float("inf"), float("-inf")):
        return "Inf" if v > 0 else "-Inf"
    mant, exp = f"{v:.14e}".split("e")
    mant = mant.rstrip("0").rstrip(".")
    sci = f"{mant}e{'-' if int(exp) < 0 else '+'}{abs(int(exp)):02d}"
    fixed = np.format_float_positional(float(f"{v:.15g}"), trim="-")
    return fixed if len(fixed) <= len(sci) else sci


def deparse(node: Node) -> str:
    if isinstance(node, Const):
        v = node.value
        if isinstance(v, bool):
            return "TRUE" if v else "FALSE"
        if isinstance(v, str):
            return '"' + v + '"'
        return r_number(v)
    if isinstance(node, Name):
        return r_name(node.name)
    if isinstance(node, Unary):
        inner = deparse(node.operand)
        p = _PREC["u-"] if node.op != "!" else _PREC["!"]
        if isinstance(node.operand, (Binary,)) and _PREC[node.operand.op] < p:
            inner = f"({inner})"
        return f"{node.op}{inner}"
    if isinstance(node, Binary):
        p = _PREC[node.op]
        left, right = deparse(node.left), deparse(node.right)
        right_assoc = node.op == "^"
        if isinstance(node.left, Binary) and (_PREC[node.left.op] < p or (right_assoc and _PREC[node.left.op] == p)):
            left = f"({left})"
        elif isinstance(node.left, Unary) and right_assoc:
            left = f"({left})"
        if isinstance(node.right, Binary) and (_PREC[node.right.op] < p or (not right_assoc and _PREC[node.right.op] == p)):
            right = f"({right})"
        sep = f" {node.op} " if node.op in _SPACED else node.op
        return f"{left}{sep}{right}"
    args = [deparse(a) for a in node.args] + [f"{r_name(k)} = {deparse(v)}" for k, v in node.kwargs]
    return f"{node.fn}({', '.join(args)})"


def names_used(node: Node) -> set[str]:
    """Every name the tree looks up (columns, or constants like pi)."""
    if isinstance(node, Name):
        return {node.name}
    if isinstance(node, Const):
        return set()
    if isinstance(node, Unary):
        return names_used(node.operand)
    if isinstance(node, Binary):
        return names_used(node.left) | names_used(node.right)
    out: set[str] = set()
    for a in node.args:
        out |= names_used(a)
    for _, v in node.kwargs:
        out |= names_used(v)
    return out
