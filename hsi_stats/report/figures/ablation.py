"""What removing each head does to the policy: a figure of the ablation effects with their intervals.

One panel per measure, a row per head (short names) or named set of heads: open loop, the share of observations
whose most probable action changes and the mean total-variation distance between the action distributions; closed
loop, the change of the mean return and of the crash rate (ablated minus intact). Each estimate is a marker with its
interval as a line; the closed-loop panels mark 0. Open and closed loop are a row of two panels each. This module
only draws the tables of :class:`hsi_stats.ablation.AblationEffects` and :class:`hsi_stats.ablation.AblationEpisodes`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._common import MAX_HEIGHT, MIN_FONT, PAGE_WIDTH, VALIDATED_COLOUR, new_figure, paper_figure, stacked_height

__all__ = ["ablation_plot"]

#: (table column, label) of each panel, open loop then closed loop.
_OPEN = (("changed", "share of actions changed"), ("tv", "total variation"))
_CLOSED = (("return_delta", "change of mean return"), ("crash_delta", "change of crash rate"))


def _panel(ax: Axes, table: pd.DataFrame, column: str, label: str, names: list[str], zero_line: bool) -> None:
    for y, row in enumerate(table.to_dict(orient="records")):
        low, high = float(row[f"{column}_ci_low"]), float(row[f"{column}_ci_high"])
        ax.plot([low, high], [y, y], color=VALIDATED_COLOUR, linewidth=1.2)
        ax.plot([float(row[column])], [y], marker="o", markersize=3.5, color=VALIDATED_COLOUR)
    if zero_line:
        ax.axvline(0.0, color="0.4", linewidth=0.6, zorder=0)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.set_xlabel(label)
    ax.tick_params(labelsize=MIN_FONT)


@paper_figure
def ablation_plot(effects: Any = None, episodes: Any = None, *, short: dict[str, str] | None = None) -> Figure:
    """The effects of removing each head: open loop (``effects``, an
    :class:`~hsi_stats.ablation.AblationEffects`), closed loop (``episodes``, an
    :class:`~hsi_stats.ablation.AblationEpisodes`), or both; ``short`` maps head names to the names shown.

    Returns
    -------
    matplotlib.figure.Figure
        A row of two panels per loop (open loop first), the rows of a loop sharing their head names.
    """
    if effects is None and episodes is None:
        raise ValueError("The values for `effects` and `episodes` must not both be None: give at least one.")
    short = short or {}
    sources: list[tuple[pd.DataFrame, tuple[tuple[str, str], ...], bool]] = []
    if effects is not None:
        sources.append((effects.table, _OPEN, False))
    if episodes is not None:
        sources.append((episodes.table[episodes.table["head"] != "none"], _CLOSED, True))
    heights = [stacked_height(len(table) + 0.5, overhead=0.55) for table, _, _ in sources]
    fig, axes = new_figure(PAGE_WIDTH, min(MAX_HEIGHT, sum(heights) + 0.3), len(sources), 2,
                           gridspec_kw={"height_ratios": heights})
    for (table, measures, zero_line), row in zip(sources, axes, strict=True):
        names = [short.get(str(name), str(name)) for name in table["head"]]
        for k, ((column, label), ax) in enumerate(zip(measures, row, strict=True)):
            _panel(ax, table, column, label, names, zero_line)
            if k:
                ax.tick_params(labelleft=False)
    fig.suptitle("What removing each head does (with intervals from resampling episodes)", fontsize=MIN_FONT + 1)
    return fig
