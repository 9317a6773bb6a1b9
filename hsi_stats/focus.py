r"""Focus: how much of a head's attention goes to the entity a feature points at, beyond what uniform attention gives.

For head h, feature f and a direction d (the catalog's expected sign of the relation, or the sign of rho where
the catalog expects either), the *target* of scenario s is

- for an indicator feature (every value 0 or 1): the flagged entities (value 1 for d = +1, value 0 for d = -1);
- for any other feature: the most extreme entity in direction d (the largest value for d = +1, the smallest for
  d = -1; tied extremes are all targets; +-inf is the most extreme value there is).

With :math:`p` the head's attention renormalised over the :math:`n` entities valid for the feature, :math:`k` the
number of targets, :math:`u = k/n` the share uniform attention would give them and :math:`s = \sum_{v \in T} p_v`
the share the head gives them, the scenario's excess share over its largest possible value is

.. math:: \phi_s = \frac{s - u}{1 - u},

0 for uniform attention and 1 when all the attention is on the targets; a head that looks away from them has a
negative excess, down to :math:`-u / (1 - u)` when none of its attention is on them. It is linear in the share on
purpose: a head whose attention is unrelated to the feature (exchangeable among the entities) has an expected
share of :math:`u`, hence an expected excess of exactly 0. A scenario counts when :math:`n \ge 2`,
:math:`0 < k < n` and the head's attention there is not all zero. With :math:`\bar\phi` the mean of
:math:`\phi_s` over those scenarios and :math:`\bar f` the mean of their floors :math:`u / (1 - u)`, the focus of
(h, f) is

.. math:: F = \bar\phi \ \text{if}\ \bar\phi \ge 0, \qquad F = \bar\phi / \bar f \ \text{otherwise},

on a scale a reader can place: 1 all the attention on the targets, 0 as uniform attention, -1 none on them (a
negative mean excess is scaled by its own floor, which depends on how many entities there are). The scaling keeps
the sign, so an unrelated head still has a focus of 0 in expectation. Attention is a share of mass: a negative
value counts by its magnitude (as in the selectivity of :mod:`hsi_stats.estimators`).

The means are ratios of per-group sums (:math:`\sum \phi_s`, the floors and the count of scenarios), so the
cluster bootstrap resamples the focus with the same group weights as rho (:class:`FocusSums`). This module
computes no correlation and imports no plotting.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._validation import HSIDataError
from .chunks import Chunk, ChunkSource, accumulate
from .data import HSIDataset
from .group_sums import GroupTotals, Weights, weighted_total

__all__ = ["FocusReduction", "FocusSums", "IndicatorReduction", "feature_indicators", "focus_from", "focus_reduction",
           "focus_sums", "indicators_from", "is_indicator", "target_entities"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


@dataclass(frozen=True)
class FocusSums:
    """Per-group sums of the scenario excess share, of its floor and of the scenarios counted, (G, H, F) each."""

    total: FloatArray
    count: FloatArray
    floor: FloatArray

    @property
    def n_groups(self) -> int:
        return int(self.total.shape[0])

    def focus(self, weights: Weights = None) -> FloatArray:
        """The focus (H, F) for the full data, or (B, H, F) for each row of group weights (B, G); NaN if none."""
        total, count = weighted_total(self.total, weights), weighted_total(self.count, weights)
        floor = weighted_total(self.floor, weights)
        with np.errstate(divide="ignore", invalid="ignore"):
            excess = np.where(count > 0, total / np.where(count > 0, count, 1.0), np.nan)
            return np.where(excess < 0, total / np.where(floor > 0, floor, 1.0), excess)


def is_indicator(values: FloatArray, valid: BoolArray) -> bool:
    """True when every valid value is 0 or 1 (and both occur nowhere else): the feature flags entities.

    Examples
    --------
    >>> import numpy as np
    >>> is_indicator(np.array([[0.0, 1.0, 7.0]]), np.array([[True, True, False]]))
    True
    """
    chosen = values[valid]
    return bool(chosen.size) and bool(np.isin(chosen, (0.0, 1.0)).all())


def target_entities(values: FloatArray, valid: BoolArray, indicator: bool | BoolArray,
                    direction: int | FloatArray) -> BoolArray:
    """(..., V) mask of each scenario's target entities (entities on the last axis).

    ``indicator`` and ``direction`` are one feature's, or arrays that broadcast against ``values`` (one per claim
    of :mod:`hsi_stats.explain`, with a trailing axis of 1).
    """
    signs = np.asarray(direction, dtype=float)
    if np.ndim(indicator) == 0 and indicator:
        return valid & (values == (signs > 0))
    signed = np.where(valid, values * signs, -np.inf)  # the most extreme value in direction d is the largest
    extreme = signed == signed.max(axis=-1, keepdims=True)
    if np.ndim(indicator) == 0:
        return valid & extreme
    return valid & np.where(indicator, values == (signs > 0), extreme)


def _scenario_focus(mass: FloatArray, valid: BoolArray,
                    targets: BoolArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Excess share per scenario and head (S, H), whether it counts and its floor u / (1 - u) (0 where it does not
    count), for one feature and direction."""
    n = valid.sum(axis=1)[:, None].astype(float)
    k = targets.sum(axis=1)[:, None].astype(float)
    total = np.where(valid[:, None, :], mass, 0.0).sum(axis=2)
    on_target = np.where(targets[:, None, :], mass, 0.0).sum(axis=2)
    counted = (n >= 2) & (k > 0) & (k < n) & (total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        uniform = k / n
        focus = np.where(counted, (on_target / np.where(total > 0, total, 1.0) - uniform) / (1.0 - uniform), 0.0)
        floor = np.where(counted, uniform / (1.0 - uniform), 0.0)
    return focus, counted.astype(float), floor


def focus_sums(dataset: HSIDataset | ChunkSource, directions: NDArray[np.int_]) -> FocusSums:
    """Per-group focus sums of every (head, feature) in its direction (``directions`` (H, F) of +1 or -1).

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset
    >>> ttc = np.array([[1.0, 4.0, 9.0, np.inf]])
    >>> attention = np.array([[[0.7, 0.1, 0.1, 0.1]]])  # 70% on the lowest TTC among 4 vehicles
    >>> sums = focus_sums(HSIDataset(attention, {"ttc": ttc}), np.array([[-1]]))
    >>> round(float(sums.focus()[0, 0]), 6)  # (0.7 - 1/4) / (1 - 1/4)
    0.6
    """
    directions = _checked_directions(dataset, directions)
    needed = [tuple(int(d) for d in np.unique(directions[:, f])) for f in range(dataset.n_features)]
    return focus_from(accumulate(dataset, FocusReduction(dataset.n_groups, dataset.feature_names, needed)),
                      directions)


def _checked_directions(dataset: HSIDataset | ChunkSource, directions: NDArray[np.int_]) -> NDArray[np.int_]:
    directions = np.asarray(directions)
    if directions.shape != (dataset.n_heads, dataset.n_features) or not np.isin(directions, (-1, 1)).all():
        raise HSIDataError(f"`directions` must be an (H, F) = ({dataset.n_heads}, {dataset.n_features}) array of "
                           f"+1 and -1, but an array of shape {directions.shape} was passed.")
    return directions


def focus_reduction(dataset: HSIDataset | ChunkSource, expected: NDArray[np.int_]) -> FocusReduction:
    """An empty reduction of every head's focus on each feature in the directions a head may be judged in:
    ``expected`` (F,) is +1 or -1 where the direction is known in advance (the catalog's sign), 0 where it follows
    the sign of rho (both are summed, :func:`focus_from` picks). Feed it the chunks, alone or beside other
    reductions in one pass."""
    needed: list[tuple[int, ...]] = [(int(e),) if e else (-1, 1) for e in np.asarray(expected)]
    return FocusReduction(dataset.n_groups, dataset.feature_names, needed)


def focus_from(reduction: FocusReduction, directions: NDArray[np.int_]) -> FocusSums:
    """The focus sums of a reduction already fed every scenario, each (head, feature) in its direction (H, F)."""
    directions = np.asarray(directions)
    n_heads, n_features = directions.shape
    shape = (reduction.totals.n_groups, n_heads, n_features)
    sums = {name: np.zeros(shape) for name in ("total", "count", "floor")}
    for f in range(n_features):
        for direction in (-1, 1):
            heads = np.flatnonzero(directions[:, f] == direction)
            if heads.size:
                for name, values in sums.items():
                    values[:, heads, f] = reduction.totals[(name, f, direction)][:, heads]
    return FocusSums(sums["total"], sums["count"], sums["floor"])


class FocusReduction:
    """Per-group sums of the scenario excess share, its floor and the scenarios counted, per (feature, direction),
    every head.

    A 0/1 feature's flagged entities are exactly its most extreme ones in direction +1 (its unflagged ones in
    direction -1), and the scenarios where that rule and the indicator rule differ (every entity flagged, or
    none) count under neither, so the targets need not know which features are indicators.
    """

    def __init__(self, n_groups: int, names: tuple[str, ...], needed: list[tuple[int, ...]]) -> None:
        self.names, self.needed = names, needed
        self.totals = GroupTotals(n_groups)

    def add(self, chunk: Chunk) -> None:
        grouping = chunk.grouping()
        mass = np.abs(np.where(chunk.mask[:, None, :], chunk.attention, 0.0))
        for f, name in enumerate(self.names):
            values = chunk.features[name]
            valid = chunk.mask & ~np.isnan(values)
            for direction in self.needed[f]:
                focus, counted, floor = _scenario_focus(mass, valid, target_entities(values, valid, False, direction))
                self.totals.add(("total", f, direction), grouping, grouping.sum(focus))
                self.totals.add(("count", f, direction), grouping, grouping.sum(counted))
                self.totals.add(("floor", f, direction), grouping, grouping.sum(floor))

    def merge(self, other: FocusReduction) -> None:
        self.totals.merge(other.totals)


class IndicatorReduction:
    """Whether every valid value of each feature seen so far is 0 or 1, and whether any was seen."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.flags, self.seen = [True] * len(names), [False] * len(names)

    def add(self, chunk: Chunk) -> None:
        for f, name in enumerate(self.names):
            values = chunk.features[name]
            chosen = values[chunk.mask & ~np.isnan(values)]
            self.seen[f] = self.seen[f] or bool(chosen.size)
            self.flags[f] = self.flags[f] and bool(np.isin(chosen, (0.0, 1.0)).all())

    def merge(self, other: IndicatorReduction) -> None:
        self.flags = [a and b for a, b in zip(self.flags, other.flags, strict=True)]
        self.seen = [a or b for a, b in zip(self.seen, other.seen, strict=True)]


def feature_indicators(dataset: HSIDataset | ChunkSource) -> list[bool]:
    """Per feature, whether it is an indicator (:func:`is_indicator` over its valid values), chunk by chunk."""
    return indicators_from(accumulate(dataset, IndicatorReduction(dataset.feature_names)))


def indicators_from(reduction: IndicatorReduction) -> list[bool]:
    """:func:`feature_indicators` from a reduction already fed every scenario."""
    return [flag and present for flag, present in zip(reduction.flags, reduction.seen, strict=True)]
