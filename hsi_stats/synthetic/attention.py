"""The attention model: softmax over the present vehicles of planted effects, slot preferences and noise.

Head h gives each present vehicle the logit
``beta_h * x_f / scale_f + gamma_h * [slot == k_eh] + noise_h * eps + persistent_h * u`` (see the
package docstring) and its attention is the softmax over the present vehicles only, exactly 0 on
padding. This module turns features into attention; it must never simulate traffic or change a
feature.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from .heads import FEATURE_SCALES, HeadSpec
from .traffic import FEATURE_NAMES

__all__ = ["head_attention"]

_PERSISTENT_NOISE_TIME = 3.0


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


def head_attention(heads: Sequence[HeadSpec], features: Mapping[str, NDArray[np.float64]],
                   mask: NDArray[np.bool_], order: NDArray[np.intp], new: NDArray[np.bool_],
                   preferred: NDArray[np.int64], episode_checkpoints: NDArray[np.int64], dt: float,
                   rng: np.random.Generator) -> NDArray[np.float64]:
    """Attention of every head, shape (E, T, H, V), in slot order.

    ``features`` and ``mask`` are (E, T, V) in slot order, ``order`` the vehicle of each slot,
    ``new`` (E, T, V) marks vehicles (in vehicle order) that entered at a step, ``preferred``
    (E, H) is each head's preferred slot and ``episode_checkpoints`` (E,) the checkpoint of each
    episode; ``dt`` is the simulator step.
    """
    n_slots = mask.shape[-1]
    shape = (*mask.shape[:2], len(heads), n_slots)
    iid = rng.standard_normal(shape)
    persistent = _persistent_noise(shape, new, dt, rng)
    persistent = np.take_along_axis(persistent, order[:, :, None, :], axis=-1)
    systematic = np.stack([_head_logits(spec, preferred[:, h], features, n_slots, episode_checkpoints)
                           for h, spec in enumerate(heads)], axis=2)
    noise = np.array([spec.noise for spec in heads])[:, None]
    persistence = np.array([spec.persistent_noise for spec in heads])[:, None]
    logits = systematic + noise * iid + persistence * persistent
    return _masked_softmax(logits, mask[:, :, None, :])

