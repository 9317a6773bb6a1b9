"""Recording episodes in a real highway-env environment (``hsi_stats.capture.highway``).

- The features of the recorded data set agree with an independent computation from the observations the policy
  saw (un-normalised, relative to the ego: each row's offsets and relative velocity are in it).
- The alignment check fires on a deliberately misaligned observation (two rows swapped by a wrapper).
- A hand-built attention module that always looks at the nearest vehicle is validated as a Proximity Head.
"""

from __future__ import annotations

import numpy as np
import pytest

from hsi_stats import analyze
from hsi_stats._validation import HSIDataError, OptionError
from hsi_stats.kinematics import TTC_MAX

torch = pytest.importorskip("torch", reason="the torch extra (hsi_stats[torch]) is not installed")
gym = pytest.importorskip("gymnasium", reason="the highway extra (hsi_stats[highway]) is not installed")
highway = pytest.importorskip("hsi_stats.capture.highway", reason="the highway extra is not installed")

V = 6  # observation rows: the ego and 5 vehicles
RAW = {"type": "Kinematics", "vehicles_count": V, "features": ["presence", "x", "y", "vx", "vy"],
       "normalize": False, "absolute": False}
HALF_LANE = 2.0  # highway-env's lanes are 4 m wide


class NearestVehicleAttention(torch.nn.Module):
    """One head whose ego query puts its attention on the nearest observed vehicle (keys: the observation rows)."""

    def __init__(self, normalized: bool) -> None:
        super().__init__()
        self.normalized = normalized

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # obs (1, V, 5)
        distance = torch.hypot(obs[..., 1], obs[..., 2])
        scores = -50.0 * distance / (distance[:, 1:].max() + 1e-9)
        scores = scores.masked_fill(obs[..., 0] < 0.5, float("-inf"))  # padding rows
        scores[:, 0] = float("-inf")  # the ego's own row
        weights = torch.softmax(scores, dim=-1)[:, None, :]  # (batch, heads=1, keys)
        return weights @ obs, weights


def _env(observation: dict | None = None, **config: object):  # type: ignore[no-untyped-def]
    return gym.make("highway-fast-v0", render_mode=None,
                    config={"observation": observation or RAW, "duration": 40, **config})


def _policy(model: torch.nn.Module, seen: list[np.ndarray]):  # type: ignore[no-untyped-def]
    def act(obs: np.ndarray) -> int:
        seen.append(np.array(obs, dtype=np.float64))
        with torch.no_grad():
            model(torch.as_tensor(obs, dtype=torch.float32)[None])
        return 1  # IDLE: keep lane and speed
    return act


def test_features_agree_with_the_observations_the_policy_saw() -> None:
    seen: list[np.ndarray] = []
    model = NearestVehicleAttention(normalized=False)
    dataset = highway.record_episodes(_env(), _policy(model, seen), model, 3, seed=5, step=7, names=[""],
                                      weights=lambda m, a, k, out: out[1], layout="b h k", max_steps=12)
    obs = np.stack(seen)  # (N, V, 5): presence, then x, y, vx, vy relative to the ego (row 0: absolute)
    assert dataset.n_scenarios == len(seen) and dataset.n_slots == V - 1 and set(dataset.steps) == {7}
    present = obs[:, 1:, 0] > 0.5
    np.testing.assert_array_equal(dataset.mask, present)
    dx, dy, dvx, dvy = (obs[:, 1:, i] for i in range(1, 5))
    distance = np.hypot(dx, dy)
    closing = -(dx * dvx + dy * dvy) / distance
    ttc = np.where(closing > 0.5, distance / np.where(closing > 0.5, closing, 1.0), TTC_MAX).clip(0, TTC_MAX)
    speed = np.hypot(dvx + obs[:, :1, 3], dvy + obs[:, :1, 4])
    expected = {"distance_to_ego": distance, "closing_speed": closing, "ttc": ttc, "agent_speeds": speed,
                "is_ahead": dx > 0, "is_behind": dx < 0, "is_left": dy < -HALF_LANE, "is_right": dy > HALF_LANE}
    for name, values in expected.items():  # the road is straight: its frame is x along, y across (to the right)
        np.testing.assert_allclose(dataset.features[name][present], np.asarray(values, float)[present], rtol=1e-5,
                                   atol=1e-4, err_msg=name)
    assert dataset.features["is_left"][present].any() and dataset.features["is_right"][present].any()
    assert dataset.n_groups == 3 and dataset.groups[0] == "episode 5"


def test_the_alignment_check_fires_on_a_misaligned_observation() -> None:
    class SwapRows(gym.ObservationWrapper):  # type: ignore[misc]
        def observation(self, observation: np.ndarray) -> np.ndarray:
            swapped = observation.copy()
            swapped[[1, 2]] = swapped[[2, 1]]
            return swapped

    model = NearestVehicleAttention(normalized=False)
    with pytest.raises(HSIDataError, match=r"episode 0 \(seed 3\), step 0: the observation's row 1 is not the "
                                           r"vehicle the simulator puts there"):
        highway.record_episodes(SwapRows(_env()), _policy(model, []), model, 1, seed=3, names=[""],
                                weights=lambda m, a, k, out: out[1], layout="b h k")
    with pytest.raises(OptionError, match="order='sorted'"):
        highway.record_episodes(_env({**RAW, "order": "shuffled"}), _policy(model, []), model, 1, names=[""],
                                weights=lambda m, a, k, out: out[1], layout="b h k")


@pytest.mark.slow  # 14 episodes of highway-env
def test_a_policy_that_looks_at_the_nearest_vehicle_is_a_proximity_head() -> None:
    model = NearestVehicleAttention(normalized=True)
    default = {"type": "Kinematics", "vehicles_count": V, "features": ["presence", "x", "y", "vx", "vy"]}  # normalised
    dataset = highway.record_episodes(_env(default), _policy(model, []), model, 14, seed=0, names=[""],
                                      weights=lambda m, a, k, out: out[1], layout="b h k", max_steps=12)
    heads = analyze(dataset, n_resamples=199, rng=0).heads
    assert heads.loc[0, "label"] == "Proximity Head" and heads.loc[0, "validated"]
    assert heads.loc[0, "label_feature"] == "distance_to_ego"
