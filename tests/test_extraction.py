"""``load_extraction``: snapshot and rollout scenarios, groups, step order and every error;
``write_extraction``: what it writes reads back, and its argument errors."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi_stats._validation import HSIDataError
from hsi_stats.data import HSIDataset
from hsi_stats.io.extraction import load_extraction, write_extraction
from hsi_stats.io.safe_pickle import UnsafePickleError

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
