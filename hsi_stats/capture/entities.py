"""Per-entity attention from raw attention weights of any framework: numpy in, (scenarios, heads, entities) out.

Frameworks lay attention weights out differently: PyTorch's ``nn.MultiheadAttention`` returns
``[batch, heads, queries, keys]`` (with ``average_attn_weights=False``), Flax linen's attention the same, and
custom driving encoders often ``[batch, latents, tokens, heads]``. :func:`entity_attention` names the axes once
(``layout``), picks the queries whose attention is studied (the ego token, or latents pooled), picks the keys that
are entities, and folds the several tokens of an entity (observation time steps) into one value per entity.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import HSIDataError, OptionError, check_choice

__all__ = ["entity_attention"]

AXES = ("b", "h", "q", "k")
#: How the tokens of the keys chosen are ordered: entity-major (token = v * T + t) or time-major (t * V + v).
TOKEN_ORDERS = ("entity-major", "time-major")

Index = int | slice | Sequence[int] | None


def _parse_layout(layout: object, shape: tuple[int, ...]) -> list[str]:
    if not isinstance(layout, str):
        raise OptionError(f"The value for `layout` must be a string of axis names such as 'b h q k', but "
                          f"{type(layout).__name__} was passed.")
    axes = layout.split()
    if (sorted(set(axes)) != sorted(axes) or not set(axes) <= set(AXES) or not {"h", "k"} <= set(axes)):
        raise OptionError(f"The value for `layout` must name each axis once, from b (batch), h (heads), q (queries) "
                          f"and k (keys), with h and k required, such as 'b h q k' or 'b q k h', but {layout!r} was "
                          f"passed.")
    if len(axes) != len(shape):
        raise HSIDataError(f"`weights` must have one axis per name of layout {layout!r} ({len(axes)}), but it has "
                           f"shape {shape}.")
    return axes


def _positions(index: Index, size: int, param: str, axis: str) -> NDArray[np.intp]:
    """The positions ``index`` picks among the ``size`` positions of ``axis`` (None: all), checked.

    Nothing reaching past the axis is clipped: an integer must lie in ``-size .. size - 1`` (a negative one counts
    from the end, as in Python), every entry of a sequence too, and a slice's start and stop in ``-size .. size``
    (``-size - 1 .. size - 1`` with a negative step, whose bounds are mirrored): ``slice(1, 20)`` on 7 positions
    is refused rather than read as ``slice(1, 7)``.

    Examples
    --------
    >>> _positions(slice(1, None), 4, "entities", "k (keys)").tolist(), _positions(-1, 4, "query", "q").tolist()
    ([1, 2, 3], [3])
    >>> _positions(slice(1, 20), 7, "entities", "k (keys)")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    hsi_stats._validation.HSIDataError: `entities` is slice(1, 20, None), whose stop 20 lies past axis k (keys) ...
    """
    if index is None:
        return np.arange(size)
    if isinstance(index, slice):
        for part in ("start", "stop", "step"):
            bound = getattr(index, part)
            if bound is not None and not (isinstance(bound, (int, np.integer)) and not isinstance(bound, bool)):
                raise OptionError(f"The value for `{param}` must be an index, a slice of integers or a sequence of "
                                  f"indices, but {index!r} was passed (its {part} is not an integer).")
        if index.step == 0:
            raise OptionError(f"The value for `{param}` must be a slice with a non-zero step, but {index!r} was "
                              f"passed.")
        low, high = (-size, size) if index.step is None or index.step > 0 else (-size - 1, size - 1)
        for part in ("start", "stop"):
            bound = getattr(index, part)
            if bound is not None and not low <= int(bound) <= high:
                where = "past" if bound > 0 else "before the start of"
                raise HSIDataError(f"`{param}` is {index!r}, whose {part} {int(bound)} lies {where} axis {axis} of "
                                   f"length {size}: a slice's start and stop must lie in {low}..{high}"
                                   f"{' (its step is negative)' if low < -size else ''}; nothing is clipped.")
        return np.arange(size)[index]
    if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
        picked = np.array([int(index)])
    elif isinstance(index, (Sequence, np.ndarray)) and not isinstance(index, (str, bytes)):
        picked = np.asarray(index)
        if picked.ndim != 1 or (picked.size and picked.dtype.kind not in "iu"):
            raise OptionError(f"The value for `{param}` must be an index, a slice or a sequence of indices, but "
                              f"{index!r} was passed.")
        picked = picked.astype(np.intp)
    else:
        raise OptionError(f"The value for `{param}` must be an index, a slice or a sequence of indices, but "
                          f"{index!r} was passed.")
    outside = picked[(picked < -size) | (picked >= size)]
    if outside.size:
        raise HSIDataError(f"`{param}` picks {picked.tolist()}, but axis {axis} of the weights has length {size}: "
                           f"an index must lie in {-size}..{size - 1} (negative ones count from the end), and "
                           f"{outside.tolist()} do not.")
    return np.where(picked < 0, picked + size, picked)


def _fold(values: NDArray[np.float64], axis: int, reduce: str) -> NDArray[np.float64]:
    return values.sum(axis=axis) if reduce == "sum" else values.mean(axis=axis)


def entity_attention(weights: ArrayLike, layout: str, *, query: Index = 0, entities: Index = None,
                     tokens_per_entity: int = 1, token_order: str = "entity-major",
                     reduce: str = "sum") -> NDArray[np.float64]:
    r"""Per-entity attention (B, H, V) from attention weights laid out as ``layout``.

    .. math::

        a_{bhv} = \bigoplus_{q \in Q} \bigoplus_{t=0}^{T-1} w_{b,h,q,\kappa(v, t)}

    where :math:`Q` are the queries picked, :math:`\kappa(v, t)` is the key of token :math:`t` of entity
    :math:`v` among the keys picked (:math:`vT + t` entity-major, :math:`tV + v` time-major) and
    :math:`\oplus` is the sum (``reduce="sum"``: the attention mass on the entity) or the mean.

    Parameters
    ----------
    weights : array_like
        Attention weights of one layer, as the framework returns them (for JAX, ``jax.device_get`` output; for
        PyTorch, ``tensor.detach().cpu().numpy()``).
    layout : str
        The axes of ``weights`` by name, space-separated: ``b`` (batch: scenarios), ``h`` (heads), ``q``
        (queries), ``k`` (keys). ``h`` and ``k`` are required; without ``b`` the weights are one scenario,
        without ``q`` one query. PyTorch and Flax linen: ``"b h q k"``; heads-last encoders: ``"b q k h"``.
    query : int, slice, sequence of int or None, default 0
        The queries whose attention is studied: one index (the ego token), several (latents, folded with
        ``reduce``), or None for every query.
    entities : int, slice, sequence of int or None, default None
        The keys that are entity tokens, in order (a slice such as ``slice(1, None)`` drops an ego key at 0, or
        ``slice(start, end)`` from token boundaries); None for every key.

        Neither selection is clipped to its axis, as Python's slicing would: an index must lie in ``-n .. n - 1``
        for an axis of length ``n`` (a negative one counts from the end, as in Python: ``query=-1`` is the last
        query), every entry of a sequence too, and a slice's start and stop in ``-n .. n`` (``-n - 1 .. n - 1``
        with a negative step): ``slice(1, None)`` and ``slice(1, n)`` are the same keys, ``slice(1, n + 1)`` is
        refused.
    tokens_per_entity : int, default 1
        Tokens per entity T among the keys picked (observation time steps); their number must be a multiple of T.
    token_order : {"entity-major", "time-major"}, default "entity-major"
        Whether an entity's tokens are consecutive (``v * T + t``) or its token at each time step is
        (``t * V + v``).
    reduce : {"sum", "mean"}, default "sum"
        How several queries and an entity's tokens are folded. The estimates do not depend on a scale common to
        a scenario, so this matters only for reading raw values.

    Returns
    -------
    ndarray of float64, shape (B, H, V)
        B = 1 when ``layout`` has no ``b``.

    Raises
    ------
    OptionError
        On a layout that does not name its axes, a bad index, ``tokens_per_entity`` or choice.
    HSIDataError
        On weights whose shape does not fit the layout, or a ``query`` or ``entities`` selection that reaches past
        its axis (the message names the axis and its length).

    Examples
    --------
    >>> import numpy as np
    >>> w = np.zeros((2, 3, 4, 5))        # batch 2, heads 3, queries 4, keys 5 (ego key + 4 vehicles)
    >>> w[:, 1, 0, 3] = 1.0               # head 1: the ego query puts all its attention on key 3
    >>> entity_attention(w, "b h q k", query=0, entities=slice(1, None))[0, 1].tolist()
    [0.0, 0.0, 1.0, 0.0]
    >>> heads_last = w.transpose(0, 2, 3, 1)          # the same weights, heads last
    >>> bool(np.array_equal(entity_attention(heads_last, "b q k h", entities=slice(1, None)),
    ...                     entity_attention(w, "b h q k", entities=slice(1, None))))
    True
    >>> entity_attention(w, "b h q k", query=0, entities=slice(1, None), tokens_per_entity=2)[0, 1].tolist()
    [0.0, 1.0]
    """
    reduce = check_choice("reduce", reduce, ("sum", "mean"))
    token_order = check_choice("token_order", token_order, TOKEN_ORDERS)
    if isinstance(tokens_per_entity, bool) or not isinstance(tokens_per_entity, (int, np.integer)) or \
            tokens_per_entity < 1:
        raise OptionError(f"The value for `tokens_per_entity` must be a positive integer, but {tokens_per_entity!r} "
                          f"was passed.")
    array: NDArray[Any] = np.asarray(weights)
    if array.dtype.kind not in "fiub":
        raise HSIDataError(f"`weights` must be numeric, but they have dtype {array.dtype}.")
    axes = _parse_layout(layout, array.shape)
    for name in ("b", "q"):
        if name not in axes:
            array, axes = array[None], [name, *axes]
    array = np.moveaxis(array, [axes.index(name) for name in AXES], range(4))  # (B, H, Q, K), a view
    n_batch, n_heads, n_queries, n_keys = array.shape
    picked_queries = _positions(query, n_queries, "query", "q (queries)")
    picked_keys = _positions(entities, n_keys, "entities", "k (keys)")
    if picked_queries.size == 0 or picked_keys.size == 0:
        raise HSIDataError(f"`query` and `entities` must each pick at least one position, but they pick "
                           f"{picked_queries.size} queries and {picked_keys.size} keys.")
    if picked_keys.size % tokens_per_entity:
        raise HSIDataError(f"`entities` picks {picked_keys.size} keys, which is not a multiple of "
                           f"tokens_per_entity = {tokens_per_entity}.")
    chosen = _fold(array[:, :, picked_queries, :][..., picked_keys].astype(np.float64), 2, reduce)  # (B, H, K')
    n_entities = picked_keys.size // int(tokens_per_entity)
    shape = (n_batch, n_heads, n_entities, int(tokens_per_entity)) if token_order == "entity-major" else \
        (n_batch, n_heads, int(tokens_per_entity), n_entities)
    per_token = chosen.reshape(shape)
    return np.ascontiguousarray(_fold(per_token, 3 if token_order == "entity-major" else 2, reduce))
