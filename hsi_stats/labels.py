"""Head-function labels: strength bands, the choice of the label's feature and the verdict of the validation rules.

This module judges a head's evidence against the feature catalog and the validation rules of an
:class:`~hsi_stats.settings.AnalysisSettings`. The ``label`` it gives is the point-estimate label (the strongest
sign-consistent feature reaching the threshold, as the original analysis labelled heads); ``validated`` says
whether every rule holds, and the :class:`Verdict` keeps the rules that failed apart from remarks that block
nothing. The strength bands and the feature a head's numbers describe are defined here, once, for every output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .catalog import GENERAL_CONTEXT, FeatureCatalog
from .estimators import rho_strength
from .inference.bootstrap import strongest_share
from .inference.resampling import TIE_TOLERANCE
from .joint.design import LeftOutColumn
from .profiles import Conditional, conditional_evidence, conditional_failure
from .settings import AnalysisSettings

__all__ = ["STRENGTH_BANDS", "HeadEvidence", "StrengthBand", "Verdict", "described_feature", "judge_head",
           "label_feature", "strength_band", "strength_bands_text"]


@dataclass(frozen=True)
class StrengthBand:
    """A band of the interpretation guide: |value| above ``lower`` (or equal, when ``inclusive``) is ``name``."""

    name: str
    lower: float
    inclusive: bool

    def contains(self, magnitude: float) -> bool:
        return magnitude >= self.lower if self.inclusive else magnitude > self.lower


#: The interpretation guide's bands of an HSI or |rho|, strongest first; below the last one a head is "general".
STRENGTH_BANDS: tuple[StrengthBand, ...] = (StrengthBand("strong", 0.7, inclusive=False),
                                            StrengthBand("moderate", 0.5, inclusive=True),
                                            StrengthBand("weak", 0.3, inclusive=True))


def strength_band(value: float) -> str:
    """Interpretation-guide band of an HSI or |rho| (:data:`STRENGTH_BANDS`): strong, moderate, weak or general.

    Examples
    --------
    >>> [strength_band(v) for v in (0.75, 0.6, 0.3, 0.1, float("nan"))]
    ['strong', 'moderate', 'weak', 'general', 'general']
    """
    magnitude = abs(value)
    return next((band.name for band in STRENGTH_BANDS if band.contains(magnitude)), "general")


def strength_bands_text() -> str:
    """The bands in words, for methods texts and captions.

    Examples
    --------
    >>> strength_bands_text()
    '> 0.7 strong, 0.5-0.7 moderate, 0.3-0.5 weak'
    """
    parts, upper = [], None
    for band in STRENGTH_BANDS:
        parts.append(f"> {band.lower:g} {band.name}" if upper is None else f"{band.lower:g}-{upper:g} {band.name}")
        upper = band.lower
    return ", ".join(parts)


def described_feature(label: str, label_feature: object, primary_feature: object) -> str | None:
    """The feature a head's rho, interval, p-value and stability describe wherever one feature is shown per head.

    A head with a head-function label is described by its label's feature; a General Context Head by its
    primary feature (largest |rho|). Used by the registry and every table, so that they agree.

    Examples
    --------
    >>> described_feature("Traffic Flow Head", "is_ahead", "is_behind"), described_feature(GENERAL_CONTEXT, "ttc", "x")
    ('is_ahead', 'x')
    """
    feature = label_feature if label != GENERAL_CONTEXT else primary_feature
    return feature if isinstance(feature, str) else None


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
    strength = rho_strength(np.asarray(rho_row, dtype=float))  # |rho| equal to rounding: the earlier feature
    best_strength = inverted_strength = -1.0
    for name, value, key in zip(feature_names, rho_row, strength, strict=True):
        if np.isnan(value):
            continue
        if catalog.meaning(name).sign_matches(float(value)):
            if best[0] is None or key > best_strength:
                best, best_strength = (name, float(value)), key
        elif inverted[0] is None or key > inverted_strength:
            inverted, inverted_strength = (name, float(value)), key
    if inverted[0] is not None and best[0] is not None and inverted_strength <= best_strength:
        inverted = (None, float("nan"))
    return LabelChoice(best[0], best[1], inverted[0], inverted[1])


@dataclass(frozen=True)
class HeadEvidence:
    """What the rules look at for one head (all for its label feature unless said otherwise)."""

    rho: np.ndarray  # (F,) point estimates
    p_adjusted: np.ndarray  # (F,) adjusted pair p-values
    rho_ci_low: np.ndarray  # (F,)
    rho_ci_high: np.ndarray  # (F,)
    replicates: np.ndarray  # (B, F) bootstrap replicates of rho
    selectivity: float
    joint_rows: pd.DataFrame | None = None  # the head's rows of the joint model, when fitted
    left_out: tuple[LeftOutColumn, ...] = ()  # the columns the joint model left out


@dataclass(frozen=True)
class Verdict:
    """The judgement of one head.

    Attributes
    ----------
    label_feature : str or None
        The strongest sign-consistent feature (None when no feature has a defined rho of the expected sign).
    label : str
        Its catalog label when |rho| reaches the threshold, else "General Context Head".
    strength : str
        Band of |rho| of the label's feature (:func:`strength_band`); "general" without a label.
    label_stability : float
        Share of bootstrap resamples in which the label's feature stays the strongest (NaN without one).
    failures : tuple of str
        The rules that failed, each with its numbers; the head is validated exactly when there is none.
    remarks : tuple of str
        What is worth knowing but blocks nothing (a stronger sign-inverted relation: "also: avoids ...").
    conditional : Conditional or None
        The joint model's evidence for the label's feature (None without the joint model or a label feature).
    """

    label_feature: str | None
    label: str
    strength: str
    label_stability: float
    failures: tuple[str, ...]
    remarks: tuple[str, ...] = ()
    conditional: Conditional | None = None

    @property
    def validated(self) -> bool:
        """True when every rule holds."""
        return not self.failures

    @property
    def reasons(self) -> str:
        """Remarks then failed rules, joined by "; " (the ``reasons`` column and registry key)."""
        return "; ".join((*self.remarks, *self.failures))

    def as_row(self) -> Mapping[str, Any]:
        """The verdict's columns of :attr:`hsi_stats.HSIResult.heads`."""
        found = self.conditional
        joint: dict[str, Any] = {"label_joint_feature": None, "label_joint_or": np.nan, "label_joint_ci_low": np.nan,
                                 "label_joint_ci_high": np.nan, "label_joint_p_adjusted": np.nan}
        if found is not None and found.judged_on is not None:
            bounds = sorted((found.sign * found.ci_low, found.sign * found.ci_high))
            joint = {"label_joint_feature": found.judged_on, "label_joint_or": float(np.exp(found.effect)),
                     "label_joint_ci_low": float(np.exp(bounds[0])), "label_joint_ci_high": float(np.exp(bounds[1])),
                     "label_joint_p_adjusted": found.p_adjusted}
        return {"label_feature": self.label_feature, "label": self.label, "strength": self.strength,
                "validated": self.validated, "reasons": self.reasons, "label_stability": self.label_stability,
                **joint}


def _stability_among(replicates: np.ndarray, candidates: list[int], chosen: int) -> tuple[float, int | None]:
    """Share of replicates in which ``chosen`` is the strongest among ``candidates`` (ties to rounding included,
    :func:`~hsi_stats.inference.bootstrap.strongest_share`), and the feature that most often beats it."""
    allowed = np.zeros((1, replicates.shape[1]), dtype=bool)
    allowed[0, candidates] = True
    share = float(strongest_share(replicates[:, None, :], np.array([chosen]), allowed)[0])
    magnitude = np.where(np.isnan(replicates) | ~allowed, -1.0, np.abs(replicates))
    magnitude[:, chosen] = -1.0
    best_other = magnitude.max(axis=1)
    mine = np.nan_to_num(np.abs(replicates[:, chosen]), nan=-1.0)
    beaten = mine < best_other - TIE_TOLERANCE * best_other
    counts = np.bincount(magnitude[beaten].argmax(axis=1), minlength=replicates.shape[1])
    rival = int(counts.argmax()) if counts.max() > 0 else None
    return share, rival


def judge_head(evidence: HeadEvidence, feature_names: tuple[str, ...], catalog: FeatureCatalog,
               rules: AnalysisSettings) -> Verdict:
    """Apply the validation rules of ``rules`` (``threshold, alpha, min_stability, min_selectivity, strict``).

    The label's feature is the strongest sign-consistent feature; every failed rule is a failure with its numbers.
    With the joint model's evidence (``evidence.conditional``) the label's feature must also have a conditional
    effect in the catalog's direction (:func:`hsi_stats.profiles.conditional_failure`).
    A stronger sign-inverted relation is a remark ("also: avoids is_behind") that does not block the label.
    """
    choice = label_feature(evidence.rho, feature_names, catalog)
    remarks: list[str] = []
    # A stronger sign-inverted relation is worth naming only when it would itself reach the threshold.
    if choice.inverted_feature is not None and (choice.feature is None
                                                or abs(choice.inverted_rho) >= rules.threshold):
        if choice.feature is None:
            expected = catalog.meaning(choice.inverted_feature).sign
            return Verdict(None, GENERAL_CONTEXT, "general", float("nan"),
                           (f"sign-inverted: {choice.inverted_feature} rho = {choice.inverted_rho:+.3f}, expected "
                            f"{expected}",))
        verb = "avoids" if choice.inverted_rho < 0 else "prefers"
        remarks.append(f"also: {verb} {choice.inverted_feature} (rho = {choice.inverted_rho:+.3f}, sign-inverted)")
    if choice.feature is None:
        return Verdict(None, GENERAL_CONTEXT, "general", float("nan"), ("no feature with a defined rho",))

    f = feature_names.index(choice.feature)
    magnitude = abs(choice.rho)
    candidates = [i for i, name in enumerate(feature_names)
                  if not np.isnan(evidence.rho[i]) and catalog.meaning(name).sign_matches(float(evidence.rho[i]))]
    primary = int(rho_strength(np.asarray(evidence.rho, dtype=float)).argmax())
    pool = list(range(len(feature_names))) if primary == f else candidates
    stability, rival = _stability_among(evidence.replicates, pool, f)

    failures: list[str] = []
    if magnitude < rules.threshold:
        failures.append(f"|rho| = {magnitude:.3f} < threshold {rules.threshold:g}")
    p = float(evidence.p_adjusted[f])
    if not p < rules.alpha:
        failures.append(f"adjusted p = {p:.3g} >= alpha {rules.alpha:g}")
    if stability < rules.min_stability:
        rival_name = feature_names[rival] if rival is not None else "?"
        failures.append(f"ambiguous: {choice.feature} vs {rival_name} (stability {stability:.2f} < "
                        f"{rules.min_stability:g})")
    if rules.strict:
        low, high = float(evidence.rho_ci_low[f]), float(evidence.rho_ci_high[f])
        # An undefined endpoint (e.g. a degenerate BCa interval) must fail the rule; min() would drop a NaN.
        bound = (float("nan") if np.isnan(low) or np.isnan(high) else
                 0.0 if low <= 0.0 <= high else min(abs(low), abs(high)))
        if not bound >= rules.threshold:
            failures.append(f"strict: CI bound nearest zero {bound:.3f} < threshold {rules.threshold:g}")
    if not evidence.selectivity >= rules.min_selectivity:
        failures.append(f"not selective: selectivity {evidence.selectivity:.3f} < {rules.min_selectivity:g}")
    conditional = None
    if evidence.joint_rows is not None:
        conditional = conditional_evidence(choice.feature, evidence.joint_rows, evidence.left_out, rules.alpha)
        reason = conditional_failure(conditional, catalog.meaning(choice.feature), rules.alpha)
        if reason is not None and magnitude >= rules.threshold:  # it decides a label, not the lack of one
            failures.append(reason)

    label = catalog.meaning(choice.feature).label if magnitude >= rules.threshold else GENERAL_CONTEXT
    return Verdict(choice.feature, label, strength_band(magnitude) if label != GENERAL_CONTEXT else "general",
                   stability, tuple(failures), tuple(remarks), conditional)
