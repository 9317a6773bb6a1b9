"""Reader and writer of the two-directory driving logs: feature logs plus attention files.

A feature directory holds ``attention_log_{step:08d}.pkl`` files (semantic features per object id),
an attention directory holds ``attention_scenario_{i:04d}.pkl`` files (raw attention per token).
:func:`load_logs` pairs them, reduces token attention to per-entity attention, aligns attention
slots to feature columns and returns one :class:`~hsi_stats.data.HSIDataset`; :func:`write_logs`
writes a dataset in that layout, with the token layout of the attention files.

It must never skip a file silently, never pair or align by assumption without a warning and a note
on the dataset, never unpickle except through :func:`~hsi_stats.io.safe_pickle.safe_load_pickle`,
and never write anything the safe loader would refuse.

Why it is longer than the other modules (about 600 lines): this format is the most involved one (two
directories, pairing by step or by order, the token layout, the object-id alignment, episode groups), and it
is read and written here, in one place, so that a change to the format cannot reach one side only. Its shared,
format-free helpers live in :mod:`hsi_stats.io._common`.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

from .._validation import (
    DataAlignmentWarning,
    HSIDataError,
    OptionError,
    check_choice,
    check_int,
    normalize_rng,
)
from ..data import HSIDataset
from ._common import (
    Block,
    assemble,
    check_dataset,
    check_float_dtype,
    checkpoint_rows,
    dump_pickle,
    entity_attention,
    episode_ids_of,
    features_by_slot,
    list_files,
    numeric_array,
    require_int,
    require_key,
    require_mapping,
    scenario_values,
    select_attention_keys,
    split_semantic,
    token_weights,
)
from .safe_pickle import safe_load_pickle
from .shards import ShardedDataset, check_alike, shard_of
from .shards import no_loader as _no_loader

__all__ = ["RawLogPair", "load_logs", "load_logs_with_raw", "scan_logs", "write_logs"]

FEATURE_PATTERN = "attention_log_*.pkl"
ATTENTION_PATTERN = "attention_scenario_*.pkl"

NO_OBJECT_IDS_NOTE = ("alignment of attention slots to feature object ids was assumed "
                      "(no object_ids)")
ORDER_NOTE = ("pairing by sorted order was assumed: the i-th feature log was matched with the "
              "i-th attention file, both sorted by file name; if the two folders do not hold the same "
              "checkpoints in the same order, features are paired with another checkpoint's attention and "
              "every number is wrong")
NO_EPISODES_NOTE = "each feature log was taken as one group (no episode_ids)"

WRITTEN_ATTENTION_KEY = "other_traj/cross_attn_0"
N_ROADGRAPH_TOKENS = 16

_SEMANTIC_DIMS = "(n_samples, n_obj) or (n_obj,)"


# ------------------------------------------------------------------------------ feature logs
@dataclass(frozen=True)
class _FeatureLog:
    path: Path
    step: int
    raw_shape: tuple[int, ...]  # shape of the semantic features as stored, for messages
    mask: NDArray[np.bool_]  # (n_samples, n_obj)
    features: dict[str, NDArray[np.float64]]  # name -> (n_samples, n_obj)
    token_boundaries: Mapping[Any, Any]
    object_ids: NDArray[np.int64] | None  # (n_samples, V)
    episode_ids: NDArray[Any] | None  # (n_samples,)
    raw: Mapping[Any, Any]  # the log as stored

    @property
    def n_samples(self) -> int:
        return int(self.mask.shape[0])


def _object_id_array(value: Any, source: str) -> NDArray[np.int64]:
    ids = numeric_array(value, "object_ids", source)
    if ids.dtype.kind not in "iu" or ids.ndim not in (1, 2):
        raise HSIDataError(f"{source}: `object_ids` must be an integer array of shape "
                           f"(n_samples, V), but it has dtype {ids.dtype} and shape {ids.shape}.")
    return (ids.reshape(1, -1) if ids.ndim == 1 else ids).astype(np.int64)


def _episode_ids(value: Any, n_samples: int, source: str) -> NDArray[Any] | None:
    if value is None:
        return None
    episodes = np.asarray(value).reshape(-1)
    if episodes.shape[0] != n_samples:
        raise HSIDataError(f"{source}: `episode_ids` must have one entry per sample (n_samples = "
                           f"{n_samples}), but it has {episodes.shape[0]}.")
    return episodes


def _read_feature_log(path: Path, trust_pickle: bool) -> _FeatureLog:
    source = str(path)
    content = safe_load_pickle(path, trust_pickle=trust_pickle)
    log = require_mapping(content, "a feature log", source)
    step = require_int(require_key(log, "step", source), "step", source)
    mask, features = split_semantic(require_key(log, "semantic_features", source), source,
                                     ndims=(1, 2), dims=_SEMANTIC_DIMS)
    raw_shape = mask.shape
    if mask.ndim == 1:  # a single sample
        mask = mask[None, :]
        features = {name: values[None, :] for name, values in features.items()}
    boundaries = require_mapping(log.get("token_boundaries", {}), "`token_boundaries`", source)
    raw_ids = log.get("object_ids")
    object_ids = None if raw_ids is None else _object_id_array(raw_ids, source)
    episodes = _episode_ids(log.get("episode_ids"), mask.shape[0], source)
    return _FeatureLog(path, step, raw_shape, mask, features, boundaries, object_ids, episodes, log)


def _check_unique_steps(logs: Sequence[_LogRef]) -> None:
    seen: dict[int, Path] = {}
    for log in logs:
        if log.step in seen:
            raise HSIDataError(f"feature logs {seen[log.step]} and {log.path} both have step "
                               f"{log.step}; each step must have one feature log.")
        seen[log.step] = log.path


# ------------------------------------------------------------------------------ attention
def _read_attention_file(path: Path, trust_pickle: bool) -> Mapping[Any, Any]:
    source = str(path)
    content = safe_load_pickle(path, trust_pickle=trust_pickle)
    attention = require_mapping(content, "an attention file", source)
    weights = require_key(attention, "attention_weights", source)
    require_mapping(weights, "`attention_weights`", source)
    return attention


def _entity_attention(
    raw: Any, key: str, n_slots: int, log: _FeatureLog, path: Path
) -> NDArray[np.float64]:
    """Per-entity attention of one layer of an attention file: (n_samples, H, V)."""
    source, field = str(path), f"attention_weights[{key!r}]"
    weights = token_weights(raw, field, source)
    if weights.shape[0] != log.n_samples:
        raise HSIDataError(f"{source}: `{field}` has shape {weights.shape} (n_samples = "
                           f"{weights.shape[0]}), but the paired feature log {log.path} has "
                           f"semantic features of shape {log.raw_shape} (n_samples = "
                           f"{log.n_samples}).")
    return entity_attention(weights, key, n_slots, log.token_boundaries, str(log.path), source)


def _pair_object_ids(
    log: _FeatureLog, content: Mapping[Any, Any], path: Path
) -> NDArray[np.int64] | None:
    """The object-id map of a pair (from either file; both must agree), checked against it."""
    raw = content.get("object_ids")
    att_ids = None if raw is None else _object_id_array(raw, str(path))
    if (log.object_ids is not None and att_ids is not None
            and not np.array_equal(log.object_ids, att_ids)):
        raise HSIDataError(f"{log.path} and {path} both carry `object_ids`, but they disagree "
                           f"(shapes {log.object_ids.shape} and {att_ids.shape}).")
    ids, source = (log.object_ids, log.path) if log.object_ids is not None else (att_ids, path)
    if ids is None:
        return None
    n_obj = log.mask.shape[1]
    if ids.shape[0] != log.n_samples:
        raise HSIDataError(f"{source}: `object_ids` has shape {ids.shape}, but the feature log "
                           f"{log.path} has n_samples = {log.n_samples}.")
    if ids.size and (ids.min() < -1 or ids.max() >= n_obj):
        raise HSIDataError(f"{source}: `object_ids` must lie in [-1, {n_obj - 1}] (-1 = empty "
                           f"slot, else a column of the semantic features), but it holds values "
                           f"from {ids.min()} to {ids.max()}.")
    return ids


def _align(
    log: _FeatureLog, ids: NDArray[np.int64] | None
) -> tuple[NDArray[np.bool_], dict[str, NDArray[np.float64]]]:
    """Features and mask per attention slot: column ``ids[s, v]`` (NaN and invalid when -1)."""
    if ids is None:
        return log.mask, log.features
    empty = ids < 0
    columns = np.where(empty, 0, ids)
    mask = np.take_along_axis(log.mask, columns, axis=1) & ~empty
    features = {name: np.where(empty, np.nan, np.take_along_axis(values, columns, axis=1))
                for name, values in log.features.items()}
    return mask, features


def _group_labels(log: _FeatureLog) -> NDArray[np.str_]:
    if log.episode_ids is None:
        return np.full(log.n_samples, str(log.step))
    return np.char.add(f"{log.step}/", log.episode_ids.astype(str))


def _pair_block(
    log: _FeatureLog, path: Path, content: Mapping[Any, Any], attention_key: str
) -> tuple[Block, bool]:
    """One feature log and its attention file as a block, and whether object ids aligned them."""
    weights = content["attention_weights"]
    keys = select_attention_keys(weights, attention_key, str(path))
    ids = _pair_object_ids(log, content, path)
    n_slots = log.mask.shape[1] if ids is None else ids.shape[1]
    layers = [_entity_attention(weights[key], key, n_slots, log, path) for key in keys]
    mask, features = _align(log, ids)
    heads = tuple(f"{key}:h{h}" for key, layer in zip(keys, layers, strict=True)
                  for h in range(layer.shape[1]))
    block = Block(source=f"{log.path} + {path}", step=log.step,
                   attention=np.concatenate(layers, axis=1), features=features, mask=mask,
                   groups=_group_labels(log), head_names=heads)
    return block, ids is not None


# ------------------------------------------------------------------------------ pairing
def _pairs_by_step(
    logs: Sequence[_LogRef], attention_files: Sequence[Path],
    in_range: Callable[[int], bool], trust_pickle: bool,
) -> Iterator[tuple[_LogRef, Path, Mapping[Any, Any]]]:
    """Yield each feature log with the attention file of its step, one attention file at a time."""
    by_step = {log.step: log for log in logs}
    seen: dict[int, Path] = {}
    for path in attention_files:
        content = _read_attention_file(path, trust_pickle)
        if content.get("step") is None:
            raise HSIDataError(f"{path}: pair_by='step' needs a `step` field in every attention "
                               f"file, but this one has none (fields: "
                               f"{sorted(map(str, content))}); pass pair_by='order' to pair "
                               f"files by sorted name instead.")
        step = require_int(content["step"], "step", str(path))
        if step in seen:
            raise HSIDataError(f"attention files {seen[step]} and {path} both have step {step}; "
                               f"each step must have one attention file.")
        seen[step] = path
        if not in_range(step):
            continue
        if step not in by_step:
            raise HSIDataError(f"{path}: the attention file of step {step} has no feature log of "
                               f"that step (feature log steps: {sorted(by_step)}).")
        yield by_step[step], path, content
    for log in logs:
        if log.step not in seen:
            raise HSIDataError(f"{log.path}: the feature log of step {log.step} has no attention "
                               f"file of that step (attention file steps: {sorted(seen)}).")


def _pairs_by_order(
    logs: Sequence[_LogRef], keep: Sequence[bool], attention_files: Sequence[Path],
    trust_pickle: bool,
) -> Iterator[tuple[_LogRef, Path, Mapping[Any, Any]]]:
    """Yield the i-th feature log with the i-th attention file, reading only kept partners."""
    for log, kept, path in zip(logs, keep, attention_files, strict=True):
        if not kept:
            continue
        content = _read_attention_file(path, trust_pickle)
        step = content.get("step")
        if step is not None and require_int(step, "step", str(path)) != log.step:
            raise HSIDataError(f"pair_by='order' paired {log.path} (step {log.step}) with {path} "
                               f"(step {step}), whose steps disagree; use pair_by='step'.")
        yield log, path, content


def _load_logs_iv(
    pair_by: str, step_range: tuple[int, int] | None, attention_key: str
) -> tuple[str, Callable[[int], bool]]:
    pair_by = check_choice("pair_by", pair_by, ("auto", "step", "order"))
    if not isinstance(attention_key, str) or not attention_key:
        raise OptionError(f"The value for `attention_key` must be a non-empty string such as "
                         f"'other_traj' or 'other_traj/cross_attn_0', but {attention_key!r} was "
                         f"passed.")
    if step_range is None:
        return pair_by, lambda step: True
    if (not isinstance(step_range, Sequence) or len(step_range) != 2
            or not all(isinstance(b, (int, np.integer)) and not isinstance(b, bool)
                       for b in step_range)
            or step_range[0] > step_range[1]):
        raise OptionError(f"The value for `step_range` must be None or a pair (lo, hi) of integers "
                         f"with lo <= hi, but {step_range!r} was passed.")
    lo, hi = int(step_range[0]), int(step_range[1])
    return pair_by, lambda step: lo <= step <= hi


def load_logs(
    feature_dir: str | os.PathLike[str],
    attention_dir: str | os.PathLike[str],
    *,
    pair_by: str = "auto",
    step_range: tuple[int, int] | None = None,
    attention_key: str = "other_traj",
    trust_pickle: bool = False,
) -> HSIDataset:
    """Read a feature-log directory and an attention directory into one :class:`HSIDataset`.

    Parameters
    ----------
    feature_dir : str or path-like
        Directory of feature logs ``attention_log_{step:08d}.pkl``. Each is a dict with

        - ``step`` (int): the training step (checkpoint);
        - ``semantic_features``: dict name -> float array (n_samples, n_obj), or (n_obj,) for a
          single sample, indexed by object id. A boolean entry ``valid`` of the same shape is the
          mask, not a feature. Every entry must be a numeric array of that shape;
        - ``token_boundaries``: dict module -> (start, end) token range, such as
          ``{"sdc_traj": (0, 5), "other_traj": (5, 45)}``;
        - ``config``: dict (informational, not read);
        - optional ``episode_ids`` (n_samples,): the episodes, which become the resampling groups
          (labelled ``"{step}/{episode_id}"``). Without them each feature log is one group
          (labelled ``"{step}"``) and a note says so;
        - optional ``object_ids`` (n_samples, V) int: the feature column holding the entity in
          attention slot v of sample s; -1 marks an empty slot (masked out).
    attention_dir : str or path-like
        Directory of attention files ``attention_scenario_{i:04d}.pkl``. Each is a dict with
        ``attention_weights``: dict key (``"other_traj/cross_attn_0"``, ...) -> float array
        (n_samples, n_latents, n_tokens, n_heads); optionally ``step`` (int, the checkpoint) and
        ``object_ids`` (as above; when both files of a pair carry them they must agree).
    pair_by : {"auto", "step", "order"}, default "auto"
        ``"step"`` pairs each feature log with the attention file of the same ``step``.
        ``"order"`` pairs the i-th feature log with the i-th attention file, both sorted by file
        name, with a :class:`DataAlignmentWarning` and a note on the dataset. ``"auto"`` pairs by
        step when the attention files carry one (the first file decides; a later file without
        one is then an error) and by order, with the warning, when they do not (the original
        logs).
    step_range : (int, int), optional
        Keep only logs whose step lies in ``[lo, hi]`` (inclusive).
    attention_key : str, default "other_traj"
        A module name selects every layer of that module (``"other_traj"`` selects
        ``other_traj/cross_attn_0``, ``other_traj/cross_attn_1``, ...); a key containing ``/``
        selects that layer only. Each selected layer contributes its own heads, named
        ``"{key}:h{n}"``, layers in sorted key order.
    trust_pickle : bool, default False
        Passed to :func:`~hsi_stats.io.safe_pickle.safe_load_pickle`: by default only plain data
        is unpickled.

    Returns
    -------
    HSIDataset
        ``attention`` (N, H, V), ``features`` name -> (N, V), ``mask``, ``groups``, ``steps``
        (each sample gets its log's step) and ``head_names``, concatenated over logs in step order.

    Raises
    ------
    HSIDataError
        On a missing or empty directory, a pair that cannot be matched, shapes that disagree, an
        unknown ``attention_key`` or an empty ``step_range`` selection; the message names the
        file(s) and the field.

    Warns
    -----
    DataAlignmentWarning
        Once when files were paired by sorted order; once when a pair has no ``object_ids`` and
        attention slot v was taken to be feature column v.

    Notes
    -----
    Entity tokens are entity-major (token = v * T_obs + t). When the module's
    ``token_boundaries`` range does not span all n_tokens, tokens ``[start:end]`` are the entity
    tokens. V is the number of objects (n_obj, or the second dimension of ``object_ids``) and
    T_obs = n_entity_tokens / V must be an integer. The attention head h puts on entity v is the
    sum over latents and over the entity's T_obs tokens.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> import numpy as np
    >>> root = tempfile.mkdtemp()
    >>> feat, att = os.path.join(root, "feat"), os.path.join(root, "att")
    >>> os.makedirs(feat); os.makedirs(att)
    >>> log = {"step": 100, "semantic_features": {"ttc": np.arange(6.0).reshape(2, 3)},
    ...        "token_boundaries": {"other_traj": (0, 6)}, "config": {},
    ...        "object_ids": np.array([[0, 1, 2], [2, 1, 0]])}
    >>> weights = {"other_traj/cross_attn_0": np.ones((2, 4, 6, 2), dtype=np.float32)}
    >>> with open(os.path.join(feat, "attention_log_00000100.pkl"), "wb") as f:
    ...     pickle.dump(log, f)
    >>> with open(os.path.join(att, "attention_scenario_0000.pkl"), "wb") as f:
    ...     pickle.dump({"step": 100, "attention_weights": weights}, f)
    >>> ds = load_logs(feat, att)
    >>> ds.attention.shape, ds.head_names[1], ds.features["ttc"][1].tolist()
    ((2, 2, 3), 'other_traj/cross_attn_0:h1', [5.0, 4.0, 3.0])
    """
    dataset, _ = _load_logs(feature_dir, attention_dir, pair_by=pair_by, step_range=step_range,
                            attention_key=attention_key, trust_pickle=trust_pickle)
    return dataset


@dataclass(frozen=True)
class RawLogPair:
    """One paired feature log and attention file as read from disk (plain data, safely unpickled)."""

    step: int
    feature_path: Path
    attention_path: Path
    feature_log: Mapping[Any, Any]  # the feature log's dict: step, semantic_features, token_boundaries, config...
    attention: Mapping[Any, Any]  # the attention file's dict: attention_weights, optional step and object_ids


def load_logs_with_raw(
    feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], **options: Any
) -> tuple[HSIDataset, list[RawLogPair]]:
    """:func:`load_logs` (same ``options``), also returning each pair's file contents in step order.

    Every file is read once; the pairs are the ones :func:`load_logs` pairs (same checks, warnings and notes).
    For readers that need the logs as stored as well as the dataset, such as :mod:`hsi_stats.compat`.
    """
    return _load_logs(feature_dir, attention_dir, keep_raw=True, **options)


@dataclass(frozen=True)
class _LogRef:
    """What pairing needs of a feature log: its file, its step and whether it names its episodes."""

    path: Path
    step: int
    has_episodes: bool


@dataclass(frozen=True)
class _Pairing:
    """The pairs of a log folder (in pairing order), how they were paired, and the kept feature logs."""

    pair_by: str
    kept: list[_LogRef]
    pairs: Iterator[tuple[_LogRef, Path, Mapping[Any, Any]]]


def _pairing(
    feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], *, pair_by: str,
    step_range: tuple[int, int] | None, attention_key: str, trust_pickle: bool,
    held: dict[Path, _FeatureLog] | None,
) -> _Pairing:
    """Check the options and the folders and pair the files. Feature logs are read once here and kept in
    ``held`` when it is given (an in-memory load), else dropped after their step is known (a scan)."""
    pair_by, in_range = _load_logs_iv(pair_by, step_range, attention_key)
    feature_files = list_files(feature_dir, FEATURE_PATTERN, "feature_dir")
    attention_files = list_files(attention_dir, ATTENTION_PATTERN, "attention_dir")
    if pair_by == "auto":
        first = _read_attention_file(attention_files[0], trust_pickle)
        pair_by = "step" if first.get("step") is not None else "order"
    if pair_by == "order" and len(feature_files) != len(attention_files):
        raise HSIDataError(f"pair_by='order' needs as many attention files as feature logs, but "
                           f"{feature_dir} has {len(feature_files)} files matching "
                           f"{FEATURE_PATTERN!r} and {attention_dir} has {len(attention_files)} "
                           f"matching {ATTENTION_PATTERN!r}.")
    refs = []
    for path in feature_files:
        log = _read_feature_log(path, trust_pickle)
        refs.append(_LogRef(path, log.step, log.episode_ids is not None))
        if held is not None:
            held[path] = log
    _check_unique_steps(refs)
    keep = [in_range(ref.step) for ref in refs]
    if not any(keep):
        raise HSIDataError(f"{feature_dir}: no feature log has a step in "
                           f"step_range={step_range!r} (steps found: "
                           f"{sorted(ref.step for ref in refs)}).")
    kept = [ref for ref, k in zip(refs, keep, strict=True) if k]
    if pair_by == "order":
        return _Pairing(pair_by, kept, _pairs_by_order(refs, keep, attention_files, trust_pickle))
    return _Pairing(pair_by, kept, _pairs_by_step(kept, attention_files, in_range, trust_pickle))


def _load_logs(
    feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], *, pair_by: str = "auto",
    step_range: tuple[int, int] | None = None, attention_key: str = "other_traj", trust_pickle: bool = False,
    keep_raw: bool = False,
) -> tuple[HSIDataset, list[RawLogPair]]:
    held: dict[Path, _FeatureLog] = {}
    pairing = _pairing(feature_dir, attention_dir, pair_by=pair_by, step_range=step_range,
                       attention_key=attention_key, trust_pickle=trust_pickle, held=held)
    results, raw = [], []
    for ref, path, content in pairing.pairs:
        log = held[ref.path]
        results.append(_pair_block(log, path, content, attention_key))
        if keep_raw:
            raw.append(RawLogPair(log.step, log.path, path, log.raw, content))
    aligned = [by_ids for _, by_ids in results]
    dataset = assemble([block for block, _ in results], _notes(pairing.pair_by, aligned, pairing.kept))
    _warn_assumptions(pairing.pair_by, aligned)
    return dataset, sorted(raw, key=lambda pair: pair.step)


def _load_pair(feature_path: Path, attention_path: Path, attention_key: str, trust_pickle: bool,
               notes: Sequence[str] = ()) -> HSIDataset:
    """One feature log and its attention file, paired by :func:`scan_logs`, as a dataset with the notes of the
    whole scan (a shard's loader)."""
    log = _read_feature_log(feature_path, trust_pickle)
    content = _read_attention_file(attention_path, trust_pickle)
    block, _ = _pair_block(log, attention_path, content, attention_key)
    return assemble([block], notes=notes)


def scan_logs(
    feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], *, pair_by: str = "auto",
    step_range: tuple[int, int] | None = None, attention_key: str = "other_traj", trust_pickle: bool = False,
) -> ShardedDataset:
    """The logs :func:`load_logs` reads (same options, checks, warnings and notes) as a lazy data set whose shards
    are the file pairs, in step order: each pair is read here once, for its metadata, and again by every
    reduction, so memory holds one pair at a time. See :func:`hsi_stats.io.scan`.
    """
    pairing = _pairing(feature_dir, attention_dir, pair_by=pair_by, step_range=step_range,
                       attention_key=attention_key, trust_pickle=trust_pickle, held=None)
    described, aligned = [], []  # (step, the pair's files, its dataset's metadata)
    for ref, path, content in pairing.pairs:
        block, by_ids = _pair_block(_read_feature_log(ref.path, trust_pickle), path, content, attention_key)
        described.append((block.step, (ref.path, path), shard_of(assemble([block], notes=()), block.source,
                                                                 (ref.path, path), _no_loader)))
        aligned.append(by_ids)
    described.sort(key=lambda item: item[0])  # as load_logs concatenates them: in (stable) step order
    notes = tuple(_notes(pairing.pair_by, aligned, pairing.kept))
    shards = [replace(shard, notes=notes, load=functools.partial(_load_pair, *files, attention_key, trust_pickle,
                                                                 notes)) for _, files, shard in described]
    check_alike(shards)
    _warn_assumptions(pairing.pair_by, aligned)
    return ShardedDataset(shards)


def _notes(pair_by: str, aligned: Sequence[bool], logs: Sequence[_LogRef]) -> list[str]:
    notes = []
    if pair_by == "order":
        notes.append(ORDER_NOTE)
    if not all(aligned):
        notes.append(NO_OBJECT_IDS_NOTE)
    if not all(log.has_episodes for log in logs):
        notes.append(NO_EPISODES_NOTE)
    return notes


def _warn_assumptions(pair_by: str, aligned: Sequence[bool]) -> None:
    # Warned only once the data loaded, so that an error is never hidden behind a warning;
    # stacklevel=4 points at the caller of load_logs (or of load_logs_with_raw).
    if pair_by == "order":
        warnings.warn(f"{ORDER_NOTE}; pass pair_by='step' when the attention files carry `step`.",
                      DataAlignmentWarning, stacklevel=4)
    if not all(aligned):
        warnings.warn(f"{NO_OBJECT_IDS_NOTE}: in {list(aligned).count(False)} of {len(aligned)} "
                      f"file pairs attention slot v was taken to be column v of the semantic "
                      f"features.", DataAlignmentWarning, stacklevel=4)


# ------------------------------------------------------------------------------ writer
def _check_object_ids(value: ArrayLike, dataset: HSIDataset) -> NDArray[np.int64]:
    """The object-id map, checked to give each entity a feature column of its own (-1: an empty slot)."""
    ids = scenario_values(value, "object_ids", dataset, np.int64, per_slot=True)
    ordered = np.sort(ids, axis=1)
    repeated = int(((ordered[:, 1:] == ordered[:, :-1]) & (ordered[:, 1:] >= 0)).sum())
    valid_empty = int((dataset.mask & (ids < 0)).sum())
    if ids.min() < -1 or ids.max() >= dataset.n_slots or repeated or valid_empty:
        raise HSIDataError(f"The value for `object_ids` must give the entities of each scenario distinct columns "
                           f"in [0, {dataset.n_slots - 1}], or -1 where `mask` is False, but values from "
                           f"{ids.min()} to {ids.max()}, {repeated} repeated and {valid_empty} valid entities "
                           f"at -1 were passed.")
    return ids


def _by_object(by_slot: Mapping[str, NDArray[Any]], ids: NDArray[np.int64]) -> dict[str, NDArray[Any]]:
    """Entries in slot order moved to the column of each slot's object id; 0 (False) elsewhere."""
    sample, slot = np.nonzero(ids >= 0)
    column = ids[sample, slot]
    out = {}
    for name, values in by_slot.items():
        out[name] = np.zeros_like(values)
        out[name][sample, column] = values[sample, slot]
    return out


def _token_boundaries(n_obj: int, t_obs: int) -> dict[str, tuple[int, int]]:
    other_end = t_obs + n_obj * t_obs
    return {"sdc_traj": (0, t_obs), "other_traj": (t_obs, other_end),
            "roadgraph": (other_end, other_end + N_ROADGRAPH_TOKENS)}


def _split_attention(attention: NDArray[np.float64], n_latents: int, t_obs: int,
                     rng: np.random.Generator) -> NDArray[np.float64]:
    """Spread (n, H, V) entity attention over latents and tokens: (n, n_latents, n_tokens, H).

    Each entity's mass is split over the latents and its ``t_obs`` tokens (entity-major) with
    random positive weights summing to one, so that summing them gives the entity's attention
    back; the sdc and roadgraph tokens get a small positive mass of their own.
    """
    n, n_heads, n_obj = attention.shape
    weights = rng.uniform(0.2, 1.0, size=(n, n_latents, n_obj, t_obs, n_heads))
    weights /= weights.sum(axis=(1, 3), keepdims=True)
    entity = weights * attention.transpose(0, 2, 1)[:, None, :, None, :]
    entity = entity.reshape(n, n_latents, n_obj * t_obs, n_heads)
    sdc = rng.uniform(0.0, 1e-3, size=(n, n_latents, t_obs, n_heads))
    road = rng.uniform(0.0, 1e-3, size=(n, n_latents, N_ROADGRAPH_TOKENS, n_heads))
    return np.concatenate([sdc, entity, road], axis=2)


def write_logs(
    dataset: HSIDataset, feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], *,
    object_ids: ArrayLike | None = None, episode_ids: ArrayLike | None = None, n_latents: int = 4,
    t_obs: int = 5, dtype: DTypeLike = np.float32, include_steps: bool = True, rng: object = None,
) -> None:
    """Write ``dataset`` as two-directory driving logs that :func:`load_logs` reads back.

    The i-th checkpoint (distinct ``dataset.steps``, in order of first appearance) gets a feature log
    ``feature_dir/attention_log_{step:08d}.pkl`` (the fields :func:`load_logs` lists; features in
    float64, indexed by object id when ``object_ids`` is given, else in slot order) and an
    attention file ``attention_dir/attention_scenario_{i:04d}.pkl`` (``"other_traj/cross_attn_0"``).
    Its tokens are ``t_obs`` sdc tokens, then ``V * t_obs`` entity tokens (token
    ``t_obs + v * t_obs + t``), then 16 roadgraph tokens; each entity's attention is split over the
    latents and its tokens by random positive weights summing to one, and the other tokens get a
    small mass of their own. Files are plain pickles (protocol 4), written atomically.

    Parameters
    ----------
    dataset : HSIDataset
        The scenarios to write; must have ``steps``.
    feature_dir, attention_dir : str or path-like
        Output folders, created when missing.
    object_ids : array_like of int, shape (S, V), optional
        Feature column (object id) of the entity in each slot, distinct within a scenario; -1 marks
        an empty slot (``mask`` False). Default: no map, features in slot order.
    episode_ids : array_like of int, shape (S,), optional
        Episode of each scenario (:func:`load_logs` groups by step and episode). Default: the
        dataset's groups, numbered as in :attr:`~hsi_stats.data.HSIDataset.group_codes`.
    n_latents : int, default 4
        Latent queries of the encoder.
    t_obs : int, default 5
        Observed time steps (tokens) per entity.
    dtype : floating dtype, default float32
        dtype of the attention arrays.
    include_steps : bool, default True
        Write ``step`` into the attention files (without it they pair by sorted order only).
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness of the split over latents and tokens, drawn checkpoint by checkpoint.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset, load_logs
    >>> ds = HSIDataset(np.full((4, 2, 3), 1 / 3), {"ttc": np.arange(12.0).reshape(4, 3)}, steps=[1, 1, 2, 2])
    >>> feat, att = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> write_logs(ds, feat, att, object_ids=np.tile([2, 0, 1], (4, 1)), rng=0)
    >>> back = load_logs(feat, att)
    >>> back.features["ttc"][1].tolist(), bool(np.allclose(back.attention, ds.attention))
    ([3.0, 4.0, 5.0], True)
    """
    dataset = check_dataset(dataset)
    latents, tokens = check_int("n_latents", n_latents, 1), check_int("t_obs", t_obs, 1)
    resolved = check_float_dtype(dtype)
    generator = normalize_rng(rng)
    ids = None if object_ids is None else _check_object_ids(object_ids, dataset)
    episodes = episode_ids_of(episode_ids, dataset)
    for index, (step, rows) in enumerate(checkpoint_rows(dataset)):
        by_slot = features_by_slot(dataset, rows)
        log: dict[str, Any] = {
            "step": step,
            "semantic_features": by_slot if ids is None else _by_object(by_slot, ids[rows]),
            "token_boundaries": _token_boundaries(dataset.n_slots, tokens),
            "config": {"num_objects": dataset.n_slots, "obs_past_num_steps": tokens, "n_latents": latents},
            "episode_ids": episodes[rows],
        }
        if ids is not None:
            log["object_ids"] = ids[rows]
        weights = _split_attention(dataset.attention[rows], latents, tokens, generator)
        attention: dict[str, Any] = {"attention_weights": {WRITTEN_ATTENTION_KEY: weights.astype(resolved)}}
        if include_steps:
            attention["step"] = step
        dump_pickle(log, Path(feature_dir) / FEATURE_PATTERN.replace("*", f"{step:08d}"))
        dump_pickle(attention, Path(attention_dir) / ATTENTION_PATTERN.replace("*", f"{index:04d}"))
