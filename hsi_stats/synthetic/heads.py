"""What each synthetic head attends to (:class:`HeadSpec`), the head sets, and their ground truth.

A head is a planted feature effect (``beta``), a per-episode slot preference (``gamma``) and two
noise levels, optionally with an emergence window over training; :class:`HeadTruth` is what an
analysis should find for it. This module only describes heads: it must never draw a random number
or compute attention.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType

from .._validation import OptionError, check_choice, check_int, is_int, is_real
from ..catalog import DRIVING_CATALOG, GENERAL_CONTEXT, SIGNS
from .traffic import FEATURE_NAMES

__all__ = [
    "FEATURE_SCALES",
    "HeadSpec",
    "HeadTruth",
    "default_heads",
    "null_heads",
    "specialising_heads",
    "with_emergence",
]

FEATURE_SCALES: Mapping[str, float] = MappingProxyType({
    "ttc": 1.0, "distance_to_ego": 20.0, "closing_speed": 3.0, "is_ahead": 1.0, "is_behind": 1.0,
    "is_left": 1.0, "is_right": 1.0, "agent_speeds": 4.0,
})
"""Fixed reference scale of each feature; a head's ``beta`` is its logit change per scale unit.

Fixed rather than estimated, so that an effect does not depend on the size of the run.
"""



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
            raise OptionError("The value for `name` must be a non-empty string, "
                             f"but {self.name!r} was passed.")
        for param in ("beta", "slot_preference", "noise", "persistent_noise"):
            value = getattr(self, param)
            if not is_real(value) or not math.isfinite(value):
                raise OptionError(f"The value for `{param}` must be a finite number, "
                                 f"but {value!r} was passed.")
        for param in ("noise", "persistent_noise"):
            if getattr(self, param) < 0:
                raise OptionError(f"The value for `{param}` must be >= 0, "
                                 f"but {getattr(self, param)!r} was passed.")
        object.__setattr__(self, "sign", self._resolved_sign())
        object.__setattr__(self, "emergence", self._checked_emergence())

    def _checked_emergence(self) -> tuple[int, int] | None:
        window = self.emergence
        if window is None:
            return None
        valid = (isinstance(window, Sequence) and not isinstance(window, (str, bytes)) and len(window) == 2
                 and all(is_int(v) for v in window) and 0 <= window[0] < window[1])
        if not valid:
            raise OptionError("The value for `emergence` must be None or a pair of integer training steps "
                             f"(start, end) with 0 <= start < end, but {window!r} was passed.")
        if self.feature is None:
            raise OptionError("A head with `feature` None has no effect to emerge: `emergence` must be None, "
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
                raise OptionError("A head with `feature` None has no effect: `beta` must be 0 and "
                                 f"`sign` None, but beta={self.beta!r} and sign={self.sign!r} "
                                 "were passed.")
            return None
        if self.feature not in FEATURE_NAMES:
            raise OptionError(f"The value for `feature` must be one of {list(FEATURE_NAMES)} or "
                             f"None, but {self.feature!r} was passed.")
        if self.beta == 0:
            raise OptionError("The value for `beta` must be non-zero when `feature` is given, "
                             f"but {self.beta!r} was passed.")
        planted = "positive" if self.beta > 0 else "negative"
        if self.sign is None:
            return planted
        sign = check_choice("sign", self.sign, SIGNS)
        if sign not in (planted, "either"):
            raise OptionError("The value for `sign` must agree with the sign of `beta` "
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
    return with_emergence(default_heads(), (start, end))


def with_emergence(heads: Sequence[HeadSpec], window: object) -> tuple[HeadSpec, ...]:
    """``heads`` with the emergence window on every planted head (a head without feature is kept).

    ``window`` is checked by :class:`HeadSpec`.
    """
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
    count = check_int("n", n, 1)
    first = check_int("start", start, 0)
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

