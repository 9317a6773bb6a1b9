r"""Time the whole analysis on the reference workload (200 episodes x 50 steps, 8 slots,
8 heads, 8 features, ``n_resamples=9999``) against the per-pair scipy approach.

Run with ``nox -s bench`` (after ``bench_estimate.py``) or ``python benchmarks/bench_analyze.py``. Writes
``benchmarks/results/bench_analyze.json``.

What is measured
----------------
Reference workload: :func:`hsi_stats.synthetic.generate` with 200 episodes x 50 steps, 8 entity slots (2-8 present),
the 8 default heads and the 8 driving features (10,000 scenarios, 64 (head, feature) pairs).

``hsi_stats``
    wall-clock time of one ``analyze(ds, n_resamples=9999, rng=...)`` with the defaults (``within`` estimator, Spearman,
    9999 cluster-bootstrap resamples with the default intervals, whose ``ci_method`` the JSON records, 9999 sign-flip
    randomisations with step-down max-T, label validation), best of ``--repeats``. Also at 50, 100 and 200 episodes
    (n_resamples 9999) and at 2499, 4999 and 9999 resamples (200 episodes), to show that the cost grows about
    linearly in scenarios and in resamples.
``scipy`` (what a careful user does today, per pair)
    for a (head, feature) pair, the valid (scenario, entity) pairs are flattened into two vectors ``a`` (attention)
    and ``x`` (feature); then ``scipy.stats.bootstrap((a, x), pearson, paired=True, vectorized=True,
    method="BCa", n_resamples=9999)`` and ``scipy.stats.permutation_test((a, x), pearson,
    permutation_type="pairings", vectorized=True, n_resamples=9999)``. The statistic is Pearson's r: the default
    ``rank-feature`` correlation is Pearson's r of the attention with the feature ranked once, so it costs the same,
    and Spearman would rank every resample, so the scipy time is a lower bound. ``--scipy-pairs`` pairs
    (default 2) are timed and the mean is multiplied by 64 (extrapolation, reported as such). With
    ``--scipy-episodes`` below 200 the scipy calls run on the first episodes only and their time is scaled
    linearly in the number of flattened pairs n; the BCa jackknife costs O(n^2), so this too underestimates scipy.

Reported: the time of ``analyze``, the extrapolated scipy time, their ratio (the target is at least 100x), the times at
the three sizes and resample counts with a least-squares line ``seconds = intercept + slope * size`` for each (the cost
is affine: a fixed part, mostly the estimation, which ``estimate`` alone times, plus a part linear in scenarios and in
resamples; the resampling stage alone, ``cluster_bootstrap`` + ``randomisation_test`` on the group sums, is timed at
the three resample counts too), and the peak memory: the process's
peak resident set size (``resource.getrusage(...).ru_maxrss``) read after the ``analyze`` runs and before scipy, and
the ``tracemalloc`` peak of traced allocations (numpy reports its buffers) during one reference ``analyze``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import environment, peak_rss_mib, say
from scipy import stats

from hsi_stats import HSIDataset, analyze, estimate
from hsi_stats.inference import cluster_bootstrap, randomisation_test
from hsi_stats.synthetic import generate

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (50, 100, 200)
RESAMPLES = (2499, 4999, 9999)
REQUIRED_RATIO = 100.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--repeats`` is shared with ``bench_estimate.py`` under ``nox -s bench``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best-of repeats of each analyze timing")
    parser.add_argument("--episodes", type=int, default=200, help="episodes of the reference workload")
    parser.add_argument("--steps", type=int, default=50, help="steps per episode")
    parser.add_argument("--n-resamples", type=int, default=9999)
    parser.add_argument("--scipy-pairs", type=int, default=2, help="(head, feature) pairs timed with scipy")
    parser.add_argument("--scipy-episodes", type=int, default=None,
                        help="episodes the scipy calls run on (default: all); time scaled linearly in n")
    parser.add_argument("--scipy-batch", type=int, default=100, help="`batch` of the scipy calls (memory)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_analyze.json")
    return parser.parse_args(argv)


# --------------------------------------------------------------------------------------------------- hsi_stats
def best_time(function: Callable[[], object], repeats: int) -> float:
    """Best of ``repeats`` wall-clock times of ``function()``."""
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def time_analyze(dataset: HSIDataset, n_resamples: int, repeats: int, seed: int) -> float:
    """Best wall-clock seconds of ``analyze(dataset, n_resamples=...)`` with the defaults otherwise."""
    return best_time(lambda: analyze(dataset, n_resamples=n_resamples, rng=seed), repeats)


def time_resampling(dataset: HSIDataset, n_resamples: int, repeats: int, seed: int) -> float:
    """Best seconds of the resampling stage alone: cluster bootstrap + sign-flip test on the group sums (defaults)."""
    sums = estimate(dataset).sums

    def resample() -> None:
        cluster_bootstrap(sums, n_resamples=n_resamples, rng=seed)
        randomisation_test(sums, n_resamples=n_resamples, rng=seed)

    return best_time(resample, repeats)


def growth_table(times: dict[int, float], unit: str) -> list[dict[str, float]]:
    """Rows ``{unit, seconds, seconds_per_1000_<unit>, time_ratio, size_ratio}`` (ratios to the smallest size)."""
    smallest = min(times)
    return [{unit: size, "seconds": seconds, f"seconds_per_1000_{unit}": 1000 * seconds / size,
             "time_ratio": seconds / times[smallest], "size_ratio": size / smallest}
            for size, seconds in sorted(times.items())]


def linear_fit(times: dict[int, float]) -> dict[str, float]:
    """Least-squares ``seconds = intercept + slope * size`` and its R^2 (R^2 near 1: linear growth)."""
    sizes = np.array(sorted(times), dtype=float)
    seconds = np.array([times[int(s)] for s in sizes])
    slope, intercept = np.polyfit(sizes, seconds, 1)
    fitted = intercept + slope * sizes
    r2 = 1.0 - ((seconds - fitted) ** 2).sum() / max(((seconds - seconds.mean()) ** 2).sum(), 1e-300)
    return {"intercept_seconds": float(intercept), "slope_seconds_per_unit": float(slope), "r_squared": float(r2)}


def traced_peak_mib(dataset: HSIDataset, n_resamples: int, seed: int) -> float:
    """Peak traced memory (MiB) above the baseline during one ``analyze`` (numpy buffers are traced)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    baseline = tracemalloc.get_traced_memory()[0]
    analyze(dataset, n_resamples=n_resamples, rng=seed)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (peak - baseline) / 2**20


# --------------------------------------------------------------------------------------------------- scipy
def pearson(a: np.ndarray, x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Pearson's r along ``axis`` (vectorised statistic for scipy's resampling functions)."""
    a = a - a.mean(axis=axis, keepdims=True)
    x = x - x.mean(axis=axis, keepdims=True)
    return (a * x).sum(axis=axis) / np.sqrt((a * a).sum(axis=axis) * (x * x).sum(axis=axis))


def flattened_pair(dataset: HSIDataset, head: int, feature: str) -> tuple[np.ndarray, np.ndarray]:
    """Attention and feature of every valid (scenario, entity) pair of one (head, feature)."""
    values = dataset.features[feature]
    valid = dataset.mask & np.isfinite(values)
    return dataset.attention[:, head, :][valid], values[valid]


def time_scipy_pair(a: np.ndarray, x: np.ndarray, n_resamples: int, batch: int, seed: int) -> dict[str, float]:
    """Seconds of the BCa bootstrap and of the pairings permutation test of one pair, and their results."""
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    boot = stats.bootstrap((a, x), pearson, paired=True, vectorized=True, method="BCa", n_resamples=n_resamples,
                           batch=batch, rng=rng)
    bootstrap_seconds = time.perf_counter() - start
    start = time.perf_counter()
    perm = stats.permutation_test((a, x), pearson, permutation_type="pairings", vectorized=True,
                                  n_resamples=n_resamples, batch=batch, rng=rng)
    permutation_seconds = time.perf_counter() - start
    return {"n": int(a.size), "bootstrap_seconds": bootstrap_seconds, "permutation_seconds": permutation_seconds,
            "seconds": bootstrap_seconds + permutation_seconds, "r": float(pearson(a, x)),
            "ci": [float(boot.confidence_interval.low), float(boot.confidence_interval.high)],
            "p_value": float(perm.pvalue)}


def scipy_section(dataset: HSIDataset, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``--scipy-pairs`` pairs with scipy and extrapolate to every pair (and to all episodes if capped)."""
    subset = dataset
    if args.scipy_episodes is not None and args.scipy_episodes < dataset.n_groups:
        subset = dataset.select(scenarios=dataset.group_codes < args.scipy_episodes)
    pairs = [(h, dataset.feature_names[(3 * h + 1) % dataset.n_features]) for h in range(args.scipy_pairs)]
    timed = []
    for h, feature in pairs:
        a, x = flattened_pair(subset, h, feature)
        full_n = flattened_pair(dataset, h, feature)[0].size
        say(f"  scipy: {dataset.head_names[h]} x {feature}, n = {a.size} flattened pairs ...")
        result = time_scipy_pair(a, x, args.n_resamples, args.scipy_batch, args.seed)
        result.update(head=dataset.head_names[h], feature=feature, full_n=int(full_n),
                      seconds_scaled_to_full_n=result["seconds"] * full_n / a.size)
        scaled = f" -> {result['seconds_scaled_to_full_n']:.1f} s scaled to n = {full_n}" if a.size < full_n else ""
        say(f"    bootstrap {result['bootstrap_seconds']:.1f} s + permutation test "
            f"{result['permutation_seconds']:.1f} s{scaled}")
        timed.append(result)
    n_pairs = dataset.n_heads * dataset.n_features
    per_pair = float(np.mean([t["seconds_scaled_to_full_n"] for t in timed]))
    return {
        "pairs_timed": timed,
        "episodes_used": subset.n_groups,
        "statistic": "pearson (vectorised); a lower bound for spearman",
        "batch": args.scipy_batch,
        "mean_seconds_per_pair": per_pair,
        "n_pairs": n_pairs,
        "extrapolated_seconds_all_pairs": per_pair * n_pairs,
        "extrapolation": (f"mean over {len(timed)} timed pairs x {n_pairs} pairs"
                          + ("" if subset is dataset else f"; run on {subset.n_groups} of {dataset.n_groups} episodes "
                             "and scaled linearly in n (the BCa jackknife is O(n^2): an underestimate)")),
    }


# --------------------------------------------------------------------------------------------------- main






def analyze_section(args: argparse.Namespace) -> tuple[HSIDataset, dict[str, Any]]:
    """The reference time, the growth in scenarios and in resamples, and the memory of ``analyze``."""
    datasets = {n: generate(n_episodes=n, n_steps=args.steps, rng=args.seed).dataset
                for n in sorted({*(round(args.episodes * s / SIZES[-1]) for s in SIZES), args.episodes})}
    reference = datasets[args.episodes]
    analyze(datasets[min(datasets)], n_resamples=99, rng=args.seed)  # warm up imports and caches
    say(f"reference workload: {reference.n_scenarios} scenarios in {reference.n_groups} episodes, "
        f"{reference.n_heads} heads x {reference.n_features} features, {int(reference.mask.sum())} entities")
    by_size = {}
    for n_episodes, ds in datasets.items():
        by_size[n_episodes] = time_analyze(ds, args.n_resamples, args.repeats, args.seed)
        say(f"  analyze, {n_episodes:>4} episodes ({ds.n_scenarios} scenarios), n_resamples={args.n_resamples}: "
            f"{by_size[n_episodes]:.2f} s")
    by_resamples = {args.n_resamples: by_size[args.episodes]}
    for n_resamples in RESAMPLES:
        if n_resamples not in by_resamples:
            by_resamples[n_resamples] = time_analyze(reference, n_resamples, args.repeats, args.seed)
        say(f"  analyze, {args.episodes} episodes, n_resamples={n_resamples:>5}: {by_resamples[n_resamples]:.2f} s")
    resampling = {n: time_resampling(reference, n, args.repeats, args.seed) for n in sorted(by_resamples)}
    for n_resamples, seconds in resampling.items():
        say(f"  resampling stage only (bootstrap + test), n_resamples={n_resamples:>5}: {seconds:.3f} s")
    estimate_seconds = best_time(lambda: estimate(reference), args.repeats)
    say(f"  estimate only (the part that does not depend on n_resamples), {args.episodes} episodes: "
        f"{estimate_seconds:.2f} s")
    fits = {"scenarios": linear_fit({datasets[n].n_scenarios: t for n, t in by_size.items()}),
            "resamples": linear_fit(by_resamples), "resamples (resampling stage only)": linear_fit(resampling)}
    for name, fit in fits.items():
        say(f"  linear fit in {name}: {fit['intercept_seconds']:.3f} s + {fit['slope_seconds_per_unit'] * 1000:.4f} s "
            f"per 1000 {name.split()[0]} (R^2 = {fit['r_squared']:.4f})")
    rss = peak_rss_mib()
    traced = traced_peak_mib(reference, args.n_resamples, args.seed)
    scenarios = {n: datasets[n].n_scenarios for n in datasets}
    return reference, {
        "reference_seconds": by_size[args.episodes],
        "by_scenarios": growth_table({scenarios[n]: t for n, t in by_size.items()}, "scenarios"),
        "by_scenarios_fit": fits["scenarios"],
        "by_resamples": growth_table(by_resamples, "resamples"),
        "by_resamples_fit": fits["resamples"],
        "resampling_stage_only": growth_table(resampling, "resamples"),
        "resampling_stage_only_fit": fits["resamples (resampling stage only)"],
        "estimate_only_seconds": estimate_seconds,
        "peak_rss_mib_after_analyze_runs": rss,
        "tracemalloc_peak_mib_one_reference_analyze": traced,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print it and write the JSON; exit code 1 when the speed-up is below 100x."""
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    started = environment()
    start = time.perf_counter()
    reference, toolkit = analyze_section(args)
    say(f"peak memory: resident {toolkit['peak_rss_mib_after_analyze_runs']:.0f} MiB (process, after the analyze "
        f"runs); traced {toolkit['tracemalloc_peak_mib_one_reference_analyze']:.0f} MiB (one reference analyze)")
    say(f"per-pair scipy approach ({args.scipy_pairs} pairs timed, extrapolated to "
        f"{reference.n_heads * reference.n_features}):")
    scipy_times = scipy_section(reference, args)
    ratio = scipy_times["extrapolated_seconds_all_pairs"] / toolkit["reference_seconds"]
    say(f"scipy, all pairs (extrapolated: {scipy_times['extrapolation']}): "
        f"{scipy_times['extrapolated_seconds_all_pairs']:.0f} s")
    say(f"hsi_stats.analyze: {toolkit['reference_seconds']:.2f} s -> speed-up {ratio:.0f}x "
        f"(required >= {REQUIRED_RATIO:.0f}x): {'PASS' if ratio >= REQUIRED_RATIO else 'FAIL'}")
    record = {
        "description": "hsi_stats.analyze vs per-pair scipy.stats.bootstrap + permutation_test; see "
                       "benchmarks/bench_analyze.py for the method.",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "workload": {"n_scenarios": reference.n_scenarios, "n_episodes": reference.n_groups,
                     "n_heads": reference.n_heads, "n_features": reference.n_features, "n_slots": reference.n_slots,
                     "n_entities": int(reference.mask.sum())},
        "environment": started,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "hsi_stats": toolkit,
        "scipy": scipy_times,
        "speedup": ratio,
        "speedup_required": REQUIRED_RATIO,
        "passed": ratio >= REQUIRED_RATIO,
        "elapsed_seconds": time.perf_counter() - start,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n")
    say(f"wrote {args.out}")
    return 0 if record["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
