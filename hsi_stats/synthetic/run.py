"""One synthetic run: :func:`generate` checks its arguments, runs traffic and attention, and wraps the result.

:class:`SyntheticRun` holds the dataset with its ground truth and the per-scenario arrays the file
writers need (object ids, episodes, timesteps). For a given ``rng`` the numbers are fixed: the
traffic, the episode draws and the attention each draw from their own stream, spawned from it in
that order, so that changing the heads never changes the traffic. This module must never write a
file or compute a statistic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .._validation import OptionError, check_int, is_int, is_real, normalize_rng
from ..data import HSIDataset
from .attention import head_attention
from .heads import FEATURE_SCALES, HeadSpec, HeadTruth, default_heads, null_heads, with_emergence
from .traffic import (
    LANE_WIDTH,
    WINDOW_DENSE,
    WINDOW_SPARSE,
    draw_episodes,
    driving_features,
    simulate,
    slot_order,
    to_slots,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEMO_CHECKPOINTS", "DEMO_EMERGENCE", "SyntheticRun", "generate"]

DEMO_CHECKPOINTS: tuple[int, ...] = tuple(range(100_000, 1_000_001, 100_000))
"""Training steps of the demo run (``hsi-stats demo``): ten checkpoints."""

DEMO_EMERGENCE: tuple[int, int] = (300_000, 800_000)
"""Window over which the demo's planted heads specialise (:func:`specialising_heads`)."""


@dataclass(frozen=True, eq=False)
class SyntheticRun:
    """A synthetic run: the dataset, its ground truth and what the driving-format writers need.

    Attributes
    ----------
    dataset : HSIDataset
        S = checkpoints x episodes x steps scenarios, checkpoint-major, then episode, then step;
        groups ``"c{checkpoint}/e{episode}"``, steps the checkpoint, slots the column index.
    truth : tuple of HeadTruth
        One record per head, in head order (:meth:`truth_frame` for a table).
    heads : tuple of HeadSpec
        The head specifications that generated the attention.
    object_ids : ndarray of int, shape (S, V)
        Raw object id (0..V-1, a random permutation per episode of the simulator's vehicle slots) of
        the entity in each attention slot; -1 on padding. An object id is reused when its vehicle
        leaves and is replaced.
    vehicle_ids : ndarray of int, shape (S, V)
        Identity of the simulated vehicle in each slot, unique over the run (a replacement gets a
        new one); -1 on padding.
    episode_ids : ndarray of int, shape (S,)
        Episode index within its checkpoint.
    timesteps : ndarray of int, shape (S,)
        Step index within the episode.
    density : ndarray of float, shape (S,)
        Traffic density in [0, 1] of the scenario's episode.
    settings : mapping
        The arguments and simulation constants that produced the run.
    """

    dataset: HSIDataset
    truth: tuple[HeadTruth, ...]
    heads: tuple[HeadSpec, ...]
    object_ids: NDArray[np.int64]
    vehicle_ids: NDArray[np.int64]
    episode_ids: NDArray[np.int64]
    timesteps: NDArray[np.int64]
    density: NDArray[np.float64]
    settings: Mapping[str, Any] = field(default_factory=dict)

    def truth_frame(self) -> pd.DataFrame:
        """The ground truth as a DataFrame, one row per head.

        Columns ``head, feature, expected_sign, expected_label, kind``, and, when some head has an
        emergence window, ``emergence_start, emergence_end`` (nullable integers, missing for the
        heads without one).
        """
        import pandas as pd

        base = [f.name for f in fields(HeadTruth) if f.name != "emergence"]
        frame = pd.DataFrame([{name: getattr(t, name) for name in base} for t in self.truth], columns=base)
        if any(t.emergence is not None for t in self.truth):
            for i, column in enumerate(("emergence_start", "emergence_end")):
                frame[column] = pd.array([None if t.emergence is None else t.emergence[i] for t in self.truth],
                                         dtype="Int64")
        return frame


@dataclass(frozen=True)
class _Layout:
    n_episodes: int
    n_steps: int
    n_slots: int
    checkpoints: tuple[int, ...]
    heads: tuple[HeadSpec, ...]
    dt: float

    @property
    def total_episodes(self) -> int:
        return self.n_episodes * len(self.checkpoints)

    @property
    def episode_checkpoints(self) -> NDArray[np.int64]:
        """Checkpoint of each simulated episode: checkpoint-major, ``n_episodes`` each."""
        return np.repeat(np.array(self.checkpoints, dtype=np.int64), self.n_episodes)


def generate(
    *,
    n_episodes: int = 40,
    n_steps: int = 30,
    n_slots: int = 8,
    heads: Sequence[HeadSpec] | None = None,
    checkpoints: Sequence[int] = (1_000_000,),
    null: bool = False,
    dt: float = 0.2,
    specialise: tuple[int, int] | None = None,
    rng: object = None,
) -> SyntheticRun:
    """Simulate highway episodes and the attention of heads with known functions.

    Parameters
    ----------
    n_episodes : int, default 40
        Episodes per checkpoint (the resampling groups).
    n_steps : int, default 30
        Scenarios (simulator steps) per episode.
    n_slots : int, default 8
        Entity slots V (at least 2); 2 to V vehicles are present at each step.
    heads : sequence of HeadSpec, optional
        Heads to simulate; default :func:`default_heads`.
    checkpoints : sequence of int, default (1_000_000,)
        Training steps; ``n_episodes`` fresh episodes are simulated for each (same policy at each).
    null : bool, default False
        Simulate only heads without feature effect (:func:`null_heads` of 8), for calibration
        studies. Cannot be combined with ``heads``.
    dt : float, default 0.2
        Simulator step in seconds, in [0.05, 0.5].
    specialise : (int, int), optional
        Emergence window ``(start, end)`` given to every planted head (default or ``heads``),
        replacing any window they had: the heads specialise over training (see
        :class:`HeadSpec`). ``generate(specialise=w)`` equals
        ``generate(heads=specialising_heads(*w))``. Cannot be combined with ``null``.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Source of randomness. For a given ``rng`` the traffic does not depend on the heads, and a
        run with emergence windows differs from the same run without them only in the attention.

    Returns
    -------
    SyntheticRun

    Examples
    --------
    >>> run = generate(n_episodes=2, n_steps=3, rng=0)
    >>> run.dataset.n_scenarios, run.dataset.n_heads, run.truth[0].expected_label
    (6, 8, 'Safety Head')
    >>> run = generate(n_episodes=2, n_steps=3, checkpoints=(0, 50, 100), specialise=(0, 100), rng=0)
    >>> run.truth[0].emergence
    (0, 100)
    """
    layout = _generate_iv(n_episodes, n_steps, n_slots, heads, checkpoints, null, dt, specialise)
    traffic_rng, episode_rng, head_rng = normalize_rng(rng).spawn(3)
    episodes = draw_episodes(layout.total_episodes, layout.n_slots, len(layout.heads), episode_rng)
    record = simulate(episodes, n_steps=layout.n_steps, n_slots=layout.n_slots, dt=layout.dt, rng=traffic_rng)
    pool_features = driving_features(record)
    order = slot_order(pool_features["distance_to_ego"], record["active"])
    mask = np.take_along_axis(record["active"], order, axis=-1)
    features = {name: to_slots(values, order, mask, 0) for name, values in pool_features.items()}
    attention = head_attention(layout.heads, features, mask, order, record["new"], episodes["preferred_slot"],
                               layout.episode_checkpoints, layout.dt, head_rng)
    vehicle_ids = to_slots(record["vehicle_id"], order, mask, -1)
    return _assemble(layout, episodes, features, mask, order, attention, vehicle_ids)


def _check_checkpoints(checkpoints: object) -> tuple[int, ...]:
    valid = (isinstance(checkpoints, Sequence) and not isinstance(checkpoints, (str, bytes))
             and len(checkpoints) > 0 and all(is_int(c) and c >= 0 for c in checkpoints)
             and len(set(checkpoints)) == len(checkpoints))
    if not valid:
        raise OptionError("The value for `checkpoints` must be a non-empty sequence of distinct "
                         f"integers >= 0, but {checkpoints!r} was passed.")
    return tuple(int(c) for c in checkpoints)  # type: ignore[attr-defined]


def _check_heads(heads: object, null: object) -> tuple[HeadSpec, ...]:
    if not isinstance(null, (bool, np.bool_)):
        raise OptionError(f"The value for `null` must be True or False, but {null!r} was passed.")
    if heads is None:
        return null_heads(8) if null else default_heads()
    if null:
        raise OptionError("With `null=True` the heads are the null heads: `heads` must be None, "
                         f"but {heads!r} was passed.")
    valid = (isinstance(heads, Sequence) and len(heads) > 0
             and all(isinstance(h, HeadSpec) for h in heads))
    if not valid:
        raise OptionError("The value for `heads` must be a non-empty sequence of HeadSpec or None, "
                         f"but {heads!r} was passed.")
    names = [h.name for h in heads]  # type: ignore[attr-defined]
    if len(set(names)) != len(names):
        raise OptionError(f"The value for `heads` must have unique names, but {names!r} was passed.")
    return tuple(heads)  # type: ignore[arg-type]


def _generate_iv(n_episodes: object, n_steps: object, n_slots: object, heads: object,
                 checkpoints: object, null: object, dt: object, specialise: object = None) -> _Layout:
    if not is_real(dt) or not 0.05 <= dt <= 0.5:  # type: ignore[operator]
        raise OptionError("The value for `dt` must be a number of seconds in [0.05, 0.5], "
                         f"but {dt!r} was passed.")
    specs = _check_heads(heads, null)
    if specialise is not None:
        if null:
            raise OptionError("With `null=True` no head has an effect to emerge: `specialise` must be None, "
                             f"but {specialise!r} was passed.")
        try:
            specs = with_emergence(specs, specialise)
        except ValueError as exc:
            raise OptionError(str(exc).replace("`emergence`", "`specialise`", 1)) from None
    return _Layout(
        n_episodes=check_int("n_episodes", n_episodes, 1),
        n_steps=check_int("n_steps", n_steps, 1),
        n_slots=check_int("n_slots", n_slots, 2),
        checkpoints=_check_checkpoints(checkpoints),
        heads=specs,
        dt=float(dt),  # type: ignore[arg-type]
    )


def _assemble(layout: _Layout, episodes: Mapping[str, NDArray[Any]],
              features: Mapping[str, NDArray[np.float64]], mask: NDArray[np.bool_],
              order: NDArray[np.intp], attention: NDArray[np.float64],
              vehicle_ids: NDArray[np.int64]) -> SyntheticRun:
    """Flatten (episode, step) into scenarios and wrap everything as a :class:`SyntheticRun`."""
    n_ep, n_steps, n_slots = mask.shape
    n_scen = n_ep * n_steps
    checkpoint = layout.episode_checkpoints
    episode = np.tile(np.arange(layout.n_episodes, dtype=np.int64), len(layout.checkpoints))
    labels = np.array([f"c{c}/e{e}" for c, e in zip(checkpoint, episode, strict=True)])
    pool_ids = np.broadcast_to(episodes["object_ids"][:, None, :], order.shape)
    object_ids = to_slots(pool_ids, order, mask, -1)
    dataset = HSIDataset(
        attention.reshape(n_scen, len(layout.heads), n_slots),
        {name: values.reshape(n_scen, n_slots) for name, values in features.items()},
        mask=mask.reshape(n_scen, n_slots),
        groups=np.repeat(labels, n_steps),
        steps=np.repeat(checkpoint, n_steps),
        slots=np.broadcast_to(np.arange(n_slots, dtype=np.int64), (n_scen, n_slots)),
        head_names=[spec.name for spec in layout.heads],
        notes=("synthetic data from hsi_stats.synthetic.generate",),
        copy=False,  # arrays made here and held nowhere else
    )
    return SyntheticRun(
        dataset=dataset,
        truth=tuple(HeadTruth.of(spec) for spec in layout.heads),
        heads=layout.heads,
        object_ids=_readonly(object_ids.reshape(n_scen, n_slots)),
        vehicle_ids=_readonly(vehicle_ids.reshape(n_scen, n_slots)),
        episode_ids=_readonly(np.repeat(episode, n_steps)),
        timesteps=_readonly(np.tile(np.arange(n_steps, dtype=np.int64), n_ep)),
        density=_readonly(np.repeat(episodes["density"], n_steps)),
        settings=MappingProxyType(_settings(layout)),
    )


def _readonly(array: NDArray[Any]) -> NDArray[Any]:
    array = np.array(array, copy=True)
    if array.dtype.kind in "iu":
        array = array.astype(np.int64)
    array.setflags(write=False)
    return array


def _settings(layout: _Layout) -> dict[str, Any]:
    return {
        "n_episodes": layout.n_episodes, "n_steps": layout.n_steps, "n_slots": layout.n_slots,
        "checkpoints": layout.checkpoints, "dt": layout.dt, "lane_width": LANE_WIDTH,
        "window": (WINDOW_DENSE, WINDOW_SPARSE), "feature_scales": dict(FEATURE_SCALES),
        "heads": [{f.name: getattr(spec, f.name) for f in fields(spec)} for spec in layout.heads],
    }

