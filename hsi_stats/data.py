"""The data model: :class:`HSIDataset`, validated at construction and immutable afterwards.

An ``HSIDataset`` holds, for S scenarios, H heads, V entity slots and F features, the attention each head puts on
each entity and the semantic features of the entities. Everything above this layer may assume
the invariants checked here; this module imports numpy only and never computes a statistic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import HSIDataError
from .chunks import chunk_scenarios

__all__ = ["HSIDataset", "step_label"]


def step_label(step: int, names: Mapping[int, str]) -> str:
    """How a training step is shown: its name in ``names`` (e.g. ``"final"``), else its number."""
    return names.get(int(step), str(int(step)))


def _checked_step_names(names: Mapping[int, str] | None, steps: NDArray[np.int64] | None) -> dict[int, str]:
    """``names`` as {int: non-empty str}, every key one of ``steps``."""
    if names is None or len(names) == 0:
        return {}
    if not isinstance(names, Mapping):
        raise HSIDataError(f"`step_names` must be a mapping of training step to name, but {type(names).__name__} "
                           f"was passed.")
    if steps is None:
        raise HSIDataError(f"`step_names` names training steps, but the dataset has no `steps` ({dict(names)!r} "
                           f"was passed).")
    present = set(np.unique(steps).tolist())
    checked = {}
    for step, name in names.items():
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or int(step) not in present:
            raise HSIDataError(f"`step_names` keys must be training steps of the dataset ({sorted(present)}), but "
                               f"{step!r} was passed.")
        if not isinstance(name, str) or not name.strip():
            raise HSIDataError(f"`step_names[{step}]` must be a non-empty string, but {name!r} was passed.")
        checked[int(step)] = name
    if len(set(checked.values())) != len(checked):
        raise HSIDataError(f"`step_names` must give each step its own name, but {checked!r} was passed.")
    return checked


def _frozen(array: NDArray[Any], source: object, copy: bool) -> NDArray[Any]:
    """``array`` (converted from ``source``) as a read-only array the caller cannot change through ``source``.

    It is copied only when it still shares memory with a writeable ``source`` and ``copy`` is True: an array the
    conversion already made, or a read-only input, is kept as it is (a read-only view).
    """
    shared = isinstance(source, np.ndarray) and np.may_share_memory(array, source)
    if copy and shared and array.flags.writeable:
        array = array.copy()
    else:
        array = array.view()
    array.setflags(write=False)
    return array


def _as_float_array(name: str, value: ArrayLike, ndim: int, dims: str) -> NDArray[np.float64]:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise HSIDataError(f"`{name}` must be a numeric array of shape {dims}, but it could not be "
                           f"converted to float ({exc}).") from None
    if array.ndim != ndim:
        raise HSIDataError(f"`{name}` must have shape {dims} ({ndim} dimensions), "
                           f"but it has shape {array.shape}.")
    return array


def _check_shape(name: str, array: NDArray[Any], expected: tuple[int, ...], dims: str) -> None:
    if array.shape != expected:
        raise HSIDataError(f"`{name}` must have shape {dims} = {expected}, but it has shape {array.shape}.")


@dataclass(frozen=True, eq=False)
class HSIDataset:
    """Attention and entity features for S scenarios, H heads, V entity slots and F features.

    Parameters
    ----------
    attention : array_like, shape (S, H, V)
        Attention mass head h puts on entity v in scenario s (already summed over queries and over the
        entity's tokens). Must be finite wherever ``mask`` is True.
    features : mapping of str to array_like, shape (S, V)
        Semantic feature values. ``+-inf`` is allowed (ranked as extreme where the feature is ranked, left out under
        Pearson); NaN marks a missing value, left out for that feature only.
    mask : array_like of bool, shape (S, V), optional
        True where the entity is present and valid. Default: all True.
    groups : array_like, shape (S,), optional
        Independent resampling units (episodes). Any hashable labels. Default: each scenario its own group.
    steps : array_like of int, shape (S,), optional
        Training step (checkpoint) at which each scenario was analysed.
    slots : array_like of int, shape (S, V), optional
        Observation slot each entity occupied, for the slot adjustment.
    head_names : sequence of str, length H, optional
        Default ``h0 .. h{H-1}``.
    notes : sequence of str, optional
        Provenance notes from the loader (for example, that an alignment was assumed); shown in reports.
    step_names : mapping of int to str, optional
        Names under which some training steps are shown (for example ``{200001: "final"}`` for a ``model_final``
        checkpoint placed after the numbered ones); every key must be one of ``steps``. See :meth:`step_label`.
    copy : bool, default True
        Copy a writeable input array, so that changing it afterwards cannot change the dataset. Read-only inputs
        (such as ``np.load(..., mmap_mode="r")``) and inputs of another dtype (converted anyway) are never copied.
        ``copy=False`` keeps every array as a read-only view of the caller's, so the data are held once: the
        caller must then not change them.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ds = HSIDataset(rng.random((5, 2, 4)), {"distance": rng.random((5, 4))})
    >>> ds.n_scenarios, ds.n_heads, ds.n_slots, ds.feature_names
    (5, 2, 4, ('distance',))
    """

    attention: NDArray[np.float64]
    features: Mapping[str, NDArray[np.float64]]
    mask: NDArray[np.bool_]
    groups: NDArray[Any]
    steps: NDArray[np.int64] | None
    slots: NDArray[np.int64] | None
    head_names: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    step_names: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))

    def __init__(
        self,
        attention: ArrayLike,
        features: Mapping[str, ArrayLike],
        *,
        mask: ArrayLike | None = None,
        groups: ArrayLike | None = None,
        steps: ArrayLike | None = None,
        slots: ArrayLike | None = None,
        head_names: Sequence[str] | None = None,
        notes: Sequence[str] = (),
        step_names: Mapping[int, str] | None = None,
        copy: bool = True,
    ) -> None:
        att = _as_float_array("attention", attention, 3, "(S, H, V)")
        n_scen, n_heads, n_slots = att.shape
        if n_scen == 0 or n_heads == 0 or n_slots == 0:
            raise HSIDataError(f"`attention` must be non-empty in every dimension, but it has shape {att.shape}.")

        if not isinstance(features, Mapping) or len(features) == 0:
            raise HSIDataError("`features` must be a non-empty mapping of feature name to an (S, V) array, "
                               f"but {type(features).__name__} of length "
                               f"{len(features) if hasattr(features, '__len__') else '?'} was passed.")
        feats: dict[str, NDArray[np.float64]] = {}
        for name, values in features.items():
            if not isinstance(name, str) or not name:
                raise HSIDataError(f"feature names must be non-empty strings, but {name!r} was passed.")
            arr = _as_float_array(f"features[{name!r}]", values, 2, "(S, V)")
            _check_shape(f"features[{name!r}]", arr, (n_scen, n_slots), "(S, V)")
            feats[name] = _frozen(arr, values, copy)

        if mask is None:
            valid = np.ones((n_scen, n_slots), dtype=bool)
        else:
            raw_mask = np.asarray(mask)
            if raw_mask.dtype != np.bool_:
                if not np.issubdtype(raw_mask.dtype, np.number) or not np.isin(raw_mask, (0, 1)).all():
                    raise HSIDataError(f"`mask` must be boolean (or 0/1) of shape (S, V), but it has dtype "
                                       f"{raw_mask.dtype}.")
            valid = raw_mask.astype(bool, copy=False)
            _check_shape("mask", valid, (n_scen, n_slots), "(S, V)")

        bad = valid[:, None, :] & ~np.isfinite(att)
        if bad.any():
            s, h, v = (int(i[0]) for i in np.nonzero(bad))
            raise HSIDataError(f"`attention` must be finite on every valid entity, but {int(bad.sum())} "
                               f"value(s) are not (first at scenario {s}, head {h}, slot {v}: {att[s, h, v]}).")

        if groups is None:
            group_labels: NDArray[Any] = np.arange(n_scen)
        else:
            group_labels = np.asarray(groups)
            if group_labels.ndim != 1 or group_labels.shape[0] != n_scen:
                raise HSIDataError(f"`groups` must have shape (S,) = ({n_scen},), "
                                   f"but it has shape {group_labels.shape}.")
            if group_labels.dtype == object:
                group_labels = group_labels.astype(str)

        step_array = None
        if steps is not None:
            step_array = np.asarray(steps)
            if step_array.ndim != 1 or step_array.shape[0] != n_scen:
                raise HSIDataError(f"`steps` must have shape (S,) = ({n_scen},), "
                                   f"but it has shape {step_array.shape}.")
            if not np.issubdtype(step_array.dtype, np.integer):
                if not np.issubdtype(step_array.dtype, np.number) or not np.all(step_array == np.round(step_array)):
                    raise HSIDataError(f"`steps` must hold integers, but dtype {step_array.dtype} was passed.")
            step_array = step_array.astype(np.int64, copy=False)

        slot_array = None
        if slots is not None:
            slot_array = np.asarray(slots)
            _check_shape("slots", slot_array, (n_scen, n_slots), "(S, V)")
            if not np.issubdtype(slot_array.dtype, np.integer):
                raise HSIDataError(f"`slots` must hold integers, but dtype {slot_array.dtype} was passed.")
            slot_array = slot_array.astype(np.int64, copy=False)

        if head_names is None:
            names = tuple(f"h{h}" for h in range(n_heads))
        else:
            names = tuple(str(n) for n in head_names)
            if len(names) != n_heads:
                raise HSIDataError(f"`head_names` must have length H = {n_heads}, but it has length {len(names)}.")
        if len(set(names)) != len(names):
            raise HSIDataError(f"`head_names` must be unique, but {names!r} was passed.")

        object.__setattr__(self, "attention", _frozen(att, attention, copy))
        object.__setattr__(self, "features", MappingProxyType(feats))
        object.__setattr__(self, "mask", _frozen(valid, mask, copy))
        object.__setattr__(self, "groups", _frozen(group_labels, groups, copy))
        object.__setattr__(self, "steps", None if step_array is None else _frozen(step_array, steps, copy))
        object.__setattr__(self, "slots", None if slot_array is None else _frozen(slot_array, slots, copy))
        object.__setattr__(self, "head_names", names)
        object.__setattr__(self, "notes", tuple(str(n) for n in notes))
        object.__setattr__(self, "step_names", MappingProxyType(_checked_step_names(step_names, step_array)))

    # ------------------------------------------------------------------ sizes
    @property
    def n_scenarios(self) -> int:
        """Number of scenarios S."""
        return int(self.attention.shape[0])

    @property
    def n_heads(self) -> int:
        """Number of heads H."""
        return int(self.attention.shape[1])

    @property
    def n_slots(self) -> int:
        """Number of entity slots V."""
        return int(self.attention.shape[2])

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Feature names, in order."""
        return tuple(self.features)

    @property
    def n_features(self) -> int:
        """Number of features F."""
        return len(self.features)

    @cached_property
    def group_codes(self) -> NDArray[np.intp]:
        """Integer code 0..G-1 of each scenario's group, in order of first appearance of the sorted labels
        (computed once: a sort of the labels; read-only)."""
        codes = np.unique(self.groups, return_inverse=True)[1].reshape(-1)
        codes.flags.writeable = False
        return codes

    @property
    def n_groups(self) -> int:
        """Number of distinct groups G."""
        codes = self.group_codes
        return int(codes.max()) + 1 if codes.size else 0

    def feature_array(self) -> NDArray[np.float64]:
        """All features stacked as one (S, F, V) array in :attr:`feature_names` order."""
        return np.stack([self.features[name] for name in self.feature_names], axis=1)

    # ------------------------------------------------------------- selection
    def select(
        self,
        *,
        heads: Sequence[str] | Sequence[int] | None = None,
        features: Sequence[str] | None = None,
        step_range: tuple[int, int] | None = None,
        scenarios: ArrayLike | None = None,
    ) -> HSIDataset:
        """Return a new dataset restricted to some heads, features, steps or scenarios.

        Parameters
        ----------
        heads : sequence of str or int, optional
            Head names or indices to keep, in the order given.
        features : sequence of str, optional
            Feature names to keep, in the order given.
        step_range : (int, int), optional
            Keep scenarios whose step lies in ``[start, end]`` (inclusive). Requires ``steps``.
        scenarios : array_like of bool or int, optional
            Boolean mask of length S or indices of scenarios to keep.

        Examples
        --------
        >>> import numpy as np
        >>> ds = HSIDataset(np.ones((4, 3, 2)), {"a": np.zeros((4, 2)), "b": np.ones((4, 2))},
        ...                 steps=[0, 0, 10, 10])
        >>> sub = ds.select(heads=["h2", "h0"], features=["b"], step_range=(5, 10))
        >>> sub.head_names, sub.feature_names, sub.n_scenarios
        (('h2', 'h0'), ('b',), 2)
        """
        head_idx = self._head_indices(heads)
        feat_names = self.feature_names if features is None else tuple(features)
        unknown = [f for f in feat_names if f not in self.features]
        if unknown or not feat_names:
            raise HSIDataError(f"`features` must be a non-empty selection of {list(self.feature_names)}, "
                               f"but {list(feat_names)} was passed.")
        keep = np.ones(self.n_scenarios, dtype=bool)
        if step_range is not None:
            if self.steps is None:
                raise HSIDataError("`step_range` needs a dataset with `steps`, but this one has none.")
            lo, hi = step_range
            keep &= (self.steps >= lo) & (self.steps <= hi)
        if scenarios is not None:
            chosen = np.asarray(scenarios)
            sel = np.zeros(self.n_scenarios, dtype=bool)
            if chosen.dtype == bool:
                _check_shape("scenarios", chosen, (self.n_scenarios,), "(S,)")
                sel = chosen
            else:
                if not np.issubdtype(chosen.dtype, np.integer) or (chosen.size and (
                        chosen.min() < -self.n_scenarios or chosen.max() >= self.n_scenarios)):
                    raise HSIDataError(f"`scenarios` must be a boolean mask of length {self.n_scenarios} or "
                                       f"integer indices in [0, {self.n_scenarios}), but {scenarios!r} was passed.")
                sel[chosen.astype(np.intp)] = True
            keep &= sel
        if not keep.any():
            raise HSIDataError(f"the selection is empty: no scenario matches (step_range={step_range!r}).")
        return HSIDataset(
            self.attention[keep][:, head_idx, :],
            {f: self.features[f][keep] for f in feat_names},
            mask=self.mask[keep],
            groups=self.groups[keep],
            steps=None if self.steps is None else self.steps[keep],
            slots=None if self.slots is None else self.slots[keep],
            head_names=[self.head_names[h] for h in head_idx],
            notes=self.notes,
            step_names=None if self.steps is None else {step: name for step, name in self.step_names.items()
                                                         if np.any(self.steps[keep] == step)},
            copy=False,  # the selection made new arrays: nobody else holds them
        )

    def _head_indices(self, heads: Sequence[str] | Sequence[int] | None) -> list[int]:
        if heads is None:
            return list(range(self.n_heads))
        indices = []
        for head in heads:
            if isinstance(head, str) and head in self.head_names:
                indices.append(self.head_names.index(head))
            elif isinstance(head, (int, np.integer)) and not isinstance(head, bool) and 0 <= head < self.n_heads:
                indices.append(int(head))
            else:
                raise HSIDataError(f"`heads` must name heads among {list(self.head_names)} or index "
                                   f"0..{self.n_heads - 1}, but {head!r} was passed.")
        if not indices:
            raise HSIDataError("`heads` must select at least one head, but an empty selection was passed.")
        return indices

    def with_groups(self, groups: ArrayLike) -> HSIDataset:
        """Return a copy whose resampling units are ``groups`` (shape (S,))."""
        return HSIDataset(self.attention, self.features, mask=self.mask, groups=groups, steps=self.steps,
                          slots=self.slots, head_names=self.head_names, notes=self.notes,
                          step_names=self.step_names)

    def step_label(self, step: int) -> str:
        """How ``step`` is shown: its name in :attr:`step_names`, else its number.

        Examples
        --------
        >>> ds = HSIDataset(np.ones((2, 1, 3)), {"d": np.ones((2, 3))}, steps=[5, 6], step_names={6: "final"})
        >>> ds.step_label(5), ds.step_label(6)
        ('5', 'final')
        """
        return step_label(step, self.step_names)

    # ------------------------------------------------------------- identity
    def fingerprint(self) -> str:
        """SHA-256 of every array and name in the dataset: equal data give equal fingerprints.

        Group labels enter as text, one label at a time, so that equal labels held in string arrays of different
        widths (``<U5`` and ``<U25``) give the same fingerprint.
        """
        digest = hashlib.sha256()
        n_features = len(self.features)
        parts = ((self.attention.shape, lambda part: self.attention[part]),
                 (self.mask.shape, lambda part: self.mask[part]),
                 ((self.n_scenarios, n_features, self.n_slots),
                  lambda part: np.stack([self.features[name][part] for name in self.feature_names], axis=1)),
                 (None if self.steps is None else self.steps.shape, lambda part: self.steps[part]),  # type: ignore[index]
                 (None if self.slots is None else self.slots.shape, lambda part: self.slots[part]))  # type: ignore[index]
        step = chunk_scenarios(self.n_heads, self.n_slots)  # a chunk of scenarios at a time: no full-size copy
        for shape, rows in parts:
            if shape is None:
                digest.update(b"none")
                continue
            digest.update(str(shape).encode())
            for start in range(0, self.n_scenarios, step):
                digest.update(np.ascontiguousarray(rows(slice(start, start + step))).tobytes())
        digest.update("\x00".join(str(label) for label in self.groups.tolist()).encode())
        digest.update("\x00".join((*self.head_names, "|", *self.feature_names)).encode())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (f"HSIDataset(scenarios={self.n_scenarios}, heads={self.n_heads}, slots={self.n_slots}, "
                f"features={list(self.feature_names)}, groups={self.n_groups}, "
                f"steps={'yes' if self.steps is not None else 'no'})")
