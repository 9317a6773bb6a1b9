"""Which test of change over training: size and power of three candidates on simulated training runs.

A run is K checkpoints of the synthetic driving generator, each evaluated on its own E episodes of 10 steps. Under
``null`` the heads are the same at every checkpoint (the four planted heads fully trained throughout, four heads
with no effect): nothing changes over training. Under ``emerging`` the planted heads specialise over training
(:func:`hsi_stats.synthetic.specialising_heads`): effects 0, 0.5, 1 (K = 3); 0, 0, 0.5, 1, 1 (K = 5); 0, 0, 0,
0.2, ..., 1, 1, 1 (K = 10) times the planted strength; the no-effect heads stay as they are. ``weak`` is the same
with a quarter of the planted strength (logit effects divided by 4), where the tests differ in power.

The candidates, all computed from the same per-episode sums (:func:`hsi_stats.inference.trend.episode_sums`):

``trend`` (the package's test, :func:`hsi_stats.inference.trend.trend_test`)
    |oriented slope of the rho of the feature each head tracks over the run|, tested by permuting the episodes
    between checkpoints (the feature chosen again in each); step-down max-T over heads. Its interval is the
    inverted test.
``rank`` (the first test)
    Spearman's correlation between the checkpoint index and the K point estimates of HSI, tested by permuting the
    K checkpoint labels (all K! orders when they fit, else the same number of random ones); no correction over
    heads (``rank, Holm`` adds Holm's).
``slope of HSI`` (the previous test)
    |least-squares slope of HSI on the checkpoint index|, tested by permuting the episodes between checkpoints;
    step-down max-T over heads.
``first-last``
    |HSI at the last checkpoint - HSI at the first|, the same episode permutations and max-T.

Reported: the family-wise error over the 8 heads under ``null`` (any head with adjusted p < 0.05; exact one-sided
binomial test against 0.05), each head's rejection rate, and under ``emerging`` the power for each planted head and
the rejection rate of the no-effect heads. For ``trend``: how often its p-value is below 0.05 exactly when its 95%
interval excludes 0 (over every head of every run), and the coverage of the true trend (from a large simulation
per K; exactly 0 under ``null``), for the planted and the no-effect heads, by its interval and, for comparison, by
the stratified-bootstrap percentile interval of the same statistic (the earlier interval) and of the slope of HSI.
Results in ``benchmarks/results/trend.json`` and ``trend.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _parallel import run_pool
from _provenance import environment
from scipy import stats

RESULTS = Path(__file__).resolve().parent / "results"
ALPHA = 0.05
STEPS_PER_EPISODE = 10
TESTS = ("trend", "slope of HSI", "rank", "rank, Holm", "first-last")
#: (checkpoints K, episodes per checkpoint E, replicates under null, under emerging and under weak)
RUN_SHAPES = ((3, 40, 500, 200, 200), (5, 40, 500, 200, 200), (5, 20, 200, 200, 200), (5, 60, 200, 200, 200),
           (10, 40, 200, 200, 200))
KINDS = ("null", "emerging", "weak")
WINDOWS = {3: (1, 3), 5: (2, 4), 10: (3, 8)}  # emergence windows over checkpoints 1..K


@dataclass(frozen=True)
class Settings:
    """Everything that determines the numbers (recorded in the JSON)."""

    seed: int
    n_resamples: int
    truth_episodes: int
    scale: float  # replicates are multiplied by this (for a quick look)
    processes: int


WEAK = 0.25  # share of the planted logit effect in the ``weak`` runs


def _heads(kind: str, n_checkpoints: int) -> Any:
    from dataclasses import replace

    from hsi_stats.synthetic import default_heads, specialising_heads

    if kind == "null":
        return default_heads()
    heads = specialising_heads(*WINDOWS[n_checkpoints])
    return heads if kind == "emerging" else tuple(replace(h, beta=h.beta * WEAK) for h in heads)


def _run(kind: str, n_checkpoints: int, n_episodes: int, seed: Any) -> Any:
    from hsi_stats.synthetic import generate

    return generate(n_episodes=n_episodes, n_steps=STEPS_PER_EPISODE, checkpoints=tuple(range(1, n_checkpoints + 1)),
                    heads=_heads(kind, n_checkpoints), rng=np.random.default_rng(seed))


def _rank_p_values(hsi: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Two-sided permutation p-value of Spearman(checkpoint index, HSI) per head, as the earlier test had it."""
    n_steps = hsi.shape[0]
    ranks = stats.rankdata(hsi, axis=0)
    centred = ranks - ranks.mean(axis=0)
    index = np.arange(n_steps, dtype=float) - (n_steps - 1) / 2
    exact = math.factorial(n_steps) <= n_resamples
    orders = (np.array(list(itertools.permutations(range(n_steps)))) if exact else
              np.stack([rng.permutation(n_steps) for _ in range(n_resamples)]))
    observed = np.abs(index @ centred)
    null = np.abs(index[orders] @ centred)  # (B, H): the index permuted against fixed HSI ranks
    hits = (null >= observed - 1e-9 * np.maximum(observed, 1.0)).sum(axis=0)
    return hits / len(orders) if exact else (hits + 1) / (len(orders) + 1)


def run_replicate(task: tuple[str, int, int, int, Any, Settings]) -> dict[str, Any]:
    """Simulate one training run and apply every candidate test."""
    from statsmodels.stats.multitest import multipletests

    from hsi_stats.inference.resampling import ExceedanceCounter, quantiles_along_first
    from hsi_stats.inference.trend import episode_sums, slope_contrast, slopes, tracked_feature, trend_test
    from hsi_stats.settings import AnalysisSettings

    kind, n_checkpoints, n_episodes, index, seed, settings = task
    data_seed, test_seed = seed.spawn(2)
    dataset = _run(kind, n_checkpoints, n_episodes, data_seed).dataset
    episodes = episode_sums(dataset, AnalysisSettings())
    rng = np.random.default_rng(test_seed)
    trend = trend_test(dataset, AnalysisSettings(), n_resamples=settings.n_resamples, rng=rng).table
    contrast = slope_contrast(n_checkpoints)
    hsi = episodes.hsi(episodes.assigned(episodes.step_of_row[None, :]))

    def first_last(values: np.ndarray) -> np.ndarray:
        return values[:, -1, :] - values[:, 0, :]

    counters = {"slope of HSI": ExceedanceCounter(np.abs(slopes(hsi, contrast)[0])),
                "first-last": ExceedanceCounter(np.abs(first_last(hsi)[0]))}
    for size in (min(500, settings.n_resamples - done) for done in range(0, settings.n_resamples, 500)):
        permuted = episodes.hsi(episodes.permuted(rng, size))
        counters["slope of HSI"].update(np.abs(slopes(permuted, contrast)))
        counters["first-last"].update(np.abs(first_last(permuted)))
    p_adjusted = {name: counter.p_values(exact=False)[2] for name, counter in counters.items()}
    p_adjusted["trend"] = trend["p_adjusted"].to_numpy()
    rank_p = _rank_p_values(hsi[0], settings.n_resamples, rng)
    p_adjusted["rank"] = rank_p
    p_adjusted["rank, Holm"] = multipletests(rank_p, method="holm")[1]
    # Intervals: the package's (the inverted test), and the stratified-bootstrap percentile intervals of the same
    # statistic (its feature and sign held at this run's choice) and of the slope of HSI.
    rho = episodes.rho(episodes.assigned(episodes.step_of_row[None, :]))[0]  # (K, H, F)
    feature, orientation = tracked_feature(rho)
    resampled = episodes.rho(episodes.resampled(rng, settings.n_resamples))  # (B, K, H, F)
    heads = np.arange(rho.shape[1])
    replicates = {"hsi": slopes(np.nanmax(np.abs(resampled), axis=3), contrast),
                  "bootstrap": orientation * slopes(resampled[:, :, heads, feature], contrast)}
    intervals = {name: [quantiles_along_first(values, np.asarray(q)).tolist() for q in (0.025, 0.975)]
                 for name, values in replicates.items()}
    intervals["reported"] = [trend["ci_low"].tolist(), trend["ci_high"].tolist()]
    excludes = ((trend["ci_low"] > 0) | (trend["ci_high"] < 0)).to_numpy()
    return {"kind": kind, "K": n_checkpoints, "E": n_episodes, "index": index,
            "p_adjusted": {k: np.asarray(v).tolist() for k, v in p_adjusted.items()},
            "agree": (excludes == (trend["p_value"].to_numpy() < ALPHA)).tolist(),
            "feature": feature.tolist(), "orientation": orientation.tolist(), "interval": intervals}


def true_slopes(kind: str, n_checkpoints: int, settings: Settings, seed: Any) -> dict[str, list[Any]]:
    """Slopes of the HSI (H,) and of every rho (H, F) of a large simulation (``truth_episodes`` per checkpoint)."""
    from hsi_stats.inference.trend import episode_sums, slope_contrast
    from hsi_stats.settings import AnalysisSettings

    episodes = episode_sums(_run(kind, n_checkpoints, settings.truth_episodes, seed).dataset, AnalysisSettings())
    rho = episodes.rho(episodes.assigned(episodes.step_of_row[None, :]))[0]  # (K, H, F)
    contrast = slope_contrast(n_checkpoints)
    return {"hsi": np.einsum("k,kh->h", contrast, np.abs(rho).max(axis=2)).tolist(),
            "rho": np.einsum("k,khf->hf", contrast, rho).tolist()}


def _binomial_greater(k: int, n: int) -> float:
    return float(stats.binomtest(int(k), int(n), ALPHA, alternative="greater").pvalue)


def summarise(results: list[dict[str, Any]], truth: dict[int, list[float]]) -> dict[str, Any]:
    """Size, power and coverage per design and test."""
    from hsi_stats.synthetic import default_heads

    planted = [i for i, spec in enumerate(default_heads()) if spec.feature is not None]
    no_effect = [i for i, spec in enumerate(default_heads()) if spec.feature is None]
    out: dict[str, Any] = {}
    for n_checkpoints, n_episodes, *_ in RUN_SHAPES:
        key = f"K={n_checkpoints}, E={n_episodes}"
        entry: dict[str, Any] = {}
        for kind in KINDS:
            rows = [r for r in results if (r["kind"], r["K"], r["E"]) == (kind, n_checkpoints, n_episodes)]
            if not rows:
                continue
            per_test = {}
            for test in TESTS:
                rejected = np.array([r["p_adjusted"][test] for r in rows]) < ALPHA  # (R, H)
                if kind == "null":
                    k = int(rejected.any(axis=1).sum())
                    per_test[test] = {"fwer": k / len(rows), "binomial_p": _binomial_greater(k, len(rows)),
                                      "per_head": rejected.mean(axis=0).round(4).tolist()}
                else:
                    per_test[test] = {"power_per_planted_head": rejected[:, planted].mean(axis=0).round(4).tolist(),
                                      "power_all_planted": float(rejected[:, planted].all(axis=1).mean()),
                                      "no_effect_rejection": float(rejected[:, no_effect].mean())}
            entry[kind] = {"replicates": len(rows), "tests": per_test}
            true_hsi = np.asarray(truth[f"{kind}, K={n_checkpoints}"]["hsi"])
            true_rho = np.asarray(truth[f"{kind}, K={n_checkpoints}"]["rho"])
            heads = np.arange(true_hsi.size)
            coverage = {}
            for name in ("reported", "bootstrap", "hsi"):
                true = (np.broadcast_to(true_hsi, (len(rows), true_hsi.size)) if name == "hsi" else
                        np.array([np.asarray(r["orientation"]) * true_rho[heads, r["feature"]] for r in rows]))
                low, high = (np.array([r["interval"][name][i] for r in rows]) for i in (0, 1))
                covered = (low <= true) & (true <= high)
                coverage[name] = {"planted": float(covered[:, planted].mean()),
                                  "no_effect": float(covered[:, no_effect].mean())}
            entry[kind]["slope_ci_coverage"] = coverage
            entry[kind]["agreement"] = float(np.mean([r["agree"] for r in rows]))
            entry[kind]["true_hsi_slope"] = true_hsi.round(4).tolist()
        out[key] = entry
    return out


def markdown(summary: dict[str, Any], settings: Settings) -> str:
    """The docs' tables: size (family-wise, over 8 heads) and power (all 4 planted heads found) per design, then
    the coverage of the trend's intervals."""
    header = ("| checkpoints K, episodes E | " + " | ".join(f"size: {t}" for t in TESTS) + " | "
              + " | ".join(f"power: {t} (full / quarter effect)" for t in TESTS) + " |")
    lines = [header, "|" + "---|" * (2 * len(TESTS) + 1)]
    for design, entry in summary.items():
        null, emerging, weak = entry.get("null"), entry.get("emerging"), entry.get("weak")
        size = [f"{null['tests'][t]['fwer']:.3f} (p = {null['tests'][t]['binomial_p']:.2g})" if null else "—"
                for t in TESTS]
        power = [f"{emerging['tests'][t]['power_all_planted']:.2f} / {weak['tests'][t]['power_all_planted']:.2f}"
                 if emerging and weak else "—" for t in TESTS]
        lines.append(f"| {design} | " + " | ".join(size) + " | " + " | ".join(power) + " |")
    intervals = {"reported": "trend, the inverted test (reported)",
                 "bootstrap": "trend, stratified-bootstrap percentile", "hsi": "slope of HSI, bootstrap percentile"}
    kinds = {"emerging": "emerging", "null": "no change"}
    coverage = ["| checkpoints K, episodes E | " + " | ".join(f"{label}: {kinds[kind]}" for label in intervals.values()
                                                             for kind in kinds) + " |",
                "|" + "---|" * (len(intervals) * len(kinds) + 1)]
    for design, entry in summary.items():
        cells = [(f"{entry[kind]['slope_ci_coverage'][name]['planted']:.3f} / "
                  f"{entry[kind]['slope_ci_coverage'][name]['no_effect']:.3f}") if kind in entry else "—"
                 for name in intervals for kind in kinds]
        coverage.append(f"| {design} | " + " | ".join(cells) + " |")
    notes = ("Size: share of null runs (same heads at every checkpoint) in which any of the 8 heads has adjusted "
             "p < 0.05, with the one-sided exact binomial p-value against 0.05. Power: share of runs whose planted "
             "heads emerge over training in which all four have adjusted p < 0.05, at the full planted strength "
             "and at a quarter of it. `trend` is the package's test (the oriented slope of the tracked feature's "
             "rho); `rank` is uncorrected, the others are corrected over the 8 heads (Holm, or max-T from the same "
             "permutations).")
    agreement = min(entry[kind]["agreement"] for entry in summary.values() for kind in KINDS if kind in entry)
    coverage_notes = ("Coverage (planted heads / no-effect heads) of the 95% intervals of the trend, against a "
                      f"simulation of {settings.truth_episodes} episodes per checkpoint (emerging heads at full "
                      f"strength) or 0 (no change). {STEPS_PER_EPISODE} steps per episode; {settings.n_resamples} "
                      "permutations and bootstrap resamples. The reported interval excludes 0 exactly when the "
                      f"test's p-value is below 0.05 in {agreement:.4f} of the heads of every design and kind of run "
                      f"(acceptance: at least 0.99: {'PASS' if agreement >= 0.99 else 'FAIL'}).")
    return ("\n".join(lines) + "\n\n" + notes + "\n\n" + "\n".join(coverage) + "\n\n" + coverage_notes + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20251202)
    parser.add_argument("--n-resamples", type=int, default=999, help="permutations and bootstrap resamples")
    parser.add_argument("--truth-episodes", type=int, default=2000, help="episodes per checkpoint of the truth")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every replicate count (quick look)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    settings = Settings(args.seed, args.n_resamples, args.truth_episodes, args.scale, args.processes)
    started = {**environment(), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    root = np.random.SeedSequence(settings.seed)
    truth_seed, replicate_seed = root.spawn(2)
    tasks = []
    for (n_checkpoints, n_episodes, *counts), design_seed in zip(RUN_SHAPES, replicate_seed.spawn(len(RUN_SHAPES)),
                                                                 strict=True):
        for kind, replicates, kind_seed in zip(KINDS, counts, design_seed.spawn(len(KINDS)), strict=True):
            count = max(2, round(replicates * settings.scale))
            tasks += [(kind, n_checkpoints, n_episodes, i, s, settings) for i, s in enumerate(kind_seed.spawn(count))]
    start = time.perf_counter()
    pairs = [(kind, k) for kind in KINDS[1:] for k in sorted(WINDOWS)]
    truth = {f"{kind}, K={k}": true_slopes(kind, k, settings, s)
             for (kind, k), s in zip(pairs, truth_seed.spawn(len(pairs)), strict=True)}
    for k in sorted(WINDOWS):  # nothing changes under null: every true slope is 0
        truth[f"null, K={k}"] = {name: np.zeros_like(values).tolist()
                                 for name, values in truth[f"emerging, K={k}"].items()}
    results, seconds = run_pool(run_replicate, tasks, settings.processes, "trend")
    summary = summarise(results, truth)
    table = markdown(summary, settings)
    args.out.mkdir(parents=True, exist_ok=True)
    record = {"description": "Size and power of tests of change over training; see benchmarks/trend_study.py.",
              "settings": asdict(settings), "designs": [list(d) for d in RUN_SHAPES], "windows": WINDOWS,
              "steps_per_episode": STEPS_PER_EPISODE, "environment": started,
              "elapsed_seconds": time.perf_counter() - start, "replicate_seconds": seconds,
              "true_slopes": truth, "summary": summary, "markdown": table}
    (args.out / "trend.json").write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")
    (args.out / "trend.md").write_text(table, encoding="utf-8")
    print(table)
    print(f"elapsed: {(time.perf_counter() - start) / 60:.1f} min; wrote {args.out / 'trend.json'} and trend.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
