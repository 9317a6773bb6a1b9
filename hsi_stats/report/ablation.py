"""The report's section "What removing each head does": the ablation results as text and formatted tables.

It reads the results of :mod:`hsi_stats.ablation` (open loop: :class:`~hsi_stats.ablation.AblationEffects`;
closed loop: :class:`~hsi_stats.ablation.AblationEpisodes`) beside the analysis whose labels they are shown with,
and computes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..ablation import AblationEffects, AblationEpisodes, ablation_results
from ..catalog import GENERAL_CONTEXT
from ..formatting import MISSING, format_interval, format_percent, format_percent_interval, p_statement
from ..formatting import format_p as _p
from ..results import HSIResult
from .naming import short_head_names

__all__ = ["AblationSection", "ablation_section"]

_HOW = {"zero": "set to zero", "mean": "replaced by its mean over reference inputs"}


@dataclass(frozen=True)
class AblationSection:
    """What the report says about removing heads: an introduction, one formatted row per head (and named set), the
    targeted comparison (None without labels), and one sentence per validated head."""

    intro: str
    table: pd.DataFrame
    targeted: pd.DataFrame | None
    sentences: list[str]


def _intro(effects: AblationEffects | None, episodes: AblationEpisodes | None) -> str:
    mode = (effects or episodes).mode  # type: ignore[union-attr]
    parts = [f"Each head was removed from the policy in turn, its output {_HOW[mode]} before the attention "
             "module's output projection, the rest of the network unchanged."]
    if effects is not None:
        n_steps = next(iter(effects.changed.values())).size
        parts.append(f"Open loop, the policy saw the same {n_steps} observations of {effects.n_groups} episodes "
                     "with and without the head: \"actions changed\" is the share whose most probable action "
                     "changed, \"total variation\" the mean total-variation distance between the two action "
                     f"distributions; {round(100 * effects.confidence_level)}% clustered Wilson intervals over "
                     "the episodes.")
        if effects.targeted is not None and len(effects.targeted):
            parts.append("For each head with a validated label, the share of changed actions where the label's "
                         "target is salient (present and extreme among the vehicles) is compared with the other "
                         f"steps ({effects.n_resamples} resamples of the episodes; Holm-adjusted p over the "
                         "heads).")
    if episodes is not None:
        parts.append(f"Closed loop, each condition drove the same {len(episodes.returns)} seeded episodes; the "
                     "changes of mean return and crash rate are ablated minus intact, with "
                     f"{round(100 * episodes.confidence_level)}% intervals and sign-flip tests adjusted over the "
                     "heads (step-down max-T).")
    return " ".join(parts)


def _labels(result: HSIResult) -> dict[str, str]:
    return {str(name): (str(label) if validated else GENERAL_CONTEXT) for name, label, validated in
            result.heads[["head", "label", "validated"]].itertuples(index=False)}


def _table(result: HSIResult, effects: AblationEffects | None, episodes: AblationEpisodes | None) -> pd.DataFrame:
    level = round(100 * (effects or episodes).confidence_level)  # type: ignore[union-attr]
    opened = {} if effects is None else {str(r["head"]): r for r in effects.table.to_dict(orient="records")}
    closed = {} if episodes is None else {str(r["head"]): r for r in episodes.table.to_dict(orient="records")
                                          if r["head"] != "none"}
    labels = _labels(result)
    names = [name for name in labels if name in opened or name in closed]
    names += [name for name in [*opened, *closed] if name not in labels and name not in names]
    rows = []
    for name in names:
        row: dict[str, str] = {"head": name, "label": labels.get(name, "(set of heads)")}
        if effects is not None:
            found = opened.get(name)
            row[f"actions changed [{level}% CI]"] = MISSING if found is None else format_percent_interval(
                found["changed"], found["changed_ci_low"], found["changed_ci_high"])
            row[f"total variation [{level}% CI]"] = MISSING if found is None else format_interval(
                found["tv"], found["tv_ci_low"], found["tv_ci_high"])
        if episodes is not None:
            done = closed.get(name)
            row[f"change of return [{level}% CI]"] = MISSING if done is None else format_interval(
                done["return_delta"], done["return_delta_ci_low"], done["return_delta_ci_high"], 2)
            row["adj. p (return)"] = MISSING if done is None else _p(done["return_p_adjusted"])
            row[f"change of crash rate [{level}% CI]"] = MISSING if done is None else format_interval(
                done["crash_delta"], done["crash_delta_ci_low"], done["crash_delta_ci_high"], 2)
            row["adj. p (crash)"] = MISSING if done is None else _p(done["crash_p_adjusted"])
        rows.append(row)
    return pd.DataFrame(rows)


def _targeted(result: HSIResult, effects: AblationEffects) -> tuple[pd.DataFrame | None, list[str]]:
    if effects.targeted is None or not len(effects.targeted):
        return None, []
    level = round(100 * effects.confidence_level)
    labels = _labels(result)
    table = effects.targeted
    frame = pd.DataFrame({
        "head": table["head"].astype(str),
        "label": [labels.get(str(name), MISSING) for name in table["head"]],
        "target": table["target"],
        "salient steps": [str(int(n)) for n in table["salient_steps"]],
        "changed where salient": [format_percent(v) for v in table["changed_salient"]],
        "changed elsewhere": [format_percent(v) for v in table["changed_other"]],
        f"difference [{level}% CI]": [format_percent_interval(v, lo, hi) for v, lo, hi in
                                      table[["difference", "ci_low", "ci_high"]].itertuples(index=False)],
        "adjusted p": [_p(v) for v in table["p_adjusted"]],
    })
    short = short_head_names([str(name) for name in result.heads["head"]])
    sentences = [
        f"Removing {short.get(str(row['head']), row['head'])} ({labels.get(str(row['head']), MISSING)}) changes "
        "the action in "
        f"{format_percent(row['changed_salient'])} of the steps where its target ({row['target']}) is salient and "
        f"{format_percent(row['changed_other'])} of the others (difference "
        f"{format_percent_interval(row['difference'], row['ci_low'], row['ci_high'])}, "
        f"{p_statement(row['p_adjusted'], 'adjusted p')})."
        for row in table.to_dict(orient="records")]
    return frame, sentences


def ablation_section(result: HSIResult, ablation: Any) -> AblationSection | None:
    """The section from ``ablation`` (an :class:`~hsi_stats.ablation.AblationEffects`, an
    :class:`~hsi_stats.ablation.AblationEpisodes`, a sequence of them, or None for no section)."""
    given = ablation_results(ablation)
    if not given:
        return None
    effects = next((item for item in given if isinstance(item, AblationEffects)), None)
    episodes = next((item for item in given if isinstance(item, AblationEpisodes)), None)
    targeted, sentences = (None, []) if effects is None else _targeted(result, effects)
    return AblationSection(_intro(effects, episodes), _table(result, effects, episodes), targeted, sentences)
