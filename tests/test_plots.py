"""Plots, headless (matplotlib's Agg): each returns a Figure, draws what it says, and accepts ax=."""

import numpy as np
import pytest

import mixedjax as mj

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return mj.lmm("reaction ~ 1 + days + (1 + days | subj)", mj.dataset("sleepstudy"))


def test_plot_ranef_orders_levels_and_draws_intervals(model):
    b = model.ranef()["subj"]
    # conditional variances given explicitly: the half-widths are z_0.975 · sd
    cv = np.zeros((18, 2, 2))
    cv[:, 0, 0], cv[:, 1, 1] = 4.0, 1.0
    fig = model.plot_ranef(condvar=cv)
    assert isinstance(fig, matplotlib.figure.Figure)
    ax0, ax1 = fig.axes[:2]
    assert [a.get_title() for a in (ax0, ax1)] == ["(Intercept)", "days"]
    labels = [t.get_text() for t in ax0.get_yticklabels()]
    assert labels == [str(v) for v in b["(Intercept)"].sort_values(kind="stable").index]
    # the error bars of the first panel: from mode − 1.96·2 to mode + 1.96·2
    segs = [c for c in ax0.collections if hasattr(c, "get_segments")][0].get_segments()
    widths = np.array([s[1][0] - s[0][0] for s in segs])
    np.testing.assert_allclose(widths, 2 * 1.959963984540054 * 2.0, rtol=1e-12)
    plt.close(fig)


def test_plot_ranef_accepts_axes_and_checks_them(model):
    fig, axes = plt.subplots(1, 2)
    assert model.plot_ranef(ax=list(axes)) is fig
    with pytest.raises(mj.ArgumentError, match="2 Axes"):
        model.plot_ranef(ax=axes[0])
    with pytest.raises(mj.ArgumentError, match="group"):
        model.plot_ranef("plate")
    plt.close("all")


def test_plot_residuals(model):
    fig = model.plot_residuals()
    a1, a2 = fig.axes
    x, y = a1.collections[0].get_offsets().T
    np.testing.assert_allclose(x, model.fitted().to_numpy())
    np.testing.assert_allclose(y, model.residuals().to_numpy())
    qx, qy = a2.collections[0].get_offsets().T
    np.testing.assert_allclose(qy, np.sort(model.residuals(type="pearson", scaled=True).to_numpy()))
    assert np.all(np.diff(qx) > 0) and abs(qx.mean()) < 1e-12
    fig2, axes = plt.subplots(1, 2)
    assert model.plot_residuals(ax=axes) is fig2
    plt.close("all")


def test_plot_ranef_uses_the_models_conditional_variances(model):
    if not hasattr(model, "condvar"):
        pytest.skip("condvar() is the inference issue's")
    cv = model.condvar()["subj"]
    fig = model.plot_ranef()
    order = np.argsort(model.ranef()["subj"]["(Intercept)"].to_numpy(), kind="stable")
    for j, ax in enumerate(fig.axes[:2]):
        segs = [c for c in ax.collections if hasattr(c, "get_segments")][0].get_segments()
        widths = np.array([s[1][0] - s[0][0] for s in segs])
        np.testing.assert_allclose(widths, 2 * 1.959963984540054 * np.sqrt(cv[order, j, j]), rtol=1e-12)
    plt.close(fig)
