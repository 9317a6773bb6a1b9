"""The PDF report, with the same content as the HTML one, drawn by ReportLab.

ReportLab is a pure-Python wheel: the PDF needs no system library (no browser, no LaTeX, no Cairo/Pango), so it
works right after ``pip install hsi_stats`` on a fresh machine. Tables wrap between words only
(:mod:`hsi_stats.report.pdf_tables`), heads go by their short names with a legend
(:mod:`hsi_stats.report.naming`), figures keep their printed size on portrait pages, and the references follow
the methods they support, kept with their heading. The report leads with its findings (the summary, the heads and
the figures) and ends with the data and the methods, whose formulas are set in Unicode symbols with sub- and
superscripts (:mod:`hsi_stats.report.mathml`) in DejaVu Sans, a font that holds them.
"""

from __future__ import annotations

import io
import struct
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

import matplotlib
import pandas as pd
from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER
from reportlab.lib.pagesizes import A4, landscape, portrait
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import cm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    Image,
    KeepTogether,
    NextPageTemplate,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
)

from .content import ReportContent
from .naming import short_head_names
from .pdf_tables import word_table

__all__ = ["png_resolution", "render_pdf"]

_PAGE = landscape(A4)  # text and tables: the head table has a dozen columns
_FIGURE_PAGE = portrait(A4)  # figures: a two-column paper figure (7 in) at its printed size, tall ones too
_MARGIN = 1.5 * cm
_WIDTH = _PAGE[0] - 2 * _MARGIN
_FIGURE_WIDTH, _FIGURE_HEIGHT = _FIGURE_PAGE[0] - 2 * _MARGIN, _FIGURE_PAGE[1] - 2 * _MARGIN
_CAPTION_ROOM = 2.5 * cm
_PASSED = "all rules passed"


#: The PDF's font: DejaVu Sans, which holds Greek letters, mathematical operators and combining accents (the
#: methods' formulas), shipped with matplotlib as TrueType files that the PDF embeds.
FONT = "DejaVuSans"
_FONT_FILES = {FONT: "DejaVuSans.ttf", f"{FONT}-Bold": "DejaVuSans-Bold.ttf",
               f"{FONT}-Oblique": "DejaVuSans-Oblique.ttf", f"{FONT}-BoldOblique": "DejaVuSans-BoldOblique.ttf"}


@cache
def _register_fonts() -> str:
    """Register DejaVu Sans (regular, bold, oblique) with ReportLab once, from matplotlib's font folder."""
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    for name, file in _FONT_FILES.items():
        pdfmetrics.registerFont(TTFont(name, str(folder / file)))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=f"{FONT}-Bold", italic=f"{FONT}-Oblique",
                                  boldItalic=f"{FONT}-BoldOblique")
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    base, font = getSampleStyleSheet(), _register_fonts()
    bold = f"{font}-Bold"
    return {
        "title": ParagraphStyle("title", parent=base["Title"], fontName=bold),
        "h2": ParagraphStyle("h2", parent=base["Heading2"], fontName=bold, keepWithNext=1),
        "h3": ParagraphStyle("h3", parent=base["Heading3"], fontName=bold, keepWithNext=1),
        "body": ParagraphStyle("body", parent=base["BodyText"], fontName=font, fontSize=9, leading=12.5),
        "methods": ParagraphStyle("methods", parent=base["BodyText"], fontName=font, fontSize=9, leading=14),
        "formula": ParagraphStyle("formula", parent=base["BodyText"], fontName=font, fontSize=9, leading=16,
                                  alignment=TA_CENTER, spaceBefore=2, spaceAfter=4),
        "bullet": ParagraphStyle("bullet", parent=base["BodyText"], fontName=font, fontSize=9, leading=12,
                                 leftIndent=12, bulletIndent=2),
        "cell": ParagraphStyle("cell", parent=base["BodyText"], fontName=font, fontSize=7.5, leading=9.4),
        "caption": ParagraphStyle("caption", parent=base["BodyText"], fontName=font, fontSize=7.5, leading=10,
                                  textColor=colors.HexColor("#57606a")),
    }


def _with_short_names(frame: pd.DataFrame, short: dict[str, str], column: str = "head") -> pd.DataFrame:
    """``frame`` with its head names replaced by the short ones (the legend table maps them back)."""
    return frame.assign(**{column: [short.get(str(name), str(name)) for name in frame[column]]})


def _head_tables(content: ReportContent, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The head table (short names), the reasons of the heads that did not pass every rule (and the notes of
    validated heads), and the name legend."""
    names = [str(name) for name in content.heads["head"]]
    short = short_head_names(names)
    heads = _with_short_names(content.heads, short)
    story: list[Flowable] = [word_table(heads.drop(columns=["reasons"]), s["cell"], _WIDTH)]
    story += [Paragraph(escape(note), s["caption"]) for note in content.head_notes]
    reasons = heads.loc[heads["reasons"] != _PASSED, ["head", "validated", "reasons"]]
    if len(reasons):
        story += [Spacer(1, 0.3 * cm), Paragraph(_reasons_title(reasons["validated"] == "yes"), s["body"]),
                  word_table(reasons, s["cell"], _WIDTH)]
    legend = content.name_legend
    if legend is not None:
        story += [Spacer(1, 0.3 * cm), KeepTogether([  # a short legend stays whole; a long one runs over pages
            Paragraph("Head names, shortened in the tables and figures:", s["body"]),
            word_table(side_by_side(legend, _LEGEND_ROWS), s["cell"], _WIDTH)])]
    return story


def _reasons_title(validated: pd.Series) -> str:
    """The heading of the reasons table: every failed rule of the heads not validated, notes of the others."""
    if validated.all():
        return "Notes on validated heads:"
    if not validated.any():
        return "Why labels were not validated (every failed rule):"
    return "Why labels were not validated (every failed rule), and notes on validated heads:"


#: Rows of the name legend per column group: a longer legend is set in groups side by side.
_LEGEND_ROWS = 24


def side_by_side(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``frame`` cut into groups of ``rows`` rows placed side by side (empty cells pad the last group).

    Examples
    --------
    >>> side_by_side(pd.DataFrame({"a": ["1", "2", "3"], "b": ["x", "y", "z"]}), 2).values.tolist()
    [['1', 'x', '3', 'z'], ['2', 'y', '', '']]
    """
    if len(frame) <= rows:
        return frame
    groups = [frame.iloc[start:start + rows].reset_index(drop=True) for start in range(0, len(frame), rows)]
    return pd.concat(groups, axis=1).fillna("")


def _image(png: bytes, max_width: float, max_height: float) -> Image:
    """The PNG at its printed size (pixels over its resolution), shrunk only if it exceeds the frame."""
    width, height = ImageReader(io.BytesIO(png)).getSize()
    natural = 72.0 / png_resolution(png)
    scale = min(natural, max_width / width, max_height / height)
    return Image(io.BytesIO(png), width=width * scale, height=height * scale)


def png_resolution(png: bytes) -> float:
    """Pixels per inch a PNG records (its ``pHYs`` chunk, in pixels per metre); 72 when it records none.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> from hsi_stats.report.figures import figure_to_png_bytes
    >>> round(png_resolution(figure_to_png_bytes(plt.figure(figsize=(1, 1)), dpi=150)))
    150
    """
    position = 8  # after the signature: chunks of length (4 bytes), type (4), data, CRC (4)
    while position + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        if kind == b"pHYs" and length >= 9:
            per_metre, _, unit = struct.unpack(">IIB", png[position + 8:position + 17])
            if unit == 1 and per_metre > 0:
                return per_metre * 0.0254
        if kind == b"IDAT":  # pHYs comes before the image data
            break
        position += 12 + length
    return 72.0


def _ablation(content: ReportContent, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The section on removing heads: its introduction, the effects per head, the targeted comparison."""
    section = content.ablation
    assert section is not None
    short = short_head_names([str(name) for name in content.heads["head"]])
    story: list[Flowable] = [Paragraph("What removing each head does", s["h2"]),
                             Paragraph(escape(section.intro), s["body"]),
                             word_table(_with_short_names(section.table, short), s["cell"], _WIDTH)]
    if section.targeted is not None:
        story.append(Paragraph("Where the label says the head works", s["h3"]))
        story += [Paragraph(escape(sentence), s["body"]) for sentence in section.sentences]
        story.append(word_table(_with_short_names(section.targeted, short), s["cell"], _WIDTH))
    return story


def _findings(content: ReportContent, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The opening summary: the headline, a line per validated head, what was analysed."""
    found = content.findings
    story: list[Flowable] = [Paragraph(f"<b>{escape(found.headline)}</b>", s["body"])]
    story += [Paragraph(escape(line), s["bullet"], bulletText="\u2022") for line in found.heads]
    story.append(Paragraph(escape(found.analysed), s["body"]))
    return story


def _figures(content: ReportContent, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The figures at their printed size on portrait pages, each kept with its caption."""
    story: list[Flowable] = [NextPageTemplate("figures"), PageBreak(), Paragraph("Figures", s["h2"])]
    for figure in content.figures:
        story.append(KeepTogether([
            _image(figure.png, _FIGURE_WIDTH, _FIGURE_HEIGHT - _CAPTION_ROOM),
            Paragraph(f"<b>{escape(figure.title)}.</b> {escape(figure.caption)}", s["caption"]),
            Spacer(1, 0.4 * cm),
        ]))
    return [*story, NextPageTemplate("text"), PageBreak()]


def _data_and_methods(content: ReportContent, s: dict[str, ParagraphStyle]) -> list[Flowable]:
    """The data analysed, the methods (formulas in symbols) and the references they cite."""
    story: list[Flowable] = [Paragraph("Data", s["h2"]),
                             word_table(pd.DataFrame(content.summary, columns=["", "value"]), s["cell"], _WIDTH),
                             Paragraph("Values left out, per feature:", s["body"]),
                             word_table(content.left_out[["feature", "why"]].rename(columns={"why": "left out"}),
                                        s["cell"], _WIDTH)]
    story += [Paragraph(escape(note), s["body"]) for note in content.notes]
    story.append(Paragraph("Methods", s["h2"]))
    story += [Paragraph(markup, s["formula" if kind == "display" else "methods"])
              for paragraph in content.methods.pdf for kind, markup in paragraph]
    references = [Paragraph(f"{i}. {escape(text)}", s["body"])
                  for i, text in enumerate(content.methods.references.values(), start=1)]
    story.append(KeepTogether([Paragraph("References", s["h3"]), *references]))  # with the methods they support
    return story


def _story(content: ReportContent) -> list[Flowable]:
    """Findings first: title and summary, heads, figures; then ablation, evolution, explanations, data, methods."""
    s = _styles()
    story: list[Flowable] = [Paragraph(escape(content.title), s["title"]),
                             Paragraph(f"Generated {escape(content.created)} by hsi_stats.", s["caption"])]
    story += _findings(content, s)
    story.append(Paragraph("Heads", s["h2"]))
    story += _head_tables(content, s)
    story += _figures(content, s)
    if content.ablation is not None:
        story += _ablation(content, s)
    if content.evolution_table is not None:
        story.append(Paragraph("Evolution over training", s["h2"]))
        short = short_head_names([str(name) for name in content.heads["head"]])
        story.append(word_table(_with_short_names(content.evolution_table, short), s["cell"], _WIDTH))
    if len(content.explanations):
        story.append(Paragraph("Explanations on example scenarios", s["h2"]))
        story.append(Paragraph("What the registry says at run time (hsi-stats explain), for each validated head on "
                               "two scenarios of the data: the most typical (its top entity is its label's target, "
                               "with the largest share of its attention) and the least typical (the largest share "
                               "on another entity).", s["body"]))
        story.append(word_table(content.explanations.rename(columns={"text": "explanation"}), s["cell"], _WIDTH))
    return story + _data_and_methods(content, s)


def _page_template(name: str, size: tuple[float, float]) -> PageTemplate:
    frame = Frame(_MARGIN, _MARGIN, size[0] - 2 * _MARGIN, size[1] - 2 * _MARGIN, id=name, leftPadding=0,
                  rightPadding=0, topPadding=0, bottomPadding=0)
    return PageTemplate(id=name, frames=[frame], pagesize=size)


def render_pdf(content: ReportContent) -> bytes:
    """Render the report's content as PDF bytes: text and tables on landscape A4, figures on portrait A4."""
    buffer = io.BytesIO()
    document = BaseDocTemplate(buffer, pagesize=_PAGE, leftMargin=_MARGIN, rightMargin=_MARGIN,
                               topMargin=_MARGIN, bottomMargin=_MARGIN, title=content.title,
                               author="hsi_stats", invariant=True)
    document.addPageTemplates([_page_template("text", _PAGE), _page_template("figures", _FIGURE_PAGE)])
    document.build(_story(content))
    return buffer.getvalue()
