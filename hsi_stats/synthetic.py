"""Synthetic driving data with planted attention heads: the demo and the calibration engine.

:func:`generate` simulates episodes of multi-lane highway traffic around an ego vehicle (DESIGN 8),
computes the driving features with the definitions of the driving logs (DESIGN 2.3) and draws the
attention of heads whose relation to the features is known. :func:`write_driving_logs` and
:func:`write_extraction` write a run in the driving formats of DESIGN 2.2, so that the readers can
be tested end to end.

Traffic. Each episode has 3 or 4 lanes (3.7 m wide; lane 0 is the rightmost, ``dy > 0`` is left)
and an episode-level traffic density ``rho ~ U(0, 1)``. Dense episodes have more vehicles present,
a shorter window (the V nearest vehicles of dense traffic are all near: half-width 80 m at
``rho = 0``, 40 m at ``rho = 1``) and slower traffic (desired speeds 6 m/s lower): the density
confound of DESIGN 8. Speeds follow the intelligent driver model with a smooth (Ornstein-Uhlenbeck)
acceleration noise, positions integrate the speeds, vehicles change lane now and then (more often
when blocked) and move sideways over a few seconds, and a vehicle that leaves the window is
replaced, after a short delay, by a new one entering at the window's edge. At every step 2 to
``n_slots`` vehicles are present; slots are ordered by distance (slot 0 is the nearest present
vehicle; absent slots are padding at the end, with mask False and features 0).

Attention. Head h gives each present vehicle the logit
``beta_h * x_f / scale_f + gamma_h * [slot == k_eh] + noise_h * eps + persistent_h * u``,
and its attention is the softmax over the present vehicles only (0 on padding). ``scale_f`` is a
fixed reference scale of the feature (:data:`FEATURE_SCALES`; 1 for the 0/1 features), ``k_eh`` a
slot drawn per episode uniformly over *all* ``n_slots`` slots, ``eps`` i.i.d. standard normal per
vehicle and step, and ``u`` a smooth standard-normal AR(1) per vehicle (time constant 3 s, redrawn
for each new vehicle). Because ``k`` is uniform over all slots, the preference is exchangeable among
the present vehicles: a head without ``beta`` has a true within-scenario correlation of exactly zero
with every feature, yet strong episode-level clustering. Such heads are true nulls that fool methods
treating scenarios as independent.

Ground truth of the default heads (:func:`default_heads`):

====  ===============  ====  =====  =============  ====================  =========
head  feature          beta  gamma  expected sign  expected label        kind
====  ===============  ====  =====  =============  ====================  =========
h0    ttc              -3.0  0      negative       Safety Head           planted
h1    distance_to_ego  -2.0  0      negative       Proximity Head        planted
h2    is_left          +4.0  0      positive       Left Lane Head        planted
h3    is_ahead         +4.0  0      positive       Traffic Flow Head     planted
h4    (none)           0     1.5    (none)         General Context Head  no effect
h5    (none)           0     1.5    (none)         General Context Head  no effect
h6    (none)           0     1.5    (none)         General Context Head  no effect
h7    (none)           0     1.5    (none)         General Context Head  no effect
====  ===============  ====  =====  =============  ====================  =========

Heads that specialise over training. A head with an emergence window ``(start, end)``
(:attr:`HeadSpec.emergence`) has its planted ``beta`` scaled, at each checkpoint ``c``, by
``s(c) = clip((c - start) / (end - start), 0, 1)``,
so the head tracks nothing at checkpoints up to ``start``, its effect grows linearly in between and
is complete from ``end`` on. Everything else (traffic, noise, slot preferences) is the same at every
checkpoint. :func:`specialising_heads` gives the default heads with such a window on the planted
ones (``generate(specialise=(start, end))`` is the shortcut); without a window a head is fully
trained at every checkpoint, exactly as before the option existed.

Every head has i.i.d. logit noise 1.0 and persistent noise 0.3. ``is_ahead`` and ``is_behind`` are
complementary for every present vehicle, so the within-scenario rho of h3 with ``is_behind`` is
exactly minus its rho with ``is_ahead``; ttc, distance and closing speed are collinear by
construction, and left lanes are faster (h2 also correlates with ``agent_speeds``).

This module belongs to the data layer: it imports numpy (pandas only for a table view) and never
computes a statistic.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from ._validation import check_choice, normalize_rng
from .catalog import DRIVING_CATALOG, GENERAL_CONTEXT
from .data import HSIDataset
from .io import driving_logs, extraction

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEMO_CHECKPOINTS",
    "DEMO_EMERGENCE",
    "FEATURE_NAMES",
    "FEATURE_SCALES",
    "LANE_WIDTH",
    "HeadSpec",
    "HeadTruth",
    "SyntheticRun",
    "default_heads",
    "generate",
    "null_heads",
    "specialising_heads",
    "write_driving_logs",
    "write_extraction",
]

FEATURE_NAMES: tuple[str, ...] = (
    "ttc", "distance_to_ego", "closing_speed", "is_ahead", "is_behind", "is_left", "is_right",
    "agent_speeds",
)
"""The driving features, in the order of the dataset."""

FEATURE_SCALES: Mapping[str, float] = MappingProxyType({
    "ttc": 1.0, "distance_to_ego": 20.0, "closing_speed": 3.0, "is_ahead": 1.0, "is_behind": 1.0,
    "is_left": 1.0, "is_right": 1.0, "agent_speeds": 4.0,
})
"""Fixed reference scale of each feature; a head's ``beta`` is its logit change per scale unit.

Fixed rather than estimated, so that an effect does not depend on the size of the run.
"""

DEMO_CHECKPOINTS: tuple[int, ...] = tuple(range(100_000, 1_000_001, 100_000))
"""Training steps of the demo run (``hsi-stats demo``): ten checkpoints."""

DEMO_EMERGENCE: tuple[int, int] = (300_000, 800_000)
"""Window over which the demo's planted heads specialise (:func:`specialising_heads`)."""

LANE_WIDTH = 3.7
"""Lane width in metres; ``is_left``/``is_right`` mean ``dy`` beyond half of it."""

_SIGNS = ("negative", "positive", "either")

_TTC_MAX = 5.0
_TTC_MIN_CLOSING = 0.5
_CAR_LENGTH = 4.5
_WINDOW_SPARSE, _WINDOW_DENSE = 80.0, 40.0
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
_PERSISTENT_NOISE_TIME = 3.0


# ------------------------------------------------------------------------------------------ heads
@dataclass(frozen=True)
class HeadSpec:
    """What one synthetic head attends to.

    Parameters
    ----------
    name : str
        Head name in the dataset.
    feature : str or None, default None
        Feature with a planted effect (one of :data:`FEATURE_NAMES`); None for no effect.
    beta : float, default 0.0
        Logit change per reference scale of ``feature`` (:data:`FEATURE_SCALES`); its sign is the
        sign of the planted within-scenario correlation. Non-zero exactly when ``feature`` is given.
    sign : {"negative", "positive", "either"} or None, default None
        Expected sign recorded in the ground truth; None derives it from ``beta`` (and stays None
        for a head with no effect).
    slot_preference : float, default 0.0
        ``gamma``: logit bonus of one slot drawn per episode uniformly over all slots (a persistent
        episode preference with no feature effect).
    noise : float, default 1.0
        Standard deviation of the i.i.d. logit noise per vehicle and step.
    persistent_noise : float, default 0.3
        Standard deviation of the smooth per-vehicle logit noise.
    emergence : (int, int) or None, default None
        ``(start, end)`` training steps, ``0 <= start < end``, over which the planted effect appears:
        at checkpoint ``c`` the logit uses ``beta * clip((c - start) / (end - start), 0, 1)``
        (no effect up to ``start``, full effect from ``end`` on). None: full effect at every
        checkpoint. Only for a head with a ``feature``.

    Examples
    --------
    >>> HeadSpec("safety", "ttc", beta=-2.0).sign
    'negative'
    >>> spec = HeadSpec("safety", "ttc", beta=-2.0, emergence=(100, 300))
    >>> [spec.effect_scale(c) for c in (0, 100, 200, 300, 400)]
    [0.0, 0.0, 0.5, 1.0, 1.0]
    """

    name: str
    feature: str | None = None
    beta: float = 0.0
    sign: str | None = None
    slot_preference: float = 0.0
    noise: float = 1.0
    persistent_noise: float = 0.3
    emergence: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError("The value for `name` must be a non-empty string, "
                             f"but {self.name!r} was passed.")
        for param in ("beta", "slot_preference", "noise", "persistent_noise"):
            value = getattr(self, param)
            if not _is_real(value) or not math.isfinite(value):
                raise ValueError(f"The value for `{param}` must be a finite number, "
                                 f"but {value!r} was passed.")
        for param in ("noise", "persistent_noise"):
            if getattr(self, param) < 0:
                raise ValueError(f"The value for `{param}` must be >= 0, "
                                 f"but {getattr(self, param)!r} was passed.")
        object.__setattr__(self, "sign", self._resolved_sign())
        object.__setattr__(self, "emergence", self._checked_emergence())

    def _checked_emergence(self) -> tuple[int, int] | None:
        window = self.emergence
        if window is None:
            return None
        valid = (isinstance(window, Sequence) and not isinstance(window, (str, bytes)) and len(window) == 2
                 and all(_is_int(v) for v in window) and 0 <= window[0] < window[1])
        if not valid:
            raise ValueError("The value for `emergence` must be None or a pair of integer training steps "
                             f"(start, end) with 0 <= start < end, but {window!r} was passed.")
        if self.feature is None:
            raise ValueError("A head with `feature` None has no effect to emerge: `emergence` must be None, "
                             f"but {window!r} was passed.")
        return (int(window[0]), int(window[1]))

    def effect_scale(self, checkpoint: int) -> float:
        """Share of ``beta`` in effect at ``checkpoint``: ``clip((c - start) / (end - start), 0, 1)``.

        1.0 at every checkpoint when :attr:`emergence` is None.
        """
        if self.emergence is None:
            return 1.0
        start, end = self.emergence
        return min(max((checkpoint - start) / (end - start), 0.0), 1.0)

    def _resolved_sign(self) -> str | None:
        if self.feature is None:
            if self.beta != 0 or self.sign is not None:
                raise ValueError("A head with `feature` None has no effect: `beta` must be 0 and "
                                 f"`sign` None, but beta={self.beta!r} and sign={self.sign!r} "
                                 "were passed.")
            return None
        if self.feature not in FEATURE_NAMES:
            raise ValueError(f"The value for `feature` must be one of {list(FEATURE_NAMES)} or "
                             f"None, but {self.feature!r} was passed.")
        if self.beta == 0:
            raise ValueError("The value for `beta` must be non-zero when `feature` is given, "
                             f"but {self.beta!r} was passed.")
        planted = "positive" if self.beta > 0 else "negative"
        if self.sign is None:
            return planted
        sign = check_choice("sign", self.sign, _SIGNS)
        if sign not in (planted, "either"):
            raise ValueError("The value for `sign` must agree with the sign of `beta` "
                             f"({planted!r} or 'either'), but {self.sign!r} was passed with "
                             f"beta={self.beta!r}.")
        return sign


def default_heads() -> tuple[HeadSpec, ...]:
    """The eight default heads: four planted (h0-h3) and four with no effect (h4-h7).

    See the ground-truth table of the module docstring.

    Examples
    --------
    >>> [h.feature for h in default_heads()][:4]
    ['ttc', 'distance_to_ego', 'is_left', 'is_ahead']
    """
    planted = (
        HeadSpec("h0", "ttc", beta=-3.0),
        HeadSpec("h1", "distance_to_ego", beta=-2.0),
        HeadSpec("h2", "is_left", beta=4.0),
        HeadSpec("h3", "is_ahead", beta=4.0),
    )
    return planted + null_heads(4, start=4)


def specialising_heads(start: int, end: int) -> tuple[HeadSpec, ...]:
    """The default heads whose planted effects emerge between training steps ``start`` and ``end``.

    The planted heads h0-h3 of :func:`default_heads` get ``emergence=(start, end)`` (see
    :class:`HeadSpec`); the no-effect heads h4-h7 are unchanged. ``generate(specialise=(start, end))``
    is the same thing.

    Parameters
    ----------
    start, end : int
        Training steps, ``0 <= start < end``: no effect at checkpoints up to ``start``, full effect
        from ``end`` on, linear in between.

    Examples
    --------
    >>> [h.emergence for h in specialising_heads(300, 600)][3:5]
    [(300, 600), None]
    """
    return _with_emergence(default_heads(), (start, end))


def _with_emergence(heads: Sequence[HeadSpec], window: object) -> tuple[HeadSpec, ...]:
    """``heads`` with the emergence window on every planted head (a head without feature is kept)."""
    return tuple(replace(h, emergence=window) if h.feature is not None else h  # type: ignore[arg-type]
                 for h in heads)


def null_heads(n: int = 8, *, slot_preference: float = 1.5, start: int = 0) -> tuple[HeadSpec, ...]:
    """``n`` heads with no feature effect but a persistent per-episode slot preference.

    Parameters
    ----------
    n : int, default 8
        Number of heads.
    slot_preference : float, default 1.5
        ``gamma`` of every head (see :class:`HeadSpec`).
    start : int, default 0
        The heads are named ``h{start}`` to ``h{start + n - 1}``.

    Examples
    --------
    >>> [h.name for h in null_heads(2)]
    ['h0', 'h1']
    """
    count = _check_int("n", n, 1)
    first = _check_int("start", start, 0)
    return tuple(HeadSpec(f"h{first + i}", slot_preference=slot_preference) for i in range(count))


@dataclass(frozen=True)
class HeadTruth:
    """Ground truth of one synthetic head.

    Attributes
    ----------
    head : str
        Head name.
    feature : str or None
        Planted feature (None for a head with no effect).
    expected_sign : str or None
        Expected sign of the within-scenario correlation with ``feature``.
    expected_label : str
        Catalog label the head should receive ("General Context Head" for no effect).
    kind : {"planted", "no effect"}
        Whether an effect was planted.
    emergence : (int, int) or None
        Training steps ``(start, end)`` over which the planted effect grows from nothing to full
        (see :class:`HeadSpec`); None when it is full at every checkpoint (or there is none).
    """

    head: str
    feature: str | None
    expected_sign: str | None
    expected_label: str
    kind: str
    emergence: tuple[int, int] | None = None

    @classmethod
    def of(cls, spec: HeadSpec) -> HeadTruth:
        """The ground truth implied by a head specification."""
        if spec.feature is None:
            return cls(spec.name, None, None, GENERAL_CONTEXT, "no effect")
        label = DRIVING_CATALOG.meaning(spec.feature).label
        return cls(spec.name, spec.feature, spec.sign, label, "planted", spec.emergence)


# -------------------------------------------------------------------------------------------- run
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


# --------------------------------------------------------------------------------------- generate
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
    episodes = _draw_episodes(layout, episode_rng)
    record = _simulate(layout, episodes, traffic_rng)
    pool_features = _features(record)
    order = _slot_order(pool_features["distance_to_ego"], record["active"])
    mask = np.take_along_axis(record["active"], order, axis=-1)
    features = {name: _to_slots(values, order, mask, 0) for name, values in pool_features.items()}
    attention = _attention(layout, features, mask, order, record["new"],
                           episodes["preferred_slot"], head_rng)
    vehicle_ids = _to_slots(record["vehicle_id"], order, mask, -1)
    return _assemble(layout, episodes, features, mask, order, attention, vehicle_ids)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def _check_int(param: str, value: object, minimum: int) -> int:
    if not _is_int(value) or int(value) < minimum:  # type: ignore[call-overload]
        raise ValueError(f"The value for `{param}` must be an integer >= {minimum}, "
                         f"but {value!r} was passed.")
    return int(value)  # type: ignore[call-overload]


def _check_checkpoints(checkpoints: object) -> tuple[int, ...]:
    valid = (isinstance(checkpoints, Sequence) and not isinstance(checkpoints, (str, bytes))
             and len(checkpoints) > 0 and all(_is_int(c) and c >= 0 for c in checkpoints)
             and len(set(checkpoints)) == len(checkpoints))
    if not valid:
        raise ValueError("The value for `checkpoints` must be a non-empty sequence of distinct "
                         f"integers >= 0, but {checkpoints!r} was passed.")
    return tuple(int(c) for c in checkpoints)  # type: ignore[attr-defined]


def _check_heads(heads: object, null: object) -> tuple[HeadSpec, ...]:
    if not isinstance(null, (bool, np.bool_)):
        raise ValueError(f"The value for `null` must be True or False, but {null!r} was passed.")
    if heads is None:
        return null_heads(8) if null else default_heads()
    if null:
        raise ValueError("With `null=True` the heads are the null heads: `heads` must be None, "
                         f"but {heads!r} was passed.")
    valid = (isinstance(heads, Sequence) and len(heads) > 0
             and all(isinstance(h, HeadSpec) for h in heads))
    if not valid:
        raise ValueError("The value for `heads` must be a non-empty sequence of HeadSpec or None, "
                         f"but {heads!r} was passed.")
    names = [h.name for h in heads]  # type: ignore[attr-defined]
    if len(set(names)) != len(names):
        raise ValueError(f"The value for `heads` must have unique names, but {names!r} was passed.")
    return tuple(heads)  # type: ignore[arg-type]


def _generate_iv(n_episodes: object, n_steps: object, n_slots: object, heads: object,
                 checkpoints: object, null: object, dt: object, specialise: object = None) -> _Layout:
    if not _is_real(dt) or not 0.05 <= dt <= 0.5:  # type: ignore[operator]
        raise ValueError("The value for `dt` must be a number of seconds in [0.05, 0.5], "
                         f"but {dt!r} was passed.")
    specs = _check_heads(heads, null)
    if specialise is not None:
        if null:
            raise ValueError("With `null=True` no head has an effect to emerge: `specialise` must be None, "
                             f"but {specialise!r} was passed.")
        try:
            specs = _with_emergence(specs, specialise)
        except ValueError as exc:
            raise ValueError(str(exc).replace("`emergence`", "`specialise`", 1)) from None
    return _Layout(
        n_episodes=_check_int("n_episodes", n_episodes, 1),
        n_steps=_check_int("n_steps", n_steps, 1),
        n_slots=_check_int("n_slots", n_slots, 2),
        checkpoints=_check_checkpoints(checkpoints),
        heads=specs,
        dt=float(dt),  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------------------- episodes
def _draw_episodes(layout: _Layout, rng: np.random.Generator) -> dict[str, NDArray[Any]]:
    """Episode-level draws: density, lanes, ego, capacity, object ids, preferred slots."""
    n_ep, n_slots = layout.total_episodes, layout.n_slots
    density = rng.random(n_ep)
    n_lanes = rng.integers(3, 5, size=n_ep)
    noisy_capacity = 2 + (n_slots - 2) * density + rng.normal(0.0, 0.75, n_ep)
    spread = _SPEED_SPREAD_SPARSE - (_SPEED_SPREAD_SPARSE - _SPEED_SPREAD_DENSE) * density
    return {
        "density": density,
        "n_lanes": n_lanes,
        "ego_lane": rng.integers(0, n_lanes),
        "ego_speed": rng.uniform(*_EGO_SPEED, n_ep) - _DENSE_SLOWDOWN * density,
        "speed_spread": spread,
        "window": _WINDOW_SPARSE - (_WINDOW_SPARSE - _WINDOW_DENSE) * density,
        "capacity": np.clip(np.rint(noisy_capacity), 2, n_slots).astype(np.int64),
        "object_ids": rng.permuted(np.tile(np.arange(n_slots), (n_ep, 1)), axis=1),
        # Drawn last, so that the traffic does not depend on the number of heads.
        "preferred_slot": rng.integers(0, n_slots, size=(n_ep, len(layout.heads))),
    }


# ---------------------------------------------------------------------------------------- traffic
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


def _initial_traffic(layout: _Layout, episodes: Mapping[str, NDArray[Any]],
                     rng: np.random.Generator) -> _Traffic:
    """Ego at the origin; ``capacity`` vehicles spread over the window and the lanes."""
    n_ep, n_all = layout.total_episodes, layout.n_slots + 1
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


def _simulate(layout: _Layout, episodes: Mapping[str, NDArray[Any]],
              rng: np.random.Generator) -> dict[str, NDArray[Any]]:
    """Run all episodes at once; record (episode, step, vehicle) kinematics relative to the ego."""
    state = _initial_traffic(layout, episodes, rng)
    shape = (layout.total_episodes, layout.n_steps, layout.n_slots)
    record: dict[str, NDArray[Any]] = {name: np.empty(shape)
                                       for name in ("dx", "dy", "dvx", "dvy", "speed")}
    record["active"] = np.empty(shape, dtype=bool)
    record["new"] = np.zeros(shape, dtype=bool)
    record["vehicle_id"] = np.empty(shape, dtype=np.int64)
    for t in range(layout.n_steps):
        if t > 0:
            idm = _idm_acceleration(state)
            _start_lane_changes(state, idm, episodes["n_lanes"], layout.dt, rng)
            _move(state, idm, layout.dt, rng)
            _retire(state, episodes["window"], rng)
            record["new"][:, t] = _respawn(state, episodes, layout.dt, rng)[:, 1:]
        record["dx"][:, t] = state.x[:, 1:] - state.x[:, :1]
        record["dy"][:, t] = state.y[:, 1:] - state.y[:, :1]
        record["dvx"][:, t] = state.vx[:, 1:] - state.vx[:, :1]
        record["dvy"][:, t] = state.vy[:, 1:] - state.vy[:, :1]
        record["speed"][:, t] = np.hypot(state.vx[:, 1:], state.vy[:, 1:])
        record["active"][:, t] = state.active[:, 1:]
        record["vehicle_id"][:, t] = state.vehicle_id[:, 1:]
    return record


# --------------------------------------------------------------------------------------- features
def _ttc(distance: NDArray[np.float64], closing: NDArray[np.float64]) -> NDArray[np.float64]:
    """TTC censored as in the driving logs: d / c when c > 0.5 m/s, else 5 s; clipped to [0, 5]."""
    approaching = closing > _TTC_MIN_CLOSING
    raw = np.where(approaching, distance / np.where(approaching, closing, 1.0), _TTC_MAX)
    return np.clip(raw, 0.0, _TTC_MAX)


def _features(record: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[np.float64]]:
    """The driving features of every simulated vehicle, with the definitions of the driving logs."""
    dx, dy = record["dx"], record["dy"]
    distance = np.hypot(dx, dy)
    closing = -(dx * record["dvx"] + dy * record["dvy"]) / np.maximum(distance, 1e-9)
    half_lane = LANE_WIDTH / 2
    values = {
        "ttc": _ttc(distance, closing), "distance_to_ego": distance, "closing_speed": closing,
        "is_ahead": dx > 0, "is_behind": dx < 0, "is_left": dy > half_lane,
        "is_right": dy < -half_lane, "agent_speeds": record["speed"],
    }
    return {name: np.asarray(values[name], dtype=np.float64) for name in FEATURE_NAMES}


def _slot_order(distance: NDArray[np.float64], active: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Vehicle index of each slot: present vehicles nearest first, then the absent ones."""
    return np.argsort(np.where(active, distance, np.inf), axis=-1, kind="stable")


def _to_slots(values: NDArray[Any], order: NDArray[np.intp], mask: NDArray[np.bool_],
              fill: float) -> NDArray[Any]:
    """Reorder (E, T, V) vehicle values into slot order, with ``fill`` on padding slots."""
    return np.where(mask, np.take_along_axis(values, order, axis=-1), fill)


# -------------------------------------------------------------------------------------- attention
def _persistent_noise(shape: tuple[int, int, int, int], new: NDArray[np.bool_], dt: float,
                      rng: np.random.Generator) -> NDArray[np.float64]:
    """Standard-normal AR(1) per (episode, head, vehicle) over steps, redrawn for new vehicles."""
    phi = math.exp(-dt / _PERSISTENT_NOISE_TIME)
    innovations = rng.standard_normal(shape)
    noise = np.empty(shape)
    noise[:, 0] = innovations[:, 0]
    for t in range(1, shape[1]):
        carried = phi * noise[:, t - 1] + math.sqrt(1 - phi**2) * innovations[:, t]
        noise[:, t] = np.where(new[:, t, None, :], innovations[:, t], carried)
    return noise


def _head_logits(spec: HeadSpec, preferred: NDArray[np.int64],
                 features: Mapping[str, NDArray[np.float64]], n_slots: int,
                 episode_checkpoints: NDArray[np.int64]) -> NDArray[np.float64]:
    """Systematic logits of one head, (E, T, V): planted feature effect plus slot preference."""
    logits = np.zeros(features[FEATURE_NAMES[0]].shape)
    if spec.feature is not None:
        beta: float | NDArray[np.float64] = spec.beta
        if spec.emergence is not None:  # only then: a head without a window keeps its numbers bit for bit
            scale = np.array([spec.effect_scale(int(c)) for c in episode_checkpoints])
            beta = (spec.beta * scale)[:, None, None]
        logits = logits + beta * features[spec.feature] / FEATURE_SCALES[spec.feature]
    if spec.slot_preference:
        chosen = np.arange(n_slots)[None, None, :] == preferred[:, None, None]
        logits = logits + spec.slot_preference * chosen
    return logits


def _masked_softmax(logits: NDArray[np.float64], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Softmax over the last axis restricted to ``mask``; exactly 0 elsewhere."""
    masked = np.where(mask, logits, -np.inf)
    weights = np.exp(masked - masked.max(axis=-1, keepdims=True))
    return weights / weights.sum(axis=-1, keepdims=True)


def _attention(layout: _Layout, features: Mapping[str, NDArray[np.float64]],
               mask: NDArray[np.bool_], order: NDArray[np.intp], new: NDArray[np.bool_],
               preferred: NDArray[np.int64], rng: np.random.Generator) -> NDArray[np.float64]:
    """Attention of every head, shape (E, T, H, V), in slot order."""
    shape = (*mask.shape[:2], len(layout.heads), layout.n_slots)
    iid = rng.standard_normal(shape)
    persistent = _persistent_noise(shape, new, layout.dt, rng)
    persistent = np.take_along_axis(persistent, order[:, :, None, :], axis=-1)
    episode_checkpoints = np.repeat(np.array(layout.checkpoints, dtype=np.int64), layout.n_episodes)
    systematic = np.stack([_head_logits(spec, preferred[:, h], features, layout.n_slots, episode_checkpoints)
                           for h, spec in enumerate(layout.heads)], axis=2)
    noise = np.array([spec.noise for spec in layout.heads])[:, None]
    persistence = np.array([spec.persistent_noise for spec in layout.heads])[:, None]
    logits = systematic + noise * iid + persistence * persistent
    return _masked_softmax(logits, mask[:, :, None, :])


# --------------------------------------------------------------------------------------- assembly
def _assemble(layout: _Layout, episodes: Mapping[str, NDArray[Any]],
              features: Mapping[str, NDArray[np.float64]], mask: NDArray[np.bool_],
              order: NDArray[np.intp], attention: NDArray[np.float64],
              vehicle_ids: NDArray[np.int64]) -> SyntheticRun:
    """Flatten (episode, step) into scenarios and wrap everything as a :class:`SyntheticRun`."""
    n_ep, n_steps, n_slots = mask.shape
    n_scen = n_ep * n_steps
    checkpoint = np.repeat(np.array(layout.checkpoints, dtype=np.int64), layout.n_episodes)
    episode = np.tile(np.arange(layout.n_episodes, dtype=np.int64), len(layout.checkpoints))
    labels = np.array([f"c{c}/e{e}" for c, e in zip(checkpoint, episode, strict=True)])
    pool_ids = np.broadcast_to(episodes["object_ids"][:, None, :], order.shape)
    object_ids = _to_slots(pool_ids, order, mask, -1)
    dataset = HSIDataset(
        attention.reshape(n_scen, len(layout.heads), n_slots),
        {name: values.reshape(n_scen, n_slots) for name, values in features.items()},
        mask=mask.reshape(n_scen, n_slots),
        groups=np.repeat(labels, n_steps),
        steps=np.repeat(checkpoint, n_steps),
        slots=np.broadcast_to(np.arange(n_slots, dtype=np.int64), (n_scen, n_slots)),
        head_names=[spec.name for spec in layout.heads],
        notes=("synthetic data from hsi_stats.synthetic.generate",),
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
        "window": (_WINDOW_DENSE, _WINDOW_SPARSE), "feature_scales": dict(FEATURE_SCALES),
        "heads": [{f.name: getattr(spec, f.name) for f in fields(spec)} for spec in layout.heads],
    }


# ---------------------------------------------------------------------------------------- writers
def _check_run(run: object) -> None:
    if not isinstance(run, SyntheticRun):
        raise TypeError("The value for `run` must be a SyntheticRun, "
                        f"but {type(run).__name__} was passed.")


def _collision_risk(dataset: HSIDataset) -> NDArray[np.float64]:
    """Largest ``1 - ttc / 5`` over the present vehicles of each scenario: 0 when nobody closes within 5 s."""
    risk = np.where(dataset.mask, 1.0 - dataset.features["ttc"] / _TTC_MAX, 0.0)
    return np.max(risk, axis=1, initial=0.0)


def write_driving_logs(
    run: SyntheticRun,
    feature_dir: str | os.PathLike[str],
    attention_dir: str | os.PathLike[str],
    *,
    n_latents: int = 4,
    t_obs: int = 5,
    dtype: DTypeLike = np.float32,
    include_object_ids: bool = True,
    include_steps: bool = True,
    rng: object = None,
) -> None:
    """Write ``run`` in the two-directory driving-log layout (DESIGN 2.2), a pair per checkpoint.

    :func:`hsi_stats.io.driving_logs.write_logs` with the run's episodes and, with
    ``include_object_ids``, its object-id map (the features are then indexed by raw object id,
    as in the real logs; without the map they are in slot order).

    Parameters
    ----------
    run : SyntheticRun
        The run to write.
    feature_dir, attention_dir : path-like
        Output folders, created when missing.
    n_latents : int, default 4
        Latent queries of the fake encoder.
    t_obs : int, default 5
        Observed time steps (tokens) per entity.
    dtype : floating dtype, default float32
        dtype of the attention arrays; float64 gives an exact round trip.
    include_object_ids : bool, default True
        Write the object-id map and index the features by object id.
    include_steps : bool, default True
        Write ``step`` into the attention files.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness of the split over latents and tokens.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> run = generate(n_episodes=2, n_steps=2, rng=0)
    >>> write_driving_logs(run, os.path.join(folder, "f"), os.path.join(folder, "a"), rng=0)
    >>> os.listdir(os.path.join(folder, "f")), os.listdir(os.path.join(folder, "a"))
    (['attention_log_01000000.pkl'], ['attention_scenario_0000.pkl'])
    """
    _check_run(run)
    driving_logs.write_logs(
        run.dataset, feature_dir, attention_dir, object_ids=run.object_ids if include_object_ids else None,
        episode_ids=run.episode_ids, n_latents=n_latents, t_obs=t_obs, dtype=dtype, include_steps=include_steps,
        rng=rng)


def write_extraction(run: SyntheticRun, path: str | os.PathLike[str], *,
                     kind: str = "rollout") -> None:
    """Write ``run`` as unified extractions (DESIGN 2.2), ``extraction_{checkpoint}.pkl`` each.

    :func:`hsi_stats.io.extraction.write_extraction` with the run's episodes and timesteps, and as
    collision risk of each step the largest ``1 - ttc / 5`` over its present vehicles.
    ``kind="rollout"``: one scenario per episode, ``kind="snapshot"``: one per (episode, step).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_extraction(generate(n_episodes=2, n_steps=2, rng=0), folder, kind="snapshot")
    >>> os.listdir(folder)
    ['extraction_1000000.pkl']
    """
    _check_run(run)
    extraction.write_extraction(run.dataset, path, kind=kind, episode_ids=run.episode_ids,
                                timesteps=run.timesteps, collision_risk=_collision_risk(run.dataset))
