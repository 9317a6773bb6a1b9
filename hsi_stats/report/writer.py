"""``write_report``: the report files of one analysis, each written atomically."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._atomic import atomic_folder, write_files
from .._validation import check_choice
from ..outputs import write_tables_into
from ..results import HSIResult
from .content import build_content
from .latex import head_latex, joint_latex, pairs_latex

if TYPE_CHECKING:
    from ..evolution import EvolutionResult

__all__ = ["FORMATS", "write_report"]

FORMATS = ("html", "pdf")


def _formats_iv(formats: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(formats, str):
        formats = [part.strip() for part in formats.split(",") if part.strip()]
    chosen = tuple(check_choice("formats", f, FORMATS) for f in formats)
    if not chosen:
        raise ValueError(f"The value for `formats` must name at least one of {FORMATS}, but none was passed.")
    return chosen


def write_report(
    result: HSIResult,
    out_dir: str | os.PathLike[str],
    *,
    formats: Sequence[str] | str = FORMATS,
    evolution: EvolutionResult | None = None,
    allow_unvalidated: bool = False,
    ablation: Any = None,
) -> dict[str, Path]:
    """Write the report of ``result`` and its citable companions into ``out_dir``.

    Files: ``report.html`` (self-contained) and/or ``report.pdf`` (same content), ``methods.md`` (the methods
    paragraph in Markdown with LaTeX math and ``[@key]`` citations), ``references.bib`` (every work it cites),
    ``table.tex`` (the head table), ``pairs.tex`` (every head x feature pair) and, with the joint model,
    ``joint.tex`` (each head's profile and every odds ratio), booktabs tables for a paper
    (:mod:`hsi_stats.report.latex`; they need ``\\usepackage{booktabs,siunitx,longtable}``), and the tables of
    :func:`hsi_stats.outputs.write_tables`:
    ``pairs.csv``, ``heads.csv``, ``head_functions.json`` (the registry; unvalidated labels as General Context
    Heads unless ``allow_unvalidated``) and, with ``evolution``, ``evolution.csv`` and ``trends.csv``; and every
    figure of the report on its own as vector files for a paper, ``figures/<key>.pdf`` and ``figures/<key>.svg``
    (the same bytes for the same result). The set is written into a staging folder and moved into place when
    complete.

    Parameters
    ----------
    result : HSIResult
    out_dir : path
    formats : sequence of {"html", "pdf"} or a comma-separated string, default both
    evolution : EvolutionResult, optional
        Adds the evolution-over-training figure and table.
    allow_unvalidated : bool, default False
    ablation : AblationEffects, AblationEpisodes or a sequence of them, optional
        What removing each head of the recorded model did (:func:`hsi_stats.ablation_effects`,
        :func:`hsi_stats.capture.highway.ablation_episodes`): adds the section "What removing each head does"
        (its tables, a figure and a methods paragraph), ``ablation.csv``, ``ablation_targeted.csv`` and/or
        ``ablation_episodes.csv``, and each head's ``ablation`` block in the registry.

    Returns
    -------
    dict of str to Path
        File name (relative to ``out_dir``, such as ``"figures/heatmap.pdf"``) -> path written.
    """
    chosen = _formats_iv(formats)
    out = Path(out_dir)
    content = build_content(result, evolution=evolution, ablation=ablation)
    # Render everything before writing anything: a failure leaves no partial report.
    rendered: dict[str, str | bytes] = {}
    if "html" in chosen:
        from .html import render_html

        rendered["report.html"] = render_html(content)
    if "pdf" in chosen:
        from .pdf import render_pdf

        rendered["report.pdf"] = render_pdf(content)
    rendered["methods.md"] = content.methods.to_markdown()
    rendered["references.bib"] = content.methods.to_bibtex()
    rendered["table.tex"] = head_latex(result)
    rendered["pairs.tex"] = pairs_latex(result)
    if result.joint is not None:
        rendered["joint.tex"] = joint_latex(result)
    for figure in content.figures:
        rendered.update(figure.files)

    # The set is written into a staging folder and moved into place only when complete: a failure leaves the
    # previous report and tables as they were.
    with atomic_folder(out) as staging:
        write_files(staging, rendered)
        written_tables = write_tables_into(staging, result, evolution=evolution, allow_unvalidated=allow_unvalidated,
                                           ablation=ablation)
    return {name: out / name for name in [*rendered, *written_tables]}
