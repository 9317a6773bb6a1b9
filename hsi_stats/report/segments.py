r"""Paragraphs of prose, formulas and citations, rendered as Markdown, HTML, PDF markup and plain text.

A paragraph is a sequence of segments: prose (``str``), formulas (:class:`Math`: LaTeX and a plain-text reading) and
citations (:class:`Cite`: BibTeX keys of :mod:`~hsi_stats.report.bibliography`). :class:`MethodsText` renders
paragraphs every way from that one source, so ``methods.md`` (LaTeX math), the HTML report (the same LaTeX as
MathML), the PDF report (the same LaTeX in Unicode symbols with sub- and superscripts) and the plain text never
disagree (:mod:`~hsi_stats.report.mathml`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from .bibliography import REFERENCES, bibtex
from .mathml import to_mathml, to_pdf_markup

__all__ = ["Cite", "Math", "MethodsText", "Segment", "cite", "display_math", "inline_math"]


@dataclass(frozen=True)
class Math:
    """A formula: its LaTeX (without ``$``) and how it reads in plain text; ``display`` for a displayed equation."""

    latex: str
    plain: str
    display: bool = False


@dataclass(frozen=True)
class Cite:
    """A citation of one or more works, by BibTeX key."""

    keys: tuple[str, ...]


Segment = str | Math | Cite


def inline_math(latex: str, plain: str | None = None) -> Math:
    """Inline math; the plain reading defaults to the LaTeX itself (for formulas that read the same, ``h``)."""
    return Math(latex, latex if plain is None else plain)


def display_math(latex: str, plain: str) -> Math:
    """A displayed equation: its LaTeX and how it reads in plain text."""
    return Math(latex, plain, display=True)


def cite(*keys: str) -> Cite:
    """A citation of the works ``keys`` (BibTeX keys of the bibliography)."""
    return Cite(keys)


def _markdown(paragraph: Sequence[Segment]) -> str:
    parts = []
    for segment in paragraph:
        if isinstance(segment, Math):
            parts.append(f"\n$${segment.latex}$$\n" if segment.display else f"${segment.latex}$")
        elif isinstance(segment, Cite):
            parts.append("[" + "; ".join(f"@{key}" for key in segment.keys) + "]")
        else:
            parts.append(segment)
    return "".join(parts).replace(" \n", "\n").replace("\n ", "\n")


def _citation(segment: Cite) -> str:
    return "(" + "; ".join(REFERENCES[key].citation for key in segment.keys) + ")"


def _html(paragraph: Sequence[Segment]) -> str:
    """HTML: prose escaped, formulas as MathML (displayed ones as blocks), citations as "(Author, year)"."""
    parts = []
    for segment in paragraph:
        if isinstance(segment, Math):
            parts.append(to_mathml(segment.latex, display=segment.display))
        elif isinstance(segment, Cite):
            parts.append(escape(_citation(segment)))
        else:
            parts.append(escape(segment))
    return re.sub(r" {2,}", " ", "".join(parts)).strip()


#: A block of a paragraph in the PDF: ``("text", markup)`` or ``("display", markup)`` for a displayed equation.
PdfBlock = tuple[str, str]


def _pdf(paragraph: Sequence[Segment]) -> tuple[PdfBlock, ...]:
    """ReportLab markup: prose escaped, formulas in Unicode symbols; displayed equations as blocks of their own."""
    blocks: list[PdfBlock] = []
    parts: list[str] = []

    def close() -> None:
        text = re.sub(r" {2,}", " ", "".join(parts)).strip()
        if text:
            blocks.append(("text", text))
        parts.clear()

    for segment in paragraph:
        if isinstance(segment, Math) and segment.display:
            close()
            blocks.append(("display", to_pdf_markup(segment.latex)))
        elif isinstance(segment, Math):
            parts.append(to_pdf_markup(segment.latex))
        elif isinstance(segment, Cite):
            parts.append(escape(_citation(segment)))
        else:
            parts.append(escape(segment))
    close()
    return tuple(blocks)


def _plain(paragraph: Sequence[Segment]) -> str:
    parts = []
    for segment in paragraph:
        if isinstance(segment, Math):
            parts.append(f" {segment.plain.strip()} " if segment.display else segment.plain)
        elif isinstance(segment, Cite):
            parts.append(_citation(segment))
        else:
            parts.append(segment)
    return re.sub(r" {2,}", " ", "".join(parts)).strip()


def _cited(paragraphs: Sequence[Sequence[Segment]]) -> list[str]:
    """The keys cited, in order of first citation."""
    keys: list[str] = []
    for paragraph in paragraphs:
        for segment in paragraph:
            if isinstance(segment, Cite):
                keys += [key for key in segment.keys if key not in keys]
    return keys


@dataclass(frozen=True)
class MethodsText:
    """The methods section in its two renderings and the works it cites.

    Attributes
    ----------
    paragraphs : tuple of str
        Plain text, citing as "(Author, year)": what the HTML and PDF reports print.
    references : dict of str to str
        BibTeX key -> the full reference as one line, for every work cited, in order of first citation.
    markdown : tuple of str
        The same paragraphs in Markdown with LaTeX math and pandoc citations ``[@key]`` (``methods.md``).
    html : tuple of str
        The same paragraphs as HTML, the formulas in MathML (the HTML report).
    pdf : tuple of tuple of (str, str)
        The same paragraphs in ReportLab markup, the formulas in Unicode symbols with ``<sub>``/``<super>`` (the
        PDF report), each a sequence of blocks: ``("text", markup)``, or ``("display", markup)`` for a displayed
        equation, set on a line of its own.
    """

    paragraphs: tuple[str, ...]
    references: dict[str, str]
    markdown: tuple[str, ...] = ()
    html: tuple[str, ...] = ()
    pdf: tuple[tuple[PdfBlock, ...], ...] = ()

    @classmethod
    def from_segments(cls, paragraphs: Sequence[Sequence[Segment]]) -> MethodsText:
        """Render paragraphs of prose, :class:`Math` and :class:`Cite` segments both ways."""
        keys = _cited(paragraphs)
        unknown = [key for key in keys if key not in REFERENCES]
        if unknown:
            raise KeyError(f"the methods text cites {unknown}, which are not in the bibliography "
                           f"({sorted(REFERENCES)}).")
        return cls(tuple(_plain(p) for p in paragraphs), {key: REFERENCES[key].text() for key in keys},
                   tuple(_markdown(p) for p in paragraphs), tuple(_html(p) for p in paragraphs),
                   tuple(_pdf(p) for p in paragraphs))

    def to_markdown(self) -> str:
        """``methods.md``: a heading, the paragraphs (LaTeX math, ``[@key]`` citations) and the reference list.

        The keys are those of ``references.bib`` (:meth:`to_bibtex`); the numbered list repeats the references
        for readers without a citation processor.
        """
        body = self.markdown or self.paragraphs
        lines = ["# Methods", "", *(p + "\n" for p in body), "## References", ""]
        lines += [f"{i}. {text} [`{key}`]" for i, (key, text) in enumerate(self.references.items(), start=1)]
        return "\n".join(lines) + "\n"

    def to_bibtex(self) -> str:
        """``references.bib``: one BibTeX entry for every work cited, and no other."""
        return bibtex(self.references)
