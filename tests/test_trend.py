"""The trend over training (:mod:`hsi_stats.inference.trend`) against independent computations.

The per-checkpoint HSI and rho against :func:`hsi_stats.estimate` on each checkpoint's scenarios; the slope
against ``numpy.polyfit``; the permutation p-values against a full enumeration of the reassignments of episodes to
checkpoints, each re-estimated from the scenarios (the tracked feature chosen again for each); the interval
excludes 0 exactly when the test rejects; a bootstrap resample against the data set that repeats its episodes; and,
by simulation under "no change", the family-wise error and the absence of a direction in the reported trend (exact
by exchangeability of the checkpoints).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from hsi_stats import HSIDataset, estimate
from hsi_stats._validation import ConstantInputWarning
from hsi_stats.inference import trend as trend_module
from hsi_stats.inference.trend import episode_sums, slope_contrast, tracked_feature, trend_test
from hsi_stats.settings import AnalysisSettings
from hsi_stats.synthetic import generate, specialising_heads

SETTINGS = AnalysisSettings()


def _scenarios(dataset: HSIDataset, keep: np.ndarray) -> HSIDataset:
    """The scenarios ``keep`` (indices, repeats allowed) with their own group labels, as a new data set."""
    return HSIDataset(dataset.attention[keep], {name: dataset.features[name][keep] for name in dataset.feature_names},
                      mask=dataset.mask[keep], groups=dataset.groups[keep], slots=dataset.slots[keep],
                      head_names=dataset.head_names)


def _per_checkpoint(dataset: HSIDataset, checkpoint_of_scenario: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """HSI (K, H) and rho (K, H, F) of each checkpoint, estimated on its scenarios alone."""
    with warnings.catch_warnings():  # a small checkpoint may have a feature without variation: its rho is NaN
        warnings.simplefilter("ignore", ConstantInputWarning)
        estimates = [estimate(_scenarios(dataset, np.flatnonzero(checkpoint_of_scenario == k)), SETTINGS)
                     for k in np.unique(checkpoint_of_scenario)]
    return np.stack([e.hsi for e in estimates]), np.stack([e.rho for e in estimates])


@pytest.fixture(scope="module")
def emerging() -> HSIDataset:
    return generate(n_episodes=8, n_steps=4, checkpoints=(10, 20, 30, 40), heads=specialising_heads(15, 35),
                    rng=3).dataset


def test_each_checkpoint_is_estimated_on_its_own_episodes(emerging: HSIDataset) -> None:
    result = trend_test(emerging, SETTINGS, n_resamples=19, rng=np.random.default_rng(0))
    hsi, _ = _per_checkpoint(emerging, np.searchsorted(np.unique(emerging.steps), emerging.steps))
    np.testing.assert_allclose(result.hsi, hsi, rtol=1e-10, atol=1e-12)
    assert result.steps == (10, 20, 30, 40)


def test_the_trend_is_the_slope_of_rho_of_the_feature_tracked_over_the_run(emerging: HSIDataset) -> None:
    result = trend_test(emerging, SETTINGS, n_resamples=199, rng=np.random.default_rng(0))
    _, rho = _per_checkpoint(emerging, np.searchsorted(np.unique(emerging.steps), emerging.steps))
    for h, row in result.table.iterrows():
        means = {f: sum(rho[k, h, i] for k in range(4)) / 4 for i, f in enumerate(emerging.feature_names)}
        feature = max(means, key=lambda f: abs(means[f]))
        series = rho[:, h, emerging.feature_names.index(feature)]
        assert row["feature"] == feature
        expected = math.copysign(1.0, means[feature]) * np.polyfit(np.arange(4), series, 1)[0]
        assert row["slope"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    planted = result.table.iloc[:4]
    assert list(planted["feature"]) == ["ttc", "distance_to_ego", "is_left", "is_ahead"]
    assert (planted["ci_low"] > 0).all()


def test_tracked_feature_weighs_every_checkpoint_alike() -> None:
    rho = np.array([[[0.1, -0.5, np.nan]], [[0.2, -0.5, 0.9]], [[0.6, -0.4, 0.9]]])  # (K=3, H=1, F=3)
    feature, orientation = tracked_feature(rho)
    assert feature.tolist() == [1] and orientation.tolist() == [-1.0]  # the undefined feature is not chosen
    assert tracked_feature(np.full((2, 1, 2), np.nan))[0].tolist() == [0]


def test_p_values_match_the_enumeration_of_every_reassignment() -> None:
    """K = 2 checkpoints of 4 episodes: the 70 ways to split the 8 episodes, each estimated from its scenarios."""
    dataset = generate(n_episodes=4, n_steps=3, checkpoints=(1, 2), heads=specialising_heads(0, 2), rng=5).dataset
    episodes = [(int(s), str(g)) for s, g in dict.fromkeys(zip(dataset.steps.tolist(), dataset.groups.tolist(),
                                                                strict=True))]
    episode_of_scenario = np.array([episodes.index((int(s), str(g)))
                                    for s, g in zip(dataset.steps, dataset.groups, strict=True)])
    slopes = []
    for first in itertools.combinations(range(8), 4):
        checkpoint = np.where(np.isin(episode_of_scenario, first), 0, 1)
        _, rho = _per_checkpoint(dataset, checkpoint)  # (2, H, F)
        trend = []
        for h in range(rho.shape[1]):  # the tracked feature and its sign, chosen again for every split
            means = [np.mean(rho[:, h, f]) for f in range(rho.shape[2])]
            f = max(range(rho.shape[2]), key=lambda i: -1.0 if np.isnan(means[i]) else abs(means[i]))
            trend.append(math.copysign(1.0, means[f]) * (rho[1, h, f] - rho[0, h, f]))
        slopes.append(trend)
    slopes_all = np.abs(np.array(slopes))  # (70, H); row 0 is the observed split
    observed = slopes_all[0]
    tolerance = 1e-9 * np.maximum(observed, 1.0)
    exact = (slopes_all >= observed - tolerance).mean(axis=0)
    exact_max_t = (slopes_all.max(axis=1)[:, None] >= observed - tolerance).mean(axis=0)

    n_resamples = 3999
    result = trend_test(dataset, SETTINGS, n_resamples=n_resamples, rng=np.random.default_rng(11))
    np.testing.assert_allclose(np.abs(result.table["slope"]), observed, rtol=1e-9)
    monte_carlo = 4 * np.sqrt(exact * (1 - exact) / n_resamples) + 1 / (n_resamples + 1)
    assert np.all(np.abs(result.table["p_value"] - exact) <= monte_carlo)
    top = int(np.argmax(observed))  # step-down max-T: the largest statistic is compared with the maximum
    assert abs(result.table["p_adjusted"][top] - exact_max_t[top]) <= monte_carlo[top]
    assert np.all(result.table["p_adjusted"] >= result.table["p_value"] - 1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n_resamples", [99, 199, 999])  # alpha (B + 1) is an integer, but not in floats
def test_the_interval_excludes_zero_exactly_when_the_test_rejects(seed: int, n_resamples: int) -> None:
    dataset = generate(n_episodes=6, n_steps=4, checkpoints=(1, 2, 3), heads=specialising_heads(1, 3),
                       rng=seed).dataset
    for level in (0.9, 0.95):
        table = trend_test(dataset, SETTINGS, n_resamples=n_resamples, rng=np.random.default_rng(seed),
                           confidence_level=level).table
        excludes = (table["ci_low"] > 0) | (table["ci_high"] < 0)
        np.testing.assert_array_equal(excludes, table["p_value"] < round(1 - level, 12))  # 1 - 0.95 > 0.05 in floats
        assert ((table["ci_low"] <= table["slope"]) & (table["slope"] <= table["ci_high"])).all()
        half = table["slope"] - table["ci_low"]
        np.testing.assert_allclose(table["ci_high"] - table["slope"], half, rtol=1e-12)  # symmetric
    assert table["trend"].str.startswith("rho(").all()


def test_too_few_permutations_to_reject_give_an_unbounded_interval(emerging: HSIDataset) -> None:
    table = trend_test(emerging, SETTINGS, n_resamples=18, rng=np.random.default_rng(1)).table
    assert (table["p_value"] >= 0.05).all() and np.isinf(table["ci_high"]).all() and np.isinf(table["ci_low"]).all()


def test_a_bootstrap_resample_is_the_data_set_that_repeats_its_episodes(emerging: HSIDataset) -> None:
    episodes = episode_sums(emerging, SETTINGS)
    weights = episodes.resampled(np.random.default_rng(4), 1)  # (1, K, G)
    labels = np.char.add(np.char.add(emerging.steps.astype(str), "|"), emerging.groups.astype(str))
    order = np.unique(labels)  # the rows of the per-episode sums, in group-code order
    for k in range(len(episodes.steps)):
        assert weights[0, k].sum() == np.sum(episodes.step_of_row == k)  # each checkpoint keeps its count
        assert np.all(weights[0, k, episodes.step_of_row != k] == 0)
        keep, relabelled = [], []
        for row in np.flatnonzero(weights[0, k]):
            for copy in range(int(weights[0, k, row])):
                scenarios = np.flatnonzero(labels == order[row])
                keep.extend(scenarios)
                relabelled.extend([f"{order[row]}#{copy}"] * scenarios.size)
        repeated = _scenarios(emerging, np.array(keep)).with_groups(np.array(relabelled))
        np.testing.assert_allclose(episodes.rho(weights)[0, k], estimate(repeated, SETTINGS).rho, rtol=1e-9,
                                   atol=1e-12)


def test_the_numbers_do_not_depend_on_the_batch_size(emerging: HSIDataset, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = trend_test(emerging, SETTINGS, n_resamples=60, rng=np.random.default_rng(9)).table
    monkeypatch.setattr(trend_module, "_BATCH", 7)
    batched = trend_test(emerging, SETTINGS, n_resamples=60, rng=np.random.default_rng(9)).table
    np.testing.assert_array_equal(whole.to_numpy(), batched.to_numpy())


def test_slope_contrast_is_least_squares() -> None:
    for n_steps in (2, 3, 7):
        y = np.random.default_rng(n_steps).normal(size=n_steps)
        assert slope_contrast(n_steps) @ y == pytest.approx(np.polyfit(np.arange(n_steps), y, 1)[0], rel=1e-12)


@pytest.mark.slow
def test_no_change_gives_no_direction_and_controls_the_family_wise_error() -> None:
    """Under "no change" (the same heads at every checkpoint) the checkpoints are exchangeable: the reported trend
    has mean 0 exactly (the tracked feature does not depend on their order, and the contrast sums to 0), and the
    max-T adjusted p-values keep the family-wise error at alpha. Choosing the strongest feature at the last
    checkpoint instead gives a mean trend well above 0 in this simulation."""
    n_runs, alpha = 400, 0.05
    seeds = np.random.SeedSequence(20261202).spawn(n_runs)
    trends, last_step_trends, any_rejected, covered = [], [], 0, []
    for seed in seeds:
        data_seed, test_seed = seed.spawn(2)
        dataset = generate(n_episodes=10, n_steps=4, checkpoints=(1, 2, 3), rng=np.random.default_rng(data_seed),
                           ).dataset
        table = trend_test(dataset, SETTINGS, n_resamples=199, rng=np.random.default_rng(test_seed)).table
        trends.append(table["slope"].to_numpy())
        covered.append(((table["ci_low"] <= 0) & (0 <= table["ci_high"])).to_numpy())
        any_rejected += bool((table["p_adjusted"] < alpha).any())
        rho = episode_sums(dataset, SETTINGS)
        per_checkpoint = rho.rho(rho.assigned(rho.step_of_row[None, :]))[0]
        last = np.nanargmax(np.abs(per_checkpoint[-1]), axis=1)
        heads = np.arange(per_checkpoint.shape[1])
        sign = np.sign(per_checkpoint[-1, heads, last])
        last_step_trends.append(sign * (slope_contrast(3) @ per_checkpoint[:, heads, last]))
    per_run = np.array(trends).mean(axis=1)  # heads of a run are dependent; runs are independent
    t_reported = per_run.mean() / (per_run.std(ddof=1) / math.sqrt(n_runs))
    assert abs(t_reported) < 3.5
    per_run_last = np.array(last_step_trends).mean(axis=1)
    per_run_last = per_run_last[np.isfinite(per_run_last)]  # its feature may be undefined at an earlier checkpoint
    assert per_run_last.mean() / (per_run_last.std(ddof=1) / math.sqrt(n_runs)) > 5  # the bias this choice avoids
    assert any_rejected <= stats.binom.ppf(0.999, n_runs, alpha)
    assert np.mean(covered) >= 0.93  # the test's interval: covers 0 whenever the test does not reject
