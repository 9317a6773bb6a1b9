r"""The methods' formulas typeset from their LaTeX: MathML for the HTML report, ReportLab markup for the PDF.

The one source of every formula is its LaTeX (the same string ``methods.md`` holds). :func:`to_mathml` converts it to
presentation MathML with ``latex2mathml``, which the HTML report embeds as it is: browsers render MathML natively,
so the page needs no script and no network. :func:`to_pdf_markup` reads that MathML back and writes the formula as
ReportLab paragraph markup: letters in italic, Greek letters and operators as their Unicode characters,
sub- and superscripts as ``<sub>``/``<super>``, accents as combining characters
(:math:`\tilde a` as a + U+0303), fractions on one line as :math:`a/(b + c)` and roots as :math:`\sqrt{(\dots)}`,
for a font that holds those characters (the PDF uses DejaVu Sans, shipped with matplotlib).

References
----------
.. [1] W3C (2023). MathML Core. https://www.w3.org/TR/mathml-core/
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import lru_cache
from xml.sax.saxutils import escape

from latex2mathml.converter import convert

__all__ = ["to_mathml", "to_pdf_markup"]

_NS = "{http://www.w3.org/1998/Math/MathML}"
#: Accent characters of ``mover`` -> the combining character that puts them over the base.
_ACCENTS = {"~": "\u0303", "\u02dc": "\u0303", "\u00af": "\u0304", "\u203e": "\u0304", "^": "\u0302",
            "\u02c6": "\u0302", ".": "\u0307", "\u02d9": "\u0307", "\u2192": "\u20d7"}
#: Operators set with a space on each side.
_SPACED = set("=<>+\u2212\u00b1\u2264\u2265\u2248\u2208\u00d7\u2260\u2261\u2192")
_PRIMES = ("\u2032", "\u2033", "'")
_SPACES = {"2em": "\u2003\u2003", "1em": "\u2003", "0.167em": "\u2009", "0.222em": "\u2009", "0.278em": " "}


def to_mathml(latex: str, *, display: bool = False) -> str:
    r"""Presentation MathML of a LaTeX formula (``display``: a displayed equation, set as a block).

    Examples
    --------
    >>> to_mathml(r"\rho_{hf}").removeprefix('<math xmlns="http://www.w3.org/1998/Math/MathML" display="inline">')
    '<mrow><msub><mi>&#x003C1;</mi><mrow><mi>h</mi><mi>f</mi></mrow></msub></mrow></math>'
    """
    return str(convert(latex, display="block" if display else "inline"))


@lru_cache(maxsize=512)
def to_pdf_markup(latex: str) -> str:
    r"""ReportLab paragraph markup of a LaTeX formula: Unicode symbols, italic letters, ``<sub>`` and ``<super>``.

    Examples
    --------
    >>> to_pdf_markup(r"\rho_{hf}")
    '<i>ρ</i><sub><i>hf</i></sub>'
    >>> to_pdf_markup(r"\mathrm{HSI}_h = \max_f |\rho_{hf}|")
    'HSI<sub><i>h</i></sub> = max<sub><i>f</i></sub>\u2009|<i>ρ</i><sub><i>hf</i></sub>|'
    >>> to_pdf_markup(r"\tilde a_{hsv}"), to_pdf_markup(r"\frac{a}{b + c}"), to_pdf_markup(r"\sqrt{G}")
    ('<i>ã</i><sub><i>hsv</i></sub>', '<i>a</i>/(<i>b</i> + <i>c</i>)', '√<i>G</i>')
    """
    root = ET.fromstring(to_mathml(latex))
    return _join_italics(_markup(root)).strip()


def _tag(node: ET.Element) -> str:
    return node.tag.removeprefix(_NS)


def _text(node: ET.Element) -> str:
    return escape(node.text or "")


def _atomic(node: ET.Element) -> bool:
    """Whether a node reads as one symbol (needs no parentheses as a numerator, denominator or root)."""
    while _tag(node) in ("mrow", "mstyle") and len(node) == 1:
        node = node[0]
    if _tag(node) in ("mi", "mn"):
        return True
    return _tag(node) in ("msub", "msup", "msubsup", "mover") and _atomic(node[0])


def _grouped(node: ET.Element) -> str:
    text = _markup(node).strip()
    return text if _atomic(node) else f"({text})"


def _accented(base: str, accent: str) -> str:
    """``base`` with the combining ``accent`` after its last character (inside an italic tag, if any)."""
    if base.endswith("</i>"):
        return base[: -len("</i>")] + accent + "</i>"
    return base + accent


def _operator(node: ET.Element) -> str | None:
    """The operator a token stands for when it is set with spaces (``=``, ``-``, ``\\pm``...), else None."""
    text = node.text or ""
    return text if _tag(node) in ("mo", "mi") and text in _SPACED else None


def _opens(node: ET.Element) -> bool:
    """Whether an operator right after ``node`` is unary (after an opening bracket, a comma or another operator)."""
    return _operator(node) is not None or (_tag(node) == "mo" and (node.text or "") in "([{,;:")


def _is_function(node: ET.Element) -> bool:
    """Whether ``node`` is a named function or operator (log, max, arg max...), possibly with a subscript."""
    if _tag(node) in ("msub", "munder", "msubsup", "munderover"):
        return _is_function(node[0])
    if _tag(node) in ("mi", "mo"):
        return len(node.text or "") > 1 and (node.text or "").isalpha()
    return _tag(node) == "mrow" and len(node) > 1 and all(
        _tag(child) == "mspace" or (_tag(child) == "mi" and child.get("mathvariant") == "normal") for child in node)


def _row(children: list[ET.Element]) -> str:
    """Siblings in a row: binary operators spaced, unary ones not, a thin space after a function's name."""
    parts = []
    for i, child in enumerate(children):
        text = _markup(child)
        if _operator(child) is not None:
            text = text.strip() if i == 0 or _opens(children[i - 1]) else f" {text.strip()} "
        parts.append(text + (" " if _tag(child) == "mo" and child.text == "," else ""))
        following = children[i + 1] if i + 1 < len(children) else None
        if (_is_function(child) and following is not None and following.text not in ("(", "[", "{")
                and _operator(following) is None):
            parts.append("\u2009")
    return "".join(parts)


def _markup(node: ET.Element) -> str:
    tag = _tag(node)
    children = list(node)
    if tag == "mi":
        text = node.text or ""
        upright = node.get("mathvariant") == "normal" or not text.isalpha() or len(text) > 1 or (
            "\u0391" <= text <= "\u03a9")  # names, symbols and capital Greek letters stand upright
        return _text(node) if upright else f"<i>{_text(node)}</i>"
    if tag in ("mn", "mtext", "mo"):
        return _text(node)
    if tag == "mspace":
        return _SPACES.get(node.get("width", ""), " ")
    if tag in ("msub", "munder"):
        return _markup(children[0]) + f"<sub>{_markup(children[1]).strip()}</sub>"
    if tag == "msup":
        if (children[1].text or "") in _PRIMES:  # a prime is raised already
            return _markup(children[0]) + _text(children[1])
        return _markup(children[0]) + f"<super>{_markup(children[1]).strip()}</super>"
    if tag in ("msubsup", "munderover"):
        return (_markup(children[0]) + f"<sub>{_markup(children[1]).strip()}</sub>"
                + f"<super>{_markup(children[2]).strip()}</super>")
    if tag == "mover":
        accent = _ACCENTS.get(children[1].text or "") if _tag(children[1]) == "mo" else None
        if accent is not None:
            return _accented(_markup(children[0]), accent)
        return _markup(children[0]) + f"<super>{_markup(children[1]).strip()}</super>"
    if tag == "mfrac":
        return f"{_grouped(children[0])}/{_grouped(children[1])}"
    if tag == "msqrt":
        inner = children[0] if len(children) == 1 else None
        return "\u221a" + (_grouped(inner) if inner is not None else f"({_row(children).strip()})")
    return _row(children)  # math, mrow, mstyle and the rest: their children in a row


def _join_italics(markup: str) -> str:
    """Merge adjacent italic runs (``<i>h</i><i>f</i>`` -> ``<i>hf</i>``)."""
    return markup.replace("</i><i>", "")
