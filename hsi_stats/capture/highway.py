"""Episodes of a policy in highway-env, recorded with the ego's attention and the driving features of the
vehicles it observes, and run again with heads removed (optional extra ``hsi_stats[highway]``).

highway-env's Kinematics observation has one row per vehicle: row 0 is the ego, rows 1..V-1 the nearest other
vehicles sorted by distance (a row is therefore not a vehicle identity: it changes as traffic moves), padding rows
of zeros, and values normalised to [-1, 1] by ``features_range``. The attention a policy pays to row ``v`` is
about the vehicle in row ``v`` at that step, so the features must be those of exactly that vehicle. At every step
:func:`record_episodes` recovers the vehicles of rows 1..V-1 from the simulator (the call the observation itself
makes), checks that they reproduce the observation the policy saw, and computes their features from the
simulator state with :func:`hsi_stats.kinematics.driving_features` (distance, closing speed, TTC, ahead/behind and
left/right in the ego lane's frame, speed). Any mismatch (a wrapper that reorders, shuffled rows, another
observation) stops the recording with the episode and step named. Environments that change the road after computing
the observation (``intersection-v*`` removes and spawns vehicles at the end of its step) are refused that way too:
the vehicles behind the rows are then no longer on the road.

References
----------
E. Leurent, "An Environment for Autonomous Driving Decision-Making", https://github.com/eleurent/highway-env, 2018
(``highway_env/envs/common/observation.py``: ``KinematicObservation``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from tqdm import tqdm

from .._validation import HSIDataError, OptionError
from ..data import HSIDataset
from ..kinematics import FEATURE_NAMES, driving_features
from .entities import Index
from .torch_recorder import MHA_LAYOUT, TorchAttentionRecorder, WeightsFn

try:
    import highway_env  # noqa: F401  (registers the environments)
    from highway_env import utils as highway_utils
    from highway_env.envs.common.observation import KinematicObservation
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("recording highway-env episodes needs the optional extra: pip install 'hsi_stats[highway]'") \
        from exc

__all__ = ["ablation_episodes", "observed_vehicles", "record_episodes", "vehicle_features"]

#: How close the vehicles recovered must reproduce the observation (float32 rounding of values in [-1, 1] or m).
TOLERANCE = 1e-4


def _observation_type(env: Any) -> KinematicObservation:
    observation = getattr(env.unwrapped, "observation_type", None)
    if not isinstance(observation, KinematicObservation):
        raise OptionError(f"`env` must use highway-env's Kinematics observation (config 'observation': {{'type': "
                          f"'Kinematics'}}), but it uses {type(observation).__name__}.")
    if observation.vehicles_count < 2:
        raise OptionError(f"`env` must observe at least one vehicle besides the ego (vehicles_count >= 2), but its "
                          f"observation has vehicles_count={observation.vehicles_count}.")
    if observation.order != "sorted":
        raise OptionError(f"`env` must observe vehicles in order='sorted' (rows by distance), but its observation "
                          f"has order={observation.order!r}: shuffled rows cannot be matched to vehicles.")
    return observation


def observed_vehicles(env: Any) -> tuple[Any, list[Any]]:
    """The ego and the vehicles of observation rows 1..k (k <= V-1), as the Kinematics observation picks them."""
    observation = _observation_type(env)
    road, ego = env.unwrapped.road, observation.observer_vehicle
    close = road.close_objects_to(ego, env.unwrapped.PERCEPTION_DISTANCE, count=observation.vehicles_count - 1,
                                  see_behind=observation.see_behind, sort=True,
                                  vehicles_only=not observation.include_obstacles)
    return ego, list(close[-observation.vehicles_count + 1:])


def _reproduced(env: Any, ego: Any, vehicles: Sequence[Any]) -> NDArray[np.float64]:
    """The observation rows those vehicles give (ego first, padding rows of zeros), as the observation computes
    them: ``to_dict`` relative to the ego unless absolute, then ``features_range`` normalisation and clipping."""
    observation = _observation_type(env)
    origin = None if observation.absolute else ego
    rows = [ego.to_dict()] + [v.to_dict(origin, observe_intentions=observation.observe_intentions) for v in vehicles]
    values = np.array([[row[name] for name in observation.features] for row in rows], dtype=np.float64)
    if observation.normalize and observation.features_range:
        for column, name in enumerate(observation.features):
            if name in observation.features_range:
                values[:, column] = highway_utils.lmap(values[:, column], observation.features_range[name], [-1, 1])
                if observation.clip:
                    values[:, column] = np.clip(values[:, column], -1, 1)
    out = np.zeros((observation.vehicles_count, len(observation.features)))
    out[:len(rows)] = values
    return out


def vehicle_features(ego: Any, vehicles: Sequence[Any]) -> dict[str, NDArray[np.float64]]:
    """The catalog's driving features of ``vehicles`` relative to ``ego`` (each (len(vehicles),)).

    Positions and velocities are the simulator's (m, m/s); ahead/behind and left/right are in the frame of the
    ego's lane (``lane.local_coordinates``: highway-env's lateral coordinate grows to the driver's right, so
    left is its negative); a lane is ``lane.width_at`` wide.
    """
    lane = ego.lane
    ego_s, ego_r = lane.local_coordinates(ego.position)
    offsets = np.array([lane.local_coordinates(v.position) for v in vehicles], dtype=np.float64).reshape(-1, 2)
    dp = np.array([v.position - ego.position for v in vehicles], dtype=np.float64).reshape(-1, 2)
    dv = np.array([v.velocity - ego.velocity for v in vehicles], dtype=np.float64).reshape(-1, 2)
    return driving_features(dx=dp[:, 0], dy=dp[:, 1], dvx=dv[:, 0], dvy=dv[:, 1],
                            speed=[float(getattr(v, "speed", 0.0)) for v in vehicles],
                            longitudinal=offsets[:, 0] - ego_s, lateral=-(offsets[:, 1] - ego_r),
                            half_lane=float(lane.width_at(ego_s)) / 2)


def _check_aligned(env: Any, obs: Any, ego: Any, vehicles: Sequence[Any], where: str) -> None:
    expected = _reproduced(env, ego, vehicles)
    seen = np.asarray(obs, dtype=np.float64)
    if seen.shape != expected.shape:
        raise HSIDataError(f"{where}: the observation has shape {seen.shape}, but the Kinematics observation of the "
                           f"environment gives {expected.shape}; pass the observation as the environment returns it.")
    gap = np.abs(seen - expected)
    if not np.all(gap <= TOLERANCE):
        row = int(np.argwhere(gap > TOLERANCE)[0][0])
        raise HSIDataError(f"{where}: the observation's row {row} is not the vehicle the simulator puts there (the "
                           f"largest difference is {gap.max():.3g}): the features would describe other vehicles "
                           f"than the attention. Record the observation as the environment returns it (sorted by "
                           f"distance, no wrapper that changes rows).")


def record_episodes(env: Any, act: Callable[[Any], Any], module: Any, n_episodes: int, *, seed: int = 0,
                    step: int | None = None, names: Sequence[str] | None = None, weights: WeightsFn | None = None,
                    layout: str = MHA_LAYOUT, query: Index = 0, max_steps: int | None = None,
                    progress: bool = False) -> HSIDataset:
    """Roll out ``act`` in ``env`` for ``n_episodes`` episodes and record the ego's attention over the vehicles it
    observes, with their driving features, as an :class:`~hsi_stats.HSIDataset` (one scenario per step).

    Parameters
    ----------
    env : gymnasium.Env
        A highway-env environment with a Kinematics observation in ``order="sorted"`` (the default).
    act : callable
        The policy: ``act(observation) -> action``. It must run ``module`` exactly once per call, on that
        observation alone (batch of one).
    module : torch.nn.Module
        The model whose attention is recorded with :class:`~hsi_stats.capture.TorchAttentionRecorder` (every
        ``nn.MultiheadAttention``, or ``names`` with ``weights`` and ``layout`` for custom attention modules).
        Its keys are the observation rows: key 0 (the ego) is dropped and keys 1..V-1 are the vehicles.
    n_episodes : int
        Episodes, reset with seeds ``seed, seed + 1, ...``; each is one group of the data set.
    seed : int, default 0
        Seed of the first episode.
    step : int, optional
        The training step (checkpoint) of the policy, given to every scenario.
    names, weights, layout
        Passed to :class:`~hsi_stats.capture.TorchAttentionRecorder`.
    query : int, slice or sequence of int, default 0
        The query of the ego (row 0); several queries are summed.
    max_steps : int, optional
        Steps per episode at most (otherwise until the episode terminates or is truncated).
    progress : bool, default False
        A progress bar over the episodes.

    Returns
    -------
    HSIDataset
        Attention (N, H, V-1) over observation rows 1..V-1, the features of :data:`hsi_stats.kinematics.FEATURE_NAMES`
        of the vehicles in those rows, the mask (padding rows invalid), groups ``"episode {seed + e}"``.

    Raises
    ------
    HSIDataError
        When, at some step, the vehicles recovered from the simulator do not reproduce the observation (named by
        episode and step), or ``act`` does not run the module once per step on one observation.
    OptionError
        On an environment without a sorted Kinematics observation, or bad counts.
    """
    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 1:
        raise OptionError(f"The value for `n_episodes` must be a positive integer, but {n_episodes!r} was passed.")
    if max_steps is not None and (not isinstance(max_steps, (int, np.integer)) or max_steps < 1):
        raise OptionError(f"The value for `max_steps` must be None or a positive integer, but {max_steps!r} was "
                          f"passed.")
    features: dict[str, list[NDArray[np.float64]]] = {name: [] for name in FEATURE_NAMES}
    mask, groups = [], []
    recorder = TorchAttentionRecorder(module, names=names, weights=weights, layout=layout)
    with recorder:
        for episode in tqdm(range(int(n_episodes)), desc="episodes", unit="episode", disable=not progress):
            obs, _ = env.reset(seed=int(seed) + episode)
            n_slots = _observation_type(env).vehicles_count - 1
            t, done = 0, False
            while not done and (max_steps is None or t < max_steps):
                where = f"episode {episode} (seed {int(seed) + episode}), step {t}"
                ego, vehicles = observed_vehicles(env)
                _check_aligned(env, obs, ego, vehicles, where)
                values = vehicle_features(ego, vehicles)
                for name in FEATURE_NAMES:
                    features[name].append(np.pad(values[name], (0, n_slots - len(vehicles))))
                mask.append(np.arange(n_slots) < len(vehicles))
                groups.append(f"episode {int(seed) + episode}")
                before = recorder.n_calls
                action = act(obs)
                if recorder.n_calls != before + 1:
                    raise HSIDataError(f"{where}: `act` must run the module once per step, but it ran it "
                                       f"{recorder.n_calls - before} times.")
                obs, _, terminated, truncated, _ = env.step(action)
                done, t = bool(terminated or truncated), t + 1
    attention = recorder.attention(query=query, entities=slice(1, None))
    if attention.shape[::2] != (len(mask), len(mask[0])):
        raise HSIDataError(f"`act` must run the module on one observation at a time, with the observation's "
                           f"{len(mask[0]) + 1} rows as keys, but the attention recorded over {len(mask)} steps has "
                           f"{attention.shape[0]} scenarios and {attention.shape[2] + 1} keys.")
    n = attention.shape[0]
    return HSIDataset(
        attention, {name: np.stack(values) for name, values in features.items()}, mask=np.stack(mask),
        groups=np.array(groups), steps=None if step is None else np.full(n, int(step)),
        head_names=recorder.head_names, copy=False,
        notes=[f"recorded in highway-env from {n_episodes} episodes (seeds {int(seed)} to "
               f"{int(seed) + int(n_episodes) - 1}): the ego's attention over observation rows 1..V-1, with the "
               f"features of the vehicles in those rows, checked against the observation at every step"])


def _episode(env: Any, act: Callable[[Any], Any], seed: int, max_steps: int | None,
             seen: list[Any] | None = None) -> tuple[float, bool]:
    """One episode reset with ``seed``: its undiscounted return and whether it crashed (``info["crashed"]`` at any
    step); the observations the policy acted on are appended to ``seen``."""
    obs, _ = env.reset(seed=seed)
    total, crashed, t, done = 0.0, False, 0, False
    while not done and (max_steps is None or t < max_steps):
        if seen is not None:
            seen.append(obs)
        obs, reward, terminated, truncated, info = env.step(act(obs))
        total += float(reward)
        crashed = crashed or bool(info.get("crashed", False))
        done, t = bool(terminated or truncated), t + 1
    return total, crashed


def ablation_episodes(env: Any, act: Callable[[Any], Any], module: Any,
                      heads: Sequence[str | int] | Mapping[str, Sequence[str | int]], n_episodes: int, *,
                      seed: int = 0, mode: str = "zero", reference: Callable[[], Any] | None = None,
                      n_resamples: int | None = None, confidence_level: float | None = None, rng: object = None,
                      max_steps: int | None = None, progress: bool = False, names: Sequence[str] | None = None,
                      projection: Any = None, head_outputs: Any = None) -> Any:
    """Closed-loop episodes of ``act`` in ``env``, intact and with each head removed, paired by seed.

    Every condition (the intact policy first, then each head of ``heads`` alone, or each named set of a mapping)
    runs the same ``n_episodes`` episodes, episode e reset with seed ``seed + e`` (as :func:`record_episodes`). A
    return is the undiscounted sum of rewards; an episode crashed when ``info["crashed"]`` is true at any step.
    Heads are removed by :func:`hsi_stats.capture.ablate` while their episodes run (with ``mode="mean"``, their
    outputs are replaced by their means over ``reference``, by default the observations the intact policy acted
    on). The table (:class:`hsi_stats.ablation.AblationEpisodes`) holds each condition's mean return and crash
    rate and the paired differences from the intact policy with intervals and sign-flip tests adjusted over the
    heads (:func:`hsi_stats.ablation.episode_effects`).

    Parameters
    ----------
    env, act, module
        As in :func:`record_episodes`: ``act(observation) -> action`` runs ``module``.
    heads : sequence of head names or indices, or mapping of str to such sequences
    n_episodes : int
        Episodes per condition (at least 2).
    seed, mode, reference, max_steps, progress
    n_resamples, confidence_level, rng
        Of the intervals and tests; defaults from :class:`~hsi_stats.AnalysisSettings`.
    names, projection, head_outputs
        Passed to :func:`hsi_stats.capture.ablate` (custom attention modules).

    Returns
    -------
    hsi_stats.ablation.AblationEpisodes
    """
    from ..ablation import episode_effects
    from .ablation import ablate

    if isinstance(n_episodes, bool) or not isinstance(n_episodes, (int, np.integer)) or n_episodes < 2:
        raise OptionError(f"The value for `n_episodes` must be an integer >= 2 (the tests pair episodes), but "
                          f"{n_episodes!r} was passed.")
    options = {"names": names, "projection": projection, "head_outputs": head_outputs}
    conditions = ({str(k): list(v) for k, v in heads.items()} if isinstance(heads, Mapping) else
                  {ablate(module, [head], **options).heads[0]: [head] for head in heads})
    seeds = [int(seed) + e for e in range(int(n_episodes))]
    seen: list[Any] = []
    runs = {"none": [_episode(env, act, s, max_steps, seen) for s in seeds]}

    def intact_observations() -> list[Any]:  # the default reference: what the intact policy acted on
        return [act(obs) for obs in seen]

    for name, members in tqdm(conditions.items(), desc="heads", unit="head", disable=not progress):
        with ablate(module, members, mode, reference or intact_observations, **options):
            runs[name] = [_episode(env, act, s, max_steps) for s in seeds]
    returns = pd.DataFrame({name: [r for r, _ in found] for name, found in runs.items()}, index=seeds)
    crashes = pd.DataFrame({name: [c for _, c in found] for name, found in runs.items()}, index=seeds)
    returns.index.name = crashes.index.name = "seed"
    return episode_effects(returns, crashes, n_resamples=n_resamples, confidence_level=confidence_level, rng=rng,
                           mode=mode)
