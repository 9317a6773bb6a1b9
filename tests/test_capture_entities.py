"""``entity_attention`` against a brute-force loop, for every layout, query, entity and token-folding option."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hsi_stats._validation import HSIDataError, OptionError
from hsi_stats.capture import entity_attention

B, H, Q, K = 3, 2, 4, 13  # 13 keys: an ego key at 0 and 12 entity tokens

QUERIES = {"ego": 0, "last": -1, "latents": [1, 2, 3], "every": None, "slice": slice(1, 3)}
ENTITIES = {"all": None, "drop ego": slice(1, None), "listed": [12, 3, 5, 7, 9, 11], "span": slice(1, 13, 1)}


def _brute_force(w: np.ndarray, query, entities, tokens: int, order: str, reduce: str) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The same quantity, one number at a time, from weights laid out (B, H, Q, K)."""
    queries = list(range(Q)) if query is None else list(np.arange(Q)[query]) if isinstance(query, slice) else (
        [query % Q] if isinstance(query, int) else list(query))
    keys = list(range(K)) if entities is None else list(np.arange(K)[entities]) if isinstance(entities, slice) \
        else list(entities)
    n_entities = len(keys) // tokens
    out = np.zeros((w.shape[0], H, n_entities))
    for b in range(w.shape[0]):
        for h in range(H):
            for v in range(n_entities):
                values = []
                for q in queries:
                    index = [v * tokens + t if order == "entity-major" else t * n_entities + v
                             for t in range(tokens)]
                    per_token = [w[b, h, q, keys[i]] for i in index]
                    values.append(sum(per_token) if reduce == "sum" else sum(per_token) / tokens)
                out[b, h, v] = sum(values) if reduce == "sum" else sum(values) / len(values)
    return out


@pytest.mark.parametrize("layout", [" ".join(p) for p in itertools.permutations("bhqk")])
def test_every_layout_gives_the_brute_force_values(layout: str) -> None:
    w = np.random.default_rng(0).random((B, H, Q, K))
    laid_out = np.transpose(w, ["bhqk".index(axis) for axis in layout.split()])
    for (qname, query), (ename, entities) in itertools.product(QUERIES.items(), ENTITIES.items()):
        n_keys = K if entities is None else len(np.arange(K)[entities]) if isinstance(entities, slice) else 6
        for tokens, order, reduce in itertools.product((1, 2, 3), ("entity-major", "time-major"), ("sum", "mean")):
            if n_keys % tokens:
                continue
            got = entity_attention(laid_out, layout, query=query, entities=entities, tokens_per_entity=tokens,
                                   token_order=order, reduce=reduce)
            expected = _brute_force(w, query, entities, tokens, order, reduce)
            np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14,
                                       err_msg=f"{layout} {qname} {ename} T={tokens} {order} {reduce}")


@pytest.mark.parametrize("layout,shape", [("h q k", (H, Q, K)), ("b h k", (B, H, K)), ("k h", (K, H))])
def test_a_layout_without_batch_or_queries_is_one_scenario_or_one_query(layout: str, shape: tuple[int, ...]) -> None:
    w = np.random.default_rng(1).random(shape)
    got = entity_attention(w, layout, query=0, entities=slice(1, None))
    expected = {"h q k": lambda: w[None, :, 0, 1:], "b h k": lambda: w[:, :, 1:],
                "k h": lambda: w[None, 1:].transpose(0, 2, 1)}
    np.testing.assert_array_equal(got, expected[layout]())


def test_bad_layouts_and_indices_are_refused_with_the_field_named() -> None:
    w = np.ones((B, H, Q, K))
    with pytest.raises(OptionError, match="`layout` must name each axis once"):
        entity_attention(w, "b h h k")
    with pytest.raises(OptionError, match="`layout` must name each axis once"):
        entity_attention(w, "b x q k")
    with pytest.raises(HSIDataError, match=r"one axis per name of layout 'b h k' \(3\), but it has shape \(3, 2, 4, "):
        entity_attention(w, "b h k")
    with pytest.raises(HSIDataError, match=r"`query` picks \[4\], but axis q \(queries\) of the weights has length 4"):
        entity_attention(w, "b h q k", query=4)
    with pytest.raises(HSIDataError, match="picks 12 keys, which is not a multiple of tokens_per_entity = 5"):
        entity_attention(w, "b h q k", entities=slice(1, None), tokens_per_entity=5)
    with pytest.raises(OptionError, match="`tokens_per_entity` must be a positive integer"):
        entity_attention(w, "b h q k", tokens_per_entity=0)
    with pytest.raises(OptionError, match="`entities` must be an index, a slice or a sequence of indices"):
        entity_attention(w, "b h q k", entities="all")
    with pytest.raises(HSIDataError, match="must be numeric"):
        entity_attention(np.array([["a"]]), "h k")


@pytest.mark.parametrize(("param", "index", "message"), [
    ("entities", slice(1, 20), r"`entities` is slice\(1, 20, None\), whose stop 20 lies past axis k \(keys\) of "
                               r"length 7"),
    ("entities", slice(8, None), r"whose start 8 lies past axis k \(keys\) of length 7"),
    ("entities", slice(-8, None), r"whose start -8 lies before the start of axis k \(keys\) of length 7"),
    ("entities", slice(None, -9, -1), r"whose stop -9 lies before the start of axis k \(keys\) of length 7: .* "
                                      r"must lie in -8..6 \(its step is negative\)"),
    ("entities", slice(7, None, -1), r"whose start 7 lies past axis k \(keys\) of length 7"),
    ("entities", 7, r"`entities` picks \[7\], but axis k \(keys\) of the weights has length 7: .* \[7\] do not"),
    ("entities", -8, r"`entities` picks \[-8\], but axis k \(keys\) of the weights has length 7"),
    ("entities", [1, 2, 9], r"picks \[1, 2, 9\], but axis k \(keys\) of the weights has length 7: .* \[9\] do not"),
    ("entities", np.array([0, -8]), r"has length 7: an index must lie in -7..6 .* \[-8\] do not"),
    ("query", slice(0, 5), r"`query` is slice\(0, 5, None\), whose stop 5 lies past axis q \(queries\) of length 4"),
    ("query", 4, r"`query` picks \[4\], but axis q \(queries\) of the weights has length 4"),
    ("query", [0, 3, 4], r"`query` picks \[0, 3, 4\], but axis q \(queries\) of the weights has length 4"),
])
def test_a_selection_past_its_axis_is_refused_with_the_axis_length(param: str, index: object, message: str) -> None:
    """Python would clip ``slice(1, 20)`` on 7 keys to 6 entities; the weights' layout says how long each axis is,
    so reaching past it is a mistake, refused with the axis and its length named."""
    w = np.random.default_rng(2).random((B, H, Q, 7))
    with pytest.raises(HSIDataError, match=message):
        entity_attention(w, "b h q k", **{param: index})  # type: ignore[arg-type]


def test_selections_within_the_axis_keep_their_python_meaning() -> None:
    """In-range slices (a stop equal to the length included), ``slice(None)`` and negative indices within the axis
    pick what numpy's indexing picks."""
    w = np.random.default_rng(3).random((B, H, Q, 7))
    for query, entities in [(-1, slice(-6, None)), (0, slice(1, 7)), (slice(None), slice(None)), (-4, [-1, 0, -7]),
                            (slice(-4, 4), slice(6, -8, -1)), (slice(None, None, 2), slice(6, None, -1)),
                            (np.int64(3), np.array([6, -2]))]:
        expected = w[:, :, np.arange(Q)[query], :][..., np.arange(7)[entities]]
        expected = expected.sum(axis=2) if expected.ndim == 4 else expected
        np.testing.assert_array_equal(entity_attention(w, "b h q k", query=query, entities=entities), expected)
    np.testing.assert_array_equal(entity_attention(w, "b h q k", entities=slice(1, None)),
                                  entity_attention(w, "b h q k", entities=slice(1, 7)))
    with pytest.raises(OptionError, match="non-zero step"):
        entity_attention(w, "b h q k", entities=slice(None, None, 0))
    with pytest.raises(OptionError, match=r"its stop is not an integer"):
        entity_attention(w, "b h q k", entities=slice(1, 2.5))  # type: ignore[misc]


def test_importing_the_package_and_capture_imports_no_framework() -> None:
    import subprocess
    import sys

    code = ("import sys, numpy, hsi_stats, hsi_stats.capture; "
            "hsi_stats.capture.entity_attention(numpy.ones((2, 3)), 'h k'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'jax', 'flax', 'highway_env', "
            "'gymnasium'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
