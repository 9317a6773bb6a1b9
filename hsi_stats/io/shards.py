"""Data sets larger than memory: shards on disk, read one at a time (:func:`scan`, :func:`write_shards`).

Every statistic of an analysis is a function of per-group sums (:mod:`hsi_stats.chunks`), so a data set split
into shards can be reduced shard by shard, holding one shard and the sums at a time. A shard is an ``.npz`` file
(:func:`write_shards`), or one file (or file pair) of the driving formats (:func:`hsi_stats.io.scan`). A scan reads
only the shards' metadata (group labels, steps, names, sizes); :class:`ShardedDataset` then yields the scenarios
shard by shard to :func:`hsi_stats.estimate` and :func:`hsi_stats.analyze`, which give the same numbers as for the
shards concatenated in memory (the same seed: the same intervals and p-values). A group (episode) may span
shards: the group labels are pooled over every shard first.

What needs every scenario at once is refused with a message rather than read whole: the ``pooled`` estimator
(pooled ranks and means) and the permutation schemes (they shuffle entities of every scenario).
"""

from __future__ import annotations

import functools
import glob
import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._validation import HSIDataError
from ..chunks import AccumulatorT, Chunk, chunks_with_codes
from ..data import HSIDataset
from .npz import load_npz, write_npz

__all__ = ["DEFAULT_SAMPLE", "ShardedDataset", "check_alike", "no_loader", "scan_npz", "shard_of", "write_shards"]

#: Scenarios :meth:`ShardedDataset.sample` reads for the figures that show raw attention.
DEFAULT_SAMPLE = 100_000


@dataclass(frozen=True)
class Shard:
    """One shard's metadata and how to load it (a picklable callable, so that a Dask task can run it)."""

    source: str  # named in messages: a file, or a feature log and its attention file
    files: tuple[Path, ...]  # the files it is read from (hashed by the fingerprint)
    load: Callable[[], HSIDataset]
    n_scenarios: int
    n_heads: int
    n_slots: int
    head_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    groups: NDArray[Any]
    steps: NDArray[np.int64] | None
    has_slots: bool
    notes: tuple[str, ...]
    step_names: Mapping[int, str]


@dataclass(frozen=True)
class _Piece:
    """What a task needs to reduce one shard: its loader, its expected shape, which scenarios and their codes."""

    source: str
    load: Callable[[], HSIDataset]
    n_scenarios: int
    head_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    keep: NDArray[np.bool_] | None
    codes: NDArray[np.intp]


def _load_piece(piece: _Piece) -> HSIDataset:
    """One shard, loaded (on whichever process runs this), checked against its scan and restricted to the kept
    scenarios."""
    dataset = piece.load()
    if (dataset.n_scenarios, dataset.head_names, dataset.feature_names) != (
            piece.n_scenarios, piece.head_names, piece.feature_names):
        raise HSIDataError(f"{piece.source}: the shard changed since it was scanned; scan the shards again.")
    return dataset if piece.keep is None else dataset.select(scenarios=piece.keep)


def _reduce_piece(piece: _Piece, accumulator: AccumulatorT) -> AccumulatorT:
    """Feed the chunks of one shard to ``accumulator``."""
    for chunk in chunks_with_codes(_load_piece(piece), piece.codes):
        accumulator.add(chunk)
    return accumulator


def _header_shape(archive: zipfile.ZipFile, name: str, path: Path) -> tuple[int, ...]:
    """The shape of array ``name`` of an ``.npz`` archive, from its header (the array is not read)."""
    try:
        with archive.open(f"{name}.npy") as handle:
            major, _ = np.lib.format.read_magic(handle)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, _ = read_header(handle)
    except (KeyError, ValueError, OSError) as exc:
        raise HSIDataError(f"{path}: cannot read the header of `{name}` ({exc}).") from None
    return tuple(int(n) for n in shape)


def no_loader() -> HSIDataset:
    """The loader of a shard described before its loader is known (replaced before any reduction)."""
    raise HSIDataError("this shard was described without a loader; scan the files again.")


def shard_of(dataset: HSIDataset, source: str, files: Sequence[Path], load: Callable[[], HSIDataset], *,
             notes: Sequence[str] = (), step_names: Mapping[int, str] | None = None) -> Shard:
    """The metadata of a shard read whole once (``dataset``, as ``load`` gives it back), for formats with no
    header to read on its own. ``notes`` and ``step_names`` are the whole data set's."""
    return Shard(
        source=source, files=tuple(files), load=load, n_scenarios=dataset.n_scenarios, n_heads=dataset.n_heads,
        n_slots=dataset.n_slots, head_names=dataset.head_names, feature_names=dataset.feature_names,
        groups=dataset.groups, steps=dataset.steps, has_slots=dataset.slots is not None, notes=tuple(notes),
        step_names=dict(step_names or dataset.step_names))


def _read_shard(path: Path) -> Shard:
    """A shard's metadata: its small arrays and the shape of its attention, without reading the large arrays."""
    if not path.is_file() or not zipfile.is_zipfile(path):
        raise HSIDataError(f"`{path}` must be an .npz file (as write_npz or write_shards writes it), but it is not.")
    with zipfile.ZipFile(path) as archive:
        members = {name.removesuffix(".npy") for name in archive.namelist()}
        if not {"attention", "features", "feature_names", "groups"} <= members:
            raise HSIDataError(f"{path}: a shard must contain attention, features, feature_names and groups (group "
                               f"labels that mean the same in every shard), but it has {sorted(members)}.")
        n_scenarios, n_heads, n_slots = _header_shape(archive, "attention", path)
    try:
        with np.load(path, allow_pickle=False) as data:
            small = {key: data[key] for key in ("feature_names", "groups", "steps", "head_names", "notes",
                                                "named_steps", "step_names") if key in members}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise HSIDataError(f"{path}: an array cannot be read without pickle, which is refused ({exc}).") from None
    names = small.get("head_names")
    return Shard(
        source=str(path), files=(path,), load=functools.partial(load_npz, path), n_scenarios=n_scenarios,
        n_heads=n_heads, n_slots=n_slots,
        head_names=tuple(f"h{h}" for h in range(n_heads)) if names is None else tuple(str(n) for n in names),
        feature_names=tuple(str(n) for n in small["feature_names"]),
        groups=small["groups"], steps=None if "steps" not in small else small["steps"].astype(np.int64),
        has_slots="slots" in members, notes=tuple(str(n) for n in small.get("notes", ())),
        step_names=dict(zip((int(s) for s in small.get("named_steps", ())),
                            (str(n) for n in small.get("step_names", ())), strict=True)),
    )


def _paths(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            found = sorted(path.glob("*.npz"))
        elif path.is_file():
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(str(source)))
        where = f"{str(source)!r}"
    else:
        found = [Path(p) for p in source]
        where = f"the {len(found)} paths given"
    if not found:
        raise HSIDataError(f"`source` must name .npz shards (a folder of them, a glob or a list of files), but "
                           f"{where} holds none.")
    return found


def check_alike(shards: Sequence[Shard]) -> None:
    """Refuse shards that do not fit together (heads, features, slots; steps and slots in all or none)."""
    first = shards[0]
    for shard in shards[1:]:
        for field, what in (("head_names", "heads"), ("feature_names", "features"), ("n_slots", "entity slots")):
            if getattr(shard, field) != getattr(first, field):
                raise HSIDataError(f"every shard must have the same {what}: {first.source} has "
                                   f"{getattr(first, field)!r}, {shard.source} has {getattr(shard, field)!r}.")
        for present, what in ((lambda x: x.steps is not None, "`steps`"), (lambda x: x.has_slots, "`slots`")):
            if present(shard) != present(first):
                raise HSIDataError(f"either every shard or none must have {what}: {first.source} and "
                                   f"{shard.source} differ.")


class ShardedDataset:
    """A data set held in shards, read one shard at a time (:func:`hsi_stats.io.scan` builds it).

    It offers what the analysis reads of an :class:`~hsi_stats.HSIDataset` (names, sizes, group labels, steps,
    :meth:`select`, :meth:`fingerprint`) and yields its scenarios in chunks (:meth:`chunks`) with the group codes
    of the whole data set, so that a group may span shards. Memory: one shard and the metadata.
    """

    def __init__(self, shards: Sequence[Shard], keep: NDArray[np.bool_] | None = None,
                 groups: NDArray[Any] | None = None) -> None:
        self._shards = tuple(shards)
        sizes = [shard.n_scenarios for shard in self._shards]
        self._starts = np.r_[0, np.cumsum(sizes)]
        self._keep = np.ones(int(self._starts[-1]), dtype=bool) if keep is None else keep
        if groups is None:
            groups = np.concatenate([shard.groups for shard in self._shards])[self._keep]
        self.groups = groups
        self._client: Any = None
        self._progress = False
        self._codes = np.unique(self.groups, return_inverse=True)[1].reshape(-1)
        steps = [shard.steps for shard in self._shards if shard.steps is not None]
        self.steps: NDArray[np.int64] | None = np.concatenate(steps)[self._keep] if steps else None
        first = self._shards[0]
        self.head_names, self.feature_names = first.head_names, first.feature_names
        self.n_heads, self.n_slots, self.n_features = first.n_heads, first.n_slots, len(first.feature_names)
        self.notes = tuple(dict.fromkeys(note for shard in self._shards for note in shard.notes))
        present = set() if self.steps is None else {int(s) for s in np.unique(self.steps)}
        self.step_names: Mapping[int, str] = MappingProxyType(
            {step: name for shard in self._shards for step, name in shard.step_names.items() if step in present})

    # ------------------------------------------------------------- sizes
    @property
    def paths(self) -> tuple[Path, ...]:
        """The files read, shard by shard."""
        return tuple(path for shard in self._shards for path in shard.files)

    @property
    def n_scenarios(self) -> int:
        return int(self._keep.sum())

    @property
    def n_groups(self) -> int:
        return int(self._codes.max()) + 1 if self._codes.size else 0

    @property
    def group_codes(self) -> NDArray[np.intp]:
        return self._codes

    def step_label(self, step: int) -> str:
        return self.step_names.get(int(step), str(int(step)))

    # ------------------------------------------------------------- reading
    def _kept_shards(self) -> Iterator[tuple[HSIDataset, NDArray[np.intp]]]:
        """Each shard with a kept scenario, loaded and restricted to them, and their global group codes."""
        for piece in self._pieces():
            yield _load_piece(piece), piece.codes

    def chunks(self, values: int | None = None) -> Iterator[Chunk]:
        """The kept scenarios in order, shard by shard, in chunks of about ``values`` attention values."""
        for dataset, codes in self._kept_shards():
            yield from chunks_with_codes(dataset, codes, values)

    def _pieces(self) -> list[_Piece]:
        """One piece of work per shard with a kept scenario: its path, which scenarios and their group codes."""
        pieces, code_start = [], 0
        for shard, start, stop in zip(self._shards, self._starts[:-1], self._starts[1:], strict=True):
            keep = self._keep[start:stop]
            n_kept = int(keep.sum())
            if n_kept:
                pieces.append(_Piece(shard.source, shard.load, shard.n_scenarios, self.head_names, self.feature_names,
                                     None if n_kept == shard.n_scenarios else keep,
                                     self._codes[code_start:code_start + n_kept]))
                code_start += n_kept
        return pieces

    def accumulate(self, accumulator: AccumulatorT) -> AccumulatorT:
        """Feed every chunk to ``accumulator``, one shard at a time from an empty copy of it, and merge the parts
        in shard order: here, or one task per shard on the Dask cluster of :meth:`on_cluster` (same numbers).
        """
        from ..cluster import reduce_on_cluster

        return reduce_on_cluster(self._client, self._pieces(), accumulator, _reduce_piece, progress=self._progress)

    def on_cluster(self, client: Any) -> ShardedDataset:
        """The same data set, reduced on the Dask cluster of ``client`` (a ``distributed.Client``; None: here)."""
        return self._with(client, self._progress)

    def with_progress(self, progress: bool = True) -> ShardedDataset:
        """The same data set, showing a progress bar over the shards of each reduction."""
        return self._with(self._client, bool(progress))

    def _with(self, client: Any, progress: bool) -> ShardedDataset:
        copy = ShardedDataset(self._shards, self._keep, self.groups)
        copy._client, copy._progress = client, progress
        return copy

    def select(self, *, scenarios: NDArray[np.bool_]) -> ShardedDataset:
        """The scenarios where ``scenarios`` (a boolean array over the kept scenarios) is True."""
        chosen = np.asarray(scenarios, dtype=bool)
        if chosen.shape != (self.n_scenarios,):
            raise HSIDataError(f"`scenarios` must be a boolean mask of length {self.n_scenarios}, but it has shape "
                               f"{chosen.shape}.")
        keep = self._keep.copy()
        keep[np.flatnonzero(self._keep)[~chosen]] = False
        if not keep.any():
            raise HSIDataError("the selection is empty: no scenario matches.")
        return ShardedDataset(self._shards, keep, self.groups[chosen])._with(self._client, self._progress)

    def with_groups(self, groups: NDArray[Any]) -> ShardedDataset:
        """The same scenarios with other group labels (S,), as :meth:`hsi_stats.HSIDataset.with_groups`."""
        labels = np.asarray(groups)
        if labels.shape != (self.n_scenarios,):
            raise HSIDataError(f"`groups` must have shape (S,) = ({self.n_scenarios},), but it has shape "
                               f"{labels.shape}.")
        return ShardedDataset(self._shards, self._keep, labels)._with(self._client, self._progress)

    def sample(self, max_scenarios: int = DEFAULT_SAMPLE) -> HSIDataset:
        """The first ``max_scenarios`` kept scenarios in memory (for figures that show raw attention values)."""
        parts: list[HSIDataset] = []
        held = 0
        for dataset, _ in self._kept_shards():
            take = min(dataset.n_scenarios, max_scenarios - held)
            parts.append(dataset if take == dataset.n_scenarios else dataset.select(scenarios=np.arange(take)))
            held += take
            if held >= max_scenarios:
                break
        return HSIDataset(
            np.concatenate([p.attention for p in parts]),
            {name: np.concatenate([p.features[name] for p in parts]) for name in self.feature_names},
            mask=np.concatenate([p.mask for p in parts]), groups=np.concatenate([p.groups for p in parts]),
            steps=None if parts[0].steps is None else np.concatenate([p.steps for p in parts]),
            slots=None if parts[0].slots is None else np.concatenate([p.slots for p in parts]),
            head_names=self.head_names, notes=self.notes, copy=False)

    def fingerprint(self) -> str:
        """SHA-256 of the shards' files (in order) and of the scenarios kept: equal files give equal fingerprints.

        It differs from the fingerprint of the same scenarios held as one :class:`~hsi_stats.HSIDataset` (which
        hashes the arrays, not the files).
        """
        digest = hashlib.sha256()
        for path in self.paths:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(2**22), b""):
                    digest.update(block)
        digest.update(np.packbits(self._keep).tobytes())
        return digest.hexdigest()

    def __repr__(self) -> str:
        return (f"ShardedDataset(shards={len(self._shards)}, scenarios={self.n_scenarios}, heads={self.n_heads}, "
                f"slots={self.n_slots}, features={list(self.feature_names)}, groups={self.n_groups}, "
                f"steps={'yes' if self.steps is not None else 'no'})")


def scan_npz(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> ShardedDataset:
    """A lazy data set over ``.npz`` shards (a folder of them, a glob pattern or a list of files), in sorted path
    order; only their metadata is read (group labels, steps, names, array headers). See :func:`hsi_stats.io.scan`.
    """
    shards = [_read_shard(path) for path in _paths(source)]
    check_alike(shards)
    return ShardedDataset(shards)


def write_shards(dataset: HSIDataset | ShardedDataset, folder: str | os.PathLike[str], shard_size: int) -> list[Path]:
    """Write ``dataset`` as ``.npz`` shards of ``shard_size`` scenarios (``shard-00000.npz``, ...) into ``folder``.

    Consecutive scenarios go to the same shard, so an episode may span two shards; :func:`hsi_stats.io.scan` reads
    them back. A :class:`ShardedDataset` (logs or extractions scanned) is written one of its shards at a time, so
    that memory holds one source file: each source file then starts a new shard.
    """
    if isinstance(shard_size, bool) or not isinstance(shard_size, (int, np.integer)) or shard_size < 1:
        raise HSIDataError(f"`shard_size` must be a positive integer, but {shard_size!r} was passed.")
    out = Path(folder)
    parts = (part for part, _ in dataset._kept_shards()) if isinstance(dataset, ShardedDataset) else [dataset]
    paths: list[Path] = []
    for part in parts:
        for start in range(0, part.n_scenarios, int(shard_size)):
            piece = part.select(scenarios=np.arange(start, min(start + int(shard_size), part.n_scenarios)))
            path = out / f"shard-{len(paths):05d}.npz"
            write_npz(piece, path)
            paths.append(path)
    return paths
