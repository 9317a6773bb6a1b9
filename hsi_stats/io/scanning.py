"""One entry point to every lazy data set: :func:`scan` tells the format from what it is given.

The shards of a scan are the files as they are written: ``.npz`` shards (:func:`~hsi_stats.io.write_shards`),
one file per checkpoint of the unified extractions, or one feature log and its attention file of the driving logs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._validation import OptionError
from .driving_logs import FEATURE_PATTERN, scan_logs
from .extraction import EXTRACTION_PATTERN, scan_extraction
from .shards import ShardedDataset, scan_npz

__all__ = ["scan"]

#: The reader options each format takes.
_OPTIONS = {
    "npz": (),
    "extraction": ("features", "catalog", "trust_pickle"),
    "logs": ("pair_by", "step_range", "attention_key", "trust_pickle"),
}


def _format(source: Any, attention_dir: Any) -> str:
    if attention_dir is not None:
        return "logs"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file() and path.match(EXTRACTION_PATTERN):
            return "extraction"
        if path.is_dir() and not any(path.glob("*.npz")):
            if any(path.glob(EXTRACTION_PATTERN)):
                return "extraction"
            if any(path.glob(FEATURE_PATTERN)):
                raise OptionError(f"{str(source)!r} holds feature logs ({FEATURE_PATTERN!r}): pass their attention "
                                  f"files' folder as `attention_dir` too.")
    return "npz"


def scan(source: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
         attention_dir: str | os.PathLike[str] | None = None, **options: Any) -> ShardedDataset:
    """A lazy data set over files on disk, read one shard at a time: the data of every format, larger than memory.

    Only metadata is kept (group labels, steps, names and sizes); :func:`hsi_stats.estimate`,
    :func:`hsi_stats.analyze` and :func:`hsi_stats.analyze_evolution` then read the shards one at a time, or as
    tasks on a Dask cluster (:meth:`ShardedDataset.on_cluster`), and give the numbers of the same data loaded
    in memory (the same seed: the same intervals and p-values, to rounding). An episode may span shards.

    Parameters
    ----------
    source : str, path-like or sequence of them
        - ``.npz`` shards (:func:`~hsi_stats.io.write_shards`, ``hsi-stats convert --shard-size``): a folder of
          them, a glob pattern or a list of files, read in sorted path order. Only their headers are read, so a
          scan is quick; shards must share heads, features and slots, and carry group labels that mean the same
          in every shard.
        - unified extractions: an ``extraction_*.pkl`` file or a folder of them, one shard per file (as
          :func:`~hsi_stats.io.load_extraction` reads them; options ``features``, ``catalog``, ``trust_pickle``).
        - driving logs: the feature-log folder, with ``attention_dir`` the attention folder, one shard per file
          pair (as :func:`~hsi_stats.io.load_logs` pairs them; options ``pair_by``, ``step_range``,
          ``attention_key``, ``trust_pickle``).

        A pickle has no header to read on its own, so a scan of extractions or logs reads every file once, and
        every reduction reads it again: to analyse the same pickles many times, convert them to ``.npz`` shards
        once.
    attention_dir : str or path-like, optional
        The attention files' folder of driving logs (``source`` is then the feature-log folder).
    **options
        The reader options of the format, as above; another option is refused.

    Returns
    -------
    ShardedDataset

    Examples
    --------
    >>> import tempfile
    >>> from hsi_stats import analyze, scan, write_shards
    >>> from hsi_stats.synthetic import generate
    >>> folder = tempfile.mkdtemp()
    >>> dataset = generate(n_episodes=12, n_steps=5, rng=0).dataset
    >>> len(write_shards(dataset, folder, shard_size=25))
    3
    >>> sharded = scan(folder)
    >>> sharded.n_scenarios, sharded.n_groups
    (60, 12)
    >>> a, b = analyze(sharded, n_resamples=99, rng=1), analyze(dataset, n_resamples=99, rng=1)
    >>> bool(abs(a.pairs["ci_low"] - b.pairs["ci_low"]).max() < 1e-9)
    True
    """
    kind = _format(source, attention_dir)
    unknown = sorted(set(options) - set(_OPTIONS[kind]))
    if unknown:
        takes = ", ".join(_OPTIONS[kind]) or "none"
        raise OptionError(f"scan of {kind} takes the options {takes}, but {unknown} was passed.")
    if kind == "logs":
        if not isinstance(source, (str, os.PathLike)):
            raise OptionError(f"with `attention_dir`, `source` must be the feature-log folder, but "
                              f"{type(source).__name__} was passed.")
        return scan_logs(source, attention_dir, **options)  # type: ignore[arg-type]
    if kind == "extraction":
        return scan_extraction(source, **options)  # type: ignore[arg-type]
    return scan_npz(source)
