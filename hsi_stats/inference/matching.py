r"""Matching the heads of two runs by their profiles: similarity, the optimal assignment, its margin and stability.

A head's *profile* is a vector over the features (its rho, or its joint model's log odds ratios). Two heads are as
similar as the Pearson correlation of their profiles over the F features,

.. math::

    s_{ij} = \frac{\sum_f (x_{if} - \bar x_i)(y_{jf} - \bar y_j)}
                  {\sqrt{\sum_f (x_{if} - \bar x_i)^2 \sum_f (y_{jf} - \bar y_j)^2}},

which compares the *shape* of two profiles (which features a head tracks, with which signs, relative to each
other), not their overall strength. A constant profile has no shape: its similarity is undefined (NaN) and counts
as 0 in the assignment.

The assignment :math:`\pi` of the heads of a run to the heads of the reference run maximises the total similarity
:math:`T(\pi) = \sum_i s_{i\pi(i)}` over one-to-one assignments (the linear assignment problem, solved exactly by
:func:`scipy.optimize.linear_sum_assignment` [1]_ [2]_; with different numbers of heads, every head of the
smaller side is assigned).

The margin of a matched pair :math:`(i, j)` is :math:`T(\hat\pi) - \max\{T(\pi): \pi(i) \ne j\}`, what the best
assignment that does without that pair loses; :math:`+\infty` when no assignment does without it. The margin of
the run is the smallest margin of its pairs, which is :math:`T(\hat\pi)` minus the best total of any assignment
that differs from :math:`\hat\pi` (any other assignment of the same size lacks at least one of its pairs [3]_).
A margin of 0 is a tie.

The *stability* of a pair is the share of resamples in which the assignment of the resampled profiles keeps it
(:func:`match_stability`).

This module computes; it reads no file and imports no plotting.

References
----------
.. [1] Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval Research Logistics Quarterly
   2(1-2), 83-97. https://doi.org/10.1002/nav.3800020109
.. [2] Munkres, J. (1957). Algorithms for the assignment and transportation problems. Journal of the Society for
   Industrial and Applied Mathematics 5(1), 32-38. https://doi.org/10.1137/0105003
.. [3] Murty, K. G. (1968). An algorithm for ranking all the assignments in order of increasing cost. Operations
   Research 16(3), 682-687. https://doi.org/10.1287/opre.16.3.682
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

__all__ = ["Assignment", "best_assignment", "match_stability", "profile_similarity"]

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.intp]


def profile_similarity(reference: FloatArray, other: FloatArray) -> FloatArray:
    """Pearson correlation over the last axis of every reference profile with every other profile.

    ``reference`` (..., H0, F) and ``other`` (..., H1, F) give (..., H0, H1); a constant profile gives NaN.

    Examples
    --------
    >>> x = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    >>> profile_similarity(x, x[::-1]).round(3).tolist()
    [[0.0, 1.0], [1.0, 0.0]]
    """
    def standardised(values: FloatArray) -> FloatArray:
        centred = values - values.mean(axis=-1, keepdims=True)
        norm = np.sqrt((centred**2).sum(axis=-1, keepdims=True))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(norm > 1e-12, centred / norm, np.nan)

    similarity = np.einsum("...if,...jf->...ij", standardised(np.asarray(reference, float)),
                           standardised(np.asarray(other, float)))
    return np.clip(similarity, -1.0, 1.0)


@dataclass(frozen=True)
class Assignment:
    """The optimal assignment of one run's heads to the reference heads.

    Attributes
    ----------
    reference : ndarray of int
        Reference head indices, increasing.
    other : ndarray of int
        The run's head matched to each (same length).
    total : float
        :math:`T(\\hat\\pi)`, the sum of the matched similarities (an undefined similarity counted as 0).
    pair_margins : ndarray
        Per matched pair, the total lost by the best assignment without it (``inf`` when none exists).
    """

    reference: IntArray
    other: IntArray
    total: float
    pair_margins: FloatArray

    @property
    def margin(self) -> float:
        """The run's margin: the best total minus the best total of any other assignment (``inf`` if none)."""
        return float(self.pair_margins.min()) if self.pair_margins.size else float("inf")


def _solve(similarity: FloatArray) -> tuple[IntArray, IntArray, float]:
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    return rows, cols, float(similarity[rows, cols].sum())


def best_assignment(similarity: FloatArray) -> Assignment:
    """The assignment maximising the total similarity (H0, H1), with the margin of every matched pair.

    Examples
    --------
    >>> s = np.array([[0.9, 0.8], [0.7, 0.7]])
    >>> a = best_assignment(s)
    >>> a.other.tolist(), round(a.total, 2), a.pair_margins.round(2).tolist()
    ([0, 1], 1.6, [0.1, 0.1])
    """
    filled = np.where(np.isnan(similarity), 0.0, np.asarray(similarity, float))
    rows, cols, total = _solve(filled)
    margins = np.empty(rows.size)
    for k, (i, j) in enumerate(zip(rows, cols, strict=True)):
        forbidden = filled.copy()
        forbidden[i, j] = -np.inf
        try:
            margins[k] = total - _solve(forbidden)[2]
        except ValueError:  # no assignment of this size does without the pair
            margins[k] = np.inf
    return Assignment(rows, cols, total, np.maximum(margins, 0.0))


def match_stability(reference: FloatArray, other: FloatArray, assignment: Assignment) -> FloatArray:
    """Share of resamples in which each pair of ``assignment`` stays matched.

    ``reference`` (B, H0, F) and ``other`` (B, H1, F) are the resampled profiles of the two runs, resample b of
    one beside resample b of the other; each resample's optimal assignment is solved and compared with the
    pairs of ``assignment`` (the point estimate's).
    """
    similarity = profile_similarity(reference, other)
    similarity = np.where(np.isnan(similarity), 0.0, similarity)
    kept = np.zeros(assignment.reference.size)
    for matrix in similarity:
        rows, cols = linear_sum_assignment(matrix, maximize=True)
        matched = dict(zip(rows.tolist(), cols.tolist(), strict=True))
        kept += [matched.get(int(i)) == int(j) for i, j in zip(assignment.reference, assignment.other, strict=True)]
    return kept / max(similarity.shape[0], 1)
