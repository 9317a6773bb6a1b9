"""Highway traffic around an ego vehicle and the driving features of the vehicles around it.

Draws the episodes (density, lanes, ego speed, capacity, object ids), simulates them all at once
(intelligent driver model with smooth acceleration noise, lane changes, vehicles that leave the
window and are replaced at its edge), computes the features with the definitions of the driving
logs (:mod:`hsi_stats.kinematics`; TTC censored at 5 s) and orders the vehicles into slots, nearest first. It knows
nothing of heads or attention beyond drawing each head's preferred slot with the episodes, and must
never write a file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..kinematics import FEATURE_NAMES as KINEMATIC_FEATURES
from ..kinematics import TTC_MAX
from ..kinematics import driving_features as kinematic_features

__all__ = [
    "FEATURE_NAMES",
    "LANE_WIDTH",
    "WINDOW_DENSE",
    "WINDOW_SPARSE",
    "collision_risk",
    "draw_episodes",
    "driving_features",
    "simulate",
    "slot_order",
    "to_slots",
]

FEATURE_NAMES: tuple[str, ...] = KINEMATIC_FEATURES
"""The driving features, in the order of the dataset."""

LANE_WIDTH = 3.7
"""Lane width in metres; ``is_left``/``is_right`` mean ``dy`` beyond half of it."""

WINDOW_SPARSE, WINDOW_DENSE = 80.0, 40.0
"""Half-width in metres of the window around the ego at density 0 and at density 1."""

_CAR_LENGTH = 4.5
# Intelligent driver model (Treiber, Hennecke and Helbing 2000, doi:10.1103/PhysRevE.62.1805):
# maximum acceleration, comfortable braking, time headway, jam distance.
_IDM_ACCEL, _IDM_BRAKE, _IDM_HEADWAY, _IDM_JAM = 1.5, 2.0, 1.2, 2.0
_ACCEL_LIMITS = (-6.0, 2.5)
_ACCEL_NOISE, _ACCEL_NOISE_TIME = 0.4, 2.0
_LANE_CHANGE_RATE, _BLOCKED_LANE_CHANGE_RATE = 0.03, 0.3  # per second
_LANE_CHANGE_CLEARANCE = 15.0
_LATERAL_TIME, _LATERAL_SPEED_MAX = 0.8, 1.2
_EGO_SPEED = (25.0, 30.0)
_DENSE_SLOWDOWN = 6.0
_LANE_SPEED_BIAS = 2.5  # faster to the left, m/s per lane
_SPEED_SPREAD_SPARSE, _SPEED_SPREAD_DENSE = 4.0, 3.0  # sd of desired speeds around the lane speed
_RESPAWN_DELAY = 0.6  # mean seconds before a vehicle that left is replaced


# -------------------------------------------------------------------------------------- episodes
def draw_episodes(n_episodes: int, n_slots: int, n_heads: int,
                  rng: np.random.Generator) -> dict[str, NDArray[Any]]:
    """Episode-level draws: density, lanes, ego, capacity, object ids, and each head's preferred slot.

    The preferred slots belong to the attention model but are drawn here, last, from the same stream.
    """
    density = rng.random(n_episodes)
    n_lanes = rng.integers(3, 5, size=n_episodes)
    noisy_capacity = 2 + (n_slots - 2) * density + rng.normal(0.0, 0.75, n_episodes)
    spread = _SPEED_SPREAD_SPARSE - (_SPEED_SPREAD_SPARSE - _SPEED_SPREAD_DENSE) * density
    return {
        "density": density,
        "n_lanes": n_lanes,
        "ego_lane": rng.integers(0, n_lanes),
        "ego_speed": rng.uniform(*_EGO_SPEED, n_episodes) - _DENSE_SLOWDOWN * density,
        "speed_spread": spread,
        "window": WINDOW_SPARSE - (WINDOW_SPARSE - WINDOW_DENSE) * density,
        "capacity": np.clip(np.rint(noisy_capacity), 2, n_slots).astype(np.int64),
        "object_ids": rng.permuted(np.tile(np.arange(n_slots), (n_episodes, 1)), axis=1),
        # Drawn last, so that the traffic does not depend on the number of heads.
        "preferred_slot": rng.integers(0, n_slots, size=(n_episodes, n_heads)),
    }


# --------------------------------------------------------------------------------------- traffic
@dataclass
class _Traffic:
    """Simulation state, shape (E, N): column 0 is the ego, columns 1..V the other vehicles."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    vx: NDArray[np.float64]
    vy: NDArray[np.float64]
    target_lane: NDArray[np.int64]
    desired_speed: NDArray[np.float64]
    accel_noise: NDArray[np.float64]
    active: NDArray[np.bool_]
    respawn_timer: NDArray[np.float64]
    vehicle_id: NDArray[np.int64]


def _desired_speeds(episodes: Mapping[str, NDArray[Any]], lanes: NDArray[np.int64],
                    rng: np.random.Generator) -> NDArray[np.float64]:
    """Desired speed of vehicles in ``lanes``: the ego's, faster to the left, plus a spread."""
    bias = _LANE_SPEED_BIAS * (lanes - episodes["ego_lane"][:, None])
    spread = episodes["speed_spread"][:, None] * rng.standard_normal(lanes.shape)
    return np.maximum(episodes["ego_speed"][:, None] + bias + spread, 8.0)


def _initial_traffic(episodes: Mapping[str, NDArray[Any]], n_slots: int,
                     rng: np.random.Generator) -> _Traffic:
    """Ego at the origin; ``capacity`` vehicles spread over the window and the lanes."""
    n_ep, n_all = episodes["density"].shape[0], n_slots + 1
    window = episodes["window"][:, None]
    lanes = rng.integers(0, episodes["n_lanes"][:, None], size=(n_ep, n_all))
    lanes[:, 0] = episodes["ego_lane"]
    dx = rng.uniform(-1.0, 1.0, (n_ep, n_all)) * window
    # Keep the ego's lane clear around it at the start: map [-W, W] onto +-[12 m, W].
    pushed = np.sign(dx) * (12.0 + np.abs(dx) * (window - 12.0) / window)
    dx = np.where(lanes == episodes["ego_lane"][:, None], pushed, dx)
    dx[:, 0] = 0.0
    desired = _desired_speeds(episodes, lanes, rng)
    desired[:, 0] = episodes["ego_speed"]
    vx = np.maximum(desired + rng.normal(0.0, 1.0, desired.shape), 0.0)
    vx[:, 0] = desired[:, 0]
    zeros = np.zeros((n_ep, n_all))
    return _Traffic(
        x=dx, y=(lanes * LANE_WIDTH).astype(np.float64), vx=vx, vy=zeros.copy(), target_lane=lanes,
        desired_speed=desired, accel_noise=zeros.copy(),
        active=np.arange(n_all)[None, :] <= episodes["capacity"][:, None],
        respawn_timer=zeros.copy(),
        vehicle_id=np.arange(n_ep * n_all, dtype=np.int64).reshape(n_ep, n_all),
    )


def _leaders(state: _Traffic) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Bumper gap to (inf when none) and speed of the nearest active vehicle ahead in the lane."""
    ahead = state.x[:, None, :] - state.x[:, :, None]
    same_lane = np.abs(state.y[:, None, :] - state.y[:, :, None]) < 0.8 * LANE_WIDTH
    distance = np.where(same_lane & (ahead > 0) & state.active[:, None, :], ahead, np.inf)
    leader = np.argmin(distance, axis=2)
    gap = np.take_along_axis(distance, leader[:, :, None], axis=2)[:, :, 0] - _CAR_LENGTH
    lead_speed = np.take_along_axis(state.vx, leader, axis=1)
    return np.maximum(gap, 0.5), np.where(np.isfinite(gap), lead_speed, state.vx)


def _idm_acceleration(state: _Traffic) -> NDArray[np.float64]:
    """Intelligent-driver-model acceleration of every vehicle."""
    gap, lead_speed = _leaders(state)
    v = state.vx
    braking = v * (v - lead_speed) / (2 * math.sqrt(_IDM_ACCEL * _IDM_BRAKE))
    wanted = np.maximum(_IDM_JAM + v * _IDM_HEADWAY + braking, 0.0)
    interaction = np.where(np.isfinite(gap), (wanted / gap) ** 2, 0.0)
    free = (v / state.desired_speed) ** 4
    return np.clip(_IDM_ACCEL * (1.0 - free - interaction), *_ACCEL_LIMITS)


def _start_lane_changes(state: _Traffic, idm: NDArray[np.float64], n_lanes: NDArray[np.int64],
                        dt: float, rng: np.random.Generator) -> None:
    """New target lanes for a few settled vehicles (more often when blocked), into clear lanes."""
    settled = np.abs(state.y - state.target_lane * LANE_WIDTH) < 0.05
    rate = _LANE_CHANGE_RATE + _BLOCKED_LANE_CHANGE_RATE * (idm < -0.3)
    start = settled & state.active & (rng.random(state.x.shape) < rate * dt)
    start[:, 0] = False
    new_lane = state.target_lane + rng.choice(np.array([-1, 1]), size=state.x.shape)
    start &= (new_lane >= 0) & (new_lane < n_lanes[:, None])
    in_new_lane = np.abs(state.y[:, None, :] - new_lane[:, :, None] * LANE_WIDTH) < 0.8 * LANE_WIDTH
    near = np.abs(state.x[:, None, :] - state.x[:, :, None]) < _LANE_CHANGE_CLEARANCE
    start &= ~(in_new_lane & near & state.active[:, None, :]).any(axis=2)
    state.target_lane = np.where(start, new_lane, state.target_lane)


def _move(state: _Traffic, idm: NDArray[np.float64], dt: float, rng: np.random.Generator) -> None:
    """Integrate speeds (IDM plus smooth noise), positions and lateral motion over one step."""
    decay = math.exp(-dt / _ACCEL_NOISE_TIME)
    innovation = _ACCEL_NOISE * math.sqrt(1 - decay**2) * rng.standard_normal(state.x.shape)
    state.accel_noise = decay * state.accel_noise + innovation
    state.vx = np.maximum(state.vx + (idm + state.accel_noise) * dt, 0.0)
    state.x = state.x + state.vx * dt
    lateral_gap = state.target_lane * LANE_WIDTH - state.y
    state.vy = np.clip(lateral_gap / _LATERAL_TIME, -_LATERAL_SPEED_MAX, _LATERAL_SPEED_MAX)
    state.vy[:, 0] = 0.0
    state.y = state.y + state.vy * dt


def _retire(state: _Traffic, window: NDArray[np.float64], rng: np.random.Generator) -> None:
    """Vehicles beyond the window leave; each is replaced after a random delay."""
    gone = state.active & (np.abs(state.x - state.x[:, :1]) > window[:, None])
    state.active = state.active & ~gone
    delay = rng.exponential(_RESPAWN_DELAY, size=state.x.shape)
    state.respawn_timer = np.where(gone, delay, state.respawn_timer)


def _respawn(state: _Traffic, episodes: Mapping[str, NDArray[Any]], dt: float,
             rng: np.random.Generator) -> NDArray[np.bool_]:
    """New vehicles enter at the window's edge: behind when faster than the ego, else ahead.

    Returns which vehicle slots hold a new vehicle. At least two vehicles are always present.
    """
    n_all = state.x.shape[1]
    waiting = ~state.active & (np.arange(n_all)[None, :] <= episodes["capacity"][:, None])
    state.respawn_timer = np.where(waiting, state.respawn_timer - dt, state.respawn_timer)
    due = waiting & (state.respawn_timer <= 0)
    too_few = state.active.sum(axis=1) - 1 + due.sum(axis=1) < 2
    due |= waiting & too_few[:, None]
    lanes = rng.integers(0, episodes["n_lanes"][:, None], size=state.x.shape)
    desired = _desired_speeds(episodes, lanes, rng)
    side = np.where(desired > state.vx[:, :1], -1.0, 1.0)
    edge = episodes["window"][:, None] - rng.uniform(0.5, 8.0, state.x.shape)
    state.x = np.where(due, state.x[:, :1] + side * edge, state.x)
    state.y = np.where(due, lanes * LANE_WIDTH, state.y)
    state.vy = np.where(due, 0.0, state.vy)
    state.vx = np.where(due, desired, state.vx)
    state.target_lane = np.where(due, lanes, state.target_lane)
    state.desired_speed = np.where(due, desired, state.desired_speed)
    state.accel_noise = np.where(due, 0.0, state.accel_noise)
    state.active = state.active | due
    new_ids = state.vehicle_id.max() + np.cumsum(due.ravel()).reshape(due.shape)
    state.vehicle_id = np.where(due, new_ids, state.vehicle_id)
    return due


def simulate(episodes: Mapping[str, NDArray[Any]], *, n_steps: int, n_slots: int, dt: float,
             rng: np.random.Generator) -> dict[str, NDArray[Any]]:
    """Run all episodes at once; record (episode, step, vehicle) kinematics relative to the ego.

    The record holds ``dx, dy, dvx, dvy, speed, active, new, vehicle_id``, each (E, n_steps,
    n_slots) in vehicle order; ``new`` marks a vehicle that entered at that step.
    """
    state = _initial_traffic(episodes, n_slots, rng)
    shape = (episodes["density"].shape[0], n_steps, n_slots)
    record: dict[str, NDArray[Any]] = {name: np.empty(shape)
                                       for name in ("dx", "dy", "dvx", "dvy", "speed")}
    record["active"] = np.empty(shape, dtype=bool)
    record["new"] = np.zeros(shape, dtype=bool)
    record["vehicle_id"] = np.empty(shape, dtype=np.int64)
    for t in range(n_steps):
        if t > 0:
            idm = _idm_acceleration(state)
            _start_lane_changes(state, idm, episodes["n_lanes"], dt, rng)
            _move(state, idm, dt, rng)
            _retire(state, episodes["window"], rng)
            record["new"][:, t] = _respawn(state, episodes, dt, rng)[:, 1:]
        record["dx"][:, t] = state.x[:, 1:] - state.x[:, :1]
        record["dy"][:, t] = state.y[:, 1:] - state.y[:, :1]
        record["dvx"][:, t] = state.vx[:, 1:] - state.vx[:, :1]
        record["dvy"][:, t] = state.vy[:, 1:] - state.vy[:, :1]
        record["speed"][:, t] = np.hypot(state.vx[:, 1:], state.vy[:, 1:])
        record["active"][:, t] = state.active[:, 1:]
        record["vehicle_id"][:, t] = state.vehicle_id[:, 1:]
    return record


# -------------------------------------------------------------------------------------- features
def driving_features(record: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[np.float64]]:
    """The driving features of every simulated vehicle (:func:`hsi_stats.kinematics.driving_features`; the road
    is straight, so the road frame is the Cartesian one)."""
    return kinematic_features(dx=record["dx"], dy=record["dy"], dvx=record["dvx"], dvy=record["dvy"],
                              speed=record["speed"], longitudinal=record["dx"], lateral=record["dy"],
                              half_lane=LANE_WIDTH / 2)


def slot_order(distance: NDArray[np.float64], active: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Vehicle index of each slot: present vehicles nearest first, then the absent ones."""
    return np.argsort(np.where(active, distance, np.inf), axis=-1, kind="stable")


def to_slots(values: NDArray[Any], order: NDArray[np.intp], mask: NDArray[np.bool_],
             fill: float) -> NDArray[Any]:
    """Reorder (E, T, V) vehicle values into slot order, with ``fill`` on padding slots."""
    return np.where(mask, np.take_along_axis(values, order, axis=-1), fill)


def collision_risk(ttc: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Largest ``1 - ttc / 5`` over the present vehicles of each scenario: 0 when nobody closes within 5 s."""
    return np.max(np.where(mask, 1.0 - ttc / TTC_MAX, 0.0), axis=-1, initial=0.0)
