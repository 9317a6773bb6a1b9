"""Tables of the PDF report that wrap between words only.

ReportLab breaks a word in the middle when it does not fit its column ("moderat|e", "distance_to|_ego"). Here every
column is at least as wide as the widest word it holds (header included), and as wide as its longest cell when the
page allows; the space between is shared in proportion. A table whose words cannot fit at the body size is set in a
smaller size, down to :data:`MIN_FONT_SIZE`; a word is never split (an overflowing word stays whole).
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.platypus import Paragraph, Table, TableStyle

__all__ = ["CELL_PADDING", "MIN_FONT_SIZE", "column_widths", "word_table"]

#: Left plus right padding of a ReportLab table cell (points): 6 each side by default, and 1 point of slack.
CELL_PADDING = 13.0
#: The smallest type a table is set in to make its words fit.
MIN_FONT_SIZE = 6.0
_BOLD = {"Helvetica": "Helvetica-Bold", "Times-Roman": "Times-Bold", "Courier": "Courier-Bold"}


def _width(text: str, font: str, size: float) -> float:
    return float(stringWidth(text, font, size))


def column_widths(frame: pd.DataFrame, font: str, size: float, available: float) -> list[float] | None:
    """Column widths (points) that keep every word of ``frame`` whole within ``available``; None if impossible.

    With :math:`m_j` the widest word of column j (the header in bold) and :math:`p_j` its longest cell, each plus
    the cell padding: when :math:`\\sum_j p_j` fits, the widths are :math:`p_j` (no cell wraps); otherwise
    :math:`m_j + t (p_j - m_j)` with :math:`t` such that the widths sum to ``available``; None when even
    :math:`\\sum_j m_j` exceeds it.

    Examples
    --------
    >>> frame = pd.DataFrame({"strength": ["moderate", "strong"], "reasons": ["a b c d e f g h", "-"]})
    >>> [round(w) for w in column_widths(frame, "Helvetica", 8, 1000)]  # no cell wraps
    [47, 61]
    >>> [round(w) for w in column_widths(frame, "Helvetica", 8, 100)]  # the reasons wrap between words
    [47, 53]
    >>> column_widths(frame, "Helvetica", 8, 80) is None  # "strength" and "reasons" cannot both fit
    True
    """
    bold = _BOLD.get(font, font)
    narrowest, widest = [], []
    for j, column in enumerate(frame.columns):  # by position: a table set in groups repeats its column names
        cells = [str(value) for value in frame.iloc[:, j]]
        header = str(column)
        words = [_width(word, font, size) for cell in cells for word in cell.split()]
        words += [_width(word, bold, size) for word in header.split()]
        narrowest.append(max(words, default=0.0) + CELL_PADDING)
        full = [_width(cell, font, size) for cell in cells] + [_width(header, bold, size)]
        widest.append(max(full) + CELL_PADDING)
    if sum(widest) <= available:
        return widest
    if sum(narrowest) > available:
        return None
    share = (available - sum(narrowest)) / (sum(widest) - sum(narrowest))
    return [low + share * (high - low) for low, high in zip(narrowest, widest, strict=True)]


def word_table(frame: pd.DataFrame, cell: ParagraphStyle, available: float,
               widths: Sequence[float] | None = None) -> Table:
    """``frame`` as a ReportLab table with a repeated header row, wrapping between words only.

    The widths come from :func:`column_widths` at the cell style's size, or at a smaller size down to
    :data:`MIN_FONT_SIZE` when the words do not fit; ``widths`` overrides them.
    """
    size = float(cell.fontSize)
    chosen = list(widths) if widths is not None else None
    while chosen is None:
        chosen = column_widths(frame, cell.fontName, size, available)
        if chosen is None and size - 0.5 < MIN_FONT_SIZE:  # the words overflow whole rather than break
            chosen = [available / len(frame.columns)] * len(frame.columns)
        elif chosen is None:
            size -= 0.5
    style = ParagraphStyle(f"{cell.name}-{size:g}", parent=cell, fontSize=size, leading=size * 1.2,
                           splitLongWords=0)
    rows = [[Paragraph(f"<b>{escape(str(c))}</b>", style) for c in frame.columns]]
    rows += [[Paragraph(escape(str(v)), style) for v in row] for row in frame.itertuples(index=False)]
    table = Table(rows, colWidths=chosen, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f6f8fa")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d0d7de")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table
