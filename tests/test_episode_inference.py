"""Shares over steps with the episode as the unit (``hsi_stats.inference.episodes``), against loops written here.

- Every bootstrap replicate of ``ratio_intervals`` and ``split_share_intervals`` equals the statistic recomputed by
  a loop on the data set the resample makes (each episode's steps repeated as often as it was drawn; the split at
  ``numpy.median`` of the resampled scores), for the same draws; the bounds are the expanded-percentile quantiles.
- Invariants (hypothesis): the batch size and the order of the steps change nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from hsi_stats.inference.bootstrap import bootstrap_weights
from hsi_stats.inference.episodes import ratio_intervals, split_share_intervals


def _data(seed: int, n_groups: int = 9, steps: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    codes = np.repeat(np.arange(n_groups), steps)
    scores = rng.normal(size=(codes.size, 2)).round(1)  # ties on purpose
    scores[rng.random(codes.size) < 0.2, 0] = -np.inf  # steps without a target
    hits = (rng.random((codes.size, 2)) < 0.3 + 0.3 * (scores > 0)).astype(float)
    return hits, scores, codes


def _resampled(multiplicity: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """The steps of a resample: each group's steps repeated as often as it was drawn."""
    return np.concatenate([np.flatnonzero(codes == g) for g, k in enumerate(multiplicity) for _ in range(int(k))])


def _split_by_loop(hits: np.ndarray, scores: np.ndarray, thresholded: bool) -> list[float]:
    finite = scores[np.isfinite(scores)]
    if thresholded and not finite.size:
        return [np.nan, np.nan, np.nan]
    threshold = np.median(finite) if thresholded else 0.0
    above = [h for h, s in zip(hits, scores, strict=True) if s > threshold]
    below = [h for h, s in zip(hits, scores, strict=True) if not s > threshold]
    share_above = sum(above) / len(above) if above else np.nan
    share_below = sum(below) / len(below) if below else np.nan
    return [share_above, share_below, share_above - share_below]


def _expanded_tail(n_groups: int, level: float = 0.95) -> float:
    return float(stats.norm.cdf(np.sqrt(n_groups / (n_groups - 1)) * stats.t.ppf((1 - level) / 2, n_groups - 1)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_split_replicate_equals_a_loop_on_the_resampled_steps(seed: int) -> None:
    hits, scores, codes = _data(seed)
    estimate, low, high, replicates = split_share_intervals(hits, scores, [True, False], codes, n_resamples=200,
                                                            confidence_level=0.95, rng=np.random.default_rng(seed))
    weights = bootstrap_weights(np.random.default_rng(seed), 200, 9)  # the same draws
    indicator = np.where(np.isfinite(scores[:, 1]), (scores[:, 1] > 0).astype(float), -np.inf)
    columns = [(0, scores[:, 0], True), (1, indicator, False)]
    for j, score, thresholded in columns:
        np.testing.assert_array_equal(estimate[:, j], _split_by_loop(hits[:, j], score, thresholded))
    expected = np.array([[_split_by_loop(hits[steps, 0], scores[steps, 0], True)]
                         for steps in (_resampled(w, codes) for w in weights)])[:, 0, :]
    np.testing.assert_allclose(replicates[:, :, 0], expected, rtol=1e-12, atol=0)
    tail = _expanded_tail(9)
    np.testing.assert_allclose(low[:, 0], np.nanquantile(expected, tail, axis=0), rtol=1e-12)
    np.testing.assert_allclose(high[:, 0], np.nanquantile(expected, 1 - tail, axis=0), rtol=1e-12)


def test_every_ratio_replicate_equals_a_loop_on_the_resampled_steps() -> None:
    hits, _, codes = _data(3)
    totals = {"x": np.stack([hits[codes == g].sum(axis=0) for g in range(9)]),
              "n": np.stack([np.full(2, (codes == g).sum(), dtype=float) for g in range(9)])}
    _, low, high, replicates = ratio_intervals(totals, lambda t: t["x"] / t["n"], n_resamples=300,
                                               confidence_level=0.9, rng=np.random.default_rng(4))
    weights = bootstrap_weights(np.random.default_rng(4), 300, 9)
    expected = np.array([hits[_resampled(w, codes)].mean(axis=0) for w in weights])
    np.testing.assert_allclose(replicates, expected, rtol=1e-12)
    tail = _expanded_tail(9, 0.9)
    np.testing.assert_allclose(low, np.quantile(expected, tail, axis=0), rtol=1e-12)
    np.testing.assert_allclose(high, np.quantile(expected, 1 - tail, axis=0), rtol=1e-12)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), batch=st.integers(1, 80))
def test_neither_the_batch_size_nor_the_order_of_the_steps_changes_the_split(seed: int, batch: int) -> None:
    hits, scores, codes = _data(seed % 1000)
    order = np.random.default_rng(seed).permutation(codes.size)
    runs = [split_share_intervals(h, s, [True, False], c, n_resamples=97, confidence_level=0.95,
                                  rng=np.random.default_rng(5), batch=b)
            for h, s, c, b in ((hits, scores, codes, None), (hits[order], scores[order], codes[order], batch))]
    for first, second in zip(*runs, strict=True):
        np.testing.assert_allclose(first, second, rtol=1e-12, atol=1e-15)
