"""The head-function registry (DESIGN 5): ``head_functions.json``, read at inference time by XAI tools.

Top-level keys are head indices as strings (``REGISTRY[str(h)]["name"]`` keeps working), each entry holding the
original keys (``name, description, primary_feature, hsi, correlation, correlation_sign``) and the evidence
(``head, validated, reasons, strength, hsi_ci, correlation_ci, p_value, p_adjusted, stability``); run-level
metadata sits in ``_meta``. Unvalidated labels are written as General Context Heads unless explicitly allowed.
Files are written atomically.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from ._atomic import atomic_write_text
from .catalog import GENERAL_CONTEXT, FeatureCatalog

__all__ = ["build_registry", "write_registry"]

_GENERAL_DESCRIPTION = "No validated specialisation: attends to general context."


def _number(value: Any) -> float | None:
    """JSON-safe float (None for NaN or missing)."""
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _interval(row: Mapping[str, Any], low: str, high: str) -> list[float | None] | None:
    if low not in row or high not in row:
        return None
    return [_number(row[low]), _number(row[high])]


def _entry(row: Mapping[str, Any], catalog: FeatureCatalog, allow_unvalidated: bool) -> dict[str, Any]:
    validated = bool(row.get("validated", False))
    label = str(row["label"])
    reasons = row.get("reasons", "")
    reason_list = [r for r in str(reasons).split("; ") if r] if isinstance(reasons, str) else list(reasons)
    if label != GENERAL_CONTEXT and not validated and not allow_unvalidated:
        reason_list.append(f"label {label!r} not validated: exported as {GENERAL_CONTEXT}")
        label = GENERAL_CONTEXT
    feature = row.get("label_feature") if label != GENERAL_CONTEXT else None
    shown_feature = feature if isinstance(feature, str) else row.get("primary_feature")
    shown_rho = row.get("label_rho") if isinstance(feature, str) else row.get("primary_rho")
    rho = _number(shown_rho)
    return {
        "name": label,
        "description": catalog.meaning(feature).description if isinstance(feature, str) else _GENERAL_DESCRIPTION,
        "primary_feature": shown_feature if isinstance(shown_feature, str) else None,
        "hsi": _number(row["hsi"]),
        "correlation": rho,
        "correlation_sign": None if rho is None else ("positive" if rho > 0 else "negative" if rho < 0 else "zero"),
        "head": str(row["head"]),
        "validated": validated and label != GENERAL_CONTEXT,
        "reasons": reason_list,
        "strength": str(row.get("strength", "general")) if label != GENERAL_CONTEXT else "general",
        "hsi_ci": _interval(row, "ci_low", "ci_high"),
        "correlation_ci": _interval(row, "label_ci_low", "label_ci_high"),
        "p_value": _number(row.get("p_value")),
        "p_adjusted": _number(row.get("p_adjusted")),
        "stability": _number(row.get("stability")),
    }


def build_registry(heads: pd.DataFrame, catalog: FeatureCatalog, *, meta: Mapping[str, Any],
                   allow_unvalidated: bool = False) -> dict[str, Any]:
    """Registry dictionary from a per-head table (one row per head, in head-index order).

    Required columns: ``head, hsi, primary_feature, primary_rho, label, label_feature, label_rho``; optional:
    ``strength, validated, reasons, ci_low, ci_high, label_ci_low, label_ci_high, p_value, p_adjusted,
    stability``.
    """
    records: list[dict[str, Any]] = heads.to_dict(orient="records")  # type: ignore[assignment]
    registry: dict[str, Any] = {str(h): _entry(row, catalog, allow_unvalidated) for h, row in enumerate(records)}
    registry["_meta"] = {**meta, "allow_unvalidated": allow_unvalidated}
    return registry


def write_registry(path: str | os.PathLike[str], registry: Mapping[str, Any]) -> None:
    """Write a registry dictionary as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(registry, indent=2, allow_nan=False) + "\n")
