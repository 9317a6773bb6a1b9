"""A tiny attention layer built by hand, shared by the capture tests of every framework.

Tokens are an ego token ``[1, 0, 0, 0]`` and one token ``[0, -distance, 0, 0]`` per entity. Head 0's query is the
ego indicator times :data:`SHARPNESS` and its key the entity's closeness (``-distance``; the ego's own key far
below), so its softmax puts nearly all the ego's attention on the nearest entity. Head 1's queries are zero, so
its attention is uniform. Every framework's version of the layer must give a validated Proximity Head for head 0
(on ``distance_to_ego``) and no validated label for head 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from hsi_stats import HSIDataset, analyze
from hsi_stats._validation import ConstantInputWarning

E, V = 4, 6  # embedding size (2 heads of 2 dimensions) and entities (an ego token comes first)
SHARPNESS, EGO_KEY = 60.0, -10.0
N_EPISODES, PER_EPISODE = 40, 15


def scenarios() -> dict[str, np.ndarray]:
    """Distances and TTCs of 600 scenarios of 6 entities in 40 episodes."""
    rng = np.random.default_rng(0)
    n = N_EPISODES * PER_EPISODE
    return {"distance_to_ego": rng.uniform(0.05, 1.0, (n, V)), "ttc": rng.uniform(0.5, 8.0, (n, V)),
            "groups": np.repeat(np.arange(N_EPISODES), PER_EPISODE)}


def tokens(distance: np.ndarray) -> np.ndarray:
    """Scenario tokens (N, 1 + V, E), float32."""
    x = np.zeros((distance.shape[0], 1 + V, E), dtype=np.float32)
    x[:, 0, 0] = 1.0
    x[:, 1:, 1] = -distance
    return x


def projections() -> dict[str, np.ndarray]:
    """Query and key projections (E, heads, head_dim) of the two heads; the value projection is the identity."""
    query, key = np.zeros((E, 2, 2), dtype=np.float32), np.zeros((E, 2, 2), dtype=np.float32)
    query[0, 0, 0] = SHARPNESS  # head 0, dim 0: SHARPNESS * ego indicator
    key[1, 0, 0] = 1.0  # head 0, dim 0: closeness ...
    key[0, 0, 0] = EGO_KEY  # ... and far below any entity's for the ego's own key
    return {"query": query, "key": key, "value": np.eye(E, dtype=np.float32).reshape(E, 2, 2)}


def dataset_of(attention: np.ndarray, data: dict[str, np.ndarray]) -> HSIDataset:
    """The ego's attention over the entities (N, 2, V) with the scenarios' features and episodes."""
    return HSIDataset(attention, {k: data[k] for k in ("distance_to_ego", "ttc")}, groups=data["groups"])


def assert_proximity_head_and_uniform_head(dataset: HSIDataset, data: dict[str, np.ndarray]) -> None:
    """Head 0 of ``dataset`` attends the nearest entity and head 1 is uniform; ``analyze`` validates head 0 as a
    Proximity Head and not head 1."""
    attention = dataset.attention
    assert attention.shape == (N_EPISODES * PER_EPISODE, 2, V)
    assert (attention[:, 0, :].argmax(axis=1) == data["distance_to_ego"].argmin(axis=1)).all()
    np.testing.assert_allclose(attention[:, 1, :], 1.0 / (V + 1), rtol=1e-5)  # uniform over 1 + V keys
    with pytest.warns(ConstantInputWarning, match="rho is NaN for 2"):  # the uniform head does not vary
        heads = analyze(dataset, n_resamples=199, rng=0).heads.set_index("head")
    first, second = dataset.head_names
    assert heads.loc[first, "validated"] and heads.loc[first, "label_feature"] == "distance_to_ego"
    assert heads.loc[first, "label"] == "Proximity Head"
    assert not heads.loc[second, "validated"]
