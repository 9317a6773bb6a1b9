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
from numpy.typing import NDArray

from ...evolution import PER_STEP_COLUMNS
from ...settings import AnalysisSettings
from ._common import (
    REFERENCE_COLOUR,
    as_bool,
    new_axes,
)

__all__ = ["evolution_plot"]

#: The columns of :data:`hsi_stats.evolution.PER_STEP_COLUMNS` the figure draws.
_DRAWN = tuple(c for c in PER_STEP_COLUMNS if c in ("step", "head", "hsi", "ci_low", "ci_high", "label",
                                                     "validated"))


# ------------------------------------------------------------------------------------------------ evolution
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


def evolution_plot(per_step: pd.DataFrame, *, ax: Axes | None = None, threshold: float | None = None,
                   step_names: Mapping[int, str] | None = None) -> Axes:
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
    palette = sns.color_palette("colorblind" if len(heads) <= 10 else "husl", n_colors=len(heads))
    ax = new_axes(ax, (8.6, 4.6))
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
        validated_labels = [lab for lab, ok in zip(sub["label"], validated, strict=True) if ok and isinstance(lab, str)]
        name = f"{head}: {validated_labels[-1]}" if validated_labels else str(head)
        ax.plot(x, hsi, color=colour, linewidth=1.6, label=name)
        present = np.isfinite(hsi)
        ax.scatter(x[present & validated], hsi[present & validated], s=30, color=colour, edgecolors=colour,
                   zorder=3)
        ax.scatter(x[present & ~validated], hsi[present & ~validated], s=30, facecolors="white",
                   edgecolors=colour, linewidths=1.2, zorder=3)
    ax.axhline(threshold, color=REFERENCE_COLOUR, linestyle="--", linewidth=0.9)
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], linestyle="none", label=""),
                Line2D([], [], color="0.3", marker="o", linestyle="none", label="validated"),
                Line2D([], [], color="0.3", marker="o", markerfacecolor="white", linestyle="none",
                       label="not validated"),
                Line2D([], [], color=REFERENCE_COLOUR, linestyle="--", label=f"threshold {threshold:g}")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
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
