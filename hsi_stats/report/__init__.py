"""Reports of an analysis: figures, tables and the HTML/PDF writers.

Everything here reads result objects and never computes a statistic; the statistics layer never imports it.
"""

from .figures import (
    ablation_plot,
    attention_distributions,
    attention_vs_feature,
    evolution_plot,
    figure_to_png_bytes,
    focus_plot,
    forest_plot,
    hsi_bars,
    null_distributions,
    odds_ratio_plot,
    rho_heatmap,
    save_figure,
)
from .writer import write_report

__all__ = [
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
    "rho_heatmap",
    "save_figure",
    "write_report",
]
