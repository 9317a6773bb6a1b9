r"""The evidence a run-time explanation quotes: how often a head's most-attended entity is its label's target, and
how concentrated its attention usually is.

For a labelled head h judged on feature f in direction d, the *targets* of a scenario are those of the focus
(:func:`hsi_stats.focus.target_entities`: the flagged entities of an indicator, else the most extreme value in
direction d, ties included). With :math:`p` the head's attention renormalised over the :math:`n` entities valid
for f, its top entity :math:`t = \arg\max_v p_v` and :math:`k` targets, a scenario counts when :math:`n \ge 2`,
:math:`0 < k < n` and the attention there is not all zero (the rule of the focus). Then

- the **agreement rate** is the share of counted scenarios in which :math:`t` is a target,
  :math:`\hat a = \sum_g A_g / \sum_g N_g` over groups (episodes) g, with the clustered Wilson interval of
  :func:`hsi_stats.inference.rates.clustered_rate_interval` (a rate of 100% gets an interval below it, not
  [100%, 100%]), and
- its **chance rate** is the mean of :math:`k/n`: the agreement of a head whose top entity is drawn at random;
- the **concentration** of a scenario is the top share :math:`p_t`; the registry keeps its percentiles 0..100
  over the counted scenarios, against which an explanation places a new step.

With the joint model (:mod:`hsi_stats.joint`), a head has a second predicted target: the entity of highest fitted
attention :math:`\arg\max_v \hat\beta^\top z_v` among the entities with every feature of the fit
(:class:`JointTarget`); its agreement and chance rates are defined the same way.

References
----------
E. B. Wilson (1927). Probable inference, the law of succession, and statistical inference. JASA 22(158), 209-212.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .chunks import Chunk, ChunkSource, accumulate
from .data import HSIDataset
from .focus import target_entities
from .group_sums import GroupTotals
from .inference.rates import clustered_rate_interval
from .joint.design import fitted_targets

__all__ = ["JOINT_TARGET_WORDS", "PERCENTILES", "JointTarget", "LabelAgreement", "LabelTarget", "label_agreement",
           "target_words", "top_entities"]

#: The percentiles of the concentration kept per head (0, 1, ..., 100).
PERCENTILES = np.arange(101, dtype=float)
FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class LabelTarget:
    """What a labelled head's label predicts it attends: the targets of ``feature`` in ``direction``."""

    head: int
    feature: str
    direction: int  # +1: the highest value (or the flagged entities); -1: the lowest (or the unflagged)
    indicator: bool

    @property
    def words(self) -> str:
        """``"lowest ttc"``, ``"flagged by is_left"``..."""
        return target_words(self.feature, self.direction, self.indicator)

    def entities(self, features: Mapping[str, FloatArray], mask: NDArray[np.bool_]) -> tuple[NDArray[np.bool_],
                                                                                            NDArray[np.bool_]]:
        """The targets of each scenario (S, V) and the entities they are chosen among (valid for the feature)."""
        values = features[self.feature]
        valid = mask & ~np.isnan(values)
        return target_entities(values, valid, self.indicator, self.direction), valid


@dataclass(frozen=True)
class JointTarget:
    """What a head's joint model predicts it attends: the entity of highest fitted attention
    (:func:`hsi_stats.joint.design.fitted_targets`), from its coefficients ``(feature, coefficient, indicator)``."""

    head: int
    coefficients: tuple[tuple[str, float, bool], ...]

    @property
    def words(self) -> str:
        return JOINT_TARGET_WORDS

    def entities(self, features: Mapping[str, FloatArray], mask: NDArray[np.bool_]) -> tuple[NDArray[np.bool_],
                                                                                            NDArray[np.bool_]]:
        return fitted_targets(features, mask, self.coefficients)


#: How the joint model's predicted entity is named.
JOINT_TARGET_WORDS = "highest fitted attention under the joint model"


def target_words(feature: str, direction: int, indicator: bool) -> str:
    """The target in words.

    >>> target_words("ttc", -1, False), target_words("is_left", 1, True)
    ('lowest ttc', 'flagged by is_left')
    """
    if indicator:
        return f"{'flagged' if direction > 0 else 'not flagged'} by {feature}"
    return f"{'highest' if direction > 0 else 'lowest'} {feature}"


@dataclass(frozen=True)
class LabelAgreement:
    """The agreement of one labelled head with its label's target on the analysis data, and its concentration."""

    target: LabelTarget | JointTarget
    n_scenarios: int
    rate: float
    ci_low: float
    ci_high: float
    chance: float
    confidence_level: float
    concentration: tuple[float, ...]  # the percentiles PERCENTILES of the top share


def top_entities(attention: FloatArray, valid: NDArray[np.bool_]) -> tuple[NDArray[np.intp], FloatArray, FloatArray]:
    """Each head's most-attended valid entity, its share of the valid attention and the valid total.

    ``attention`` (S, H, V) is attention mass (its magnitude counts); ``valid`` (S, V). Ties go to the first
    entity; a scenario with no valid entity or no attention has share NaN.

    >>> import numpy as np
    >>> top, share, total = top_entities(np.array([[[0.2, 0.5, 0.3]]]), np.array([[True, True, True]]))
    >>> int(top[0, 0]), float(share[0, 0])
    (1, 0.5)
    """
    magnitude = np.abs(attention)
    mass = np.where(valid[:, None, :], magnitude, -np.inf)
    top = mass.argmax(axis=2)
    total = np.where(valid[:, None, :], magnitude, 0.0).sum(axis=2)
    best = mass.max(axis=2)  # the value at ``top``
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, best / np.where(total > 0, total, 1.0), np.nan)
    return top, share, total


class _AgreementReduction:
    """Per group: scenarios counted, agreements and chance rates; and every counted scenario's top share."""

    def __init__(self, n_groups: int, targets: Sequence[LabelTarget | JointTarget]) -> None:
        self.targets = tuple(targets)
        self.totals = GroupTotals(n_groups)
        self.shares: list[list[FloatArray]] = [[] for _ in self.targets]

    def add(self, chunk: Chunk) -> None:
        grouping = chunk.grouping()
        for i, target in enumerate(self.targets):
            chosen, valid = target.entities(chunk.features, chunk.mask)
            top, share, total = top_entities(chunk.attention[:, target.head:target.head + 1, :], valid)
            n, k = valid.sum(axis=1), chosen.sum(axis=1)
            counted = (n >= 2) & (k > 0) & (k < n) & (total[:, 0] > 0)
            agree = np.take_along_axis(chosen, top, axis=1)[:, 0] & counted
            with np.errstate(divide="ignore", invalid="ignore"):
                chance = np.where(counted, k / np.maximum(n, 1), 0.0)
            self.totals.add(("counted", i), grouping, grouping.sum(counted.astype(float)))
            self.totals.add(("agree", i), grouping, grouping.sum(agree.astype(float)))
            self.totals.add(("chance", i), grouping, grouping.sum(chance))
            self.shares[i].append(share[counted, 0])

    def merge(self, other: _AgreementReduction) -> None:
        self.totals.merge(other.totals)
        for mine, theirs in zip(self.shares, other.shares, strict=True):
            mine.extend(theirs)


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def label_agreement(dataset: HSIDataset | ChunkSource, targets: Sequence[LabelTarget | JointTarget], *,
                    confidence_level: float = 0.95) -> list[LabelAgreement]:
    """The agreement rate (with its clustered Wilson interval), chance rate and concentration percentiles of each
    labelled head of ``targets`` on ``dataset`` (one pass over the data). A :class:`JointTarget` measures the same
    for the entity the head's joint model predicts.

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset
    >>> ttc = np.array([[1.0, 4.0, 9.0], [5.0, 2.0, 3.0]] * 6)
    >>> attention = np.array([[[0.8, 0.1, 0.1]], [[0.1, 0.1, 0.8]]] * 6)  # on the lowest TTC in half the scenarios
    >>> found, = label_agreement(HSIDataset(attention, {"ttc": ttc}), [LabelTarget(0, "ttc", -1, False)])
    >>> found.rate, round(found.chance, 3), found.concentration[50]
    (0.5, 0.333, 0.8)
    """
    reduction = accumulate(dataset, _AgreementReduction(dataset.n_groups, targets))
    found = []
    for i, target in enumerate(targets):
        counted, agree, chance = (reduction.totals[(name, i)] for name in ("counted", "agree", "chance"))
        rate, low, high = clustered_rate_interval(agree, counted, confidence_level=confidence_level)
        shares = np.concatenate(reduction.shares[i]) if reduction.shares[i] else np.array([])
        found.append(LabelAgreement(
            target=target, n_scenarios=int(counted.sum()), rate=float(rate), ci_low=float(low), ci_high=float(high),
            chance=float(_ratio(chance.sum(), counted.sum())), confidence_level=float(confidence_level),
            concentration=tuple(float(v) for v in np.percentile(shares, PERCENTILES)) if shares.size else (),
        ))
    return found
