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
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from typing import Any, TypeVar

from tqdm import tqdm

from ._validation import ClusterError, OptionError

__all__ = ["NO_WORKER_GRACE", "connect", "reduce_on_cluster"]

#: Seconds a cluster may have no worker at all while tasks wait before the reduction ends with a ClusterError.
NO_WORKER_GRACE = 60.0
#: Seconds between checks of the cluster while a task's part is awaited.
_POLL = 1.0

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
    of ``workers`` processes started here; None (no Dask import) when neither is given.

    The client is closed, and a ``LocalCluster`` started here shut down with its worker processes, however the
    block ends: normally, on an error, on a :class:`~hsi_stats._validation.ClusterError` or on
    ``KeyboardInterrupt``.

    Raises
    ------
    ClusterError
        When the scheduler cannot be reached (after Dask's ``distributed.comm.timeouts.connect``), or a
        ``LocalCluster`` cannot be started.
    """
    if scheduler is not None and workers is not None:
        raise OptionError("give a scheduler address or a number of workers, not both")
    if scheduler is None and workers is None:
        yield None
        return
    distributed = _distributed()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler)
        except OSError as exc:  # refused or timed out (TimeoutError is an OSError)
            raise ClusterError(f"cannot connect to the Dask scheduler at {scheduler}: {_one_line(exc)} (is it "
                               "running, and is the address right?)") from exc
        with _closing(client):
            yield client
        return
    if workers is None or workers < 1:
        raise OptionError(f"the number of workers must be at least 1, but {workers} was given")
    try:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=":0",
                                           processes=True)
    except OSError as exc:
        raise ClusterError(f"cannot start a Dask LocalCluster of {workers} worker process(es): "
                           f"{_one_line(exc)}") from exc
    with cluster:  # closed, its workers stopped, on every way out of the block
        with _closing(distributed.Client(cluster)) as client:
            yield client


@contextmanager
def _closing(client: Any) -> Iterator[Any]:
    """``client``, closed on the way out; quietly and without waiting for a reconnection when its scheduler is
    lost (Dask would log a traceback and wait for its reconnection timeout)."""
    try:
        yield client
    finally:
        if getattr(client, "status", "running") == "running":
            client.close()
        else:
            with _quiet_dask():
                client.close(timeout=5)


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's loggers in this process silenced for the block (the failure is reported once, by the caller)."""
    loggers = [logging.getLogger(name) for name in ["distributed", *logging.root.manager.loggerDict]
               if name == "distributed" or name.startswith("distributed.")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _one_line(exc: BaseException) -> str:
    """An exception's message on one line (Dask's span several)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def _address(client: Any) -> str:
    return str(getattr(getattr(client, "scheduler", None), "address", None) or "an unknown address")


def _cluster_failure(client: Any, exc: BaseException) -> ClusterError | None:
    """The :class:`ClusterError` that ``exc`` (raised while parts were awaited) stands for; None when it is a task's
    own error, to be raised as it is."""
    distributed = _distributed()
    address = _address(client)
    if isinstance(exc, distributed.KilledWorker):
        return ClusterError(f"workers of the Dask scheduler at {address} died while running a shard's task: "
                            f"{_one_line(exc)}")
    lost = getattr(client, "status", "running") != "running" or isinstance(exc, CancelledError)
    if lost or isinstance(exc, distributed.comm.CommClosedError):
        reason = getattr(exc, "reason", None) or _one_line(exc)
        return ClusterError(f"the connection to the Dask scheduler at {address} was lost while the shards were "
                            f"reduced ({reason}): the scheduler stopped or cannot be reached")
    return None


class _Watch:
    """Checks, while a part is awaited, that the cluster still has its scheduler and at least one worker."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.without_workers: float | None = None  # since when the cluster has had no worker

    def check(self, waiting: int) -> None:
        if getattr(self.client, "status", "running") != "running":
            raise ClusterError(f"the connection to the Dask scheduler at {_address(self.client)} was lost while the "
                               f"shards were reduced (client {self.client.status}): the scheduler stopped or cannot "
                               "be reached")
        if self.client.nthreads():
            self.without_workers = None
            return
        now = time.monotonic()
        self.without_workers = self.without_workers if self.without_workers is not None else now
        if now - self.without_workers >= NO_WORKER_GRACE:
            raise ClusterError(f"the Dask scheduler at {_address(self.client)} has had no worker for "
                               f"{NO_WORKER_GRACE:g} s while {waiting} shard task(s) waited: every worker is gone")

    def result(self, future: Any, waiting: int) -> Any:
        """``future``'s part, the cluster checked every ``_POLL`` seconds while it is awaited."""
        while True:
            try:
                return future.result(timeout=_POLL)
            except TimeoutError:
                if future.status == "error":  # the task's own TimeoutError
                    raise
                self.check(waiting)  # still running, or its part still on its way (from a worker that may be lost)


def reduce_on_cluster(client: Any, pieces: Sequence[P], accumulator: T, reduce_piece: Callable[[P, T], T], *,
                      progress: bool = False) -> T:
    """``accumulator`` with the parts ``reduce_piece(piece, empty copy)`` of every piece merged in, in order.

    With ``client`` None (or closed, as when a result is read again after its cluster stopped) the pieces are
    reduced here one after the other (a tqdm bar with ``progress``); otherwise each is a task on the cluster (the
    cluster's own progress bar with ``progress``), and the parts are merged in piece order either way.

    Raises
    ------
    ClusterError
        When the cluster fails under the reduction: its scheduler lost, every worker gone for
        :data:`NO_WORKER_GRACE` seconds, or workers killed by a task (Dask's ``KilledWorker``). A worker lost
        while others remain is survived (Dask runs its tasks again).
    """
    empty = copy.deepcopy(accumulator)  # every part starts from nothing, whatever is merged meanwhile
    if client is not None and getattr(client, "status", "running") in ("closing", "closed"):
        client = None  # a result read again after its cluster stopped: the same reduction, here
    if client is None:
        # one part at a time: the memory of one shard and one part
        for piece in tqdm(pieces, desc="shards", unit="shard", disable=not progress):
            accumulator.merge(reduce_piece(piece, copy.deepcopy(empty)))  # type: ignore[attr-defined]
        return accumulator
    watch = _Watch(client)
    try:
        watch.check(len(pieces))  # a scheduler lost between two passes over the data
        futures = client.map(reduce_piece, list(pieces), accumulator=empty, pure=False)
        if progress:
            _distributed().progress(futures)
        for done, future in enumerate(futures):  # in piece order, each part fetched when it is merged
            accumulator.merge(watch.result(future, len(futures) - done))  # type: ignore[attr-defined]
            future.release()
    except ClusterError:
        raise
    except Exception as exc:
        failure = _cluster_failure(client, exc)
        if failure is None:
            raise
        raise failure from exc
    return accumulator
