"""``load_logs``: per-entity attention against an explicit loop over latents and tokens, object-id
alignment, pairing by step and by order, and every error it raises; ``write_logs``: what it writes
reads back, and its argument errors."""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi_stats._validation import DataAlignmentWarning, HSIDataError
from hsi_stats.data import HSIDataset
from hsi_stats.io.driving_logs import load_logs, write_logs
from hsi_stats.io.safe_pickle import UnsafePickleError

LAYERS = ("other_traj/cross_attn_0", "other_traj/cross_attn_1", "roadgraph/cross_attn_0")
N_OBJ, N_SLOTS, T_OBS, N_LATENTS, N_HEADS, SDC_TOKENS, ROAD_TOKENS = 6, 4, 3, 2, 2, 5, 4
N_TOKENS = SDC_TOKENS + N_SLOTS * T_OBS + ROAD_TOKENS
OTHER = (SDC_TOKENS, SDC_TOKENS + N_SLOTS * T_OBS)
NO_IDS = "alignment of attention slots to feature object ids was assumed"


def _steps(ds: HSIDataset) -> list[int]:
    assert ds.steps is not None
    return [int(step) for step in ds.steps]


def make_pair(step: int, seed: int, *, n_samples: int = 3) -> tuple[dict[str, Any], dict[str, Any]]:
    """A feature log and its attention file in the on-disk layout, with object ids and episodes."""
    rng = np.random.default_rng(seed)
    object_ids = np.stack([rng.permutation(N_OBJ)[:N_SLOTS] for _ in range(n_samples)])
    object_ids[0, -1] = -1  # an empty slot
    log = {
        "step": step,
        "semantic_features": {
            "ttc": rng.uniform(0, 5, (n_samples, N_OBJ)),
            "distance_to_ego": rng.uniform(0, 50, (n_samples, N_OBJ)).astype(np.float32),
            "is_ahead": rng.random((n_samples, N_OBJ)) > 0.5,
            "valid": rng.random((n_samples, N_OBJ)) > 0.2,
        },
        "token_boundaries": {"sdc_traj": (0, SDC_TOKENS), "other_traj": OTHER,
                             "roadgraph": (OTHER[1], N_TOKENS)},
        "config": {"num_objects": N_OBJ, "obs_past_num_steps": T_OBS},
        "episode_ids": np.arange(n_samples) // 2,
        "object_ids": object_ids,
    }
    weights = {key: rng.random((n_samples, N_LATENTS, N_TOKENS, N_HEADS)).astype(np.float32)
               for key in LAYERS}
    return log, {"step": step, "attention_weights": weights}


def write_run(root: Path, pairs: list[tuple[dict[str, Any], dict[str, Any]]],
              attention_order: list[int] | None = None) -> tuple[Path, Path]:
    """Write the pairs; attention file i holds the pair ``attention_order[i]``."""
    feature_dir, attention_dir = root / "features", root / "attention"
    feature_dir.mkdir(parents=True, exist_ok=True)
    attention_dir.mkdir(parents=True, exist_ok=True)
    for log, _ in pairs:
        _dump(feature_dir / f"attention_log_{log['step']:08d}.pkl", log)
    for i, k in enumerate(attention_order or range(len(pairs))):
        _dump(attention_dir / f"attention_scenario_{i:04d}.pkl", pairs[k][1])
    return feature_dir, attention_dir


def _dump(path: Path, obj: object) -> None:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle)


def reference(log: dict[str, Any], attention: dict[str, Any],
              keys: tuple[str, ...]) -> dict[str, Any]:
    """Per-entity attention, features and mask by explicit loops (entity-major tokens)."""
    n_samples = attention["attention_weights"][keys[0]].shape[0]
    ids = log["object_ids"]
    att = np.zeros((n_samples, N_HEADS * len(keys), N_SLOTS))
    for k, key in enumerate(keys):
        weights = attention["attention_weights"][key]
        start = log["token_boundaries"][key.split("/")[0]][0]
        for s in range(n_samples):
            for h in range(N_HEADS):
                for v in range(N_SLOTS):
                    total = 0.0
                    for latent in range(N_LATENTS):
                        for t in range(T_OBS):
                            total += float(weights[s, latent, start + v * T_OBS + t, h])
                    att[s, k * N_HEADS + h, v] = total
    feats = {name: np.full((n_samples, N_SLOTS), np.nan) for name in ("ttc", "distance_to_ego",
                                                                       "is_ahead")}
    mask = np.zeros((n_samples, N_SLOTS), dtype=bool)
    for s in range(n_samples):
        for v in range(N_SLOTS):
            obj = ids[s, v]
            if obj >= 0:
                mask[s, v] = log["semantic_features"]["valid"][s, obj]
                for name in feats:
                    feats[name][s, v] = float(log["semantic_features"][name][s, obj])
    return {"attention": att, "features": feats, "mask": mask}


def _expected(pairs: list[tuple[dict[str, Any], dict[str, Any]]], keys: tuple[str, ...]) -> Any:
    parts = [reference(log, att, keys) for log, att in sorted(pairs, key=lambda p: p[0]["step"])]
    return (np.concatenate([p["attention"] for p in parts]),
            {name: np.concatenate([p["features"][name] for p in parts])
             for name in parts[0]["features"]},
            np.concatenate([p["mask"] for p in parts]))


def _assert_same_data(ds: Any, other: Any) -> None:
    assert ds.head_names == other.head_names
    assert ds.feature_names == other.feature_names
    np.testing.assert_array_equal(ds.attention, other.attention)
    np.testing.assert_array_equal(ds.mask, other.mask)
    for name in ds.feature_names:
        np.testing.assert_array_equal(ds.features[name], other.features[name])
    np.testing.assert_array_equal(ds.groups, other.groups)
    np.testing.assert_array_equal(ds.steps, other.steps)


@pytest.fixture
def pairs() -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [make_pair(step, seed) for seed, step in enumerate((300, 100, 200))]


# ---------------------------------------------------------------------------------- values
def test_per_entity_attention_matches_a_loop(tmp_path: Path, pairs: list[Any]) -> None:
    # Attention files are written in a different order from the steps: pairing is by step.
    ds = load_logs(*write_run(tmp_path, pairs, attention_order=[2, 0, 1]))
    attention, features, mask = _expected(pairs, LAYERS[:2])
    assert ds.attention.dtype == np.float64
    assert ds.attention.shape == (9, 2 * N_HEADS, N_SLOTS)
    np.testing.assert_allclose(ds.attention, attention, rtol=1e-12)
    np.testing.assert_array_equal(ds.mask, mask)
    assert ds.feature_names == ("ttc", "distance_to_ego", "is_ahead")
    for name, values in features.items():
        np.testing.assert_array_equal(ds.features[name], values)
    assert _steps(ds) == [100] * 3 + [200] * 3 + [300] * 3
    assert ds.groups.tolist() == ["100/0", "100/0", "100/1", "200/0", "200/0", "200/1",
                                  "300/0", "300/0", "300/1"]
    assert ds.notes == ()


def test_each_layer_gives_its_own_heads(tmp_path: Path, pairs: list[Any]) -> None:
    dirs = write_run(tmp_path, pairs)
    ds = load_logs(*dirs)
    assert ds.head_names == ("other_traj/cross_attn_0:h0", "other_traj/cross_attn_0:h1",
                             "other_traj/cross_attn_1:h0", "other_traj/cross_attn_1:h1")
    one = load_logs(*dirs, attention_key="other_traj/cross_attn_1")
    assert one.head_names == ("other_traj/cross_attn_1:h0", "other_traj/cross_attn_1:h1")
    np.testing.assert_array_equal(one.attention, ds.attention[:, 2:, :])


def test_unknown_attention_key_lists_the_available_keys(tmp_path: Path, pairs: list[Any]) -> None:
    with pytest.raises(HSIDataError, match=r"attention_scenario_0000\.pkl: `attention_key` "
                       r"'lanes' matches no key of `attention_weights`; available keys: "
                       r"\['other_traj/cross_attn_0', 'other_traj/cross_attn_1', "
                       r"'roadgraph/cross_attn_0'\]"):
        load_logs(*write_run(tmp_path, pairs), attention_key="lanes")
    with pytest.raises(HSIDataError, match="'other_traj/cross_attn_9' matches no key"):
        load_logs(*write_run(tmp_path, pairs), attention_key="other_traj/cross_attn_9")


def test_token_boundaries_spanning_all_tokens_use_all_tokens(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    sliced = {key: w[:, :, OTHER[0]:OTHER[1], :] for key, w in att["attention_weights"].items()}
    full = load_logs(*write_run(tmp_path / "full", [(log, att)]))
    only_entities = {"step": 100, "attention_weights": sliced}
    only = load_logs(*write_run(tmp_path / "only", [(log, only_entities)]))
    np.testing.assert_allclose(only.attention, full.attention, rtol=1e-12)


def test_module_without_token_boundaries_uses_all_tokens(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    del log["token_boundaries"]["other_traj"]
    weights = {"other_traj/cross_attn_0": att["attention_weights"]["other_traj/cross_attn_0"]
               [:, :, OTHER[0]:OTHER[1], :]}
    ds = load_logs(*write_run(tmp_path, [(log, {"step": 100, "attention_weights": weights})]))
    log["token_boundaries"]["other_traj"] = (0, N_SLOTS * T_OBS)
    attention, _, _ = _expected([(log, {"attention_weights": weights})],
                                ("other_traj/cross_attn_0",))
    np.testing.assert_allclose(ds.attention, attention, rtol=1e-12)


def test_token_count_not_a_multiple_of_entities(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    log["token_boundaries"]["other_traj"] = (SDC_TOKENS, SDC_TOKENS + 10)
    with pytest.raises(HSIDataError, match=r"attention_scenario_0000\.pkl: "
                       r"`attention_weights\['other_traj/cross_attn_0'\]` has 10 entity tokens, "
                       r"which is not a multiple of V = 4 entities: T_obs = 10 / 4"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_token_boundaries_outside_the_tokens(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    log["token_boundaries"]["other_traj"] = (SDC_TOKENS, N_TOKENS + 8)
    with pytest.raises(HSIDataError, match=rf"has {N_TOKENS} tokens, but "
                       rf"`token_boundaries\['other_traj'\]` = \({SDC_TOKENS}, {N_TOKENS + 8}\) "
                       r"in .*attention_log_00000100\.pkl is not a range within them"):
        load_logs(*write_run(tmp_path, [(log, att)]))


# ---------------------------------------------------------------------------------- alignment
def _pre_aligned(log: dict[str, Any]) -> dict[str, Any]:
    """The same log with features already in attention-slot order and no object ids."""
    ids = log["object_ids"]
    aligned = dict(log)
    aligned["semantic_features"] = {
        name: np.take_along_axis(np.asarray(values), ids, axis=1)
        for name, values in log["semantic_features"].items()
    }
    del aligned["object_ids"]
    return aligned


def test_object_ids_give_the_same_data_as_pre_aligned_features(tmp_path: Path) -> None:
    pairs = []
    for seed, step in enumerate((100, 200)):
        log, att = make_pair(step, seed)
        log["object_ids"][0, -1] = N_OBJ - 1  # no empty slot: pre-aligned data cannot express one
        pairs.append((log, att))
    by_ids = load_logs(*write_run(tmp_path / "ids", pairs))
    with pytest.warns(DataAlignmentWarning, match=NO_IDS):
        pre_aligned = [(_pre_aligned(log), att) for log, att in pairs]
        assumed = load_logs(*write_run(tmp_path / "pre", pre_aligned))
    _assert_same_data(by_ids, assumed)


def test_object_ids_may_come_from_the_attention_file(tmp_path: Path, pairs: list[Any]) -> None:
    expected = load_logs(*write_run(tmp_path / "a", pairs))
    moved = []
    for log, att in pairs:
        log, att = dict(log), dict(att)
        att["object_ids"] = log.pop("object_ids")
        moved.append((log, att))
    _assert_same_data(load_logs(*write_run(tmp_path / "b", moved)), expected)


def test_object_ids_in_both_files_must_agree(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    att["object_ids"] = log["object_ids"][:, ::-1]
    with pytest.raises(HSIDataError, match=r"attention_log_00000100\.pkl and .*"
                       r"attention_scenario_0000\.pkl both carry `object_ids`, but they disagree"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_object_ids_out_of_range(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    log["object_ids"][1, 0] = N_OBJ
    with pytest.raises(HSIDataError, match=rf"`object_ids` must lie in \[-1, {N_OBJ - 1}\].*"
                       rf"values from -1 to {N_OBJ}"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_missing_object_ids_warn_once_and_leave_a_note(tmp_path: Path, pairs: list[Any]) -> None:
    for log, _ in pairs:
        del log["object_ids"]
    with pytest.warns(DataAlignmentWarning) as record:
        ds = load_logs(*write_run(tmp_path, pairs))
    assert len(record) == 1
    assert NO_IDS in str(record[0].message) and "3 of 3 file pairs" in str(record[0].message)
    assert f"{NO_IDS} (no object_ids)" in ds.notes
    assert ds.n_slots == N_OBJ  # V is the number of objects: 18 tokens = 6 objects x 3 steps
    log = pairs[1][0]
    np.testing.assert_array_equal(ds.features["ttc"][:3], log["semantic_features"]["ttc"])
    np.testing.assert_array_equal(ds.mask[:3], log["semantic_features"]["valid"])


# ---------------------------------------------------------------------------------- pairing
def test_pair_by_order_warns_and_notes(tmp_path: Path, pairs: list[Any]) -> None:
    expected = load_logs(*write_run(tmp_path / "steps", pairs))
    for _, att in pairs:
        del att["step"]
    # Sorted attention names must follow sorted feature names: steps 100, 200, 300.
    dirs = write_run(tmp_path / "order", pairs, attention_order=[1, 2, 0])
    with pytest.warns(DataAlignmentWarning, match="pairing by sorted order was assumed"):
        ds = load_logs(*dirs, pair_by="ORDER")
    assert any("pairing by sorted order was assumed" in note for note in ds.notes)
    _assert_same_data(ds, expected)


def test_auto_pairs_by_step_when_the_files_carry_one_and_by_order_otherwise(tmp_path: Path,
                                                                           pairs: list[Any]) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # by step: no assumption, no warning
        expected = load_logs(*write_run(tmp_path / "steps", pairs))
    assert not any("sorted order" in note for note in expected.notes)
    for _, att in pairs:
        del att["step"]  # the original logger wrote no step into the attention files
    dirs = write_run(tmp_path / "original", pairs, attention_order=[1, 2, 0])
    with pytest.warns(DataAlignmentWarning, match="if the two folders do not hold the same checkpoints in the "
                                                  "same order, .* every number is wrong"):
        ds = load_logs(*dirs)
    _assert_same_data(ds, expected)


def test_pair_by_step_needs_a_step_in_every_attention_file(tmp_path: Path,
                                                           pairs: list[Any]) -> None:
    del pairs[2][1]["step"]
    with pytest.raises(HSIDataError, match=r"attention_scenario_0002\.pkl: pair_by='step' needs a "
                       r"`step` field in every attention file.*pass pair_by='order'"):
        load_logs(*write_run(tmp_path, pairs))


def test_pair_by_order_with_disagreeing_steps(tmp_path: Path, pairs: list[Any]) -> None:
    dirs = write_run(tmp_path, pairs)  # attention file 0 is step 300, feature log 0 is step 100
    with pytest.raises(HSIDataError, match=r"pair_by='order' paired .*attention_log_00000100\.pkl "
                       r"\(step 100\) with .*attention_scenario_0000\.pkl \(step 300\)"):
        load_logs(*dirs, pair_by="order")


def test_pair_by_order_needs_equal_counts(tmp_path: Path, pairs: list[Any]) -> None:
    feature_dir, attention_dir = write_run(tmp_path, pairs)
    (attention_dir / "attention_scenario_0002.pkl").unlink()
    with pytest.raises(HSIDataError, match=r"pair_by='order' needs as many attention files as "
                       r"feature logs, but .*features has 3 files .* has 2 matching"):
        load_logs(feature_dir, attention_dir, pair_by="order")


def test_feature_log_without_attention_file(tmp_path: Path, pairs: list[Any]) -> None:
    feature_dir, attention_dir = write_run(tmp_path, pairs, attention_order=[0, 1])
    with pytest.raises(HSIDataError, match=r"attention_log_00000200\.pkl: the feature log of step "
                       r"200 has no attention file of that step \(attention file steps: "
                       r"\[100, 300\]\)"):
        load_logs(feature_dir, attention_dir)


def test_attention_file_without_feature_log(tmp_path: Path, pairs: list[Any]) -> None:
    feature_dir, attention_dir = write_run(tmp_path, pairs)
    (feature_dir / "attention_log_00000300.pkl").unlink()
    with pytest.raises(HSIDataError, match=r"attention_scenario_0000\.pkl: the attention file of "
                       r"step 300 has no feature log of that step \(feature log steps: "
                       r"\[100, 200\]\)"):
        load_logs(feature_dir, attention_dir)


def test_duplicate_steps_name_both_files(tmp_path: Path, pairs: list[Any]) -> None:
    dirs = write_run(tmp_path, pairs, attention_order=[0, 1, 2, 0])
    with pytest.raises(HSIDataError, match=r"attention files .*attention_scenario_0000\.pkl and "
                       r".*attention_scenario_0003\.pkl both have step 300"):
        load_logs(*dirs)
    feature_dir, attention_dir = write_run(tmp_path / "f", pairs)
    _dump(feature_dir / "attention_log_99999999.pkl", pairs[0][0])
    with pytest.raises(HSIDataError, match=r"feature logs .*attention_log_00000300\.pkl and "
                       r".*attention_log_99999999\.pkl both have step 300"):
        load_logs(feature_dir, attention_dir)


def test_n_samples_mismatch_names_both_files_and_shapes(tmp_path: Path) -> None:
    log, _ = make_pair(100, 0, n_samples=3)
    _, att = make_pair(100, 1, n_samples=2)
    with pytest.raises(HSIDataError, match=r"attention_scenario_0000\.pkl: "
                       r"`attention_weights\['other_traj/cross_attn_0'\]` has shape "
                       rf"\(2, {N_LATENTS}, {N_TOKENS}, {N_HEADS}\) \(n_samples = 2\), but the "
                       r"paired feature log .*attention_log_00000100\.pkl has semantic features "
                       rf"of shape \(3, {N_OBJ}\) \(n_samples = 3\)"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_invalid_pair_by(tmp_path: Path, pairs: list[Any]) -> None:
    with pytest.raises(ValueError, match=r"`pair_by` must be one of \{'auto', 'step', 'order'\}, but "
                       r"'name' was passed"):
        load_logs(*write_run(tmp_path, pairs), pair_by="name")


# ---------------------------------------------------------------------------------- selection
def test_step_range_keeps_logs_in_range(tmp_path: Path, pairs: list[Any]) -> None:
    ds = load_logs(*write_run(tmp_path, pairs), step_range=(150, 300))
    assert sorted(set(_steps(ds))) == [200, 300]
    attention, _, _ = _expected(pairs[:1] + pairs[2:], LAYERS[:2])
    np.testing.assert_allclose(ds.attention, attention, rtol=1e-12)


def test_step_range_does_not_read_partners_of_excluded_logs(tmp_path: Path,
                                                            pairs: list[Any]) -> None:
    for _, att in pairs:
        del att["step"]
    feature_dir, attention_dir = write_run(tmp_path, pairs, attention_order=[1, 2, 0])
    (attention_dir / "attention_scenario_0000.pkl").write_bytes(b"corrupt")  # step 100's partner
    with pytest.warns(DataAlignmentWarning, match="pairing by sorted order"):
        ds = load_logs(feature_dir, attention_dir, pair_by="order", step_range=(200, 300))
    assert _steps(ds) == [200] * 3 + [300] * 3


def test_empty_step_range(tmp_path: Path, pairs: list[Any]) -> None:
    with pytest.raises(HSIDataError, match=r"features: no feature log has a step in "
                       r"step_range=\(400, 500\) \(steps found: \[100, 200, 300\]\)"):
        load_logs(*write_run(tmp_path, pairs), step_range=(400, 500))


@pytest.mark.parametrize("bad", [(5,), (3, 1), ("a", "b"), 7])
def test_invalid_step_range(tmp_path: Path, pairs: list[Any], bad: Any) -> None:
    with pytest.raises(ValueError, match=r"`step_range` must be None or a pair \(lo, hi\) of "
                       rf"integers with lo <= hi, but {re.escape(repr(bad))} was passed"):
        load_logs(*write_run(tmp_path, pairs), step_range=bad)


# ---------------------------------------------------------------------------------- shapes
def test_one_dimensional_features_are_one_sample(tmp_path: Path) -> None:
    log, att = make_pair(100, 0, n_samples=1)
    log["semantic_features"] = {name: values[0]
                                for name, values in log["semantic_features"].items()}
    log["object_ids"] = log["object_ids"][0]
    log["episode_ids"] = 7
    ds = load_logs(*write_run(tmp_path, [(log, att)]))
    assert ds.attention.shape == (1, 2 * N_HEADS, N_SLOTS)
    assert ds.groups.tolist() == ["100/7"]
    expected, _, mask = _expected([make_pair(100, 0, n_samples=1)], LAYERS[:2])
    np.testing.assert_allclose(ds.attention, expected, rtol=1e-12)
    np.testing.assert_array_equal(ds.mask, mask)


def test_without_episode_ids_each_log_is_a_group(tmp_path: Path, pairs: list[Any]) -> None:
    for log, _ in pairs:
        del log["episode_ids"]
    ds = load_logs(*write_run(tmp_path, pairs))
    assert ds.groups.tolist() == ["100"] * 3 + ["200"] * 3 + ["300"] * 3
    assert "each feature log was taken as one group (no episode_ids)" in ds.notes


def test_episode_ids_of_the_wrong_length(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    log["episode_ids"] = np.arange(5)
    with pytest.raises(HSIDataError, match=r"attention_log_00000100\.pkl: `episode_ids` must have "
                       r"one entry per sample \(n_samples = 3\), but it has 5"):
        load_logs(*write_run(tmp_path, [(log, att)]))


@pytest.mark.parametrize(("value", "message"), [
    (["near", "far", "near", "far", "near", "far"], r"must be a numeric array, but it is a list "
                                                     r"of dtype <U4"),
    (np.zeros((3, N_OBJ + 1)), rf"has shape \(3, {N_OBJ + 1}\), but "
                               rf"`semantic_features\['ttc'\]` has shape \(3, {N_OBJ}\)"),
    (np.zeros((3, 2, N_OBJ)), r"must have shape \(n_samples, n_obj\) or \(n_obj,\), but it has "
                              rf"shape \(3, 2, {N_OBJ}\)"),
    ({"nested": 1}, r"must be a numeric array, but it is a dict of dtype object"),
])
def test_bad_semantic_feature_names_the_file_and_key(tmp_path: Path, value: Any,
                                                     message: str) -> None:
    log, att = make_pair(100, 0)
    log["semantic_features"]["lane"] = value
    with pytest.raises(HSIDataError, match=r"attention_log_00000100\.pkl: "
                       rf"`semantic_features\['lane'\]` {message}"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_valid_must_be_a_mask(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    log["semantic_features"]["valid"] = np.full((3, N_OBJ), 0.5)
    with pytest.raises(HSIDataError, match=r"`semantic_features\['valid'\]` is the validity mask "
                       r"and must be boolean \(or 0/1\)"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_attention_must_be_four_dimensional(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    att["attention_weights"]["other_traj/cross_attn_0"] = np.ones((3, N_TOKENS, N_HEADS))
    with pytest.raises(HSIDataError, match=r"`attention_weights\['other_traj/cross_attn_0'\]` must "
                       r"have shape \(n_samples, n_latents, n_tokens, n_heads\), but it has shape "
                       rf"\(3, {N_TOKENS}, {N_HEADS}\)"):
        load_logs(*write_run(tmp_path, [(log, att)]))


def test_missing_fields_are_named(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    del log["semantic_features"]
    with pytest.raises(HSIDataError, match=r"attention_log_00000100\.pkl: the required field "
                       r"`semantic_features` is missing"):
        load_logs(*write_run(tmp_path / "a", [(log, att)]))
    log, att = make_pair(100, 0)
    del att["attention_weights"]
    with pytest.raises(HSIDataError, match=r"attention_scenario_0000\.pkl: the required field "
                       r"`attention_weights` is missing"):
        load_logs(*write_run(tmp_path / "b", [(log, att)]))


def test_heads_must_agree_across_files(tmp_path: Path, pairs: list[Any]) -> None:
    del pairs[0][1]["attention_weights"]["other_traj/cross_attn_1"]
    with pytest.raises(HSIDataError, match=r"attention_scenario_0000\.pkl: gives 2 heads .* but "
                       r".* gives 4 heads"):
        load_logs(*write_run(tmp_path, pairs))


# ---------------------------------------------------------------------------------- files
def test_missing_or_empty_directories(tmp_path: Path, pairs: list[Any]) -> None:
    feature_dir, attention_dir = write_run(tmp_path, pairs)
    with pytest.raises(HSIDataError, match=r"`feature_dir` must be a directory holding "
                       r"'attention_log_\*\.pkl' files, but '.*nowhere' is not a directory"):
        load_logs(tmp_path / "nowhere", attention_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(HSIDataError, match=r"`attention_dir` '.*empty' holds no files matching "
                       r"'attention_scenario_\*\.pkl'"):
        load_logs(feature_dir, empty)


def test_unsafe_pickle_is_refused_unless_trusted(tmp_path: Path) -> None:
    log, att = make_pair(100, 0)
    log["config"] = {"created": _Stamp()}
    dirs = write_run(tmp_path, [(log, att)])
    with pytest.raises(UnsafePickleError, match=r"attention_log_00000100\.pkl: refusing to load "
                       r"`.*_Stamp`"):
        load_logs(*dirs)
    assert load_logs(*dirs, trust_pickle=True).n_scenarios == 3


class _Stamp:
    """Something a training script might leave in a config: not plain data."""


# ---------------------------------------------------------------------------------- writer
def logs_dataset(seed: int = 0) -> tuple[HSIDataset, np.ndarray]:
    """Six scenarios at two steps, as :func:`load_logs` returns them, and an object-id map for them.

    Groups are ``"{step}/{episode}"`` and heads those of the written attention key, so that a
    round trip gives the same dataset; a slot whose object id is -1 is invalid, with NaN features.
    """
    rng = np.random.default_rng(seed)
    ids = np.stack([rng.permutation(N_SLOTS) for _ in range(6)])
    ids[1, 2] = -1
    mask = ids >= 0
    mask[4, 0] = False  # an invalid entity that still has a column
    features = {"ttc": rng.uniform(0, 5, (6, N_SLOTS)), "is_ahead": (rng.random((6, N_SLOTS)) > 0.5) * 1.0}
    dataset = HSIDataset(
        rng.dirichlet(np.ones(N_SLOTS), (6, N_HEADS)),
        {name: np.where(ids >= 0, values, np.nan) for name, values in features.items()},
        mask=mask, groups=["100/0", "100/0", "100/1", "300/2", "300/2", "300/2"],
        steps=[100, 100, 100, 300, 300, 300], head_names=[f"other_traj/cross_attn_0:h{h}" for h in range(N_HEADS)],
    )
    return dataset, ids


def assert_same_dataset(loaded: HSIDataset, dataset: HSIDataset) -> None:
    """Equal fingerprints once the group labels, equal as strings, share one string width.

    The fingerprint hashes the labels' bytes, and the reader builds them wider than a list would.
    """
    assert loaded.groups.tolist() == dataset.groups.tolist()
    assert loaded.fingerprint() == dataset.with_groups(loaded.groups).fingerprint()


def test_write_logs_round_trip_exactly(tmp_path: Path) -> None:
    dataset, ids = logs_dataset()
    # One latent and one token per entity carry each entity's attention unsplit, so the sums are exact.
    write_logs(dataset, tmp_path / "f", tmp_path / "a", object_ids=ids, episode_ids=[0, 0, 1, 2, 2, 2],
               n_latents=1, t_obs=1, dtype=np.float64, rng=0)
    loaded = load_logs(tmp_path / "f", tmp_path / "a")
    assert_same_dataset(loaded, dataset)
    assert loaded.notes == ()
    log = _load(tmp_path / "f" / "attention_log_00000300.pkl")
    np.testing.assert_array_equal(log["object_ids"], ids[3:])
    assert log["token_boundaries"] == {"sdc_traj": (0, 1), "other_traj": (1, 1 + N_SLOTS),
                                       "roadgraph": (1 + N_SLOTS, 17 + N_SLOTS)}


def test_write_logs_without_object_ids_writes_slot_order(tmp_path: Path) -> None:
    dataset, _ = logs_dataset()
    write_logs(dataset, tmp_path / "f", tmp_path / "a", n_latents=1, t_obs=1, dtype=np.float64)
    with pytest.warns(DataAlignmentWarning, match=NO_IDS):
        loaded = load_logs(tmp_path / "f", tmp_path / "a")
    # Without episode_ids the episodes are the groups' codes: 0 and 1 at step 100, 2 at step 300.
    assert_same_dataset(loaded, dataset)


def test_write_logs_splits_attention_over_latents_and_tokens(tmp_path: Path) -> None:
    dataset, ids = logs_dataset()
    write_logs(dataset, tmp_path / "f", tmp_path / "a", object_ids=ids, episode_ids=[0, 0, 1, 2, 2, 2], rng=1)
    weights = _load(tmp_path / "a" / "attention_scenario_0001.pkl")["attention_weights"]["other_traj/cross_attn_0"]
    assert weights.dtype == np.float32 and weights.shape == (3, 4, 5 + N_SLOTS * 5 + 16, N_HEADS)
    assert np.all(weights > 0)
    loaded = load_logs(tmp_path / "f", tmp_path / "a")
    np.testing.assert_allclose(loaded.attention, dataset.attention, rtol=1e-5, atol=1e-7)


def test_write_logs_is_reproducible(tmp_path: Path) -> None:
    dataset, ids = logs_dataset()
    for name in ("first", "again"):
        write_logs(dataset, tmp_path / name / "f", tmp_path / name / "a", object_ids=ids, include_steps=False,
                   rng=np.random.default_rng(7))
    for folder in ("f", "a"):
        first = sorted((tmp_path / "first" / folder).iterdir())
        again = sorted((tmp_path / "again" / folder).iterdir())
        assert [p.name for p in first] == [p.name for p in again]
        assert all(p.read_bytes() == q.read_bytes() for p, q in zip(first, again, strict=True))
    assert "step" not in _load(tmp_path / "first" / "a" / "attention_scenario_0000.pkl")


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"object_ids": np.zeros(6, dtype=int)}, HSIDataError,
     r"The value for `object_ids` must be an integer array of shape \(S, V\) = \(6, 4\), but an array of "
     r"dtype int64 and shape \(6,\) was passed"),
    ({"object_ids": np.zeros((6, 4))}, HSIDataError,
     r"`object_ids` must be an integer array .* but an array of dtype float64 and shape \(6, 4\) was passed"),
    ({"object_ids": np.tile([0, 1, 1, 2], (6, 1))}, HSIDataError,
     r"`object_ids` must give the entities of each scenario distinct columns in \[0, 3\], or -1 where `mask` "
     r"is False, but values from 0 to 2, 6 repeated and 0 valid entities at -1 were passed"),
    ({"object_ids": np.tile([0, 1, 2, 4], (6, 1))}, HSIDataError, r"but values from 0 to 4, 0 repeated"),
    ({"object_ids": np.tile([0, 1, 2, -1], (6, 1))}, HSIDataError, r"6 valid entities at -1 were passed"),
    ({"episode_ids": ["a"] * 6}, HSIDataError,
     r"The value for `episode_ids` must be an integer array of shape \(S,\) = \(6,\), but an array of "
     r"dtype <U1 and shape \(6,\) was passed"),
    ({"n_latents": 0}, ValueError, r"The value for `n_latents` must be an integer >= 1, but 0 was passed"),
    ({"t_obs": 2.0}, ValueError, r"The value for `t_obs` must be an integer >= 1, but 2\.0 was passed"),
    ({"dtype": "int32"}, ValueError,
     r"The value for `dtype` must be a floating dtype \(float32, float64\), but 'int32' was passed"),
    ({"rng": "seed"}, TypeError, r"The value for `rng` must be None, an int seed, .* but 'seed' was passed"),
])
def test_write_logs_rejects_bad_arguments(tmp_path: Path, options: dict[str, Any], error: type[Exception],
                                          message: str) -> None:
    dataset, _ = logs_dataset()
    with pytest.raises(error, match=message):
        write_logs(dataset, tmp_path / "f", tmp_path / "a", **options)
    assert not (tmp_path / "f").exists() and not (tmp_path / "a").exists()


def test_write_logs_needs_a_dataset_with_steps(tmp_path: Path) -> None:
    dataset, _ = logs_dataset()
    with pytest.raises(TypeError, match=r"The value for `dataset` must be an HSIDataset, but dict was passed"):
        write_logs({"attention": dataset.attention}, tmp_path, tmp_path)  # type: ignore[arg-type]
    unstepped = HSIDataset(dataset.attention, dataset.features, mask=dataset.mask)
    with pytest.raises(HSIDataError, match=r"The value for `dataset` must have `steps` .* but a dataset "
                       r"without steps was passed"):
        write_logs(unstepped, tmp_path, tmp_path)


def _load(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)
