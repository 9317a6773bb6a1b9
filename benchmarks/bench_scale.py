r"""Time and peak memory of ``analyze`` at 10,000, 100,000 and 1,000,000 scenarios, each measured in a fresh process.

Run with ``nox -s scale`` or ``python benchmarks/bench_scale.py``. Writes ``benchmarks/results/bench_scale.json``.

What is measured
----------------
Workload: :func:`hsi_stats.synthetic.generate` with 50 steps (scenarios) per episode, 8 entity slots (2-8 present),
the 8 default heads and the 8 driving features; ``--sizes`` scenarios (default 10,000, 100,000 and 1,000,000: 200,
2,000 and 20,000 episodes), the same ``--seed`` at every size.

Data
    for each size a first subprocess generates the data set and writes it with :func:`hsi_stats.io.write_npz`
    (compressed) into a temporary folder; its generation time, writing time and peak resident memory are recorded.
    The simulator's intermediate arrays can peak above the analysis, so the data are not generated in the process
    where the analysis is measured.
Worker (one fresh subprocess per size, mode and repeat)
    imports the package and runs one tiny ``analyze`` (imports and caches warm), then loads the file with
    :func:`hsi_stats.io.load_npz`. ``load_npz`` does not memory-map: it decompresses every array into memory,
    and :class:`~hsi_stats.HSIDataset` keeps those arrays without a copy (``copy=False``). The resident
    set size after loading (``VmRSS``: interpreter, package, data) and the peak of loading (``VmHWM``) are recorded,
    then the peak is reset (``/proc/self/clear_refs``) and the worker times one ``estimate(ds)`` and one
    ``analyze(ds, n_resamples=--resamples, rng=--seed)`` with the defaults otherwise (``within`` estimator,
    rank-feature correlation, cluster bootstrap and sign-flip test with the same number of resamples), and reads
    the peak resident set size (``ru_maxrss``) of those two calls. Where the peak cannot be reset the peak covers
    loading too, and the JSON says so.

Reported per size and mode: the wall-clock seconds of ``analyze`` and of ``estimate`` (best of ``--repeats``
workers), the peak resident memory in GiB including the data (largest over the repeats), the overhead above the
memory after loading (peak - RSS after loading), the size of the data (``attention``, the features and ``mask``,
in bytes) and the loading peak. Over the sizes: the growth exponent, the least-squares slope of log(seconds) on
log(scenarios) (1: linear), for ``analyze``, ``estimate``, the peak memory and the overhead, and the ratio of the
times of consecutive sizes (e.g. time(1M) / time(100k)).

Modes
    ``MODES`` maps a name to the worker function that loads the data and measures the analysis; ``in-memory`` is
    the whole data set as one :class:`~hsi_stats.HSIDataset`; ``streamed`` is the same scenarios written as
    :data:`N_SHARDS` ``.npz`` shards (:func:`hsi_stats.write_shards`) and read one shard at a time through
    :func:`hsi_stats.scan` (its "loading" reads only the shards' metadata).
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import environment, peak_rss_mib, say

from hsi_stats import HSIDataset, analyze, estimate
from hsi_stats.io import ShardedDataset, load_npz, scan, write_npz, write_shards
from hsi_stats.synthetic import generate

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (10_000, 100_000, 1_000_000)
GIB = 2**30


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options; ``--worker`` and ``--generate`` are the subprocesses' own entry points."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES),
                        help="numbers of scenarios (multiples of --steps)")
    parser.add_argument("--resamples", type=int, default=9999, help="n_resamples of analyze")
    parser.add_argument("--repeats", type=int, default=1, help="workers per size and mode (best time is kept)")
    parser.add_argument("--steps", type=int, default=50, help="scenarios per episode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", nargs="+", default=None, choices=list(MODES),
                        help=f"how the analysis gets its data (default: all of {list(MODES)})")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_scale.json")
    parser.add_argument("--worker", choices=list(MODES), help=argparse.SUPPRESS)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--episodes", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    bad = [n for n in args.sizes if n <= 0 or n % args.steps]
    if bad:
        parser.error(f"--sizes must be positive multiples of --steps ({args.steps}), but {bad} were given")
    args.modes = args.modes or list(MODES)
    return args


# --------------------------------------------------------------------------------------------------- memory
def proc_status_gib(field: str) -> float:
    """A memory field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``), in GiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) * 1024 / GIB
    raise KeyError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> bool:
    """Reset this process's peak resident set size to the current one (Linux ``clear_refs``); False if refused."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return True


def dataset_bytes(dataset: HSIDataset) -> int:
    """Bytes of the attention, the features and the mask."""
    return int(dataset.attention.nbytes + sum(v.nbytes for v in dataset.features.values()) + dataset.mask.nbytes)


# --------------------------------------------------------------------------------------------------- subprocesses
def generate_file(args: argparse.Namespace) -> dict[str, Any]:
    """Generate ``--episodes`` episodes and write them to ``--data``; times, peak memory and sizes."""
    start = time.perf_counter()
    dataset = generate(n_episodes=args.episodes, n_steps=args.steps, rng=args.seed).dataset
    generate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    write_npz(dataset, args.data)
    write_seconds = time.perf_counter() - start
    write_shards(dataset, shard_folder(args.data), shard_size=max(1, -(-dataset.n_scenarios // N_SHARDS)))
    return {"n_scenarios": dataset.n_scenarios, "n_episodes": dataset.n_groups, "n_heads": dataset.n_heads,
            "n_slots": dataset.n_slots, "n_features": dataset.n_features, "n_entities": int(dataset.mask.sum()),
            "data_bytes": dataset_bytes(dataset), "generate_seconds": generate_seconds,
            "write_seconds": write_seconds, "file_bytes": args.data.stat().st_size,
            "peak_rss_gib": peak_rss_mib() / 1024}


def measure(load: Callable[[], tuple[Any, int]], run_estimate: Callable[[Any], object],
            run_analyze: Callable[[Any], object]) -> dict[str, Any]:
    """Load the data, then time ``run_estimate`` and ``run_analyze`` and read the peak memory of the two.

    Parameters
    ----------
    load : callable
        Returns what the analysis is given and the bytes of data it holds in memory.
    run_estimate, run_analyze : callable
        Called with what ``load`` returned; their results are dropped.

    Returns
    -------
    dict
        Seconds of loading, ``estimate`` and ``analyze``; resident memory (GiB) after loading, peak of loading and
        peak of the two calls (``ru_maxrss``); whether that peak excludes loading (``peak_reset``).
    """
    start = time.perf_counter()
    data, data_bytes = load()
    load_seconds = time.perf_counter() - start
    rss_after_load = proc_status_gib("VmRSS")
    load_peak = proc_status_gib("VmHWM")
    peak_reset = reset_peak_rss()
    start = time.perf_counter()
    run_estimate(data)
    estimate_seconds = time.perf_counter() - start
    start = time.perf_counter()
    run_analyze(data)
    analyze_seconds = time.perf_counter() - start
    peak = peak_rss_mib() / 1024
    return {"data_bytes": data_bytes, "load_seconds": load_seconds, "estimate_seconds": estimate_seconds,
            "analyze_seconds": analyze_seconds, "rss_after_load_gib": rss_after_load, "load_peak_gib": load_peak,
            "peak_rss_gib": peak, "overhead_gib": peak - rss_after_load, "peak_reset": peak_reset,
            "peak_covers": "estimate + analyze" if peak_reset else "loading + estimate + analyze"}


def in_memory(path: Path, n_resamples: int, seed: int) -> dict[str, Any]:
    """The whole data set loaded as one :class:`~hsi_stats.HSIDataset`, then ``estimate`` and ``analyze`` on it."""
    def load() -> tuple[HSIDataset, int]:
        dataset = load_npz(path)
        return dataset, dataset_bytes(dataset)

    return measure(load, estimate, lambda ds: analyze(ds, n_resamples=n_resamples, rng=seed))


def streamed(path: Path, n_resamples: int, seed: int) -> dict[str, Any]:
    """The same scenarios in :data:`N_SHARDS` ``.npz`` shards, read one at a time (:func:`hsi_stats.scan`)."""
    def load() -> tuple[ShardedDataset, int]:
        sharded = scan(shard_folder(path))
        values = sharded.n_scenarios * sharded.n_slots * (sharded.n_heads + sharded.n_features)
        return sharded, 8 * values + sharded.n_scenarios * sharded.n_slots  # float64 arrays and the boolean mask

    return measure(load, estimate, lambda ds: analyze(ds, n_resamples=n_resamples, rng=seed))


def shard_folder(path: Path) -> Path:
    """Where the shards of the data file ``path`` are written."""
    return path.with_name(path.stem + "-shards")


#: Shards the streamed mode reads (the same scenarios as the single file, in order).
N_SHARDS = 10

#: How the analysis gets its data: name -> worker function ``(path of the .npz file, n_resamples, seed) -> dict``
#: (see :func:`measure` for the dict).
MODES: dict[str, Callable[[Path, int, int], dict[str, Any]]] = {
    "in-memory": in_memory,
    "streamed": streamed,
}


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Warm up imports and caches on a tiny data set, then measure mode ``--worker`` on ``--data``."""
    analyze(generate(n_episodes=4, n_steps=5, rng=0).dataset, n_resamples=99, rng=0)
    return MODES[args.worker](args.data, args.resamples, args.seed)


def run_subprocess(*options: str) -> dict[str, Any]:
    """Run this script with ``options`` in a fresh Python process and return the JSON it prints last."""
    done = subprocess.run([sys.executable, __file__, *options], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(options)} failed with exit code {done.returncode}:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


# --------------------------------------------------------------------------------------------------- summary
def growth_exponent(sizes: list[int], values: list[float]) -> float | None:
    """Least-squares slope of log(value) on log(size) (1: linear growth); None with fewer than two sizes."""
    if len(set(sizes)) < 2:
        return None
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def growth(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Growth exponents of the times and the peak memory, and time ratios of consecutive sizes, for one mode."""
    sizes = [r["n_scenarios"] for r in rows]
    ratios = [{"from": a["n_scenarios"], "to": b["n_scenarios"], "size_ratio": b["n_scenarios"] / a["n_scenarios"],
               "analyze_time_ratio": b["analyze_seconds"] / a["analyze_seconds"],
               "estimate_time_ratio": b["estimate_seconds"] / a["estimate_seconds"]}
              for a, b in itertools.pairwise(rows)]
    return {"analyze_exponent": growth_exponent(sizes, [r["analyze_seconds"] for r in rows]),
            "estimate_exponent": growth_exponent(sizes, [r["estimate_seconds"] for r in rows]),
            "peak_rss_exponent": growth_exponent(sizes, [r["peak_rss_gib"] for r in rows]),
            "overhead_exponent": growth_exponent(sizes, [max(r["overhead_gib"], 1e-9) for r in rows]),
            "consecutive_ratios": ratios}


def best_of(size: int, mode: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One row from the repeats: the best times, the largest memory figures, and every run."""
    row: dict[str, Any] = {"n_scenarios": size, "mode": mode}
    for key in ("analyze_seconds", "estimate_seconds", "load_seconds"):
        row[key] = min(r[key] for r in runs)
    for key in ("peak_rss_gib", "overhead_gib", "rss_after_load_gib", "load_peak_gib"):
        row[key] = max(r[key] for r in runs)
    row.update(data_gib=runs[0]["data_bytes"] / GIB, peak_covers=runs[0]["peak_covers"], runs=runs)
    return row


COLUMNS = (("scenarios", 10), ("mode", 10), ("analyze s", 10), ("estimate s", 11), ("peak GiB", 9),
           ("overhead GiB", 13), ("data GiB", 9), ("load peak GiB", 14))


def table_line(values: tuple[object, ...]) -> str:
    """One line of the progress table."""
    return "".join(f"{v:>{w}}" for v, (_, w) in zip(values, COLUMNS, strict=True))


def measure_sizes(args: argparse.Namespace, folder: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Generate each size into ``folder`` and measure every mode on it; the data sets and the rows."""
    data, rows = [], []
    say(table_line(tuple(name for name, _ in COLUMNS)))
    for size in sorted(args.sizes):
        path = folder / f"scenarios_{size}.npz"
        made = run_subprocess("--generate", "--episodes", str(size // args.steps), "--steps", str(args.steps),
                              "--seed", str(args.seed), "--data", str(path))
        data.append(made)
        for mode in args.modes:
            runs = [run_subprocess("--worker", mode, "--data", str(path), "--resamples", str(args.resamples),
                                   "--seed", str(args.seed)) for _ in range(max(1, args.repeats))]
            row = best_of(size, mode, runs)
            rows.append(row)
            say(table_line((size, mode, f"{row['analyze_seconds']:.2f}", f"{row['estimate_seconds']:.2f}",
                            f"{row['peak_rss_gib']:.2f}", f"{row['overhead_gib']:.2f}", f"{row['data_gib']:.2f}",
                            f"{row['load_peak_gib']:.2f}")))
        path.unlink()
    return data, rows


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``/``--generate``, one subprocess's part), print it and write the JSON."""
    args = parse_args(argv)
    if args.worker or args.generate:
        print(json.dumps(worker(args) if args.worker else generate_file(args)))
        return 0
    started = environment()
    start = time.perf_counter()
    say(f"analyze with n_resamples={args.resamples} at {', '.join(map(str, sorted(args.sizes)))} scenarios "
        f"({args.steps} per episode), modes {args.modes}, best of {args.repeats} fresh process(es):")
    with tempfile.TemporaryDirectory(prefix="hsi_bench_scale_") as folder:
        data, rows = measure_sizes(args, Path(folder))
    by_mode = {mode: growth([r for r in rows if r["mode"] == mode]) for mode in args.modes}
    for mode, summary in by_mode.items():
        if summary["analyze_exponent"] is None:
            continue
        ratios = "; ".join(f"time({r['to']}) / time({r['from']}) = {r['analyze_time_ratio']:.2f} "
                           f"(x{r['size_ratio']:.0f} scenarios)" for r in summary["consecutive_ratios"])
        say(f"{mode}: growth exponent of analyze {summary['analyze_exponent']:.2f}, of estimate "
            f"{summary['estimate_exponent']:.2f}, of peak memory {summary['peak_rss_exponent']:.2f} (of the overhead "
            f"{summary['overhead_exponent']:.2f}); {ratios}")
    record = {
        "description": "wall-clock time and peak resident memory of hsi_stats.analyze by number of scenarios, "
                       "each in a fresh process; see benchmarks/bench_scale.py for the method.",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                     if k not in {"worker", "generate", "episodes", "data"}},
        "loading": "load_npz of a compressed .npz file: every array decompressed into memory, no memory map, "
                   "and held by HSIDataset without a copy",
        "environment": started,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data": data,
        "rows": rows,
        "growth": by_mode,
        "elapsed_seconds": time.perf_counter() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    say(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
