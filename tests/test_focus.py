"""The focus effect size against a loop written from its definition, its invariants, and its resampling.

- ``focus_sums(...).focus()`` equals a plain Python loop over scenarios, heads and features (targets found by
  ``min``/``max`` or the 0/1 flags, shares of the attention's magnitude, the mean over the scenarios that count)
  on data with padding garbage, NaN, +-inf, ties, tiny scenarios and indicator features.
- Uniform attention gives 0, all attention on the target 1, none on it -1 (a negative mean excess over its floor
  u/(1-u)); the focus does not change when
  the entities are reordered, the padding holds anything, a scenario's attention is rescaled, or a continuous
  feature is transformed by an increasing function; a head unrelated to the feature has a focus near 0.
- A bootstrap replicate of the focus (group weights) equals the focus of the resampled data set, and
  ``analyze`` reports the focus of every pair with an interval from the same resamples as rho.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from hsi_stats import HSIDataset, analyze
from hsi_stats.focus import focus_sums, is_indicator
from tests.test_estimators import FEATURES, make_case


def brute_focus(case, directions: np.ndarray) -> np.ndarray:
    n_scen, n_heads, n_slots = case.shape
    indicator = {}
    for name in FEATURES:
        values = [case.features[name][s, v] for s in range(n_scen) for v in range(n_slots)
                  if case.mask[s, v] and not math.isnan(case.features[name][s, v])]
        indicator[name] = bool(values) and all(x in (0.0, 1.0) for x in values)
    out = np.full((n_heads, len(FEATURES)), np.nan)
    for h in range(n_heads):
        for f, name in enumerate(FEATURES):
            direction = directions[h, f]
            per_scenario = []
            for s in range(n_scen):
                entities = [v for v in range(n_slots)
                            if case.mask[s, v] and not math.isnan(case.features[name][s, v])]
                values = [case.features[name][s, v] for v in entities]
                if len(entities) < 2:
                    continue
                if indicator[name]:
                    targets = [v for v, x in zip(entities, values, strict=True) if x == (1.0 if direction > 0 else 0.0)]
                else:
                    extreme = max(values) if direction > 0 else min(values)
                    targets = [v for v, x in zip(entities, values, strict=True) if x == extreme]
                mass = {v: abs(case.attention[s, h, v]) for v in entities}
                total = sum(mass.values())
                if not 0 < len(targets) < len(entities) or total <= 0:
                    continue
                share = sum(mass[v] for v in targets) / total
                uniform = len(targets) / len(entities)
                per_scenario.append(((share - uniform) / (1 - uniform), uniform / (1 - uniform)))
            if per_scenario:
                excess = sum(e for e, _ in per_scenario) / len(per_scenario)
                floor = sum(f for _, f in per_scenario) / len(per_scenario)
                out[h, f] = excess if excess >= 0 else excess / floor  # a negative excess over its own floor
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_focus_matches_the_loop(seed):
    case = make_case(seed)
    directions = np.random.default_rng(seed).choice([-1, 1], size=(case.shape[1], len(FEATURES)))
    ours = focus_sums(case.dataset(), directions).focus()
    np.testing.assert_allclose(ours, brute_focus(case, directions), rtol=0, atol=1e-12)
    assert is_indicator(case.features["is_ahead"], case.mask) and not is_indicator(case.features["lane"], case.mask)


# --------------------------------------------------------------------------- invariants
def _scenario(attention: list[float], ttc: list[float], flag: list[float]) -> HSIDataset:
    return HSIDataset(np.array([[attention]]), {"ttc": np.array([ttc]), "flag": np.array([flag])})


@pytest.mark.parametrize(("attention", "expected"), [
    ([0.25, 0.25, 0.25, 0.25], (0.0, 0.0)),
    ([1.0, 0.0, 0.0, 0.0], (1.0, -1.0)),  # all on the lowest TTC (flag: none on the two flagged entities)
    ([0.0, 0.5, 0.5, 0.0], (-1.0, 1.0)),  # none on the lowest TTC (-1, its floor); all on the two flagged ones
    ([0.4, 0.3, 0.3, 0.0], ((0.4 - 0.25) / 0.75, (0.6 - 0.5) / 0.5)),
    ([0.1, 0.3, 0.3, 0.3], ((0.1 - 0.25) / 0.25, (0.6 - 0.5) / 0.5)),  # below uniform: over the floor u
])
def test_focus_scale(attention, expected):
    ds = _scenario(attention, [1.0, 3.0, np.inf, 2.0], [0.0, 1.0, 1.0, 0.0])
    focus = focus_sums(ds, np.array([[-1, 1]])).focus()[0]
    np.testing.assert_allclose(focus, expected, atol=1e-12)


def test_focus_does_not_depend_on_order_padding_scale_or_increasing_transforms():
    case = make_case(3)
    ds = case.dataset()
    directions = np.ones((ds.n_heads, ds.n_features), dtype=int)
    directions[:, 0] = -1
    reference = focus_sums(ds, directions).focus()
    rng = np.random.default_rng(4)
    order = np.array([rng.permutation(ds.n_slots) for _ in range(ds.n_scenarios)])
    take = lambda a: np.take_along_axis(a, order if a.ndim == 2 else order[:, None, :], axis=-1)  # noqa: E731
    permuted = HSIDataset(take(case.attention), {k: take(v) for k, v in case.features.items()},
                          mask=take(case.mask), groups=case.groups)
    garbage = np.where(case.mask[:, None, :], case.attention, rng.normal(size=case.attention.shape) * 1e3)
    scale = rng.uniform(0.1, 10.0, size=(ds.n_scenarios, 1, 1))
    transformed = {k: (np.arctan(v / 10) if k in ("distance_to_ego", "ttc") else v) for k, v in case.features.items()}
    for variant in (permuted,
                    HSIDataset(garbage, case.features, mask=case.mask, groups=case.groups),
                    HSIDataset(case.attention * scale, case.features, mask=case.mask, groups=case.groups),
                    HSIDataset(case.attention, transformed, mask=case.mask, groups=case.groups)):
        np.testing.assert_allclose(focus_sums(variant, directions).focus(), reference, rtol=1e-12, atol=1e-12)


def test_a_head_unrelated_to_the_feature_has_focus_near_zero():
    # Exchangeable attention (a Dirichlet draw per scenario, whatever the feature): the expected share on the
    # target is k/n, so the focus is 0 up to Monte-Carlo error; a scaling that differed above and below the
    # uniform share would bias it.
    rng = np.random.default_rng(6)
    n_scen, width = 4000, 8
    present = rng.integers(2, width + 1, size=n_scen)
    mask = np.arange(width)[None, :] < present[:, None]
    attention = np.where(mask, rng.dirichlet(np.full(width, 0.3), size=n_scen), 0.0)[:, None, :]
    features = {"ttc": rng.exponential(size=(n_scen, width)), "flag": (rng.random((n_scen, width)) < 0.3) * 1.0}
    sums = focus_sums(HSIDataset(attention, features, mask=mask), np.array([[-1, 1]]))
    per_scenario_sd = 0.45  # about the spread of one scenario's focus here; 4000 scenarios: SE ~ 0.007
    np.testing.assert_allclose(sums.focus()[0], 0.0, atol=4 * per_scenario_sd / np.sqrt(n_scen))


def test_directions_are_checked():
    ds = make_case(0).dataset()
    with pytest.raises(ValueError, match=r"`directions` must be an \(H, F\) = \(3, 4\) array of \+1 and -1"):
        focus_sums(ds, np.zeros((3, 4), dtype=int))


# --------------------------------------------------------------------------- resampling
def test_a_bootstrap_replicate_is_the_focus_of_the_resampled_data():
    case = make_case(5)
    ds = case.dataset()
    directions = np.where(np.random.default_rng(1).random((ds.n_heads, ds.n_features)) < 0.5, -1, 1)
    sums = focus_sums(ds, directions)
    labels = sorted(set(case.groups))
    rows_of = defaultdict(list)
    for s, g in enumerate(case.groups):
        rows_of[g].append(s)
    rng = np.random.default_rng(2)
    for _ in range(10):
        drawn = rng.integers(0, len(labels), size=len(labels))
        rows = [r for g in drawn for r in rows_of[labels[g]]]
        group_ids = [f"{i}" for i, g in enumerate(drawn) for _ in rows_of[labels[g]]]
        resampled = HSIDataset(case.attention[rows], {k: v[rows] for k, v in case.features.items()},
                               mask=case.mask[rows], groups=group_ids)
        weights = np.bincount(drawn, minlength=len(labels)).astype(float)[None, :]
        np.testing.assert_allclose(sums.focus(weights)[0], focus_sums(resampled, directions).focus(),
                                   rtol=1e-12, atol=1e-12)


def test_analyze_reports_focus_with_an_interval():
    from hsi_stats.synthetic import generate

    result = analyze(generate(n_episodes=14, n_steps=6, rng=3).dataset, n_resamples=199, rng=0)
    pairs = result.pairs
    assert list(pairs.columns[7:11]) == ["focus", "focus_ci_low", "focus_ci_high", "focus_target"]
    inside = (pairs["focus_ci_low"] <= pairs["focus"]) & (pairs["focus"] <= pairs["focus_ci_high"])
    assert inside.mean() > 0.9
    ttc = pairs[(pairs["head"] == "h0") & (pairs["feature"] == "ttc")].iloc[0]
    assert ttc["focus_target"] == "lowest" and ttc["focus"] > 0.5
    ahead = pairs[(pairs["head"] == "h3") & (pairs["feature"] == "is_ahead")].iloc[0]
    assert ahead["focus_target"] == "flagged" and ahead["focus"] > 0.8
    assert result.heads.loc[3, "label_focus"] == ahead["focus"]
    registry = result.registry()
    assert registry["3"]["focus"] == ahead["focus"] and registry["3"]["focus_target"] == "flagged"
