"""The evolution figure: each head's HSI across training steps, with confidence bands.

It reads the ``per_step`` table of an :class:`~hsi_stats.evolution.EvolutionResult` and draws; nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter
from matplotlib.transforms import ScaledTranslation
from numpy.typing import NDArray

from ...evolution import PER_STEP_COLUMNS
from ...settings import AnalysisSettings
from ._common import (
    MAX_HEIGHT,
    PAGE_WIDTH,
    REFERENCE_COLOUR,
    as_bool,
    new_axes,
    paper_figure,
    root_figure,
    short_names,
    text_width,
)

__all__ = ["evolution_plot"]

#: The columns of :data:`hsi_stats.evolution.PER_STEP_COLUMNS` the figure draws.
_DRAWN = tuple(c for c in PER_STEP_COLUMNS if c in ("step", "head", "hsi", "ci_low", "ci_high", "label",
                                                     "validated"))


# ------------------------------------------------------------------------------------------------ evolution
def _legend_labels(table: pd.DataFrame, heads: list[Any], short: Mapping[str, str]) -> list[str]:
    """Each head's short name with the label it last validated with."""
    labels = []
    for head in heads:
        sub = table[table["head"] == head].sort_values("step")
        validated = as_bool(sub["validated"])
        named = [lab for lab, ok in zip(sub["label"], validated, strict=True) if ok and isinstance(lab, str)]
        labels.append(f"{short[str(head)]}: {named[-1]}" if named else short[str(head)])
    return labels


def _evolution_iv(per_step: object) -> pd.DataFrame:
    if not isinstance(per_step, pd.DataFrame):
        raise TypeError(f"`per_step` must be a pandas DataFrame, but {type(per_step).__name__} was passed.")
    missing = [c for c in _DRAWN if c not in per_step.columns]
    if missing:
        raise ValueError(f"`per_step` must have the columns {list(_DRAWN)}, but {missing} are missing.")
    table = per_step[~per_step["step"].isna() & ~per_step["head"].isna()]
    if table.empty:
        raise ValueError("`per_step` must have at least one row with a step and a head, but it has none.")
    duplicated = table.duplicated(subset=["step", "head"])
    if duplicated.any():
        first = table.loc[duplicated, ["step", "head"]].iloc[0].tolist()
        raise ValueError(f"`per_step` must have one row per (step, head), but {first} appears more than once.")
    return table


def _positions(steps: NDArray[Any], names: Mapping[int, str]) -> NDArray[np.float64]:
    """Where each step is drawn: at its number, except a named last step placed just after the one before it
    (``model_final`` is stored as the last numbered step + 1), which goes one median spacing further."""
    positions = steps.astype(float)
    if steps.size > 1 and int(steps[-1]) in names:
        spacing = np.median(np.diff(positions[:-1])) if steps.size > 2 else positions[-1] - positions[0]
        positions[-1] = positions[-2] + max(spacing, positions[-1] - positions[-2])
    return positions


#: Most heads whose legend goes in a column beside the axes; more get a legend in columns below them.
_LEGEND_BESIDE = 12


@paper_figure
def evolution_plot(per_step: pd.DataFrame, *, ax: Axes | None = None, threshold: float | None = None,
                   step_names: Mapping[int, str] | None = None) -> Axes:
    """HSI of each head across training steps, with confidence bands and validated steps marked.

    One line per head (in order of first appearance); the band is the interval ``[ci_low, ci_high]``, and a
    step whose CI has no neighbour to form a band (a single step, or a step isolated by gaps) gets an error
    bar instead. Markers are filled where the head's label validated at that step and open where it did not.
    A missing row or a NaN HSI leaves a gap in the head's line; a NaN interval leaves a gap in its band. The
    legend names each head (by its short name) with the label it last validated with; it stands beside the
    axes for up to 12 heads and in columns below them for more.

    Parameters
    ----------
    per_step : DataFrame
        One row per (step, head) with the columns ``step, head, hsi, ci_low, ci_high, primary_feature, label,
        validated`` (the ``per_step`` table of an evolution result).
    ax : matplotlib Axes, optional
        Where to draw; a new figure 7 in wide, taller with the legend of many heads, is created when omitted.
    threshold : float, optional
        Where to draw the validation-threshold line (the analysis's ``threshold``); default
        ``AnalysisSettings().threshold``.
    step_names : mapping of int to str, optional
        Steps labelled by name on the axis (:attr:`EvolutionResult.step_names
        <hsi_stats.evolution.EvolutionResult.step_names>`); a named last step (``"final"``, stored as the step
        after the last numbered one) is drawn one usual spacing after the step before it.

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = _evolution_iv(per_step)
    threshold = AnalysisSettings().threshold if threshold is None else float(threshold)
    steps = np.sort(pd.unique(table["step"].to_numpy()))
    names = dict(step_names or {})
    positions = _positions(steps, names)
    heads = [h for h in pd.unique(table["head"])]
    short = short_names([str(h) for h in heads])
    labels = _legend_labels(table, heads, short)
    palette = sns.color_palette("colorblind" if len(heads) <= 10 else "husl", n_colors=len(heads))
    beside = len(heads) <= _LEGEND_BESIDE
    legend_columns = 1 if beside else max(1, int((PAGE_WIDTH - 0.2) // (max(text_width(t) for t in labels) + 0.5)))
    legend_rows = 0 if beside else -(-(len(heads) + 4) // legend_columns)
    ax = new_axes(ax, (PAGE_WIDTH, min(MAX_HEIGHT, 3.0 + legend_rows * 9.5 / 72)))
    single = steps.size == 1
    # With one step there are no lines to follow: spread the heads side by side around it instead.
    spread = np.linspace(-0.3, 0.3, len(heads)) if len(heads) > 1 else np.zeros(1)
    for i, (head, colour) in enumerate(zip(heads, palette, strict=True)):
        x = spread[i : i + 1] if single else positions
        sub = table[table["head"] == head].set_index("step").reindex(steps)
        hsi = pd.to_numeric(sub["hsi"], errors="coerce").to_numpy(float)
        low = pd.to_numeric(sub["ci_low"], errors="coerce").to_numpy(float)
        high = pd.to_numeric(sub["ci_high"], errors="coerce").to_numpy(float)
        validated = as_bool(sub["validated"])
        band = np.isfinite(low) & np.isfinite(high)
        ax.fill_between(x, low, high, where=band, color=colour, alpha=0.18 if len(heads) <= 4 else 0.12, linewidth=0,
                        interpolate=False)
        neighbour = np.zeros_like(band)
        neighbour[1:] |= band[:-1]
        neighbour[:-1] |= band[1:]
        lonely = band & ~neighbour
        if lonely.any():
            ax.vlines(x[lonely], low[lonely], high[lonely], color=colour, linewidth=1.2, alpha=0.7)
        ax.plot(x, hsi, color=colour, linewidth=1.1, label=labels[i])
        present = np.isfinite(hsi)
        ax.scatter(x[present & validated], hsi[present & validated], s=12, color=colour, edgecolors=colour,
                   zorder=3)
        ax.scatter(x[present & ~validated], hsi[present & ~validated], s=12, facecolors="white",
                   edgecolors=colour, linewidths=0.8, zorder=3)
    ax.axhline(threshold, color=REFERENCE_COLOUR, linestyle="--", linewidth=0.7)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], color="0.3", marker="o", markersize=3.5, linestyle="none", label="validated"),
                Line2D([], [], color="0.3", marker="o", markersize=3.5, markerfacecolor="white", linestyle="none",
                       label="not validated"),
                Line2D([], [], color=REFERENCE_COLOUR, linestyle="--", label=f"threshold {threshold:g}")]
    if beside:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    else:
        # Below the axes, clear of the tick labels and the axis label whatever the figure's height.
        below = ScaledTranslation(0.0, -0.42, root_figure(ax).dpi_scale_trans)
        ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0),
                  bbox_transform=ax.transAxes + below, ncols=legend_columns, frameon=False, columnspacing=1.0,
                  handlelength=1.5)
    formatter = EngFormatter(sep="")
    labels = [names.get(int(step), formatter.format_data(float(step))) for step in steps]
    if single:
        ax.set_xticks([0.0], labels)
        ax.set_xlim(-0.5, 0.5)
    elif steps.size <= 12 or names:
        shown = np.arange(steps.size) if steps.size <= 12 else np.unique(np.r_[
            np.linspace(0, steps.size - 1, 8).round().astype(int),
            [i for i, step in enumerate(steps) if int(step) in names]])
        ax.set_xticks(positions[shown], [labels[i] for i in shown])
    else:
        ax.xaxis.set_major_formatter(formatter)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("training step")
    ax.set_ylabel("HSI")
    ax.set_title("Head specialisation over training")
    ax.grid(alpha=0.25)
    return ax
