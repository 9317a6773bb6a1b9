"""The report leads with its findings and typesets its methods.

- Both files put the summary, the heads and the figures first; evolution, explanations, the data, the methods and
  the references follow, and the word "Methods" appears in neither before the "Heads" section.
- The opening summary names every validated head with the numbers of the head table (checked against heads.csv).
- The HTML methods hold one MathML formula per formula of the methods text, none of the plain-text readings that
  stand in for them elsewhere (``rho_hf``, ``a~_hsv``...), and no LaTeX command left unconverted.
- The PDF methods are set in a font that holds Greek letters and operators (DejaVu Sans, embedded), with the
  symbols in the extracted text.
- :func:`~hsi_stats.report.mathml.to_pdf_markup` against markup written out by hand for a set of formulas, and
  every formula the methods text writes under several settings converts to well-formed MathML.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from pypdf import PdfReader

matplotlib.use("Agg")

from hsi_stats import analyze, analyze_evolution, write_report
from hsi_stats.formatting import format_interval, format_p
from hsi_stats.report import segments
from hsi_stats.report.content import FINDINGS_HEADS, findings
from hsi_stats.report.mathml import to_mathml, to_pdf_markup
from hsi_stats.report.methods import methods_text
from hsi_stats.report.naming import short_head_names
from hsi_stats.synthetic import generate


@pytest.fixture(scope="module")
def run():
    return generate(n_episodes=16, n_steps=8, checkpoints=(1000, 2000, 3000), rng=3)


@pytest.fixture(scope="module")
def result(run):
    return analyze(run.dataset, n_resamples=499, rng=2)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory, run, result) -> Path:
    out = tmp_path_factory.mktemp("layout")
    evolution = analyze_evolution(run.dataset, n_resamples=199, trend_resamples=199, rng=2)
    write_report(result, out, evolution=evolution)
    return out


def _positions(text: str, headings: list[str]) -> list[int]:
    return [text.index(heading) for heading in headings]


SECTIONS = ["Heads", "Figures", "Evolution over training", "Explanations on example scenarios", "Data", "Methods",
            "References"]


def test_the_html_leads_with_findings_and_ends_with_the_methods(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    headings = re.findall(r"<h[23] id=\"[^\"]+\">([^<]+)</h[23]>", html)
    assert [h for h in headings if h in SECTIONS] == SECTIONS
    heads_at = html.index('<h2 id="heads">')
    assert html.index('class="findings"') < heads_at
    assert "methods" not in html[:heads_at].lower()


def test_the_pdf_leads_with_findings_and_ends_with_the_methods(report_dir: Path) -> None:
    pages = [page.extract_text() for page in PdfReader(report_dir / "report.pdf").pages]
    text = "\n".join(pages)
    lines = [line.strip() for line in text.splitlines()]
    order = [lines.index(heading) for heading in SECTIONS]
    assert order == sorted(order)
    assert "methods" not in "\n".join(lines[:lines.index("Heads")]).lower()
    assert "carry a validated label" in pages[0]


def test_the_summary_names_each_validated_head_with_its_numbers(report_dir: Path, result) -> None:
    html = (report_dir / "report.html").read_text()
    summary = html[html.index('class="findings"'):html.index('<h2 id="heads">')]
    heads = pd.read_csv(report_dir / "heads.csv")
    validated = heads[heads["validated"]]
    short = short_head_names([str(h) for h in heads["head"]])
    assert f"{len(validated)} of {len(heads)} heads carry a validated label" in summary
    for row in validated.itertuples():
        assert f"{short[row.head]}: {row.label} ({row.label_feature}), rho" in summary
        assert format_interval(row.label_rho, row.label_ci_low, row.label_ci_high) in summary
        assert format_interval(row.hsi, row.ci_low, row.ci_high) in summary
        assert f"adjusted p {format_p(row.label_p_adjusted)}".replace("<", "&lt;") in summary
    assert "training step 3000 (of 3 in the data)" in summary


def _formulas(result, evolution=None) -> list[segments.Math]:
    """Every formula of the methods text, from the segments it is rendered from."""
    captured: list[segments.Math] = []
    original = segments.MethodsText.from_segments.__func__  # type: ignore[attr-defined]

    def spy(cls, paragraphs):  # type: ignore[no-untyped-def]
        captured.extend(s for p in paragraphs for s in p if isinstance(s, segments.Math))
        return original(cls, paragraphs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(segments.MethodsText, "from_segments", classmethod(spy))
        methods_text(result, evolution)
    return captured


STAND_INS = re.compile(r"\b(rho_\w+|a~_\w+|x~_\w+|HSI_h|sqrt\(|alpha'|Phi\(|sum_\w|mean_\w)")


def test_the_html_methods_are_mathml_without_stand_ins(report_dir: Path, result) -> None:
    html = (report_dir / "report.html").read_text()
    methods = html[html.index('<h2 id="methods">'):html.index('<h3 id="references">')]
    formulas = re.findall(r"<math\b.*?</math>", methods, flags=re.DOTALL)
    assert len(formulas) >= len(_formulas(result))  # the evolution paragraph adds its own
    for formula in formulas:
        ET.fromstring(formula)  # well-formed MathML
    prose = re.sub(r"<math\b.*?</math>", " ", methods, flags=re.DOTALL)
    assert not STAND_INS.findall(prose)
    assert "\\" not in methods  # no LaTeX command left unconverted
    assert "<script" not in html and "mathjax" not in html.lower()


def test_the_pdf_methods_use_symbols_in_an_embedded_font(report_dir: Path) -> None:
    reader = PdfReader(report_dir / "report.pdf")
    text = "\n".join(page.extract_text() for page in reader.pages)
    methods = text[text.index("\nMethods\n"):]
    assert "\u03c1" in methods and "\u2211" in methods and "\u221a" in methods  # rho, sum, square root
    assert not STAND_INS.findall(methods)
    fonts = {str(font["/BaseFont"]) for page in reader.pages
             for font in page["/Resources"].get("/Font", {}).values()}
    assert any("DejaVuSans" in font for font in fonts)


@pytest.mark.parametrize(("latex", "markup"), [
    (r"\rho_{hf}", "<i>\u03c1</i><sub><i>hf</i></sub>"),
    (r"x^2", "<i>x</i><super>2</super>"),
    (r"\alpha' = 0.02", "<i>\u03b1</i>\u2032 = 0.02"),
    (r"\bar a_{hs}", "<i>a\u0304</i><sub><i>hs</i></sub>"),
    (r"\hat\beta \pm t_{G-1}", "<i>\u03b2\u0302</i> \u00b1 <i>t</i><sub><i>G</i> \u2212 1</sub>"),
    (r"\frac{1}{1 + R}", "1/(1 + <i>R</i>)"),
    (r"\sqrt{3/(n+1)}", "\u221a(3/(<i>n</i> + 1))"),
    (r"\{-1, +1\}", "{\u22121, +1}"),
    (r"\log V_s", "log\u2009<i>V</i><sub><i>s</i></sub>"),
    (r"\Phi^{-1}(q)", "\u03a6<super>\u22121</super>(<i>q</i>)"),
    (r"\sum_{v=1}^{V} p_v", "\u2211<sub><i>v</i> = 1</sub><super><i>V</i></super><i>p</i><sub><i>v</i></sub>"),
])
def test_pdf_markup_of_formulas_written_out_by_hand(latex: str, markup: str) -> None:
    assert to_pdf_markup(latex) == markup


@pytest.mark.parametrize("overrides", [
    {}, {"estimator": "pooled"}, {"estimator": "fisher"}, {"correlation": "spearman"}, {"correlation": "pearson"},
    {"ci_method": "bca"}, {"correction": "holm"}, {"scheme": "within-scenario"}])
def test_every_formula_of_the_methods_converts(run, overrides) -> None:
    changed = analyze(run.dataset, n_resamples=1999, rng=1, **overrides)
    for formula in _formulas(changed):
        mathml = to_mathml(formula.latex, display=formula.display)
        root = ET.fromstring(mathml)
        assert root.tag.endswith("math") and "\\" not in mathml, formula.latex
        assert "\\" not in to_pdf_markup(formula.latex)


def test_a_summary_of_many_heads_groups_them_by_label(result) -> None:
    heads = pd.concat([result.heads.assign(head=[f"layer{k}/{h}" for h in result.heads["head"]]) for k in range(6)],
                      ignore_index=True)
    many = dataclasses.replace(result, heads=heads)
    found = findings(many)
    validated = heads[heads["validated"]]
    assert found.headline.startswith(f"{len(validated)} of {len(heads)} heads carry a validated label: ")
    for label, count in validated["label"].value_counts().items():
        assert f"{label} x{count} (" in found.headline
    assert len(found.heads) == FINDINGS_HEADS + 1 and found.heads[-1].startswith(
        f"The other {len(validated) - FINDINGS_HEADS} validated heads")
