"""An ego-attention policy for highway-env, as a stable-baselines3 features extractor, and the environment it drives.

The observation is highway-env's Kinematics observation, an array (V, F) = (8, 5): row 0 is the ego vehicle,
rows 1..7 the nearest other vehicles sorted by distance (padding rows are all zeros), and the features are
``presence, x, y, vx, vy`` (normalised to [-1, 1], relative to the ego for the other vehicles).

:class:`EgoAttentionExtractor` encodes every row with one shared MLP, then lets the ego row query every row
(the ego included) with a single ``torch.nn.MultiheadAttention`` (4 heads). Rows whose presence is 0 are masked;
the ego row never is, so no query ever has all its keys masked. The ego's attention output (64 numbers) is the
feature vector the policy and value heads of PPO read.

The attention module is called exactly once per forward, with ``need_weights`` left at its default and
``key_padding_mask`` as a keyword, so that ``hsi_stats.capture.TorchAttentionRecorder`` (which forces per-head
weights through a forward pre-hook on ``need_weights``/``average_attn_weights``) can record it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import highway_env  # noqa: F401  (registers the highway-env environments)
import torch
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

#: The environment every script uses.
ENV_ID = "highway-fast-v0"
#: The Kinematics observation of the ego and 7 other vehicles (row order "sorted": by distance to the ego).
OBSERVATION = {
    "type": "Kinematics",
    "vehicles_count": 8,
    "features": ["presence", "x", "y", "vx", "vy"],
    "order": "sorted",
    "normalize": True,
    "absolute": False,
}
#: Episode length in policy steps (highway-fast-v0 acts at 1 Hz by default).
DURATION = 40
ENV_CONFIG: dict[str, Any] = {"observation": OBSERVATION, "duration": DURATION}


def make_env(render_mode: str | None = None) -> gym.Env:
    """highway-fast-v0 with the ego-attention observation above and the default discrete meta-actions."""
    return gym.make(ENV_ID, config=ENV_CONFIG, render_mode=render_mode)


class EgoAttentionExtractor(BaseFeaturesExtractor):
    """Ego-query multi-head attention over the rows of a Kinematics observation (batch, V, F).

    Parameters
    ----------
    observation_space : gymnasium.spaces.Box
        Of shape (V, F); the first feature must be ``presence``.
    embed_dim : int, default 64
        Width of the row encoder and of the attention (and the size of the features returned).
    num_heads : int, default 4
        Heads of the attention.
    """

    def __init__(self, observation_space: gym.spaces.Box, embed_dim: int = 64, num_heads: int = 4) -> None:
        super().__init__(observation_space, features_dim=embed_dim)
        n_features = observation_space.shape[1]
        # One MLP shared by every row (ego and other vehicles alike).
        self.encoder = nn.Sequential(nn.Linear(n_features, embed_dim), nn.ReLU(), nn.Linear(embed_dim, embed_dim))
        # The one attention module of the policy: the ego row queries all rows.
        self.attention = nn.MultiheadAttention(embed_dim=embed_dim, num_heads=num_heads, batch_first=True)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        # observations: (B, V, F); SB3 hands a float tensor with a batch axis.
        rows = self.encoder(observations)                    # (B, V, E)
        ego = rows[:, :1, :]                                 # (B, 1, E): the query is the ego row only
        # True = ignore this key: rows without a vehicle (presence 0). The ego row (0) is never masked.
        padding = observations[..., 0] <= 0.5                # (B, V)
        padding[:, 0] = False
        # Called once, query/key/value positional, key_padding_mask as keyword, need_weights at its default.
        attended, _ = self.attention(ego, rows, rows, key_padding_mask=padding)
        return attended.squeeze(1)                           # (B, E)


def policy_kwargs() -> dict[str, Any]:
    """The ``policy_kwargs`` of PPO's ``"MlpPolicy"``: the extractor above (shared by actor and critic, SB3's
    default) and one hidden layer of 64 for each of the policy and value heads."""
    return dict(features_extractor_class=EgoAttentionExtractor,
                features_extractor_kwargs=dict(embed_dim=64, num_heads=4),
                net_arch=dict(pi=[64], vf=[64]))
