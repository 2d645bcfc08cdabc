"""Parse lme4 formulas: ``y ~ fixed + (expr | g) + (expr || g) + (1 | a/b)``.

Only the text is handled here; nothing touches data. The fixed part, the response, each random-effects model
expression and each offset are later read by the formula language (mixedjax.formula.terms / language); the grouping
expressions (``g``, ``a:b``, ``a/b``) are expanded here.
"""

from __future__ import annotations

import functools

import re
from dataclasses import dataclass

from ..errors import ArgumentError, FormulaError, mark_formula, mark_position


@dataclass(frozen=True)
class RandomTerm:
    """One ``(expr | group)`` term as written, after ``/`` and ``||`` expansion."""

    expr: str  # the model expression of the term, e.g. "1 + days" or "0 + days"
    group: tuple[str, ...]  # grouping variables; more than one means their combination (``a:b``)
    source: str  # the text of the term as the user wrote it, for messages
    label: str = ""  # lme4's name of the grouping factor: (1 | a/b) -> 'a' and 'b:a' (names(cnms), confint's names)
    lme4_index: int = 0  # the term's place in lme4's findbars list (|| expanded first, a nest's deepest term first)

    @property
    def group_name(self) -> str:
        return ":".join(self.group)


@dataclass(frozen=True)
class ParsedFormula:
    text: str
    response: str
    fixed: str
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()  # the arguments of the fixed part's offset(...) terms, which add up


def _quoted_end(s: str, i: int) -> int:
    """If a backquoted name or a string starts at ``i``, the index just after it, else ``i``."""
    if s[i] in "`\"'":
        j = s.find(s[i], i + 1)
        return len(s) if j < 0 else j + 1
    return i


def _split_top(s: str, sep: str) -> list[str]:
    """Split ``s`` on ``sep`` where it is not inside parentheses, a backquoted name or a string."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(s):
        c = s[i]
        if (j := _quoted_end(s, i)) != i:
            i = j
            continue
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and s.startswith(sep, i):
            out.append(s[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    out.append(s[start:])
    return out


def _canonical(text: str) -> str:
    """One space around '~', '+', '|' and '||' outside function calls: 'y~1+(1|g)' -> 'y ~ 1 + (1 | g)'."""
    out, i, call_depth, stack = [], 0, 0, []
    while i < len(text):
        c = text[i]
        if (j := _quoted_end(text, i)) != i:  # names and strings are kept as written
            out.append(text[i:j])
            i = j
            continue
        if c == "(":
            is_call = bool(out) and (out[-1][-1:].isalnum() or out[-1][-1:] in "_.")
            stack.append(is_call)
            call_depth += is_call
            out.append(c)
        elif c == ")":
            call_depth -= stack.pop() if stack else 0
            out.append(c)
        elif call_depth == 0 and (c in "~+" or c == "|"):
            op = "||" if text.startswith("||", i) else c
            i += len(op) - 1
            out.append(f" {op} ")
        else:
            out.append(c)
        i += 1
    return _squeeze("".join(out))


def _squeeze(s: str) -> str:
    """Single spaces, none after '(' or before ')', outside backquoted names and strings."""
    pieces, i, start = [], 0, 0
    while i < len(s):
        if (j := _quoted_end(s, i)) != i:
            pieces += [(False, s[start:i]), (True, s[i:j])]
            start = i = j
            continue
        i += 1
    pieces.append((False, s[start:]))
    plain = (re.sub(r"\s+", " ", p).replace("( ", "(").replace(" )", ")") for _, p in pieces)
    return "".join(p if quoted else q for (quoted, p), q in zip(pieces, plain)).strip()


def _check_parens(formula: str) -> None:
    opened: list[int] = []
    skip = 0
    for i, c in enumerate(formula):
        if i < skip:
            continue
        if (j := _quoted_end(formula, i)) != i:
            skip = j
            continue
        if c == "(":
            opened.append(i)
        elif c == ")":
            if not opened:
                raise FormulaError(
                    "unbalanced parentheses: this ')' has no matching '('.\n"
                    + mark_position(formula, i)
                    + "\nFix the parentheses around the random-effects term, e.g. '(1 | g)'."
                )
            opened.pop()
    if opened:
        k = len(opened)
        raise FormulaError(
            f"unbalanced parentheses: {k} '(' {'is' if k == 1 else 'are'} not closed in the formula.\n"
            + mark_position(formula, opened[-1])
            + "\nClose every random-effects term, e.g. '(1 + x | g)'."
        )


def _is_random(piece: str) -> bool:
    p = piece.strip()
    if not (p.startswith("(") and p.endswith(")")):
        return False
    # the outer parentheses must enclose the whole piece
    inner = p[1:-1]
    depth = 0
    for c in inner:
        depth += c == "("
        depth -= c == ")"
        if depth < 0:
            return False
    return len(_split_top(inner, "|")) > 1


def _expand_group(gtext: str, formula: str, source: str) -> list[tuple[str, ...]]:
    """``a`` -> [(a,)], ``a:b`` -> [(a, b)], ``a/b`` -> [(a,), (a, b)], ``a/b/c`` -> [(a,), (a,b), (a,b,c)]."""
    g = gtext.strip()
    if g.startswith("(") and g.endswith(")"):
        g = g[1:-1].strip()
    if not g:
        raise FormulaError(
            f"the grouping side of '{source}' is empty.\n{mark_formula(formula, source)}\n"
            "Name a grouping column after '|', e.g. '(1 | subject)'."
        )
    nests = [p.strip() for p in g.split("/")]
    groups = []
    prefix: tuple[str, ...] = ()
    for part in nests:
        names = tuple(v.strip() for v in part.split(":"))
        if any(not v or not _is_name(v) for v in names):
            raise FormulaError(
                f"cannot read the grouping factor '{gtext.strip()}' in '{source}'.\n{mark_formula(formula, source)}\n"
                "A grouping factor is a column name, 'a:b' (their combination) or 'a/b' (b nested in a)."
            )
        prefix = prefix + tuple(v[1:-1] if len(v) > 1 and v[0] == v[-1] == "`" else v for v in names)
        groups.append(prefix)
    return groups


def _lme4_labels(gtext: str) -> list[str]:
    """lme4's names of the groups of :func:`_expand_group` (same order): 'a/b/c' -> ['a', 'b:a', 'c:(b:a)'], as R
    deparses lme4's expansion of a nest (each level's factor, then the enclosing level's interaction)."""
    g = gtext.strip()
    if g.startswith("(") and g.endswith(")"):
        g = g[1:-1].strip()
    labels: list[str] = []
    for part in g.split("/"):
        own = ":".join(v.strip() for v in part.split(":"))
        if labels:
            outer = labels[-1]
            own = f"{own}:({outer})" if ":" in outer else f"{own}:{outer}"
        labels.append(own)
    return labels


def _is_name(v: str) -> bool:
    if "__" in v:
        return False  # no dunder names, anywhere in a formula
    if len(v) > 2 and v[0] == v[-1] == "`":
        return "`" not in v[1:-1]
    return bool(v) and all(ch.isalnum() or ch in "_." for ch in v)


def _split_columns(expr: str) -> list[str]:
    """For ``||``: '1 + x + z' -> ['1', '0 + x', '0 + z']; '0 + x + z' and 'x + z - 1' -> ['0 + x', '0 + z'].

    Like lme4's expandDoubleVerts, every term of the expanded expression is its own block: 'x * z' ->
    ['1', '0 + x', '0 + z', '0 + x:z'].
    """
    from .terms import split_double_bar

    return split_double_bar(expr)


def parse_formula(formula) -> ParsedFormula:
    """Split an lme4 formula into response, fixed part and random-effects terms."""
    if not isinstance(formula, str):
        raise ArgumentError(
            f"the formula must be a string like 'y ~ 1 + x + (1 | g)', not {type(formula).__name__}"
        )
    return _parse(formula)


@functools.lru_cache(maxsize=256)
def _parse(formula: str) -> ParsedFormula:
    """``parse_formula`` of a string, kept per text (a refit of the same formula parses nothing; a ParsedFormula is
    immutable, and an error is raised again on each call, as lru_cache keeps no exceptions)."""
    if not formula.strip():
        raise FormulaError(
            "the formula is empty. Write it as 'response ~ fixed terms + (1 | group)', "
            "e.g. 'reaction ~ 1 + days + (1 + days | subj)'."
        )
    _check_parens(formula)
    text = _canonical(formula)
    sides = _split_top(text, "~")
    if len(sides) == 1:
        raise FormulaError(
            f"the formula has no '~' between the response and the terms:\n{text}\n"
            "Write it as 'response ~ fixed terms + (1 | group)'."
        )
    if len(sides) > 2:
        second = text.find("~", text.find("~") + 1)
        raise FormulaError(
            f"a formula has exactly one '~' between the response and the terms; this one has {len(sides) - 1}.\n"
            f"{mark_position(text, second)}\nWrite it as 'response ~ fixed terms + (1 | group)'."
        )
    response, rhs = sides[0].strip(), sides[1].strip()
    if not response:
        raise FormulaError(
            f"the formula has no response on the left of '~':\n{mark_position(text, text.find('~'))}\n"
            "Put the response column first, e.g. 'reaction ~ 1 + days + (1 | subj)'."
        )
    if "|" in response or _split_top(response, "+")[1:]:
        raise FormulaError(
            f"the left of '~' must be one response column (or an expression of one), not '{response}'.\n"
            f"{mark_formula(text, response)}\nRandom-effects terms go on the right: 'y ~ 1 + x + (1 | g)'."
        )
    if not rhs:
        raise FormulaError(
            f"the formula has nothing on the right of '~':\n{text}\n"
            "Add the fixed effects and at least one random-effects term, e.g. 'y ~ 1 + x + (1 | g)'."
        )

    from .terms import offset_argument

    fixed, random, offsets = [], [], []
    for piece in _split_top(rhs, "+"):
        p = piece.strip()
        if not p:
            raise FormulaError(
                f"the formula has an empty term (two '+' in a row, or a leading or trailing '+'):\n{text}\n"
                "Remove the extra '+'."
            )
        if _is_random(p):
            inner = p[1:-1]
            double = len(_split_top(inner, "||")) == 2
            parts = _split_top(inner, "||") if double else _split_top(inner, "|")
            if len(parts) != 2:
                raise FormulaError(
                    f"a random-effects term has exactly one '|' (or '||'): cannot read '{p}'.\n"
                    f"{mark_formula(text, p)}\nWrite it as '(model | group)', e.g. '(1 + x | g)'; for a "
                    "combination of grouping factors use '(1 | g:h)', for nesting '(1 | g/h)'."
                )
            expr, gtext = parts[0].strip(), parts[1]
            if not expr:
                raise FormulaError(
                    f"the model side of '{p}' is empty.\n{mark_formula(text, p)}\n"
                    "Put the random-effects columns before '|', e.g. '(1 | g)' or '(1 + x | g)'."
                )
            exprs = _split_columns(expr) if double else [expr]
            if not exprs:
                raise FormulaError(
                    f"the random-effects term '{p}' has no columns.\n{mark_formula(text, p)}\n"
                    "Put at least one column before '||', e.g. '(1 + x || g)' or '(0 + x || g)'."
                )
            grps, labels = _expand_group(gtext, text, p), _lme4_labels(gtext)
            base = len(random)
            random.extend(RandomTerm(e, grp, p, label, base + i * len(grps) + len(grps) - 1 - g)
                          for g, (grp, label) in enumerate(zip(grps, labels)) for i, e in enumerate(exprs))
        elif "|" in p:
            raise FormulaError(
                f"'{p}' uses '|' outside parentheses.\n{mark_formula(text, p)}\n"
                "Wrap each random-effects term in parentheses, e.g. '(1 | g)'."
            )
        elif (arg := offset_argument(p)) is not None:
            if not arg:
                raise FormulaError(f"'{p}' has no argument.\n{mark_formula(text, p)}\nWrite e.g. 'offset(log(t))'.")
            offsets.append(arg)
        else:
            fixed.append(p)
    if not random:
        raise FormulaError(
            f"this is not a mixed model: the formula has no random-effects term like '(1 | group)':\n{text}\n"
            "Add one, e.g. 'y ~ 1 + x + (1 | g)', or fit a linear model with another package."
        )
    fixed_text = " + ".join(fixed) if fixed else "1"
    return ParsedFormula(text=text, response=response, fixed=fixed_text, random=tuple(random), offsets=tuple(offsets))
