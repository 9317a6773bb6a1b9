"""The joint model's figure: each head's attention odds ratios with their intervals, the other features held fixed.

One panel per head (its short name, and the fit when Firth's penalty was used), one row per feature the joint model
kept (with too many heads for that, one panel per feature and a row per head), the odds ratio as a marker and its
interval as a line on a logarithmic axis shared by every panel, clipped at 1/1000 and 1000 (a triangle at the edge
marks a ratio or a bound beyond it). Features with an adjusted p-value below ``alpha`` (the head's profile) are drawn
in colour with filled markers, the others in grey with open markers. This module only draws
:attr:`hsi_stats.HSIResult.joint`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ...formatting import exp_or_inf
from ...results import HSIResult
from ._common import (
    COLUMN_WIDTH,
    FONT,
    MAX_HEIGHT,
    MIN_FONT,
    MIN_ROW_PITCH,
    NOT_VALIDATED_COLOUR,
    PAGE_WIDTH,
    VALIDATED_COLOUR,
    check_result,
    level,
    new_figure,
    paper_figure,
    resolve_heads,
    result_short_names,
)

__all__ = ["odds_ratio_plot"]

#: The axis spans these odds ratios; beyond them a value is drawn at the edge with a triangle.
LIMIT = 1000.0
_TICKS = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)


def _grid(n: int, ncols: int | None) -> tuple[int, int]:
    if ncols is None:
        ncols = n if n <= 2 else 4 if n <= 12 else 6 if n <= 30 else 8
    columns = min(int(ncols), n)
    return columns, math.ceil(n / columns)


def _draw_rows(ax: Axes, rows: Sequence[Mapping[Any, Any]], alpha: float) -> None:
    """One row per coefficient (a head's features, or a feature's heads): marker, interval, edge triangles."""
    for y, row in enumerate(rows):
        values = [exp_or_inf(float(row[key])) for key in ("coef", "ci_low", "ci_high")]
        shown = [min(max(v, 1 / LIMIT), LIMIT) for v in values]
        significant = float(row["p_adjusted"]) < alpha
        colour = VALIDATED_COLOUR if significant else NOT_VALIDATED_COLOUR
        ax.plot(shown[1:], [y, y], color=colour, linewidth=1.1, solid_capstyle="butt")
        ax.plot([shown[0]], [y], marker="o", markersize=3.5, color=colour,
                markerfacecolor=colour if significant else "white", gid="significant" if significant else "open")
        for value, bound in zip(values, shown, strict=True):
            if value != bound:  # beyond the axis: a triangle pointing outwards at the edge
                ax.plot([bound], [y], marker=">" if value > bound else "<", markersize=4, color=colour)
    ax.axvline(1.0, color="0.4", linewidth=0.6, zorder=0)


def _odds_axis(ax: Axes, columns: int) -> None:
    ticks = _TICKS[::3] if columns > 4 else _TICKS[::2] if columns > 2 else _TICKS
    ax.set_xscale("log")
    ax.set_xlim(1 / (LIMIT * 1.6), LIMIT * 1.6)
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()


def _panel_height(n_rows: int) -> float:
    """Inches of a panel of ``n_rows`` rows of 7-point names, with its title and tick labels."""
    return n_rows * MIN_ROW_PITCH * 1.5 / 72.0 + 0.45


@paper_figure
def odds_ratio_plot(result: HSIResult, *, heads: Sequence[str | int] | str | int | None = None,
                    ncols: int | None = None) -> Figure:
    """One panel per head: the joint model's attention odds ratios with their intervals (log scale).

    Parameters
    ----------
    result : HSIResult
        An analysis with the joint model (``joint=True``, the default).
    heads : head name, index or sequence of them, optional
        The heads to show; all heads by default.
    ncols : int, optional
        Panels per row; by default as many as keep the figure at most 9 in tall (up to 2 heads in one column
        3.5 in wide, 4 panels a row up to 12 heads, 6 up to 30, else 8).

    Returns
    -------
    matplotlib.figure.Figure
        Its visible panels are ``fig.axes[:len(heads)]``, one per head in order, sharing both axes; when the heads
        are too many for a panel each at most 9 in tall (and ``ncols`` is not given), one panel per feature with a
        row per head instead.

    Raises
    ------
    ValueError
        When ``result`` has no joint model.
    """
    result = check_result(result)
    if result.joint is None:
        raise ValueError("The value for `result` must hold the joint model (analyze with joint=True), but its "
                         "`joint` is None.")
    if ncols is not None and (isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols < 1):
        raise ValueError(f"The value for `ncols` must be an integer >= 1 or None, but {ncols!r} was passed.")
    chosen = resolve_heads(result, heads)
    short = result_short_names(result)
    alpha = float(result.settings.alpha)
    features = list(dict.fromkeys(result.joint["feature"]))
    table = {(str(row["head"]), str(row["feature"])): row for row in result.joint.to_dict(orient="records")}
    columns, n_rows = _grid(len(chosen), ncols)
    by_head = ncols is not None or 1.0 + n_rows * _panel_height(len(features)) <= MAX_HEIGHT
    if not by_head:  # too many heads for a panel each: a panel per feature, a row per head
        columns, n_rows = _grid(len(features), min(len(features), 8))
    panels, labels = (chosen, features) if by_head else (features, chosen)
    width = COLUMN_WIDTH if columns <= 2 else PAGE_WIDTH
    height = min(MAX_HEIGHT, 1.0 + _panel_height(len(labels)) * n_rows)
    fig, axes = new_figure(width, height, n_rows, columns, sharex=True, sharey=True)
    for k, (name, ax) in enumerate(zip(panels, axes.ravel(), strict=False)):
        keys = [(name, label) for label in labels] if by_head else [(label, name) for label in labels]
        _draw_rows(ax, [table[key] for key in keys], alpha)
        firth = by_head and str(table[keys[0]]["fit"]) == "firth"
        ax.set_title((short[name] if by_head else name) + (" (Firth)" if firth else ""), fontsize=MIN_FONT)
        _odds_axis(ax, columns)
        ax.tick_params(labelsize=MIN_FONT, labelleft=k % columns == 0)
    first = axes.ravel()[0]
    first.set_yticks(range(len(labels)), labels if by_head else [short[head] for head in labels])  # shared y
    first.set_ylim(len(labels) - 0.5, -0.5)
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    handles = [Line2D([], [], color=VALIDATED_COLOUR, marker="o", markersize=3.5, label=f"adjusted p < {alpha:g}"),
               Line2D([], [], color=NOT_VALIDATED_COLOUR, marker="o", markersize=3.5, markerfacecolor="white",
                      label="not significant")]
    title = (f"Joint model: odds ratios with {level(result)} intervals,{chr(10) if columns <= 2 else ' '}"
             "the other features held fixed")
    fig.legend(handles=handles, loc="outside upper center", ncols=2, fontsize=MIN_FONT, frameon=False, title=title,
               title_fontsize=FONT)
    fig.supxlabel("attention odds ratio (log scale): highest vs lowest,"
                  f"{chr(10) if columns <= 2 else ' '}or flagged vs not", fontsize=FONT)
    return fig
