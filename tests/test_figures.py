"""The report figures: each runs on ordinary and edge-case results, and what it draws matches the result."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from hsi_stats import HSIDataset, analyze
from hsi_stats.formatting import p_statement
from hsi_stats.report import (
    attention_distributions,
    attention_vs_feature,
    evolution_plot,
    figure_to_png_bytes,
    focus_plot,
    forest_plot,
    hsi_bars,
    null_distributions,
    rho_heatmap,
    save_figure,
)
from hsi_stats.synthetic import generate

PNG = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def dataset() -> HSIDataset:
    return generate(n_episodes=12, n_steps=6, rng=0).dataset


@pytest.fixture(scope="module")
def result(dataset):
    return analyze(dataset, n_resamples=99, rng=0)


@pytest.fixture(scope="module")
def one_head(dataset):
    """One head and one feature."""
    return analyze(dataset.select(heads=["h0"], features=["ttc"]), n_resamples=99, rng=0)


@pytest.fixture(scope="module")
def no_validated():
    res = analyze(generate(n_episodes=12, n_steps=5, null=True, rng=0).dataset, n_resamples=99, rng=0)
    assert not res.heads["validated"].any()
    return res


@pytest.fixture(scope="module")
def non_finite(dataset):
    """ttc with 5 infinite and 3 missing values on valid entities."""
    features = {name: np.array(values) for name, values in dataset.features.items()}
    valid = np.argwhere(dataset.mask)
    features["ttc"][tuple(valid[:5].T)] = np.inf
    features["ttc"][tuple(valid[5:8].T)] = np.nan
    data = HSIDataset(dataset.attention, features, mask=dataset.mask, groups=dataset.groups,
                      head_names=dataset.head_names)
    return analyze(data, n_resamples=99, rng=0)


@pytest.fixture
def per_step() -> pd.DataFrame:
    rows = []
    for step, offset in ((0, 0.0), (1000, 0.1), (2000, 0.2)):
        for head, base, label in (("h0", 0.4, "Safety Head"), ("h1", 0.1, "General Context Head")):
            hsi = base + offset
            rows.append({"step": step, "head": head, "hsi": hsi, "ci_low": hsi - 0.05, "ci_high": hsi + 0.05,
                         "primary_feature": "ttc", "label": label, "validated": head == "h0" and step > 0})
    return pd.DataFrame(rows)


ALL_RESULTS = ["result", "one_head", "no_validated", "non_finite"]
RENDERED = {"one_head", "no_validated"}


def _scatter_by_gid(ax: Axes, gid: str) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection) and c.get_gid() == gid]


def _has_gid(ax: Axes, gid: str) -> bool:
    return any(a.get_gid() == gid for a in [*ax.collections, *ax.lines])


# ------------------------------------------------------------------------------------------ every function
@pytest.mark.parametrize("name", ALL_RESULTS)
def test_every_figure_runs_and_returns_its_axes(name, request):
    res = request.getfixturevalue(name)
    render = name in RENDERED  # drawing (layout, text) must raise no warning either; it is slow, so not for all
    head, feature = res.heads["head"].iloc[0], res.pairs["feature"].iloc[0]
    for draw in (rho_heatmap, hsi_bars, focus_plot, forest_plot, attention_distributions,
                 lambda r: attention_vs_feature(r, head, feature)):
        ax = draw(res)
        assert isinstance(ax, Axes)
        if render:
            assert figure_to_png_bytes(ax, dpi=20).startswith(PNG)
    fig = null_distributions(res)
    assert isinstance(fig, Figure)
    assert sum(a.get_visible() for a in fig.axes) == len(res.heads)
    if render:
        assert figure_to_png_bytes(fig, dpi=20).startswith(PNG)


def test_figures_draw_on_the_axes_they_are_given(result):
    fig, axes = plt.subplots(2, 3)
    drawn = [rho_heatmap(result, ax=axes[0, 0]), hsi_bars(result, ax=axes[0, 1]),
             forest_plot(result, ax=axes[0, 2]), attention_distributions(result, ax=axes[1, 0]),
             attention_vs_feature(result, "h1", "distance_to_ego", ax=axes[1, 1])]
    assert drawn == [axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0], axes[1, 1]]
    assert plt.get_fignums() == [fig.number]


def test_a_result_is_required(result):
    with pytest.raises(TypeError, match="`result` must be an HSIResult"):
        rho_heatmap(result.pairs)
    with pytest.raises(TypeError, match="`ax` must be a matplotlib Axes"):
        hsi_bars(result, ax="left")


# ------------------------------------------------------------------------------------------------ heatmap
def _expected_mark(p: float, alpha: float) -> str:
    return "***" if p < alpha / 50 else "**" if p < alpha / 5 else "*" if p < alpha else ""


@pytest.mark.parametrize("alpha", [0.05, 0.6])
def test_heatmap_annotations_and_marks_match_the_pairs_table(dataset, alpha):
    res = analyze(dataset, n_resamples=99, rng=0, alpha=alpha, correction="maxt-raw")  # every mark level occurs
    ax = rho_heatmap(res)
    heads, features = list(res.heads["head"]), list(pd.unique(res.pairs["feature"]))
    table = res.pairs.set_index(["head", "feature"])
    expected = [f"{table.loc[(h, f), 'rho']:.2f}{_expected_mark(table.loc[(h, f), 'p_adjusted'], alpha)}"
                for h in heads for f in features]
    texts = [t.get_text() for t in ax.texts]
    assert texts == expected
    marked = np.array(["*" in t for t in texts])
    significant = np.array([table.loc[(h, f), "p_adjusted"] < alpha for h in heads for f in features])
    np.testing.assert_array_equal(marked, significant)
    assert marked.any() and not marked.all()
    if alpha == 0.6:  # every mark level occurs (p_adjusted >= 1/100 with 99 resamples)
        assert {t.lstrip("-0123456789.") for t in texts} == {"", "*", "**", "***"}
    assert f"* adjusted p < {alpha:g}" in ax.get_title()
    assert [t.get_text() for t in ax.get_yticklabels()] == heads
    assert [t.get_text() for t in ax.get_xticklabels()] == features


def test_heatmap_leaves_an_undefined_rho_blank(result):
    pairs = result.pairs.copy()
    pairs.loc[0, "rho"] = np.nan
    broken = type(result)(**{**result.__dict__, "pairs": pairs})
    ax = rho_heatmap(broken)
    assert len(ax.texts) == len(pairs) - 1


# ------------------------------------------------------------------------------------------------ focus
def test_focus_bars_and_intervals_are_the_label_features_pairs(result):
    ax = focus_plot(result)
    expected = []
    for head in result.heads.itertuples():
        feature = head.label_feature  # the feature the label is judged on, as in the head table
        row = result.pairs[(result.pairs["head"] == head.head) & (result.pairs["feature"] == feature)].iloc[0]
        expected.append((row["focus"], row["focus_ci_low"], row["focus_ci_high"], f"{feature}: {row['focus_target']}"))
    widths = [patch.get_width() for patch in ax.patches[:len(expected)]]
    np.testing.assert_allclose(widths, [np.nan_to_num(e[0]) for e in expected], rtol=1e-12)
    (error_lines,) = next(c for c in ax.containers if isinstance(c, ErrorbarContainer)).lines[2]
    ends = np.array([[segment[0][0], segment[1][0]] for segment in error_lines.get_segments()])
    np.testing.assert_allclose(ends, [[e[1], e[2]] for e in expected], rtol=1e-12)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert all(e[3] in label for e, label in zip(expected, labels, strict=True))


# ------------------------------------------------------------------------------------------------ HSI bars
def test_hsi_bars_error_bars_are_the_ci_columns(result):
    ax = hsi_bars(result)
    containers = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(containers) == 1
    (bar_lines,) = containers[0].lines[2]
    segments = bar_lines.get_segments()
    assert len(segments) == len(result.heads)
    for x, (segment, (_, head)) in enumerate(zip(segments, result.heads.iterrows(), strict=True)):
        if np.isfinite(head["ci_low"]) and np.isfinite(head["ci_high"]):
            np.testing.assert_allclose(segment[:, 0], [x, x])
            np.testing.assert_allclose(sorted(segment[:, 1]), [head["ci_low"], head["ci_high"]], atol=1e-12)
        else:
            assert len(segment) == 0
    heights = [p.get_height() for p in ax.patches if p.get_width() == pytest.approx(0.7)]
    np.testing.assert_allclose(heights, np.nan_to_num(result.heads["hsi"].to_numpy(float)))


def test_hsi_bars_have_the_strength_lines(result):
    ax = hsi_bars(result)
    horizontal = {line.get_label(): line.get_ydata()[0] for line in ax.lines
                  if len(set(np.asarray(line.get_ydata(), float))) == 1}
    assert horizontal == {"weak": 0.3, "moderate": 0.5, "strong": 0.7}
    assert {"weak (0.3)", "moderate (0.5)", "strong (0.7)"} <= {t.get_text() for t in ax.texts}


def test_hsi_bars_colour_and_label_by_validation(result, no_validated):
    ax = hsi_bars(result)
    bars = [p for p in ax.patches if p.get_width() == pytest.approx(0.7)]
    colours = [tuple(np.round(p.get_facecolor()[:3], 6)) for p in bars]
    validated = result.heads["validated"].to_numpy(bool)
    assert validated.any() and not validated.all()
    assert len({c for c, v in zip(colours, validated, strict=True) if v}) == 1
    assert {c for c, v in zip(colours, validated, strict=True) if v}.isdisjoint(
        {c for c, v in zip(colours, validated, strict=True) if not v})
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == [f"{h}: {lab}" for h, lab in zip(result.heads["head"], result.heads["label"], strict=True)]
    grey = {tuple(np.round(p.get_facecolor()[:3], 6)) for p in hsi_bars(no_validated).patches
            if p.get_width() == pytest.approx(0.7)}
    assert len(grey) == 1


def test_hsi_bars_add_a_line_for_another_threshold(dataset):
    ax = hsi_bars(analyze(dataset, n_resamples=99, rng=0, threshold=0.4))
    assert "threshold" in {line.get_label() for line in ax.lines}


# ------------------------------------------------------------------------------------------------ forest
def test_forest_plot_highlights_exactly_the_significant_pairs(result):
    ax = forest_plot(result)
    alpha = result.settings["alpha"]
    (significant,) = _scatter_by_gid(ax, "significant")
    (other,) = _scatter_by_gid(ax, "not-significant")
    n_significant = int((result.pairs["p_adjusted"] < alpha).sum())
    assert len(significant.get_offsets()) == n_significant
    assert len(other.get_offsets()) == len(result.pairs) - n_significant
    shown = np.sort(np.concatenate([significant.get_offsets()[:, 0], other.get_offsets()[:, 0]]))
    np.testing.assert_allclose(shown, np.sort(result.pairs["rho"].to_numpy(float)))
    np.testing.assert_allclose(np.sort(significant.get_offsets()[:, 0]),
                               np.sort(result.pairs.loc[result.pairs["p_adjusted"] < alpha, "rho"]))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(result.pairs) + len(result.heads)
    assert any(line.get_xdata()[0] == 0 for line in ax.lines)


def test_forest_plot_selects_heads(result):
    ax = forest_plot(result, heads=["h3", 0])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    n_features = result.pairs["feature"].nunique()
    assert len(labels) == 2 * (n_features + 1)
    assert labels[0].startswith("h3") and labels[n_features + 1].startswith("h0")
    one = forest_plot(result, heads="h1")
    assert len(one.get_yticklabels()) == n_features + 1
    with pytest.raises(ValueError, match="The value for `heads` must be one of"):
        forest_plot(result, heads=["h99"])
    with pytest.raises(ValueError, match="The value for `heads` must be None"):
        forest_plot(result, heads=[])


# ------------------------------------------------------------------------------------ attention vs feature
def test_attention_vs_feature_switches_to_binned_means_above_max_points(result):
    n = int(result.dataset.mask.sum())
    few = attention_vs_feature(result, "h1", "distance_to_ego", max_points=n)
    assert _has_gid(few, "points") and _has_gid(few, "binned-means")
    (points,) = _scatter_by_gid(few, "points")
    assert len(points.get_offsets()) == n
    many = attention_vs_feature(result, "h1", "distance_to_ego", max_points=n - 1)
    assert not _has_gid(many, "points") and _has_gid(many, "binned-means")
    pair = result.pairs[(result.pairs["head"] == "h1") & (result.pairs["feature"] == "distance_to_ego")].iloc[0]
    assert f"ρ = {pair['rho']:.2f}" in many.get_title()
    assert f"[{pair['ci_low']:.2f}, {pair['ci_high']:.2f}]" in many.get_title()


def test_attention_vs_feature_binned_means_are_bin_means(result):
    ax = attention_vs_feature(result, "h1", "distance_to_ego", max_points=0)
    (means,) = [line for line in ax.lines if line.get_gid() == "binned-means"]
    x, y = means.get_data()
    assert len(x) == 20
    assert np.all(np.diff(x) > 0)
    attention = result.dataset.attention[:, 1, :][result.dataset.mask]
    feature = result.dataset.features["distance_to_ego"][result.dataset.mask]
    first = feature <= np.quantile(feature, 0.05)
    assert y[0] == pytest.approx(attention[first].mean())


def test_attention_vs_feature_binary_feature_has_two_bins(result):
    for max_points in (0, 10**6):
        ax = attention_vs_feature(result, 2, "is_left", max_points=max_points)
        (means,) = [line for line in ax.lines if line.get_gid() == "binned-means"]
        assert len(means.get_xdata()) == 2
        assert [t.get_text().split("\n")[0] for t in ax.get_xticklabels()] == ["is_left = 0", "is_left = 1"]
        assert _has_gid(ax, "points") == (max_points > 0)


def test_attention_vs_feature_drops_nan_and_inf_with_a_note(non_finite):
    ax = attention_vs_feature(non_finite, "h0", "ttc", max_points=10**6)
    title = ax.get_title()
    assert "3 NaN dropped" in title and "5 ±inf not shown" in title
    (points,) = _scatter_by_gid(ax, "points")
    assert len(points.get_offsets()) == int(non_finite.dataset.mask.sum()) - 8
    assert np.isfinite(points.get_offsets()).all()
    assert figure_to_png_bytes(ax, dpi=20).startswith(PNG)


def test_attention_vs_feature_checks_its_arguments(result):
    with pytest.raises(ValueError, match="The value for `feature` must be one of"):
        attention_vs_feature(result, "h0", "speed")
    with pytest.raises(ValueError, match="The value for `head` must be one of"):
        attention_vs_feature(result, "h9", "ttc")
    with pytest.raises(ValueError, match="The value for `max_points` must be an integer >= 0"):
        attention_vs_feature(result, "h0", "ttc", max_points=-1)


# ------------------------------------------------------------------------------------------- distributions
@pytest.mark.parametrize("log", [True, False])
def test_attention_distributions(result, log):
    ax = attention_distributions(result, log=log, max_points=500)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(result.heads["head"])
    assert ax.get_yscale() == ("log" if log else "linear")
    assert len(ax.collections) >= len(result.heads)


# ------------------------------------------------------------------------------------------ null panels
def test_null_distributions_show_the_observed_hsi_and_p_values(result):
    fig = null_distributions(result, heads=["h0", "h5"])
    panels = [a for a in fig.axes if a.get_visible()]
    assert len(panels) == 2
    for ax, head in zip(panels, ["h0", "h5"], strict=True):
        row = result.heads.set_index("head").loc[head]
        assert ax.get_title() == (f"{head}: {p_statement(row['hsi_p_value'])}, "
                                  f"{p_statement(row['hsi_p_adjusted'], 'adj. p')}")
        vertical = [line.get_xdata()[0] for line in ax.lines]
        assert vertical == [pytest.approx(row["hsi"])]
        assert ax.patches  # the histogram


def test_null_distributions_without_an_observed_hsi(result):
    heads = result.heads.copy()
    heads.loc[0, "hsi"] = np.nan
    fig = null_distributions(type(result)(**{**result.__dict__, "heads": heads}), heads=pd.Series(["h0", "h1"]))
    first, second = fig.axes
    assert not first.lines and len(second.lines) == 1
    assert figure_to_png_bytes(fig, dpi=20).startswith(PNG)


def test_null_distributions_with_one_head(one_head, result):
    fig = null_distributions(one_head)
    assert len(fig.axes) == 1
    fig = null_distributions(result, heads=3, ncols=2)
    assert sum(a.get_visible() for a in fig.axes) == 1
    with pytest.raises(ValueError, match="`ncols` must be an integer >= 1"):
        null_distributions(result, ncols=0)


# ------------------------------------------------------------------------------------------------ evolution
def _line(ax: Axes, head: str):
    (line,) = [line for line in ax.lines if line.get_label().split(":")[0] == head]
    return line


def test_evolution_plot_draws_one_line_per_head(per_step):
    ax = evolution_plot(per_step)
    for head in ("h0", "h1"):
        expected = per_step.loc[per_step["head"] == head, "hsi"].to_numpy()
        np.testing.assert_allclose(_line(ax, head).get_ydata(), expected)
    assert _line(ax, "h0").get_label() == "h0: Safety Head"
    assert _line(ax, "h1").get_label() == "h1"
    assert any(np.allclose(line.get_ydata(), 0.3) for line in ax.lines)
    filled = [c for c in ax.collections if isinstance(c, PathCollection) and len(c.get_offsets())
              and c.get_facecolor()[0][:3].tolist() != [1.0, 1.0, 1.0]]
    assert sum(len(c.get_offsets()) for c in filled) == int(per_step["validated"].sum())


def test_evolution_plot_leaves_gaps_for_missing_rows_and_nan_intervals(per_step):
    gappy = per_step[~((per_step["head"] == "h1") & (per_step["step"] == 1000))].copy()
    gappy.loc[(gappy["head"] == "h0") & (gappy["step"] == 2000), ["ci_low", "ci_high"]] = np.nan
    gappy["validated"] = gappy["validated"].astype(object)
    gappy.loc[gappy["head"] == "h0", "validated"] = [None, True, np.nan]
    ax = evolution_plot(gappy)
    y = np.asarray(_line(ax, "h1").get_ydata(), float)
    assert np.isnan(y[1]) and np.isfinite(y[[0, 2]]).all()
    np.testing.assert_allclose(np.asarray(_line(ax, "h0").get_xdata(), float), [0, 1000, 2000])


def test_evolution_plot_with_a_single_step(per_step):
    ax = evolution_plot(per_step[per_step["step"] == 1000])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1k"]
    assert len(ax.collections) >= 2  # the interval bars stand in for the bands


def test_evolution_plot_checks_the_table(per_step):
    with pytest.raises(ValueError, match=r"must have the columns .* \['validated'\] are missing"):
        evolution_plot(per_step.drop(columns="validated"))
    with pytest.raises(ValueError, match="one row per \\(step, head\\)"):
        evolution_plot(pd.concat([per_step, per_step.iloc[:1]]))
    with pytest.raises(ValueError, match="at least one row"):
        evolution_plot(per_step.iloc[:0])
    with pytest.raises(TypeError, match="`per_step` must be a pandas DataFrame"):
        evolution_plot(per_step.to_dict())


# ------------------------------------------------------------------------------------------------ output
def test_figure_to_png_bytes(result):
    ax = hsi_bars(result)
    data = figure_to_png_bytes(ax, dpi=30)
    assert data.startswith(PNG)
    assert plt.get_fignums() == []  # closed by default
    fig = null_distributions(result, heads=0)
    assert figure_to_png_bytes(fig, dpi=30, close=False).startswith(PNG)
    assert plt.fignum_exists(fig.number)
    _, axes = plt.subplots(1, 2)
    assert figure_to_png_bytes(axes, dpi=30).startswith(PNG)
    with pytest.raises(TypeError, match="`ax_or_fig` must be a matplotlib Axes"):
        figure_to_png_bytes("figure")


def test_save_figure_is_atomic_and_closes(result, tmp_path):
    target = tmp_path / "nested" / "heatmap.png"
    ax = rho_heatmap(result)
    number = ax.figure.number
    save_figure(ax, target, dpi=30)
    assert target.read_bytes().startswith(PNG)
    assert [p.name for p in target.parent.iterdir()] == ["heatmap.png"]
    assert not plt.fignum_exists(number)
    save_figure(null_distributions(result, heads=[0, 1]), target, dpi=30)  # replaces
    assert [p.name for p in target.parent.iterdir()] == ["heatmap.png"]


def test_save_figure_leaves_nothing_when_it_fails(result, tmp_path):
    target = tmp_path / "out.png"
    with pytest.raises(TypeError):
        save_figure(hsi_bars(result), target, dpi="high")
    assert list(tmp_path.iterdir()) == []
    assert plt.get_fignums() == []


def test_evolution_plot_shows_a_named_final_step_one_spacing_on(per_step):
    final = per_step.replace({"step": {2000: 1001}})  # model_final, stored as the last numbered step + 1
    ax = evolution_plot(final, step_names={1001: "final"})
    np.testing.assert_allclose(np.asarray(_line(ax, "h0").get_xdata(), float), [0, 1000, 2000])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1k", "final"]
    many = pd.concat([per_step[per_step["step"] == 0].assign(step=step) for step in range(0, 20_000, 1000)]
                     + [per_step[per_step["step"] == 0].assign(step=19_001)], ignore_index=True)
    ax = evolution_plot(many, step_names={19_001: "final"})
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[-1] == "final" and labels[0] == "0" and len(labels) <= 9
    assert np.asarray(_line(ax, "h0").get_xdata(), float)[-1] == 20_000
