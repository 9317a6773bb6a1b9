"""Figures of an analysis: each takes a result object and draws one view of it with seaborn and matplotlib.

Every figure function takes the data (an :class:`~hsi_stats.results.HSIResult`, or the ``per_step`` table of an
evolution result) first and its options keyword-only. Single-panel figures accept ``ax=None`` (a new figure is
created with :mod:`matplotlib.pyplot` only when no axes are given) and return the Axes they drew on;
:func:`null_distributions` draws one panel per head and returns the Figure. :func:`save_figure` and
:func:`figure_to_png_bytes` accept whatever a figure function returned.

This module only draws: it computes nothing beyond descriptive summaries (bin means for display), never
changes the matplotlib backend and never calls ``plt.show``. The statistics layer must never import it.
"""

from ._common import STRENGTH_LINES, figure_to_png_bytes, save_figure
from .attention import attention_distributions, attention_vs_feature
from .estimates import focus_plot, forest_plot, hsi_bars, null_distributions, rho_heatmap
from .evolution import evolution_plot

__all__ = [
    "STRENGTH_LINES",
    "attention_distributions",
    "attention_vs_feature",
    "evolution_plot",
    "figure_to_png_bytes",
    "focus_plot",
    "forest_plot",
    "hsi_bars",
    "null_distributions",
    "rho_heatmap",
    "save_figure",
]
