r"""A planted attention policy (extra ``hsi_stats[torch]``): one head decides the action, one head is inert.

A known truth for ablation (:func:`hsi_stats.ablation_effects`): a hand-built PyTorch policy whose attention layer
is an ``nn.MultiheadAttention`` with two heads, and a scene generator with episode-level heterogeneity.

Scenes. An ego vehicle and up to ``n_vehicles`` others; vehicle j has a distance :math:`d_j \in (0.05, 1)` and a
lane :math:`\ell_j \in \{+1, 0, -1\}` (left, same, right). Episode e draws a density :math:`\delta_e \sim U(0, 1)`
(distances :math:`U(0.05, 1 - 0.6 \delta_e)`: dense episodes are nearer) and an adjacent-lane probability
:math:`q_e \sim U(0.1, 0.9)` (:math:`P(\ell = \pm 1) = q_e / 2` each); each step shows 2 to ``n_vehicles``
vehicles, nearest first, the rest padding. The tokens are the ego's :math:`(1, 0, 0, 0)` and each vehicle's
:math:`(0, -d_j, \tau_j, 1)` with the threat :math:`\tau_j = \ell_j (1 - d_j)`.

Policy. Head 0 (embedding dimensions 0-1) has the ego's query :math:`40 \cdot 1` against the keys :math:`-d_j`
(the ego's own key far below), so it attends the nearest vehicle, and reads its threat :math:`\tau`. Head 1
(dimensions 2-3) attends by threat (query :math:`6 \cdot 1` against keys :math:`\tau_j`: near vehicles on the left)
and reads the constant 1 of each vehicle. The output projection is the identity, and the action logits over
(LANE_LEFT, IDLE, LANE_RIGHT) are :math:`(-10\, o_0 + 2 o_2,\ 8 + 2 o_2,\ 10\, o_0 + 2 o_2)`: the policy changes
lane away from the nearest vehicle when its threat exceeds 0.8 in size (an adjacent vehicle nearer than 0.2), else
keeps its lane. Head 1's output adds the same amount to every logit, which the softmax cancels.

Truth. Removing head 0 (``mode="zero"``) leaves IDLE everywhere: the share of changed actions is the share of lane
changes of the intact policy, larger where the nearest vehicle is near (its label's target salient). Removing head 1
changes no action (``changed`` exactly 0; the action probabilities equal to rounding), although its attention
tracks the left lane. The true shares of a fixed policy are their limits over many episodes
(:func:`planted_traffic` with a large ``n_episodes``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._validation import OptionError, normalize_rng

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("the planted policy needs the optional extra: pip install 'hsi_stats[torch]'") from exc

__all__ = ["ACTIONS", "PlantedPolicy", "PlantedTraffic", "planted_policy", "planted_traffic"]

#: The planted policy's actions, in the order of its outputs.
ACTIONS = ("LANE_LEFT", "IDLE", "LANE_RIGHT")
_E = 4
_SHARP, _EGO_KEY, _LANE_QUERY = 40.0, -10.0, 6.0
_STEER, _KEEP, _SHIFT = 10.0, 8.0, 2.0


@dataclass(frozen=True)
class PlantedTraffic:
    """Scenes of :func:`planted_traffic`.

    Attributes
    ----------
    observations : ndarray (N, 1 + V, 4), float32
        The tokens, the ego first, padding rows zero.
    features : dict of str to ndarray (N, V)
        ``distance_to_ego``, ``is_left`` and ``is_right`` of the vehicles (0 on padding).
    mask : ndarray (N, V) of bool
        Which vehicle rows are present.
    groups : ndarray (N,)
        The episode of each step.
    """

    observations: NDArray[np.float32]
    features: dict[str, NDArray[np.float64]]
    mask: NDArray[np.bool_]
    groups: NDArray[np.int64]


def planted_traffic(n_episodes: int, n_steps: int, *, n_vehicles: int = 5, rng: object = None) -> PlantedTraffic:
    """``n_episodes`` episodes of ``n_steps`` scenes each (see the module's documentation)."""
    for name, value, least in (("n_episodes", n_episodes, 2), ("n_steps", n_steps, 1), ("n_vehicles", n_vehicles, 2)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise OptionError(f"The value for `{name}` must be an integer >= {least}, but {value!r} was passed.")
    generator = normalize_rng(rng)
    n, v = int(n_episodes) * int(n_steps), int(n_vehicles)
    density = np.repeat(generator.uniform(0.0, 1.0, n_episodes), n_steps)
    adjacent = np.repeat(generator.uniform(0.1, 0.9, n_episodes), n_steps)
    distance = np.sort(generator.uniform(0.0, 1.0, (n, v)) * (0.95 - 0.6 * density[:, None]) + 0.05, axis=1)
    side = generator.uniform(0.0, 1.0, (n, v))
    lane = np.where(side < adjacent[:, None] / 2, 1.0, np.where(side < adjacent[:, None], -1.0, 0.0))
    mask = np.arange(v) < generator.integers(2, v + 1, n)[:, None]
    distance, lane = np.where(mask, distance, 0.0), np.where(mask, lane, 0.0)
    observations = np.zeros((n, 1 + v, _E), dtype=np.float32)
    observations[:, 0, 0] = 1.0
    observations[:, 1:, 1] = -distance
    observations[:, 1:, 2] = lane * (1.0 - distance) * mask
    observations[:, 1:, 3] = mask
    features = {"distance_to_ego": distance, "is_left": (lane > 0).astype(float), "is_right": (lane < 0).astype(float)}
    return PlantedTraffic(observations, features, mask, np.repeat(np.arange(int(n_episodes)), n_steps))


class PlantedPolicy(nn.Module):
    """The planted policy: ``forward(tokens (B, 1 + V, 4)) -> action probabilities (B, 3)`` (padding rows, all
    zero, are masked out of the keys)."""

    def __init__(self) -> None:
        super().__init__()
        self.attention = nn.MultiheadAttention(_E, num_heads=2, batch_first=True)
        self.policy = nn.Linear(_E, len(ACTIONS))
        query, key, value = (torch.zeros(_E, _E) for _ in range(3))  # (output dimension, input column)
        query[0, 0], key[0, 1], key[0, 0] = _SHARP, 1.0, _EGO_KEY  # head 0: the ego against -distance
        value[0, 2] = 1.0  # head 0 reads the threat
        query[2, 0], key[2, 2] = _LANE_QUERY, 1.0  # head 1: the ego against the threat
        value[2, 3] = 1.0  # head 1 reads the presence (1 for every vehicle)
        weight = torch.tensor([[-_STEER, 0.0, _SHIFT, 0.0], [0.0, 0.0, _SHIFT, 0.0], [_STEER, 0.0, _SHIFT, 0.0]])
        with torch.no_grad():
            self.attention.in_proj_weight.copy_(torch.cat([query, key, value]))
            self.attention.in_proj_bias.zero_()
            self.attention.out_proj.weight.copy_(torch.eye(_E))
            self.attention.out_proj.bias.zero_()
            self.policy.weight.copy_(weight)
            self.policy.bias.copy_(torch.tensor([0.0, _KEEP, 0.0]))
        self.eval()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        padding = tokens.abs().sum(dim=-1) == 0
        ego = tokens[:, :1]
        attended, _ = self.attention(ego, tokens, tokens, key_padding_mask=padding, need_weights=False)
        return torch.softmax(self.policy(attended[:, 0]), dim=-1)

    def predict(self, observations: NDArray[np.float32]) -> NDArray[np.float64]:
        """Action probabilities (B, 3) of observations (B, 1 + V, 4), as numpy."""
        with torch.no_grad():
            return self(torch.as_tensor(observations)).double().numpy()


def planted_policy() -> PlantedPolicy:
    """A new planted policy (in eval mode)."""
    return PlantedPolicy()
