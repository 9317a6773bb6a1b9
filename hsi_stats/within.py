"""Transforms within a scenario: average-tie ranks, mid-rank percentiles and centring over the valid entities.

Every statistic compares the entities present together in a scenario, so the features (and, for Spearman, the
attention) are ranked or centred along the entity axis, over the entities valid there. The marginal estimators
(:mod:`hsi_stats.estimators`) and the joint model (:mod:`hsi_stats.joint`) share these definitions. This module
only transforms arrays: it knows nothing about groups, heads or files.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata

__all__ = ["PAIRWISE_RANK_SLOTS", "centre_within", "percentile_within", "rank_within"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Up to this many entity slots, ranks come from pairwise comparisons (O(V^2) per scenario, vectorised); above it,
#: from :func:`scipy.stats.rankdata`.
PAIRWISE_RANK_SLOTS = 32


def rank_within(values: FloatArray, valid: BoolArray) -> FloatArray:
    r"""Average-tie ranks along the last axis among valid entries (NaN elsewhere); +-inf ranks as extreme.

    For V entities, the rank of :math:`x_i` is :math:`\#\{j: x_j < x_i\} + (\#\{j: x_j = x_i\} + 1)/2` over the
    valid j (its own tie group counted): the average of the positions its ties occupy, as
    ``scipy.stats.rankdata(method="average")`` gives. For small V the comparisons are one vectorised step.
    """
    valid = np.broadcast_to(valid, values.shape)
    if values.shape[-1] > PAIRWISE_RANK_SLOTS:
        return rankdata(np.where(valid, values, np.nan), axis=-1, nan_policy="omit")
    mine, others = values[..., :, None], values[..., None, :]
    counted = valid[..., None, :]
    below = ((others < mine) & counted).sum(axis=-1)
    tied = ((others == mine) & counted).sum(axis=-1)
    return np.where(valid, below + (tied + 1) / 2, np.nan)


def centre_within(values: FloatArray, valid: BoolArray) -> FloatArray:
    """Centre along the last axis over valid entries; 0 on invalid entries and on constant rows.

    A row whose valid values are all equal is set to exactly 0 (its mean-subtracted values would otherwise be
    rounding noise of order 1e-17 that a ratio could amplify).
    """
    valid = np.broadcast_to(valid, values.shape)
    n = valid.sum(axis=-1, keepdims=True)
    filled = np.where(valid, values, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = filled.sum(axis=-1, keepdims=True) / np.maximum(n, 1)
    high = np.where(valid, values, -np.inf).max(axis=-1, keepdims=True)
    low = np.where(valid, values, np.inf).min(axis=-1, keepdims=True)
    varies = high > low
    return np.where(valid & varies, values - mean, 0.0)


def percentile_within(values: FloatArray, valid: BoolArray) -> FloatArray:
    """Mid-rank percentiles ``(rank - 0.5) / n`` along the last axis among the ``n`` valid entries (NaN elsewhere).

    They lie in (0, 1) whatever the number of entities, so that every scenario's feature has about the same
    spread (variance (n^2 - 1) / (12 n^2)); ties share the average rank; +-inf ranks as an extreme value.
    """
    n_valid = np.broadcast_to(valid, values.shape).sum(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_within(values, valid) - 0.5) / n_valid
