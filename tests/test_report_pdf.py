"""The PDF report read as text: every name, label and strength word whole, for 8 and for 72 heads.

ReportLab breaks a word that does not fit its column in the middle ("moderat|e", "other_traj/cross_a|ttn_0:h0");
a reader, a search and a copy-paste then see two words. pypdf's text of the PDF must hold each word of the head
table, the reasons and the name legend as one token, and each full head name (in the legend) whole.
"""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from pypdf import PdfReader

matplotlib.use("Agg")

from hsi_stats import write_report
from hsi_stats.report.naming import short_head_names
from hsi_stats.report.pdf_tables import column_widths
from hsi_stats.report.tables import head_table
from tests.render_report import layered_result


def _pdf_tokens(path: Path) -> tuple[set[str], str]:
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    return set(text.split()), text


def _check_words_whole(result, pdf: Path) -> None:
    tokens, text = _pdf_tokens(pdf)
    table = head_table(result)
    short = short_head_names(list(table["head"]))
    missing = {}
    for column in table.columns:
        cells = [short[name] for name in table[column]] if column == "head" else list(table[column])
        if column == "reasons":  # the PDF lists the reasons of the heads that did not pass every rule
            cells = [cell for cell in cells if cell != "all rules passed"]
        words = {word for cell in cells for word in str(cell).split()} | set(str(column).split())
        absent = sorted(words - tokens)
        if absent:
            missing[column] = absent[:5]
    assert not missing, f"words broken or absent in the PDF text: {missing}"
    for full in table["head"]:  # the legend prints every full name whole
        assert full in tokens, f"{full} is not one token of the PDF text"
    assert not re.search(r"\w-\n\w", text)  # no hyphenation either


@pytest.fixture(scope="module")
def eight_heads():
    return layered_result(1)


def test_eight_long_names_are_whole_in_the_pdf(eight_heads, tmp_path: Path) -> None:
    write_report(eight_heads, tmp_path, formats="pdf")
    _check_words_whole(eight_heads, tmp_path / "report.pdf")
    tokens, _ = _pdf_tokens(tmp_path / "report.pdf")
    assert {"moderate", "strong", "weak"} & tokens  # strength words of this data, whole


@pytest.mark.slow
def test_seventy_two_long_names_are_whole_in_the_pdf(tmp_path: Path) -> None:
    result = layered_result(9)
    write_report(result, tmp_path, formats="pdf")
    _check_words_whole(result, tmp_path / "report.pdf")
    pages = PdfReader(tmp_path / "report.pdf").pages
    header = "HSI adj. p"
    pages_with_header = sum(header in " ".join(page.extract_text().split()) for page in pages)
    assert pages_with_header >= 2  # the head table runs over pages and repeats its header row


def test_column_widths_keep_every_word_whole() -> None:
    from reportlab.pdfbase.pdfmetrics import stringWidth

    frame = pd.DataFrame({"head": ["other_traj/cross_attn_0:h0", "h1"], "strength": ["moderate", "strong"],
                          "reasons": ["the label feature's adjusted p is 0.2 above alpha 0.05", "all rules passed"]})
    for available in (250.0, 320.0, 2000.0):
        widths = column_widths(frame, "Helvetica", 8, available)
        assert widths is not None and sum(widths) <= available + 1e-9
        for column, width in zip(frame.columns, widths, strict=True):
            longest_word = max(stringWidth(w, "Helvetica", 8) for cell in frame[column] for w in cell.split())
            assert width >= longest_word  # no word has to break
    assert column_widths(frame, "Helvetica", 8, 150.0) is None  # the long name alone nearly fills it
