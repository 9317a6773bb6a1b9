"""The default correlation on heads whose function is known by construction (attention as a share of mass).

- Token-like data: a head with all its mass on the previous entity, a partly selective "next entity" head whose
  other mass stays local, "first entity" heads, and a head whose attention falls off with distance. The default
  names each head's own feature, and a head with at least 95% of its mass on a flagged entity has HSI >= 0.9;
  Spearman, which ranks the attention too, cannot: once the other 5% are spread unevenly, the ranks of the
  attention correlate with a one-hot feature at most sqrt(3/(n+1)).
- Driving-like data: a head with 92% of its mass on the lowest-TTC vehicle, TTC heavy-tailed and +inf for
  receding vehicles, is a validated Safety Head on ``ttc`` with a focus of at least 0.85, its interval included.
"""

from __future__ import annotations

import numpy as np
import pytest

from hsi_stats import HSIDataset, analyze, estimate

N_EPISODES, STEPS = 30, 12


def _normalised(weights: np.ndarray, mask: np.ndarray) -> np.ndarray:
    weights = np.where(mask, weights, 0.0)
    return weights / weights.sum(axis=-1, keepdims=True)


def token_heads(seed: int = 0) -> HSIDataset:
    """Sequences of 4-10 tokens, one query per scenario at a random position; entities are the tokens.

    Features: ``is_prev`` and ``is_next`` (the neighbours of the query), ``is_first`` (a [CLS]-like token) and
    ``abs_distance`` from the query. Heads: previous-token (all mass, or 95%), next-token (67%, the rest falling off
    with distance), two first-token heads (81%), a distance head (mass proportional to exp(-distance)).
    """
    rng = np.random.default_rng(seed)
    n_scen, width = N_EPISODES * STEPS, 10
    length = rng.integers(4, width + 1, size=n_scen)
    mask = np.arange(width)[None, :] < length[:, None]
    query = rng.integers(1, length - 1)  # a previous and a next token always exist
    position = np.arange(width)[None, :]
    distance = np.abs(position - query[:, None]).astype(float)
    features = {"is_prev": (position == query[:, None] - 1).astype(float),
                "is_next": (position == query[:, None] + 1).astype(float),
                "is_first": (position == 0).astype(float),
                "abs_distance": distance}
    local = _normalised(np.exp(-distance) * (distance > 0), mask)
    noise = _normalised(rng.dirichlet(np.ones(width), size=n_scen), mask)

    def mix(share: float, target: np.ndarray, rest: np.ndarray) -> np.ndarray:
        return share * target + (1 - share) * _normalised(rest * (1 - target), mask)

    heads = [
        features["is_prev"],  # all its mass on the previous token
        mix(0.95, features["is_prev"], noise),
        mix(0.67, features["is_next"], local),
        mix(0.81, features["is_first"], noise),
        mix(0.82, features["is_first"], local),
        _normalised(np.exp(-distance), mask),
    ]
    attention = np.stack(heads, axis=1)
    return HSIDataset(attention, {k: np.where(mask, v, 0.0) for k, v in features.items()}, mask=mask,
                      groups=np.repeat(np.arange(N_EPISODES), STEPS),
                      head_names=["prev-1.0", "prev-0.95", "next-0.67", "first-0.81", "first-0.82", "distance"])


EXPECTED = {"prev-1.0": "is_prev", "prev-0.95": "is_prev", "next-0.67": "is_next", "first-0.81": "is_first",
            "first-0.82": "is_first", "distance": "abs_distance"}


def test_the_default_names_each_head_and_calls_selective_heads_strong() -> None:
    est = estimate(token_heads())
    assert dict(zip(est.head_names, est.primary_feature, strict=True)) == EXPECTED
    hsi = dict(zip(est.head_names, est.hsi, strict=True))
    assert hsi["prev-1.0"] == pytest.approx(1.0, abs=1e-12) and hsi["prev-0.95"] >= 0.9
    assert min(hsi["first-0.81"], hsi["first-0.82"]) > 0.7 and hsi["next-0.67"] > 0.5
    rho = dict(zip(est.head_names, est.rho[:, est.feature_names.index("abs_distance")], strict=True))
    assert rho["distance"] < -0.7


def test_spearman_caps_the_selective_head() -> None:
    ds = token_heads()
    est = estimate(ds, correlation="spearman")
    n = ds.mask.sum(axis=1)
    assert est.head_names[1] == "prev-0.95"
    assert est.hsi[1] <= np.sqrt(3 / (n.min() + 1)) + 1e-9  # the cap of distinct attention against one flag
    assert est.hsi[1] < 0.6 and est.hsi[0] == pytest.approx(1.0)  # exact zeros tie: only then does it reach 1


def argmin_ttc_head(seed: int = 1, share: float = 0.92) -> HSIDataset:
    """Highway scenes of 3-8 vehicles; one head puts ``share`` of its mass on the lowest TTC, the others are noise.

    TTC = distance / closing speed for closing vehicles, +inf for receding ones (about a third), heavy-tailed;
    distance and closing speed are features too, and so is a lane indicator unrelated to the head.
    """
    rng = np.random.default_rng(seed)
    n_scen, width = N_EPISODES * STEPS, 8
    present = rng.integers(3, width + 1, size=n_scen)
    mask = np.arange(width)[None, :] < present[:, None]
    distance = rng.lognormal(3.0, 0.6, size=(n_scen, width))
    closing = rng.normal(1.5, 3.0, size=(n_scen, width))
    ttc = np.where(closing > 0.5, distance / np.maximum(closing, 0.5), np.inf)
    ttc[~mask] = 0.0
    finite_min = np.where(mask, ttc, np.inf).min(axis=1, keepdims=True)
    target = (mask & (ttc == finite_min) & np.isfinite(finite_min)).astype(float)
    noise = _normalised(rng.dirichlet(np.ones(width), size=n_scen), mask)
    rest = _normalised(np.where(mask, 1.0, 0.0) * (1 - target), mask)
    safety = np.where(target.sum(axis=1, keepdims=True) > 0, share * target + (1 - share) * rest, noise)
    others = [_normalised(rng.dirichlet(np.ones(width), size=n_scen), mask) for _ in range(3)]
    features = {"ttc": ttc, "distance_to_ego": np.where(mask, distance, 0.0),
                "closing_speed": np.where(mask, closing, 0.0),
                "is_left": np.where(mask, rng.random((n_scen, width)) < 0.3, 0.0).astype(float)}
    return HSIDataset(np.stack([safety, *others], axis=1), features, mask=mask,
                      groups=np.repeat(np.arange(N_EPISODES), STEPS))


def test_a_head_on_the_lowest_ttc_is_a_validated_safety_head_with_high_focus() -> None:
    ds = argmin_ttc_head()
    assert np.isinf(ds.features["ttc"][ds.mask]).mean() > 0.2
    result = analyze(ds, n_resamples=999, rng=0)
    head = result.heads.loc[0]
    assert head["primary_feature"] == "ttc" and head["label_feature"] == "ttc"
    assert head["label"] == "Safety Head" and bool(head["validated"]), head["reasons"]
    assert head["label_focus_ci_low"] >= 0.85 and head["label_focus"] <= head["label_focus_ci_high"]
    assert not result.heads.loc[1:, "validated"].any()
    # Plain Pearson on the raw, heavy-tailed TTC (+inf left out) names closing speed instead.
    pearson = estimate(ds, correlation="pearson")
    assert pearson.primary_feature[0] == "closing_speed"
    assert abs(pearson.rho[0, 0]) < abs(result.estimate.rho[0, 0]) - 0.2
