r"""Attention drawn around a conditional logit with known coefficients: the joint model's ground truth.

Traffic. Each episode has ``n_slots`` vehicles around the ego, each with a persistent lane (left, ego lane or
right, changing now and then), a longitudinal offset (at least 20 m ahead or behind at first) that moves with its
speed relative to the ego, and that speed an AR(1) around a per-vehicle mean of about 6 m/s towards the ego, so
that TTC falls with distance (their within-scenario rank correlation is about 0.65; a vehicle that passes the ego
recedes). At each step the first ``n`` slots are present, ``n`` between 3 and ``n_slots``
(changing now and then within the episode). The features follow the driving logs' definitions
(:mod:`hsi_stats.kinematics`): distance, closing speed, TTC censored at 5 s, ``is_ahead`` and ``is_behind`` with a
band of :data:`BAND` metres around the ego that counts as neither (so they are near-complements, not exact ones),
``is_left``, ``is_right`` and the vehicle's speed.

Attention. Head h gives the present entities of scenario s the shares
:math:`p_{sv} = \exp(\beta_h^\top z_{sv}) / \sum_{v'} \exp(\beta_h^\top z_{sv'})`, with :math:`z` the joint model's
covariates (each continuous feature's within-scenario mid-rank percentile :math:`(r - \tfrac12)/n`, computed here
with :func:`scipy.stats.rankdata`, and the indicators as 0/1), and draws the attention from a Dirichlet
distribution with mean :math:`p_s` and concentration :math:`c_e`, so that :math:`E[a_s \mid z_s] = p_s` exactly and
the true coefficients are :math:`\beta_h`. Episodes are overdispersed: :math:`c_e` is log-normal around the head's
concentration (``dispersion``, the standard deviation of its logarithm), and the Dirichlet's gamma variates of one
slot are correlated over the steps of an episode (a Gaussian copula with correlation ``persistence``); each
scenario's attention is still exactly Dirichlet. A small concentration puts exactly zero attention on some
entities (the gamma variates underflow), as near-separated heads do. ``support`` restricts a head's attention to
the entities an indicator flags, where a scenario has any: exactly zero elsewhere, a coefficient of
:math:`+\infty` on that indicator (a separated head; the others keep their true values).

This module draws data and states the truth; it computes no statistic.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import gammaincinv, ndtr
from scipy.stats import rankdata

from .._validation import OptionError, check_int, normalize_rng
from ..data import HSIDataset
from ..kinematics import censored_ttc

__all__ = ["BAND", "INDICATORS", "LogitHead", "LogitRun", "logit_heads", "logit_run"]

#: Features flagged 0/1 (the others are continuous).
INDICATORS = frozenset({"is_ahead", "is_behind", "is_left", "is_right"})
#: Longitudinal offsets within this many metres of the ego are neither ahead nor behind.
BAND = 0.5
_LANE = 3.7
_FEATURES = ("ttc", "distance_to_ego", "closing_speed", "is_ahead", "is_behind", "is_left", "is_right",
             "agent_speeds")


@dataclass(frozen=True)
class LogitHead:
    """A head whose attention is Dirichlet around a conditional logit with coefficients ``coefficients``.

    Parameters
    ----------
    name : str
    coefficients : mapping of str to float
        Feature -> coefficient: per unit of within-scenario percentile for a continuous feature, flagged against
        unflagged for an indicator; absent features have 0.
    concentration : float, default 20
        The Dirichlet concentration of a typical episode (larger: attention closer to its mean).
    dispersion : float, default 0.5
        Standard deviation of the log concentration over episodes.
    persistence : float, default 0.5
        Correlation of one slot's Dirichlet noise over the steps of an episode, in [0, 1).
    support : str or None, default None
        An indicator: where a scenario has a flagged entity, attention only on the flagged ones.
    """

    name: str
    coefficients: Mapping[str, float] = field(default_factory=dict)
    concentration: float = 20.0
    dispersion: float = 0.5
    persistence: float = 0.5
    support: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.coefficients) - set(_FEATURES))
        if unknown:
            raise OptionError(f"`coefficients` of head {self.name!r} must name features of {list(_FEATURES)}, but "
                              f"{unknown} were passed.")
        if self.support is not None and self.support not in INDICATORS:
            raise OptionError(f"`support` of head {self.name!r} must be one of {sorted(INDICATORS)} or None, but "
                              f"{self.support!r} was passed.")
        if not 0.0 <= self.persistence < 1.0 or not self.concentration > 0 or not self.dispersion >= 0:
            raise OptionError(f"head {self.name!r}: `persistence` must lie in [0, 1), `concentration` be positive "
                              "and `dispersion` non-negative.")
        object.__setattr__(self, "coefficients", MappingProxyType(dict(self.coefficients)))

    def truth(self, feature: str) -> float:
        """The true coefficient of ``feature`` (+inf for the ``support`` indicator)."""
        return math.inf if feature == self.support else float(self.coefficients.get(feature, 0.0))


def logit_heads() -> tuple[LogitHead, ...]:
    """The heads of the calibration study: one feature each on collinear features, several at once, near-separated,
    separated and none.

    Examples
    --------
    >>> [head.name for head in logit_heads()]
    ['ttc only', 'distance only', 'lead vehicle', 'near-separated', 'separated', 'graded', 'none']
    """
    return (
        LogitHead("ttc only", {"ttc": -3.0}),
        LogitHead("distance only", {"distance_to_ego": -3.0}),
        LogitHead("lead vehicle", {"is_ahead": 2.0, "distance_to_ego": -3.0}),
        LogitHead("near-separated", {"is_ahead": 6.0, "is_left": -4.0, "is_right": -4.0, "distance_to_ego": -5.0},
                  concentration=5.0),
        LogitHead("separated", {"distance_to_ego": -3.0}, support="is_ahead"),
        LogitHead("graded", {"distance_to_ego": -1.0, "closing_speed": 1.0, "is_left": 0.5}),
        LogitHead("none", {}),
    )


@dataclass(frozen=True, eq=False)
class LogitRun:
    """A data set drawn by :func:`logit_run` and its truth.

    Attributes
    ----------
    dataset : HSIDataset
    heads : tuple of LogitHead
    """

    dataset: HSIDataset
    heads: tuple[LogitHead, ...]

    def truth(self) -> pd.DataFrame:
        """One row per head x feature: ``head, feature, coefficient`` (the true value, +inf for a separated
        indicator)."""
        return pd.DataFrame([(head.name, name, head.truth(name)) for head in self.heads for name in _FEATURES],
                            columns=["head", "feature", "coefficient"])


def _ar1(shape: tuple[int, ...], phi: float, scale: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Stationary AR(1) paths along axis 1 (mean 0, standard deviation ``scale``)."""
    out = np.empty(shape)
    out[:, 0] = rng.normal(0.0, scale, (shape[0], *shape[2:]))
    for t in range(1, shape[1]):
        out[:, t] = phi * out[:, t - 1] + math.sqrt(1 - phi**2) * rng.normal(0.0, scale, (shape[0], *shape[2:]))
    return out


def _traffic(n_episodes: int, n_steps: int, n_slots: int,
             rng: np.random.Generator) -> tuple[dict[str, NDArray[np.float64]], NDArray[np.bool_]]:
    """Features (E, T, V) and the mask of present slots."""
    shape = (n_episodes, n_steps, n_slots)
    speed = np.abs(rng.normal(6.0, 1.5, (n_episodes, 1, n_slots)) + _ar1(shape, 0.9, 0.5, rng))  # m/s, closing in
    start = rng.choice([-1.0, 1.0], (n_episodes, 1, n_slots)) * (20.0 + np.abs(rng.normal(0.0, 40.0,
                                                                                        (n_episodes, 1, n_slots))))
    velocity = -np.sign(start) * speed  # along the road, relative to the ego: towards it at first
    longitudinal = start + 0.2 * np.cumsum(velocity, axis=1)  # steps of 0.2 s; a vehicle may pass the ego
    lanes = rng.integers(-1, 2, (n_episodes, 1, n_slots)) * np.ones(shape, dtype=np.int64)
    changes = rng.random(shape) < 0.01
    lanes = np.where(np.cumsum(changes, axis=1) % 2 == 1, np.clip(lanes + rng.choice([-1, 1], shape), -1, 1), lanes)
    lateral = _LANE * lanes
    distance = np.hypot(longitudinal, lateral)
    closing = -longitudinal * velocity / np.maximum(distance, 1e-9)
    present = rng.integers(3, n_slots + 1, (n_episodes, 1)) + np.cumsum(rng.random((n_episodes, n_steps)) < 0.05,
                                                                      axis=1) % 2
    mask = np.arange(n_slots)[None, None, :] < np.clip(present, 3, n_slots)[..., None]
    features = {
        "ttc": censored_ttc(distance, closing), "distance_to_ego": distance, "closing_speed": closing,
        "is_ahead": (longitudinal > BAND).astype(float), "is_behind": (longitudinal < -BAND).astype(float),
        "is_left": (lanes > 0).astype(float), "is_right": (lanes < 0).astype(float),
        "agent_speeds": 25.0 + 2.0 * lanes + velocity,
    }
    return {name: np.where(mask, values, 0.0) for name, values in features.items()}, mask


def _covariates(features: Mapping[str, NDArray[np.float64]], mask: NDArray[np.bool_]) -> NDArray[np.float64]:
    """(S, V, F): within-scenario mid-rank percentiles of the continuous features, the indicators as 0/1."""
    n = mask.sum(axis=1, keepdims=True)
    columns = []
    for name in _FEATURES:
        values = features[name]
        if name in INDICATORS:
            columns.append(np.where(mask, values, 0.0))
            continue
        ranks = rankdata(np.where(mask, values, np.nan), axis=1, nan_policy="omit")
        columns.append(np.where(mask, (ranks - 0.5) / n, 0.0))
    return np.stack(columns, axis=-1)


def _head_attention(head: LogitHead, z: NDArray[np.float64], flags: Mapping[str, NDArray[np.float64]],
                    mask: NDArray[np.bool_], episodes: NDArray[np.intp], n_episodes: int,
                    rng: np.random.Generator) -> NDArray[np.float64]:
    beta = np.array([head.coefficients.get(name, 0.0) for name in _FEATURES])
    allowed = mask.copy()
    if head.support is not None:
        flagged = (flags[head.support] > 0) & mask
        allowed = np.where(flagged.any(axis=1, keepdims=True), flagged, mask)
    utility = np.where(allowed, z @ beta, -np.inf)
    p = np.exp(utility - utility.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    concentration = head.concentration * np.exp(head.dispersion * rng.standard_normal(n_episodes)
                                                - head.dispersion**2 / 2)
    shared = rng.standard_normal((n_episodes, mask.shape[1]))[episodes]
    uniform = ndtr(math.sqrt(head.persistence) * shared
                   + math.sqrt(1 - head.persistence) * rng.standard_normal(mask.shape))
    shape = concentration[episodes][:, None] * p
    gamma = np.where(allowed & (shape > 0), gammaincinv(np.where(shape > 0, shape, 1.0), uniform), 0.0)
    total = gamma.sum(axis=1, keepdims=True)
    # every variate underflowed (a tiny concentration): the attention goes to the largest share
    fallback = (p == p.max(axis=1, keepdims=True)) & allowed
    gamma = np.where(total > 0, gamma, fallback)
    return gamma / gamma.sum(axis=1, keepdims=True)


def logit_run(*, n_episodes: int = 40, n_steps: int = 30, n_slots: int = 8,
              heads: Sequence[LogitHead] | None = None, rng: object = None) -> LogitRun:
    """Draw a data set whose heads follow conditional logits with known coefficients.

    Parameters
    ----------
    n_episodes, n_steps, n_slots : int
        Episodes (the groups), steps per episode (scenarios) and entity slots (3 to ``n_slots`` present).
    heads : sequence of LogitHead, optional
        Default :func:`logit_heads`.
    rng : seed or Generator, optional

    Returns
    -------
    LogitRun

    Examples
    --------
    >>> run = logit_run(n_episodes=3, n_steps=4, rng=0)
    >>> run.dataset.attention.shape, run.truth().query("head == 'ttc only' and feature == 'ttc'").coefficient.item()
    ((12, 7, 8), -3.0)
    """
    n_episodes, n_steps = check_int("n_episodes", n_episodes, 2), check_int("n_steps", n_steps, 1)
    n_slots = check_int("n_slots", n_slots, 3)
    chosen = tuple(logit_heads() if heads is None else heads)
    if not chosen or not all(isinstance(head, LogitHead) for head in chosen):
        raise OptionError("`heads` must be a non-empty sequence of LogitHead.")
    traffic_rng, attention_rng = normalize_rng(rng).spawn(2)
    features, mask = _traffic(n_episodes, n_steps, n_slots, traffic_rng)
    flat = {name: values.reshape(-1, n_slots) for name, values in features.items()}
    flat_mask = mask.reshape(-1, n_slots)
    z = _covariates(flat, flat_mask)
    episodes = np.repeat(np.arange(n_episodes), n_steps)
    attention = np.stack([_head_attention(head, z, flat, flat_mask, episodes, n_episodes, attention_rng)
                          for head in chosen], axis=1)
    dataset = HSIDataset(attention, flat, mask=flat_mask, groups=episodes, head_names=[h.name for h in chosen],
                         copy=False)
    return LogitRun(dataset, chosen)
