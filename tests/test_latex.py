"""The citable companions of a report: table.tex, pairs.tex, references.bib and methods.md.

Without LaTeX: every citation key of methods.md has one entry in references.bib and every entry is cited, the bib
parses, the numbers of the LaTeX tables are those of heads.csv and pairs.csv through :mod:`hsi_stats.formatting`,
names are escaped. With ``pdflatex`` (``nox -s latex`` installs it): both tables compile in a plain ``article``
without an overfull box, for the demo and for 72 heads with long names, and methods.md's math is valid LaTeX.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pypdf import PdfReader

from hsi_stats import analyze, analyze_evolution
from hsi_stats.ablation import AblationEffects, episode_effects
from hsi_stats.formatting import format_number, format_p
from hsi_stats.report.bibliography import REFERENCES
from hsi_stats.report.latex import LATEX_PACKAGES, head_latex, joint_latex, latex_escape, pairs_latex
from hsi_stats.report.methods import methods_text
from hsi_stats.report.naming import short_head_names
from hsi_stats.synthetic import default_heads, generate

PDFLATEX = shutil.which("pdflatex")
needs_latex = pytest.mark.skipif(PDFLATEX is None, reason="pdflatex is not installed (nox -s latex installs it)")
LONG_NAMES = [f"other_traj/cross_attn_{layer}:h{k}" for layer in range(9) for k in range(8)]


@pytest.fixture(scope="module")
def demo():
    return analyze(generate(n_episodes=16, n_steps=10, rng=5).dataset, n_resamples=199, rng=2)


@pytest.fixture(scope="module")
def many_heads():
    heads = [dataclasses.replace(spec, name=name)
             for spec, name in zip(default_heads() * 9, LONG_NAMES, strict=True)]
    return analyze(generate(n_episodes=16, n_steps=6, heads=heads, rng=3).dataset, n_resamples=199, rng=1)


@pytest.fixture(scope="module")
def evolution():
    run = generate(n_episodes=12, n_steps=6, checkpoints=(0, 1, 2), specialise=(0, 2), rng=0)
    return analyze_evolution(run.dataset, n_resamples=99, trend_resamples=99, rng=1)


# ------------------------------------------------------------------------------------------------ bibliography
def _bib_entries(bib: str) -> dict[str, str]:
    """Parse references.bib: key -> body; every entry's braces balanced, one entry per key."""
    assert bib.count("{") == bib.count("}")
    entries: dict[str, str] = {}
    for match in re.finditer(r"@(\w+)\{([^,\s]+),", bib):
        start = match.end()
        depth, end = 1, start
        while depth:
            depth += {"{": 1, "}": -1}.get(bib[end], 0)
            end += 1
        assert match.group(2) not in entries, f"duplicate entry {match.group(2)}"
        body = bib[start:end - 1]
        for field in ("author", "title", "year"):
            assert re.search(rf"^\s*{field}\s*=\s*\{{.+\}},?$", body, re.MULTILINE), (match.group(2), field)
        entries[match.group(2)] = body
    return entries


def _cited(markdown: str) -> set[str]:
    return {key for group in re.findall(r"\[(@[^\]]+)\]", markdown) for key in re.findall(r"@([\w-]+)", group)}


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
@pytest.mark.parametrize("options", [{}, {"correction": "holm", "ci_method": "bca"},
                                     {"correction": "fdr_bh", "ci_method": "percentile", "estimator": "fisher"},
                                     {"correction": "fdr_by", "ci_method": "basic", "estimator": "pooled"}])
def test_every_citation_has_one_bib_entry_and_every_entry_is_cited(demo, evolution, options) -> None:
    result = analyze(demo.dataset, n_resamples=49, rng=0, **options) if options else demo
    text = methods_text(result, evolution)
    markdown, entries = text.to_markdown(), _bib_entries(text.to_bibtex())
    assert _cited(markdown) == set(entries) == set(text.references)
    assert {"field2007", "winkler2014", "shannon1948", "phipson2010"} <= set(entries)
    if options.get("correction") == "holm":
        assert "holm1979" in entries and "bh1995" not in entries
    assert set(entries) <= set(REFERENCES)


def test_references_state_the_works_exactly() -> None:
    entries = _bib_entries("\n".join(reference.to_bibtex() for reference in REFERENCES.values()))
    assert "doi     = {10.1111/j.1467-9868.2007.00593.x}" in entries["field2007"]
    assert "pages   = {369--390}" in entries["field2007"] and "volume  = {69}" in entries["field2007"]
    assert "doi     = {10.1016/j.neuroimage.2014.01.060}" in entries["winkler2014"]
    assert "Nichols, Thomas E." in entries["winkler2014"] and "pages   = {381--397}" in entries["winkler2014"]
    assert "pages   = {171--185}" in entries["efron1987"] and "number  = {397}" in entries["efron1987"]
    assert "doi     = {10.1111/j.2517-6161.1995.tb02031.x}" in entries["bh1995"]
    assert "doi     = {10.2202/1544-6115.1585}" in entries["phipson2010"] and "eid     = {39}" in entries["phipson2010"]


def test_methods_markdown_writes_math_and_the_settings_used(demo, evolution) -> None:
    markdown = methods_text(demo, evolution).to_markdown()
    assert r"$\mathrm{HSI}_h = \max_f |\rho_{hf}|$" in markdown
    assert r"H(p) = -\sum_{v=1}^{V_s} p_v \log p_v" in markdown  # the entropy, defined
    assert "expanded percentile intervals [@hesterberg2015]" in markdown
    assert "its interval was the projection of a simultaneous band of the head's correlations" in markdown
    assert r"\max_f \max\big(0, |\hat\rho_{hf}| - c_h s_{hf}\big)" in markdown
    assert "sign-flip randomisation test [@winkler2014]" in markdown
    assert "all 64 head x feature tests" in markdown and "the 8 head-level tests" in markdown
    assert "Change over training was measured" in markdown and r"f_h = \mathrm{arg\,max}_f" in markdown
    assert "so that the interval excludes 0 exactly when the test rejects" in markdown
    plain = " ".join(methods_text(demo).paragraphs)
    assert "$" not in plain and "[@" not in plain and "(Field and Welsh, 2007)" in plain


# ------------------------------------------------------------------------------------------------ tables
def _interval(*values: float, digits: int = 3) -> str:
    return " & ".join(format_number(v, digits) for v in values)


def test_pairs_tex_prints_every_pair_as_pairs_csv(demo) -> None:
    lines = pairs_latex(demo).splitlines()
    rows = [line for line in lines if " & " in line and not line.startswith(("feature", "\\"))]
    assert len(rows) == len(demo.pairs)
    for row, pair in zip(rows, demo.pairs.itertuples(), strict=True):
        expected = [latex_escape(pair.feature), _interval(pair.rho, pair.ci_low, pair.ci_high),
                    format_p(pair.p_value), format_p(pair.p_adjusted),
                    _interval(pair.focus, pair.focus_ci_low, pair.focus_ci_high, digits=2), pair.focus_target]
        assert row == " & ".join(expected) + " \\\\"
    assert lines[0] == "% Needs \\usepackage{" + ",".join(LATEX_PACKAGES) + "} in the preamble."
    assert "\\label{tab:hsi-pairs}" in lines[3] and lines.count("\\endhead") == 1


def test_head_table_names_and_escapes(demo, many_heads) -> None:
    table = head_latex(demo)
    assert "\\begin{table}" in table and "\\centering" in table and "\\label{tab:hsi}" in table
    assert "Heads:" not in table  # short names already
    long = head_latex(many_heads)
    assert "\\begin{longtable}" in long  # 72 rows do not fit one page
    short = short_head_names(LONG_NAMES)
    assert all(f"\n{short[name]} & " in long for name in LONG_NAMES)
    assert "L0 = other\\_traj/\\allowbreak{}cross\\_attn\\_0" in long
    assert latex_escape("a_b & 50% #1 {x} ~^\\") == ("a\\_b \\& 50\\% \\#1 \\{x\\} \\textasciitilde{}"
                                                    "\\textasciicircum{}\\textbackslash{}")


# ------------------------------------------------------------------------------------------------ compiled
def _compile(folder: Path, body: str, packages: str = ",".join(LATEX_PACKAGES)) -> str:
    """Compile a plain article around ``body``; the log (a failed run fails the test with the log's end)."""
    (folder / "doc.tex").write_text(f"\\documentclass{{article}}\n\\usepackage{{{packages}}}\n\\begin{{document}}\n"
                                    f"{body}\n\\end{{document}}\n")
    for _ in range(3):  # longtable settles its column widths over runs
        run = subprocess.run([PDFLATEX, "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                             capture_output=True, text=True, timeout=300)
        log = (folder / "doc.log").read_text(errors="replace")
        assert run.returncode == 0, log[-3000:]
        if "Rerun LaTeX" not in log:
            break
    return log


@needs_latex
@pytest.mark.parametrize("which", ["demo", pytest.param("many_heads", marks=pytest.mark.slow)])
def test_tables_compile_in_a_plain_article_without_overfull_boxes(which, request, tmp_path: Path) -> None:
    result = request.getfixturevalue(which)
    (tmp_path / "table.tex").write_text(head_latex(result))
    (tmp_path / "pairs.tex").write_text(pairs_latex(result))
    (tmp_path / "joint.tex").write_text(joint_latex(result))
    log = _compile(tmp_path, "\\input{table}\n\\input{pairs}\n\\input{joint}")
    assert "Overfull \\hbox" not in log, [line for line in log.splitlines() if "Overfull" in line]
    text = re.sub(r"\s+", " ", "\n".join(page.extract_text() for page in PdfReader(tmp_path / "doc.pdf").pages))
    short = short_head_names(list(result.heads["head"]))
    for head in result.heads.itertuples():
        assert f"{short[head.head]} " in text
        assert head.label.replace(" Head", "") in text
    assert "Table 1:" in text and "Table 2:" in text and "Table 3:" in text and "Table 4:" in text
    for profile in result.heads["profile"]:  # every profile whole (its words, in order)
        assert profile.split()[0].replace("_", " ") in text.replace("_", " ")


def test_joint_tex_prints_every_coefficient_and_profile(demo) -> None:
    text = joint_latex(demo)
    rows = [line for line in text.splitlines() if line.count("&") == 4 and not line.startswith("feature")]
    assert len(rows) == len(demo.joint)
    for profile in demo.heads["profile"]:
        assert latex_escape(profile) in text
    marginal = analyze(demo.dataset, n_resamples=49, rng=0, joint=False)
    assert joint_latex(marginal).startswith("%") and "\\begin" not in joint_latex(marginal)


def _markdown_to_latex(markdown: str) -> str:
    """methods.md's paragraphs as LaTeX: math as written, citations as \\cite, the prose's specials escaped."""
    body = markdown.split("## References")[0].replace("# Methods", "\\section*{Methods}")
    pieces = re.split(r"(\$\$.+?\$\$|\$.+?\$)", body, flags=re.DOTALL)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:  # math
            out.append(f"\\[{piece[2:-2]}\\]" if piece.startswith("$$") else piece)
            continue
        piece = re.sub(r"\[(@[^\]]+)\]", lambda m: "\\cite{" + ",".join(re.findall(r"@([\w-]+)", m[1])) + "}",
                       piece)
        out.append(re.sub(r"(?<!\\)([%&#_])", r"\\\1", piece).replace(">", "$>$").replace("<", "$<$"))
    return "".join(out)


@needs_latex
def test_methods_math_compiles(demo, evolution, tmp_path: Path) -> None:
    for options in ({}, {"ci_method": "bca", "estimator": "fisher"}, {"ci_method": "basic", "estimator": "pooled"}):
        result = analyze(demo.dataset, n_resamples=49, rng=0, **options) if options else demo
        log = _compile(tmp_path, _markdown_to_latex(methods_text(result, evolution).to_markdown()), "amsmath")
        assert "Missing $ inserted" not in log and "Undefined control sequence" not in log
        text = "\n".join(page.extract_text() for page in PdfReader(tmp_path / "doc.pdf").pages)
        assert "HSI" in text and "Methods" in text


# ------------------------------------------------------------------------------------------------ ablation
def _ablation_results() -> list[object]:
    """Open- and closed-loop results as the ablation functions make them (mean ablation), without a model."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"head": ["h0", "h1"], "changed": [0.3, 0.0], "changed_ci_low": [0.2, 0.0],
                          "changed_ci_high": [0.4, 0.0], "tv": [0.2, 0.0], "tv_ci_low": [0.1, 0.0],
                          "tv_ci_high": [0.3, 0.0]})
    targeted = pd.DataFrame([{"head": "h0", "label": "ttc", "target": "lowest ttc", "salient_steps": 40,
                              "changed_salient": 0.5, "changed_other": 0.1, "difference": 0.4, "ci_low": 0.2,
                              "ci_high": 0.6, "p_value": 0.001, "p_adjusted": 0.001}])
    effects = AblationEffects(table, targeted, {"h0": np.zeros(80, bool)}, {"h0": np.zeros(80)}, {}, "mean", 0.95,
                              999, 12)
    returns = pd.DataFrame({"none": rng.normal(20, 3, 10), "h0": rng.normal(17, 3, 10), "h1": rng.normal(20, 3, 10)})
    crashes = pd.DataFrame({"none": rng.random(10) < 0.2, "h0": rng.random(10) < 0.5, "h1": rng.random(10) < 0.2})
    return [effects, episode_effects(returns, crashes, n_resamples=999, rng=1, mode="mean")]


def test_the_ablation_paragraph_cites_what_it_uses(demo) -> None:
    text = methods_text(demo, None, _ablation_results())
    markdown, entries = text.to_markdown(), _bib_entries(text.to_bibtex())
    assert _cited(markdown) == set(entries) and {"jain2019", "michel2019", "voita2019", "holm1979"} <= set(entries)
    assert "@inproceedings{michel2019," in text.to_bibtex() and "pages     = {5797--5808}" in entries["voita2019"]
    ablation = text.paragraphs[-2]
    assert "replaced by its mean over reference inputs" in ablation and "12 episodes" in ablation
    assert "the same E = 10 episodes" in ablation and "B = 999 random sign patterns" in ablation
    assert "(Michel et al., 2019; Voita et al., 2019)" in ablation


@needs_latex
def test_the_ablation_paragraph_compiles(demo, tmp_path: Path) -> None:
    markdown = methods_text(demo, None, _ablation_results()).to_markdown()
    log = _compile(tmp_path, _markdown_to_latex(markdown), "amsmath")
    assert "Missing $ inserted" not in log and "Undefined control sequence" not in log
