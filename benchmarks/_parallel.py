"""Running the replicates of a simulation study on a pool of worker processes, with a progress line.

Shared by the studies under ``benchmarks/`` (run as scripts, so this module is imported by name). Workers are
spawned (not forked) with one BLAS thread each, so that two workers use two cores and the numbers do not depend on
the number of workers: every task carries its own seed.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _worker_init() -> None:
    warnings.simplefilter("ignore")


class Progress:
    """One progress line on standard error, rewritten at most every ``every`` seconds (and at the end)."""

    def __init__(self, label: str, total: int, every: float = 5.0) -> None:
        self.label, self.total, self.every = label, total, every
        self.start = time.perf_counter()
        self.last = -every

    def update(self, done: int) -> None:
        elapsed = time.perf_counter() - self.start
        if done < self.total and elapsed - self.last < self.every:
            return
        self.last = elapsed
        eta = elapsed / done * (self.total - done) if done else float("nan")
        sys.stderr.write(f"\r[{self.label}] {done}/{self.total} done, {elapsed / 60:5.1f} min elapsed, "
                         f"ETA {eta / 60:5.1f} min ")
        sys.stderr.flush()
        if done == self.total:
            sys.stderr.write("\n")


def run_pool(function: Callable[[Any], dict[str, Any]], tasks: Sequence[Any], processes: int,
             label: str) -> tuple[list[dict[str, Any]], float]:
    """``function`` on every task in ``processes`` spawned workers; results in completion order, and seconds."""
    for name in THREAD_VARIABLES:  # read by the spawned workers when they import numpy
        os.environ[name] = "1"
    progress = Progress(label, len(tasks))
    results = []
    context = mp.get_context("spawn")
    with context.Pool(processes, initializer=_worker_init) as pool:
        for result in pool.imap_unordered(function, tasks, chunksize=1):
            results.append(result)
            progress.update(len(results))
        pool.close()
        pool.join()
    return results, time.perf_counter() - progress.start
