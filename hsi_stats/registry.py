"""The head-function registry: ``head_functions.json``, read at inference time by XAI tools.

Top-level keys are head indices as strings (``REGISTRY[str(h)]["name"]`` keeps working), each entry holding the
original keys (``name, description, primary_feature, hsi, correlation, correlation_sign``) and the evidence
(``head, validated, reasons, strength, hsi_ci, correlation_ci, p_value, p_adjusted, stability``, the focus of the
same feature ``focus, focus_ci, focus_target``, plus the head-level ``hsi_p_value, hsi_p_adjusted``) and, for a
labelled head, what a run-time explanation quotes (``agreement``: how often its top entity was its label's target
in the analysis data, with an interval and the chance rate; ``concentration_percentiles``: the percentiles 0..100
of its top entity's share of attention) and, with the joint model, each head's ``profile`` and ``joint`` block
(coefficients with intervals and adjusted p-values, and the agreement with the entity the joint model predicts);
given ablation results, each head's ``ablation`` block (what removing it did to the policy, open and closed loop,
and where its label's target is salient); run-level metadata sits in ``_meta``. Unvalidated labels are written as
General Context Heads unless explicitly allowed. Files are written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ._atomic import atomic_write_text
from ._validation import HSIDataError
from .agreement import LabelAgreement, LabelTarget
from .catalog import GENERAL_CONTEXT, FeatureCatalog
from .labels import described_feature

__all__ = ["ablation_entries", "agreement_entry", "build_registry", "described_pair", "joint_entry", "judged_reasons",
           "write_registry"]

_GENERAL_DESCRIPTION = "No validated specialisation: attends to general context."


def _number(value: Any) -> float | None:
    """JSON-safe float (None for NaN or missing)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def described_pair(head: Mapping[Any, Any], pairs: pd.DataFrame,
                   label: str) -> tuple[str | None, dict[str, Any], float]:
    """The feature that describes a head shown with ``label``, its row of ``pairs`` and the matching stability.

    The feature is :func:`~hsi_stats.labels.described_feature`; the stability is the label's (its feature stays
    the strongest among the sign-consistent ones) for a labelled head, else the primary feature's. Every view
    that shows one feature per head (the registry, the report's tables) reads it here, so that they agree.
    """
    feature = described_feature(label, head.get("label_feature"), head.get("primary_feature"))
    match = pairs[(pairs["head"] == head["head"]) & (pairs["feature"] == feature)] if feature else pairs.iloc[:0]
    pair: dict[str, Any] = {str(k): v for k, v in match.iloc[0].items()} if len(match) else {}
    stability = head.get("label_stability") if label != GENERAL_CONTEXT else head.get("primary_stability")
    return feature, pair, float("nan") if stability is None else float(stability)


def judged_reasons(head: Mapping[Any, Any], feature: str | None) -> str:
    """The head's ``reasons``, saying which feature they judge when it is not the ``feature`` shown beside them.

    The rules judge the label's candidate (the strongest feature with the expected sign); a General Context Head
    is shown with its primary feature, which can be another one.

    Examples
    --------
    >>> judged_reasons({"label_feature": "is_ahead", "reasons": "|rho| = 0.026 < threshold 0.3"}, "is_left")
    'label candidate is_ahead: |rho| = 0.026 < threshold 0.3'
    """
    reasons = str(head.get("reasons") or "")
    candidate = head.get("label_feature")
    if reasons and isinstance(candidate, str) and candidate != feature:
        return f"label candidate {candidate}: {reasons}"
    return reasons


def agreement_entry(found: LabelAgreement | None) -> dict[str, Any] | None:
    """The registry's ``agreement`` block of a labelled head (None for a head without a label)."""
    if found is None:
        return None
    target = found.target
    described = ({"feature": target.feature, "direction": target.direction, "indicator": target.indicator}
                 if isinstance(target, LabelTarget) else {})
    return {"target": target.words, **described, "rate": _number(found.rate),
            "ci": [_number(found.ci_low), _number(found.ci_high)], "confidence_level": found.confidence_level,
            "chance": _number(found.chance), "n_scenarios": found.n_scenarios}


def joint_entry(rows: pd.DataFrame | None, profile: object, agreement: LabelAgreement | None,
                alpha: float) -> dict[str, Any] | None:
    """The registry's ``joint`` block of a head: its fit, profile, coefficients (``in_profile``: adjusted p <
    ``alpha``, the effects its prediction uses) and, for a labelled head, how often its top entity was the one its
    joint model predicts (None without the joint model)."""
    if rows is None or not len(rows):
        return None
    coefficients = [{"feature": str(row["feature"]), "coef": _number(row["coef"]),
                     "ci": [_number(row["ci_low"]), _number(row["ci_high"])], "odds_ratio": _number(row["odds_ratio"]),
                     "p_value": _number(row["p_value"]), "p_adjusted": _number(row["p_adjusted"]),
                     "scale": str(row["scale"]), "in_profile": bool(row["p_adjusted"] < alpha)}
                    for row in rows.to_dict(orient="records")]
    return {"fit": str(rows["fit"].iloc[0]), "profile": profile if isinstance(profile, str) else None,
            "coefficients": coefficients, "agreement": agreement_entry(agreement)}


def _interval(row: Mapping[Any, Any], prefix: str) -> list[float | None]:
    return [_number(row[f"{prefix}ci_low"]), _number(row[f"{prefix}ci_high"])]


def _open_loop(row: Mapping[Any, Any], effects: Any) -> dict[str, Any]:
    return {"mode": effects.mode, "changed": _number(row["changed"]), "changed_ci": _interval(row, "changed_"),
            "tv": _number(row["tv"]), "tv_ci": _interval(row, "tv_"), "confidence_level": effects.confidence_level,
            "n_steps": int(next(iter(effects.changed.values())).size), "n_episodes": effects.n_groups}


def _targeted(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {"feature": str(row["label"]), "target": str(row["target"]), "salient_steps": int(row["salient_steps"]),
            "changed_salient": _number(row["changed_salient"]), "changed_other": _number(row["changed_other"]),
            "difference": _number(row["difference"]), "difference_ci": _interval(row, ""),
            "p_value": _number(row["p_value"]), "p_adjusted": _number(row["p_adjusted"])}


def _closed_loop(row: Mapping[Any, Any], episodes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"mode": episodes.mode, "n_episodes": len(episodes.returns),
                             "confidence_level": episodes.confidence_level}
    for key in ("return", "crash"):
        found.update({f"{key}_delta": _number(row[f"{key}_delta"]),
                      f"{key}_delta_ci": _interval(row, f"{key}_delta_"),
                      f"{key}_p_value": _number(row[f"{key}_p_value"]),
                      f"{key}_p_adjusted": _number(row[f"{key}_p_adjusted"])})
    return found


def ablation_entries(ablation: Any, heads: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The registry's ``ablation`` block of each head, and the named sets of heads, from ablation results.

    ``ablation`` is an :class:`~hsi_stats.ablation.AblationEffects` (open loop, with the targeted comparison when
    it was made), an :class:`~hsi_stats.ablation.AblationEpisodes` (closed loop) or a sequence of them; ``heads``
    the result's head names, which the ablation's rows must use. A head's block holds ``open_loop`` (``changed``
    and ``tv`` with intervals), ``targeted`` (the share of changed actions where its label's target is salient
    against the other steps) and ``closed_loop`` (paired differences of return and crash rate with intervals and
    adjusted p-values), each None when not measured; sets of heads removed together go to ``_meta``.
    """
    from .ablation import AblationEffects, ablation_results

    given = ablation_results(ablation)
    blocks: dict[str, dict[str, Any]] = {}
    sets: dict[str, Any] = {}

    def block(name: str) -> dict[str, Any]:
        if name in heads:
            return blocks.setdefault(name, {"open_loop": None, "targeted": None, "closed_loop": None})
        return sets.setdefault(name, {"open_loop": None, "closed_loop": None})

    for item in given:
        if isinstance(item, AblationEffects):
            for row in item.table.to_dict(orient="records"):
                name = str(row["head"])
                block(name)["open_loop"] = _open_loop(row, item)
                if name in sets:
                    sets[name]["heads"] = list(item.conditions.get(name, ()))
            for row in ([] if item.targeted is None else item.targeted.to_dict(orient="records")):
                block(str(row["head"]))["targeted"] = _targeted(row)
        else:
            for row in item.table[item.table["head"] != "none"].to_dict(orient="records"):
                block(str(row["head"]))["closed_loop"] = _closed_loop(row, item)
    if given and not blocks:
        raise HSIDataError(f"the ablation results name no head of the analysis: they name {list(sets)[:8]}, the "
                           f"analysis {list(heads)[:8]} (record and ablate the same model, so that both name heads "
                           "as the recorder does).")
    return blocks, sets


def _entry(head: Mapping[str, Any], pairs: pd.DataFrame, catalog: FeatureCatalog,
           allow_unvalidated: bool, agreement: LabelAgreement | None, joint: pd.DataFrame | None,
           joint_agreement: LabelAgreement | None, alpha: float,
           ablation: dict[str, Any] | None) -> dict[str, Any]:
    """One head's registry entry; the pair-level fields all describe the same feature.

    That feature is the label's feature for a labelled head, else the primary feature.
    """
    validated = bool(head.get("validated", False))
    label = str(head["label"])
    reasons = [r for r in str(head.get("reasons") or "").split("; ") if r]
    if label != GENERAL_CONTEXT and not validated and not allow_unvalidated:
        reasons.append(f"label {label!r} not validated: exported as {GENERAL_CONTEXT}")
        label = GENERAL_CONTEXT
    labelled = label != GENERAL_CONTEXT
    feature, pair, stability = described_pair(head, pairs, label)
    rho = _number(pair.get("rho"))
    return {
        "name": label,
        "description": catalog.meaning(feature).description if labelled and feature else _GENERAL_DESCRIPTION,
        "primary_feature": feature,
        "hsi": _number(head["hsi"]),
        "correlation": rho,
        "correlation_sign": None if rho is None else ("positive" if rho > 0 else "negative" if rho < 0 else "zero"),
        "head": str(head["head"]),
        "validated": validated and labelled,
        "reasons": reasons,
        "strength": str(head.get("strength", "general")) if labelled else "general",
        "hsi_ci": [_number(head.get("ci_low")), _number(head.get("ci_high"))],
        "correlation_ci": [_number(pair.get("ci_low")), _number(pair.get("ci_high"))],
        "p_value": _number(pair.get("p_value")),
        "p_adjusted": _number(pair.get("p_adjusted")),
        "stability": _number(stability),
        "focus": _number(pair.get("focus")),
        "focus_ci": [_number(pair.get("focus_ci_low")), _number(pair.get("focus_ci_high"))],
        "focus_target": pair.get("focus_target"),
        "hsi_p_value": _number(head.get("hsi_p_value")),
        "hsi_p_adjusted": _number(head.get("hsi_p_adjusted")),
        "agreement": agreement_entry(agreement) if labelled else None,
        "concentration_percentiles": list(agreement.concentration) if labelled and agreement else None,
        "profile": head.get("profile") if isinstance(head.get("profile"), str) else None,
        "joint": joint_entry(None if joint is None else joint[joint["head"] == head["head"]], head.get("profile"),
                             joint_agreement if labelled else None, alpha),
        "ablation": ablation,
    }


def build_registry(heads: pd.DataFrame, pairs: pd.DataFrame, catalog: FeatureCatalog, *, meta: Mapping[str, Any],
                   allow_unvalidated: bool = False, agreement: Mapping[int, LabelAgreement] | None = None,
                   joint: pd.DataFrame | None = None,
                   joint_agreement: Mapping[int, LabelAgreement] | None = None,
                   ablation: Any = None) -> dict[str, Any]:
    """Registry dictionary from the per-head and per-pair tables of a result (heads in head-index order).

    ``correlation``, ``correlation_ci``, ``p_value``, ``p_adjusted`` and ``stability`` describe the feature named
    in ``primary_feature``: the label's feature when the head keeps its label, else the feature of largest |rho|.
    ``hsi``, ``hsi_ci``, ``hsi_p_value`` and ``hsi_p_adjusted`` describe the head-level HSI test.
    ``agreement`` and ``concentration_percentiles`` (:mod:`hsi_stats.agreement`, by head index) are what a run-time
    explanation quotes for each labelled head. With the joint model (``joint``, :attr:`HSIResult.joint`), every
    head has its ``profile`` and a ``joint`` block (fit, profile, coefficients, and for a labelled head the
    agreement with the entity its joint model predicts, from ``joint_agreement``). With ``ablation`` (results of
    :mod:`hsi_stats.ablation`), every head has an ``ablation`` block (:func:`ablation_entries`; None for a head
    not removed) and ``_meta["ablation_sets"]`` the named sets of heads removed together.
    """
    records: list[dict[str, Any]] = heads.to_dict(orient="records")  # type: ignore[assignment]
    found, joint_found = agreement or {}, joint_agreement or {}
    alpha = float(meta.get("settings", {}).get("alpha", 0.05))
    blocks, sets = ablation_entries(ablation, [str(row["head"]) for row in records])
    registry: dict[str, Any] = {str(h): _entry(row, pairs, catalog, allow_unvalidated, found.get(h), joint,
                                               joint_found.get(h), alpha, blocks.get(str(row["head"])))
                                for h, row in enumerate(records)}
    registry["_meta"] = {**meta, "allow_unvalidated": allow_unvalidated}
    if ablation is not None:
        registry["_meta"]["ablation_sets"] = sets
    return registry


def write_registry(path: str | os.PathLike[str], registry: Mapping[str, Any]) -> None:
    """Write a registry dictionary as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(registry, indent=2, allow_nan=False) + "\n")
