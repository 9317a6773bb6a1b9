"""The report as a reader sees it: every PDF page and the HTML rendered to images that show something.

Needs ``pdftoppm`` (poppler-utils) and headless ``chromium``; skipped with the missing tool named where they are
absent (``nox -s render`` installs them and writes the images of the demo and of a 72-head report to look at).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.image import imread
from pypdf import PdfReader

matplotlib.use("Agg")

from hsi_stats import write_report
from tests.render_report import missing_tools, render_report

pytestmark = pytest.mark.skipif(bool(missing_tools()), reason=f"rendering needs {', '.join(missing_tools())}")


def _ink(png: Path) -> float:
    """Share of pixels that are not near-white."""
    pixels = imread(png)[..., :3]
    return float(np.mean(pixels.min(axis=-1) < 0.9))


@pytest.mark.slow
def test_every_page_and_the_html_render_with_content(tmp_path: Path) -> None:
    from tests.render_report import layered_result

    result = layered_result(1)
    write_report(result, tmp_path / "report")
    images = render_report(tmp_path / "report", tmp_path / "png")
    pages = [p for p in images if p.name.startswith("pdf-")]
    assert len(pages) == len(PdfReader(tmp_path / "report" / "report.pdf").pages)
    assert (tmp_path / "png" / "html.png") in images and any(p.name.startswith("html-") for p in images)
    blank = [p.name for p in images if _ink(p) < 0.002]
    assert not blank, f"blank pages: {blank}"
