"""Closed-loop ablation: the tests on paired episodes with and without each head (``ablation.episode_effects``,
``inference.episodes.paired_sign_flip``; the roll-outs in highway-env are in ``extras/test_ablation_highway.py``).

- The sign-flip p-values equal an enumeration of every sign pattern written here, and the step-down max-T
  adjustment equals Westfall and Young's algorithm written as a loop; random patterns agree within Monte-Carlo
  error. Under a true null the adjusted tests reject at most at the nominal rate (simulation).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from hsi_stats._validation import HSIDataError
from hsi_stats.ablation import EPISODE_COLUMNS, episode_effects
from hsi_stats.inference.episodes import paired_sign_flip


# ------------------------------------------------------------------------------------------------ the tests
def _exact_by_enumeration(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw and step-down max-T p-values over all 2^E sign patterns, as loops."""
    n_episodes, m = d.shape
    observed = np.abs(d.mean(axis=0))
    patterns = [np.array(signs) for signs in itertools.product([1.0, -1.0], repeat=n_episodes)]
    null = np.array([[abs(float(signs @ d[:, j])) / n_episodes for j in range(m)] for signs in patterns])
    reach = null >= observed - 1e-9 * np.abs(observed)
    raw = reach.mean(axis=0)
    order = list(np.argsort(-observed, kind="stable"))
    adjusted = np.zeros(m)
    running = 0.0
    for position, j in enumerate(order):  # Westfall and Young: the maximum over the hypotheses not yet rejected
        rest = order[position:]
        p = float(np.mean([null[b, rest].max() >= observed[j] - 1e-9 * abs(observed[j])
                           for b in range(len(patterns))]))
        running = max(running, p)
        adjusted[j] = running
    return raw, adjusted


def test_exact_sign_flip_p_values_equal_an_enumeration() -> None:
    rng = np.random.default_rng(0)
    d = np.column_stack([rng.integers(-3, 6, 9), rng.integers(-4, 5, 9), rng.integers(-1, 2, 9), np.zeros(9)])
    found = paired_sign_flip(d.astype(float), n_resamples=9999, confidence_level=0.95, rng=np.random.default_rng(1))
    raw, adjusted = _exact_by_enumeration(d.astype(float))
    assert found.exact and found.n_resamples == 2**9
    np.testing.assert_allclose(found.p_value, raw, rtol=0, atol=1e-15)
    np.testing.assert_allclose(found.p_adjusted, adjusted, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(found.mean, d.mean(axis=0))
    assert found.p_value[3] == 1.0 and found.ci_low[3] == found.ci_high[3] == 0.0


def test_random_sign_patterns_agree_with_the_enumeration() -> None:
    rng = np.random.default_rng(2)
    d = np.column_stack([rng.normal(0.8, 2.0, 14), rng.normal(0.0, 1.0, 14)])
    raw, adjusted = _exact_by_enumeration(d)
    found = paired_sign_flip(d, n_resamples=9999, confidence_level=0.95, rng=np.random.default_rng(3))
    assert not found.exact
    error = 4 * np.sqrt(raw * (1 - raw) / 9999) + 2 / 10000  # four standard errors, and the +1 of (1 + k)/(1 + B)
    assert np.all(np.abs(found.p_value - raw) <= error)
    assert np.all(np.abs(found.p_adjusted - adjusted) <= 4 * np.sqrt(adjusted * (1 - adjusted) / 9999) + 2 / 10000)


def test_under_a_true_null_the_adjusted_tests_keep_their_error_rate() -> None:
    rng = np.random.default_rng(4)
    rejections = 0
    n_runs = 400
    for _ in range(n_runs):  # three heads with no effect, returns heavy-tailed, differences symmetric
        d = rng.standard_t(3, (20, 3)) * np.array([1.0, 3.0, 0.5])
        found = paired_sign_flip(d, n_resamples=499, confidence_level=0.95, rng=rng)
        rejections += bool((found.p_adjusted < 0.05).any())
    # family-wise error rate 0.05: at most 0.05 + 3 standard errors (0.033) over 400 runs
    assert rejections / n_runs <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_runs)


def test_episode_effects_tables_the_paired_differences() -> None:
    rng = np.random.default_rng(5)
    returns = pd.DataFrame({"none": rng.normal(20, 4, 12), "a:h0": rng.normal(15, 4, 12),
                            "a:h1": rng.normal(20, 4, 12)})
    crashes = pd.DataFrame({"none": rng.random(12) < 0.2, "a:h0": rng.random(12) < 0.6, "a:h1": rng.random(12) < 0.2})
    found = episode_effects(returns, crashes, n_resamples=999, rng=6, mode="mean")
    table = found.table.set_index("head")
    assert list(found.table.columns) == list(EPISODE_COLUMNS) and list(table.index) == ["none", "a:h0", "a:h1"]
    assert table.loc["none", "return_mean"] == returns["none"].mean() and np.isnan(table.loc["none", "return_delta"])
    for head in ("a:h0", "a:h1"):
        assert table.loc[head, "return_delta"] == pytest.approx((returns[head] - returns["none"]).mean(), rel=1e-12)
        assert table.loc[head, "crash_delta"] == pytest.approx(
            (crashes[head].astype(float) - crashes["none"].astype(float)).mean(), rel=1e-12)
        assert table.loc[head, "crash_rate"] == crashes[head].mean()
    assert found.mode == "mean" and found.n_resamples == 999 and found.confidence_level == 0.95
    with pytest.raises(HSIDataError, match="'none' \\(the intact policy\\) among them"):
        episode_effects(returns.drop(columns="none"), crashes.drop(columns="none"))
    with pytest.raises(HSIDataError, match="at least 2 episodes"):
        episode_effects(returns.iloc[:1], crashes.iloc[:1])
