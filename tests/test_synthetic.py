"""``hsi_stats.synthetic``: reproducibility, the feature definitions, smooth traffic, the density
confound, planted versus null heads (against an independent within-scenario Spearman) and the
driving-format writers (read back by hand with pickle)."""

from __future__ import annotations

import pickle
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.stats import rankdata

from hsi_stats.synthetic import (
    FEATURE_NAMES,
    LANE_WIDTH,
    HeadSpec,
    SyntheticRun,
    default_heads,
    generate,
    null_heads,
    write_driving_logs,
    write_extraction,
)


@pytest.fixture(scope="module")
def run() -> SyntheticRun:
    return generate(rng=20240611)


def _present(run: SyntheticRun) -> NDArray[np.bool_]:
    return run.dataset.mask


def within_spearman(run: SyntheticRun) -> NDArray[np.float64]:
    """Within-scenario Spearman rho[h, f]: ranks centred in each scenario, pooled, one loop each."""
    ds = run.dataset
    numerator = np.zeros((ds.n_heads, ds.n_features))
    attention_ss = np.zeros(ds.n_heads)
    feature_ss = np.zeros(ds.n_features)
    for s in range(ds.n_scenarios):
        valid = ds.mask[s]
        a = np.array([rankdata(ds.attention[s, h, valid]) for h in range(ds.n_heads)])
        x = np.array([rankdata(ds.features[f][s, valid]) for f in ds.feature_names])
        a -= a.mean(axis=1, keepdims=True)
        x -= x.mean(axis=1, keepdims=True)
        numerator += a @ x.T
        attention_ss += (a**2).sum(axis=1)
        feature_ss += (x**2).sum(axis=1)
    return numerator / np.sqrt(np.outer(attention_ss, feature_ss))


# ------------------------------------------------------------------------------ reproducibility
def test_same_rng_gives_the_same_dataset() -> None:
    first = generate(n_episodes=5, n_steps=6, rng=3)
    again = generate(n_episodes=5, n_steps=6, rng=np.random.default_rng(3))
    other = generate(n_episodes=5, n_steps=6, rng=4)
    assert first.dataset.fingerprint() == again.dataset.fingerprint()
    assert first.dataset.fingerprint() != other.dataset.fingerprint()
    np.testing.assert_array_equal(first.object_ids, again.object_ids)


def test_traffic_does_not_depend_on_the_heads() -> None:
    planted = generate(n_episodes=4, n_steps=5, rng=11)
    null = generate(n_episodes=4, n_steps=5, rng=11, null=True)
    for name in FEATURE_NAMES:
        np.testing.assert_array_equal(planted.dataset.features[name], null.dataset.features[name])
    assert not np.array_equal(planted.dataset.attention, null.dataset.attention)


def test_layout_groups_steps_slots_and_truth() -> None:
    result = generate(n_episodes=3, n_steps=4, checkpoints=(10, 20), rng=0)
    ds = result.dataset
    assert (ds.n_scenarios, ds.n_heads, ds.n_slots) == (24, 8, 8)
    assert ds.feature_names == FEATURE_NAMES
    assert ds.head_names == tuple(f"h{h}" for h in range(8))
    assert list(ds.groups[:5]) == ["c10/e0"] * 4 + ["c10/e1"]
    assert ds.groups[-1] == "c20/e2" and ds.n_groups == 6
    assert ds.steps is not None and list(np.unique(ds.steps)) == [10, 20]
    assert ds.slots is not None
    np.testing.assert_array_equal(ds.slots, np.broadcast_to(np.arange(8), (24, 8)))
    np.testing.assert_array_equal(result.timesteps[:5], [0, 1, 2, 3, 0])
    frame = result.truth_frame()
    assert list(frame.columns) == ["head", "feature", "expected_sign", "expected_label", "kind"]
    assert list(frame["expected_label"][:4]) == ["Safety Head", "Proximity Head",
                                                 "Left Lane Head", "Traffic Flow Head"]
    assert list(frame["expected_sign"][:4]) == ["negative", "negative", "positive", "positive"]
    assert set(frame["expected_label"][4:]) == {"General Context Head"}
    assert set(frame["kind"]) == {"planted", "no effect"}
    assert frame["feature"][4:].isna().all()


def test_null_option_gives_only_no_effect_heads() -> None:
    result = generate(n_episodes=2, n_steps=2, rng=0, null=True)
    assert result.dataset.n_heads == 8
    assert {t.kind for t in result.truth} == {"no effect"}
    assert all(spec.slot_preference > 0 for spec in result.heads)


# ----------------------------------------------------------------------------------- features
def test_presence_padding_and_slot_order(run: SyntheticRun) -> None:
    ds = run.dataset
    present = ds.mask.sum(axis=1)
    assert present.min() == 2 and present.max() == 8
    # Present vehicles fill a prefix of the slots; padding comes last.
    np.testing.assert_array_equal(ds.mask, np.arange(ds.n_slots)[None, :] < present[:, None])
    distance = ds.features["distance_to_ego"]
    assert np.all(np.diff(distance, axis=1)[ds.mask[:, 1:]] >= 0)
    for name in FEATURE_NAMES:
        values = ds.features[name]
        assert np.isfinite(values).all()
        assert np.all(values[~ds.mask] == 0)
    np.testing.assert_array_equal(run.object_ids < 0, ~ds.mask)
    np.testing.assert_array_equal(run.vehicle_ids < 0, ~ds.mask)


def test_features_obey_their_definitions(run: SyntheticRun) -> None:
    ds = run.dataset
    m = ds.mask
    f = {name: ds.features[name][m] for name in FEATURE_NAMES}
    closing, distance = f["closing_speed"], f["distance_to_ego"]
    expected_ttc = np.clip(np.where(closing > 0.5, distance / np.where(closing > 0.5, closing, 1),
                                    5.0), 0, 5)
    np.testing.assert_allclose(f["ttc"], expected_ttc, rtol=1e-12)
    assert (f["ttc"] < 5).mean() > 0.03 and f["ttc"].min() >= 0 and f["ttc"].max() == 5
    for name in ("is_ahead", "is_behind", "is_left", "is_right"):
        assert set(np.unique(f[name])) == {0.0, 1.0}
    np.testing.assert_array_equal(f["is_ahead"] + f["is_behind"], 1.0)
    assert not np.any((f["is_left"] == 1) & (f["is_right"] == 1))
    # A vehicle beside the ego is at least a lane away; one in the ego's lane is not.
    assert np.all(distance[(f["is_left"] == 1) | (f["is_right"] == 1)] > LANE_WIDTH / 2)
    assert np.all(distance > 0)
    assert np.all(f["agent_speeds"] > 0) and 18 < f["agent_speeds"].mean() < 30


def test_attention_is_a_distribution_over_present_vehicles(run: SyntheticRun) -> None:
    att = run.dataset.attention
    mask = run.dataset.mask[:, None, :]
    np.testing.assert_allclose(att.sum(axis=2), 1.0, rtol=1e-12)
    assert np.all(att[np.broadcast_to(~mask, att.shape)] == 0)
    assert np.all(att[np.broadcast_to(mask, att.shape)] > 0)


# ------------------------------------------------------------------------------------ traffic
def test_kinematics_are_smooth(run: SyntheticRun) -> None:
    ds = run.dataset
    jumps, lateral = [], []
    same_episode = ds.groups[1:] == ds.groups[:-1]
    for s in np.flatnonzero(same_episode):
        now = dict(zip(run.vehicle_ids[s + 1], range(ds.n_slots), strict=True))
        for slot, vehicle in enumerate(run.vehicle_ids[s]):
            if vehicle >= 0 and vehicle in now:
                later = now[vehicle]
                jumps.append(abs(ds.features["distance_to_ego"][s + 1, later]
                                 - ds.features["distance_to_ego"][s, slot]))
                left = ds.features["is_left"]
                lateral.append(left[s + 1, later] != left[s, slot])
    jumps_array = np.array(jumps)
    assert jumps_array.size > 1000
    dt = run.settings["dt"]
    assert np.median(jumps_array) < 1.0 and jumps_array.max() < 25.0 * dt
    assert 0 < np.mean(lateral) < 0.02  # lane changes happen, but rarely
    # Vehicles leave and new ones enter: more distinct vehicles than were there at the start.
    at_start = ds.mask[run.timesteps == 0].sum()
    assert np.unique(run.vehicle_ids[run.vehicle_ids >= 0]).size > at_start + ds.n_groups // 2


def test_density_varies_between_episodes_and_is_a_confound() -> None:
    result = generate(n_episodes=80, n_steps=20, rng=5)
    ds = result.dataset
    codes = ds.group_codes
    per_group = np.bincount(codes)
    density = np.bincount(codes, weights=result.density) / per_group
    count = np.bincount(codes, weights=ds.mask.sum(axis=1)) / per_group
    m = ds.mask
    n_present = np.bincount(codes, weights=m.sum(axis=1))
    distance = np.bincount(codes, weights=np.where(m, ds.features["distance_to_ego"], 0).sum(1))
    speed = np.bincount(codes, weights=np.where(m, ds.features["agent_speeds"], 0).sum(1))
    assert density.std() > 0.2
    assert np.corrcoef(density, count)[0, 1] > 0.7
    assert np.corrcoef(density, distance / n_present)[0, 1] < -0.4
    assert np.corrcoef(density, speed / n_present)[0, 1] < -0.4
    dense, sparse = density > np.median(density), density <= np.median(density)
    assert (distance / n_present)[dense].mean() < (distance / n_present)[sparse].mean()


# -------------------------------------------------------------------------------------- heads
@pytest.mark.slow
@pytest.mark.parametrize("seed", [20240611, 7])
def test_planted_heads_track_their_feature_and_null_heads_track_nothing(seed: int) -> None:
    result = generate(rng=seed)
    rho = within_spearman(result)
    names = list(FEATURE_NAMES)
    for h, truth in enumerate(result.truth):
        strength = np.abs(rho[h])
        if truth.kind == "planted":
            assert truth.feature is not None
            planted = rho[h, names.index(truth.feature)]
            assert abs(planted) > 0.35, (truth.head, rho[h])
            assert np.sign(planted) == (1 if truth.expected_sign == "positive" else -1)
            # is_ahead and is_behind are complementary: their |rho| tie exactly.
            assert abs(planted) >= strength.max() - 1e-12, (truth.head, rho[h])
            if truth.feature == "ttc":  # clearly ahead of its collinear companions
                assert abs(planted) > strength[names.index("distance_to_ego")] + 0.1
                assert abs(planted) > strength[names.index("closing_speed")] + 0.1
        else:
            assert strength.max() < 0.2, (truth.head, rho[h])


def test_custom_heads() -> None:
    heads = [HeadSpec("speedy", "agent_speeds", beta=2.0, sign="either"), *null_heads(1)]
    result = generate(n_episodes=20, n_steps=10, heads=heads, n_slots=5, rng=1)
    assert result.dataset.head_names == ("speedy", "h0")
    assert result.truth[0].expected_label == "Dynamic Object Head"
    assert result.truth[0].expected_sign == "either"
    assert within_spearman(result)[0, FEATURE_NAMES.index("agent_speeds")] > 0.3


def test_generation_is_fast() -> None:
    start = time.perf_counter()
    result = generate(n_episodes=200, n_steps=50, rng=0)
    assert time.perf_counter() - start < 2.0
    assert result.dataset.n_scenarios == 10_000


# --------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n_episodes": 0}, r"`n_episodes` must be an integer >= 1, but 0 was passed"),
    ({"n_steps": 2.5}, r"`n_steps` must be an integer >= 1, but 2.5 was passed"),
    ({"n_slots": 1}, r"`n_slots` must be an integer >= 2, but 1 was passed"),
    ({"checkpoints": ()}, r"`checkpoints` must be a non-empty sequence of distinct integers"),
    ({"checkpoints": (5, 5)}, r"`checkpoints` .* but \(5, 5\) was passed"),
    ({"dt": 2.0}, r"`dt` must be a number of seconds in \[0.05, 0.5\], but 2.0 was passed"),
    ({"null": "yes"}, r"`null` must be True or False, but 'yes' was passed"),
    ({"null": True, "heads": default_heads()}, r"`heads` must be None"),
    ({"heads": []}, r"`heads` must be a non-empty sequence of HeadSpec"),
    ({"heads": [HeadSpec("a"), HeadSpec("a")]}, r"`heads` must have unique names"),
])
def test_generate_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate(**kwargs)


def test_generate_rejects_a_bad_rng() -> None:
    with pytest.raises(TypeError, match="`rng`"):
        generate(rng="seed")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"feature": "speed", "beta": 1.0}, r"`feature` must be one of .* but 'speed' was passed"),
    ({"feature": "ttc"}, r"`beta` must be non-zero when `feature` is given, but 0.0"),
    ({"feature": "ttc", "beta": -1.0, "sign": "positive"}, r"`sign` must agree with the sign"),
    ({"feature": "ttc", "beta": -1.0, "sign": "up"}, r"`sign` must be one of"),
    ({"beta": 1.0}, r"`feature` None has no effect"),
    ({"noise": -1.0}, r"`noise` must be >= 0, but -1.0 was passed"),
    ({"slot_preference": float("nan")}, r"`slot_preference` must be a finite number"),
])
def test_headspec_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HeadSpec("h", **kwargs)


# ------------------------------------------------------------------------------------ writers
def _load(path: Path) -> Any:
    with open(path, "rb") as handle:
        return pickle.load(handle)


def _entity_attention(weights: NDArray[Any], other: tuple[int, int], n_obj: int,
                      t_obs: int) -> NDArray[np.float64]:
    """(n, L, tokens, H) -> (n, H, V): sum over latents and each entity's t_obs tokens."""
    n, n_latents, _, n_heads = weights.shape
    tokens = weights[:, :, other[0]:other[1], :].astype(np.float64)
    per_entity = tokens.reshape(n, n_latents, n_obj, t_obs, n_heads).sum(axis=(1, 3))
    return per_entity.transpose(0, 2, 1)


@pytest.fixture(scope="module")
def small_run() -> SyntheticRun:
    return generate(n_episodes=4, n_steps=5, checkpoints=(0, 500, 1000), rng=9)


def test_driving_logs_round_trip_exactly(small_run: SyntheticRun, tmp_path: Path) -> None:
    ds = small_run.dataset
    write_driving_logs(small_run, tmp_path / "feat", tmp_path / "att", dtype=np.float64, rng=0,
                       n_latents=3, t_obs=4)
    assert sorted(p.name for p in (tmp_path / "feat").iterdir()) == [
        "attention_log_00000000.pkl", "attention_log_00000500.pkl", "attention_log_00001000.pkl"]
    assert sorted(p.name for p in (tmp_path / "att").iterdir()) == [
        f"attention_scenario_{i:04d}.pkl" for i in range(3)]
    for index, step in enumerate((0, 500, 1000)):
        log = _load(tmp_path / "feat" / f"attention_log_{step:08d}.pkl")
        att = _load(tmp_path / "att" / f"attention_scenario_{index:04d}.pkl")
        rows = np.flatnonzero(ds.steps == step)
        assert log["step"] == step == att["step"]
        assert log["config"] == {"num_objects": 8, "obs_past_num_steps": 4, "n_latents": 3}
        assert log["token_boundaries"]["sdc_traj"] == (0, 4)
        assert log["token_boundaries"]["other_traj"] == (4, 36)
        np.testing.assert_array_equal(log["episode_ids"], np.repeat(np.arange(4), 5))
        weights = att["attention_weights"]["other_traj/cross_attn_0"]
        assert weights.dtype == np.float64
        assert weights.shape == (20, 3, log["token_boundaries"]["roadgraph"][1], 8)
        assert np.all(weights[:, :, :4] > 0) and np.all(weights[:, :, 36:] > 0)
        np.testing.assert_allclose(_entity_attention(weights, (4, 36), 8, 4), ds.attention[rows],
                                   rtol=0, atol=1e-12)
        ids = log["object_ids"]
        np.testing.assert_array_equal(ids, small_run.object_ids[rows])
        semantic = log["semantic_features"]
        for s in range(rows.size):
            for v in range(8):
                if ids[s, v] < 0:
                    assert not ds.mask[rows[s], v]
                    continue
                assert semantic["valid"][s, ids[s, v]]
                for name in FEATURE_NAMES:
                    assert semantic[name].dtype == np.float64
                    assert semantic[name][s, ids[s, v]] == ds.features[name][rows[s], v]
        assert semantic["valid"].sum() == ds.mask[rows].sum()


def test_driving_logs_permute_features_by_object_id(small_run: SyntheticRun) -> None:
    ids = small_run.object_ids
    identity = np.where(small_run.dataset.mask, np.arange(8)[None, :], -1)
    assert not np.array_equal(ids, identity)


def test_driving_logs_in_float32_without_ids_or_steps(small_run: SyntheticRun,
                                                      tmp_path: Path) -> None:
    ds = small_run.dataset
    write_driving_logs(small_run, tmp_path / "f", tmp_path / "a", include_object_ids=False,
                       include_steps=False, rng=1)
    log = _load(tmp_path / "f" / "attention_log_00000500.pkl")
    att = _load(tmp_path / "a" / "attention_scenario_0001.pkl")
    assert "object_ids" not in log and "step" not in att
    rows = np.flatnonzero(ds.steps == 500)
    weights = att["attention_weights"]["other_traj/cross_attn_0"]
    assert weights.dtype == np.float32
    np.testing.assert_allclose(_entity_attention(weights, (5, 45), 8, 5), ds.attention[rows],
                               rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(log["semantic_features"]["valid"], ds.mask[rows])
    np.testing.assert_array_equal(log["semantic_features"]["ttc"], ds.features["ttc"][rows])
    assert not [p for p in (tmp_path / "f").iterdir() if p.name.endswith(".tmp")]


def test_driving_logs_reject_bad_arguments(small_run: SyntheticRun, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"`dtype` must be a floating dtype .* but 'int32'"):
        write_driving_logs(small_run, tmp_path, tmp_path, dtype="int32")
    with pytest.raises(ValueError, match=r"`t_obs` must be an integer >= 1, but 0 was passed"):
        write_driving_logs(small_run, tmp_path, tmp_path, t_obs=0)
    with pytest.raises(TypeError, match=r"`run` must be a SyntheticRun, but HSIDataset"):
        write_driving_logs(small_run.dataset, tmp_path, tmp_path)  # type: ignore[arg-type]


def test_rollout_extraction_round_trip(small_run: SyntheticRun, tmp_path: Path) -> None:
    ds = small_run.dataset
    write_extraction(small_run, tmp_path, kind="rollout")
    content = _load(tmp_path / "extraction_1000.pkl")
    assert content["step"] == 1000 and len(content["scenarios"]) == 4
    rows = np.flatnonzero(ds.steps == 1000)
    timesteps = [t for scenario in content["scenarios"] for t in scenario["timesteps"]]
    assert len(timesteps) == rows.size == 20
    for row, timestep in zip(rows, timesteps, strict=True):
        per_vehicle = timestep["attention_distributions"]["per_vehicle_attention"]
        np.testing.assert_array_equal(per_vehicle, ds.attention[row].T)
        np.testing.assert_array_equal(timestep["semantic_features"]["valid"], ds.mask[row])
        for name in FEATURE_NAMES:
            np.testing.assert_array_equal(timestep["semantic_features"][name],
                                          ds.features[name][row])
        ttc = ds.features["ttc"][row][ds.mask[row]]
        assert timestep["collision_risk"] == pytest.approx(max(0.0, float(np.max(1 - ttc / 5))))


def test_snapshot_extraction_round_trip(small_run: SyntheticRun, tmp_path: Path) -> None:
    ds = small_run.dataset
    write_extraction(small_run, tmp_path, kind="Snapshot")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "extraction_0.pkl", "extraction_1000.pkl", "extraction_500.pkl"]
    content = _load(tmp_path / "extraction_500.pkl")
    rows = np.flatnonzero(ds.steps == 500)
    assert len(content["scenarios"]) == rows.size
    for row, scenario in zip(rows, content["scenarios"], strict=True):
        np.testing.assert_array_equal(scenario["attention_per_vehicle"], ds.attention[row])
        np.testing.assert_array_equal(scenario["semantic_features"]["distance_to_ego"],
                                      ds.features["distance_to_ego"][row])
        assert scenario["timestep"] == small_run.timesteps[row]
    with pytest.raises(ValueError, match=r"`kind` must be one of \{'rollout', 'snapshot'\}"):
        write_extraction(small_run, tmp_path, kind="stream")


def test_npz_round_trip(small_run: SyntheticRun, tmp_path: Path) -> None:
    from hsi_stats.io.npz import load_npz, write_npz

    write_npz(small_run.dataset, tmp_path / "run.npz")
    assert load_npz(tmp_path / "run.npz").fingerprint() == small_run.dataset.fingerprint()
