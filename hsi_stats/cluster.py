"""Shards reduced on a Dask cluster: one task per shard, the parts merged here (optional extra ``hsi_stats[dask]``).

The reduction of raw scenarios to per-group sums is what grows with the data, and each shard's part is independent
of the others: a task loads its shard where it runs (the shards must be readable at the same path there), reduces
it with the same code as in this process and returns the group totals, which are merged here in shard order. The
parts are merged the same way without a cluster, so a cluster changes where the work runs, not the numbers. The
resampling works on the merged sums, which are small, and stays local.

Nothing here is imported unless a cluster is asked for: ``import hsi_stats`` never imports Dask.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm import tqdm

from ._validation import OptionError

__all__ = ["connect", "reduce_on_cluster"]

T = TypeVar("T")
P = TypeVar("P")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:  # pragma: no cover - the extra is installed in the tests
        raise OptionError("a Dask cluster needs the optional extra: pip install 'hsi_stats[dask]'") from None
    return distributed


@contextmanager
def connect(scheduler: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: of the scheduler at ``scheduler`` (``tcp://host:port``), or of a ``LocalCluster``
    of ``workers`` processes started here and stopped afterwards; None (no Dask import) when neither is given.
    """
    if scheduler is not None and workers is not None:
        raise OptionError("give a scheduler address or a number of workers, not both")
    if scheduler is None and workers is None:
        yield None
        return
    distributed = _distributed()
    if scheduler is not None:
        with distributed.Client(scheduler) as client:
            yield client
        return
    if workers is None or workers < 1:
        raise OptionError(f"the number of workers must be at least 1, but {workers} was given")
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0",
                                  processes=True) as cluster, distributed.Client(cluster) as client:
        yield client


def reduce_on_cluster(client: Any, pieces: Sequence[P], accumulator: T, reduce_piece: Callable[[P, T], T], *,
                      progress: bool = False) -> T:
    """``accumulator`` with the parts ``reduce_piece(piece, empty copy)`` of every piece merged in, in order.

    With ``client`` None (or closed, as when a result is read again after its cluster stopped) the pieces are
    reduced here one after the other (a tqdm bar with ``progress``); otherwise each is a task on the cluster (the
    cluster's own progress bar with ``progress``), and the parts are merged in piece order either way.
    """
    empty = copy.deepcopy(accumulator)  # every part starts from nothing, whatever is merged meanwhile
    if client is not None and getattr(client, "status", "running") in ("closing", "closed"):
        client = None  # a result read again after its cluster stopped: the same reduction, here
    if client is None:
        # one part at a time: the memory of one shard and one part
        for piece in tqdm(pieces, desc="shards", unit="shard", disable=not progress):
            accumulator.merge(reduce_piece(piece, copy.deepcopy(empty)))  # type: ignore[attr-defined]
        return accumulator
    futures = client.map(reduce_piece, list(pieces), accumulator=empty, pure=False)
    if progress:
        _distributed().progress(futures)
    for future in futures:  # in piece order, each part fetched when it is merged
        accumulator.merge(future.result())  # type: ignore[attr-defined]
        future.release()
    return accumulator
