"""The report: self-contained HTML, PDF with the same content, citable companions, numbers that agree.

Checks the files :func:`hsi_stats.write_report` writes against the :class:`HSIResult` they come from: the HTML
refers to no remote URL and embeds every figure, the PDF's extracted text holds the head table and the methods
paragraph and one image per figure, the same numbers appear in the HTML, PDF, CSV and LaTeX outputs, and the
methods paragraph follows the settings.
"""

from __future__ import annotations

import base64
import dataclasses
import re
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

matplotlib.use("Agg")

from hsi_stats import analyze, write_report
from hsi_stats.formatting import format_interval, format_number, format_p
from hsi_stats.report.methods import methods_text
from hsi_stats.report.tables import head_table
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
    expected = {"report.html", "report.pdf", "methods.md", "references.bib", "table.tex", "pairs.tex", "joint.tex",
                "pairs.csv", "heads.csv", "joint.csv", "head_functions.json", "figures"}
    assert expected == {p.name for p in report_dir.iterdir()}
    html = (report_dir / "report.html").read_text()
    keys = re.findall(r'<figure id="fig-([^"]+)"', html)
    files = {f"{key}.{ext}" for key in keys for ext in ("pdf", "svg")}
    assert {p.name for p in (report_dir / "figures").iterdir()} == files
    assert not [p for p in report_dir.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_html_is_self_contained(report_dir: Path, result) -> None:
    html = (report_dir / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html and "url(http" not in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    n_labelled = int((result.heads["label"] != "General Context Head").sum())
    # heatmap, bars, focus, forest, odds ratios, distributions, null + one per labelled head
    assert len(images) == 7 + n_labelled
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)


def test_pdf_holds_the_head_table_methods_and_figures(report_dir: Path, pdf_text: str, result) -> None:
    text = _normalise(pdf_text)
    for row in head_table(result).itertuples():
        assert row.head in text and row.label in text
        assert row._4 in text  # "HSI [CI]"
    first_block = methods_text(result).pdf[0][0][1]  # the PDF's own rendering: symbols, not "rho"
    first_sentence = re.sub(r"<[^>]+>", "", first_block).split(";")[0]
    assert "\u03c1" in first_sentence and _normalise(first_sentence) in text
    n_images = sum(len(page.images) for page in PdfReader(report_dir / "report.pdf").pages)
    html_images = re.findall(r'src="data:image/png;base64,', (report_dir / "report.html").read_text())
    assert n_images == len(html_images)  # every figure of the report, once


class _HeadRows(HTMLParser):
    """The cells of the HTML head table, row by row (the header row first)."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._inside = self._cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "heads") in attrs:
            self._inside = True
        elif self._inside and tag == "tr":
            self.rows.append([])
        elif self._inside and tag in ("td", "th"):
            self._cell = True
            self.rows[-1].append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._inside = False
        elif tag in ("td", "th"):
            self._cell = False

    def handle_data(self, data: str) -> None:
        if self._inside and self._cell:
            self.rows[-1][-1] += data


def _expected_cells(row: pd.Series) -> dict[str, str]:
    """The cells every view prints for one row of heads.csv."""
    return {"HSI [CI]": format_interval(row["hsi"], row["ci_low"], row["ci_high"]),
            "HSI adj. p": format_p(row["hsi_p_adjusted"]),
            "label feature": str(row["label_feature"]),
            "rho [CI]": format_interval(row["label_rho"], row["label_ci_low"], row["label_ci_high"]),
            "label adj. p": format_p(row["label_p_adjusted"]),
            "label stability": format_number(row["label_stability"], 2)}


def test_the_same_number_is_printed_the_same_in_every_view(report_dir: Path, pdf_text: str, result) -> None:
    """heads.csv, the summary, the HTML, the PDF and the LaTeX show the HSI's adjusted p and the label feature's
    adjusted p under distinct names, with the same digits; rho, interval and stability likewise."""
    heads_csv = pd.read_csv(report_dir / "heads.csv")
    assert {"hsi_p_adjusted", "label_p_adjusted", "primary_stability", "label_stability"} <= set(heads_csv.columns)
    assert "p_adjusted" not in heads_csv.columns and "stability" not in heads_csv.columns
    assert (heads_csv["hsi_p_adjusted"] != heads_csv["label_p_adjusted"]).any()  # two tests, not one number twice
    parser = _HeadRows()
    parser.feed((report_dir / "report.html").read_text())
    header, *html_rows = parser.rows
    summary = result.summary().splitlines()
    summary_header = next(line for line in summary if line.lstrip().startswith("head "))
    assert "HSI p_adj" in summary_header and "label p_adj" in summary_header
    text, latex = _normalise(pdf_text), (report_dir / "table.tex").read_text()
    assert "HSI adj. p" in text and "label adj. p" in text
    assert "HSI adj. p" in latex and "label adj. p" in latex
    for h, row in heads_csv.iterrows():
        expected = _expected_cells(row)
        cells = dict(zip(header, html_rows[h], strict=True))
        assert {name: cells[name] for name in expected} == expected, row["head"]
        line = next(line for line in summary if line.split()[:1] == [row["head"]])
        summary_order = [expected["HSI [CI]"], expected["HSI adj. p"], expected["label feature"],
                         format_number(row["label_rho"]), format_p(row["label_p_adjusted"]),
                         expected["label stability"]]
        assert re.search(".*".join(re.escape(cell) for cell in summary_order), line), (line, summary_order)
        for name, cell in expected.items():
            if name != "label feature":  # numbers; the PDF's words are checked unbroken on their own
                assert cell in text, (row["head"], cell)
        # table.tex: the HSI with its interval, the HSI's adjusted p, the label feature, its rho and adjusted p
        latex_cells = [expected["HSI [CI]"], expected["HSI adj. p"], expected["label feature"],
                       format_number(row["label_rho"]), expected["label adj. p"]]
        latex_row = next(line for line in latex.splitlines() if line.startswith(f"{row['head']} & "))
        assert re.search(" & .*".join(re.escape(_latex(cell)) for cell in latex_cells), latex_row), (latex_row,
                                                                                                   latex_cells)


def _latex(cell: str) -> str:
    """A cell as table.tex writes it: an interval ``a [b, c]`` as its three aligned columns ``a & b & c``, names
    with ``_`` escaped; numbers and p-values ("< 0.001", which siunitx reads) as they are."""
    interval = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", cell)
    return " & ".join(interval.groups()) if interval else cell.replace("_", "\\_")


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


def test_head_table_shows_the_feature_the_reasons_judge(result) -> None:
    # A General Context Head whose label candidate is another feature than its primary one (the primary one has
    # the wrong sign): the label columns show the candidate, which the reasons judge, beside the primary feature.
    heads = result.heads.copy()
    general = heads.index[heads["label"] == "General Context Head"][0]
    candidate = next(f for f in result.estimate.feature_names if f != heads.loc[general, "primary_feature"])
    heads.loc[general, "label_feature"] = candidate
    table = head_table(dataclasses.replace(result, heads=heads))
    row = table.loc[general]
    assert row["label feature"] == candidate and row["primary feature"] == heads.loc[general, "primary_feature"]
    assert row["reasons"] == heads.loc[general, "reasons"]
    for h, head in heads.iterrows():
        interval = format_interval(head["label_rho"], head["label_ci_low"], head["label_ci_high"])
        assert table.loc[h, "rho [CI]"] == interval and table.loc[h, "label adj. p"] == format_p(
            head["label_p_adjusted"])


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


# ------------------------------------------------------------------------------------------------ short names
def test_short_head_names_are_short_unique_and_consistent() -> None:
    from hsi_stats.report.naming import name_legend, short_head_names

    layered = [f"other_traj/cross_attn_{layer}:h{head}" for layer in range(9) for head in range(8)]  # 72 heads
    short = short_head_names(layered)
    assert list(short) == layered and len(set(short.values())) == 72
    assert short["other_traj/cross_attn_0:h0"] == "L0.H0" and short["other_traj/cross_attn_8:h7"] == "L8.H7"
    assert max(len(name) for name in short.values()) <= 8
    legend = name_legend(layered)
    assert legend is not None and legend.to_dict("list") == {"short name": list(short.values()), "head": layered}
    assert short_head_names(["h0", "h1"]) == {"h0": "h0", "h1": "h1"} and name_legend(["h0", "h1"]) is None
    # Names of no known pattern, or layered names that would collide, are numbered by position.
    assert short_head_names(["encoder block one", "decoder block"]) == {"encoder block one": "h0",
                                                                         "decoder block": "h1"}
    assert short_head_names(["layer/x:h1", "layer/x:h01"]) == {"layer/x:h1": "h0", "layer/x:h01": "h1"}


def test_every_view_says_what_the_hsi_interval_is(result, monkeypatch) -> None:
    from hsi_stats.report import content
    from hsi_stats.report.content import build_content
    from hsi_stats.report.latex import head_latex
    from hsi_stats.results import hsi_interval_note

    heads = result.heads
    assert ((heads["ci_low"] <= heads["hsi"]) & (heads["hsi"] <= heads["ci_high"])).all()  # always holds it
    note = hsi_interval_note(heads, 0.95)
    at_zero = int((heads["ci_low"] == 0).sum())
    assert note.startswith("HSI [CI]: the largest |rho| of the head") and "simultaneous 95% band" in note
    assert at_zero == 4 and f"{at_zero} of 8 intervals start at 0" in note  # the four heads without effect
    monkeypatch.setattr(content, "_figures", lambda *args: [])  # the notes only: no figure needed
    assert build_content(result).head_notes == [note]
    assert "largest $|\\rho|$ of the head" in head_latex(result)
    assert note in result.summary()
