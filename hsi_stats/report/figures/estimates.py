"""Figures of the estimates: the rho heatmap, the HSI bars, the forest plot and the null distributions.

Each reads an :class:`~hsi_stats.results.HSIResult` and draws; none computes a statistic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from ...formatting import format_p
from ...results import HSIResult
from ._common import (
    NOT_VALIDATED_COLOUR,
    OBSERVED_COLOUR,
    REFERENCE_COLOUR,
    STRENGTH_LINES,
    VALIDATED_COLOUR,
    as_bool,
    check_result,
    feature_names,
    head_names,
    level,
    new_axes,
    resolve_heads,
    root_figure,
    significance_mark,
)

__all__ = ["focus_plot", "forest_plot", "hsi_bars", "null_distributions", "rho_heatmap"]


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
    >>> from hsi_stats.report import save_figure
    >>> from hsi_stats.synthetic import generate
    >>> result = analyze(generate(n_episodes=12, n_steps=5, rng=0).dataset, n_resamples=99, rng=0)
    >>> ax = rho_heatmap(result)
    >>> len(ax.texts) == len(result.pairs)
    True
    >>> save_figure(ax, __import__("tempfile").mkdtemp() + "/rho.png")
    """
    result = check_result(result)
    heads, features = head_names(result), feature_names(result)
    alpha = float(result.settings.alpha)
    rho = result.pairs.pivot(index="head", columns="feature", values="rho").reindex(index=heads, columns=features)
    p_adj = result.pairs.pivot(index="head", columns="feature", values="p_adjusted").reindex(
        index=heads, columns=features)
    annot = np.array([[("" if not math.isfinite(r) else f"{r:.2f}{significance_mark(p, alpha)}")
                       for r, p in zip(rho_row, p_row, strict=True)]
                      for rho_row, p_row in zip(rho.to_numpy(float), p_adj.to_numpy(float), strict=True)])
    ax = new_axes(ax, (max(5.0, 0.95 * len(features) + 2.6), max(2.6, 0.5 * len(heads) + 2.0)))
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
    result = check_result(result)
    table = result.heads
    n = len(table)
    x = np.arange(n, dtype=float)
    hsi = table["hsi"].to_numpy(float)
    low, high = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    validated = as_bool(table["validated"])
    colours = [VALIDATED_COLOUR if v else NOT_VALIDATED_COLOUR for v in validated]

    ax = new_axes(ax, (max(4.5, 0.75 * n + 2.5), 4.8))
    ax.bar(x, np.nan_to_num(hsi), width=0.7, color=colours, edgecolor="0.25", linewidth=0.6, zorder=2)
    # Centre the bar on the interval's midpoint so its extent is exactly [ci_low, ci_high].
    ax.errorbar(x, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor="0.1", elinewidth=1.3,
                capsize=4, zorder=3, label=f"{level(result)} CI")
    threshold = result.settings.threshold
    lines = list(STRENGTH_LINES)
    if not any(math.isclose(threshold, v) for v, _ in lines):
        lines.append((threshold, "threshold"))
    for value, name in lines:
        ax.axhline(value, color=REFERENCE_COLOUR, linestyle="--", linewidth=0.9, zorder=1, label=name)
        ax.text(1.01, value, f"{name} ({value:g})", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=8, color=REFERENCE_COLOUR)
    names = [f"{h}: {lab}" if isinstance(lab, str) and lab else str(h)
             for h, lab in zip(table["head"], table["label"], strict=True)]
    ax.set_xticks(x, names, rotation=35, ha="right", rotation_mode="anchor", fontsize=9)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("HSI = max |ρ| over features")
    ax.set_title("Head Specialization Index per head")
    handles = [Patch(facecolor=VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
               Patch(facecolor=NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated"),
               Line2D([], [], color="0.1", marker="_", markersize=8, label=f"{level(result)} CI")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.25, zorder=0)
    return ax


# ------------------------------------------------------------------------------------------------ focus
def focus_plot(result: HSIResult, *, ax: Axes | None = None) -> Axes:
    """Each head's focus on the entity its feature points at, with its confidence interval.

    One horizontal bar per head for its label feature (the feature the label is judged on; for a General Context
    Head the candidate that failed), as in the head table, coloured by whether the label validated, with the
    interval from ``heads.label_focus_ci_low`` to ``heads.label_focus_ci_high`` as the first
    :class:`~matplotlib.container.ErrorbarContainer`. 0 is uniform attention, 1 all attention on the target;
    each tick names the feature and the target ("ttc: lowest").

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.heads`` and ``result.pairs``).
    ax : matplotlib Axes, optional
        Where to draw; a new figure is created when omitted.

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = check_result(result)
    rows = []
    for head in result.heads.to_dict(orient="records"):
        feature = head["label_feature"] if isinstance(head["label_feature"], str) else None
        rows.append((str(head["head"]), feature, head["label_focus"], head["label_focus_ci_low"],
                     head["label_focus_ci_high"], head["label_focus_target"], bool(head["validated"])))
    n = len(rows)
    y = np.arange(n, dtype=float)
    focus = np.array([r[2] for r in rows], dtype=float)
    low, high = np.array([r[3] for r in rows], dtype=float), np.array([r[4] for r in rows], dtype=float)
    ax = new_axes(ax, (6.0, max(2.6, 0.42 * n + 1.4)))
    ax.barh(y, np.nan_to_num(focus), height=0.6, zorder=2, edgecolor="0.25", linewidth=0.6,
            color=[VALIDATED_COLOUR if r[6] else NOT_VALIDATED_COLOUR for r in rows])
    ax.errorbar((low + high) / 2, y, xerr=(high - low) / 2, fmt="none", ecolor="0.1", elinewidth=1.3, capsize=3,
                zorder=3)
    ax.axvline(0.0, color=REFERENCE_COLOUR, linewidth=0.9, zorder=1)
    ax.set_yticks(y, [f"{r[0]}  ({r[1]}: {r[5]})" if r[1] else r[0] for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(min(-0.1, float(np.nanmin(np.r_[low, 0.0])) - 0.05), 1.0)
    ax.set_xlabel("focus: excess attention share on the target (0 uniform, 1 all on it)")
    ax.set_title(f"Focus per head, {level(result)} CI")
    ax.legend(handles=[Patch(facecolor=VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
                       Patch(facecolor=NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated")],
              loc="lower right", fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.25, zorder=0)
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
    result = check_result(result)
    chosen = resolve_heads(result, heads)
    alpha = float(result.settings.alpha)
    threshold = result.settings.threshold
    labels = dict(zip(result.heads["head"].astype(str), result.heads["label"], strict=True))
    order = {f: i for i, f in enumerate(feature_names(result))}

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

    ax = new_axes(ax, (7.0, max(2.5, 0.24 * y + 1.4)))
    data = np.array([r[:4] for r in rows], dtype=float).reshape(-1, 4)
    significant = np.array([r[4] for r in rows], dtype=bool)
    sig_colour, grey = VALIDATED_COLOUR, "0.55"
    for keep, colour, gid, filled in ((~significant, grey, "not-significant", False),
                                      (significant, sig_colour, "significant", True)):
        part = data[keep]
        ax.hlines(part[:, 0], part[:, 2], part[:, 3], color=colour, linewidth=1.6 if filled else 1.1, zorder=2)
        ax.scatter(part[:, 1], part[:, 0], s=26, zorder=3, gid=gid, linewidths=1.1,
                   facecolors=colour if filled else "white", edgecolors=colour)
    ax.axvline(0.0, color="0.2", linewidth=0.9, zorder=1)
    for value in (-threshold, threshold):
        ax.axvline(value, color=REFERENCE_COLOUR, linestyle=":", linewidth=0.9, zorder=1)
    for header in headers[1:]:
        ax.axhline(ticks[header] - 0.75, color="0.85", linewidth=0.8, zorder=0)
    ax.set_yticks(ticks, tick_labels, fontsize=8)
    for index in headers:
        ax.get_yticklabels()[index].set_fontweight("bold")
    ax.set_ylim(y - 0.5, -0.8)
    ax.set_xlim(-1.0, 1.0)
    ax.set_xlabel(f"ρ with {level(result)} CI")
    ax.set_title("ρ per head and feature")
    handles = [Line2D([], [], color=sig_colour, marker="o", label=f"adjusted p < {alpha:g}"),
               Line2D([], [], color=grey, marker="o", markerfacecolor="white", label="not significant"),
               Line2D([], [], color=REFERENCE_COLOUR, linestyle=":", label=f"±{threshold:g} (threshold)")]
    below_label = ScaledTranslation(0.0, -0.42, root_figure(ax).dpi_scale_trans)  # inches, whatever the height
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), bbox_transform=ax.transAxes + below_label,
              ncols=3, fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.25, zorder=0)
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
    result = check_result(result)
    chosen = resolve_heads(result, heads)
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1:
        raise ValueError(f"The value for `ncols` must be an integer >= 1, but {ncols!r} was passed.")
    columns = min(int(ncols), len(chosen))
    rows = math.ceil(len(chosen) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.1 * columns + 0.4, 2.5 * rows + 0.6), squeeze=False,
                             layout="constrained")
    index = {h: i for i, h in enumerate(head_names(result))}
    null = np.asarray(result.test.null_hsi, dtype=float)
    for k, (head, ax) in enumerate(zip(chosen, axes.ravel(), strict=False)):
        row = result.heads.iloc[index[head]]
        observed = float(row["hsi"])
        values = null[:, index[head]]
        values = values[np.isfinite(values)]
        if values.size:
            sns.histplot(x=values, bins=30, stat="density", color="0.6", edgecolor="white", linewidth=0.3, ax=ax)
        if math.isfinite(observed):
            ax.axvline(observed, color=OBSERVED_COLOUR, linewidth=1.8)
        shown = np.append(values, observed)
        shown = shown[np.isfinite(shown)]
        lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)
        pad = 0.06 * (hi - lo) if hi > lo else 0.05
        ax.set_xlim(max(0.0, lo - pad), hi + pad)
        ax.set_title(f"{head}: p = {format_p(float(row['hsi_p_value']))}, "
                     f"adj. {format_p(float(row['hsi_p_adjusted']))}",
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
