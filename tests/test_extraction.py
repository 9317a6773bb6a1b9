"""``load_extraction``: snapshot and rollout scenarios, groups, step order and every error."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hsi_stats._validation import HSIDataError
from hsi_stats.data import HSIDataset
from hsi_stats.io.extraction import load_extraction
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
    with pytest.raises(HSIDataError, match=r"scenario 0: a scenario must hold "
                       r"`attention_per_vehicle` \(snapshot\) or `timesteps` \(rollout\), but it "
                       r"has fields \['frames'\]"):
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
