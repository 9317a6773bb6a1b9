"""What every figure shares: colours, the strength lines, the paper style and sizes, axes and figure handling,
head lookup and short names, and output (PNG, PDF and SVG).

Figures are sized for a paper: 3.5 in wide (one column) or 7.0 in (two columns), at most :data:`MAX_HEIGHT` tall,
every text at least :data:`MIN_FONT` points at that size. The style is applied with :func:`paper_style`, a
``matplotlib.rc_context``, so the global matplotlib state is never changed. Drawing only; nothing here reads a
statistic beyond what a result holds.
"""

from __future__ import annotations

import functools
import io
import itertools
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure, SubFigure
from matplotlib.font_manager import FontProperties
from matplotlib.legend import Legend
from matplotlib.textpath import TextToPath
from numpy.typing import NDArray

from ..._atomic import atomic_path
from ...data import HSIDataset
from ...labels import STRENGTH_BANDS
from ...results import HSIResult
from ..naming import short_head_names

__all__ = ["COLUMN_WIDTH", "MAX_HEIGHT", "MIN_FONT", "PAGE_WIDTH", "STRENGTH_LINES", "RenderedFigure",
           "figure_to_png_bytes", "paper_style", "render_figure", "save_figure"]


STRENGTH_LINES: tuple[tuple[float, str], ...] = tuple((band.lower, band.name) for band in STRENGTH_BANDS[::-1])
"""HSI bands of the interpretation guide (:data:`hsi_stats.labels.STRENGTH_BANDS`) drawn as reference lines."""

VALIDATED_COLOUR = sns.color_palette("colorblind")[0]
NOT_VALIDATED_COLOUR = (0.72, 0.72, 0.72)
OBSERVED_COLOUR = sns.color_palette("colorblind")[3]
REFERENCE_COLOUR = "0.35"
N_BINS = 20
LOG_FLOOR = 1e-4
Z95 = 1.959963984540054

#: Width of a figure that spans one column of a two-column paper, in inches.
COLUMN_WIDTH = 3.5
#: Width of a figure that spans both columns (multi-panel figures and figures of many heads), in inches.
PAGE_WIDTH = 7.0
#: Tallest figure, in inches: more heads go into more panels side by side, never into smaller text.
MAX_HEIGHT = 9.0
#: Smallest text of any figure, in points at print size.
MIN_FONT = 7.0
#: Size of titles, axis labels and annotations, in points.
FONT = 8.0
#: Distance between rows that carry a head name (a bar, an interval, a heatmap cell), in points.
ROW_PITCH = 11.0
#: The closest rows may come when there are many heads: the names' 7-point text still clears its neighbours.
MIN_ROW_PITCH = 7.5

#: rcParams of the paper style: sizes in points, fonts kept editable (TrueType in PDF, text in SVG), and SVG ids
#: that do not change from one run to the next.
PAPER_RC: Mapping[str, Any] = {
    "font.size": FONT,
    "axes.titlesize": FONT,
    "axes.labelsize": FONT,
    "xtick.labelsize": MIN_FONT,
    "ytick.labelsize": MIN_FONT,
    "legend.fontsize": MIN_FONT,
    "legend.title_fontsize": MIN_FONT,
    "figure.titlesize": FONT + 1,
    "figure.labelsize": FONT,
    "axes.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "lines.linewidth": 1.0,
    "lines.markersize": 4.0,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "svg.hashsalt": "hsi_stats",
    "savefig.facecolor": "white",
}

_P = ParamSpec("_P")
_R = TypeVar("_R")


@contextmanager
def paper_style() -> Iterator[None]:
    """Apply :data:`PAPER_RC` inside the block only (``matplotlib.rc_context``)."""
    with mpl.rc_context(dict(PAPER_RC)):  # type: ignore[arg-type]  # keys typed as literals by matplotlib
        yield


def paper_figure(draw: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run a figure function inside :func:`paper_style`, so every text it makes has the paper's sizes."""

    @functools.wraps(draw)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with paper_style():
            return draw(*args, **kwargs)

    return wrapper


_TEXT_PATH = TextToPath()


def text_width(text: str, size: float = MIN_FONT) -> float:
    """Width in inches of ``text`` (its longest line) set at ``size`` points in the default font."""
    font = FontProperties(size=size)
    widths = [_TEXT_PATH.get_text_width_height_descent(line, font, ismath=False)[0] for line in text.split("\n")]
    return max(widths, default=0.0) / 72.0


def stacked_height(n_rows: float, *, overhead: float, pitch: float = ROW_PITCH) -> float:
    """Height in inches of a figure whose ``n_rows`` rows of names are ``pitch`` points apart, plus ``overhead``
    inches of titles and axes, at most :data:`MAX_HEIGHT` (rows then come closer)."""
    return min(MAX_HEIGHT, overhead + n_rows * pitch / 72.0)


def rows_per_panel(*, overhead: float, pitch: float = MIN_ROW_PITCH, height: float = MAX_HEIGHT) -> int:
    """How many rows ``pitch`` points apart fit in a panel of a figure ``height`` inches tall."""
    return max(1, int((height - overhead) * 72.0 / pitch))


def split_evenly(n: int, capacity: int) -> list[range]:
    """``range(n)`` in the fewest consecutive chunks of at most ``capacity`` items, as equal as possible."""
    if n <= 0:
        return [range(0)]
    parts = math.ceil(n / max(1, capacity))
    bounds = np.linspace(0, n, parts + 1).round().astype(int)
    return [range(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def new_figure(width: float, height: float, nrows: int = 1, ncols: int = 1,
               **kwargs: Any) -> tuple[Figure, NDArray[Any]]:
    """A constrained-layout figure ``width`` x ``height`` inches with a grid of axes (always a 2-D array)."""
    fig, axes = plt.subplots(nrows, ncols, figsize=(width, height), squeeze=False, layout="constrained", **kwargs)
    return fig, axes


def wrap_words(text: str, width: float, size: float = MIN_FONT) -> str:
    """``text`` broken at spaces and underscores into lines at most ``width`` inches wide where possible."""
    pieces = [p for p in text.replace("_", "_\0").replace(" ", " \0").split("\0") if p]
    lines: list[str] = []
    for piece in pieces:
        if lines and text_width(lines[-1] + piece, size) <= width:
            lines[-1] += piece
        else:
            lines.append(piece)
    return "\n".join(line.rstrip() for line in lines)


def legend_above(ax: Axes, handles: Sequence[Any], title: str, *, fontsize: float = FONT) -> Legend:
    """Put a legend of ``handles`` in rows just above ``ax`` (as many per row as fit the figure's width) and
    ``title`` above the legend."""
    width = root_figure(ax).get_figwidth() - 0.6
    widths = [text_width(str(h.get_label())) + 0.45 for h in handles]
    ncols = max(1, len(handles))
    while ncols > 1 and sum(sorted(widths)[-ncols:]) > width:
        ncols -= 1
    rows = math.ceil(len(handles) / ncols)
    legend = ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=ncols, frameon=False,
                       borderaxespad=0.2, borderpad=0.1, handlelength=1.6, columnspacing=1.0, labelspacing=0.3)
    # Each row of the legend takes its text and the spacing below it; the title goes above the last row.
    ax.set_title(title, fontsize=fontsize, pad=6.0 + rows * 1.35 * MIN_FONT)
    return legend


def axes_width(ax: Axes) -> float:
    """Width of ``ax`` in inches, before a constrained layout makes room for labels (so an upper bound)."""
    return float(ax.get_position().width * root_figure(ax).get_figwidth())


def category_labels(ax: Axes, positions: Sequence[float] | NDArray[np.floating[Any]], labels: Sequence[str], *,
                    pitch: float) -> None:
    """Put ``labels`` under x ``positions`` that are ``pitch`` inches apart: level (broken into lines at spaces
    and underscores) when every line fits the pitch, else turned upright."""
    room = 0.85 * pitch
    wrapped = [wrap_words(label, room) for label in labels]
    if all(text_width(label) <= room for label in wrapped):
        ax.set_xticks(list(positions), wrapped, rotation=0, ha="center")
    else:
        ax.set_xticks(list(positions), list(labels), rotation=90, ha="center", va="top")
    ax.tick_params(axis="x", labelsize=MIN_FONT)


def short_names(names: Sequence[str]) -> dict[str, str]:
    """Full head name -> the name shown in figures (:func:`hsi_stats.report.naming.short_head_names`)."""
    return short_head_names([str(n) for n in names])


def result_short_names(result: HSIResult) -> dict[str, str]:
    """The shown name of each head of ``result``: the same in every figure of the result."""
    return short_names(head_names(result))


# ------------------------------------------------------------------------------------------------ helpers
def check_axes(ax: object) -> Axes:
    """``ax`` when it is a matplotlib Axes; a TypeError naming what was passed otherwise."""
    if not isinstance(ax, Axes):
        raise TypeError(f"The value for `ax` must be a matplotlib Axes or None, but {type(ax).__name__} "
                        "was passed.")
    return ax


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` itself, or the axes of a new constrained-layout figure of ``figsize`` inches."""
    if ax is not None:
        return check_axes(ax)
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


def raw_dataset(result: HSIResult) -> HSIDataset:
    """The data the figures of raw attention values draw: the data set, or a sample of a sharded one."""
    dataset = result.dataset
    return dataset if isinstance(dataset, HSIDataset) else dataset.sample()


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
#: Metadata that would make two renderings of the same figure differ (the creation date) left out.
_METADATA: Mapping[str, Mapping[str, Any]] = {"pdf": {"CreationDate": None}, "svg": {"Date": None}, "png": {}}
_FORMATS = tuple(_METADATA)


@dataclass(frozen=True)
class RenderedFigure:
    """One figure rendered once into the three formats a report uses.

    Attributes
    ----------
    png : bytes
        Raster image for the HTML and PDF reports.
    pdf : bytes
        Vector PDF, fonts embedded as TrueType (Type 42) so the text stays editable.
    svg : bytes
        Vector SVG, text kept as ``<text>`` elements.
    """

    png: bytes
    pdf: bytes
    svg: bytes


def _close(fig: Figure) -> None:
    plt.close(fig)


def _write(fig: Figure, target: Any, fmt: str, dpi: float) -> None:
    # A figure laid out by matplotlib keeps its size (the paper's column width); any other is cropped to its content.
    bbox = None if fig.get_layout_engine() is not None else "tight"
    with paper_style():
        fig.savefig(target, format=fmt, dpi=dpi, bbox_inches=bbox, pad_inches=0.02, facecolor="white",
                    metadata=dict(_METADATA[fmt]))


def _figure_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower().lstrip(".")
    return suffix if suffix in _FORMATS else "png"


def save_figure(ax_or_fig: Any, path: str | os.PathLike[str], *, dpi: int = 150, close: bool = True) -> None:
    """Write a figure to ``path`` as PDF, SVG or PNG (by its suffix), atomically, and close it.

    The file is written to a temporary file in the destination folder (created when missing) and moved over
    ``path`` only once complete, so a crash never leaves a partial file. PDF and SVG are vector files with
    editable text and no creation date, so the same figure gives the same bytes.

    Parameters
    ----------
    ax_or_fig : Axes, array of Axes, Figure or seaborn grid
        What a figure function returned.
    path : path-like
        Destination: ``.pdf`` and ``.svg`` (any case) give those formats, any other suffix PNG.
    dpi : int, default 150
        Resolution of the PNG (and of any rasterised part of a vector file).
    close : bool, default True
        Close the figure afterwards (also when writing fails), so figures do not accumulate in pyplot.
    """
    fmt = _figure_format(path)
    fig = as_figure(ax_or_fig)
    try:
        with atomic_path(path, suffix="." + fmt) as tmp:
            _write(fig, tmp, fmt, dpi)
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
        _write(fig, buffer, "png", dpi)
    finally:
        if close:
            _close(fig)
    return buffer.getvalue()


def render_figure(ax_or_fig: Any, *, dpi: int = 200, close: bool = True) -> RenderedFigure:
    """Render a figure once into PNG (at ``dpi``), PDF and SVG, closing it by default.

    Parameters
    ----------
    ax_or_fig : Axes, array of Axes, Figure or seaborn grid
        What a figure function returned.
    dpi : int, default 200
        Resolution of the PNG.
    close : bool, default True
        Close the figure afterwards (also when rendering fails).

    Returns
    -------
    RenderedFigure
    """
    fig = as_figure(ax_or_fig)
    out: dict[str, bytes] = {}
    try:
        for fmt in _FORMATS:
            buffer = io.BytesIO()
            _write(fig, buffer, fmt, dpi)
            out[fmt] = buffer.getvalue()
    finally:
        if close:
            _close(fig)
    return RenderedFigure(png=out["png"], pdf=out["pdf"], svg=out["svg"])
