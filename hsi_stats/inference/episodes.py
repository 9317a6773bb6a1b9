r"""Inference for quantities measured per episode: shares and means over steps, and paired differences of episodes.

Two procedures, both with the episode (group) as the unit:

- :func:`ratio_intervals`: a share or mean over steps, :math:`\hat r = \sum_g x_g / \sum_g n_g` (per group g the
  sum :math:`x_g` of a per-step value and the number :math:`n_g` of steps), with the expanded percentile interval
  of the cluster bootstrap (Hesterberg 2015): resamples of the groups with replacement, the ratio recomputed from
  the resampled sums, percentiles at :math:`\alpha' = \Phi(\sqrt{G/(G-1)}\, t_{G-1, \alpha/2})`. The same
  resamples serve every ratio, and differences of ratios (a share in one subset of the steps minus another).
- :func:`split_share_intervals`: the share of hits in the steps whose score is above its median and in the
  others, and their difference, the median recomputed in every resample (steps weighted by their group's
  multiplicity), so that the interval accounts for where the split falls.
- :func:`paired_sign_flip`: the mean of per-episode paired differences :math:`d_e` (a policy with a head removed
  minus the intact policy, on the same seed), tested against zero by flipping the sign of each episode's difference
  (all :math:`2^E` patterns when they fit in ``n_resamples``, else random ones; :math:`p = (1 + \#\{|\bar d^*| \ge
  |\bar d|\})/(1 + B)`), with the step-down max-T adjustment over several differences from the same sign patterns
  (Westfall and Young 1993); and the cluster-bootstrap interval of the mean difference.

A share that is 0 or 1 in every episode has replicates all equal: its bootstrap interval is that single value.

References
----------
.. [1] Hesterberg, T. C. (2015). What teachers should know about the bootstrap. The American Statistician 69(4),
   371-386. https://doi.org/10.1080/00031305.2015.1089789
.. [2] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ..group_sums import rowwise_product
from .bootstrap import bootstrap_weights, expanded_alpha
from .randomisation import sign_patterns
from .resampling import ExceedanceCounter, batch_sizes, check_batch, quantiles_along_first

__all__ = ["PairedTest", "paired_sign_flip", "ratio_intervals", "split_share_intervals"]

FloatArray = NDArray[np.float64]


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def ratio_intervals(totals: Mapping[str, FloatArray], statistic: Callable[[Mapping[str, FloatArray]], FloatArray], *,
                    n_resamples: int, confidence_level: float, rng: np.random.Generator,
                    batch: int | None = None) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """A statistic of per-group sums with its expanded-percentile cluster-bootstrap interval.

    ``totals`` maps names to per-group sums (G, ...); ``statistic`` turns sums over groups (a mapping of the same
    names to arrays (...), or (b, ...) for b resamples) into the statistic (...) or (b, ...). Returns the estimate,
    the lower and the upper bounds, and the replicates (B, ...).

    Examples
    --------
    >>> sums = {"x": np.array([[1.0], [0.0], [2.0]]), "n": np.array([[2.0], [2.0], [2.0]])}
    >>> share = lambda t: t["x"] / t["n"]
    >>> estimate, low, high, _ = ratio_intervals(sums, share, n_resamples=999, confidence_level=0.95,
    ...                                          rng=np.random.default_rng(0))
    >>> float(estimate[0]), bool(low[0] <= estimate[0] <= high[0])
    (0.5, True)
    """
    n_groups = next(iter(totals.values())).shape[0]
    estimate = statistic({name: values.sum(axis=0) for name, values in totals.items()})
    flat = {name: values.reshape(n_groups, -1) for name, values in totals.items()}
    parts = []
    for size in batch_sizes(n_resamples, check_batch(batch, n_groups)):
        weights = bootstrap_weights(rng, size, n_groups)
        parts.append(statistic({name: rowwise_product(weights, values).reshape(size, *totals[name].shape[1:])
                                for name, values in flat.items()}))
    replicates = np.concatenate(parts)
    tail = expanded_alpha((1.0 - confidence_level) / 2.0, n_groups)
    low = quantiles_along_first(replicates, np.asarray(tail))
    high = quantiles_along_first(replicates, np.asarray(1.0 - tail))
    return np.asarray(estimate, dtype=float), low, high, replicates


@dataclass(frozen=True)
class PairedTest:
    """Sign-flip tests of paired per-episode differences, several at once.

    Attributes
    ----------
    mean, ci_low, ci_high : ndarray (m,)
        The mean difference over episodes and its expanded-percentile cluster-bootstrap interval.
    p_value, p_adjusted : ndarray (m,)
        Two-sided sign-flip p-value of each mean difference, and step-down max-T adjusted over the m.
    n_resamples : int
        Sign patterns evaluated (``2**E`` when ``exact``).
    exact : bool
    """

    mean: FloatArray
    ci_low: FloatArray
    ci_high: FloatArray
    p_value: FloatArray
    p_adjusted: FloatArray
    n_resamples: int
    exact: bool


def paired_sign_flip(differences: FloatArray, *, n_resamples: int, confidence_level: float,
                     rng: np.random.Generator, batch: int | None = None) -> PairedTest:
    """Test and bound the mean of each column of per-episode paired differences (E, m).

    Examples
    --------
    >>> d = np.array([[1.0, 0.0], [2.0, 0.0], [1.5, 0.0], [0.5, 0.0], [1.0, 0.0], [2.5, 0.0]])
    >>> found = paired_sign_flip(d, n_resamples=9999, confidence_level=0.95, rng=np.random.default_rng(0))
    >>> found.exact, found.p_value.round(4).tolist(), found.mean.tolist()
    (True, [0.0312, 1.0], [1.4166666666666667, 0.0])
    """
    differences = np.asarray(differences, dtype=float)
    n_episodes = differences.shape[0]
    observed = np.abs(differences.mean(axis=0))
    counter = ExceedanceCounter(observed)
    size = check_batch(batch, n_episodes)
    exact = 2**n_episodes <= n_resamples
    patterns = (sign_patterns(n_episodes, size) if exact else
                (np.where(rng.random((b, n_episodes)) < 0.5, -1.0, 1.0) for b in batch_sizes(n_resamples, size)))
    for signs in patterns:
        counter.update(np.abs(signs @ differences) / n_episodes)
    raw, _, step_down = counter.p_values(exact=exact)
    sums = {"d": differences, "n": np.ones((n_episodes, differences.shape[1]))}
    mean, low, high, _ = ratio_intervals(sums, lambda t: _ratio(t["d"], t["n"]), n_resamples=n_resamples,
                                         confidence_level=confidence_level, rng=rng, batch=batch)
    return PairedTest(mean, low, high, raw, step_down, counter.n, exact)


def _split_sums(weights: FloatArray, codes: NDArray[np.intp], hits: FloatArray, scores: FloatArray,
                thresholded: bool) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Weighted hits and steps above and below the split of one column, per resample (b,): xs, ns, xo, no."""
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    steps = weights[:, codes[order]]  # (b, N) in score order
    zero = np.zeros((steps.shape[0], 1))
    cumulative = np.concatenate([zero, np.cumsum(steps, axis=1)], axis=1)
    cumulative_hits = np.concatenate([zero, np.cumsum(steps * hits[order], axis=1)], axis=1)
    if thresholded:
        first = int(np.searchsorted(ordered, -np.inf, side="right"))  # scores of -inf sort first, outside the split
        outside, total = cumulative[:, first], cumulative[:, -1]
        half = outside + (total - outside) / 2.0
        reached = np.argmax(cumulative[:, 1:] >= half[:, None], axis=1)  # the lower weighted median's step
        median = np.where(total > outside, ordered[reached], np.nan)
        position = np.where(np.isnan(median), 0, np.searchsorted(ordered, np.nan_to_num(median), side="right"))
    else:
        median = np.zeros(steps.shape[0])
        position = np.full(steps.shape[0], np.searchsorted(ordered, 0.0, side="right"))
    rows = np.arange(steps.shape[0])
    below, below_hits = cumulative[rows, position], cumulative_hits[rows, position]
    above, above_hits = cumulative[:, -1] - below, cumulative_hits[:, -1] - below_hits
    missing = np.isnan(median)
    return (np.where(missing, np.nan, above_hits), np.where(missing, np.nan, above),
            np.where(missing, np.nan, below_hits), np.where(missing, np.nan, below))


def split_share_intervals(hits: ArrayLike, scores: ArrayLike, thresholded: ArrayLike, codes: NDArray[np.intp], *,
                          n_resamples: int, confidence_level: float, rng: np.random.Generator,
                          batch: int | None = None) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    r"""Shares of hits above and below a split of the steps, and their difference, with cluster-bootstrap intervals.

    Column j of ``hits`` (N, m) is split by its ``scores`` (N, m): a step is *above* when its score exceeds
    :math:`m_j`, the median of the column's finite scores when ``thresholded[j]``, else 0; a score of
    :math:`-\infty` (or NaN) is never above and does not enter the median. The statistics (3, m) are the share of
    hits above, :math:`\sum_{t \in A} x_t / |A|`, the share below, and their difference. In a bootstrap resample
    of the groups (``codes`` (N,)), every step weighs its group's multiplicity and :math:`m_j` is the lower weighted
    median (the smallest score whose cumulative weight reaches half the weight of the finite scores): recomputed in
    every resample, and at unit weights the same split as :func:`numpy.median`. Intervals are the expanded
    percentile intervals of :func:`ratio_intervals`. Returns the estimate, the lower and upper bounds, and the
    replicates (B, 3, m).

    Examples
    --------
    >>> hits = np.array([[1.0], [1.0], [0.0], [0.0], [1.0], [0.0]])
    >>> scores = np.array([[5.0], [4.0], [1.0], [2.0], [6.0], [-np.inf]])
    >>> estimate, *_ = split_share_intervals(hits, scores, [True], np.array([0, 0, 1, 1, 2, 2]), n_resamples=99,
    ...                                      confidence_level=0.95, rng=np.random.default_rng(0))
    >>> estimate[:, 0].tolist()  # median 4: above {5, 6}, below the others
    [1.0, 0.25, 0.75]
    """
    hit = np.asarray(hits, dtype=float)
    score = np.asarray(scores, dtype=float)
    score = np.where(np.isnan(score), -np.inf, score)
    split = np.asarray(thresholded, dtype=bool).reshape(-1)
    n_groups = int(codes.max()) + 1

    def statistic(weights: FloatArray) -> FloatArray:  # (b, G) -> (b, 3, m)
        columns = []
        for j in range(hit.shape[1]):
            xs, ns, xo, no = _split_sums(weights, codes, hit[:, j], score[:, j], bool(split[j]))
            above, below = _ratio(xs, ns), _ratio(xo, no)
            columns.append(np.stack([above, below, above - below], axis=1))
        return np.stack(columns, axis=2)

    estimate = statistic(np.ones((1, n_groups)))[0]
    size = check_batch(batch, hit.shape[0])
    replicates = np.concatenate([statistic(bootstrap_weights(rng, b, n_groups))
                                 for b in batch_sizes(n_resamples, size)])
    tail = expanded_alpha((1.0 - confidence_level) / 2.0, n_groups)
    low = quantiles_along_first(replicates, np.asarray(tail))
    high = quantiles_along_first(replicates, np.asarray(1.0 - tail))
    return estimate, low, high, replicates
