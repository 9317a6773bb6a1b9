"""Figures of an analysis: each takes a result object and draws one view of it with seaborn and matplotlib.

Every figure function takes the data (an :class:`~hsi_stats.results.HSIResult`, or the ``per_step`` table of an
evolution result) first and its options keyword-only. Single-panel figures accept ``ax=None`` (a new figure is
created with :mod:`matplotlib.pyplot` only when no axes are given) and return the Axes they drew on;
:func:`null_distributions` draws one panel per head and returns the Figure. :func:`save_figure` and
:func:`figure_to_png_bytes` accept whatever a figure function returned.

This module only draws: it computes nothing beyond descriptive summaries (bin means for display), never
changes the matplotlib backend and never calls ``plt.show``. The statistics layer must never import it.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter
from matplotlib.transforms import ScaledTranslation
from numpy.typing import NDArray

from .._atomic import atomic_path
from ..evolution import PER_STEP_COLUMNS
from ..labels import STRENGTH_BANDS
from ..results import HSIResult
from ..settings import AnalysisSettings
from .formatting import format_number, format_p

__all__ = [
    "STRENGTH_LINES",
    "attention_distributions",
    "attention_vs_feature",
    "evolution_plot",
    "figure_to_png_bytes",
    "forest_plot",
    "hsi_bars",
    "null_distributions",
    "rho_heatmap",
    "save_figure",
]

STRENGTH_LINES: tuple[tuple[float, str], ...] = tuple((band.lower, band.name) for band in STRENGTH_BANDS[::-1])
"""HSI bands of the interpretation guide (:data:`hsi_stats.labels.STRENGTH_BANDS`) drawn as reference lines."""

_VALIDATED_COLOUR = sns.color_palette("colorblind")[0]
_NOT_VALIDATED_COLOUR = (0.72, 0.72, 0.72)
_OBSERVED_COLOUR = sns.color_palette("colorblind")[3]
_REFERENCE_COLOUR = "0.35"
_N_BINS = 20
_LOG_FLOOR = 1e-4
_Z95 = 1.959963984540054


# ------------------------------------------------------------------------------------------------ helpers
def _new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"The value for `ax` must be a matplotlib Axes or None, but {type(ax).__name__} "
                            "was passed.")
        return ax
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def _check_result(result: object) -> HSIResult:
    if not isinstance(result, HSIResult):
        raise TypeError(f"`result` must be an HSIResult (from hsi_stats.analyze), but {type(result).__name__} "
                        "was passed.")
    return result


def _root_figure(artist: Axes | Figure | SubFigure) -> Figure:
    fig: object
    try:
        fig = artist.get_figure(root=True)
    except TypeError:  # pragma: no cover - matplotlib < 3.10 has no `root`
        fig = artist.figure if isinstance(artist, (Axes, SubFigure)) else artist
    if not isinstance(fig, Figure):
        raise TypeError("The axes or subfigure passed is not attached to a figure.")
    return fig


def _as_figure(ax_or_fig: object) -> Figure:
    """The root Figure of an Axes, an array or sequence of Axes, a (Sub)Figure or a seaborn grid."""
    if isinstance(ax_or_fig, (Figure, SubFigure, Axes)):
        return _root_figure(ax_or_fig)
    if isinstance(ax_or_fig, (np.ndarray, list, tuple)):
        flat = np.asarray(ax_or_fig, dtype=object).ravel()
        if flat.size and all(isinstance(a, Axes) for a in flat):
            return _root_figure(flat[0])
    figure = getattr(ax_or_fig, "figure", None)  # seaborn FacetGrid, PairGrid, JointGrid
    if isinstance(figure, (Figure, SubFigure)):
        return _root_figure(figure)
    raise TypeError("The value for `ax_or_fig` must be a matplotlib Axes, an array of Axes, a Figure or a "
                    f"seaborn grid, but {type(ax_or_fig).__name__} was passed.")


def _head_names(result: HSIResult) -> list[str]:
    return [str(h) for h in result.heads["head"]]


def _feature_names(result: HSIResult) -> list[str]:
    return [str(f) for f in pd.unique(result.pairs["feature"])]


def _resolve_head(result: HSIResult, head: object, param: str = "head") -> str:
    names = _head_names(result)
    if isinstance(head, str) and head in names:
        return head
    if isinstance(head, (int, np.integer)) and not isinstance(head, bool) and -len(names) <= head < len(names):
        return names[int(head)]
    raise ValueError(f"The value for `{param}` must be one of {names} or an index below {len(names)}, "
                     f"but {head!r} was passed.")


def _resolve_heads(result: HSIResult, heads: object) -> list[str]:
    if heads is None:
        return _head_names(result)
    try:
        items = [heads] if isinstance(heads, (str, int, np.integer)) else list(heads)  # type: ignore[call-overload]
    except TypeError:
        items = []
    if len(items) == 0:
        raise ValueError(f"The value for `heads` must be None, a head name or index, or a non-empty sequence of "
                         f"them, but {heads!r} was passed.")
    chosen = [_resolve_head(result, h, "heads") for h in items]
    return list(dict.fromkeys(chosen))


def _significance_mark(p: float, alpha: float) -> str:
    """``***`` below alpha/50, ``**`` below alpha/5, ``*`` below alpha, else nothing (NaN: nothing)."""
    if not p < alpha:
        return ""
    if p < alpha / 50:
        return "***"
    if p < alpha / 5:
        return "**"
    return "*"


def _as_bool(values: pd.Series) -> NDArray[np.bool_]:
    """True only where a value is present and truthy (NaN and missing count as False)."""
    return np.array([bool(v) if not pd.isna(v) else False for v in values], dtype=bool)


def _level(result: HSIResult) -> str:
    return f"{100 * float(result.settings.confidence_level):g}%"


# ------------------------------------------------------------------------------------------------ heatmap
def rho_heatmap(result: HSIResult, *, ax: Axes | None = None) -> Axes:
    """Heatmap of rho (heads x features) with significance marks from the adjusted p-values.

    Each cell shows rho to two decimals followed by ``*`` when its adjusted p-value is below ``alpha``
    (``result.settings.alpha``), ``**`` below ``alpha / 5`` and ``***`` below ``alpha / 50``; the title
    explains the marks. The colour map is diverging, centred at 0, from -1 to 1. A pair with an undefined rho
    (NaN) is left blank.

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.pairs``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure sized to the table is created when omitted.

    Returns
    -------
    matplotlib.axes.Axes
        The heatmap's axes (the colour bar lives on its own axes of the same figure).

    Examples
    --------
    >>> from hsi_stats import analyze
    >>> from hsi_stats.synthetic import generate
    >>> result = analyze(generate(n_episodes=12, n_steps=5, rng=0).dataset, n_resamples=99, rng=0)
    >>> ax = rho_heatmap(result)
    >>> len(ax.texts) == len(result.pairs)
    True
    >>> save_figure(ax, __import__("tempfile").mkdtemp() + "/rho.png")
    """
    result = _check_result(result)
    heads, features = _head_names(result), _feature_names(result)
    alpha = float(result.settings.alpha)
    rho = result.pairs.pivot(index="head", columns="feature", values="rho").reindex(index=heads, columns=features)
    p_adj = result.pairs.pivot(index="head", columns="feature", values="p_adjusted").reindex(
        index=heads, columns=features)
    annot = np.array([[("" if not math.isfinite(r) else f"{r:.2f}{_significance_mark(p, alpha)}")
                       for r, p in zip(rho_row, p_row, strict=True)]
                      for rho_row, p_row in zip(rho.to_numpy(float), p_adj.to_numpy(float), strict=True)])
    ax = _new_axes(ax, (max(5.0, 0.95 * len(features) + 2.6), max(2.6, 0.5 * len(heads) + 2.0)))
    sns.heatmap(rho.astype(float), ax=ax, cmap="RdBu_r", vmin=-1.0, vmax=1.0, annot=annot, fmt="",
                annot_kws={"fontsize": 9}, linewidths=0.5, linecolor="white", square=False,
                cbar_kws={"label": "ρ", "shrink": 0.9})
    ax.set_xlabel("feature")
    ax.set_ylabel("head")
    ax.tick_params(axis="y", rotation=0)
    plt.setp(ax.get_xticklabels(), rotation=35, ha="right", rotation_mode="anchor")
    ax.set_title(f"Correlation ρ of attention with each feature\n* adjusted p < {alpha:g}, ** < {alpha / 5:g}, "
                 f"*** < {alpha / 50:g}", fontsize=11)
    return ax


# ------------------------------------------------------------------------------------------------ HSI bars
def hsi_bars(result: HSIResult, *, ax: Axes | None = None) -> Axes:
    """HSI per head with its confidence interval, strength lines and validated labels.

    Bars are coloured by whether the head's label validated; each head's tick names its label. The interval
    is drawn as an error bar from ``heads.ci_low`` to ``heads.ci_high`` exactly (a BCa interval need not contain
    the estimate), as the first :class:`~matplotlib.container.ErrorbarContainer` of the axes. Horizontal lines
    mark the bands of :data:`STRENGTH_LINES`, plus the validation threshold if the analysis used another one.

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.heads``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is created when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = _check_result(result)
    table = result.heads
    n = len(table)
    x = np.arange(n, dtype=float)
    hsi = table["hsi"].to_numpy(float)
    low, high = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    validated = _as_bool(table["validated"])
    colours = [_VALIDATED_COLOUR if v else _NOT_VALIDATED_COLOUR for v in validated]

    ax = _new_axes(ax, (max(4.5, 0.75 * n + 2.5), 4.8))
    ax.bar(x, np.nan_to_num(hsi), width=0.7, color=colours, edgecolor="0.25", linewidth=0.6, zorder=2)
    # Centre the bar on the interval's midpoint so its extent is exactly [ci_low, ci_high].
    ax.errorbar(x, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor="0.1", elinewidth=1.3,
                capsize=4, zorder=3, label=f"{_level(result)} CI")
    threshold = result.settings.threshold
    lines = list(STRENGTH_LINES)
    if not any(math.isclose(threshold, v) for v, _ in lines):
        lines.append((threshold, "threshold"))
    for value, name in lines:
        ax.axhline(value, color=_REFERENCE_COLOUR, linestyle="--", linewidth=0.9, zorder=1, label=name)
        ax.text(1.01, value, f"{name} ({value:g})", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=8, color=_REFERENCE_COLOUR)
    names = [f"{h}: {lab}" if isinstance(lab, str) and lab else str(h)
             for h, lab in zip(table["head"], table["label"], strict=True)]
    ax.set_xticks(x, names, rotation=35, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("HSI = max |ρ| over features")
    ax.set_title("Head Specialization Index per head")
    handles = [Patch(facecolor=_VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
               Patch(facecolor=_NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated"),
               Line2D([], [], color="0.1", marker="_", markersize=8, label=f"{_level(result)} CI")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.25, zorder=0)
    return ax


# ------------------------------------------------------------------------------------------------ forest
def forest_plot(result: HSIResult, *, heads: Sequence[str | int] | str | int | None = None,
                ax: Axes | None = None) -> Axes:
    """rho with its confidence interval for every (head, feature) pair, grouped by head.

    Each head starts a group with a bold header (head and label); pairs whose adjusted p-value is below
    ``alpha`` are drawn in colour with filled markers (scatter ``gid="significant"``), the others in grey with
    open markers (``gid="not-significant"``). A vertical line marks 0 and dotted lines the validation threshold
    ``±threshold``.

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.pairs``).
    heads : head name, index or sequence of them, optional
        The heads to show, in this order; all heads by default.
    ax : matplotlib Axes, optional
        Where to draw; a new figure whose height follows the number of rows is created when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = _check_result(result)
    chosen = _resolve_heads(result, heads)
    alpha = float(result.settings.alpha)
    threshold = result.settings.threshold
    labels = dict(zip(result.heads["head"].astype(str), result.heads["label"], strict=True))
    order = {f: i for i, f in enumerate(_feature_names(result))}

    ticks: list[float] = []
    tick_labels: list[str] = []
    headers: list[int] = []
    rows: list[tuple[float, float, float, float, bool]] = []
    y = 0.0
    for head in chosen:
        sub = result.pairs[result.pairs["head"].astype(str) == head]
        sub = sub.iloc[np.argsort([order[str(f)] for f in sub["feature"]], kind="stable")]
        headers.append(len(ticks))
        ticks.append(y)
        label = labels.get(head)
        tick_labels.append(f"{head}: {label}" if isinstance(label, str) and label else head)
        y += 1.0
        for _, pair in sub.iterrows():
            ticks.append(y)
            tick_labels.append(str(pair["feature"]))
            rows.append((y, float(pair["rho"]), float(pair["ci_low"]), float(pair["ci_high"]),
                         bool(pair["p_adjusted"] < alpha)))
            y += 1.0
        y += 0.5

    ax = _new_axes(ax, (7.0, max(2.5, 0.24 * y + 1.4)))
    data = np.array([r[:4] for r in rows], dtype=float).reshape(-1, 4)
    significant = np.array([r[4] for r in rows], dtype=bool)
    sig_colour, grey = _VALIDATED_COLOUR, "0.55"
    for keep, colour, gid, filled in ((~significant, grey, "not-significant", False),
                                      (significant, sig_colour, "significant", True)):
        part = data[keep]
        ax.hlines(part[:, 0], part[:, 2], part[:, 3], color=colour, linewidth=1.6 if filled else 1.1, zorder=2)
        ax.scatter(part[:, 1], part[:, 0], s=26, zorder=3, gid=gid, linewidths=1.1,
                   facecolors=colour if filled else "white", edgecolors=colour)
    ax.axvline(0.0, color="0.2", linewidth=0.9, zorder=1)
    for value in (-threshold, threshold):
        ax.axvline(value, color=_REFERENCE_COLOUR, linestyle=":", linewidth=0.9, zorder=1)
    for header in headers[1:]:
        ax.axhline(ticks[header] - 0.75, color="0.85", linewidth=0.8, zorder=0)
    ax.set_yticks(ticks, tick_labels, fontsize=8)
    for index in headers:
        ax.get_yticklabels()[index].set_fontweight("bold")
    ax.set_ylim(y - 0.5, -0.8)
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel(f"ρ with {_level(result)} CI")
    ax.set_title("ρ per head and feature")
    handles = [Line2D([], [], color=sig_colour, marker="o", label=f"adjusted p < {alpha:g}"),
               Line2D([], [], color=grey, marker="o", markerfacecolor="white", label="not significant"),
               Line2D([], [], color=_REFERENCE_COLOUR, linestyle=":", label=f"±{threshold:g} (threshold)")]
    below_label = ScaledTranslation(0.0, -0.42, _root_figure(ax).dpi_scale_trans)  # inches, whatever the height
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=ax.transAxes + below_label,
              ncols=3, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.25, zorder=0)
    return ax


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
        half = _Z95 * ys.std(ddof=1) / math.sqrt(ys.size) if ys.size > 1 else math.nan
        out.append((xs.mean(), ys.mean(), half, ys.size))
    return np.array(out, dtype=float).reshape(-1, 4)


def attention_vs_feature(result: HSIResult, head: str | int, feature: str, *, ax: Axes | None = None,
                         max_points: int = 5000) -> Axes:
    """Attention of one head against one feature's value, over the valid entities of every scenario.

    With at most ``max_points`` entities the raw points are drawn (semi-transparent; ``gid="points"``) together
    with binned means; with more, only the binned means are drawn. Bins are 20 quantile bins of the feature
    (fewer when values tie); a binary feature (at most two distinct values, such as the ``is_*`` features) gets
    one bin per value, with jittered points. Binned means carry normal-approximation 95% intervals
    (``gid="binned-means"``) that treat entities as independent: they describe, they do not test. NaN feature
    values are dropped; infinite values cannot be placed on the axis and are dropped with a note in the
    title. The title gives the analysis's rho and its interval, which are within-scenario statistics of the
    chosen estimator, whereas the plot pools all scenarios.

    Parameters
    ----------
    result : HSIResult
        The analysis (``result.dataset`` and ``result.pairs``).
    head : str or int
        Head name or index.
    feature : str
        Feature name.
    ax : matplotlib Axes, optional
        Where to draw; a new figure is created when omitted.
    max_points : int, default 5000
        Largest number of entities drawn as individual points.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = _check_result(result)
    name = _resolve_head(result, head)
    dataset = result.dataset
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

    ax = _new_axes(ax, (6.4, 4.4))
    ax.set_title(f"{name} vs {feature}: ρ = {format_number(rho, 2)}, {_level(result)} CI "
                 f"[{format_number(low, 2)}, {format_number(high, 2)}]\n"
                 + ", ".join(notes), fontsize=10)
    ax.set_xlabel(feature)
    ax.set_ylabel(f"attention of {name}")
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
            ax.scatter(positions[index] + jitter, y, s=8, alpha=0.25, color="0.45", linewidths=0, gid="points",
                       rasterized=x.size > 1000)
        bars = ax.errorbar(positions, means[:, 1], yerr=means[:, 2], fmt="o", color=_OBSERVED_COLOUR,
                           markersize=7, capsize=6, elinewidth=1.8, zorder=4, label="mean ± 95% CI")
        ax.set_xticks(positions, [f"{feature} = {v:g}\n(n = {int(c)})" for v, c in zip(values, means[:, 3],
                                                                                       strict=True)])
        ax.set_xlim(-0.6, values.size - 0.4)
        ax.set_xlabel("")
    else:
        means = _bin_means(x, y, _N_BINS)
        if show_points:
            ax.scatter(x, y, s=8, alpha=0.2, color="0.45", linewidths=0, gid="points", rasterized=x.size > 1000,
                       label="entities")
        bars = ax.errorbar(means[:, 0], means[:, 1], yerr=means[:, 2], fmt="-o", color=_OBSERVED_COLOUR,
                           markersize=4, capsize=3, linewidth=1.6, zorder=4,
                           label=f"mean in {len(means)} bins of the feature ± 95% CI")
    data_line = bars.lines[0]
    if data_line is not None:
        data_line.set_gid("binned-means")
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.25)
    return ax


# ------------------------------------------------------------------------------------- distributions
def attention_distributions(result: HSIResult, *, ax: Axes | None = None, log: bool = True,
                            max_points: int = 20000) -> Axes:
    """Distribution of each head's attention on valid entities, as violins over heads.

    Violins are coloured by whether the head's label validated, with quartile lines inside. A dashed line
    marks the mean uniform share (the mean over valid entities of ``1 / n``, n being the number of valid
    entities in the scenario): a head whose violin sits tight around it barely selects. Attention is skewed
    (most entities get little, a few get most), so the axis is logarithmic by default; values below
    ``1e-4`` (including zeros) are then drawn at ``1e-4``, which the title notes. Each violin is estimated from
    at most ``max_points`` entities drawn without replacement with a fixed seed, so the figure is reproducible
    and fast on large runs.

    Parameters
    ----------
    result : HSIResult
        The analysis (``result.dataset``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is created when omitted.
    log : bool, default True
        Logarithmic attention axis (the density is estimated on that scale).
    max_points : int, default 20000
        Entities per head used for each violin.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = _check_result(result)
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1:
        raise ValueError(f"The value for `max_points` must be an integer >= 1, but {max_points!r} was passed.")
    dataset = result.dataset
    mask = dataset.mask
    values = np.asarray(dataset.attention, dtype=float).transpose(1, 0, 2)[:, mask]  # (H, entities)
    if values.shape[1] > max_points:
        chosen = np.sort(np.random.default_rng(0).choice(values.shape[1], size=int(max_points), replace=False))
        values = values[:, chosen]
    title = "Attention distribution per head"
    if log:
        floored = int((values < _LOG_FLOOR).sum())
        values = np.maximum(values, _LOG_FLOOR)
        if floored:
            title += f"\n({floored} values below {_LOG_FLOOR:g} drawn at {_LOG_FLOOR:g})"
    names = list(dataset.head_names)
    frame = pd.DataFrame({"head": np.repeat(names, values.shape[1]), "attention": values.reshape(-1)})
    frame["head"] = pd.Categorical(frame["head"], categories=names)
    validated = dict(zip(result.heads["head"].astype(str), _as_bool(result.heads["validated"]), strict=True))
    palette = {h: (_VALIDATED_COLOUR if validated.get(h, False) else _NOT_VALIDATED_COLOUR) for h in names}

    ax = _new_axes(ax, (max(4.5, 0.7 * len(names) + 2.0) + 1.8, 4.4))
    sns.violinplot(data=frame, x="head", y="attention", hue="head", palette=palette, legend=False, dodge=False, cut=0,
                   density_norm="width", inner="quart", linewidth=0.8, log_scale=bool(log), ax=ax)
    present = mask.sum(axis=1)
    uniform = float(np.mean(np.repeat(1.0 / np.maximum(present, 1), present)))
    ax.axhline(uniform, color=_REFERENCE_COLOUR, linestyle="--", linewidth=0.9)
    handles = [Patch(facecolor=_VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
               Patch(facecolor=_NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated"),
               Line2D([], [], color=_REFERENCE_COLOUR, linestyle="--", label=f"mean uniform share ({uniform:.2f})")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    if log:
        ax.set_ylim(top=1.0)
    else:
        ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("attention on a valid entity" + (" (log scale)" if log else ""))
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.25)
    return ax


# ------------------------------------------------------------------------------------------ null panels
def null_distributions(result: HSIResult, *, heads: Sequence[str | int] | str | int | None = None,
                       ncols: int = 4) -> Figure:
    """One panel per head: the randomisation null distribution of its HSI and the observed HSI.

    Each panel is a histogram of ``result.test.null_hsi[:, h]`` with the observed HSI as a vertical line; its
    title gives the raw and the adjusted p-value of the head-level test. Unused grid cells are hidden.

    Parameters
    ----------
    result : HSIResult
        The analysis (``result.test`` and ``result.heads``).
    heads : head name, index or sequence of them, optional
        The heads to show; all heads by default.
    ncols : int, default 4
        Panels per row (fewer when there are fewer heads).

    Returns
    -------
    matplotlib.figure.Figure
        The new figure; its visible panels are ``fig.axes[:len(heads)]`` (hidden ones follow), one per head in
        order.
    """
    result = _check_result(result)
    chosen = _resolve_heads(result, heads)
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"The value for `ncols` must be an integer >= 1, but {ncols!r} was passed.")
    columns = min(int(ncols), len(chosen))
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.1 * columns + 0.4, 2.5 * rows + 0.6), squeeze=False,
                             layout="constrained")
    index = {h: i for i, h in enumerate(_head_names(result))}
    null = np.asarray(result.test.null_hsi, dtype=float)
    for k, (head, ax) in enumerate(zip(chosen, axes.ravel(), strict=False)):
        row = result.heads.iloc[index[head]]
        observed = float(row["hsi"])
        values = null[:, index[head]]
        values = values[np.isfinite(values)]
        if values.size:
            sns.histplot(x=values, bins=30, stat="density", color="0.6", edgecolor="white", linewidth=0.3, ax=ax)
        if math.isfinite(observed):
            ax.axvline(observed, color=_OBSERVED_COLOUR, linewidth=1.8)
        shown = np.append(values, observed)
        shown = shown[np.isfinite(shown)]
        lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)
        pad = 0.06 * (hi - lo) if hi > lo else 0.05
        ax.set_xlim(max(0.0, lo - pad), hi + pad)
        ax.set_title(f"{head}: p = {format_p(float(row['p_value']))}, adj. {format_p(float(row['p_adjusted']))}",
                     fontsize=9)
        ax.set_ylabel("density" if k % columns == 0 else "")
        ax.set_xlabel("HSI" if k >= len(chosen) - columns else "")
        ax.tick_params(labelsize=8)
    for ax in axes.ravel()[len(chosen):]:
        ax.set_visible(False)
    fig.suptitle(f"HSI under the {result.settings.scheme} null ({result.test.n_resamples} "
                 f"randomisations{', exact' if result.test.exact else ''})"
                 f"{chr(10) if columns <= 2 else '; '}vertical line: observed HSI", fontsize=10)
    return fig


# ------------------------------------------------------------------------------------------------ evolution
def _evolution_iv(per_step: object) -> pd.DataFrame:
    if not isinstance(per_step, pd.DataFrame):
        raise TypeError(f"`per_step` must be a pandas DataFrame, but {type(per_step).__name__} was passed.")
    missing = [c for c in PER_STEP_COLUMNS if c not in per_step.columns]
    if missing:
        raise ValueError(f"`per_step` must have the columns {list(PER_STEP_COLUMNS)}, but {missing} are missing.")
    table = per_step[~per_step["step"].isna() & ~per_step["head"].isna()]
    if table.empty:
        raise ValueError("`per_step` must have at least one row with a step and a head, but it has none.")
    duplicated = table.duplicated(subset=["step", "head"])
    if duplicated.any():
        first = table.loc[duplicated, ["step", "head"]].iloc[0].tolist()
        raise ValueError(f"`per_step` must have one row per (step, head), but {first} appears more than once.")
    return table


def evolution_plot(per_step: pd.DataFrame, *, ax: Axes | None = None, threshold: float | None = None) -> Axes:
    """HSI of each head across training steps, with confidence bands and validated steps marked.

    One line per head (in order of first appearance); the band is the interval ``[ci_low, ci_high]``, and a
    step whose CI has no neighbour to form a band (a single step, or a step isolated by gaps) gets an error
    bar instead. Markers are filled where the head's label validated at that step and open where it did not.
    A missing row or a NaN HSI leaves a gap in the head's line; a NaN interval leaves a gap in its band. The
    legend names each head with the label it last validated with.

    Parameters
    ----------
    per_step : DataFrame
        One row per (step, head) with the columns ``step, head, hsi, ci_low, ci_high, primary_feature, label,
        validated`` (the ``per_step`` table of an evolution result).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is created when omitted.
    threshold : float, optional
        Where to draw the validation-threshold line (the analysis's ``threshold``); default
        ``AnalysisSettings().threshold``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = _evolution_iv(per_step)
    threshold = AnalysisSettings().threshold if threshold is None else float(threshold)
    steps = np.sort(pd.unique(table["step"].to_numpy()))
    heads = [h for h in pd.unique(table["head"])]
    palette = sns.color_palette("colorblind" if len(heads) <= 10 else "husl", n_colors=len(heads))
    ax = _new_axes(ax, (8.6, 4.6))
    single = steps.size == 1
    # With one step there are no lines to follow: spread the heads side by side around it instead.
    spread = np.linspace(-0.3, 0.3, len(heads)) if len(heads) > 1 else np.zeros(1)
    for i, (head, colour) in enumerate(zip(heads, palette, strict=True)):
        x = spread[i : i + 1] if single else steps.astype(float)
        sub = table[table["head"] == head].set_index("step").reindex(steps)
        hsi = pd.to_numeric(sub["hsi"], errors="coerce").to_numpy(float)
        low = pd.to_numeric(sub["ci_low"], errors="coerce").to_numpy(float)
        high = pd.to_numeric(sub["ci_high"], errors="coerce").to_numpy(float)
        validated = _as_bool(sub["validated"])
        band = np.isfinite(low) & np.isfinite(high)
        ax.fill_between(x, low, high, where=band, color=colour, alpha=0.18 if len(heads) <= 4 else 0.12, linewidth=0,
                        interpolate=False)
        neighbour = np.zeros_like(band)
        neighbour[1:] |= band[:-1]
        neighbour[:-1] |= band[1:]
        lonely = band & ~neighbour
        if lonely.any():
            ax.vlines(x[lonely], low[lonely], high[lonely], color=colour, linewidth=1.2, alpha=0.7)
        validated_labels = [lab for lab, ok in zip(sub["label"], validated, strict=True) if ok and isinstance(lab, str)]
        name = f"{head}: {validated_labels[-1]}" if validated_labels else str(head)
        ax.plot(x, hsi, color=colour, linewidth=1.6, label=name)
        present = np.isfinite(hsi)
        ax.scatter(x[present & validated], hsi[present & validated], s=30, color=colour, edgecolors=colour,
                   zorder=3)
        ax.scatter(x[present & ~validated], hsi[present & ~validated], s=30, facecolors="white",
                   edgecolors=colour, linewidths=1.2, zorder=3)
    ax.axhline(threshold, color=_REFERENCE_COLOUR, linestyle="--", linewidth=0.9)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], linestyle="none", label=""),
                Line2D([], [], color="0.3", marker="o", linestyle="none", label="validated"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                       label="not validated"),
                Line2D([], [], color=_REFERENCE_COLOUR, linestyle="--", label=f"threshold {threshold:g}")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    formatter = EngFormatter(sep="")
    if single:
        ax.set_xticks([0.0], [formatter.format_data(float(steps[0]))])
        ax.set_xlim(-0.5, 0.5)
    else:
        if steps.size <= 12:
            ax.set_xticks(steps.astype(float))
        ax.xaxis.set_major_formatter(formatter)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("training step")
    ax.set_ylabel("HSI")
    ax.set_title("Head specialisation over training")
    ax.grid(alpha=0.25)
    return ax


# ------------------------------------------------------------------------------------------------ output
def _close(fig: Figure) -> None:
    plt.close(fig)


def save_figure(ax_or_fig: Any, path: str | os.PathLike[str], *, dpi: int = 150, close: bool = True) -> None:
    """Write a figure to ``path`` as PNG, atomically, and close it.

    The image is written to a temporary file in the destination folder (created when missing) and moved over
    ``path`` only once complete, so a crash never leaves a partial file.

    Parameters
    ----------
    ax_or_fig : Axes, array of Axes, Figure or seaborn grid
        What a figure function returned.
    path : path-like
        Destination; the content is PNG whatever the suffix.
    dpi : int, default 150
        Resolution.
    close : bool, default True
        Close the figure afterwards (also when writing fails), so figures do not accumulate in pyplot.
    """
    fig = _as_figure(ax_or_fig)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        if close:
            _close(fig)


def figure_to_png_bytes(ax_or_fig: Any, *, dpi: int = 150, close: bool = True) -> bytes:
    """The figure as PNG bytes (for embedding in HTML), closing it by default.

    Parameters
    ----------
    ax_or_fig : Axes, array of Axes, Figure or seaborn grid
        What a figure function returned.
    dpi : int, default 150
        Resolution.
    close : bool, default True
        Close the figure afterwards, so figures do not accumulate in pyplot.

    Returns
    -------
    bytes
        A PNG image (starts with ``b"\\x89PNG"``).
    """
    fig = _as_figure(ax_or_fig)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        if close:
            _close(fig)
    return buffer.getvalue()
