"""The head-function registry (DESIGN 5): ``head_functions.json``, read at inference time by XAI tools.

Top-level keys are head indices as strings (``REGISTRY[str(h)]["name"]`` keeps working), each entry holding the
original keys (``name, description, primary_feature, hsi, correlation, correlation_sign``) and the evidence
(``head, validated, reasons, strength, hsi_ci, correlation_ci, p_value, p_adjusted, stability``, the focus of the
same feature ``focus, focus_ci, focus_target``, plus the head-level ``hsi_p_value, hsi_p_adjusted``) and, for a
labelled head, what a run-time explanation quotes (``agreement``: how often its top entity was its label's target
in the analysis data, with an interval and the chance rate; ``concentration_percentiles``: the percentiles 0..100
of its top entity's share of attention); run-level metadata sits in ``_meta``. Unvalidated labels are written as
General Context Heads unless explicitly allowed. Files are written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ._atomic import atomic_write_text
from .agreement import LabelAgreement
from .catalog import GENERAL_CONTEXT, FeatureCatalog
from .labels import described_feature

__all__ = ["agreement_entry", "build_registry", "described_pair", "judged_reasons", "write_registry"]

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
    return {"target": target.words, "feature": target.feature, "direction": target.direction,
            "indicator": target.indicator, "rate": _number(found.rate), "ci": [_number(found.ci_low),
                                                                              _number(found.ci_high)],
            "confidence_level": found.confidence_level, "chance": _number(found.chance),
            "n_scenarios": found.n_scenarios}


def _entry(head: Mapping[str, Any], pairs: pd.DataFrame, catalog: FeatureCatalog,
           allow_unvalidated: bool, agreement: LabelAgreement | None) -> dict[str, Any]:
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
    }


def build_registry(heads: pd.DataFrame, pairs: pd.DataFrame, catalog: FeatureCatalog, *, meta: Mapping[str, Any],
                   allow_unvalidated: bool = False,
                   agreement: Mapping[int, LabelAgreement] | None = None) -> dict[str, Any]:
    """Registry dictionary from the per-head and per-pair tables of a result (heads in head-index order).

    ``correlation``, ``correlation_ci``, ``p_value``, ``p_adjusted`` and ``stability`` describe the feature named
    in ``primary_feature``: the label's feature when the head keeps its label, else the feature of largest |rho|.
    ``hsi``, ``hsi_ci``, ``hsi_p_value`` and ``hsi_p_adjusted`` describe the head-level HSI test.
    ``agreement`` and ``concentration_percentiles`` (:mod:`hsi_stats.agreement`, by head index) are what a run-time
    explanation quotes for each labelled head.
    """
    records: list[dict[str, Any]] = heads.to_dict(orient="records")  # type: ignore[assignment]
    found = agreement or {}
    registry: dict[str, Any] = {str(h): _entry(row, pairs, catalog, allow_unvalidated, found.get(h))
                                for h, row in enumerate(records)}
    registry["_meta"] = {**meta, "allow_unvalidated": allow_unvalidated}
    return registry


def write_registry(path: str | os.PathLike[str], registry: Mapping[str, Any]) -> None:
    """Write a registry dictionary as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(registry, indent=2, allow_nan=False) + "\n")
