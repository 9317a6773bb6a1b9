"""Properties every estimator must have, checked by Hypothesis on small random datasets.

Values are drawn from a coarse grid (halves and small integers) so that ties are common and strictly
increasing transforms keep distinct values distinct in floating point. Each property runs for the
estimator/correlation combinations for which it holds mathematically; comments say why where
that is a restriction.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hsi_stats import HSIDataset, estimate, load_npz, write_npz
from hsi_stats._validation import ConstantInputWarning

pytestmark = pytest.mark.slow  # property-based: many generated data sets per invariant

TOL = 1e-9
GRID = [k / 2 for k in range(-4, 5)]
NON_FINITE = [np.inf, -np.inf, np.nan]
FEATURE_VALUES = st.sampled_from(GRID + NON_FINITE)
GARBAGE = [np.nan, np.inf, -np.inf, 1e6, -3.5, 0.0]
COUNTS = ["missing", "infinite", "infinite_left_out"]  # left_out columns

CORRELATIONS = ("rank-feature", "spearman", "pearson")
COMBOS = {f"{e}-{c}": {"estimator": e, "correlation": c}
          for e in ("within", "pooled", "fisher") for c in CORRELATIONS}
COMBOS.update({f"within-slot-{c}": {"estimator": "within", "correlation": c, "adjust": "slot"}
               for c in CORRELATIONS})
# Invariance to strictly increasing transforms: Spearman on both sides, rank-feature on the feature side (it is
# linear in attention), Pearson only to positive affine maps.
SPEARMAN_COMBOS = {k: v for k, v in COMBOS.items() if v["correlation"] == "spearman"}
FEATURE_RANK_COMBOS = {k: v for k, v in COMBOS.items() if v["correlation"] in ("spearman", "rank-feature")}
PEARSON_COMBOS = {k: v for k, v in COMBOS.items() if v["correlation"] == "pearson"}
LINEAR_IN_ATTENTION = {k: v for k, v in COMBOS.items() if v["correlation"] in ("rank-feature", "pearson")}

property_settings = settings(max_examples=100)


# --------------------------------------------------------------------------- strategies
@st.composite
def datasets(draw: st.DrawFn, *, max_scenarios: int = 6) -> HSIDataset:
    """Small datasets: ties, garbage on padding, non-finite features, groups, maybe slots."""
    n_scen = draw(st.integers(2, max_scenarios))
    n_heads = draw(st.integers(1, 3))
    n_slots = draw(st.integers(2, 5))
    n_features = draw(st.integers(1, 3))
    mask = draw(arrays(np.bool_, (n_scen, n_slots)))
    levels = st.integers(0, 6).map(float)
    attention = draw(arrays(np.float64, (n_scen, n_heads, n_slots), elements=levels))
    padding = draw(arrays(np.float64, attention.shape, elements=st.sampled_from(GARBAGE)))
    features = {
        f"f{i}": draw(arrays(np.float64, (n_scen, n_slots), elements=FEATURE_VALUES))
        for i in range(n_features)
    }
    slot_values = arrays(np.int64, (n_scen, n_slots), elements=st.integers(0, 3))
    return HSIDataset(
        np.where(mask[:, None, :], attention, padding),
        features,
        mask=mask,
        groups=draw(arrays(np.int64, n_scen, elements=st.integers(0, 2))),
        slots=draw(st.none() | slot_values),
    )


# --------------------------------------------------------------------------- helpers
def run(dataset: HSIDataset, options: dict):
    """``estimate`` with the NaN warning silenced (constant variables are common in tiny data)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        return estimate(dataset, **options)


def rebuild(dataset: HSIDataset, **changes) -> HSIDataset:
    """A copy of ``dataset`` with some constructor arguments replaced."""
    fields = {"attention": dataset.attention, "features": dict(dataset.features),
              "mask": dataset.mask, "groups": dataset.groups, "steps": dataset.steps,
              "slots": dataset.slots, "head_names": dataset.head_names}
    fields.update(changes)
    return HSIDataset(fields.pop("attention"), fields.pop("features"), **fields)


def explicit_slots(dataset: HSIDataset) -> np.ndarray:
    """The slots the adjustment uses: the given array, or else the column index."""
    if dataset.slots is not None:
        return dataset.slots
    return np.broadcast_to(np.arange(dataset.n_slots), dataset.mask.shape)


def assert_close(actual: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL, equal_nan=True)


def assert_same_estimate(actual, expected) -> None:
    assert_close(actual.rho, expected.rho)
    assert_close(actual.hsi, expected.hsi)


def for_each(combos: dict[str, dict], check: Callable[[dict], None]) -> None:
    """Run ``check(options)`` for every estimator combination, naming the one that fails."""
    for name, options in combos.items():
        try:
            check(options)
        except AssertionError as exc:
            raise AssertionError(f"[{name}] {exc}") from None


def for_each_pair(combos: dict[str, dict], original: HSIDataset, changed: HSIDataset,
                  check: Callable) -> None:
    """Run ``check(estimate of changed, estimate of original)`` for every combination."""
    for_each(combos, lambda options: check(run(changed, options), run(original, options)))


def same_estimate_and_counts(after, before) -> None:
    assert_same_estimate(after, before)
    np.testing.assert_array_equal(after.n_used, before.n_used)
    assert after.left_out.equals(before.left_out)


def on_valid(values: np.ndarray, valid: np.ndarray, transform: Callable) -> np.ndarray:
    """``transform`` applied where ``valid`` (padding garbage kept as it is, never transformed)."""
    return np.where(valid, transform(np.where(valid, values, 0.0)), values)


INCREASING = {
    "exp": np.exp,
    "cube": lambda v: v**3 + v,
    "arctan": np.arctan,
    "affine": lambda v: 3.0 * v - 7.0,
}


# --------------------------------------------------------------------------- properties
@property_settings
@given(data=st.data())
def test_permuting_entities_within_a_scenario_changes_nothing(data):
    # Slots travel with their entity: with slots=None the implicit slot is the column index, so it
    # is made explicit first (under adjust="slot", moving columns without their slots is a change).
    dataset = data.draw(datasets())
    entities = st.permutations(range(dataset.n_slots))
    perms = np.array([data.draw(entities) for _ in range(dataset.n_scenarios)])
    rows = np.arange(dataset.n_scenarios)[:, None]
    permuted = rebuild(
        dataset,
        attention=dataset.attention[rows, :, perms].transpose(0, 2, 1),
        features={k: v[rows, perms] for k, v in dataset.features.items()},
        mask=dataset.mask[rows, perms],
        slots=explicit_slots(dataset)[rows, perms],
    )
    for_each_pair(COMBOS, dataset, permuted, same_estimate_and_counts)


@property_settings
@given(data=st.data())
def test_permuting_heads_and_features_permutes_the_output(data):
    dataset = data.draw(datasets())
    heads = data.draw(st.permutations(range(dataset.n_heads)))
    names = data.draw(st.permutations(dataset.feature_names))
    order = [dataset.feature_names.index(n) for n in names]
    permuted = rebuild(
        dataset,
        attention=dataset.attention[:, heads, :],
        features={n: dataset.features[n] for n in names},
        head_names=[dataset.head_names[h] for h in heads],
    )

    def check(after, before) -> None:
        assert_close(after.rho, before.rho[np.ix_(heads, order)])
        assert_close(after.hsi, before.hsi[heads])
        np.testing.assert_array_equal(after.n_used, before.n_used[np.ix_(heads, order)])
        assert list(after.left_out["feature"]) == list(names)
        expected_counts = before.left_out[COUNTS].to_numpy()[order]
        np.testing.assert_array_equal(after.left_out[COUNTS], expected_counts)

    for_each_pair(COMBOS, dataset, permuted, check)


@property_settings
@given(dataset=datasets())
def test_rho_and_hsi_are_bounded(dataset):
    def check(options) -> None:
        est = run(dataset, options)
        defined = ~np.isnan(est.rho)
        assert (np.abs(est.rho[defined]) <= 1.0).all()
        for h in range(dataset.n_heads):
            if defined[h].any():
                assert 0.0 <= est.hsi[h] <= 1.0
                assert est.hsi[h] == np.abs(est.rho[h, defined[h]]).max()
            else:
                assert np.isnan(est.hsi[h]) and est.primary_feature[h] is None

    for_each(COMBOS, check)


@property_settings
@given(data=st.data())
def test_rank_correlations_ignore_increasing_transforms(data):
    # One transform for all of the data, so that it holds for pooled ranks too; +-inf stays extreme.
    dataset = data.draw(datasets())
    transform = INCREASING[data.draw(st.sampled_from(sorted(INCREASING)))]
    name = data.draw(st.sampled_from(dataset.feature_names))
    valid = dataset.mask
    attention = on_valid(dataset.attention, valid[:, None, :], transform)
    on_attention = rebuild(dataset, attention=attention)
    feature = on_valid(dataset.features[name], valid, transform)
    on_feature = rebuild(dataset, features={**dataset.features, name: feature})
    for_each_pair(SPEARMAN_COMBOS, dataset, on_attention, assert_same_estimate)
    for_each_pair(FEATURE_RANK_COMBOS, dataset, on_feature, assert_same_estimate)


@property_settings
@given(data=st.data())
def test_attention_may_be_rescaled_and_shifted_per_scenario(data):
    # Linear in attention: one positive scale for all the data and a shift per scenario change nothing for the
    # within estimator (centred per scenario) and the fisher one (a correlation per scenario, which also takes a
    # scale per scenario); the pooled one takes a common shift only.
    dataset = data.draw(datasets())
    scale = data.draw(st.sampled_from([0.25, 3.0, 40.0]))
    shifts = np.array(data.draw(st.lists(st.sampled_from([-2.0, 0.0, 0.5, 7.0]), min_size=dataset.n_scenarios,
                                         max_size=dataset.n_scenarios)))
    scales = np.array(data.draw(st.lists(st.sampled_from([0.5, 1.0, 4.0]), min_size=dataset.n_scenarios,
                                         max_size=dataset.n_scenarios)))
    valid = dataset.mask[:, None, :]
    per_scenario_shift = rebuild(dataset, attention=on_valid(dataset.attention, valid,
                                                             lambda a: scale * a + shifts[:, None, None]))
    common_shift = rebuild(dataset, attention=on_valid(dataset.attention, valid, lambda a: scale * a + shifts[0]))
    per_scenario_affine = rebuild(dataset, attention=on_valid(
        dataset.attention, valid, lambda a: scales[:, None, None] * a + shifts[:, None, None]))
    within = {k: v for k, v in LINEAR_IN_ATTENTION.items() if v["estimator"] == "within"}
    pooled = {k: v for k, v in LINEAR_IN_ATTENTION.items() if v["estimator"] == "pooled"}
    fisher = {k: v for k, v in LINEAR_IN_ATTENTION.items() if v["estimator"] == "fisher"}
    for_each_pair(within, dataset, per_scenario_shift, assert_same_estimate)
    for_each_pair(pooled, dataset, common_shift, assert_same_estimate)
    for_each_pair(fisher, dataset, per_scenario_affine, assert_same_estimate)


@property_settings
@given(data=st.data())
def test_pearson_ignores_positive_affine_maps(data):
    dataset = data.draw(datasets())
    scale = data.draw(st.sampled_from([0.5, 2.0, 10.0]))
    shift = data.draw(st.sampled_from([-3.0, 0.0, 4.5]))
    def affine(values: np.ndarray) -> np.ndarray:
        return scale * values + shift

    rescaled = rebuild(
        dataset,
        attention=on_valid(dataset.attention, dataset.mask[:, None, :], affine),
        features={k: affine(v) for k, v in dataset.features.items()},
    )
    for_each_pair(PEARSON_COMBOS, dataset, rescaled, assert_same_estimate)


@property_settings
@given(data=st.data())
def test_negating_a_feature_negates_its_rho(data):
    dataset = data.draw(datasets())
    name = data.draw(st.sampled_from(dataset.feature_names))
    f = dataset.feature_names.index(name)
    negated = rebuild(dataset, features={**dataset.features, name: -dataset.features[name]})

    def check(after, before) -> None:
        expected = before.rho.copy()
        expected[:, f] *= -1.0
        assert_close(after.rho, expected)
        assert_close(after.hsi, before.hsi)

    for_each_pair(COMBOS, dataset, negated, check)


@property_settings
@given(data=st.data())
def test_padding_can_hold_anything(data):
    dataset = data.draw(datasets())
    padded = ~dataset.mask

    def refill(values: np.ndarray, where: np.ndarray, elements) -> np.ndarray:
        fresh = data.draw(arrays(values.dtype, values.shape, elements=elements))
        return np.where(where, fresh, values)

    anything = st.floats(allow_nan=True, allow_infinity=True)
    changed = rebuild(
        dataset,
        attention=refill(dataset.attention, padded[:, None, :], anything),
        features={k: refill(v, padded, anything) for k, v in dataset.features.items()},
        slots=refill(explicit_slots(dataset), padded, st.integers(-5, 50)),
    )
    for_each_pair(COMBOS, dataset, changed, same_estimate_and_counts)


@property_settings
@given(dataset=datasets())
def test_duplicating_every_group_leaves_rho_unchanged(dataset):
    # Pooled Spearman too: average ranks of a doubled sample are 2r - 1/2, affine in the ranks r.
    offset = int(dataset.groups.max()) + 1
    doubled = HSIDataset(
        np.concatenate([dataset.attention] * 2),
        {k: np.concatenate([v] * 2) for k, v in dataset.features.items()},
        mask=np.concatenate([dataset.mask] * 2),
        groups=np.concatenate([dataset.groups, dataset.groups + offset]),
        slots=None if dataset.slots is None else np.concatenate([dataset.slots] * 2),
    )

    def check(after, before) -> None:
        assert_same_estimate(after, before)
        np.testing.assert_array_equal(after.n_used, 2 * before.n_used)
        np.testing.assert_array_equal(after.left_out[COUNTS], 2 * before.left_out[COUNTS])

    for_each_pair(COMBOS, dataset, doubled, check)


# --------------------------------------------------------------------------- what does not hold
def test_slot_adjustment_without_slots_depends_on_column_order():
    """With slots=None the slot is the column index: moving entities between columns is a change.

    Swapping two columns of one scenario without carrying the slots along changes the slot-adjusted
    rho (the entities now sit in other slots), while carrying explicit slots along does not.
    """
    attention = np.array([[4.0, 2.0, 1.0, 0.0], [3.0, 0.0, 2.0, 1.0], [1.0, 4.0, 0.0, 2.0]])
    attention = attention[:, None, :]
    feature = np.array([[0.0, 1.0, 2.0, 3.0], [0.0, 2.0, 1.0, 3.0], [1.0, 0.0, 3.0, 2.0]])
    swap = np.array([[0, 1, 2, 3], [0, 1, 2, 3], [1, 0, 2, 3]])
    rows = np.arange(3)[:, None]
    options = {"estimator": "within", "correlation": "pearson", "adjust": "slot"}
    dataset = HSIDataset(attention, {"x": feature})
    moved = HSIDataset(attention[rows, :, swap].transpose(0, 2, 1), {"x": feature[rows, swap]})
    carried = HSIDataset(moved.attention, moved.features, slots=np.arange(4)[swap])
    original = run(dataset, options).rho
    assert not np.isnan(original).any()
    assert abs(run(moved, options).rho - original).max() > 0.05
    assert_close(run(carried, options).rho, original)


# --------------------------------------------------------------------------- npz round trip
@st.composite
def datasets_with_metadata(draw: st.DrawFn) -> HSIDataset:
    dataset = draw(datasets())
    n_scen, n_heads = dataset.n_scenarios, dataset.n_heads
    # Control characters excluded: numpy's fixed-width strings drop trailing NULs.
    letters = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
    name = st.text(letters, min_size=1, max_size=8)
    labels = draw(st.sampled_from(["int", "str"]))
    groups = dataset.groups if labels == "int" else np.array([f"ep-{g}" for g in dataset.groups])
    steps = draw(st.none() | arrays(np.int64, n_scen, elements=st.integers(0, 10**9)))
    head_names = draw(st.none() | st.lists(name, min_size=n_heads, max_size=n_heads, unique=True))
    feature_names = draw(st.lists(name, min_size=dataset.n_features, max_size=dataset.n_features,
                                  unique=True))
    features = dict(zip(feature_names, dataset.features.values(), strict=True))
    return rebuild(dataset, features=features, groups=groups, steps=steps, head_names=head_names)


def assert_identical_arrays(actual, expected) -> None:
    if expected is None:
        assert actual is None
        return
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected, strict=True)


@settings(max_examples=40)
@given(dataset=datasets_with_metadata())
def test_npz_round_trip_is_exact(tmp_path_factory, dataset):
    path = tmp_path_factory.mktemp("npz") / "run.npz"
    write_npz(dataset, path)
    loaded = load_npz(path)
    for field in ("attention", "mask", "groups", "steps", "slots"):
        assert_identical_arrays(getattr(loaded, field), getattr(dataset, field))
    assert loaded.feature_names == dataset.feature_names
    assert loaded.head_names == dataset.head_names
    for name in dataset.feature_names:
        assert_identical_arrays(loaded.features[name], dataset.features[name])
    assert loaded.fingerprint() == dataset.fingerprint()
