"""``load_extraction``: snapshot and rollout scenarios, groups, step order and every error;
``write_extraction``: what it writes reads back, and its argument errors."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from hsi_stats._validation import HSIDataError, OptionError, OptionTypeError
from hsi_stats.data import HSIDataset
from hsi_stats.io.extraction import load_extraction, write_extraction
from hsi_stats.io.safe_pickle import UnsafePickleError
from hsi_stats.step_selection import select_step

N_HEADS, N_SLOTS = 3, 5


def _steps(ds: HSIDataset) -> list[int]:
    assert ds.steps is not None
    return [int(step) for step in ds.steps]


def _features(rng: np.random.Generator) -> dict[str, Any]:
    return {
        "ttc": rng.uniform(0, 5, N_SLOTS),
        "distance_to_ego": rng.uniform(0, 50, N_SLOTS).astype(np.float32),
        "valid": rng.random(N_SLOTS) > 0.3,
    }


def snapshot(rng: np.random.Generator) -> dict[str, Any]:
    return {"attention_per_vehicle": rng.dirichlet(np.ones(N_SLOTS), N_HEADS),
            "semantic_features": _features(rng)}


def rollout(rng: np.random.Generator, n_steps: int) -> dict[str, Any]:
    return {"timesteps": [
        {"attention_distributions": {"per_vehicle_attention": rng.random((N_SLOTS, N_HEADS))},
         "semantic_features": _features(rng), "collision_risk": float(rng.random())}
        for _ in range(n_steps)
    ]}


def _write(path: Path, content: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        pickle.dump(content, handle)
    return path


def test_snapshots(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scenarios = [snapshot(rng) for _ in range(4)]
    ds = load_extraction(_write(tmp_path / "extraction_ckpt.pkl", {"step": 700,
                                                                   "scenarios": scenarios}))
    assert ds.attention.shape == (4, N_HEADS, N_SLOTS)
    assert ds.head_names == ("h0", "h1", "h2")
    assert ds.feature_names == ("ttc", "distance_to_ego")
    for s, scenario in enumerate(scenarios):
        np.testing.assert_array_equal(ds.attention[s], scenario["attention_per_vehicle"])
        np.testing.assert_array_equal(ds.mask[s], scenario["semantic_features"]["valid"])
        np.testing.assert_array_equal(ds.features["distance_to_ego"][s],
                                      scenario["semantic_features"]["distance_to_ego"])
    assert _steps(ds) == [700] * 4
    assert ds.n_groups == 4
    assert ds.groups.tolist() == [f"extraction_ckpt/snapshot{i}" for i in range(4)]


def test_rollouts_transpose_and_group_by_episode(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    episodes = [rollout(rng, 3), rollout(rng, 2)]
    ds = load_extraction(_write(tmp_path / "extraction_5.pkl", {"step": 5, "scenarios": episodes}))
    assert ds.attention.shape == (5, N_HEADS, N_SLOTS)
    timesteps = [t for episode in episodes for t in episode["timesteps"]]
    for s, timestep in enumerate(timesteps):
        per_vehicle = timestep["attention_distributions"]["per_vehicle_attention"]
        for h in range(N_HEADS):
            for v in range(N_SLOTS):
                assert ds.attention[s, h, v] == per_vehicle[v, h]
        np.testing.assert_array_equal(ds.features["ttc"][s], timestep["semantic_features"]["ttc"])
    assert ds.groups.tolist() == ["extraction_5/rollout0"] * 3 + ["extraction_5/rollout1"] * 2
    assert ds.n_groups == 2


def test_directory_mixes_kinds_and_orders_by_step(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    # File names sort the other way round from the steps.
    late = _write(tmp_path / "extraction_a.pkl", {"step": 200, "scenarios": [snapshot(rng)]})
    early = _write(tmp_path / "extraction_b.pkl",
                   {"step": 100, "scenarios": [rollout(rng, 2), snapshot(rng)]})
    (tmp_path / "notes.txt").write_text("not an extraction")
    ds = load_extraction(tmp_path)
    assert _steps(ds) == [100, 100, 100, 200]
    assert ds.groups.tolist() == ["extraction_b/rollout0", "extraction_b/rollout0",
                                  "extraction_b/snapshot1", "extraction_a/snapshot0"]
    one = load_extraction(early)
    np.testing.assert_array_equal(ds.attention[:3], one.attention)
    np.testing.assert_array_equal(load_extraction(late).attention, ds.attention[3:])


def test_features_without_valid_are_all_valid(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    scenario = snapshot(rng)
    del scenario["semantic_features"]["valid"]
    ds = load_extraction(_write(tmp_path / "extraction_1.pkl", {"step": 1,
                                                                "scenarios": [scenario]}))
    assert ds.mask.all()


# ---------------------------------------------------------------------------------- errors
def test_attention_and_features_must_agree_on_v(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    scenarios = [snapshot(rng), snapshot(rng)]
    scenarios[1]["attention_per_vehicle"] = np.ones((N_HEADS, N_SLOTS + 1))
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": scenarios})
    with pytest.raises(HSIDataError, match=r"extraction_1\.pkl: scenario 1: "
                       r"`attention_per_vehicle` has shape \(3, 6\) \(H, V\), so V = 6, but "
                       r"`semantic_features` have shape \(5,\) \(V,\)"):
        load_extraction(path)


def test_rollout_errors_name_the_timestep(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    episode = rollout(rng, 3)
    # (H, V) instead of (V, H): wrong orientation is caught because V != H.
    episode["timesteps"][2]["attention_distributions"]["per_vehicle_attention"] = np.ones(
        (N_HEADS, N_SLOTS))
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [snapshot(rng), episode]})
    with pytest.raises(HSIDataError, match=r"extraction_1\.pkl: scenario 1, timestep 2: "
                       r"`attention_distributions\.per_vehicle_attention` has shape \(3, 5\) "
                       r"\(V, H\), so V = 3, but `semantic_features` have shape \(5,\)"):
        load_extraction(path)


def test_heads_must_agree_across_scenarios(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    scenarios = [snapshot(rng), snapshot(rng)]
    scenarios[1]["attention_per_vehicle"] = scenarios[1]["attention_per_vehicle"][:2]
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": scenarios})
    with pytest.raises(HSIDataError, match=r"extraction_1\.pkl: scenario 1: gives 2 heads "
                       r"\['h0', 'h1'\], but .*scenario 0 gives 3 heads"):
        load_extraction(path)


def test_slots_must_agree_across_scenarios(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    small = {"attention_per_vehicle": np.ones((N_HEADS, 2)),
             "semantic_features": {"ttc": np.ones(2), "distance_to_ego": np.ones(2)}}
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [snapshot(rng), small]})
    with pytest.raises(HSIDataError, match=r"scenario 1: has V = 2 entity slots, but .*scenario 0 "
                       r"has V = 5"):
        load_extraction(path)


def test_features_must_agree_across_scenarios(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    scenarios = [snapshot(rng), snapshot(rng)]
    del scenarios[1]["semantic_features"]["ttc"]
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": scenarios})
    with pytest.raises(HSIDataError, match=r"scenario 1: has features \['distance_to_ego'\], but "
                       r".*scenario 0 has \['ttc', 'distance_to_ego'\]"):
        load_extraction(path)


def test_feature_shape_error_names_scenario_and_key(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    scenario = snapshot(rng)
    scenario["semantic_features"]["ttc"] = np.ones((2, N_SLOTS))
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [scenario]})
    with pytest.raises(HSIDataError, match=r"scenario 0: `semantic_features\['ttc'\]` must have "
                       r"shape \(V,\), but it has shape \(2, 5\)"):
        load_extraction(path)


def test_unknown_scenario_kind(tmp_path: Path) -> None:
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [{"frames": []}]})
    with pytest.raises(HSIDataError, match=r"scenario 0: a scenario must hold `attention_per_vehicle` or "
                       r"`attention_weights` \(snapshot\) or `timesteps` \(rollout\), but it has fields "
                       r"\['frames'\]"):
        load_extraction(path)


@pytest.mark.parametrize(("content", "message"), [
    ({"scenarios": []}, r"the required field `step` is missing "
                        r"\(fields present: \['scenarios'\]\)"),
    ({"step": 1.5, "scenarios": []}, r"`step` must be an integer, but it is 1\.5 \(float\)"),
    ({"step": 1, "scenarios": []}, r"`scenarios` must be a non-empty list, but it is a list of "
                                   r"length 0"),
    ({"step": 1, "scenarios": [{"timesteps": []}]}, r"scenario 0: `timesteps` must be a non-empty "
                                                    r"list"),
])
def test_file_structure_errors(tmp_path: Path, content: dict[str, Any], message: str) -> None:
    path = _write(tmp_path / "extraction_9.pkl", content)
    with pytest.raises(HSIDataError, match=rf"extraction_9\.pkl: {message}"):
        load_extraction(path)


def test_not_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "extraction_1.pkl"
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(HSIDataError, match=r"extraction_1\.pkl: an extraction file must be a "
                       r"dict, but it is a list"):
        load_extraction(path)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(HSIDataError, match=r"`path` must be an extraction file or a directory of "
                       r"'extraction_\*\.pkl' files, but '.*missing\.pkl' does not exist"):
        load_extraction(tmp_path / "missing.pkl")
    with pytest.raises(HSIDataError, match=r"`path` '.*' holds no files matching "
                       r"'extraction_\*\.pkl'"):
        load_extraction(tmp_path)


def test_unsafe_pickle_is_refused(tmp_path: Path) -> None:
    rng = np.random.default_rng(10)
    path = _write(tmp_path / "extraction_1.pkl",
                  {"step": 1, "scenarios": [snapshot(rng)], "meta": np.ma.masked_array([1])})
    with pytest.raises(UnsafePickleError, match=r"extraction_1\.pkl: refusing to load "
                       r"`numpy\.ma\.core\._mareconstruct`"):
        load_extraction(path)
    assert load_extraction(path, trust_pickle=True).n_scenarios == 1


# ---------------------------------------------------------------------------------- writer
def extraction_dataset(groups: list[str]) -> HSIDataset:
    """Five scenarios, two at step 0 and three at step 10, with an invalid entity."""
    rng = np.random.default_rng(11)
    mask = np.ones((5, N_SLOTS), dtype=bool)
    mask[2, 1] = False
    return HSIDataset(rng.dirichlet(np.ones(N_SLOTS), (5, N_HEADS)),
                      {"ttc": rng.uniform(0, 5, (5, N_SLOTS)), "is_ahead": (rng.random((5, N_SLOTS)) > 0.5) * 1.0},
                      mask=mask, groups=groups, steps=[0, 0, 10, 10, 10])


def test_write_rollouts_round_trip_exactly(tmp_path: Path) -> None:
    dataset = extraction_dataset(["extraction_0/rollout0"] * 2 + ["extraction_10/rollout0"] * 2
                                 + ["extraction_10/rollout1"])
    write_extraction(dataset, tmp_path, episode_ids=[4, 4, 1, 1, 3], collision_risk=[0.5, 0, 1, 0.25, 0.75])
    assert load_extraction(tmp_path).fingerprint() == dataset.fingerprint()
    content = _load(tmp_path / "extraction_10.pkl")
    assert [s["episode_id"] for s in content["scenarios"]] == [1, 3]
    assert [t["collision_risk"] for s in content["scenarios"] for t in s["timesteps"]] == [1.0, 0.25, 0.75]


def test_write_snapshots_round_trip_exactly(tmp_path: Path) -> None:
    dataset = extraction_dataset(["extraction_0/snapshot0", "extraction_0/snapshot1", "extraction_10/snapshot0",
                                  "extraction_10/snapshot1", "extraction_10/snapshot2"])
    write_extraction(dataset, tmp_path, kind="Snapshot", timesteps=[0, 1, 0, 1, 2])
    assert load_extraction(tmp_path).fingerprint() == dataset.fingerprint()
    scenarios = _load(tmp_path / "extraction_10.pkl")["scenarios"]
    assert [(s["episode_id"], s["timestep"]) for s in scenarios] == [(2, 0), (3, 1), (4, 2)]


def test_the_final_step_is_written_as_model_final(tmp_path: Path) -> None:
    plain = extraction_dataset(["a", "a", "b", "b", "c"])
    named = HSIDataset(plain.attention, plain.features, mask=plain.mask, groups=plain.groups, steps=plain.steps,
                       step_names={10: "final"})
    write_extraction(named, tmp_path, kind="snapshot")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["extraction_0.pkl", "extraction_model_final.pkl"]
    assert _load(tmp_path / "extraction_model_final.pkl")["step"] == -1
    back = load_extraction(tmp_path)
    assert _steps(back) == [0, 0, 1, 1, 1] and dict(back.step_names) == {1: "final"}  # after the last numbered


def test_write_extraction_leaves_out_what_is_not_given(tmp_path: Path) -> None:
    dataset = extraction_dataset(["a", "a", "b", "b", "c"])
    write_extraction(dataset, tmp_path / "rollout")
    write_extraction(dataset, tmp_path / "snapshot", kind="snapshot")
    rollouts = _load(tmp_path / "rollout" / "extraction_10.pkl")["scenarios"]
    assert [s["episode_id"] for s in rollouts] == [1, 2]  # the groups' codes
    assert "collision_risk" not in rollouts[0]["timesteps"][0]
    assert "timestep" not in _load(tmp_path / "snapshot" / "extraction_0.pkl")["scenarios"][0]


@pytest.mark.parametrize(("options", "error", "message"), [
    ({"kind": "stream"}, ValueError,
     r"The value for `kind` must be one of \{'rollout', 'snapshot'\}, but 'stream' was passed"),
    ({"episode_ids": [0, 0, 1, 1]}, HSIDataError,
     r"The value for `episode_ids` must be an integer array of shape \(S,\) = \(5,\), but an array of dtype "
     r"int64 and shape \(4,\) was passed"),
    ({"timesteps": np.zeros(5)}, HSIDataError,
     r"The value for `timesteps` must be an integer array .* but an array of dtype float64 and shape \(5,\)"),
    ({"collision_risk": ["high"] * 5}, HSIDataError,
     r"The value for `collision_risk` must be a real array of shape \(S,\) = \(5,\), but an array of dtype "
     r"<U4 and shape \(5,\) was passed"),
])
def test_write_extraction_rejects_bad_arguments(tmp_path: Path, options: dict[str, Any], error: type[Exception],
                                                message: str) -> None:
    with pytest.raises(error, match=message):
        write_extraction(extraction_dataset(["a"] * 5), tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_write_extraction_needs_a_dataset_with_steps(tmp_path: Path) -> None:
    dataset = extraction_dataset(["a"] * 5)
    with pytest.raises(TypeError, match=r"The value for `dataset` must be an HSIDataset, but list was passed"):
        write_extraction([dataset], tmp_path)  # type: ignore[arg-type]
    with pytest.raises(HSIDataError, match=r"The value for `dataset` must have `steps` .* but a dataset "
                       r"without steps was passed"):
        write_extraction(HSIDataset(dataset.attention, dataset.features), tmp_path)


def _load(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)


# ------------------------------------------------------------------- the layouts as the extractors write them
CATALOG_FEATURES = ["ttc", "distance_to_ego", "closing_speed", "is_ahead", "is_behind", "is_left", "is_right",
                    "agent_speeds"]
N_VEHICLES, N_LATENTS, T_OBS = 6, 4, 3


def _extractor_semantic(rng: np.random.Generator, timestep: int) -> dict[str, Any]:
    """Semantic features as the offline extractor writes them: per-vehicle arrays beside scalar metadata."""
    semantic: dict[str, Any] = {name: rng.uniform(0, 10, N_VEHICLES) for name in CATALOG_FEATURES}
    semantic.update({
        "sdc_index": 0, "timestep": timestep, "ego_speed": float(rng.uniform(5, 15)),
        "positions_x": rng.normal(0, 20, N_VEHICLES), "positions_y": rng.normal(0, 5, N_VEHICLES),
        "object_types": rng.integers(1, 4, N_VEHICLES), "valid": rng.random(N_VEHICLES) > 0.25,
    })
    return semantic


def _raw_weights(rng: np.random.Generator) -> dict[str, Any]:
    """Token attention of one sample: t_obs sdc tokens, then the vehicles' tokens (entity-major), then two more."""
    n_tokens = T_OBS + N_VEHICLES * T_OBS + 2
    return {"attention_weights": {"other_traj/cross_attn_0": rng.random((1, N_LATENTS, n_tokens, N_HEADS))},
            "token_boundaries": {"sdc_traj": (0, T_OBS), "other_traj": (T_OBS, T_OBS + N_VEHICLES * T_OBS)}}


def _extractor_snapshot(rng: np.random.Generator, timestep: int) -> dict[str, Any]:
    # Unnormalised attention mass, as summed over latents and observation steps.
    return {"semantic_features": _extractor_semantic(rng, timestep),
            "attention_per_vehicle": rng.gamma(2.0, 10.0, (N_HEADS, N_VEHICLES)), **_raw_weights(rng)}


def _hand_summed(weights: NDArray[Any], start: int) -> NDArray[np.float64]:
    """Per-vehicle attention (H, V) of one sample, summed in plain loops."""
    out = np.zeros((N_HEADS, N_VEHICLES))
    for h in range(N_HEADS):
        for v in range(N_VEHICLES):
            for latent in range(N_LATENTS):
                for t in range(T_OBS):
                    out[h, v] += weights[0, latent, start + v * T_OBS + t, h]
    return out


@pytest.fixture
def snapshot_folder(tmp_path: Path) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """Three checkpoints, model_final among them, three snapshots each."""
    rng = np.random.default_rng(20)
    written = {}
    for name, step in (("100000", 100000), ("model_final", -1), ("200000", 200000)):
        written[name] = [_extractor_snapshot(rng, timestep) for timestep in (10, 20, 30)]
        _write(tmp_path / f"extraction_{name}.pkl", {"step": step, "scenarios": written[name]})
    return tmp_path, written


def test_extractor_snapshots_load_as_one_dataset(snapshot_folder: tuple[Path, dict[str, Any]]) -> None:
    folder, written = snapshot_folder
    ds = load_extraction(folder)
    assert ds.feature_names == tuple(CATALOG_FEATURES)
    assert _steps(ds) == [100000] * 3 + [200000] * 3 + [200001] * 3
    assert ds.notes == ("Step 200001 is the final checkpoint (model_final, stored as step -1), shown as 'final': "
                        "it follows every numbered checkpoint, the last of which is 200000.",)
    assert dict(ds.step_names) == {200001: "final"}
    assert [ds.step_label(step) for step in (100000, 200000, 200001)] == ["100000", "200000", "final"]
    scenarios = written["100000"] + written["200000"] + written["model_final"]
    assert ds.groups.tolist() == [f"extraction_{name}/snapshot{i}" for name in ("100000", "200000", "model_final")
                                  for i in range(3)]
    assert ds.n_groups == 9
    for s, scenario in enumerate(scenarios):
        np.testing.assert_array_equal(ds.attention[s], scenario["attention_per_vehicle"])  # as given
        np.testing.assert_array_equal(ds.mask[s], scenario["semantic_features"]["valid"])
        for name in CATALOG_FEATURES:
            np.testing.assert_array_equal(ds.features[name][s], scenario["semantic_features"][name])
    chosen, selection = select_step(ds)
    assert selection.step == 200001 and chosen.groups.tolist()[0] == "extraction_model_final/snapshot0"
    assert selection.describe().startswith("the analysis is of training step final (the last one")
    assert dict(chosen.step_names) == {200001: "final"}
    assert dict(ds.select(step_range=(0, 200000)).step_names) == {}  # the named step is not among those kept


def test_model_final_alone_keeps_its_step(snapshot_folder: tuple[Path, dict[str, Any]]) -> None:
    folder, _ = snapshot_folder
    ds = load_extraction(folder / "extraction_model_final.pkl")
    assert _steps(ds) == [-1] * 3
    assert ds.notes == ("Step -1 is the final checkpoint (model_final), shown as 'final'.",)
    assert ds.step_label(-1) == "final"


def test_extractor_rollouts_with_scalar_metadata(tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    rollouts = [{"timesteps": [
        {"attention_distributions": {"per_vehicle_attention": rng.gamma(2.0, 1.0, (N_VEHICLES, N_HEADS))},
         "semantic_features": _extractor_semantic(rng, t), "collision_risk": 0.0} for t in range(n_steps)]}
        for n_steps in (3, 2)]
    ds = load_extraction(_write(tmp_path / "extraction_300.pkl", {"step": 300, "scenarios": rollouts}))
    assert ds.feature_names == tuple(CATALOG_FEATURES) and ds.notes == ()
    assert ds.groups.tolist() == ["extraction_300/rollout0"] * 3 + ["extraction_300/rollout1"] * 2
    timesteps = [t for rollout in rollouts for t in rollout["timesteps"]]
    for s, timestep in enumerate(timesteps):
        np.testing.assert_array_equal(ds.attention[s], timestep["attention_distributions"]["per_vehicle_attention"].T)
        np.testing.assert_array_equal(ds.mask[s], timestep["semantic_features"]["valid"])


def test_raw_weights_stand_in_for_attention_per_vehicle(tmp_path: Path) -> None:
    rng = np.random.default_rng(22)
    scenarios = [_extractor_snapshot(rng, 0) for _ in range(2)]
    del scenarios[0]["attention_per_vehicle"]
    ds = load_extraction(_write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": scenarios}))
    weights = scenarios[0]["attention_weights"]["other_traj/cross_attn_0"]
    np.testing.assert_allclose(ds.attention[0], _hand_summed(weights, T_OBS), rtol=1e-12)
    np.testing.assert_array_equal(ds.attention[1], scenarios[1]["attention_per_vehicle"])
    # Without token boundaries every token of the layer is a vehicle's.
    only_vehicles = weights[:, :, T_OBS:T_OBS + N_VEHICLES * T_OBS]
    bare = {"semantic_features": scenarios[0]["semantic_features"],
            "attention_weights": {"other_traj/cross_attn_0": only_vehicles, "roadgraph/cross_attn_0": weights}}
    alone = load_extraction(_write(tmp_path / "bare" / "extraction_1.pkl", {"step": 1, "scenarios": [bare]}))
    np.testing.assert_allclose(alone.attention[0], _hand_summed(only_vehicles, 0), rtol=1e-12)


def test_features_on_request(tmp_path: Path) -> None:
    rng = np.random.default_rng(23)
    scenario = _extractor_snapshot(rng, 0)
    scenario["semantic_features"]["some_extra"] = rng.random(N_VEHICLES)
    scenario["semantic_features"]["lane_count"] = 3  # a scalar: never a feature, never noted
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [scenario]})
    default = load_extraction(path)
    assert default.feature_names == tuple(CATALOG_FEATURES)
    assert default.notes == ("per-vehicle entries outside the feature catalog were not taken as features: "
                             "['some_extra'] (pass features= to take them)",)
    chosen = load_extraction(path, features=["some_extra", "ttc"])
    assert chosen.feature_names == ("some_extra", "ttc") and chosen.notes == ()
    np.testing.assert_array_equal(chosen.features["some_extra"][0], scenario["semantic_features"]["some_extra"])
    own = load_extraction(path, catalog={"some_extra": {"label": "Extra Head"}})
    assert own.feature_names == ("some_extra",)
    with pytest.raises(HSIDataError, match=r"scenario 0: `semantic_features` must hold every feature asked for "
                       r"in `features`, but \['nope'\] are missing \(its per-vehicle entries: \['ttc', "
                       r".*'some_extra'\]\)"):
        load_extraction(path, features=["ttc", "nope"])
    with pytest.raises(HSIDataError, match=r"scenario 0: `semantic_features\['lane_count'\]` must have shape "
                       r"\(V,\), but it has shape \(\)"):
        load_extraction(path, features=["lane_count"])
    with pytest.raises(HSIDataError, match=r"scenario 0: `semantic_features` must hold a feature of the catalog "
                       r"\['speed'\], but it has none \(its per-vehicle entries: \['ttc', .*\]\); pass `features=`"):
        load_extraction(path, catalog={"speed": {"label": "Speed Head"}})


@pytest.mark.parametrize(("features", "error", "message"), [
    (["ego_speed"], OptionError,
     r"The value for `features` must name per-vehicle features, never the metadata \['sdc_index', 'timestep', "
     r"'ego_speed', .*'valid'\] \(scalars, positions, object types and the `valid` mask\), but \['ego_speed'\] "
     r"was passed"),
    (["valid", "positions_x"], OptionError, r"never the metadata .* but \['valid', 'positions_x'\] was passed"),
    ("ttc", OptionTypeError, r"The value for `features` must be None or a sequence of feature names, but str was "
                             r"passed"),
    (["ttc", "ttc"], OptionError, r"The value for `features` must be a non-empty sequence of distinct, non-empty "
                                  r"names, but \['ttc', 'ttc'\] was passed"),
    ([], OptionError, r"must be a non-empty sequence .* but \[\] was passed"),
])
def test_features_argument_errors(tmp_path: Path, features: Any, error: type[Exception], message: str) -> None:
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [_extractor_snapshot(
        np.random.default_rng(24), 0)]})
    with pytest.raises(error, match=message):
        load_extraction(path, features=features)


def _raw_snapshot(**changes: Any) -> dict[str, Any]:
    scenario = _extractor_snapshot(np.random.default_rng(25), 0)
    del scenario["attention_per_vehicle"]
    scenario.update(changes)
    return scenario


@pytest.mark.parametrize(("scenario", "message"), [
    ({"attention_per_vehicle": np.ones((N_HEADS, N_VEHICLES + 1)), "semantic_features": _extractor_semantic(
        np.random.default_rng(26), 0)},
     r"`attention_per_vehicle` has shape \(3, 7\) \(H, V\), so V = 7, but `semantic_features` have shape \(6,\)"),
    ({**_extractor_snapshot(np.random.default_rng(27), 0), "attention_per_vehicle": np.ones(N_VEHICLES)},
     r"`attention_per_vehicle` must have shape \(H, V\), but it has shape \(6,\)"),
    (_raw_snapshot(attention_weights={"other_traj/cross_attn_0": np.ones((2, N_LATENTS, 20, N_HEADS))}),
     r"`attention_weights\['other_traj/cross_attn_0'\]` has shape \(2, 4, 20, 3\), but a snapshot is one sample, "
     r"so n_samples must be 1"),
    (_raw_snapshot(attention_weights={"other_traj/cross_attn_0": np.ones((1, 2, 9, 1)),
                                      "other_traj/cross_attn_1": np.ones((1, 2, 9, 1))}),
     r"`attention_weights` must hold one layer of 'other_traj' to stand in for the missing "
     r"`attention_per_vehicle`, but it holds \['other_traj/cross_attn_0', 'other_traj/cross_attn_1'\]"),
    (_raw_snapshot(attention_weights={"roadgraph/cross_attn_0": np.ones((1, 2, 9, 1))}),
     r"`attention_key` 'other_traj' matches no key of `attention_weights`"),
    (_raw_snapshot(token_boundaries={"other_traj": (3, 17)}),
     r"`attention_weights\['other_traj/cross_attn_0'\]` has 14 entity tokens, which is not a multiple of V = 6"),
])
def test_what_cannot_be_right_is_refused(tmp_path: Path, scenario: dict[str, Any], message: str) -> None:
    path = _write(tmp_path / "extraction_1.pkl", {"step": 1, "scenarios": [scenario]})
    with pytest.raises(HSIDataError, match=rf"extraction_1\.pkl: scenario 0: {message}"):
        load_extraction(path)


def test_steps_below_model_final_are_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "extraction_x.pkl", {"step": -2, "scenarios": [snapshot(np.random.default_rng(28))]})
    with pytest.raises(HSIDataError, match=r"extraction_x\.pkl: `step` must be a checkpoint's number \(0 or more\) "
                       r"or -1 \(model_final\), but it is -2"):
        load_extraction(path)


def test_written_extra_features_read_back_on_request(tmp_path: Path) -> None:
    dataset = extraction_dataset(["a"] * 5)
    extra = HSIDataset(dataset.attention, {**dataset.features, "lane_id": dataset.features["ttc"] * 0 + 1},
                       mask=dataset.mask, steps=dataset.steps)
    write_extraction(extra, tmp_path, kind="snapshot")
    assert load_extraction(tmp_path).feature_names == ("ttc", "is_ahead")
    back = load_extraction(tmp_path, features=extra.feature_names)
    assert back.fingerprint() == extra.with_groups(back.groups).fingerprint()
