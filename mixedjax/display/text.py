"""Text / HTML / Markdown rendering of fitted models (no statistics here).

The plain-text layout reproduces the printout of MixedModels.jl (with the
coefficient table laid out as StatsBase's ``CoefTable``):

* Header table (ML fits): the five values ``logLik, -2 logLik, AIC, AICc, BIC``
  are written with 4 decimals; every field has width
  ``w = max(longest value + 1, 11)``; values are right-aligned in ``w``;
  labels (``"  logLik"`` -- with two leading blanks --, ``"-2 logLik"``,
  ``"AIC"``, ``"AICc"``, ``"BIC"``) are centred in ``w`` (left-padded to
  ``(w + len) // 2`` then right-padded to ``w``, so the line keeps its trailing
  blanks).  REML fits print `` REML criterion at convergence: <x>`` instead,
  ``x`` written as Julia prints a ``Float64`` (shortest round-trip digits).
* Variance components: name column width = longest group name (``Residual``
  included) + 1, column-name width = longest column name + 1; standard
  deviations and variances share one number of decimals ``d``: the largest
  number of characters after the decimal point among the standard deviations
  written with 6 significant digits (Julia's compact form); variance column
  width = longest variance string + 1, std.dev. width = longest sd string + 1,
  numbers right-aligned; column headers centred in those widths;
  correlations (lower triangle) as ``%+.2f`` right-aligned in width 6, with a
  structural zero (``-0.0``) written ``"   .  "``.
* Fixed effects: row names left-aligned; ``Coef.``/``Std. Error`` with 6
  significant digits and aligned on the decimal point; ``z`` with 2 decimals;
  p-values as StatsBase (``%.4f`` if p >= 1e-4 else ``<1eNN``); each column is
  as wide as its widest entry, widened on the left to fit its header (headers
  right-aligned); columns separated by two blanks; the rules are as wide as
  the table.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata

__all__ = [
    "julia_float_str",
    "format_float_g",
    "format_pvalue",
    "format_teststat",
    "format_varcorr",
    "format_coeftable",
    "format_header_table",
    "summary_text",
    "summary_html",
    "summary_markdown",
    "varcorr_html",
    "coeftable_html",
    "varcorr_markdown",
    "coeftable_markdown",
    "model_repr",
    "problem_repr",
]

RULE = "\u2500"  # '─'


# ---------------------------------------------------------------------------
# low-level helpers
# ---------------------------------------------------------------------------


def textwidth(s: str) -> int:
    """Display width of ``s`` (wide East-Asian characters count 2, combining 0)."""
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


def _lpad(s: str, n: int) -> str:
    return " " * max(0, n - textwidth(s)) + s


def _rpad(s: str, n: int) -> str:
    return s + " " * max(0, n - textwidth(s))


def _cpad(s: str, n: int) -> str:
    """Centre ``s`` in width ``n`` (extra blank goes to the right)."""
    return _rpad(_lpad(s, (n + textwidth(s)) >> 1), n)


def julia_float_str(x: float, sigdigits: int | None = None) -> str:
    """Write ``x`` as Julia's ``show`` does for a ``Float64``.

    ``sigdigits=None``: shortest round-trip digits (Julia's ``show(x)``).
    ``sigdigits=6``: Julia's compact form (``IOContext(io, :compact => true)``).

    Fixed notation is used when the decimal point lies within
    ``-4 < pt <= 6`` (pt = number of integer digits), i.e. for magnitudes in
    [1e-4, 1e6); otherwise ``d.ddde±N`` (``1.0e-5``, ``1.23457e6``).  An
    integer-valued digit string gets a trailing ``.0``.
    """
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    ax = abs(x)
    s = repr(ax)
    if "e" in s:
        m, e = s.split("e")
        e10 = int(e)
    else:
        m, e10 = s, 0
    ip, _, fp = m.partition(".")
    allds = ip + fp
    stripped = allds.lstrip("0")
    # number of digits before the decimal point, counted from the first
    # significant digit (negative for 0.000ddd)
    pt = len(ip) - (len(allds) - len(stripped)) + e10
    digits = stripped.rstrip("0") or "0"
    if sigdigits is not None and len(digits) > sigdigits:
        m, e = ("%.*e" % (sigdigits - 1, ax)).split("e")
        digits = m.replace(".", "").rstrip("0") or "0"
        pt = int(e) + 1
    olength = len(digits)
    exp_form = True
    if -4 < pt <= 6:
        if pt >= olength:
            # Julia switches to exponent form when the printed integer would
            # misrepresent a non-integer value.
            q = 10.0 ** (pt - olength)
            exp_form = abs(math.fmod(ax + 0.05, q) - 0.05) > 0.05
        else:
            exp_form = False
    if not exp_form:
        if pt <= 0:
            body = "0." + "0" * (-pt) + digits
        elif pt >= olength:
            body = digits + "0" * (pt - olength) + ".0"
        else:
            body = digits[:pt] + "." + digits[pt:]
        return sign + body
    frac = digits[1:] or "0"
    return "%s%s.%se%d" % (sign, digits[0], frac, pt - 1)


def format_float_g(x: float, digits: int = 6) -> str:
    """``x`` with ``digits`` significant digits, as Julia's compact float display.

    Like ``%g`` but trailing zeros are dropped while a ``.0`` is kept for
    integer values (``2.0``), and exponent form is only used outside
    [1e-4, 1e6) (``1.23457e-5``).
    """
    return julia_float_str(x, digits)


def format_pvalue(p: float) -> str:
    """StatsBase's p-value format: ``%.4f`` if p >= 1e-4, else ``<1eNN``.

    ``NN`` is ``ceil(log10(p))`` clamped below at -99 and written with at least
    two digits (``<1e-05``, ``<1e-16``, ``<1e-99``).
    """
    p = float(p)
    if math.isnan(p):
        return "NaN"
    if p >= 1e-4:
        return "%.4f" % p
    if p <= 0.0:
        e = -99
    else:
        e = math.ceil(max(math.nextafter(math.log10(p), math.inf), -99.0))
    return "<1e%2.2d" % e


def format_teststat(z: float) -> str:
    """Test statistics are shown with two decimals."""
    z = float(z)
    if math.isnan(z):
        return "NaN"
    if math.isinf(z):
        return "Inf" if z > 0 else "-Inf"
    return "%.2f" % z


def _fixed(x: float, digits: int) -> str:
    x = float(x)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return "%.*f" % (digits, x)


_ALIGN_RE = re.compile(r"^(.*?)((?:[\.eEfF].*)?)$", re.S)


def _num_alignment(s: str) -> tuple[int, int]:
    """Julia's ``Base.alignment`` for a number's string: split at the first
    ``.``/``e``/``E``/``f``/``F`` into (left width, right width)."""
    m = _ALIGN_RE.match(s)
    return textwidth(m.group(1)), textwidth(m.group(2))


def _printdigits(values) -> int:
    """Number of decimals used for the variance-components table."""
    best = 0
    for v in values:
        best = max(best, _num_alignment(julia_float_str(v, 6))[1])
    return max(best - 1, 0)


# ---------------------------------------------------------------------------
# header (fit statistics)
# ---------------------------------------------------------------------------

_HEADER_LABELS = ("  logLik", "-2 logLik", "AIC", "AICc", "BIC")


def format_header_table(loglik, objective, aic, aicc, bic) -> str:
    """The two-line logLik / -2 logLik / AIC / AICc / BIC table (ML fits)."""
    nums = [_fixed(v, 4) for v in (loglik, objective, aic, aicc, bic)]
    fieldwd = max(max(textwidth(s) for s in nums) + 1, 11)
    labels = "".join(_rpad(_lpad(lb, (fieldwd + textwidth(lb)) >> 1), fieldwd) for lb in _HEADER_LABELS)
    values = "".join(_lpad(s, fieldwd) for s in nums)
    return labels + "\n" + values + "\n"


# ---------------------------------------------------------------------------
# variance components
# ---------------------------------------------------------------------------


def _residual_variance(vc):
    rv = getattr(vc, "residual_variance", None)
    if rv is None and vc.residual_sd is not None:
        rv = float(vc.residual_sd) ** 2
    return rv


def _varcorr_strings(vc):
    """Shared by the text/HTML/Markdown renderers: formatted vars/sds/corrs."""
    sds = [float(s) for g in vc.groups for s in g.stddevs]
    vars_ = [float(v) for g in vc.groups for v in g.variances]
    has_resid = vc.residual_sd is not None
    if has_resid:
        sds.append(float(vc.residual_sd))
        vars_.append(float(_residual_variance(vc)))
    digits = _printdigits(sds) if sds else 0
    return [_fixed(v, digits) for v in vars_], [_fixed(s, digits) for s in sds], has_resid


def _corr_str(r: float) -> str:
    r = float(r)
    if r == 0.0 and math.copysign(1.0, r) < 0:
        return "   .  "
    if math.isnan(r):
        return _lpad("NaN", 6)
    return _lpad("%+.2f" % r, 6)


def _has_corr(vc) -> bool:
    return any(g.corr is not None and len(g.columns) > 1 for g in vc.groups)


def format_varcorr(vc) -> str:
    """The ``Variance components:`` block, newline-terminated."""
    showvar, showsd, has_resid = _varcorr_strings(vc)
    nmvec = [str(g.name) for g in vc.groups]
    if has_resid:
        nmvec.append("Residual")
    cnmvec = [str(c) for g in vc.groups for c in g.columns]
    nmwd = max((textwidth(s) for s in nmvec), default=0) + 1
    cnmwd = max((textwidth(s) for s in cnmvec), default=0) + 1
    # the columns at least as wide as their headers (and "Variance" one blank wider), so narrow numbers (small
    # variances) keep "Variance Std.Dev." apart and under their headers
    varwd = max(max((textwidth(s) for s in showvar), default=0) + 1, len("Variance") + 1)
    stdwd = max(max((textwidth(s) for s in showsd), default=0) + 1, len("Std.Dev."))

    out = ["Variance components:\n"]
    head = " " * nmwd + _cpad("Column", cnmwd) + _cpad("Variance", varwd) + _cpad("Std.Dev.", stdwd)
    if _has_corr(vc):
        head += "  Corr."
    out.append(head + "\n")
    ind = 0
    for g in vc.groups:
        for j, col in enumerate(g.columns):
            line = _rpad(str(g.name), nmwd) if j == 0 else " " * nmwd
            line += _rpad(str(col), cnmwd) + _lpad(showvar[ind], varwd) + _lpad(showsd[ind], stdwd)
            if g.corr is not None:
                for k in range(j):
                    line += _corr_str(g.corr[j][k])
            out.append(line + "\n")
            ind += 1
    if has_resid:
        out.append(
            _rpad("Residual", nmwd) + " " * cnmwd + _lpad(showvar[ind], varwd) + _lpad(showsd[ind], stdwd) + "\n"
        )
    return "".join(out)


# ---------------------------------------------------------------------------
# coefficient table
# ---------------------------------------------------------------------------


def _is_pvalue_col(name: str) -> bool:
    return str(name).startswith("Pr(") or str(name) in ("p", "P", "p-value", "pvalue")


def _is_teststat_col(name: str) -> bool:
    return str(name) in ("z", "t", "z value", "t value")


def _coeftable_cells(df):
    """Formatted cells and their (left, right) alignment for each column."""
    import numbers

    rownames = [str(i) for i in df.index]
    cols = []
    for name in df.columns:
        vals = list(df[name])
        cells = []
        for v in vals:
            if _is_pvalue_col(name):
                # shown as a plain (left-aligned) string, like StatsBase
                s = format_pvalue(v)
                cells.append((s, (0, textwidth(s))))
            elif isinstance(v, str):
                cells.append((v, (0, textwidth(v))))
            elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
                s = str(int(v))
                cells.append((s, (textwidth(s), 0)))
            elif _is_teststat_col(name):
                s = format_teststat(v)
                cells.append((s, _num_alignment(s)))
            else:
                s = julia_float_str(v, 6)
                cells.append((s, _num_alignment(s)))
        cols.append((str(name), cells))
    return rownames, cols


def format_coeftable(df) -> str:
    """Fixed-effects table from a DataFrame indexed by coefficient name.

    Returns the block from the first ``─`` rule through the last one (no
    trailing newline, like StatsBase).
    """
    rownames, cols = _coeftable_cells(df)
    sep = "  "
    # per-column (left, right) extents
    A = [(0, max((textwidth(r) for r in rownames), default=0))]
    for name, cells in cols:
        left = max((a[0] for _, a in cells), default=0)
        right = max((a[1] for _, a in cells), default=0)
        hw = len(name)
        if hw > left + right:
            left += hw - (left + right)
        A.append((left, right))
    totwidth = sum(l + r for l, r in A) + len(sep) * (len(A) - 1)
    rule = RULE * totwidth
    lines = [rule]
    head = " " * sum(A[0])
    for (name, _), (l, r) in zip(cols, A[1:]):
        head += sep + _lpad(name, l + r)
    lines.append(head)
    lines.append(rule)
    ncol = len(A)
    for i, rn in enumerate(rownames):
        row = [(rn, (0, textwidth(rn)))] + [cells[i] for _, cells in cols]
        parts = []
        for k, (s, a) in enumerate(row):
            l = " " * (A[k][0] - a[0])
            r = "" if k == ncol - 1 else " " * (A[k][1] - a[1])
            parts.append(l + s + r)
        lines.append(sep.join(parts))
    lines.append(rule)
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# whole-model summary
# ---------------------------------------------------------------------------


def _levels_str(ngroups) -> str:
    return ", ".join(str(int(v)) for v in dict(ngroups).values())


def _notes(m) -> list[str]:
    notes = []
    n_dropped = int(getattr(m, "n_dropped", 0) or 0)
    if n_dropped > 0:
        notes.append(f" Rows dropped for missing values: {n_dropped}")
    if bool(getattr(m, "is_singular", False)):
        notes.append(
            " The fit is singular: a variance component is estimated as zero (or a correlation as \u00b11)."
        )
    optsum = getattr(m, "optsum", None)
    if optsum is not None and not bool(optsum.converged):
        notes.append(f" WARNING: the optimiser did not converge: {optsum.status}")
    return notes


def summary_text(m) -> str:
    """The full MixedModels.jl-style printout (no trailing newline)."""
    out = []
    out.append("Linear mixed model fit by " + ("REML" if m.reml else "maximum likelihood") + "\n")
    out.append(" " + str(m.formula) + "\n")
    if m.reml:
        out.append(" REML criterion at convergence: " + julia_float_str(m.objective) + "\n")
    else:
        out.append(format_header_table(m.loglik, m.objective, m.aic, m.aicc, m.bic))
    out.append("\n")
    out.append(format_varcorr(m.varcorr))
    out.append(f" Number of obs: {int(m.nobs)}; levels of grouping factors: {_levels_str(m.ngroups)}\n")
    for note in _notes(m):
        out.append(note + "\n")
    out.append("\n  Fixed-effects parameters:\n")
    out.append(format_coeftable(m.coeftable()))
    return "".join(out)


# ---------------------------------------------------------------------------
# HTML / Markdown
# ---------------------------------------------------------------------------

_E = html.escape


def varcorr_html(vc) -> str:
    """Variance components as an HTML table."""
    showvar, showsd, has_resid = _varcorr_strings(vc)
    hascorr = _has_corr(vc)
    maxcol = max((len(g.columns) for g in vc.groups), default=1)
    ncorr = maxcol - 1 if hascorr else 0
    h = ['<table class="mixedjax-varcorr">', "<thead><tr>"]
    h.append("<th></th><th>Column</th><th>Variance</th><th>Std.Dev.</th>")
    if ncorr:
        h.append(f'<th colspan="{ncorr}">Corr.</th>')
    h.append("</tr></thead><tbody>")
    ind = 0
    for g in vc.groups:
        for j, col in enumerate(g.columns):
            h.append("<tr>")
            h.append(f'<td style="text-align:left">{_E(str(g.name)) if j == 0 else ""}</td>')
            h.append(f'<td style="text-align:left">{_E(str(col))}</td>')
            h.append(f'<td style="text-align:right">{showvar[ind]}</td>')
            h.append(f'<td style="text-align:right">{showsd[ind]}</td>')
            for k in range(ncorr):
                cell = ""
                if g.corr is not None and k < j:
                    cell = _corr_str(g.corr[j][k]).strip()
                h.append(f'<td style="text-align:right">{cell}</td>')
            h.append("</tr>")
            ind += 1
    if has_resid:
        h.append('<tr><td style="text-align:left">Residual</td><td></td>')
        h.append(f'<td style="text-align:right">{showvar[ind]}</td>')
        h.append(f'<td style="text-align:right">{showsd[ind]}</td>')
        h.append("<td></td>" * ncorr + "</tr>")
    h.append("</tbody></table>")
    return "".join(h)


def coeftable_html(df) -> str:
    """Fixed-effects table as HTML."""
    rownames, cols = _coeftable_cells(df)
    h = ['<table class="mixedjax-coeftable">', "<thead><tr><th></th>"]
    for name, _ in cols:
        h.append(f'<th style="text-align:right">{_E(name)}</th>')
    h.append("</tr></thead><tbody>")
    for i, rn in enumerate(rownames):
        h.append(f'<tr><td style="text-align:left">{_E(rn)}</td>')
        for _, cells in cols:
            h.append(f'<td style="text-align:right">{_E(cells[i][0])}</td>')
        h.append("</tr>")
    h.append("</tbody></table>")
    return "".join(h)


def summary_html(m) -> str:
    """The summary as HTML (for notebooks' ``_repr_html_``)."""
    h = ['<div class="mixedjax-summary">']
    crit = "REML" if m.reml else "maximum likelihood"
    h.append(f"<p><b>Linear mixed model fit by {crit}</b><br/><code>{_E(str(m.formula))}</code></p>")
    if m.reml:
        h.append(f"<p>REML criterion at convergence: {julia_float_str(m.objective)}</p>")
    else:
        vals = [_fixed(v, 4) for v in (m.loglik, m.objective, m.aic, m.aicc, m.bic)]
        h.append('<table class="mixedjax-fitstats"><thead><tr>')
        h.append("".join(f'<th style="text-align:right">{_E(lb.strip())}</th>' for lb in _HEADER_LABELS))
        h.append("</tr></thead><tbody><tr>")
        h.append("".join(f'<td style="text-align:right">{v}</td>' for v in vals))
        h.append("</tr></tbody></table>")
    h.append("<p>Variance components:</p>")
    h.append(varcorr_html(m.varcorr))
    h.append(
        f"<p>Number of obs: {int(m.nobs)}; levels of grouping factors: {_levels_str(m.ngroups)}"
    )
    for note in _notes(m):
        h.append("<br/>" + _E(note.strip()))
    h.append("</p>")
    h.append("<p>Fixed-effects parameters:</p>")
    h.append(coeftable_html(m.coeftable()))
    h.append("</div>")
    return "".join(h)


def _md_cell(s) -> str:
    return str(s).replace("|", "\\|")


def _md_table(header, rows, align) -> str:
    header = [_md_cell(h) for h in header]
    rows = [[_md_cell(c) for c in r] for r in rows]
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join(":---" if a == "l" else "---:" for a in align) + "|")
    for r in rows:
        lines.append("| " + " | ".join(r) + " |")
    return "\n".join(lines) + "\n"


def varcorr_markdown(vc) -> str:
    """Variance components as a Markdown table (correlations in the last columns)."""
    showvar, showsd, has_resid = _varcorr_strings(vc)
    hascorr = _has_corr(vc)
    ncorr = max((len(g.columns) for g in vc.groups), default=1) - 1 if hascorr else 0
    rows = []
    ind = 0
    for g in vc.groups:
        for j, col in enumerate(g.columns):
            corr = [(_corr_str(g.corr[j][k]).strip() if g.corr is not None and k < j else "") for k in range(ncorr)]
            rows.append([str(g.name) if j == 0 else "", str(col), showvar[ind], showsd[ind]] + corr)
            ind += 1
    if has_resid:
        rows.append(["Residual", "", showvar[ind], showsd[ind]] + [""] * ncorr)
    head = ["", "Column", "Variance", "Std.Dev."] + (["Corr."] + [""] * (ncorr - 1) if ncorr else [])
    return _md_table(head, rows, "llrr" + "r" * ncorr)


def coeftable_markdown(df) -> str:
    """Fixed-effects table as a Markdown table."""
    rownames, cols = _coeftable_cells(df)
    rows = [[rn] + [cells[i][0] for _, cells in cols] for i, rn in enumerate(rownames)]
    return _md_table([""] + [n for n, _ in cols], rows, "l" + "r" * len(cols))


def frame_markdown(df) -> str:
    """Any table of numbers (an F table, a likelihood-ratio table) as a Markdown table, numbers in 6 significant
    digits, missing ones blank."""
    def cell(v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return "" if v != v else format_float_g(float(v), 6)
        return html.escape(str(v))

    rows = [[html.escape(str(i))] + [cell(v) for v in r] for i, r in zip(df.index, df.itertuples(index=False))]
    return _md_table([""] + [html.escape(str(c)) for c in df.columns], rows, "l" + "r" * len(df.columns))


def model_repr(m) -> str:
    """One line for the REPL: the class, the formula, the criterion and the fit's size (``print`` gives all)."""
    crit = "REML criterion" if m.reml else "ML, -2 logLik"
    levels = ", ".join(f"{k}: {v}" for k, v in dict(m.ngroups).items())
    return (f"<LinearMixedModel {m.formula} ({crit} {julia_float_str(m.objective, 6)}; {int(m.nobs)} obs; "
            f"levels {levels})>")


def problem_repr(p) -> str:
    """One line for a model that is not fitted yet."""
    d = p.design
    levels = ", ".join(f"{t.name}: {t.nlevels}" for t in d.terms)
    return (f"<Problem {d.formula.text} ({d.n} obs, {d.p} fixed-effect columns, {p.layout.ntheta} θ; "
            f"levels {levels})>")


def summary_markdown(m) -> str:
    """The summary as Markdown tables."""
    out = []
    crit = "REML" if m.reml else "maximum likelihood"
    out.append(f"**Linear mixed model fit by {crit}**\n\n`{m.formula}`\n\n")
    if m.reml:
        out.append(f"REML criterion at convergence: {julia_float_str(m.objective)}\n\n")
    else:
        vals = [_fixed(v, 4) for v in (m.loglik, m.objective, m.aic, m.aicc, m.bic)]
        out.append(_md_table([lb.strip() for lb in _HEADER_LABELS], [vals], "rrrrr") + "\n")
    out.append("Variance components:\n\n")
    out.append(varcorr_markdown(m.varcorr) + "\n")
    out.append(f"Number of obs: {int(m.nobs)}; levels of grouping factors: {_levels_str(m.ngroups)}\n\n")
    for note in _notes(m):
        out.append(note.strip() + "\n\n")
    out.append("Fixed-effects parameters:\n\n")
    out.append(coeftable_markdown(m.coeftable()))
    return "".join(out)
