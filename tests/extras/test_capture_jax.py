"""Attention from a real Flax model through ``entity_attention``: the tiny layer of ``tests/tiny_attention.py`` as a
Flax ``nn.MultiHeadDotProductAttention`` called with ``sow_weights=True``, its weights taken from the
``intermediates`` collection (linen's layout, ``b h q k``), must give the validated head of the PyTorch case; the
same weights heads-last (as custom Flax layers return them) must give the same after their layout string.
"""

from __future__ import annotations

import numpy as np
import pytest

from hsi_stats.capture import entity_attention
from tests.tiny_attention import E, assert_proximity_head_and_uniform_head, dataset_of, projections, scenarios, tokens

jax = pytest.importorskip("jax", reason="the jax extra (hsi_stats[jax]) is not installed")
linen = pytest.importorskip("flax.linen", reason="the jax extra (hsi_stats[jax]) is not installed")


def _flax_weights(x: np.ndarray) -> np.ndarray:
    """Per-head weights (N, heads, q, k) of the tiny layer in Flax, read from the ``intermediates`` collection."""
    layer = linen.MultiHeadDotProductAttention(num_heads=2, qkv_features=E, out_features=E)
    params = layer.init(jax.random.PRNGKey(0), x[:1])
    projection = projections()
    params = jax.tree_util.tree_map(np.zeros_like, params)  # no biases; the projections below
    for name in ("query", "key", "value"):
        params["params"][name]["kernel"] = projection[name]  # (E, heads, head_dim), linen's DenseGeneral layout
    _, state = layer.apply(params, x, sow_weights=True, mutable=["intermediates"])
    (weights,) = state["intermediates"]["attention_weights"]  # sow appends to a tuple: one call
    return np.asarray(jax.device_get(weights))


def test_a_flax_attention_sown_weights_give_the_validated_head() -> None:
    data = scenarios()
    weights = _flax_weights(tokens(data["distance_to_ego"]))
    assert weights.shape == (600, 2, 7, 7)
    dataset = dataset_of(entity_attention(weights, "b h q k", query=0, entities=slice(1, None)), data)
    assert_proximity_head_and_uniform_head(dataset, data)
    heads_last = np.moveaxis(weights, 1, -1)  # (b, q, k, h), as return_attention_weights layers give it
    np.testing.assert_array_equal(entity_attention(heads_last, "b q k h", query=0, entities=slice(1, None)),
                                  dataset.attention)
