"""What removing each head does to the policy: a figure of the ablation effects with their intervals.

One panel per measure, a row per head (short names) or named set of heads: open loop, the share of observations
whose most probable action changes and the mean total-variation distance between the action distributions; closed
loop, the change of the mean return and of the crash rate (ablated minus intact). Each estimate is a marker with its
interval as a line; the closed-loop panels mark 0. Open and closed loop are a row of two panels each. This module
only draws the tables of :class:`hsi_stats.ablation.AblationEffects` and :class:`hsi_stats.ablation.AblationEpisodes`.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import (
    MAX_HEIGHT,
    MIN_FONT,
    MIN_ROW_PITCH,
    PAGE_WIDTH,
    VALIDATED_COLOUR,
    paper_figure,
    rows_per_panel,
    split_evenly,
    stacked_height,
)

__all__ = ["ablation_plot"]

#: (table column, label) of each panel, open loop then closed loop; the first of each is kept with many heads.
_OPEN = (("changed", "share of actions changed"), ("tv", "total variation"))
_CLOSED = (("return_delta", "change of mean return"), ("crash_delta", "change of crash rate"))
#: Inches of a row of panels outside its head rows (the x axis and its label), and of the figure's title.
_OVERHEAD, _TITLE = 0.6, 0.3


def _panel(ax: Axes, rows: list[dict[str, Any]], column: str, label: str, names: list[str], zero_line: bool,
           limits: tuple[float, float]) -> None:
    for y, row in enumerate(rows):
        low, high = float(row[f"{column}_ci_low"]), float(row[f"{column}_ci_high"])
        ax.plot([low, high], [y, y], color=VALIDATED_COLOUR, linewidth=1.2)
        ax.plot([float(row[column])], [y], marker="o", markersize=3.5, color=VALIDATED_COLOUR)
    if zero_line:
        ax.axvline(0.0, color="0.4", linewidth=0.6, zorder=0)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlim(*limits)
    ax.set_xlabel(label)
    ax.tick_params(labelsize=MIN_FONT)


def _limits(table: pd.DataFrame, column: str, zero_line: bool) -> tuple[float, float]:
    """The x range of a measure: every interval, and 0."""
    values = table[[column, f"{column}_ci_low", f"{column}_ci_high"]].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    low = min(0.0, float(finite.min())) if finite.size else 0.0
    high = max(0.0, float(finite.max())) if finite.size else 1.0
    pad = 0.05 * (high - low) or (0.05 if zero_line else 0.01)
    return low - pad, high + pad


@paper_figure
def ablation_plot(effects: Any = None, episodes: Any = None, *, short: dict[str, str] | None = None) -> Figure:
    """The effects of removing each head: open loop (``effects``, an
    :class:`~hsi_stats.ablation.AblationEffects`), closed loop (``episodes``, an
    :class:`~hsi_stats.ablation.AblationEpisodes`), or both; ``short`` maps head names to the names shown.

    Each loop is a row of two panels (open loop: share of actions changed, total variation; closed loop: change of
    the mean return and of the crash rate), 7 in wide. When the heads do not fit a panel at most 9 in tall, each
    loop keeps its first measure and its heads are split over panels side by side (the tables keep every measure).

    Returns
    -------
    matplotlib.figure.Figure
    """
    if effects is None and episodes is None:
        raise ValueError("The values for `effects` and `episodes` must not both be None: give at least one.")
    short = short or {}
    sources: list[tuple[pd.DataFrame, tuple[tuple[str, str], ...], bool]] = []
    if effects is not None:
        sources.append((effects.table, _OPEN, False))
    if episodes is not None:
        sources.append((episodes.table[episodes.table["head"] != "none"], _CLOSED, True))
    budget = (MAX_HEIGHT - _TITLE) / len(sources)
    capacity = rows_per_panel(overhead=_OVERHEAD, pitch=MIN_ROW_PITCH, height=budget)
    layouts = []
    for table, measures, zero_line in sources:
        chunks = split_evenly(len(table), capacity)
        layouts.append((table, measures if len(chunks) == 1 else measures[:1], zero_line, chunks))
    heights = [min(budget, stacked_height(max(len(c) for c in chunks) + 0.5, overhead=_OVERHEAD))
               for *_, chunks in layouts]
    fig = plt.figure(figsize=(PAGE_WIDTH, sum(heights) + _TITLE), layout="constrained")
    rows = fig.subfigures(len(layouts), 1, height_ratios=heights, squeeze=False)[:, 0]
    for (table, measures, zero_line, chunks), row in zip(layouts, rows, strict=True):
        records: list[dict[str, Any]] = table.to_dict(orient="records")  # type: ignore[assignment]
        names = [short.get(str(record["head"]), str(record["head"])) for record in records]
        axes = row.subplots(1, len(measures) * len(chunks), squeeze=False)[0]
        panels = [(column, label, chunk) for column, label in measures for chunk in chunks]
        for k, ((column, label, chunk), ax) in enumerate(zip(panels, axes, strict=True)):
            _panel(ax, [records[i] for i in chunk], column, label, [names[i] for i in chunk], zero_line,
                   _limits(table, column, zero_line))
            if len(chunks) == 1 and k:
                ax.tick_params(labelleft=False)
    fig.suptitle("What removing each head does (with intervals from resampling episodes)", fontsize=MIN_FONT + 1)
    return fig
