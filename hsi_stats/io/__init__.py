"""Readers and writers: the npz interchange file, the driving-log formats and the safe unpickler.

This package turns files into :class:`~hsi_stats.data.HSIDataset` objects and back; it computes no statistic.
"""

from .driving_logs import load_logs, write_logs
from .extraction import load_extraction, write_extraction
from .npz import load_npz, write_npz
from .safe_pickle import UnsafePickleError, safe_load_pickle
from .scanning import scan
from .shards import ShardedDataset, write_shards

__all__ = [
    "ShardedDataset",
    "UnsafePickleError",
    "load_extraction",
    "load_logs",
    "load_npz",
    "safe_load_pickle",
    "scan",
    "write_extraction",
    "write_logs",
    "write_npz",
    "write_shards",
]
