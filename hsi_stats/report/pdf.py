"""The PDF report, with the same content as the HTML one, drawn by ReportLab.

ReportLab is a pure-Python wheel: the PDF needs no system library (no browser, no LaTeX, no Cairo/Pango), so it
works right after ``pip install hsi_stats[report]`` on a fresh machine.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

import pandas as pd
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.platypus import Flowable, Image, KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .content import ReportContent

__all__ = ["render_pdf"]

_PAGE = landscape(A4)
_MARGIN = 1.5 * cm
_WIDTH = _PAGE[0] - 2 * _MARGIN
#: Widths (cm) of the head table's columns; the reasons take what is left of the page's width.
_HEAD_WIDTHS_CM = {"head": 2.2, "label": 2.0, "strength": 1.4, "HSI [CI]": 2.3, "HSI adj. p": 1.2,
                   "primary feature": 1.9, "label feature": 1.9, "rho [CI]": 2.4, "focus [CI]": 2.4,
                   "label adj. p": 1.2, "label stability": 1.3, "validated": 1.3}


def head_table_widths(columns: list[str]) -> list[float]:
    """Column widths (points) of the head table, the last column (reasons) taking the rest of the page."""
    *fixed, last = columns
    if set(fixed) != set(_HEAD_WIDTHS_CM) or last != "reasons":
        raise ValueError(f"the head table's columns {columns} do not match the PDF layout "
                         f"{[*_HEAD_WIDTHS_CM, 'reasons']}")
    widths = [_HEAD_WIDTHS_CM[c] * cm for c in fixed]
    return [*widths, _WIDTH - sum(widths)]


def _styles() -> dict[str, ParagraphStyle]:
    base = getSampleStyleSheet()
    return {
        "title": base["Title"],
        "h2": ParagraphStyle("h2", parent=base["Heading2"], keepWithNext=1),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontSize=9.5, leading=12.5),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontSize=7.5, leading=9),
        "caption": ParagraphStyle("caption", parent=base["BodyText"], fontSize=8, leading=10,
                                  textColor=colors.HexColor("#57606a")),
    }


def _table(frame: pd.DataFrame, styles: dict[str, ParagraphStyle], widths: list[float] | None = None) -> Table:
    cell = styles["cell"]
    rows = [[Paragraph(f"<b>{escape(str(c))}</b>", cell) for c in frame.columns]]
    rows += [[Paragraph(escape(str(v)), cell) for v in row] for row in frame.itertuples(index=False)]
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    table.setStyle(TableStyle([
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#f6f8fa")),
        ("LINEBELOW", (0, 0), (-1, -1), 0.25, colors.HexColor("#d0d7de")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def _image(png: bytes, max_width: float, max_height: float) -> Image:
    width, height = ImageReader(io.BytesIO(png)).getSize()
    scale = min(max_width / width, max_height / height)
    return Image(io.BytesIO(png), width=width * scale, height=height * scale)


def _story(content: ReportContent) -> list[Flowable]:
    s = _styles()
    story: list[Flowable] = [Paragraph(escape(content.title), s["title"]),
                             Paragraph(f"Generated {escape(content.created)} by hsi_stats.", s["caption"]),
                             Paragraph("Data", s["h2"])]
    summary = pd.DataFrame(content.summary, columns=["", "value"])
    story.append(_table(summary, s, [6 * cm, _WIDTH - 6 * cm]))
    story.append(Paragraph("Values left out, per feature:", s["body"]))
    story.append(_table(content.left_out[["feature", "why"]].rename(columns={"why": "left out"}), s,
                        [6 * cm, _WIDTH - 6 * cm]))
    story += [Paragraph(escape(note), s["body"]) for note in content.notes]
    story.append(Paragraph("Methods", s["h2"]))
    story += [Paragraph(escape(p), s["body"]) for p in content.methods.paragraphs]
    story.append(Paragraph("Heads", s["h2"]))
    story.append(_table(content.heads, s, head_table_widths(list(content.heads.columns))))
    if content.evolution_table is not None:
        story.append(Paragraph("Evolution over training", s["h2"]))
        story.append(_table(content.evolution_table, s))
    story.append(Paragraph("Figures", s["h2"]))
    for figure in content.figures:
        story.append(KeepTogether([
            _image(figure.png, _WIDTH, _PAGE[1] - 2 * _MARGIN - 2.5 * cm),
            Paragraph(f"<b>{escape(figure.title)}.</b> {escape(figure.caption)}", s["caption"]),
            Spacer(1, 0.4 * cm),
        ]))
    story.append(Paragraph("References", s["h2"]))
    story += [Paragraph(f"{i}. {escape(text)}", s["body"])
              for i, text in enumerate(content.methods.references.values(), start=1)]
    return story


def render_pdf(content: ReportContent) -> bytes:
    """Render the report's content as PDF bytes (landscape A4)."""
    buffer = io.BytesIO()
    document = SimpleDocTemplate(buffer, pagesize=_PAGE, leftMargin=_MARGIN, rightMargin=_MARGIN,
                                 topMargin=_MARGIN, bottomMargin=_MARGIN, title=content.title,
                                 author="hsi_stats", invariant=True)
    document.build(_story(content))
    return buffer.getvalue()
