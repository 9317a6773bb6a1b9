"""The figure of a comparison of runs: each run's rho heatmap side by side, heads in the order of the matching."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from ...compare import RunComparison
from ._common import (
    FONT,
    MAX_HEIGHT,
    MIN_FONT,
    PAGE_WIDTH,
    ROW_PITCH,
    axes_width,
    category_labels,
    new_figure,
    paper_figure,
    short_names,
    text_width,
)

__all__ = ["run_heatmaps"]

#: Runs side by side in one row of panels; more runs go into further rows.
_RUNS_PER_ROW = 3
_OVERHEAD = 1.6


@paper_figure
def run_heatmaps(comparison: RunComparison) -> Figure:
    """Each run's rho (heads x features) as a heatmap, side by side, the heads of every run in the order of the
    matching: row i of every panel is the head matched to the reference's head i (the reference is the first
    panel), so that a function that replicates is one colour pattern across a row.

    A head whose match is ambiguous (:attr:`RunComparison.matches`) is marked ``?`` after its name; a reference head
    without a match in a run is a blank row, and a run's unmatched heads come last. The colour map is diverging,
    centred at 0, from -1 to 1; values are written in the cells when they fit at 7 pt.

    Parameters
    ----------
    comparison : RunComparison
        From :func:`hsi_stats.compare_runs`.

    Returns
    -------
    matplotlib.figure.Figure
        One panel per run (up to three per row), with a shared colour bar.

    Examples
    --------
    >>> from hsi_stats import analyze, compare_runs
    >>> from hsi_stats.synthetic import default_heads, generate
    >>> runs = [analyze(generate(n_episodes=12, n_steps=5, heads=default_heads()[:4], rng=s).dataset,
    ...                 n_resamples=99, rng=s) for s in (0, 1)]
    >>> fig = run_heatmaps(compare_runs(runs, n_resamples=99, rng=0))
    >>> len([ax for ax in fig.axes if ax.get_label() != "<colorbar>"])
    2
    """
    if not isinstance(comparison, RunComparison):
        raise TypeError(f"`comparison` must be a RunComparison (from hsi_stats.compare_runs), but "
                        f"{type(comparison).__name__} was passed.")
    runs = list(comparison.runs)
    orders = {run: comparison.order(run) for run in runs}
    n_rows = max(len(order) for order in orders.values())
    ncols = min(len(runs), _RUNS_PER_ROW)
    nrows = math.ceil(len(runs) / ncols)
    height = min(MAX_HEIGHT, 0.5 + nrows * (_OVERHEAD + n_rows * 1.5 * ROW_PITCH / 72.0))
    fig, grid = new_figure(PAGE_WIDTH, max(2.4, height), nrows, ncols)
    panels = list(grid.ravel())
    ambiguous = {(r, h) for r, h, a in zip(comparison.matches["run"], comparison.matches["head"],
                                            comparison.matches["ambiguous"], strict=True) if a}
    features = [f for f in comparison.rho[runs[0]].columns]
    mesh = None
    for index, run in enumerate(runs):
        ax = panels[index]
        rho = comparison.rho[run].reindex(columns=features)
        short = short_names(list(rho.index))
        order = orders[run] + [None] * (n_rows - len(orders[run]))
        values = np.array([rho.loc[h].to_numpy(float) if h is not None else np.full(len(features), np.nan)
                           for h in order])
        names = [("" if h is None else short[h] + (" ?" if (run, h) in ambiguous else "")) for h in order]
        label_width = max(text_width(n) for n in names if n) + 0.3 if any(names) else 0.3
        cell_width = max(0.05, (axes_width(ax) - label_width) / max(1, len(features)))
        cell_height = (ax.get_position().height * fig.get_figheight() - 0.9) / max(1, n_rows)
        fits = text_width("-0.00") + 0.04 <= cell_width and MIN_FONT / 72 * 1.3 <= cell_height
        annot = np.array([["" if not np.isfinite(v) else f"{v:.2f}" for v in row] for row in values], dtype=object)
        frame = pd.DataFrame(values, index=[str(i) for i in range(n_rows)], columns=features)
        sns.heatmap(frame, ax=ax, cmap="RdBu_r", vmin=-1.0, vmax=1.0, annot=annot if fits else False, fmt="",
                    annot_kws={"fontsize": MIN_FONT - 1 if len(features) > 6 else MIN_FONT}, linewidths=0.4,
                    linecolor="white", cbar=False)
        mesh = ax.collections[0]
        ax.set_yticks(np.arange(n_rows) + 0.5, names, rotation=0, fontsize=MIN_FONT)
        category_labels(ax, np.arange(len(features)) + 0.5, features, pitch=cell_width)
        ax.set_xlabel("")
        ax.set_ylabel("head" if index % ncols == 0 else "")
        ax.set_title(f"{run} (reference)" if index == 0 else run, fontsize=FONT)
    for ax in panels[len(runs):]:
        ax.set_visible(False)
    if mesh is not None:
        fig.colorbar(mesh, ax=panels[:len(runs)], label="ρ", shrink=0.8, aspect=30, pad=0.02)
    fig.suptitle("Correlation ρ of each head with each feature, heads in the order of the matching "
                 "(row i: the head matched to the reference's head i; ? ambiguous match)", fontsize=FONT,
                 wrap=True)
    return fig
