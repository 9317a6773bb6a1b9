"""Shards reduced on a real Dask cluster: a LocalCluster, and a scheduler and two workers started as processes.

The per-shard reduction runs as one task per shard; the parts are merged in shard order, as without a cluster,
so the numbers must be identical (not merely close) to those of the same scan reduced in this process, and the
command line must write the same ``pairs.csv``. A worker killed during the reduction is survived with the same
numbers; a scheduler killed, every worker killed or a scheduler that cannot be reached end with a ClusterError (exit
code 69 and one line on the command line) and nothing written; a LocalCluster started by the command line is shut
down however the command ends.

The processes are killed at a point of the computation fixed by the test, not by a timer: the first part fetched
by the client (``distributed.Future.result``) kills them, and the computation goes on only once the loss is
visible (the scheduler's port refuses connections, the scheduler counts the workers left), with several parts still
to fetch (seven shards), each of which needs the lost process or its results.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import hsi_stats
from hsi_stats import analyze, analyze_evolution, scan, write_shards
from hsi_stats._validation import ClusterError
from hsi_stats.cli import EXIT_BAD_INPUT, EXIT_CLUSTER_UNAVAILABLE, main
from hsi_stats.cluster import connect
from hsi_stats.synthetic import generate, write_driving_logs

distributed = pytest.importorskip("distributed", reason="the dask extra (hsi_stats[dask]) is not installed")

ARGS = ["--seed", "1", "--n-resamples", "199", "--format", ""]
#: The environment of the processes started here: they import the hsi_stats under test, as this process does.
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(Path(hsi_stats.__file__).resolve().parents[1]), *filter(None, [os.environ.get("PYTHONPATH")])])}


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    write_shards(generate(n_episodes=14, n_steps=9, rng=6).dataset, folder, shard_size=20)  # episodes span shards
    return folder


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("logs")
    run = generate(n_episodes=14, n_steps=4, checkpoints=(0, 1, 2), specialise=(0, 2), rng=7)
    write_driving_logs(run, root / "features", root / "attention", rng=0)  # a file pair per checkpoint
    return root / "features", root / "attention"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def cluster_processes(tmp_path: Path, n_workers: int = 2, *, nanny: bool = True
                      ) -> Iterator[tuple[str, subprocess.Popen[bytes], list[subprocess.Popen[bytes]]]]:
    """A scheduler and ``n_workers`` single-threaded workers, each its own process on localhost, importing the
    hsi_stats under test; yields the address and the processes; stopped by process id. Without ``nanny`` each
    worker's process id is the worker itself (a kill is a worker lost, not restarted by its nanny)."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    module = "distributed.cli."
    scheduler = subprocess.Popen([sys.executable, "-m", module + "dask_scheduler", "--host", "127.0.0.1",
                                  "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=ENV)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        workers += [subprocess.Popen([sys.executable, "-m", module + "dask_worker", address, "--nworkers", "1",
                                      "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path),
                                      *([] if nanny else ["--no-nanny"])],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path, env=ENV)
                    for _ in range(n_workers)]
        deadline = time.monotonic() + 120
        while True:
            try:
                with distributed.Client(address, timeout=10) as client:
                    client.wait_for_workers(n_workers, timeout=max(1.0, deadline - time.monotonic()))
                    assert len(client.scheduler_info()["workers"]) == n_workers
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address, scheduler, workers
    finally:  # the workers first: a worker without a nanny whose scheduler has gone does not end on SIGTERM
        for process in [*workers, scheduler]:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def scheduler_and_workers(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two single-threaded workers, each its own process on localhost; stopped by process id."""
    with cluster_processes(tmp_path) as (address, _, _):
        yield address


def _refused(address: str) -> bool:
    host, port = address.removeprefix("tcp://").rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return True
    return False


def _until(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Wait for ``condition``; the test fails (rather than going on by luck) when it does not hold in time."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {seconds} s")
        time.sleep(0.1)


def _after_the_first_part(monkeypatch: pytest.MonkeyPatch, kill: Callable[[Any], None]) -> list[bool]:
    """``kill(client)`` once, when the first part of the reduction has been fetched from the cluster (the first
    ``Future.result`` that returns); the list it returns says whether it happened."""
    real, fired = distributed.Future.result, []

    def result(self: Any, *args: Any, **kwargs: Any) -> Any:
        value = real(self, *args, **kwargs)
        if not fired:
            fired.append(True)
            kill(self.client)
        return value

    monkeypatch.setattr(distributed.Future, "result", result)
    return fired


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.slow  # starting a cluster takes seconds
def test_a_local_cluster_gives_the_numbers_of_this_process(shards: Path, logs: tuple[Path, Path]) -> None:
    here = analyze(scan(shards), n_resamples=199, rng=3)
    logs_here = analyze_evolution(scan(logs[0], attention_dir=logs[1]), n_resamples=99, trend_resamples=99, rng=3)
    with connect(workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        there = analyze(scan(shards).on_cluster(client), n_resamples=199, rng=3)
        # the file pairs of driving logs are read, paired and reduced on the workers
        logs_there = analyze_evolution(scan(logs[0], attention_dir=logs[1]).on_cluster(client), n_resamples=99,
                                       trend_resamples=99, rng=3)
    pd.testing.assert_frame_equal(there.pairs, here.pairs, check_exact=True)
    pd.testing.assert_frame_equal(there.heads, here.heads, check_exact=True)
    pd.testing.assert_frame_equal(there.joint, here.joint, check_exact=True)  # the joint model's passes too
    assert there.data_summary["passes"] == here.data_summary["passes"] > 1
    # read again after the cluster stopped (the registry's label agreement passes over the data): here, same numbers
    assert [entry.get("agreement") for entry in there.registry().values()] == [
        entry.get("agreement") for entry in here.registry().values()]
    pd.testing.assert_frame_equal(logs_there.per_step, logs_here.per_step, check_exact=True)
    pd.testing.assert_frame_equal(logs_there.trends, logs_here.trends, check_exact=True)


@pytest.mark.slow
def test_separate_scheduler_and_workers_give_the_same_pairs(shards: Path, scheduler_and_workers: str,
                                                            tmp_path: Path) -> None:
    assert main(["analyze", str(shards), "--out", str(tmp_path / "here"), *ARGS]) == 0
    assert main(["analyze", str(shards), "--out", str(tmp_path / "there"), "--scheduler", scheduler_and_workers,
                 *ARGS]) == 0
    assert (tmp_path / "there" / "pairs.csv").read_bytes() == (tmp_path / "here" / "pairs.csv").read_bytes()
    assert (tmp_path / "there" / "heads.csv").read_bytes() == (tmp_path / "here" / "heads.csv").read_bytes()
    assert (tmp_path / "there" / "joint.csv").read_bytes() == (tmp_path / "here" / "joint.csv").read_bytes()


def test_a_cluster_needs_shards(shards: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    single = sorted(shards.glob("*.npz"))[0]
    assert main(["analyze", str(single), "--out", str(tmp_path / "x"), "--workers", "2", *ARGS]) == 2
    assert "--scheduler and --workers reduce shards" in capsys.readouterr().err


def test_no_cluster_imports_no_dask(shards: Path) -> None:
    code = ("import sys, hsi_stats; "
            f"hsi_stats.analyze(hsi_stats.scan({str(shards)!r}), n_resamples=99, rng=0); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.slow
def test_a_lost_worker_is_survived_with_the_numbers_of_this_process(shards: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """One of two workers killed once the first part is fetched: Dask runs its tasks again on the other, and the
    command line writes the tables of the run without a cluster, byte for byte."""
    assert main(["analyze", str(shards), "--out", str(tmp_path / "here"), *ARGS]) == 0
    with cluster_processes(tmp_path, nanny=False) as (address, _, workers):
        def kill_one_worker(client: Any) -> None:
            workers[0].kill()
            workers[0].wait()
            _until(lambda: len(client.nthreads()) == 1, "the scheduler counting one worker left")

        fired = _after_the_first_part(monkeypatch, kill_one_worker)
        assert main(["analyze", str(shards), "--out", str(tmp_path / "there"), "--scheduler", address, *ARGS]) == 0
        assert fired and workers[0].poll() is not None and workers[1].poll() is None
    for table in ("pairs.csv", "heads.csv", "joint.csv"):
        assert (tmp_path / "there" / table).read_bytes() == (tmp_path / "here" / table).read_bytes()


#: The command line in a process of its own, its scheduler killed (SIGKILL, by process id) once the first part is
#: fetched; it goes on once the scheduler's port refuses connections.
_KILL_THE_SCHEDULER = """
import os, signal, socket, sys, time
import distributed
from hsi_stats.cli import main

pid, address = int(sys.argv[1]), sys.argv[2]
real, fired = distributed.Future.result, []

def result(self, *args, **kwargs):
    value = real(self, *args, **kwargs)
    if not fired:
        fired.append(True)
        os.kill(pid, signal.SIGKILL)
        host, port = address.removeprefix("tcp://").rsplit(":", 1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
            except OSError:
                break
            time.sleep(0.1)
        else:
            sys.exit("the scheduler's port still accepts connections")
    return value

distributed.Future.result = result
sys.exit(main(sys.argv[3:]))
"""


@pytest.mark.slow
def test_a_lost_scheduler_ends_the_command_with_one_line_and_exit_69(shards: Path, tmp_path: Path) -> None:
    """The scheduler killed once the first part is fetched: the command line (its whole standard error read, in a
    process of its own) ends with one line naming the address, exit code 69, no traceback and no output folder."""
    with cluster_processes(tmp_path) as (address, scheduler, _):
        out = tmp_path / "out"
        done = subprocess.run([sys.executable, "-c", _KILL_THE_SCHEDULER, str(scheduler.pid), address, "analyze",
                               str(shards), "--out", str(out), "--scheduler", address, *ARGS],
                              capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
        assert scheduler.poll() is not None  # it was killed
    assert done.returncode == EXIT_CLUSTER_UNAVAILABLE == 69, done.stderr
    line = _one_line(done.stderr)
    assert line.startswith(f"hsi-stats: cluster error: the connection to the Dask scheduler at {address} was lost "
                           "while the shards were reduced")
    assert line.endswith("nothing was written") and "this is a bug" not in line
    assert not out.exists() and not list(tmp_path.glob("out*"))  # nor a half-written staging folder


@pytest.mark.slow
def test_a_lost_scheduler_raises_a_cluster_error_from_the_api(shards: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with cluster_processes(tmp_path) as (address, scheduler, _):
        def kill_the_scheduler(client: Any) -> None:
            os.kill(scheduler.pid, signal.SIGKILL)
            scheduler.wait()
            _until(lambda: _refused(address), "the scheduler's port refusing connections")

        fired = _after_the_first_part(monkeypatch, kill_the_scheduler)
        started = time.monotonic()
        with pytest.raises(ClusterError, match=rf"the connection to the Dask scheduler at {address} was lost"), \
                connect(address) as client:
            analyze(scan(shards).on_cluster(client), n_resamples=99, rng=0)
        assert fired and time.monotonic() - started < 25  # no wait for Dask's reconnection timeout (30 s)


@pytest.mark.slow
def test_every_worker_gone_raises_a_cluster_error(shards: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Both workers killed once the first part is fetched: the tasks left would wait for a worker for ever; once
    the scheduler has had none for NO_WORKER_GRACE seconds (2 here), the reduction ends with a ClusterError."""
    monkeypatch.setattr("hsi_stats.cluster.NO_WORKER_GRACE", 2.0)
    with cluster_processes(tmp_path, nanny=False) as (address, _, workers):
        def kill_every_worker(client: Any) -> None:
            for worker in workers:
                worker.kill()
                worker.wait()
            _until(lambda: not client.nthreads(), "the scheduler counting no worker")

        fired = _after_the_first_part(monkeypatch, kill_every_worker)
        with pytest.raises(ClusterError, match=rf"the Dask scheduler at {address} has had no worker for 2 s while "
                                               r"\d+ shard task\(s\) waited: every worker is gone"), \
                connect(address) as client:
            analyze(scan(shards).on_cluster(client), n_resamples=99, rng=0)
        assert fired


@pytest.mark.slow  # Dask's connection timeout, shortened to 3 s
def test_a_scheduler_that_cannot_be_reached_ends_with_exit_69(shards: Path, tmp_path: Path) -> None:
    """Nothing listens at the address (a port found free): the connection is refused until Dask's connection
    timeout, and the command line ends with its one line and exit code 69."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-m", "hsi_stats.cli", "analyze", str(shards), "--out", str(out),
                           "--scheduler", address, *ARGS], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**ENV, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "3s"})
    assert done.returncode == EXIT_CLUSTER_UNAVAILABLE, done.stderr
    assert _one_line(done.stderr).startswith(f"hsi-stats: cluster error: cannot connect to the Dask scheduler at "
                                             f"{address}: Timed out trying to connect")
    assert not out.exists()


@pytest.mark.slow
def test_a_local_cluster_started_by_the_command_line_is_shut_down_on_every_path(
        shards: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``--workers 1`` on success, on bad input found while the cluster is up, on a cluster failure and on
    KeyboardInterrupt: each time the LocalCluster is closed and its worker process has ended."""
    import psutil

    import hsi_stats.cli as cli

    started: list[tuple[Any, list[int]]] = []

    class Recorded(distributed.LocalCluster):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append((self, [worker.process.pid for worker in self.workers.values()]))

    monkeypatch.setattr(distributed, "LocalCluster", Recorded)
    real_run = cli.run_analysis

    def failing(error: BaseException) -> Callable[..., Any]:
        def run(dataset: Any, args: Any) -> Any:
            raise error
        return run

    def shut_down() -> None:
        cluster, pids = started[-1]
        assert cluster.status.name == "closed" and pids
        for pid in pids:
            assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    argv = ["analyze", str(shards), "--workers", "1", *ARGS]
    assert main([*argv, "--out", str(tmp_path / "ok")]) == 0
    shut_down()
    assert main([*argv, "--out", str(tmp_path / "bad"), "--scheme", "within-group"]) == EXIT_BAD_INPUT
    shut_down()
    monkeypatch.setattr(cli, "run_analysis", failing(ClusterError("the Dask scheduler at tcp://x:1 was lost")))
    assert main([*argv, "--out", str(tmp_path / "lost")]) == EXIT_CLUSTER_UNAVAILABLE
    shut_down()
    monkeypatch.setattr(cli, "run_analysis", failing(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        main([*argv, "--out", str(tmp_path / "interrupted")])
    shut_down()
    monkeypatch.setattr(cli, "run_analysis", real_run)
    assert len(started) == 4 and not any((tmp_path / name).exists() for name in ("bad", "lost", "interrupted"))
    err = capsys.readouterr().err
    assert "hsi-stats: cluster error: the Dask scheduler at tcp://x:1 was lost; nothing was written" in err


@pytest.mark.slow
def test_a_task_error_is_raised_as_it_is_not_as_a_cluster_error(tmp_path: Path) -> None:
    """A shard removed after the scan fails its task on a healthy cluster: the reading error comes back as it is
    (bad input, exit code 2 on the command line), not as a cluster failure."""
    from hsi_stats._validation import InputError

    folder = tmp_path / "shards"
    write_shards(generate(n_episodes=6, n_steps=5, rng=2).dataset, folder, shard_size=10)
    scanned = scan(folder)
    sorted(folder.glob("*.npz"))[1].unlink()
    with connect(workers=1) as client, pytest.raises((OSError, InputError)) as raised:
        analyze(scanned.on_cluster(client), n_resamples=99, rng=0)
    assert not isinstance(raised.value, ClusterError)
