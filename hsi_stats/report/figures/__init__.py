"""Figures of an analysis: each takes a result object and draws one view of it with seaborn and matplotlib.

Every figure function takes the data (an :class:`~hsi_stats.results.HSIResult`, or the ``per_step`` table of an
evolution result) first and its options keyword-only. Single-panel figures accept ``ax=None`` (a new figure is
created with :mod:`matplotlib.pyplot` only when no axes are given) and return the Axes they drew on;
:func:`null_distributions` draws one panel per head and returns the Figure. A figure a function creates is sized
for a paper (3.5 or 7.0 in wide, at most 9 in tall, no text under 7 pt; many heads go into more panels rather
than smaller text) and names heads by their short names (:func:`hsi_stats.report.naming.short_head_names`).
:func:`save_figure` (PNG, PDF or SVG), :func:`figure_to_png_bytes` and :func:`render_figure` accept whatever a
figure function returned.

This module only draws: it computes nothing beyond descriptive summaries (bin means for display), never
changes the matplotlib backend and never calls ``plt.show``. The statistics layer must never import it.
"""

from ._common import (
    COLUMN_WIDTH,
    MAX_HEIGHT,
    MIN_FONT,
    PAGE_WIDTH,
    STRENGTH_LINES,
    RenderedFigure,
    figure_to_png_bytes,
    paper_style,
    render_figure,
    save_figure,
)
from .ablation import ablation_plot
from .attention import attention_distributions, attention_vs_feature
from .estimates import focus_plot, forest_plot, hsi_bars, null_distributions, rho_heatmap
from .evolution import evolution_plot
from .joint import odds_ratio_plot

__all__ = [
    "COLUMN_WIDTH",
    "MAX_HEIGHT",
    "MIN_FONT",
    "PAGE_WIDTH",
    "STRENGTH_LINES",
    "RenderedFigure",
    "ablation_plot",
    "attention_distributions",
    "attention_vs_feature",
    "evolution_plot",
    "figure_to_png_bytes",
    "focus_plot",
    "forest_plot",
    "hsi_bars",
    "null_distributions",
    "odds_ratio_plot",
    "paper_style",
    "render_figure",
    "rho_heatmap",
    "save_figure",
]
