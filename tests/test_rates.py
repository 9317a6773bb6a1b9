"""Intervals of rates and bounded means over episodes (``hsi_stats.inference.rates``).

- The interval equals the one written out in ``tests/rates_reference.py`` (loops, scipy's t, statsmodels' Wilson).
- Invariants (hypothesis): it holds its estimate, stays in [0, 1], mirrors under successes <-> failures, ignores
  the order of the episodes and episodes without steps, and computes columns independently.
- At the boundary it does not collapse: a rate of 0 over G episodes gets the interval of no event in G trials.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsi_stats.inference.rates import clustered_rate_interval
from tests.rates_reference import clustered_wilson, no_event_bound


@st.composite
def _episodes(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n_groups = draw(st.integers(2, 25))
    steps = np.array(draw(st.lists(st.integers(1, 30), min_size=n_groups, max_size=n_groups)), dtype=float)
    kind = draw(st.sampled_from(["rate", "bounded", "rare", "none", "all"]))
    shares = np.array(draw(st.lists(st.floats(0, 1), min_size=n_groups, max_size=n_groups)))
    if kind == "rate":
        successes = np.floor(shares * (steps + 1)).clip(0, steps)
    elif kind == "bounded":
        successes = shares * steps
    elif kind == "rare":
        successes = np.where(shares > 0.85, 1.0, 0.0)
    else:
        successes = np.zeros(n_groups) if kind == "none" else steps.copy()
    return successes, steps


@settings(max_examples=200, deadline=None)
@given(_episodes())
def test_the_interval_equals_the_reference(data: tuple[np.ndarray, np.ndarray]) -> None:
    successes, steps = data
    rate, low, high = clustered_rate_interval(successes, steps)
    expected = clustered_wilson(list(successes), list(steps))
    np.testing.assert_allclose([rate, low, high], expected, rtol=1e-9, atol=1e-12)


@settings(max_examples=200, deadline=None)
@given(_episodes(), st.randoms(use_true_random=False))
def test_invariants(data: tuple[np.ndarray, np.ndarray], random) -> None:  # type: ignore[no-untyped-def]
    successes, steps = data
    rate, low, high = clustered_rate_interval(successes, steps)
    assert 0.0 <= low <= rate <= high <= 1.0
    mirrored = clustered_rate_interval(steps - successes, steps)
    np.testing.assert_allclose([1 - mirrored[0], 1 - mirrored[2], 1 - mirrored[1]], [rate, low, high], atol=1e-12)
    order = list(range(len(steps)))
    random.shuffle(order)
    padded = clustered_rate_interval(np.append(successes[order], 0.0), np.append(steps[order], 0.0))
    np.testing.assert_allclose(padded, [rate, low, high], rtol=1e-12, atol=1e-15)
    both = clustered_rate_interval(np.stack([successes, steps - successes], axis=1), np.stack([steps, steps], axis=1))
    np.testing.assert_allclose([b[0] for b in both], [rate, low, high], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("n_groups", [2, 10, 60])
def test_a_rate_of_zero_is_the_interval_of_no_event_in_g_trials(n_groups: int) -> None:
    rate, low, high = clustered_rate_interval(np.zeros(n_groups), np.full(n_groups, 40.0))
    assert (rate, low) == (0.0, 0.0) and high == pytest.approx(no_event_bound(n_groups), rel=1e-12)
    rate, low, high = clustered_rate_interval(np.full(n_groups, 40.0), np.full(n_groups, 40.0))
    assert (rate, high) == (1.0, 1.0) and low == pytest.approx(1 - no_event_bound(n_groups), rel=1e-12)


def test_one_episode_or_none_gives_no_interval() -> None:
    for successes, steps in (([3.0], [10.0]), ([0.0, 0.0], [0.0, 0.0]), ([2.0, 0.0], [5.0, 0.0])):
        _, low, high = clustered_rate_interval(successes, steps)
        assert np.isnan(low) and np.isnan(high)
