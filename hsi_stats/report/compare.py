"""``write_comparison``: the files of a comparison of runs (tables, figure, page and summary), written as one set.

Everything here reads a :class:`~hsi_stats.compare.RunComparison` and computes nothing; numbers are rounded for
display only.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from .._atomic import atomic_folder, write_files
from ..catalog import GENERAL_CONTEXT
from ..compare import RunComparison
from ..formatting import MISSING, format_number
from .figures import render_figure
from .figures.compare import run_heatmaps

__all__ = ["comparison_page", "write_comparison"]

_REFERENCES = (
    "Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval Research Logistics Quarterly "
    "2(1-2), 83-97. https://doi.org/10.1002/nav.3800020109",
    "Munkres, J. (1957). Algorithms for the assignment and transportation problems. Journal of the Society for "
    "Industrial and Applied Mathematics 5(1), 32-38. https://doi.org/10.1137/0105003",
    "Murty, K. G. (1968). An algorithm for ranking all the assignments in order of increasing cost. Operations "
    "Research 16(3), 682-687. https://doi.org/10.1287/opre.16.3.682",
    "Clopper, C. J. and Pearson, E. S. (1934). The use of confidence or fiducial limits illustrated in the case of "
    "the binomial. Biometrika 26(4), 404-413. https://doi.org/10.1093/biomet/26.4.404",
)


@dataclass(frozen=True)
class _Page:
    title: str
    created: str
    headline: str
    findings: list[str]
    functions_intro: str
    functions: pd.DataFrame
    matches_intro: str
    matches: pd.DataFrame
    figure_title: str
    figure_caption: str
    figure_png: bytes
    runs: list[tuple[str, str]]
    notes: list[str]
    methods: list[str]
    references: tuple[str, ...]
    summary: str


def _methods(comparison: RunComparison) -> list[str]:
    s = comparison.settings
    profile = ("its correlation rho with each feature" if s["by"] == "rho" else
               "its joint model's coefficients (log attention odds ratios, the other features held fixed)")
    stability = (f"Each run's episodes were resampled {s['n_resamples']} times with the cluster bootstrap (seed "
                 f"{s['seed']}), the profiles recomputed and the heads matched again; a pair's stability is the share "
                 f"of resamples that keep it, and a match is ambiguous below {s['min_match_stability']:g}."
                 if s["n_resamples"] is not None else
                 "The runs were read from their analysis files, which hold no episodes to resample, so no stability "
                 f"was measured; a match is ambiguous when its pair margin is below {s['min_margin']:g}.")
    return [
        f"Each head's profile is {profile}, over {len(comparison.features)} features. The heads of every run were "
        f"matched to those of the reference run ({comparison.runs[0]}) by the one-to-one assignment maximising the "
        "sum of the Pearson correlations (over the features) of matched profiles, solved exactly with the "
        "Hungarian algorithm (Kuhn 1955; Munkres 1957).",
        "A pair's margin is the best total similarity minus the best total of an assignment without that pair "
        "(solved again with the pair forbidden); the run's margin, the smallest of its pairs', is the best total "
        "minus that of the second-best assignment (Murty 1968). " + stability,
        "A function replicates in a run when some head of the run validates its label. Its rate over the runs has "
        f"a {round(100 * s['confidence_level'])}% Clopper-Pearson interval (Clopper and Pearson 1934), the runs "
        "(training seeds) being the sampled units. An ambiguous match never counts as the replication of a "
        "profile.",
    ]


def comparison_page(comparison: RunComparison, figure_png: bytes) -> str:
    """The self-contained HTML page of ``comparison`` (inline CSS, the figure embedded, no script, no URL)."""
    level = round(100 * comparison.settings["confidence_level"])
    functions = pd.DataFrame({
        "function": comparison.functions["label"],
        "runs with it": [f"{k} of {n}" for k, n in zip(comparison.functions["runs_with"], comparison.functions["runs"],
                                                       strict=True)],
        f"rate [{level}% CI]": [f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in zip(
            comparison.functions["rate"], comparison.functions["ci_low"], comparison.functions["ci_high"],
            strict=True)],
        "carried by": comparison.functions["carried_by"],
    })
    m = comparison.matches
    matches = pd.DataFrame({
        "run": m["run"], "head": m["head"], "matched to": m["reference_head"].fillna(MISSING),
        "similarity": [format_number(v, 2) for v in m["similarity"]],
        "pair margin": [format_number(v, 3) for v in m["pair_margin"]],
        "stability": [format_number(v, 2) for v in m["stability"]],
        "ambiguous": ["yes" if a else "no" for a in m["ambiguous"]],
        "label": m["label"], "reference's label": m["reference_label"].fillna(MISSING),
    })
    labels = comparison.functions[comparison.functions["kind"] == "label"]
    findings = [f"{row.label}: in {row.runs_with} of {row.runs} runs ({level}% CI {row.ci_low:.2f} to "
                f"{row.ci_high:.2f})" for row in labels.itertuples()]
    findings += [f"{row.label}: kept in {row.runs_with} of the {row.runs} other runs" for row in
                 comparison.functions[comparison.functions["kind"] == "profile"].itertuples()]
    n_ambiguous = int(m["ambiguous"].sum())
    labelled = (m["label"] != GENERAL_CONTEXT) | (m["reference_label"].fillna(GENERAL_CONTEXT) != GENERAL_CONTEXT)
    margins = m.groupby("run", sort=False)["margin"].first()
    headline = (f"{len(comparison.runs)} runs compared; {n_ambiguous} of {len(m)} matched heads are ambiguous "
                f"({int((m['ambiguous'] & labelled).sum())} of the {int(labelled.sum())} with a validated label on "
                "either side); "
                f"smallest margin of a run's matching {min(margins):.3f} ({margins.idxmin()}).")
    context = _Page(
        title=f"Comparison of runs: {', '.join(comparison.runs)}",
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        headline=headline, findings=findings,
        functions_intro=("One row per validated label: the runs in which some head validates it, with an exact "
                         "interval over runs" + ("; then one row per profile of a reference head: the other runs "
                                                 "whose unambiguously matched head keeps its significant features "
                                                 "and signs." if comparison.settings["by"] == "joint" else ".")),
        functions=functions,
        matches_intro=(f"Every head of every run after {comparison.runs[0]}, matched to a head of {comparison.runs[0]}"
                       " by the similarity of their profiles. Ambiguous matches are shown in amber."),
        matches=matches,
        figure_title="Profiles of the runs side by side",
        figure_caption=("Each run's correlation rho of every head with every feature; row i of every panel is the "
                        f"head matched to {comparison.runs[0]}'s head i, so a function that replicates is one colour "
                        "pattern along a row. ? marks an ambiguous match."),
        figure_png=figure_png,
        runs=list(zip(comparison.runs, comparison.sources, strict=True)),
        notes=list(comparison.notes), methods=_methods(comparison), references=_REFERENCES,
        summary=comparison.summary(),
    )
    env = jinja2.Environment(loader=jinja2.PackageLoader("hsi_stats.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    return env.get_template("compare.html.j2").render(c=context)


def write_comparison(comparison: RunComparison, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write the files of ``comparison`` into ``out_dir`` as one set.

    Files: ``matches.csv``, ``functions.csv``, ``carriers.csv`` and ``similarity.csv`` (the tables of the
    :class:`~hsi_stats.compare.RunComparison`), ``comparison.html`` (self-contained), ``summary.txt`` (the printed
    summary) and the figure :func:`~hsi_stats.report.figures.compare.run_heatmaps` as
    ``figures/runs.pdf``, ``.svg`` and ``.png``. Everything is rendered first and written into a staging folder
    moved into place when complete: a failure leaves nothing half-written.

    Returns
    -------
    dict of str to Path
        File name (relative to ``out_dir``) -> path written.
    """
    if not isinstance(comparison, RunComparison):
        raise TypeError(f"`comparison` must be a RunComparison (from hsi_stats.compare_runs), but "
                        f"{type(comparison).__name__} was passed.")
    figure = render_figure(run_heatmaps(comparison), dpi=150)
    files: dict[str, Any] = {
        "matches.csv": comparison.matches.to_csv(index=False),
        "functions.csv": comparison.functions.to_csv(index=False),
        "carriers.csv": comparison.carriers.to_csv(index=False),
        "similarity.csv": comparison.similarity.to_csv(index=False),
        "summary.txt": comparison.summary() + "\n",
        "comparison.html": comparison_page(comparison, figure.png),
        "figures/runs.pdf": figure.pdf, "figures/runs.svg": figure.svg, "figures/runs.png": figure.png,
    }
    out = Path(out_dir)
    with atomic_folder(out) as staging:
        write_files(staging, files)
    return {name: out / name for name in files}
