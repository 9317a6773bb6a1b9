"""The report: self-contained HTML, PDF with the same content, citable companions, numbers that agree.

Checks the files :func:`hsi_stats.write_report` writes against the :class:`HSIResult` they come from: the HTML
refers to no remote URL and embeds every figure, the PDF's extracted text holds the head table and the methods
paragraph and one image per figure, the same numbers appear in the HTML, PDF, CSV and LaTeX outputs, and the
methods paragraph follows the settings.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

matplotlib.use("Agg")

from hsi_stats import analyze, write_report
from hsi_stats.report.methods import methods_text
from hsi_stats.report.tables import format_interval, format_p, head_table
from hsi_stats.synthetic import generate


@pytest.fixture(scope="module")
def result():
    return analyze(generate(n_episodes=16, n_steps=10, rng=5).dataset, n_resamples=199, rng=2)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, result) -> Path:
    out = tmp_path_factory.mktemp("report")
    write_report(result, out)
    return out


@pytest.fixture(scope="module")
def pdf_text(report_dir: Path) -> str:
    reader = PdfReader(report_dir / "report.pdf")
    return "\n".join(page.extract_text() for page in reader.pages)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_every_output_is_written(report_dir: Path) -> None:
    expected = {"report.html", "report.pdf", "methods.md", "table.tex", "pairs.csv", "heads.csv",
                "head_functions.json"}
    assert expected == {p.name for p in report_dir.iterdir()}
    assert not [p for p in report_dir.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_html_is_self_contained(report_dir: Path, result) -> None:
    html = (report_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    n_labelled = int((result.heads["label"] != "General Context Head").sum())
    assert len(images) == 6 + n_labelled  # heatmap, bars, focus, forest, distributions, null + one per labelled head
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)


def test_pdf_holds_the_head_table_methods_and_figures(report_dir: Path, pdf_text: str, result) -> None:
    text = _normalise(pdf_text)
    for row in head_table(result).itertuples():
        assert row.head in text and row.label in text
        assert row._4 in text  # "HSI [CI]"
    first_sentence = methods_text(result).paragraphs[0].split(";")[0]
    assert _normalise(first_sentence) in text
    n_images = sum(len(page.images) for page in PdfReader(report_dir / "report.pdf").pages)
    html_images = re.findall(r'src="data:image/png;base64,', (report_dir / "report.html").read_text())
    assert n_images == len(html_images)  # every figure of the report, once


def test_numbers_agree_across_outputs(report_dir: Path, pdf_text: str, result) -> None:
    html = (report_dir / "report.html").read_text()
    latex = (report_dir / "table.tex").read_text()
    heads_csv = pd.read_csv(report_dir / "heads.csv")
    pairs_csv = pd.read_csv(report_dir / "pairs.csv")
    registry = json.loads((report_dir / "head_functions.json").read_text())
    text = _normalise(pdf_text)
    assert any(entry["validated"] for key, entry in registry.items() if key != "_meta")
    for h, row in heads_csv.iterrows():
        interval = format_interval(row["hsi"], row["ci_low"], row["ci_high"])
        assert interval == format_interval(*result.heads.loc[h, ["hsi", "ci_low", "ci_high"]])
        assert interval in html and interval in latex and interval in text
        # One feature describes a head wherever one is shown: its label's, or the primary one without a label.
        feature = row["label_feature"] if row["label"] != "General Context Head" else row["primary_feature"]
        pair = pairs_csv[(pairs_csv["head"] == row["head"]) & (pairs_csv["feature"] == feature)].iloc[0]
        rho_cell = format_interval(pair["rho"], pair["ci_low"], pair["ci_high"])
        assert f"{feature}: {rho_cell}" in html and rho_cell in text and rho_cell in latex
        assert format_p(pair["p_adjusted"]) in html
        entry = registry[str(h)]
        if entry["validated"]:
            assert entry["primary_feature"] == feature
            assert entry["correlation_ci"] == pytest.approx([pair["ci_low"], pair["ci_high"]], rel=1e-12)


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
def test_methods_text_follows_the_settings(result) -> None:
    dataset = result.dataset
    changed = analyze(dataset, n_resamples=149, ci_method="percentile", correction="holm", confidence_level=0.9,
                      rng=7, threshold=0.25)
    default, other = " ".join(methods_text(result).paragraphs), " ".join(methods_text(changed).paragraphs)
    assert "199 cluster-bootstrap resamples" in default and "149 cluster-bootstrap resamples" in other
    assert "expanded percentile intervals" in default and "percentile intervals" in other
    assert "max-T" in default and "Holm" in other and "max-T" not in other
    assert "95% confidence" in default and "90% confidence" in other
    assert "seed 2" in default and "seed 7" in other
    assert "reached 0.3," in default and "reached 0.25," in other
    assert "Holm, S. (1979)" in methods_text(changed).to_markdown()


def test_report_formats_and_errors(tmp_path: Path) -> None:
    from hsi_stats.synthetic import default_heads

    small = analyze(generate(n_episodes=12, n_steps=4, heads=default_heads()[4:6], rng=1).dataset, n_resamples=49,
                    rng=0)  # two heads without effect: few figures to draw
    written = write_report(small, tmp_path / "html_only", formats="html")
    assert "report.html" in written and "report.pdf" not in written
    with pytest.raises(ValueError, match="`formats`"):
        write_report(small, tmp_path / "bad", formats=("docx",))
    assert not (tmp_path / "bad").exists()


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium is not installed")
def test_html_renders_in_headless_chromium(report_dir: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={screenshot}", "--window-size=1280,2000",
         (report_dir / "report.html").as_uri()],
        check=True, capture_output=True, timeout=120,
    )
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    assert screenshot.stat().st_size > 20_000  # a rendered page, not a blank one


def test_head_table_says_which_feature_the_reasons_judge(result) -> None:
    # A General Context Head is shown with its primary feature; when its label's candidate is another feature
    # (the primary one has the wrong sign), the reasons say so rather than seem to describe the shown feature.
    heads = result.heads.copy()
    general = heads.index[heads["label"] == "General Context Head"][0]
    candidate = next(f for f in result.estimate.feature_names if f != heads.loc[general, "primary_feature"])
    heads.loc[general, "label_feature"] = candidate
    table = head_table(dataclasses.replace(result, heads=heads))
    row = table.loc[general]
    assert row["rho [CI]"].startswith(f"{heads.loc[general, 'primary_feature']}: ")
    assert row["reasons"] == f"label candidate {candidate}: {heads.loc[general, 'reasons']}"
    for h, head in heads.iterrows():
        shown = head["label_feature"] if head["label"] != "General Context Head" else head["primary_feature"]
        differs = isinstance(head["label_feature"], str) and head["label_feature"] != shown and head["reasons"]
        assert table.loc[h, "reasons"].startswith("label candidate") == bool(differs), head["head"]


def test_the_pdf_head_table_fits_the_page() -> None:
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.units import cm

    from hsi_stats.report.pdf import head_table_widths
    from hsi_stats.report.tables import HEAD_TABLE_COLUMNS

    widths = head_table_widths(list(HEAD_TABLE_COLUMNS))
    assert sum(widths) == pytest.approx(landscape(A4)[0] - 3 * cm)
    assert min(widths) >= 1.2 * cm and widths[-1] >= 4.5 * cm  # the reasons keep room to be read
    with pytest.raises(ValueError, match="do not match the PDF layout"):
        head_table_widths([*HEAD_TABLE_COLUMNS[:-1], "extra", "reasons"])


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
@pytest.mark.parametrize(("correlation", "why"), [("rank-feature", "3 infinite, ranked as extremes"),
                                                  ("spearman", "3 infinite, ranked as extremes"),
                                                  ("pearson", "3 infinite, left out (Pearson)")])
def test_left_out_table_says_what_happened_to_infinite_values(correlation, why) -> None:
    from hsi_stats import HSIDataset
    from hsi_stats.report.tables import left_out_table

    rng = np.random.default_rng(0)
    ttc = rng.exponential(size=(24, 5))
    ttc[[0, 5, 9], [1, 2, 3]] = np.inf
    ds = HSIDataset(rng.random((24, 1, 5)), {"ttc": ttc}, groups=np.arange(24) // 2)
    table = left_out_table(analyze(ds, n_resamples=19, rng=0, correlation=correlation))
    assert table.loc[0, "why"] == why
