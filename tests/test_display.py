"""Tests of the display layer (pure formatting, no statistics)."""

import math
import re
import types

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import mixedjax as mj
from mixedjax.display.text import (
    format_coeftable,
    format_float_g,
    format_pvalue,
    format_varcorr,
    julia_float_str,
    summary_html,
    summary_markdown,
    summary_text,
)
from mixedjax.model.varcorr import VarCorr, VarCorrGroup

# ---------------------------------------------------------------------------
# Expected printouts.
#
# The two texts below are the target printouts of the seed document
# (/work/shared/seeds/002_7aecd6f26f27c8bf.txt: dyestuff2 and sleepstudy fits
# in MixedModels.jl's current layout), copied verbatim -- including the
# trailing blanks of the "logLik" header line -- as given in the project
# brief.  They must be reproduced byte for byte.
# ---------------------------------------------------------------------------

DYESTUFF2_EXPECTED = """\
Linear mixed model fit by maximum likelihood
 yield ~ 1 + (1 | batch)
   logLik   -2 logLik     AIC       AICc        BIC    
   -81.4365   162.8730   168.8730   169.7961   173.0766

Variance components:
            Column   Variance Std.Dev.
batch    (Intercept)   0.00000 0.00000
Residual              13.34610 3.65323
 Number of obs: 30; levels of grouping factors: 6

  Fixed-effects parameters:
───────────────────────────────────────────────
              Coef.  Std. Error     z  Pr(>|z|)
───────────────────────────────────────────────
(Intercept)  5.6656    0.666986  8.49    <1e-16
───────────────────────────────────────────────"""

SLEEPSTUDY_EXPECTED = """\
Linear mixed model fit by maximum likelihood
 reaction ~ 1 + days + (1 + days | subj)
   logLik   -2 logLik     AIC       AICc        BIC    
  -875.9697  1751.9393  1763.9393  1764.4249  1783.0971

Variance components:
            Column    Variance Std.Dev.   Corr.
subj     (Intercept)  565.51067 23.78047
         days          32.68212  5.71683 +0.08
Residual              654.94145 25.59182
 Number of obs: 180; levels of grouping factors: 18

  Fixed-effects parameters:
──────────────────────────────────────────────────
                Coef.  Std. Error      z  Pr(>|z|)
──────────────────────────────────────────────────
(Intercept)  251.405      6.63226  37.91    <1e-99
days          10.4673     1.50224   6.97    <1e-11
──────────────────────────────────────────────────"""


# ---------------------------------------------------------------------------
# fake models carrying the seed's numbers
# ---------------------------------------------------------------------------


def _coeftable(names, coef, se):
    coef = np.asarray(coef, dtype=float)
    se = np.asarray(se, dtype=float)
    z = coef / se
    p = 2.0 * norm.sf(np.abs(z))
    return pd.DataFrame(
        {"Coef.": coef, "Std. Error": se, "z": z, "Pr(>|z|)": p}, index=list(names)
    )


def _fake_model(*, formula, objective, dof, nobs, varcorr, ngroups, ct, reml=False,
                n_dropped=0, is_singular=False, converged=True, status="FTOL_REACHED"):
    aic = objective + 2 * dof
    return types.SimpleNamespace(
        reml=reml,
        formula=formula,
        objective=objective,
        loglik=-objective / 2,
        aic=aic,
        aicc=aic + 2 * dof * (dof + 1) / (nobs - dof - 1),
        bic=objective + dof * math.log(nobs),
        varcorr=varcorr,
        nobs=nobs,
        ngroups=ngroups,
        coeftable=lambda: ct,
        n_dropped=n_dropped,
        is_singular=is_singular,
        optsum=types.SimpleNamespace(converged=converged, status=status),
    )


def dyestuff2_model(**kw):
    sigma = 3.6532313513746537
    vc = VarCorr(
        groups=(VarCorrGroup("batch", ("(Intercept)",), (0.0,), (0.0,), None),),
        residual_variance=sigma**2,
        residual_sd=sigma,
    )
    ct = _coeftable(["(Intercept)"], [5.6656], [0.6669857396443264])
    args = dict(formula="yield ~ 1 + (1 | batch)", objective=162.87303665382575, dof=3,
                nobs=30, varcorr=vc, ngroups={"batch": 6}, ct=ct)
    args.update(kw)
    return _fake_model(**args)


def sleepstudy_model(**kw):
    # variances chosen so that both they and their square roots round as printed
    v1, v2, vr = 565.51067, 32.68212, 654.94145
    rho = 0.081
    vc = VarCorr(
        groups=(
            VarCorrGroup(
                "subj",
                ("(Intercept)", "days"),
                (v1, v2),
                (math.sqrt(v1), math.sqrt(v2)),
                ((1.0, rho), (rho, 1.0)),
            ),
        ),
        residual_variance=vr,
        residual_sd=math.sqrt(vr),
    )
    ct = _coeftable(["(Intercept)", "days"], [251.405104848, 10.467285959], [6.632258, 1.502237])
    args = dict(formula="reaction ~ 1 + days + (1 + days | subj)", objective=1751.9393444636682,
                dof=6, nobs=180, varcorr=vc, ngroups={"subj": 18}, ct=ct)
    args.update(kw)
    return _fake_model(**args)


# ---------------------------------------------------------------------------
# (a) seed printouts, line by line and byte for byte
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, expected",
    [(dyestuff2_model, DYESTUFF2_EXPECTED), (sleepstudy_model, SLEEPSTUDY_EXPECTED)],
    ids=["dyestuff2", "sleepstudy"],
)
def test_summary_text_reproduces_seed(make, expected):
    got = summary_text(make())
    got_lines = got.split("\n")
    exp_lines = expected.split("\n")
    for i, (g, e) in enumerate(zip(got_lines, exp_lines)):
        assert g == e, f"line {i}: {g!r} != {e!r}"
    assert len(got_lines) == len(exp_lines)
    assert got == expected


def test_header_line_keeps_trailing_blanks():
    line = summary_text(dyestuff2_model()).split("\n")[2]
    assert line == "   logLik   -2 logLik     AIC       AICc        BIC    "


def test_varcorr_str_and_repr():
    vc = sleepstudy_model().varcorr
    s = str(vc)
    assert s.startswith("Variance components:\n")
    assert s.endswith("Residual              654.94145 25.59182\n")
    assert s == format_varcorr(vc)
    assert repr(vc) == s.rstrip("\n")


def test_varcorr_to_frame():
    df = sleepstudy_model().varcorr.to_frame()
    assert list(df.columns) == ["group", "column", "variance", "stddev", "column2", "corr"]
    assert list(df["group"]) == ["subj", "subj", "subj", "Residual"]
    assert list(df["column"])[:2] == ["(Intercept)", "days"]
    assert df["variance"].iloc[3] == pytest.approx(654.94145)
    # the correlation row, as lme4's as.data.frame(VarCorr(m)): the given correlation and its covariance
    assert (df["column"].iloc[2], df["column2"].iloc[2]) == ("(Intercept)", "days")
    assert df["corr"].iloc[2] == 0.081
    assert df["variance"].iloc[2] == pytest.approx(df["corr"].iloc[2] * df["stddev"].iloc[0] * df["stddev"].iloc[1])


def test_coeftable_rule_width_matches_table():
    block = format_coeftable(sleepstudy_model().coeftable())
    lines = block.split("\n")
    assert lines[0] == lines[2] == lines[-1] == "─" * 50
    assert max(len(x) for x in lines[1:-1] if not x.startswith("─")) == 50


def test_coeftable_decimal_alignment_and_negative_values():
    # StatsBase-like layout: compact numbers aligned on the decimal point
    df = pd.DataFrame(
        {
            "Coef.": [37.1055, -0.000937009, -0.0311566],
            "Std. Error": [2.11082, 0.0103497, 0.0114358],
            "z": [17.58, -0.09, -2.72],
            "Pr(>|z|)": [1e-70, 0.9285, 0.0110],
        },
        index=["(Intercept)", "Disp", "HP"],
    )
    lines = format_coeftable(df).split("\n")
    assert lines[1] == "                    Coef.  Std. Error      z  Pr(>|z|)"
    assert lines[3] == "(Intercept)  37.1055        2.11082    17.58    <1e-69"
    assert lines[4] == "Disp         -0.000937009   0.0103497  -0.09    0.9285"
    assert lines[5] == "HP           -0.0311566     0.0114358  -2.72    0.0110"


# ---------------------------------------------------------------------------
# (b) number formatting
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, expected",
    [
        (1.0, "1.0000"),
        (0.1, "0.1000"),
        (0.0001, "0.0001"),
        (0.04567, "0.0457"),
        (5e-5, "<1e-04"),
        (9.99e-6, "<1e-05"),
        (1.990701744759979e-17, "<1e-16"),
        (1.345e-16, "<1e-15"),
        (3.219369766071773e-12, "<1e-11"),
        (1e-300, "<1e-99"),
        (0.0, "<1e-99"),
        (float("nan"), "NaN"),
    ],
)
def test_format_pvalue(p, expected):
    assert format_pvalue(p) == expected


@pytest.mark.parametrize(
    "x, expected",
    [
        (0.6669857396443264, "0.666986"),
        (5.6656, "5.6656"),
        (251.405104848, "251.405"),
        (10.467285959, "10.4673"),
        (2.0, "2.0"),
        (-0.0311566, "-0.0311566"),
        (0.000123456789, "0.000123457"),
        (1.56734e-13, "1.56734e-13"),
        (1.0e-5, "1.0e-5"),
        (1234567.0, "1.23457e6"),
        (100000.0, "100000.0"),
        (0.0, "0.0"),
    ],
)
def test_format_float_g(x, expected):
    assert format_float_g(x) == expected


@pytest.mark.parametrize(
    "x, expected",
    [
        (1751.9393444636682, "1751.9393444636682"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1234567.0, "1.234567e6"),
        (123456.7, "123456.7"),
        (1e-5, "1.0e-5"),
        (12.0, "12.0"),
    ],
)
def test_julia_float_str_full(x, expected):
    assert julia_float_str(x) == expected


# ---------------------------------------------------------------------------
# (c) REML header and notes
# ---------------------------------------------------------------------------


def test_reml_header():
    m = sleepstudy_model(reml=True, objective=1743.6282719599653)
    lines = summary_text(m).split("\n")
    assert lines[0] == "Linear mixed model fit by REML"
    assert lines[1] == " reaction ~ 1 + days + (1 + days | subj)"
    assert lines[2] == " REML criterion at convergence: 1743.6282719599653"
    assert lines[3] == ""
    assert lines[4] == "Variance components:"
    assert "logLik" not in summary_text(m)


def test_no_notes_by_default():
    txt = summary_text(sleepstudy_model())
    assert "singular" not in txt
    assert "WARNING" not in txt
    assert "dropped" not in txt


def test_notes_appear_after_number_of_obs():
    m = dyestuff2_model(n_dropped=3, is_singular=True, converged=False, status="MAXEVAL_REACHED")
    lines = summary_text(m).split("\n")
    i = lines.index(" Number of obs: 30; levels of grouping factors: 6")
    assert lines[i + 1] == " Rows dropped for missing values: 3"
    assert lines[i + 2] == (
        " The fit is singular: a variance component is estimated as zero (or a correlation as ±1)."
    )
    assert lines[i + 3] == " WARNING: the optimiser did not converge: MAXEVAL_REACHED"
    assert lines[i + 4] == ""
    assert lines[i + 5] == "  Fixed-effects parameters:"


def test_several_grouping_factors_levels():
    m = dyestuff2_model(ngroups={"s": 2972, "d": 1128})
    assert " Number of obs: 30; levels of grouping factors: 2972, 1128" in summary_text(m).split("\n")


# ---------------------------------------------------------------------------
# (d) HTML / Markdown
# ---------------------------------------------------------------------------


def test_varcorr_repr_html_contains_columns():
    h = sleepstudy_model().varcorr._repr_html_()
    assert h.startswith("<table")
    for s in ("Column", "Variance", "Std.Dev.", "Corr.", "(Intercept)", "days", "subj",
              "Residual", "565.51067", "+0.08"):
        assert s in h


def test_summary_html_and_markdown():
    m = sleepstudy_model()
    h = summary_html(m)
    for s in ("maximum likelihood", "1751.9393", "Pr(&gt;|z|)", "&lt;1e-99", "251.405", "subj"):
        assert s in h
    md = summary_markdown(m)
    assert "| (Intercept) | 251.405 | 6.63226 | 37.91 | <1e-99 |" in md


# ---------------------------------------------------------------------------
# (e) structural-zero correlations
# ---------------------------------------------------------------------------


def test_negative_zero_correlation_shows_dot():
    vc = VarCorr(
        groups=(
            VarCorrGroup(
                "g",
                ("(Intercept)", "x", "z"),
                (4.0, 1.0, 0.36),
                (2.0, 1.0, 0.6),
                ((1.0, 0.5, -0.0), (0.5, 1.0, -0.0), (-0.0, -0.0, 1.0)),
            ),
        ),
        residual_variance=1.0,
        residual_sd=1.0,
    )
    lines = format_varcorr(vc).split("\n")
    assert lines[1].endswith("  Corr.")
    assert lines[2] == "g        (Intercept)       4.0     2.0"
    assert lines[3] == "         x                 1.0     1.0 +0.50"
    assert lines[4] == "         z                 0.4     0.6   .     .  "
    assert lines[5] == "Residual                   1.0     1.0"
    # a genuine (non-structural) zero correlation is printed as a number
    vc0 = VarCorr(
        groups=(VarCorrGroup("g", ("a", "b"), (1.0, 1.0), (1.0, 1.0), ((1.0, 0.0), (0.0, 1.0))),),
        residual_variance=None,
        residual_sd=None,
    )
    assert format_varcorr(vc0).split("\n")[3].endswith("+0.00")


def test_uncorrelated_term_has_no_corr_column():
    vc = VarCorr(
        groups=(VarCorrGroup("g", ("(Intercept)", "x"), (4.0, 1.0), (2.0, 1.0), None),),
        residual_variance=1.0,
        residual_sd=1.0,
    )
    txt = format_varcorr(vc)
    assert "Corr." not in txt
    assert txt.split("\n")[3] == "         x                 1.0     1.0"


# ---------------------------------------------------------------------------
# (f) REPL and notebook representations of models, problems and tables
# ---------------------------------------------------------------------------


def _fitted_sleepstudy():
    import mixedjax as mj

    return mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))


def test_model_and_problem_repr_are_short():
    m = _fitted_sleepstudy()
    r = repr(m)
    assert "\n" not in r and len(r) < 200
    assert r.startswith("<LinearMixedModel reaction ~ 1 + days + (1 + days | subj)")
    assert "180 obs" in r and "subj: 18" in r
    assert str(m) == summary_text(m) and str(m).count("\n") > 10
    p = repr(m.problem)
    assert "\n" not in p and len(p) < 200 and p.startswith("<Problem reaction ~")


def test_notebook_renderings():
    m = _fitted_sleepstudy()
    assert m._repr_html_().startswith('<div class="mixedjax-summary">')
    md = m._repr_markdown_()
    assert md.startswith("**Linear mixed model fit by maximum likelihood**")
    # the correlation is in the markdown variance table
    assert "| Corr. |" in md and "+0.08" in md
    ct = m.coeftable()
    assert isinstance(ct, pd.DataFrame)
    assert str(ct) == format_coeftable(ct)
    assert ct._repr_html_().startswith('<table class="mixedjax-coeftable">')
    assert ct._repr_markdown_().splitlines()[0] == "|  | Coef. | Std. Error | z | Pr(>\\|z\\|) |"
    assert type(ct * 2) is pd.DataFrame  # derived tables are plain DataFrames
    vc = m.varcorr
    assert vc._repr_markdown_().splitlines()[2].startswith("| subj | (Intercept) |")


def test_small_variances_keep_header_apart():
    vc = VarCorr(groups=(VarCorrGroup("g", ("(Intercept)",), (0.0,), (0.0,)),), residual_variance=0.04,
                 residual_sd=0.2)
    lines = format_varcorr(vc).split("\n")
    assert "Variance Std.Dev." in lines[1]
    # the numbers end under the ends of their headers
    assert lines[2].rstrip().endswith("0.0") and len(lines[2]) == len(lines[1])


def test_tidy_layout():
    m = _fitted_sleepstudy()
    t = m.tidy()
    assert list(t.columns) == ["effect", "group", "term", "estimate", "std_error", "statistic", "df", "p_value"]
    assert list(t["term"]) == ["(Intercept)", "days", "sd__(Intercept)", "sd__days", "cor__(Intercept).days",
                               "sd__Observation"]
    assert list(t["effect"]) == ["fixed"] * 2 + ["ran_pars"] * 4
    np.testing.assert_allclose(t["estimate"].iloc[:2], m.fixef.to_numpy())
    np.testing.assert_allclose(t["std_error"].iloc[:2], m.stderror.to_numpy())
    vc = m.varcorr
    np.testing.assert_allclose(t["estimate"].iloc[2:], [*vc.groups[0].stddevs, vc.groups[0].corr[1][0], m.sigma])
    assert t["df"].isna().all()


def test_tidy_takes_df_and_t_from_a_ddf_coeftable():
    # the inference issue's coeftable(ddf=...) layout: Coef., Std. Error, df, t, Pr(>|t|)
    from mixedjax.display.tables import tidy_frame

    ct = pd.DataFrame({"Coef.": [1.5, -2.0], "Std. Error": [0.5, 1.0], "df": [17.0, 17.0], "t": [3.0, -2.0],
                       "Pr(>|t|)": [0.008, 0.06]}, index=["(Intercept)", "x"])
    vc = VarCorr(groups=(VarCorrGroup("g", ("(Intercept)",), (4.0,), (2.0,)),), residual_variance=1.0,
                 residual_sd=1.0)
    t = tidy_frame(ct, vc)
    assert list(t["df"].iloc[:2]) == [17.0, 17.0]
    assert list(t["statistic"].iloc[:2]) == [3.0, -2.0]
    assert list(t["p_value"].iloc[:2]) == [0.008, 0.06]
    assert list(t["term"].iloc[2:]) == ["sd__(Intercept)", "sd__Observation"]
    assert list(t["estimate"].iloc[2:]) == [2.0, 1.0]


def test_test_tables_render_as_markdown():
    """anova, contrast and mj.anova tables are DataFrames that also render as Markdown for notebooks."""
    from mixedjax.display.tables import TestTable

    m0 = mj.lmm("reaction ~ 1 + days + (1 | subj)", mj.dataset("sleepstudy"))
    m1 = mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))
    for table in (mj.anova(m0, m1), m1.anova(type=3), m1.contrast([0, 1])):
        assert isinstance(table, TestTable) and isinstance(table, pd.DataFrame)
        md = table._repr_markdown_().splitlines()
        assert len(md) == 2 + len(table)  # header, alignment row, one row per test
        assert len(re.findall(r"(?<!\\)\|", md[0])) == len(table.columns) + 2  # unescaped cell separators
    lrt = mj.anova(m0, m1)._repr_markdown_().splitlines()
    assert "42.1393" in lrt[3] and lrt[2].split("|")[-2].strip() == ""  # the first model's test cells are blank
