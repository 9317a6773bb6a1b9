"""Scenarios in chunks: bounded memory for every reduction of a data set to per-group sums.

Every statistic of an analysis is a function of sums over scenarios, taken per group (episode). The per-scenario
transforms (ranks, centring, one-hot slots, focus targets) make temporaries several times the size of the
attention array; computed a chunk of scenarios at a time, they cost a chunk's worth of memory whatever the size
of the data, and the group totals (G rows) are all that grows. :func:`scenario_chunks` cuts a data set into such
chunks, as views (no copy).

This module knows nothing about estimators or files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from .group_sums import Grouping
from .within import percentile_within

if TYPE_CHECKING:
    from .data import HSIDataset

__all__ = ["CHUNK_VALUES", "Accumulator", "Chunk", "ChunkSource", "EntityCounts", "Fused", "accumulate",
           "chunk_scenarios", "chunks_with_codes", "entities_per_scenario", "entity_summary", "scenario_chunks",
           "slot_onehot", "slot_values"]

#: Attention values (scenarios x heads x slots) per chunk: 2**20 values are 8 MiB of attention.
CHUNK_VALUES = 2**20


@dataclass(frozen=True)
class Chunk:
    """A run of consecutive scenarios of a data set: views of its arrays and the global group codes."""

    attention: NDArray[np.float64]  # (s, H, V)
    features: Mapping[str, NDArray[np.float64]]  # name -> (s, V)
    mask: NDArray[np.bool_]  # (s, V)
    slots: NDArray[np.int64] | None  # (s, V)
    codes: NDArray[np.intp]  # (s,) group codes 0..G-1 of the whole data set
    start: int = 0  # the index of its first scenario in the data set (in the shard, for a shard's chunks)
    _memo: dict[str, tuple[NDArray[np.bool_], NDArray[np.float64]]] = field(default_factory=dict, repr=False,
                                                                          compare=False)

    def percentiles(self, name: str, valid: NDArray[np.bool_]) -> NDArray[np.float64]:
        """Feature ``name``'s within-scenario mid-rank percentiles over the entities ``valid`` (s, V)
        (:func:`hsi_stats.within.percentile_within`), computed once per chunk for the reductions of a pass that
        ask for the same ones."""
        found = self._memo.get(name)
        if found is not None and np.array_equal(found[0], valid):
            return found[1]
        result = percentile_within(self.features[name], valid)
        self._memo[name] = (valid, result)
        return result

    @property
    def n_scenarios(self) -> int:
        return int(self.attention.shape[0])

    def grouping(self) -> Grouping:
        """Sums over this chunk's scenarios per group present (rows in :attr:`Grouping.codes` order)."""
        return Grouping(self.codes)


def chunk_scenarios(n_heads: int, n_slots: int, values: int | None = None) -> int:
    """Scenarios per chunk: ``values`` attention values (default :data:`CHUNK_VALUES`) over H x V, at least 1.

    Examples
    --------
    >>> chunk_scenarios(8, 8)
    16384
    """
    return max(1, (CHUNK_VALUES if values is None else int(values)) // (n_heads * n_slots))


def scenario_chunks(dataset: HSIDataset | ChunkSource, values: int | None = None) -> Iterator[Chunk]:
    """The scenarios of ``dataset`` in order, in chunks of about ``values`` attention values (views, no copy).

    Parameters
    ----------
    dataset : HSIDataset or ChunkSource
        An in-memory data set, or one that yields its own chunks (a sharded data set, :func:`hsi_stats.scan`).
    values : int, optional
        Attention values per chunk (default :data:`CHUNK_VALUES`); a chunk holds at least one scenario.

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset
    >>> ds = HSIDataset(np.ones((5, 2, 3)), {"x": np.zeros((5, 3))}, groups=[0, 0, 1, 1, 2])
    >>> [(chunk.n_scenarios, chunk.codes.tolist()) for chunk in scenario_chunks(ds, values=12)]
    [(2, [0, 0]), (2, [1, 1]), (1, [2])]
    """
    if isinstance(dataset, ChunkSource):
        yield from dataset.chunks(values)
        return
    yield from chunks_with_codes(dataset, dataset.group_codes, values)


def chunks_with_codes(dataset: HSIDataset, codes: NDArray[np.intp], values: int | None = None) -> Iterator[Chunk]:
    """:func:`scenario_chunks` of an in-memory data set whose scenarios carry the group ``codes`` given (S,)."""
    size = chunk_scenarios(dataset.n_heads, dataset.n_slots, values)
    for start in range(0, dataset.n_scenarios, size):
        part = slice(start, start + size)
        # A feature may be a strided view (load_npz keeps the file's (S, F, V) array): a contiguous copy of the
        # chunk's rows costs one pass over them and makes every product of the reductions run at full speed.
        yield Chunk(np.ascontiguousarray(dataset.attention[part]),
                    {name: np.ascontiguousarray(values[part]) for name, values in dataset.features.items()},
                    dataset.mask[part], None if dataset.slots is None else dataset.slots[part], codes[part], start)


@runtime_checkable
class ChunkSource(Protocol):
    """A data set that is not held in memory and yields its scenarios in chunks (:class:`hsi_stats.ShardedDataset`).

    It offers what the analysis reads of an :class:`~hsi_stats.HSIDataset` besides the arrays themselves.
    """

    head_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    n_heads: int
    n_slots: int
    n_features: int
    groups: NDArray[Any]
    steps: NDArray[np.int64] | None
    step_names: Mapping[int, str]
    notes: tuple[str, ...]

    @property
    def n_scenarios(self) -> int: ...

    @property
    def n_groups(self) -> int: ...

    @property
    def group_codes(self) -> NDArray[np.intp]: ...

    def chunks(self, values: int | None = None) -> Iterator[Chunk]:
        """The scenarios in order, in chunks of about ``values`` attention values, with global group codes."""

    def accumulate(self, accumulator: AccumulatorT) -> AccumulatorT:
        """Feed every chunk to ``accumulator`` (here or on a cluster) and return the merged result."""

    def select(self, *, scenarios: NDArray[np.bool_]) -> ChunkSource:
        """The scenarios where ``scenarios`` is True."""

    def with_groups(self, groups: NDArray[Any]) -> ChunkSource:
        """The same scenarios with other group labels."""

    def step_label(self, step: int) -> str:
        """How ``step`` is shown."""

    def sample(self, max_scenarios: int = ...) -> HSIDataset:
        """The first scenarios, in memory (for figures of raw attention values)."""

    def fingerprint(self) -> str:
        """A digest of the data."""


class Accumulator(Protocol):
    """A reduction of the scenarios: fed chunk by chunk (:meth:`add`), combined part by part (:meth:`merge`)."""

    def add(self, chunk: Chunk) -> None:
        """Add the contribution of one chunk."""

    def merge(self, other: Any) -> None:
        """Add the contribution of another part of the data (an accumulator of the same kind)."""


AccumulatorT = TypeVar("AccumulatorT", bound=Accumulator)


class Fused:
    """Several reductions in one pass over the data: each chunk is fed to every part, parts merge part by part.

    Reductions that do not depend on one another's results share the reading and splitting of the data (one
    pass over the shards instead of one per reduction); each part ends as it would alone.
    """

    def __init__(self, parts: list[Any]) -> None:
        self.parts = list(parts)

    def add(self, chunk: Chunk) -> None:
        for part in self.parts:
            part.add(chunk)

    def merge(self, other: Fused) -> None:
        for part, theirs in zip(self.parts, other.parts, strict=True):
            part.merge(theirs)


def accumulate(dataset: HSIDataset | ChunkSource, accumulator: AccumulatorT) -> AccumulatorT:
    """Feed every chunk of ``dataset`` to ``accumulator`` and return it.

    An in-memory data set is reduced here; a chunk source reduces itself (a sharded data set on a Dask cluster
    reduces each shard in its own task and merges the parts).
    """
    if isinstance(dataset, ChunkSource):
        return dataset.accumulate(accumulator)
    for chunk in scenario_chunks(dataset):
        accumulator.add(chunk)
    return accumulator


class _SlotValues:
    def __init__(self) -> None:
        self.found: set[int] = set()

    def add(self, chunk: Chunk) -> None:
        slots = np.arange(chunk.mask.shape[1]) if chunk.slots is None else chunk.slots
        self.found.update(np.unique(slots).tolist())

    def merge(self, other: _SlotValues) -> None:
        self.found |= other.found


def slot_onehot(chunk: Chunk, values: NDArray[np.int64]) -> NDArray[np.float64]:
    """One-hot (s, V, K) of each entity's slot among the distinct slots ``values``; slots default to the column
    index."""
    n_scenarios, n_slots = chunk.mask.shape
    slots = chunk.slots if chunk.slots is not None else np.broadcast_to(np.arange(n_slots), (n_scenarios, n_slots))
    return np.eye(values.size)[np.searchsorted(values, slots)]


def slot_values(dataset: HSIDataset | ChunkSource) -> NDArray[np.int64]:
    """The distinct entity slots (sorted); the column indices when the data have no ``slots``."""
    if not isinstance(dataset, ChunkSource):
        return np.arange(dataset.n_slots) if dataset.slots is None else np.unique(dataset.slots)
    return np.array(sorted(accumulate(dataset, _SlotValues()).found), dtype=np.int64)


class EntityCounts:
    """Valid entities per scenario, summed chunk by chunk (:func:`entities_per_scenario`)."""

    def __init__(self) -> None:
        self.total, self.count, self.low, self.high = 0, 0, np.iinfo(np.int64).max, 0

    def add(self, chunk: Chunk) -> None:
        present = chunk.mask.sum(axis=1)
        self.total += int(present.sum())
        self.count += present.size
        self.low, self.high = min(self.low, int(present.min())), max(self.high, int(present.max()))

    def merge(self, other: EntityCounts) -> None:
        self.total += other.total
        self.count += other.count
        self.low, self.high = min(self.low, other.low), max(self.high, other.high)


def entities_per_scenario(dataset: HSIDataset | ChunkSource) -> dict[str, float]:
    """Valid entities per scenario: ``total``, ``min``, ``mean`` and ``max``."""
    return entity_summary(accumulate(dataset, EntityCounts()))


def entity_summary(counts: EntityCounts) -> dict[str, float]:
    """:func:`entities_per_scenario` from counts already fed every scenario."""
    return {"total": counts.total, "min": counts.low if counts.count else 0,
            "mean": counts.total / max(counts.count, 1), "max": counts.high}
