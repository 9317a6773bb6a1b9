"""Invariants of the joint model, checked by Hypothesis on small random data sets.

The joint model compares the entities present together in a scenario through their within-scenario percentiles,
so its coefficients, standard errors and tests must not change when the entity slots of a scenario are permuted,
when padding slots are added (whatever they hold), when a continuous feature goes through a strictly increasing
transform (a decreasing one turns its coefficient's sign), when the scenarios are reordered or the groups
relabelled, or when the data are cut into smaller chunks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hsi_stats import HSIDataset, analyze
from hsi_stats import chunks as chunk_module

TOL = 1e-9
COLUMNS = ["coef", "se", "p_value"]


@st.composite
def datasets(draw: st.DrawFn) -> HSIDataset:
    """Planted heads over two continuous features (with ties and +inf) and an indicator, 12-16 groups."""
    seed = draw(st.integers(0, 2**32 - 1))
    n_groups, steps, n_slots = draw(st.integers(12, 16)), draw(st.integers(2, 4)), draw(st.integers(3, 6))
    rng = np.random.default_rng(seed)
    n = n_groups * steps
    mask = np.arange(n_slots)[None, :] < rng.integers(2, n_slots + 1, n)[:, None]
    distance = rng.integers(1, 20, (n, n_slots)).astype(float)  # ties
    ttc = np.where(rng.random((n, n_slots)) < 0.2, np.inf, rng.integers(1, 6, (n, n_slots)).astype(float))
    ahead = (rng.random((n, n_slots)) < 0.5).astype(float)
    logits = (-0.1 * distance + 1.5 * ahead)[:, None, :] + rng.normal(0, 1, (n, 2, n_slots))
    attention = np.where(mask[:, None, :], np.exp(logits), 0.0)
    features = {"distance_to_ego": distance, "ttc": ttc, "is_ahead": ahead}
    return HSIDataset(attention / attention.sum(axis=2, keepdims=True), features, mask=mask,
                      groups=np.repeat(np.arange(n_groups), steps))


def joint(dataset: HSIDataset) -> pd.DataFrame:
    return analyze(dataset, n_resamples=99, rng=0).joint.set_index(["head", "feature"])


def assert_same(left: pd.DataFrame, right: pd.DataFrame, columns: list[str] = COLUMNS) -> None:
    assert list(left.index) == list(right.index)
    for column in columns:
        np.testing.assert_allclose(left[column].to_numpy(), right[column].to_numpy(), rtol=TOL, atol=TOL)


def rebuilt(ds: HSIDataset, *, attention: np.ndarray | None = None, features: dict | None = None,
            mask: np.ndarray | None = None, groups: np.ndarray | None = None) -> HSIDataset:
    return HSIDataset(ds.attention if attention is None else attention, ds.features if features is None else features,
                      mask=ds.mask if mask is None else mask, groups=ds.groups if groups is None else groups)


property_settings = settings(max_examples=15)


@property_settings
@given(datasets(), st.integers(0, 2**32 - 1))
def test_permuting_entities_within_scenarios_changes_nothing(ds: HSIDataset, seed: int) -> None:
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random((ds.n_scenarios, ds.n_slots)), axis=1)
    permuted = rebuilt(ds, attention=np.take_along_axis(ds.attention, order[:, None, :], axis=2),
                       features={k: np.take_along_axis(v, order, axis=1) for k, v in ds.features.items()},
                       mask=np.take_along_axis(ds.mask, order, axis=1))
    assert_same(joint(ds), joint(permuted))


@property_settings
@given(datasets(), st.integers(1, 3), st.sampled_from([np.nan, np.inf, -7.0, 1e9]))
def test_padding_slots_change_nothing(ds: HSIDataset, extra: int, garbage: float) -> None:
    pad = np.full((ds.n_scenarios, extra), garbage)
    padded = rebuilt(ds, attention=np.concatenate([ds.attention, np.full((ds.n_scenarios, ds.n_heads, extra), 0.37)],
                                                  axis=2),
                     features={k: np.concatenate([v, pad], axis=1) for k, v in ds.features.items()},
                     mask=np.concatenate([ds.mask, np.zeros(pad.shape, bool)], axis=1))
    assert_same(joint(ds), joint(padded))


@property_settings
@given(datasets())
def test_monotone_transforms_keep_coefficients_and_decreasing_ones_turn_their_sign(ds: HSIDataset) -> None:
    reference = joint(ds)
    increasing = joint(rebuilt(ds, features={**ds.features, "distance_to_ego": np.log(ds.features["distance_to_ego"])
                                             * 3 + 1}))
    assert_same(reference, increasing)
    decreasing = joint(rebuilt(ds, features={**ds.features, "distance_to_ego": -ds.features["distance_to_ego"]}))
    flipped = reference.copy()
    rows = flipped.index.get_level_values("feature") == "distance_to_ego"
    flipped.loc[rows, "coef"] *= -1
    assert_same(flipped, decreasing)


@property_settings
@given(datasets(), st.integers(0, 2**32 - 1))
def test_the_order_of_scenarios_and_the_group_labels_change_nothing(ds: HSIDataset, seed: int) -> None:
    order = np.random.default_rng(seed).permutation(ds.n_scenarios)
    shuffled = HSIDataset(ds.attention[order], {k: v[order] for k, v in ds.features.items()}, mask=ds.mask[order],
                          groups=np.asarray([f"episode {g}" for g in ds.groups])[order])
    assert_same(joint(ds), joint(shuffled), ["coef", "se", "p_value"])


@property_settings
@given(datasets(), st.integers(3, 40))
def test_chunk_size_changes_nothing(ds: HSIDataset, values: int) -> None:
    reference = joint(ds)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(chunk_module, "CHUNK_VALUES", values)
        assert_same(reference, joint(ds), ["coef", "se", "p_value", "p_adjusted"])


@settings(max_examples=5)
@given(datasets(), st.integers(1, 99))
def test_batch_size_changes_nothing_not_even_the_max_t_adjustment(ds: HSIDataset, batch: int) -> None:
    one = analyze(ds, n_resamples=99, rng=3).joint
    other = analyze(ds, n_resamples=99, rng=3, batch=batch).joint
    pd.testing.assert_frame_equal(one, other)
