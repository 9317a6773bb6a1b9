"""Head-function labels: strength bands and the choice of the label's feature (DESIGN 4.4).

This module judges a head's evidence against the feature catalog. The ``label`` it gives is the point-estimate
label (the strongest sign-consistent feature reaching the threshold, as the original analysis labelled heads);
``validated`` says whether every rule of DESIGN 4.4 holds, and ``reasons`` lists the rules that failed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import GENERAL_CONTEXT, FeatureCatalog

__all__ = ["HeadEvidence", "ValidationRules", "judge_head", "label_feature",
           "strength_band"]


def strength_band(value: float) -> str:
    """Interpretation-guide band of an HSI or |rho|: ``> 0.7`` strong, ``0.5-0.7`` moderate, ``0.3-0.5`` weak.

    Examples
    --------
    >>> [strength_band(v) for v in (0.75, 0.6, 0.3, 0.1, float("nan"))]
    ['strong', 'moderate', 'weak', 'general', 'general']
    """
    magnitude = abs(value)
    if magnitude > 0.7:
        return "strong"
    if magnitude >= 0.5:
        return "moderate"
    if magnitude >= 0.3:
        return "weak"
    return "general"


@dataclass(frozen=True)
class LabelChoice:
    """The feature a head would be labelled by, and the stronger sign-inverted relation if any."""

    feature: str | None
    rho: float
    inverted_feature: str | None
    inverted_rho: float


def label_feature(rho_row: np.ndarray, feature_names: tuple[str, ...], catalog: FeatureCatalog) -> LabelChoice:
    """Strongest sign-consistent feature of one head, and the strongest sign-inverted one if it is stronger.

    A feature is sign-consistent when the sign of rho matches the catalog's expected sign (or the catalog says
    ``either``).
    """
    best: tuple[str | None, float] = (None, float("nan"))
    inverted: tuple[str | None, float] = (None, float("nan"))
    for name, value in zip(feature_names, rho_row, strict=True):
        if np.isnan(value):
            continue
        if catalog.meaning(name).sign_matches(float(value)):
            if best[0] is None or abs(value) > abs(best[1]):
                best = (name, float(value))
        elif inverted[0] is None or abs(value) > abs(inverted[1]):
            inverted = (name, float(value))
    if inverted[0] is not None and best[0] is not None and abs(inverted[1]) <= abs(best[1]):
        inverted = (None, float("nan"))
    return LabelChoice(best[0], best[1], inverted[0], inverted[1])


@dataclass(frozen=True)
class ValidationRules:
    """Thresholds of the validation rules of DESIGN 4.4 (defaults as in :func:`hsi_stats.analyze`)."""

    threshold: float = 0.3
    alpha: float = 0.05
    min_stability: float = 0.8
    min_selectivity: float = 0.05
    strict: bool = False

    def __post_init__(self) -> None:
        for name in ("threshold", "alpha", "min_stability", "min_selectivity"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value <= 1.0:
                raise ValueError(f"The value for `{name}` must be a number in [0, 1], but {value!r} was passed.")


@dataclass(frozen=True)
class HeadEvidence:
    """What the rules look at for one head (all for its label feature unless said otherwise)."""

    rho: np.ndarray  # (F,) point estimates
    p_adjusted: np.ndarray  # (F,) adjusted pair p-values
    rho_ci_low: np.ndarray  # (F,)
    rho_ci_high: np.ndarray  # (F,)
    replicates: np.ndarray  # (B, F) bootstrap replicates of rho
    selectivity: float


def _stability_among(replicates: np.ndarray, candidates: list[int], chosen: int) -> tuple[float, int | None]:
    """Share of replicates in which ``chosen`` has the largest |rho| among ``candidates``, and the runner-up."""
    magnitude = np.where(np.isnan(replicates[:, candidates]), -1.0, np.abs(replicates[:, candidates]))
    winners = np.asarray(candidates)[magnitude.argmax(axis=1)]
    counts = np.bincount(winners, minlength=replicates.shape[1])
    share = counts[chosen] / max(len(winners), 1)
    counts[chosen] = 0
    rival = int(counts.argmax()) if counts.max() > 0 else None
    return float(share), rival


def judge_head(evidence: HeadEvidence, feature_names: tuple[str, ...], catalog: FeatureCatalog,
               rules: ValidationRules) -> dict[str, object]:
    """Apply the validation rules to one head: label, strength, validated, reasons and the label's stability.

    The label's feature is the strongest sign-consistent feature; every failed rule adds a reason. A stronger
    sign-inverted relation is named ("also: avoids is_behind") without blocking the label.
    """
    choice = label_feature(evidence.rho, feature_names, catalog)
    reasons: list[str] = []
    # A stronger sign-inverted relation is worth naming only when it would itself reach the threshold.
    if choice.inverted_feature is not None and (choice.feature is None
                                                or abs(choice.inverted_rho) >= rules.threshold):
        expected = catalog.meaning(choice.inverted_feature).sign
        verb = "avoids" if choice.inverted_rho < 0 else "prefers"
        reasons.append(f"sign-inverted: {choice.inverted_feature} rho = {choice.inverted_rho:+.3f}, expected "
                       f"{expected}" if choice.feature is None else
                       f"also: {verb} {choice.inverted_feature} (rho = {choice.inverted_rho:+.3f}, sign-inverted)")
    if choice.feature is None:
        return {"label_feature": None, "label": GENERAL_CONTEXT, "strength": "general", "validated": False,
                "label_stability": float("nan"), "reasons": "; ".join(reasons or ["no feature with a defined rho"])}

    f = feature_names.index(choice.feature)
    magnitude = abs(choice.rho)
    candidates = [i for i, name in enumerate(feature_names)
                  if not np.isnan(evidence.rho[i]) and catalog.meaning(name).sign_matches(float(evidence.rho[i]))]
    primary = int(np.nanargmax(np.abs(evidence.rho)))
    pool = list(range(len(feature_names))) if primary == f else candidates
    stability, rival = _stability_among(evidence.replicates, pool, f)

    if magnitude < rules.threshold:
        reasons.append(f"|rho| = {magnitude:.3f} < threshold {rules.threshold:g}")
    p = float(evidence.p_adjusted[f])
    if not p < rules.alpha:
        reasons.append(f"adjusted p = {p:.3g} >= alpha {rules.alpha:g}")
    if stability < rules.min_stability:
        rival_name = feature_names[rival] if rival is not None else "?"
        reasons.append(f"ambiguous: {choice.feature} vs {rival_name} (stability {stability:.2f} < "
                       f"{rules.min_stability:g})")
    if rules.strict:
        low, high = float(evidence.rho_ci_low[f]), float(evidence.rho_ci_high[f])
        # An undefined endpoint (e.g. a degenerate BCa interval) must fail the rule; min() would drop a NaN.
        bound = (float("nan") if np.isnan(low) or np.isnan(high) else
                 0.0 if low <= 0.0 <= high else min(abs(low), abs(high)))
        if not bound >= rules.threshold:
            reasons.append(f"strict: CI bound nearest zero {bound:.3f} < threshold {rules.threshold:g}")
    if not evidence.selectivity >= rules.min_selectivity:
        reasons.append(f"not selective: selectivity {evidence.selectivity:.3f} < {rules.min_selectivity:g}")

    validated = not any(r for r in reasons if not r.startswith("also:"))
    label = catalog.meaning(choice.feature).label if magnitude >= rules.threshold else GENERAL_CONTEXT
    return {
        "label_feature": choice.feature,
        "label": label,
        "strength": strength_band(magnitude) if label != GENERAL_CONTEXT else "general",
        "validated": validated,
        "label_stability": stability,
        "reasons": "; ".join(reasons),
    }
