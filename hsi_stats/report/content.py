"""What a report says, assembled once from the result objects and rendered by both the HTML and the PDF writers.

Nothing here computes a statistic: it reads an :class:`~hsi_stats.results.HSIResult` (and optionally an
:class:`~hsi_stats.evolution.EvolutionResult`), formats its tables and draws its figures.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from functools import partial
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..ablation import AblationEffects, AblationEpisodes, ablation_results
from ..catalog import GENERAL_CONTEXT
from ..explain import example_explanations
from ..formatting import format_interval, format_number, format_p
from ..labels import STRENGTH_BANDS
from ..results import HSIResult, hsi_interval_note
from ..settings import CORRECTION_NAMES
from ..step_selection import StepSelection
from . import figures
from .ablation import AblationSection, ablation_section
from .methods import MethodsText, methods_text
from .naming import name_legend, short_head_names
from .tables import HEAD_COLUMN_KINDS, head_table, left_out_table

if TYPE_CHECKING:
    from ..evolution import EvolutionResult

__all__ = ["Figure", "Findings", "ReportContent", "build_content", "findings"]


@dataclass(frozen=True)
class Figure:
    """One figure of the report: a title, a caption and the image, as PNG (shown in the HTML and PDF reports)
    and as the vector files written beside them (``figures/<key>.pdf`` and ``figures/<key>.svg``).

    ``key`` is safe as a file name and an HTML id (letters, digits, ``.``, ``_`` and ``-``).
    """

    key: str
    title: str
    caption: str
    png: bytes
    pdf: bytes = b""
    svg: bytes = b""

    @property
    def files(self) -> dict[str, bytes]:
        """The standalone files of the figure: ``figures/<key>.pdf`` and ``figures/<key>.svg`` -> content."""
        return {f"figures/{self.key}.{fmt}": data for fmt, data in (("pdf", self.pdf), ("svg", self.svg)) if data}


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def figure_key(text: str) -> str:
    """``text`` made safe as a file name and an HTML id: runs of other characters become ``_``.

    Examples
    --------
    >>> figure_key("scatter-L0.H2"), figure_key("scatter-a/b:h1")
    ('scatter-L0.H2', 'scatter-a_b_h1')
    """
    return _UNSAFE.sub("_", text).strip("_.") or "figure"


@dataclass(frozen=True)
class Findings:
    """The report's opening summary: a headline, one line per validated head and what was analysed."""

    headline: str
    heads: list[str]
    analysed: str


@dataclass(frozen=True)
class ReportContent:
    """Everything both renderers show.

    They show it findings first: the title and :attr:`findings`, the heads, the figures, the ablation section,
    the evolution, the explanations, then the data, the methods and the references. ``name_legend`` maps the short
    head names of the figures (and the PDF's tables) to the full ones; None when every name is short already.
    ``ablation`` is the section on removing heads, None without ablation results.
    """

    title: str
    created: str
    findings: Findings
    summary: list[tuple[str, str]]
    notes: list[str]
    left_out: pd.DataFrame
    methods: MethodsText
    heads: pd.DataFrame
    head_notes: list[str]
    name_legend: pd.DataFrame | None
    figures: list[Figure]
    evolution_table: pd.DataFrame | None
    emergence: list[tuple[str, str]]
    explanations: pd.DataFrame
    ablation: AblationSection | None = None

    @property
    def head_classes(self) -> dict[str, str]:
        """The HTML class of each head-table column: numbers aligned, the label and the reasons styled."""
        return {column: HEAD_COLUMN_KINDS.get(column, "") for column in self.heads.columns}


#: Validated heads given a line each in the opening summary; beyond that the headline groups them by label and the
#: head table has them all.
FINDINGS_HEADS = 8


def _finding(row: Any, short: str, level: int) -> str:
    """One validated head: its label and feature, its rho, adjusted p, HSI and focus, and its joint profile."""
    text = (f"{short}: {row.label} ({row.label_feature}), rho "
            f"{format_interval(row.label_rho, row.label_ci_low, row.label_ci_high)}, adjusted p "
            f"{format_p(row.label_p_adjusted)}; HSI {format_interval(row.hsi, row.ci_low, row.ci_high)}; focus "
            f"{format_interval(row.label_focus, row.label_focus_ci_low, row.label_focus_ci_high)}")
    profile = getattr(row, "profile", "")
    return text + (f"; profile {profile}" if isinstance(profile, str) and profile else "") + f" ({level}% CIs)."


def findings(result: HSIResult) -> Findings:
    """The opening summary of a report: how many heads validated, which ones with their key numbers, and the
    step, scenarios and data analysed.

    Examples
    --------
    >>> from hsi_stats import analyze
    >>> from hsi_stats.synthetic import generate
    >>> found = findings(analyze(generate(n_episodes=20, n_steps=10, rng=0).dataset, n_resamples=999, rng=1))
    >>> found.headline
    '3 of 8 heads carry a validated label: h1 Proximity Head, h2 Left Lane Head, h3 Traffic Flow Head.'
    >>> found.analysed.split(";")[0]
    'Analysed: training step 1000000, 200 scenarios in 20 independent episodes, 8 heads x 8 features'
    """
    heads, d = result.heads, result.data_summary
    level = round(100 * result.settings.confidence_level)
    short = short_head_names([str(h) for h in heads["head"]])
    validated = heads[heads["validated"].astype(bool)]
    if len(validated) <= FINDINGS_HEADS:
        shown = ", ".join(f"{short[str(h)]} {label}" for h, label in
                          zip(validated["head"], validated["label"], strict=True))
    else:  # many heads: by label, with how many carry it
        by_label = validated.groupby("label", sort=False)["head"]
        shown = "; ".join(f"{label} x{len(names)} ({', '.join(short[str(h)] for h in names)})"
                          for label, names in by_label)
    headline = (f"{len(validated)} of {len(heads)} heads carry a validated label" + (f": {shown}." if len(validated)
                else ": no head's association with a feature passed every rule (see Heads for each head's reasons)."))
    lines = [_finding(row, short[str(row.head)], level) for row in validated.head(FINDINGS_HEADS).itertuples()]
    if len(validated) > FINDINGS_HEADS:
        lines.append(f"The other {len(validated) - FINDINGS_HEADS} validated heads are in the head table.")
    analysed = (f"{d['n_scenarios']} scenarios in {d['n_groups']} independent episodes, {d['n_heads']} heads x "
                f"{d['n_features']} features; data fingerprint {str(result.provenance['data_fingerprint'])[:16]}.")
    if d["steps"]:
        selection = StepSelection.from_dict(d["step_selection"])
        steps = ", ".join(selection.label(step) for step in d["steps"])
        which = "training step" if len(d["steps"]) == 1 else "training steps"
        total = len(selection.available)
        analysed = f"Analysed: {which} {steps}" + (f" (of {total} in the data), " if total > 1 else ", ") + analysed
    else:
        analysed = "Analysed: " + analysed
    return Findings(headline, lines, analysed)


def _summary_rows(result: HSIResult) -> list[tuple[str, str]]:
    d, s = result.data_summary, result.settings
    per = d["entities_per_scenario"]
    rows = [
        ("scenarios", str(d["n_scenarios"])),
        ("groups (independent episodes)", str(d["n_groups"])),
        ("entities", f"{d['n_entities']} valid ({per['min']}-{per['max']} per scenario, mean {per['mean']:.2f}) "
                     f"in {d['n_slots']} slots"),
        ("heads", str(d["n_heads"])),
        ("features", ", ".join(result.estimate.feature_names)),
        ("estimator", f"{s['estimator']} / {s['correlation']}" + (" / slot-adjusted" if s["adjust"] else "")),
        ("resampling", f"{s['n_resamples']} cluster-bootstrap resamples ({s['ci_method']}), "
                       f"{result.test.n_resamples} {s['scheme']} randomisations"
                       + (" (exact)" if result.test.exact else "")),
        ("correction", CORRECTION_NAMES[s.correction]),
        ("seed", str(result.provenance["seed"])),
        ("data fingerprint", str(result.provenance["data_fingerprint"])[:16]),
    ]
    if d["steps"]:
        selection = StepSelection.from_dict(d["step_selection"])
        rows.insert(4, ("training steps", ", ".join(selection.label(step) for step in d["steps"])))
    return rows


def _draw(key: str, title: str, caption: str, draw: Callable[[], Any]) -> Figure:
    rendered = figures.render_figure(draw())
    return Figure(figure_key(key), title, caption, rendered.png, rendered.pdf, rendered.svg)


def _figures(result: HSIResult, evolution: EvolutionResult | None, ablation: Any = None) -> list[Figure]:
    alpha = result.settings.alpha
    level = round(100 * result.settings.confidence_level)
    ascending = STRENGTH_BANDS[::-1]
    bands = " / ".join(f"{band.lower:g}" for band in ascending)
    names = " / ".join(band.name for band in ascending)
    items = [
        _draw("heatmap", "Correlation of attention with each feature",
              f"rho per head and feature; * adjusted p < {alpha:g}, ** < {alpha / 5:g}, *** < {alpha / 50:g}.",
              lambda: figures.rho_heatmap(result)),
        _draw("hsi", "Head Specialization Index",
              f"HSI with {level}% cluster-bootstrap intervals; lines at {bands} ({names}); filled bars are "
              "validated labels.", lambda: figures.hsi_bars(result)),
        _draw("focus", "Focus on the target entity",
              f"Share of each head's attention on the entity its feature points at (the label's feature; the primary "
              f"feature of a General Context Head), in excess of uniform attention: 0 uniform, 1 all on the target, "
              f"-1 none on it (a head that looks away); {level}% cluster-bootstrap intervals.",
              lambda: figures.focus_plot(result)),
        _draw("forest", "rho with confidence intervals",
              f"Every head x feature rho with its {level}% interval; highlighted pairs have adjusted p < {alpha:g}.",
              lambda: figures.forest_plot(result)),
    ]
    if result.joint is not None:
        items.append(_draw(
            "odds-ratios", "Joint model: which features drive each head",
            f"Attention odds ratios of each head, every other feature held fixed (the joint model), with {level}% "
            f"intervals (cluster jackknife, t); filled markers: adjusted p < {alpha:g}, the head's profile. "
            "Continuous features: highest against lowest value (per unit of within-scenario percentile); "
            "indicators: flagged against not flagged. Log scale, clipped at 1/1000 and 1000.",
            lambda: figures.odds_ratio_plot(result)))
    short = short_head_names([str(h) for h in result.heads["head"]])
    labelled = result.heads[result.heads["label"] != GENERAL_CONTEXT]
    for name, feature, label, validated in labelled[["head", "label_feature", "label", "validated"]].itertuples(
            index=False):
        items.append(_draw(
            f"scatter-{short[str(name)]}", f"{short[str(name)]}: attention versus {feature}",
            f"{label} ({'validated' if validated else 'not validated'}); binned means with 95% intervals where "
            "there are many points.", partial(figures.attention_vs_feature, result, name, feature)))
    items += [
        _draw("distributions", "Attention distributions",
              "Attention on valid entities, per head.", lambda: figures.attention_distributions(result)),
        _draw("null", "Null distributions of HSI",
              f"HSI under the {result.settings.scheme} null with the observed value (line).",
              lambda: figures.null_distributions(result)),
    ]
    given = ablation_results(ablation)
    if given:
        effects = next((item for item in given if isinstance(item, AblationEffects)), None)
        episodes = next((item for item in given if isinstance(item, AblationEpisodes)), None)
        short_names = short_head_names([str(h) for h in result.heads["head"]])
        level = round(100 * given[0].confidence_level)
        items.append(_draw(
            "ablation", "What removing each head does",
            ("Open loop: the share of observations whose most probable action changes and the mean total-variation "
             "distance between the action distributions, with and without each head. " if effects else "")
            + ("Closed loop: change of the mean return and of the crash rate over the same seeded episodes, "
               "ablated minus intact. " if episodes else "") + f"{level}% intervals from resampling episodes.",
            lambda: figures.ablation_plot(effects, episodes, short=short_names)))
    if evolution is not None:
        items.append(_draw("evolution", "Specialisation over training",
                           f"HSI per head across training steps with {level}% bands; filled markers are validated.",
                           lambda: figures.evolution_plot(evolution.per_step, threshold=result.settings.threshold,
                                                          step_names=evolution.step_names)))
    return _unique_keys(items)


def _unique_keys(items: list[Figure]) -> list[Figure]:
    """Number repeated keys (two names that differ only in characters a file name cannot hold) -2, -3, ..."""
    seen: dict[str, int] = {}
    out = []
    for item in items:
        count = seen.get(item.key, 0) + 1
        seen[item.key] = count
        out.append(item if count == 1 else replace(item, key=f"{item.key}-{count}"))
    return out


def _evolution_tables(evolution: EvolutionResult | None) -> tuple[pd.DataFrame | None, list[tuple[str, str]]]:
    if evolution is None:
        return None, []
    trends = evolution.trends
    level = round(100 * evolution.settings["confidence_level"])
    table = pd.DataFrame({
        "head": trends["head"],
        "feature": trends["feature"],
        f"trend per checkpoint (+ when |rho| grows) [{level}% CI]": [format_interval(v, lo, hi) for v, lo, hi in
                                                  zip(trends["slope"], trends["ci_low"], trends["ci_high"],
                                                      strict=True)],
        "adjusted p": [format_p(v) for v in trends["p_adjusted"]],
        "in words": list(trends["trend"]),
        f"label emerges at step [HSI {level}% CI]": [
            "never" if pd.isna(step) else
            f"{evolution.step_label(int(step))} [{format_number(lo)}, {format_number(hi)}]"
            for step, lo, hi in zip(trends["emerges_at"], trends["emergence_ci_low"], trends["emergence_ci_high"],
                                    strict=True)],
    })
    emergence = [(h, "never" if step is None else evolution.step_label(step))
                 for h, step in evolution.emergence.items()]
    return table, emergence


def _explanations(result: HSIResult) -> pd.DataFrame:
    """The example explanations with the heads' short names (as in the tables and figures)."""
    table = example_explanations(result)
    short = short_head_names([str(h) for h in result.heads["head"]])
    texts = [text.replace(head, short[head], 1) for head, text in zip(table["head"], table["text"], strict=True)]
    return table.assign(head=[short[head] for head in table["head"]], text=texts)


def build_content(result: HSIResult, *, evolution: EvolutionResult | None = None, ablation: Any = None,
                  title: str = "Attention-head specialisation report") -> ReportContent:
    """Assemble the report's tables, methods text and figures from the result objects (``ablation``: results of
    :mod:`hsi_stats.ablation` on the model the analysis recorded, for the section on removing heads)."""
    notes = list(result.data_summary["notes"])
    if result.settings.estimator == "fisher":
        notes.append(f"The fisher estimator depends strongly on its clip ({result.settings.fisher_clip}); "
                     "with few entities per scenario it inflates no-effect heads. Prefer 'within'.")
    evolution_table, emergence = _evolution_tables(evolution)
    return ReportContent(
        title=title,
        created=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        findings=findings(result),
        summary=_summary_rows(result),
        notes=notes,
        left_out=left_out_table(result),
        methods=methods_text(result, evolution, ablation),
        heads=head_table(result),
        head_notes=[hsi_interval_note(result.heads, result.settings.confidence_level)],
        name_legend=name_legend(list(result.heads["head"])),
        figures=_figures(result, evolution, ablation),
        evolution_table=evolution_table,
        emergence=emergence,
        explanations=_explanations(result),
        ablation=ablation_section(result, ablation),
    )
