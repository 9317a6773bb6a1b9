"""Shards reduced on a real Dask cluster: a LocalCluster, and a scheduler and two workers started as processes.

The per-shard reduction runs as one task per shard; the parts are merged in shard order, as without a cluster,
so the numbers must be identical (not merely close) to those of the same scan reduced in this process, and the
command line must write the same ``pairs.csv``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from hsi_stats import analyze, analyze_evolution, scan, write_shards
from hsi_stats.cli import main
from hsi_stats.cluster import connect
from hsi_stats.synthetic import generate, write_driving_logs

distributed = pytest.importorskip("distributed", reason="the dask extra (hsi_stats[dask]) is not installed")

ARGS = ["--seed", "1", "--n-resamples", "199", "--format", ""]


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


@pytest.fixture
def scheduler_and_workers(tmp_path: Path) -> Iterator[str]:
    """A scheduler and two single-threaded workers, each its own process on localhost; stopped by process id."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    module = "distributed.cli."
    processes = [subprocess.Popen([sys.executable, "-m", module + "dask_scheduler", "--host", "127.0.0.1",
                                   "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)]
    try:
        processes += [subprocess.Popen([sys.executable, "-m", module + "dask_worker", address, "--nworkers", "1",
                                        "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
                      for _ in range(2)]
        deadline = time.monotonic() + 120
        while True:
            try:
                with distributed.Client(address, timeout=10) as client:
                    client.wait_for_workers(2, timeout=max(1.0, deadline - time.monotonic()))
                    assert len(client.scheduler_info()["workers"]) == 2
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


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
