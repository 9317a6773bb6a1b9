"""What every figure shares: colours, the strength lines, axes and figure handling, head lookup and output.

Drawing only; nothing here reads a statistic beyond what a result holds.
"""

from __future__ import annotations

import io
import os
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from numpy.typing import NDArray

from ..._atomic import atomic_path
from ...labels import STRENGTH_BANDS
from ...results import HSIResult

__all__ = ["STRENGTH_LINES", "figure_to_png_bytes", "save_figure"]


STRENGTH_LINES: tuple[tuple[float, str], ...] = tuple((band.lower, band.name) for band in STRENGTH_BANDS[::-1])
"""HSI bands of the interpretation guide (:data:`hsi_stats.labels.STRENGTH_BANDS`) drawn as reference lines."""

VALIDATED_COLOUR = sns.color_palette("colorblind")[0]
NOT_VALIDATED_COLOUR = (0.72, 0.72, 0.72)
OBSERVED_COLOUR = sns.color_palette("colorblind")[3]
REFERENCE_COLOUR = "0.35"
N_BINS = 20
LOG_FLOOR = 1e-4
Z95 = 1.959963984540054


# ------------------------------------------------------------------------------------------------ helpers
def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        if not isinstance(ax, Axes):
            raise TypeError(f"The value for `ax` must be a matplotlib Axes or None, but {type(ax).__name__} "
                            "was passed.")
        return ax
    _, new = plt.subplots(figsize=figsize, layout="constrained")
    return new


def check_result(result: object) -> HSIResult:
    if not isinstance(result, HSIResult):
        raise TypeError(f"`result` must be an HSIResult (from hsi_stats.analyze), but {type(result).__name__} "
                        "was passed.")
    return result


def root_figure(artist: Axes | Figure | SubFigure) -> Figure:
    fig: object
    try:
        fig = artist.get_figure(root=True)
    except TypeError:  # pragma: no cover - matplotlib < 3.10 has no `root`
        fig = artist.figure if isinstance(artist, (Axes, SubFigure)) else artist
    if not isinstance(fig, Figure):
        raise TypeError("The axes or subfigure passed is not attached to a figure.")
    return fig


def as_figure(ax_or_fig: object) -> Figure:
    """The root Figure of an Axes, an array or sequence of Axes, a (Sub)Figure or a seaborn grid."""
    if isinstance(ax_or_fig, (Figure, SubFigure, Axes)):
        return root_figure(ax_or_fig)
    if isinstance(ax_or_fig, (np.ndarray, list, tuple)):
        flat = np.asarray(ax_or_fig, dtype=object).ravel()
        if flat.size and all(isinstance(a, Axes) for a in flat):
            return root_figure(flat[0])
    figure = getattr(ax_or_fig, "figure", None)  # seaborn FacetGrid, PairGrid, JointGrid
    if isinstance(figure, (Figure, SubFigure)):
        return root_figure(figure)
    raise TypeError("The value for `ax_or_fig` must be a matplotlib Axes, an array of Axes, a Figure or a "
                    f"seaborn grid, but {type(ax_or_fig).__name__} was passed.")


def head_names(result: HSIResult) -> list[str]:
    return [str(h) for h in result.heads["head"]]


def feature_names(result: HSIResult) -> list[str]:
    return [str(f) for f in pd.unique(result.pairs["feature"])]


def resolve_head(result: HSIResult, head: object, param: str = "head") -> str:
    names = head_names(result)
    if isinstance(head, str) and head in names:
        return head
    if isinstance(head, (int, np.integer)) and not isinstance(head, bool) and -len(names) <= head < len(names):
        return names[int(head)]
    raise ValueError(f"The value for `{param}` must be one of {names} or an index below {len(names)}, "
                     f"but {head!r} was passed.")


def resolve_heads(result: HSIResult, heads: object) -> list[str]:
    if heads is None:
        return head_names(result)
    try:
        items = [heads] if isinstance(heads, (str, int, np.integer)) else list(heads)  # type: ignore[call-overload]
    except TypeError:
        items = []
    if len(items) == 0:
        raise ValueError(f"The value for `heads` must be None, a head name or index, or a non-empty sequence of "
                         f"them, but {heads!r} was passed.")
    chosen = [resolve_head(result, h, "heads") for h in items]
    return list(dict.fromkeys(chosen))


def significance_mark(p: float, alpha: float) -> str:
    """``***`` below alpha/50, ``**`` below alpha/5, ``*`` below alpha, else nothing (NaN: nothing)."""
    if not p < alpha:
        return ""
    if p < alpha / 50:
        return "***"
    if p < alpha / 5:
        return "**"
    return "*"


def as_bool(values: pd.Series) -> NDArray[np.bool_]:
    """True only where a value is present and truthy (NaN and missing count as False)."""
    return np.array([bool(v) if not pd.isna(v) else False for v in values], dtype=bool)


def level(result: HSIResult) -> str:
    return f"{100 * float(result.settings.confidence_level):g}%"



# ------------------------------------------------------------------------------------------------ output
def _close(fig: Figure) -> None:
    plt.close(fig)


def save_figure(ax_or_fig: Any, path: str | os.PathLike[str], *, dpi: int = 150, close: bool = True) -> None:
    """Write a figure to ``path`` as PNG, atomically, and close it.

    The image is written to a temporary file in the destination folder (created when missing) and moved over
    ``path`` only once complete, so a crash never leaves a partial file.

    Parameters
    ----------
    ax_or_fig : Axes, array of Axes, Figure or seaborn grid
        What a figure function returned.
    path : path-like
        Destination; the content is PNG whatever the suffix.
    dpi : int, default 150
        Resolution.
    close : bool, default True
        Close the figure afterwards (also when writing fails), so figures do not accumulate in pyplot.
    """
    fig = as_figure(ax_or_fig)
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        if close:
            _close(fig)


def figure_to_png_bytes(ax_or_fig: Any, *, dpi: int = 150, close: bool = True) -> bytes:
    """The figure as PNG bytes (for embedding in HTML), closing it by default.

    Parameters
    ----------
    ax_or_fig : Axes, array of Axes, Figure or seaborn grid
        What a figure function returned.
    dpi : int, default 150
        Resolution.
    close : bool, default True
        Close the figure afterwards, so figures do not accumulate in pyplot.

    Returns
    -------
    bytes
        A PNG image (starts with ``b"\\x89PNG"``).
    """
    fig = as_figure(ax_or_fig)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    finally:
        if close:
            _close(fig)
    return buffer.getvalue()
