"""Helpers shared by the driving-format readers and writers of :mod:`hsi_stats.io`.

The readers of the two-directory logs and of the unified extractions validate the same fields in the
same words (an error names the file, the field and what was found) and concatenate their scenarios
the same way; the writers check their arguments the same way, split a dataset into one file per
checkpoint and dump plain pickles atomically. Both readers meet the raw token attention of the
extractors, and reduce it to per-entity attention here, in one way. This module holds those pieces
once. It must never unpickle (only :mod:`~hsi_stats.io.safe_pickle` does), never know a file layout
of its own, and never import anything above the data layer.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._atomic import atomic_path
from .._validation import HSIDataError, OptionError, OptionTypeError
from ..capture.entities import entity_attention as capture_entity_attention
from ..data import HSIDataset


# ------------------------------------------------------------------------------ readers
@dataclass(frozen=True)
class Block:
    """Consecutive scenarios from one source, already in the dataset's layout."""

    source: str
    step: int
    attention: NDArray[np.float64]  # (n, H, V)
    features: dict[str, NDArray[np.float64]]  # name -> (n, V)
    mask: NDArray[np.bool_]  # (n, V)
    groups: NDArray[np.str_]  # (n,)
    head_names: tuple[str, ...]


def natural_key(path: Path) -> list[Any]:
    """Sort key under which ``x_10000`` follows ``x_9999``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def list_files(directory: str | os.PathLike[str], pattern: str, param: str) -> list[Path]:
    """The files in ``directory`` matching ``pattern`` in natural order; an error if none."""
    folder = Path(directory)
    if not folder.is_dir():
        raise HSIDataError(f"`{param}` must be a directory holding {pattern!r} files, but "
                           f"{str(folder)!r} is not a directory.")
    files = sorted((p for p in folder.glob(pattern) if p.is_file()), key=natural_key)
    if not files:
        raise HSIDataError(f"`{param}` {str(folder)!r} holds no files matching {pattern!r}.")
    return files


def require_mapping(value: Any, what: str, source: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise HSIDataError(f"{source}: {what} must be a dict, but it is a {type(value).__name__}.")
    return value


def require_key(mapping: Mapping[Any, Any], key: str, source: str) -> Any:
    if key not in mapping:
        raise HSIDataError(f"{source}: the required field `{key}` is missing "
                           f"(fields present: {sorted(map(str, mapping))}).")
    return mapping[key]


def require_int(value: Any, field: str, source: str) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    raise HSIDataError(f"{source}: `{field}` must be an integer, but it is {value!r} "
                       f"({type(value).__name__}).")


def numeric_array(value: Any, field: str, source: str) -> NDArray[Any]:
    """``value`` as a numeric (bool, int or float) array; an error naming the field otherwise."""
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise HSIDataError(f"{source}: `{field}` must be a numeric array, but it could not be "
                           f"read as one ({exc}).") from None
    if array.dtype.kind not in "biuf":
        raise HSIDataError(f"{source}: `{field}` must be a numeric array, but it is a "
                           f"{type(value).__name__} of dtype {array.dtype}.")
    return array


def as_mask(array: NDArray[Any], field: str, source: str) -> NDArray[np.bool_]:
    if array.dtype == np.bool_:
        return array
    if not np.isin(array, (0, 1)).all():
        raise HSIDataError(f"{source}: `{field}` is the validity mask and must be boolean (or "
                           f"0/1), but it has dtype {array.dtype} with other values.")
    return array.astype(bool)


def split_semantic(
    raw: Any, source: str, *, ndims: tuple[int, ...], dims: str
) -> tuple[NDArray[np.bool_], dict[str, NDArray[np.float64]]]:
    """Turn a ``semantic_features`` dict into ``(mask, features)`` of one shared shape.

    A boolean entry named ``valid`` is the mask (all True when absent); every other entry is a
    feature and must be a numeric array with ``ndim`` in ``ndims``.
    """
    entries = require_mapping(raw, "`semantic_features`", source)
    mask: NDArray[np.bool_] | None = None
    features: dict[str, NDArray[np.float64]] = {}
    first: tuple[str, tuple[int, ...]] | None = None
    for name, value in entries.items():
        if not isinstance(name, str) or not name:
            raise HSIDataError(f"{source}: `semantic_features` keys must be non-empty strings, "
                               f"but {name!r} was found.")
        field = f"semantic_features[{name!r}]"
        array = numeric_array(value, field, source)
        if array.ndim not in ndims:
            raise HSIDataError(f"{source}: `{field}` must have shape {dims}, but it has shape "
                               f"{array.shape}.")
        if first is None:
            first = (name, array.shape)
        elif array.shape != first[1]:
            raise HSIDataError(f"{source}: `{field}` has shape {array.shape}, but "
                               f"`semantic_features[{first[0]!r}]` has shape {first[1]}; every "
                               f"entry must have the same shape {dims}.")
        if name == "valid":
            mask = as_mask(array, field, source)
        else:
            features[name] = array.astype(np.float64)
    if first is None or not features:
        raise HSIDataError(f"{source}: `semantic_features` must hold at least one feature "
                           f"besides 'valid', but it has keys {list(entries)}.")
    if mask is None:
        mask = np.ones(first[1], dtype=bool)
    return mask, features


# Raw attention as the driving extractors store it: entity tokens are entity-major (token = v * T_obs + t), and
# a module's ``token_boundaries`` range picks its entity tokens out of the layer's tokens.
ATTENTION_DIMS = "(n_samples, n_latents, n_tokens, n_heads)"


def select_attention_keys(weights: Mapping[Any, Any], attention_key: str, source: str) -> list[str]:
    """The keys of ``attention_weights`` that ``attention_key`` names: one exact key (with ``/``) or a module's."""
    if "/" in attention_key:
        chosen = [attention_key] if attention_key in weights else []
    else:
        chosen = sorted(key for key in weights
                        if isinstance(key, str) and key.split("/", 1)[0] == attention_key)
    if not chosen:
        raise HSIDataError(f"{source}: `attention_key` {attention_key!r} matches no key of "
                           f"`attention_weights`; available keys: {sorted(map(str, weights))}.")
    return chosen


def token_weights(raw: Any, field: str, source: str) -> NDArray[Any]:
    """``raw`` as a numeric array of shape (n_samples, n_latents, n_tokens, n_heads)."""
    weights = numeric_array(raw, field, source)
    if weights.ndim != 4:
        raise HSIDataError(f"{source}: `{field}` must have shape {ATTENTION_DIMS}, but it has "
                           f"shape {weights.shape}.")
    return weights


def _entity_tokens(n_tokens: int, key: str, boundaries: Mapping[Any, Any], boundaries_source: str,
                   source: str) -> slice:
    """The module's entity tokens: its ``token_boundaries`` range unless that spans all tokens."""
    module = key.split("/", 1)[0]
    if module not in boundaries:
        return slice(0, n_tokens)
    field = f"token_boundaries[{module!r}]"
    bounds = boundaries[module]
    if not isinstance(bounds, (Sequence, np.ndarray)) or len(bounds) != 2:
        raise HSIDataError(f"{boundaries_source}: `{field}` must be a (start, end) pair, but it is "
                           f"{bounds!r}.")
    start, end = (require_int(bound, field, boundaries_source) for bound in bounds)
    if end - start == n_tokens:
        return slice(0, n_tokens)
    if not 0 <= start < end <= n_tokens:
        raise HSIDataError(f"{source}: `attention_weights[{key!r}]` has {n_tokens} tokens, but "
                           f"`{field}` = ({start}, {end}) in {boundaries_source} is not a range within "
                           f"them.")
    return slice(start, end)


def entity_attention(
    weights: NDArray[Any], key: str, n_slots: int, boundaries: Mapping[Any, Any], boundaries_source: str,
    source: str,
) -> NDArray[np.float64]:
    """Sum the token attention of layer ``key`` over latents and each entity's T_obs tokens: (n_samples, H, V).

    ``weights`` (from :func:`token_weights`) were read from ``source``; ``boundaries`` (the
    ``token_boundaries`` read from ``boundaries_source``) give the module's entity tokens, all tokens when
    the module is not among them.
    """
    field = f"attention_weights[{key!r}]"
    tokens = _entity_tokens(weights.shape[2], key, boundaries, boundaries_source, source)
    n_entity_tokens = tokens.stop - tokens.start
    if n_entity_tokens % n_slots:
        raise HSIDataError(f"{source}: `{field}` has {n_entity_tokens} entity tokens, which is not "
                           f"a multiple of V = {n_slots} entities: T_obs = {n_entity_tokens} / "
                           f"{n_slots} must be an integer.")
    return capture_entity_attention(weights, "b q k h", query=None, entities=tokens,
                                    tokens_per_entity=n_entity_tokens // n_slots)


def check_compatible(block: Block, first: Block) -> None:
    if block.head_names != first.head_names:
        raise HSIDataError(f"{block.source}: gives {len(block.head_names)} heads "
                           f"{list(block.head_names)}, but {first.source} gives "
                           f"{len(first.head_names)} heads {list(first.head_names)}; every file "
                           f"must give the same heads.")
    if block.attention.shape[2] != first.attention.shape[2]:
        raise HSIDataError(f"{block.source}: has V = {block.attention.shape[2]} entity slots, but "
                           f"{first.source} has V = {first.attention.shape[2]}; every file must "
                           f"have the same number of entity slots.")
    if list(block.features) != list(first.features):
        raise HSIDataError(f"{block.source}: has features {list(block.features)}, but "
                           f"{first.source} has {list(first.features)}; every file must have the "
                           f"same features.")


def assemble(blocks: Sequence[Block], notes: Sequence[str], step_names: Mapping[int, str] | None = None) -> HSIDataset:
    """Concatenate blocks in (stable) step order into one dataset, once they fit together."""
    ordered = sorted(blocks, key=lambda block: block.step)
    first = ordered[0]
    for block in ordered[1:]:
        check_compatible(block, first)
    features = {name: np.concatenate([block.features[name] for block in ordered])
                for name in first.features}
    steps = [np.full(block.attention.shape[0], block.step, dtype=np.int64) for block in ordered]
    return HSIDataset(
        np.concatenate([block.attention for block in ordered]),
        features,
        mask=np.concatenate([block.mask for block in ordered]),
        groups=np.concatenate([block.groups for block in ordered]),
        steps=np.concatenate(steps),
        head_names=first.head_names,
        notes=notes,
        step_names=step_names,
        copy=False,  # concatenated here and held nowhere else
    )


# ------------------------------------------------------------------------------ writers
def dump_pickle(obj: Any, target: Path) -> None:
    """Pickle ``obj`` (protocol 4, readable by every supported Python) to ``target`` atomically."""
    with atomic_path(target, suffix=".pkl") as tmp, open(tmp, "wb") as handle:
        pickle.dump(obj, handle, protocol=4)


def check_dataset(dataset: object) -> HSIDataset:
    """``dataset`` itself when it is an :class:`HSIDataset` with ``steps`` (a file is written per step)."""
    if not isinstance(dataset, HSIDataset):
        raise OptionTypeError("The value for `dataset` must be an HSIDataset, "
                        f"but {type(dataset).__name__} was passed.")
    if dataset.steps is None:
        raise HSIDataError("The value for `dataset` must have `steps` (the checkpoint of each scenario, "
                           "one file per checkpoint), but a dataset without steps was passed.")
    return dataset


def check_float_dtype(dtype: object) -> np.dtype[Any]:
    """``dtype`` resolved when it is a floating dtype."""
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        resolved = None
    if resolved is None or resolved.kind != "f":
        raise OptionError("The value for `dtype` must be a floating dtype (float32, float64), "
                         f"but {dtype!r} was passed.")
    return resolved


def checkpoint_rows(dataset: HSIDataset) -> list[tuple[int, NDArray[np.intp]]]:
    """Scenario indices of each checkpoint, checkpoints in order of first appearance."""
    steps = np.asarray(dataset.steps)
    values, first = np.unique(steps, return_index=True)
    return [(int(values[i]), np.flatnonzero(steps == values[i])) for i in np.argsort(first, kind="stable")]


def scenario_values(value: ArrayLike, param: str, dataset: HSIDataset, dtype: type[np.number[Any]], *,
                    per_slot: bool = False) -> NDArray[Any]:
    """``value`` as ``dtype``, checked to hold one entry per scenario (S,), or per entity slot (S, V).

    An integer ``dtype`` accepts integers only; a floating one any real numbers.
    """
    shape = (dataset.n_scenarios, dataset.n_slots) if per_slot else (dataset.n_scenarios,)
    integer = np.issubdtype(dtype, np.integer)
    array = np.asarray(value)
    if array.dtype.kind not in ("iu" if integer else "iuf") or array.shape != shape:
        dims = "(S, V)" if per_slot else "(S,)"
        raise HSIDataError(f"The value for `{param}` must be {'an integer' if integer else 'a real'} array of "
                           f"shape {dims} = {shape}, but an array of dtype {array.dtype} and shape "
                           f"{array.shape} was passed.")
    return array.astype(dtype)


def episode_ids_of(value: ArrayLike | None, dataset: HSIDataset) -> NDArray[np.int64]:
    """The checked ``episode_ids``; by default the dataset's groups, numbered as in ``group_codes``."""
    if value is None:
        return dataset.group_codes.astype(np.int64)
    return scenario_values(value, "episode_ids", dataset, np.int64)


def features_by_slot(dataset: HSIDataset, rows: NDArray[np.intp] | int) -> dict[str, NDArray[Any]]:
    """Semantic features of some scenarios (or one) in slot order, with the ``valid`` mask."""
    out = {name: np.array(dataset.features[name][rows]) for name in dataset.feature_names}
    out["valid"] = np.array(dataset.mask[rows])
    return out
