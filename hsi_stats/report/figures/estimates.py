"""Figures of the estimates: the rho heatmap, the HSI bars, the forest plot and the null distributions.

Each reads an :class:`~hsi_stats.results.HSIResult` and draws; none computes a statistic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ...formatting import p_statement
from ...results import HSIResult
from ._common import (
    COLUMN_WIDTH,
    FONT,
    MAX_HEIGHT,
    MIN_FONT,
    MIN_ROW_PITCH,
    NOT_VALIDATED_COLOUR,
    OBSERVED_COLOUR,
    PAGE_WIDTH,
    REFERENCE_COLOUR,
    ROW_PITCH,
    STRENGTH_LINES,
    VALIDATED_COLOUR,
    as_bool,
    axes_width,
    category_labels,
    check_axes,
    check_result,
    feature_names,
    head_names,
    legend_above,
    level,
    new_axes,
    new_figure,
    paper_figure,
    resolve_heads,
    result_short_names,
    root_figure,
    rows_per_panel,
    significance_mark,
    split_evenly,
    stacked_height,
    text_width,
    wrap_words,
)

__all__ = ["focus_plot", "forest_plot", "hsi_bars", "null_distributions", "rho_heatmap"]


# ------------------------------------------------------------------------------------------------ heatmap
#: Inches of a heatmap figure outside its rows: the two-line title and the feature names under the cells.
_HEATMAP_OVERHEAD = 1.5


def _annotation_kind(annot: np.ndarray, marks: np.ndarray, cell_width: float, cell_height: float) -> str:
    """What fits in a heatmap cell ``cell_width`` x ``cell_height`` inches at 7 pt: the value with its marks
    ("values"), the marks only ("marks") or nothing ("none")."""
    if cell_height * 72.0 < MIN_FONT + 1.0:
        return "none"
    for kind, texts in (("values", annot), ("marks", marks)):
        if max((text_width(str(t)) for t in texts.ravel()), default=0.0) <= 0.9 * cell_width:
            return kind
    return "none"


@paper_figure
def rho_heatmap(result: HSIResult, *, ax: Axes | None = None) -> Axes:
    """Heatmap of rho (heads x features) with significance marks from the adjusted p-values.

    Each cell shows rho to two decimals followed by ``*`` when its adjusted p-value is below ``alpha``
    (``result.settings.alpha``), ``**`` below ``alpha / 5`` and ``***`` below ``alpha / 50``; the title
    explains the marks. Where cells are too small for the value at 7 pt, only the marks are shown (the colour
    gives rho), and where even those do not fit, nothing. The colour map is diverging, centred at 0, from -1 to
    1. A pair with an undefined rho (NaN) is left blank. Heads are named by their short names.

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.pairs``).
    ax : matplotlib Axes, optional
        Where to draw; when omitted, a new figure 7 in wide is created, with the heads split over panels side
        by side when they do not fit one panel at most 9 in tall (the first panel is returned; the figure's
        other axes hold the other panels and the colour bar).

    Returns
    -------
    matplotlib.axes.Axes
        The (first) heatmap's axes (the colour bar lives on its own axes of the same figure).

    Examples
    --------
    >>> from hsi_stats import analyze
    >>> from hsi_stats.report import save_figure
    >>> from hsi_stats.synthetic import generate
    >>> result = analyze(generate(n_episodes=12, n_steps=5, rng=0).dataset, n_resamples=99, rng=0)
    >>> ax = rho_heatmap(result)
    >>> len(ax.texts) == len(result.pairs)
    True
    >>> save_figure(ax, __import__("tempfile").mkdtemp() + "/rho.pdf")
    """
    result = check_result(result)
    heads, features = head_names(result), feature_names(result)
    short = result_short_names(result)
    alpha = float(result.settings.alpha)
    rho = result.pairs.pivot(index="head", columns="feature", values="rho").reindex(index=heads, columns=features)
    p_adj = result.pairs.pivot(index="head", columns="feature", values="p_adjusted").reindex(
        index=heads, columns=features)
    values, p_values = rho.to_numpy(float), p_adj.to_numpy(float)
    marks = np.array([["" if not math.isfinite(r) else significance_mark(p, alpha) for r, p in zip(rr, pr,
                                                                                                     strict=True)]
                      for rr, pr in zip(values, p_values, strict=True)], dtype=object).reshape(values.shape)
    annot = np.array([["" if not math.isfinite(r) else f"{r:.2f}{m}" for r, m in zip(rr, mr, strict=True)]
                      for rr, mr in zip(values, marks, strict=True)], dtype=object).reshape(values.shape)
    if ax is None:
        chunks = split_evenly(len(heads), rows_per_panel(overhead=_HEATMAP_OVERHEAD, pitch=ROW_PITCH))
        height = stacked_height(max(len(c) for c in chunks), overhead=_HEATMAP_OVERHEAD, pitch=1.4 * ROW_PITCH)
        fig, grid = new_figure(PAGE_WIDTH, max(2.2, height), 1, len(chunks))
        panels = list(grid.ravel())
    else:
        chunks, panels = [range(len(heads))], [check_axes(ax)]
        fig = root_figure(panels[0])
    label_width = max(text_width(short[h]) for h in heads) + 0.35
    cell_width = (axes_width(panels[0]) - label_width - 0.7 / len(panels)) / max(1, len(features))
    mesh = None
    for chunk, panel in zip(chunks, panels, strict=True):
        rows = list(chunk)
        cell_height = (panel.get_position().height * fig.get_figheight() - 1.0) / max(1, len(rows))
        kind = _annotation_kind(annot[rows], marks[rows], cell_width, cell_height)
        shown = {"values": annot[rows], "marks": marks[rows]}.get(kind)
        frame = pd.DataFrame(values[rows], index=[short[heads[i]] for i in rows], columns=features)
        sns.heatmap(frame, ax=panel, cmap="RdBu_r", vmin=-1.0, vmax=1.0, annot=shown if shown is not None else False,
                    fmt="", annot_kws={"fontsize": MIN_FONT}, linewidths=0.4, linecolor="white", square=False,
                    cbar=False)
        mesh = panel.collections[0]
        panel.set_yticks(np.arange(len(rows)) + 0.5, list(frame.index), rotation=0, fontsize=MIN_FONT)
        category_labels(panel, np.arange(len(features)) + 0.5, features, pitch=cell_width)
        panel.set_xlabel("feature")
        panel.set_ylabel("head" if panel is panels[0] else "")
    if mesh is not None:
        fig.colorbar(mesh, ax=panels, label="ρ", shrink=0.8 if len(heads) > 4 else 1.0, aspect=30, pad=0.02)
    title = (f"Correlation ρ of attention with each feature\n* adjusted p < {alpha:g}, ** < {alpha / 5:g}, "
             f"*** < {alpha / 50:g}")
    if len(panels) > 1:
        fig.suptitle(title, fontsize=FONT)
    else:
        panels[0].set_title(title, fontsize=FONT)
    return panels[0]


# ------------------------------------------------------------------------------------------------ HSI bars
#: Most bars in one row of the figure: more heads go into further rows.
_BARS_PER_PANEL = 36


def _draw_bars(result: HSIResult, ax: Axes, rows: Sequence[int], names: Sequence[str]) -> None:
    table = result.heads.iloc[list(rows)]
    n = len(table)
    x = np.arange(n, dtype=float)
    hsi = table["hsi"].to_numpy(float)
    low, high = table["ci_low"].to_numpy(float), table["ci_high"].to_numpy(float)
    colours = [VALIDATED_COLOUR if v else NOT_VALIDATED_COLOUR for v in as_bool(table["validated"])]
    ax.bar(x, np.nan_to_num(hsi), width=0.7, color=colours, edgecolor="0.25", linewidth=0.5, zorder=2)
    # Centre the bar on the interval's midpoint so its extent is exactly [ci_low, ci_high].
    ax.errorbar(x, (low + high) / 2, yerr=(high - low) / 2, fmt="none", ecolor="0.1", elinewidth=1.0,
                capsize=2.5, zorder=3, label=f"{level(result)} CI")
    threshold = result.settings.threshold
    lines = list(STRENGTH_LINES)
    if not any(math.isclose(threshold, v) for v, _ in lines):
        lines.append((threshold, "threshold"))
    for value, name in lines:
        ax.axhline(value, color=REFERENCE_COLOUR, linestyle="--", linewidth=0.7, zorder=1, label=name)
        ax.text(1.01, value, f"{name} ({value:g})", transform=ax.get_yaxis_transform(), va="center",
                ha="left", fontsize=MIN_FONT, color=REFERENCE_COLOUR)
    ax.set_xlim(-0.6, n - 0.4)
    category_labels(ax, x, [names[i] for i in rows], pitch=0.8 * axes_width(ax) / max(n, 1))
    ax.set_ylim(0.0, 1.0)
    ax.set_ylabel("HSI = max |ρ|")
    ax.grid(axis="y", alpha=0.25, zorder=0)


@paper_figure
def hsi_bars(result: HSIResult, *, ax: Axes | None = None) -> Axes:
    """HSI per head with its confidence interval, strength lines and validated labels.

    Bars are coloured by whether the head's label validated; each head's tick gives its short name and its
    label. The interval is drawn as an error bar from ``heads.ci_low`` to ``heads.ci_high`` exactly (the
    projection of the simultaneous band of the head's rhos, :mod:`hsi_stats.inference.bootstrap`), as the first
    :class:`~matplotlib.container.ErrorbarContainer` of the axes. Horizontal lines mark the bands of
    :data:`STRENGTH_LINES`, plus the validation threshold if the analysis used another one.

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.heads``).
    ax : matplotlib Axes, optional
        Where to draw; when omitted, a new figure is created: one column (3.5 in) wide for up to 8 heads, else
        two (7 in), with more than 36 heads split over rows of panels (the first panel is returned).

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = check_result(result)
    table = result.heads
    short = result_short_names(result)
    names = [f"{short[str(h)]}: {lab}" if isinstance(lab, str) and lab else short[str(h)]
             for h, lab in zip(table["head"], table["label"], strict=True)]
    if ax is None:
        chunks = split_evenly(len(table), _BARS_PER_PANEL)
        label_height = max(text_width(name) for name in names) + 0.1
        panel_height = 1.7 + (label_height if len(table) > 8 or label_height < 0.5 else 0.3)
        _, grid = new_figure(COLUMN_WIDTH if len(table) <= 8 else PAGE_WIDTH,
                             min(MAX_HEIGHT, 0.55 + panel_height * len(chunks)), len(chunks), 1)
        panels = list(grid.ravel())
    else:
        chunks, panels = [range(len(table))], [check_axes(ax)]
    for chunk, panel in zip(chunks, panels, strict=True):
        _draw_bars(result, panel, chunk, names)
    handles = [Patch(facecolor=VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
               Patch(facecolor=NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated"),
               Line2D([], [], color="0.1", marker="_", markersize=8, label=f"{level(result)} CI")]
    legend_above(panels[0], handles, "Head Specialization Index per head")
    return panels[0]


# ------------------------------------------------------------------------------------------------ focus
def _draw_focus(ax: Axes, rows: Sequence[tuple[str, str | None, float, float, float, object, bool]]) -> None:
    y = np.arange(len(rows), dtype=float)
    focus = np.array([r[2] for r in rows], dtype=float)
    low, high = np.array([r[3] for r in rows], dtype=float), np.array([r[4] for r in rows], dtype=float)
    ax.barh(y, np.nan_to_num(focus), height=0.6, zorder=2, edgecolor="0.25", linewidth=0.5,
            color=[VALIDATED_COLOUR if r[6] else NOT_VALIDATED_COLOUR for r in rows])
    ax.errorbar((low + high) / 2, y, xerr=(high - low) / 2, fmt="none", ecolor="0.1", elinewidth=1.0, capsize=2,
                zorder=3)
    ax.axvline(0.0, color=REFERENCE_COLOUR, linewidth=0.7, zorder=1)
    ax.set_yticks(y, [f"{r[0]}  ({r[1]}: {r[5]})" if r[1] else r[0] for r in rows], fontsize=MIN_FONT)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(min(-0.1, float(np.nanmin(np.r_[low, 0.0])) - 0.05), 1.0)
    ax.set_xlabel("focus on the target")
    ax.grid(axis="x", alpha=0.25, zorder=0)


#: Most heads in a one-column focus figure; more get a two-column figure of panels side by side.
_FOCUS_PER_COLUMN = 24


@paper_figure
def focus_plot(result: HSIResult, *, ax: Axes | None = None) -> Axes:
    """Each head's focus on the entity its feature points at, with its confidence interval.

    One horizontal bar per head for its label feature (the feature the label is judged on; for a General Context
    Head the candidate that failed), as in the head table, coloured by whether the label validated, with the
    interval from ``heads.label_focus_ci_low`` to ``heads.label_focus_ci_high`` as the first
    :class:`~matplotlib.container.ErrorbarContainer`. 0 is uniform attention, 1 all attention on the target,
    -1 none on it (:mod:`hsi_stats.focus`); each tick gives the head's short name, the feature and the target
    ("ttc: lowest").

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.heads`` and ``result.pairs``).
    ax : matplotlib Axes, optional
        Where to draw; when omitted, a new figure is created: one column (3.5 in) wide for up to 24 heads,
        else two (7 in), with heads that do not fit one panel at most 9 in tall split over panels side by side
        (the first panel is returned).

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = check_result(result)
    short = result_short_names(result)
    rows = []
    for head in result.heads.to_dict(orient="records"):
        feature = head["label_feature"] if isinstance(head["label_feature"], str) else None
        rows.append((short[str(head["head"])], feature, head["label_focus"], head["label_focus_ci_low"],
                     head["label_focus_ci_high"], head["label_focus_target"], bool(head["validated"])))
    overhead = 1.0
    if ax is None:
        chunks = split_evenly(len(rows), rows_per_panel(overhead=overhead, pitch=ROW_PITCH)
                              if len(rows) > _FOCUS_PER_COLUMN else _FOCUS_PER_COLUMN)
        height = stacked_height(max(len(c) for c in chunks), overhead=overhead, pitch=ROW_PITCH)
        _, grid = new_figure(COLUMN_WIDTH if len(chunks) == 1 else PAGE_WIDTH, max(1.6, height), 1, len(chunks))
        panels = list(grid.ravel())
    else:
        chunks, panels = [range(len(rows))], [check_axes(ax)]
    for chunk, panel in zip(chunks, panels, strict=True):
        _draw_focus(panel, [rows[i] for i in chunk])
    legend_above(panels[0], [Patch(facecolor=VALIDATED_COLOUR, edgecolor="0.25", label="validated"),
                             Patch(facecolor=NOT_VALIDATED_COLOUR, edgecolor="0.25", label="not validated")],
                 f"Focus per head, {level(result)} CI")
    return panels[0]


# ------------------------------------------------------------------------------------------------ forest
#: Inches of a forest figure outside its rows: title, legend, the rho axis and its label.
_FOREST_OVERHEAD = 1.05
_FOREST_LAYOUTS = ("auto", "rows", "features")


def _forest_handles(alpha: float, threshold: float) -> list[Line2D]:
    return [Line2D([], [], color=VALIDATED_COLOUR, marker="o", label=f"adjusted p < {alpha:g}"),
            Line2D([], [], color="0.55", marker="o", markerfacecolor="white", label="not significant"),
            Line2D([], [], color=REFERENCE_COLOUR, linestyle=":", label=f"±{threshold:g} (threshold)")]


def _forest_intervals(ax: Axes, rows: Sequence[tuple[float, float, float, float, bool]], threshold: float) -> None:
    """Intervals at y with their estimates: significant ones filled and in colour (``gid="significant"``)."""
    data = np.array([r[:4] for r in rows], dtype=float).reshape(-1, 4)
    significant = np.array([r[4] for r in rows], dtype=bool)
    for keep, colour, gid, filled in ((~significant, "0.55", "not-significant", False),
                                      (significant, VALIDATED_COLOUR, "significant", True)):
        part = data[keep]
        ax.hlines(part[:, 0], part[:, 2], part[:, 3], color=colour, linewidth=1.2 if filled else 0.8, zorder=2)
        ax.scatter(part[:, 1], part[:, 0], s=12, zorder=3, gid=gid, linewidths=0.8,
                   facecolors=colour if filled else "white", edgecolors=colour)
    ax.axvline(0.0, color="0.2", linewidth=0.7, zorder=1)
    for value in (-threshold, threshold):
        ax.axvline(value, color=REFERENCE_COLOUR, linestyle=":", linewidth=0.7, zorder=1)
    ax.set_xlim(-1.0, 1.0)
    ax.grid(axis="x", alpha=0.25, zorder=0)


def _forest_rows(result: HSIResult, chosen: Sequence[str]) -> tuple[list[float], list[str], list[int],
                                                                    list[tuple[float, float, float, float, bool]],
                                                                    float]:
    """Ticks, tick labels, header indices and rows of the one-row-per-pair layout, and its last y."""
    alpha = float(result.settings.alpha)
    short = result_short_names(result)
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
        tick_labels.append(f"{short[head]}: {label}" if isinstance(label, str) and label else short[head])
        y += 1.0
        for _, pair in sub.iterrows():
            ticks.append(y)
            tick_labels.append(str(pair["feature"]))
            rows.append((y, float(pair["rho"]), float(pair["ci_low"]), float(pair["ci_high"]),
                         bool(pair["p_adjusted"] < alpha)))
            y += 1.0
        y += 0.5
    return ticks, tick_labels, headers, rows, y


def _forest_by_feature(result: HSIResult, chosen: Sequence[str]) -> Axes:
    """One panel per feature, one row per head: for more pairs than one column of rows can hold."""
    alpha, threshold = float(result.settings.alpha), result.settings.threshold
    short = result_short_names(result)
    features = feature_names(result)
    n = len(chosen)
    ncols = len(features) if n > 16 else min(4, len(features))
    nrows = math.ceil(len(features) / ncols)
    height = stacked_height(nrows * n, overhead=_FOREST_OVERHEAD + 0.35 * nrows, pitch=ROW_PITCH)
    fig, grid = new_figure(PAGE_WIDTH, height, nrows, ncols, sharex=True, sharey=True)
    panels = list(grid.ravel())
    width = (PAGE_WIDTH - max(text_width(short[h]) for h in chosen) - 0.3) / ncols
    position = {h: i for i, h in enumerate(chosen)}
    for feature, ax in zip(features, panels, strict=False):
        pairs = result.pairs[(result.pairs["feature"] == feature) & result.pairs["head"].astype(str).isin(chosen)]
        rows = [(float(position[str(p["head"])]), float(p["rho"]), float(p["ci_low"]), float(p["ci_high"]),
                 bool(p["p_adjusted"] < alpha)) for _, p in pairs.iterrows()]
        _forest_intervals(ax, rows, threshold)
        ax.set_title(wrap_words(feature, 0.9 * width), fontsize=MIN_FONT)
        ax.set_xticks([-0.5, 0.0, 0.5], ["−0.5", "0", "0.5"])
    for ax in panels[len(features):]:
        ax.set_visible(False)
    panels[0].set_yticks(np.arange(n, dtype=float), [short[h] for h in chosen], fontsize=MIN_FONT)
    panels[0].set_ylim(n - 0.5, -0.5)
    fig.suptitle(f"ρ per head and feature, {level(result)} CI", fontsize=FONT)
    fig.legend(handles=_forest_handles(alpha, threshold), loc="outside lower center", ncols=3, frameon=False)
    return panels[0]


@paper_figure
def forest_plot(result: HSIResult, *, heads: Sequence[str | int] | str | int | None = None,
                ax: Axes | None = None, layout: str = "auto") -> Axes:
    """rho with its confidence interval for every (head, feature) pair.

    Two layouts. ``"rows"``: one row per pair, grouped by head, each group starting with a bold header (the
    head's short name and label). ``"features"``: one panel per feature with one row per head, for when the
    pairs are too many for rows of readable text in one figure at most 9 in tall. Pairs whose adjusted p-value
    is below ``alpha`` are drawn in colour with filled markers (scatter ``gid="significant"``), the others in grey
    with open markers (``gid="not-significant"``). A vertical line marks 0 and dotted lines the validation
    threshold ``±threshold``.

    Parameters
    ----------
    result : HSIResult
        The analysis to draw (``result.pairs``).
    heads : head name, index or sequence of them, optional
        The heads to show, in this order; all heads by default.
    ax : matplotlib Axes, optional
        Where to draw (the ``"rows"`` layout); a new figure 7 in wide whose height follows the number of rows is
        created when omitted.
    layout : {"auto", "rows", "features"}, default "auto"
        ``"auto"`` takes ``"rows"`` when its rows fit a new figure, else ``"features"`` (whose first panel is
        returned; the figure holds the others). ``"features"`` needs a new figure (``ax=None``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    result = check_result(result)
    chosen = resolve_heads(result, heads)
    choice = str(layout).lower() if isinstance(layout, str) else layout
    if choice not in _FOREST_LAYOUTS:
        raise ValueError(f"The value for `layout` must be one of {set(_FOREST_LAYOUTS)}, but {layout!r} was passed.")
    if choice == "features" and ax is not None:
        raise ValueError("The value for `ax` must be None with layout='features' (it draws a figure of its own "
                         f"panels), but {type(ax).__name__} was passed.")
    alpha, threshold = float(result.settings.alpha), result.settings.threshold
    ticks, tick_labels, headers, rows, y = _forest_rows(result, chosen)
    fits = (MAX_HEIGHT - _FOREST_OVERHEAD) * 72.0 / (y + 0.3) >= MIN_ROW_PITCH
    if choice == "features" or (choice == "auto" and ax is None and not fits):
        return _forest_by_feature(result, chosen)

    ax = new_axes(ax, (PAGE_WIDTH, stacked_height(y + 0.3, overhead=_FOREST_OVERHEAD, pitch=ROW_PITCH)))
    _forest_intervals(ax, rows, threshold)
    for header in headers[1:]:
        ax.axhline(ticks[header] - 0.75, color="0.85", linewidth=0.6, zorder=0)
    ax.set_yticks(ticks, tick_labels, fontsize=MIN_FONT)
    for index in headers:
        ax.get_yticklabels()[index].set_fontweight("bold")
    ax.set_ylim(y - 0.5, -0.8)
    ax.set_xlabel(f"ρ with {level(result)} CI")
    legend_above(ax, _forest_handles(alpha, threshold), "ρ per head and feature")
    return ax


# ------------------------------------------------------------------------------------------ null panels
def _null_grid(n: int, ncols: int | None) -> tuple[int, int]:
    """Columns and rows of the panel grid: as many columns as keep the figure at most 9 in tall."""
    if ncols is None:
        ncols = n if n <= 2 else 4 if n <= 16 else 6 if n <= 36 else 8
    columns = min(int(ncols), n)
    return columns, math.ceil(n / columns)


def _null_title(name: str, p: str, adjusted: str, width: float) -> str:
    """The panel title in as few lines as fit ``width`` inches (``p`` and ``adjusted`` as statements)."""
    for title in (f"{name}: {p}, {adjusted}", f"{name}\n{p}, {adjusted}"):
        if text_width(title) <= width:
            return title
    return f"{name}\n{p}\n{adjusted}"


@paper_figure
def null_distributions(result: HSIResult, *, heads: Sequence[str | int] | str | int | None = None,
                       ncols: int | None = None) -> Figure:
    """One panel per head: the randomisation null distribution of its HSI and the observed HSI.

    Each panel is a histogram of ``result.test.null_hsi[:, h]`` with the observed HSI as a vertical line; its
    title gives the head's short name and the raw and the adjusted p-value of the head-level test, on one line
    or, in narrow panels, two or three. With more than 16 heads the panels share the HSI axis (labelled on the
    bottom row) and drop the density axis. Unused grid cells are hidden.

    Parameters
    ----------
    result : HSIResult
        The analysis (``result.test`` and ``result.heads``).
    heads : head name, index or sequence of them, optional
        The heads to show; all heads by default.
    ncols : int, optional
        Panels per row (fewer when there are fewer heads); by default as many as keep the figure at most 9 in
        tall: up to 2 in one column (3.5 in), 4 up to 16 heads, 6 up to 36, else 8.

    Returns
    -------
    matplotlib.figure.Figure
        The new figure; its visible panels are ``fig.axes[:len(heads)]`` (hidden ones follow), one per head in
        order.
    """
    result = check_result(result)
    chosen = resolve_heads(result, heads)
    if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1):
        raise ValueError(f"The value for `ncols` must be an integer >= 1 or None, but {ncols!r} was passed.")
    short = result_short_names(result)
    columns, rows = _null_grid(len(chosen), ncols)
    width = COLUMN_WIDTH if columns <= 2 else PAGE_WIDTH
    panel_width = (width - 0.35) / columns - 0.08
    many = len(chosen) > 16
    index = {h: i for i, h in enumerate(head_names(result))}
    titles = []
    for head in chosen:
        row = result.heads.iloc[index[head]]
        titles.append(_null_title(short[head], p_statement(float(row["hsi_p_value"])),
                                  p_statement(float(row["hsi_p_adjusted"]), "adj. p"), panel_width))
    lines = max(t.count("\n") + 1 for t in titles)
    row_height = min(0.75 + 0.14 * lines + (0.0 if many else 0.2), (MAX_HEIGHT - 0.7) / rows)
    fig, axes = new_figure(width, 0.7 + row_height * rows, rows, columns, sharex=many)
    null = np.asarray(result.test.null_hsi, dtype=float)
    for k, (head, title, ax) in enumerate(zip(chosen, titles, axes.ravel(), strict=False)):
        observed = float(result.heads.iloc[index[head]]["hsi"])
        values = null[:, index[head]]
        values = values[np.isfinite(values)]
        if values.size:
            sns.histplot(x=values, bins=30 if not many else 20, stat="density", color="0.6", edgecolor="white",
                         linewidth=0.2, ax=ax)
        if math.isfinite(observed):
            ax.axvline(observed, color=OBSERVED_COLOUR, linewidth=1.2)
        if not many:
            shown = np.append(values, observed)
            shown = shown[np.isfinite(shown)]
            lo, hi = (float(shown.min()), float(shown.max())) if shown.size else (0.0, 1.0)
            pad = 0.06 * (hi - lo) if hi > lo else 0.05
            ax.set_xlim(max(0.0, lo - pad), hi + pad)
        ax.set_title(title, fontsize=MIN_FONT)
        ax.xaxis.set_major_locator(MaxNLocator(3 if columns > 4 else 4))
        if many:
            ax.set_yticks([])
            ax.set_ylabel("")
        else:
            ax.yaxis.set_major_locator(MaxNLocator(3))
            ax.set_ylabel("density" if k % columns == 0 else "")
        ax.set_xlabel("HSI" if k >= len(chosen) - columns else "")
        ax.tick_params(labelsize=MIN_FONT)
    if many:
        top = max(float(ax.get_xlim()[1]) for ax in axes.ravel()[:len(chosen)])
        axes[0, 0].set_xlim(0.0, top)
    for ax in axes.ravel()[len(chosen):]:
        ax.set_visible(False)
    fig.suptitle(f"HSI under the {result.settings.scheme} null ({result.test.n_resamples} "
                 f"randomisations{', exact' if result.test.exact else ''})"
                 f"{chr(10) if columns <= 2 else '; '}vertical line: observed HSI", fontsize=FONT)
    return fig
