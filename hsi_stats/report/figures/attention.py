"""Figures of the attention itself: attention against a feature, and each head's attention distribution.

They read the data set an :class:`~hsi_stats.results.HSIResult` keeps; the only numbers computed are display
summaries (bin means with normal intervals).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from numpy.typing import NDArray

from ...formatting import format_number
from ...results import HSIResult
from ._common import (
    COLUMN_WIDTH,
    FONT,
    LOG_FLOOR,
    MAX_HEIGHT,
    N_BINS,
    NOT_VALIDATED_COLOUR,
    OBSERVED_COLOUR,
    PAGE_WIDTH,
    REFERENCE_COLOUR,
    VALIDATED_COLOUR,
    Z95,
    as_bool,
    axes_width,
    category_labels,
    check_axes,
    check_result,
    legend_above,
    level,
    new_axes,
    new_figure,
    paper_figure,
    raw_dataset,
    resolve_head,
    result_short_names,
    split_evenly,
)

__all__ = ["attention_distributions", "attention_vs_feature"]


# ------------------------------------------------------------------------------------ attention vs feature
def _bin_means(x: NDArray[np.float64], y: NDArray[np.float64], n_bins: int) -> NDArray[np.float64]:
    """(bin mean of x, mean of y, half-width of its normal 95% CI, count) for quantile bins of x.

    A value shared by more than ``1 / n_bins`` of the points (a cap such as ttc = 5 s) is a bin of its own, and
    the remaining points share the remaining bins by quantiles, so an atom does not swallow its neighbours.
    """
    values, counts = np.unique(x, return_counts=True)
    atoms = values[counts > x.size / n_bins]
    rest = ~np.isin(x, atoms)
    index = np.empty(x.size, dtype=np.intp)
    index[~rest] = np.searchsorted(atoms, x[~rest]) + n_bins  # after every quantile bin
    if rest.any():
        # At least a bin per 50 points: a feature capped for most entities still shows its shape below the cap.
        n_rest = int(np.clip(max(round(n_bins * rest.mean()), rest.sum() // 50), 1, n_bins))
        edges = np.unique(np.quantile(x[rest], np.linspace(0.0, 1.0, n_rest + 1)))
        index[rest] = np.clip(np.searchsorted(edges, x[rest], side="right") - 1, 0, max(edges.size - 2, 0))
    means = _group_means(index, x, y)
    return means[np.argsort(means[:, 0], kind="stable")]


def _group_means(index: NDArray[np.intp], x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    out = []
    for b in np.unique(index):
        xs, ys = x[index == b], y[index == b]
        half = Z95 * ys.std(ddof=1) / math.sqrt(ys.size) if ys.size > 1 else math.nan
        out.append((xs.mean(), ys.mean(), half, ys.size))
    return np.array(out, dtype=float).reshape(-1, 4)


@paper_figure
def attention_vs_feature(result: HSIResult, head: str | int, feature: str, *, ax: Axes | None = None,
                         max_points: int = 5000) -> Axes:
    """Attention of one head against one feature's value, over the valid entities of every scenario.

    With at most ``max_points`` entities the raw points are drawn (semi-transparent; ``gid="points"``) together
    with binned means; with more, only the binned means are drawn. Bins are 20 quantile bins of the feature
    (fewer when values tie); a binary feature (at most two distinct values, such as the ``is_*`` features) gets
    one bin per value, with jittered points. Binned means carry normal-approximation 95% intervals
    (``gid="binned-means"``) that treat entities as independent: they describe, they do not test. NaN feature
    values are dropped; infinite values cannot be placed on the axis and are dropped with a note in the
    title. The title gives the head's short name, the analysis's rho and its interval, which are
    within-scenario statistics of the chosen estimator, whereas the plot pools all scenarios.

    Parameters
    ----------
    result : HSIResult
        The analysis (``result.dataset`` and ``result.pairs``).
    head : str or int
        Head name or index.
    feature : str
        Feature name.
    ax : matplotlib Axes, optional
        Where to draw; a new figure one column (3.5 in) wide is created when omitted.
    max_points : int, default 5000
        Largest number of entities drawn as individual points.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = check_result(result)
    name = resolve_head(result, head)
    dataset = raw_dataset(result)
    if not isinstance(feature, str) or feature not in dataset.features:
        raise ValueError(f"The value for `feature` must be one of {list(dataset.feature_names)}, "
                         f"but {feature!r} was passed.")
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 0:
        raise ValueError(f"The value for `max_points` must be an integer >= 0, but {max_points!r} was passed.")
    h = dataset.head_names.index(name)
    x_all = np.asarray(dataset.features[feature], dtype=float)[dataset.mask]
    y_all = np.asarray(dataset.attention[:, h, :], dtype=float)[dataset.mask]
    n_nan, n_inf = int(np.isnan(x_all).sum()), int(np.isinf(x_all).sum())
    keep = np.isfinite(x_all)
    x, y = x_all[keep], y_all[keep]

    pair = result.pairs[(result.pairs["head"].astype(str) == name) & (result.pairs["feature"] == feature)]
    rho, low, high = ((float(pair[c].iloc[0]) for c in ("rho", "ci_low", "ci_high")) if len(pair)
                      else (math.nan, math.nan, math.nan))
    notes = [f"n = {x.size} entities"]
    if n_nan:
        notes.append(f"{n_nan} NaN dropped")
    if n_inf:
        notes.append(f"{n_inf} ±inf not shown")

    short = result_short_names(result)[name]
    ax = new_axes(ax, (COLUMN_WIDTH, 3.2))
    ax.set_title(f"{short} vs {feature}\nρ = {format_number(rho, 2)}, {level(result)} CI "
                 f"[{format_number(low, 2)}, {format_number(high, 2)}]\n"
                 + ", ".join(notes), fontsize=FONT)
    ax.set_xlabel(feature)
    ax.set_ylabel(f"attention of {short}")
    if x.size == 0:
        ax.text(0.5, 0.5, "no finite feature values", transform=ax.transAxes, ha="center", va="center")
        return ax

    values = np.unique(x)
    binary = values.size <= 2
    show_points = x.size <= max_points
    if binary:
        index = np.searchsorted(values, x)
        means = _group_means(index, x, y)
        positions = np.arange(values.size, dtype=float)
        if show_points:
            jitter = np.random.default_rng(0).uniform(-0.18, 0.18, size=x.size)
            ax.scatter(positions[index] + jitter, y, s=4, alpha=0.25, color="0.45", linewidths=0, gid="points",
                       rasterized=x.size > 1000)
        bars = ax.errorbar(positions, means[:, 1], yerr=means[:, 2], fmt="o", color=OBSERVED_COLOUR,
                           markersize=5, capsize=4, elinewidth=1.2, zorder=4, label="mean ± 95% CI")
        ax.set_xticks(positions, [f"{feature} = {v:g}\n(n = {int(c)})" for v, c in zip(values, means[:, 3],
                                                                                       strict=True)])
        ax.set_xlim(-0.6, values.size - 0.4)
        ax.set_xlabel("")
    else:
        means = _bin_means(x, y, N_BINS)
        if show_points:
            ax.scatter(x, y, s=4, alpha=0.2, color="0.45", linewidths=0, gid="points", rasterized=x.size > 1000,
                       label="entities")
        bars = ax.errorbar(means[:, 0], means[:, 1], yerr=means[:, 2], fmt="-o", color=OBSERVED_COLOUR,
                           markersize=3, capsize=2, linewidth=1.1, elinewidth=0.8, zorder=4,
                           label=f"mean in {len(means)} bins ± 95% CI")
    data_line = bars.lines[0]
    if data_line is not None:
        data_line.set_gid("binned-means")
    ax.legend(loc="best", framealpha=0.9)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.25)
    return ax


# ------------------------------------------------------------------------------------- distributions
#: Most violins in one row of the figure: more heads go into further rows.
_VIOLINS_PER_PANEL = 24


def _draw_violins(ax: Axes, values: NDArray[np.float64], names: list[str], colours: list[Any], log: bool,
                  uniform: float) -> None:
    frame = pd.DataFrame({"head": np.repeat(names, values.shape[1]), "attention": values.reshape(-1)})
    frame["head"] = pd.Categorical(frame["head"], categories=names)
    sns.violinplot(data=frame, x="head", y="attention", hue="head", palette=dict(zip(names, colours, strict=True)),
                   legend=False, dodge=False, cut=0, density_norm="width", inner="quart", linewidth=0.6,
                   log_scale=bool(log), ax=ax)
    ax.axhline(uniform, color=REFERENCE_COLOUR, linestyle="--", linewidth=0.7)
    category_labels(ax, np.arange(len(names), dtype=float), names, pitch=0.8 * axes_width(ax) / max(1, len(names)))
    if log:
        ax.set_ylim(top=1.0)
    else:
        ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("")
    ax.set_ylabel("attention" + (" (log)" if log else ""))
    ax.grid(axis="y", alpha=0.25)


@paper_figure
def attention_distributions(result: HSIResult, *, ax: Axes | None = None, log: bool = True,
                            max_points: int = 20000) -> Axes:
    """Distribution of each head's attention on valid entities, as violins over heads.

    Violins are coloured by whether the head's label validated, with quartile lines inside, and named by the
    heads' short names. A dashed line marks the mean uniform share (the mean over valid entities of ``1 / n``,
    n being the number of valid entities in the scenario): a head whose violin sits tight around it barely
    selects. Attention is skewed (most entities get little, a few get most), so the axis is logarithmic by
    default; values below ``1e-4`` (including zeros) are then drawn at ``1e-4``, which the title notes. Each
    violin is estimated from at most ``max_points`` entities drawn without replacement with a fixed seed, so
    the figure is reproducible and fast on large runs.

    Parameters
    ----------
    result : HSIResult
        The analysis (``result.dataset``).
    ax : matplotlib Axes, optional
        Where to draw; when omitted, a new figure is created: one column (3.5 in) wide for up to 8 heads, else
        two (7 in), with more than 24 heads split over rows of panels (the first panel is returned).
    log : bool, default True
        Logarithmic attention axis (the density is estimated on that scale).
    max_points : int, default 20000
        Entities per head used for each violin.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = check_result(result)
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
        raise ValueError(f"The value for `max_points` must be an integer >= 1, but {max_points!r} was passed.")
    dataset = raw_dataset(result)
    mask = dataset.mask
    values = np.asarray(dataset.attention, dtype=float).transpose(1, 0, 2)[:, mask]  # (H, entities)
    if values.shape[1] > max_points:
        chosen = np.sort(np.random.default_rng(0).choice(values.shape[1], size=int(max_points), replace=False))
        values = values[:, chosen]
    title = "Attention distribution per head"
    if log:
        floored = int((values < LOG_FLOOR).sum())
        values = np.maximum(values, LOG_FLOOR)
        if floored:
            title += f"\n({floored} values below {LOG_FLOOR:g} drawn at {LOG_FLOOR:g})"
    full = [str(h) for h in dataset.head_names]
    short = result_short_names(result)
    names = [short.get(h, h) for h in full]
    validated = dict(zip(result.heads["head"].astype(str), as_bool(result.heads["validated"]), strict=True))
    colours: list[Any] = [VALIDATED_COLOUR if validated.get(h, False) else NOT_VALIDATED_COLOUR for h in full]
    present = mask.sum(axis=1)
    uniform = float(np.mean(np.repeat(1.0 / np.maximum(present, 1), present)))

    if ax is None:
        chunks = split_evenly(len(names), _VIOLINS_PER_PANEL)
        _, grid = new_figure(COLUMN_WIDTH if len(names) <= 8 else PAGE_WIDTH,
                             min(MAX_HEIGHT, 0.8 + 2.3 * len(chunks)), len(chunks), 1)
        panels = list(grid.ravel())
    else:
        chunks, panels = [range(len(names))], [check_axes(ax)]
    for chunk, panel in zip(chunks, panels, strict=True):
        rows = list(chunk)
        _draw_violins(panel, values[rows], [names[i] for i in rows], [colours[i] for i in rows], log, uniform)
    handles = [Patch(facecolor=VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
               Patch(facecolor=NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated"),
               Line2D([], [], color=REFERENCE_COLOUR, linestyle="--", label=f"mean uniform share ({uniform:.2f})")]
    legend_above(panels[0], handles, title)
    return panels[0]
