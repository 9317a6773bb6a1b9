r"""Calibration study of :func:`hsi_stats.analyze` on synthetic driving data with clustering and a density confound.

Run with ``nox -s calibration`` (or ``python benchmarks/calibration.py --replicates 500``). Writes
``benchmarks/results/calibration.json`` (every number and setting) and ``benchmarks/results/calibration.md`` (the
Markdown table of the docs) and prints the table.

What is simulated
-----------------
:func:`hsi_stats.synthetic.generate` with ``n_episodes=40, n_steps=30`` (8 slots, 2-8 vehicles present):

``null`` data (``null=True``)
    eight heads with no feature effect but a persistent per-episode slot preference, in traffic whose density
    confounds the features (dense episodes: more, closer and slower vehicles). Every (head, feature) pair is a
    true null: because the preferred slot is uniform over all slots, the population within-scenario rho is
    exactly 0 (checked on a large simulation, see *True values*).
``planted`` data (default heads)
    h0-h3 have planted effects (ttc, distance_to_ego, is_left, is_ahead), h4-h7 none.

Every replicate ``r`` draws its data and its analysis generator from ``SeedSequence(seed).spawn(2)[1].spawn(R)[r]``
(spawned again into null data, null analysis, planted data, planted analysis), so replicate ``r`` is the same
whatever R is. The same data set and the same analysis seed are used by every configuration, so configurations are
compared on paired data (their bootstrap draws coincide too).

Configurations
--------------
``defaults``
    ``analyze(ds, rng=...)``: the default estimator and correlation (``within``, ``rank-feature``; both recorded in
    the JSON), cluster bootstrap (the default ``ci_method``, recorded too), sign-flip test (40 groups), step-down
    max-T, ``n_resamples=9999`` unless ``--n-resamples`` says otherwise.
``within-scenario``
    the same with ``scheme="within-scenario"`` (independent permutation per scenario, ignoring the episodes), with
    fewer resamples (``--n-resamples-within-scenario``, default 999) because each permutation costs about 1 ms.
``original`` (null data only, contrast)
    ``estimate(ds, estimator="pooled", correlation="pearson")``; a head is "specialised" when HSI >= 0.3. Also
    :func:`scipy.stats.pearsonr` over the pooled valid (scenario, entity) pairs of each (head, feature), as if
    they were independent.

What is measured, and how it is tested
--------------------------------------
Per-test false-positive rate (null data): share of the 64 (head, feature) tests with raw ``p_value < 0.05``.
The 64 tests of one replicate are dependent (``is_ahead``/``is_behind`` are complementary, so their p-values are
identical; ttc/distance/closing speed are collinear), so R x 64 tests are not R x 64 Bernoulli trials. Two exact
one-sided binomial tests against 0.05 are reported, both over the R independent replicates:

* per pair: for each fixed (head, feature), k rejections in R replicates, ``binomtest(k, R, 0.05,
  alternative="greater")``. The pair with the highest rate is reported with its p-value, also Bonferroni-adjusted
  over the 64 pairs (the maximum of 64 rates is itself a selection);
* pooled (the acceptance test): the mean rate over the 64 pairs, converted to an effective count
  ``round(R * rate)`` out of R. The per-replicate share of rejections is an average of 64 correlated Bernoulli
  variables with mean p, whose variance is at most p(1 - p), the variance of a single one, so a binomial with R
  trials is conservative (it assumes the 64 tests are perfectly dependent). A replicate-level z-test (mean and
  standard deviation of the per-replicate shares) is reported beside it.

Family-wise error rate (null data): share of replicates with any ``p_adjusted < 0.05`` over all 64 tests; exact
binomial test with R trials (one Bernoulli per replicate, replicates independent). Also over the 8 head-level HSI
tests, and the share of replicates in which any head is validated with a label.

Coverage: share of 95% intervals ``[ci_low, ci_high]`` of rho containing the true rho, averaged over the 64 pairs and
the R replicates, with a replicate-level Monte-Carlo standard error. On planted data the true rho is the value of the
``within`` estimator on a large simulation from the same generator (``--truth-episodes``, default 20,000 episodes in
chunks; within rho is a ratio of additive sums, so chunk sums add exactly); it is computed once and cached in the JSON
(reused when the seed and sizes match). On null data the truth is exactly 0; the large simulation is reported as a
check.

Interval methods: besides the default ``ci_method`` of ``analyze``, every other method of
``hsi_stats.settings.CI_METHODS`` is computed with :func:`~hsi_stats.inference.cluster_bootstrap` on the same
group sums, the same number of resamples and the same seed as the analysis, hence on the same bootstrap draws (a paired
comparison of coverage). The coverage of the HSI intervals (the projection of the simultaneous band of the head's
rhos, whatever the method of rho) is reported for the planted heads and for the heads with no effect (true HSI =
max |true rho| of the large simulation) on planted data, and for every head on null data (true HSI 0), with the
number of intervals that do not hold their own estimate (there must be none).

Coverage of the focus (planted data): share of 95% focus intervals containing the focus of the large simulation,
over the pairs whose direction the catalog fixes (``agent_speeds``, expected sign "either", takes its direction from
the sign of rho and is left out), for all of them and for the four planted pairs.

Power (planted data): share of the four planted (head, feature) tests with ``p_adjusted < 0.05``; share of planted
heads validated with the planted label. On the no-effect heads of planted data, the family-wise error over their 32
true-null tests is reported too.

Acceptance (issue text): with the defaults, neither the FWER nor the per-test rate is significantly above 0.05
(one-sided exact binomial test at 0.01), and the average coverage on planted data lies in [0.93, 0.97].

Runs on ``--processes`` worker processes (default 2), each with one BLAS thread. The package's version, the git
commit and a SHA-256 of the package's source files are recorded when the study starts (the numbers belong to that code).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _parallel import run_pool
from _provenance import environment, package_source_sha256
from scipy import stats

ALPHA = 0.05
TEST_LEVEL = 0.01
COVERAGE_RANGE = (0.93, 0.97)
HSI_COVERAGE_FLOOR = 0.93  # the HSI interval is a projection: conservative by construction, never below
SPECIALISED = 0.3
RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = ("defaults", "within-scenario")
KINDS = ("null", "planted")


# --------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Everything that determines the numbers (recorded in the JSON)."""

    replicates: int
    seed: int
    n_episodes: int
    n_steps: int
    n_resamples: int
    n_resamples_within_scenario: int
    truth_episodes: int
    truth_chunk: int
    processes: int

    def analyze_options(self, config: str) -> dict[str, Any]:
        """Keyword arguments of :func:`hsi_stats.analyze` for one configuration."""
        if config == "defaults":
            return {"n_resamples": self.n_resamples}
        return {"scheme": "within-scenario", "n_resamples": self.n_resamples_within_scenario}


def parse_args(argv: list[str] | None = None) -> tuple[Settings, argparse.Namespace]:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", "-R", type=int, default=500, help="replicates per configuration")
    parser.add_argument("--seed", type=int, default=20251128, help="master seed (SeedSequence entropy)")
    parser.add_argument("--episodes", type=int, default=40, help="episodes per data set")
    parser.add_argument("--steps", type=int, default=30, help="steps per episode")
    parser.add_argument("--n-resamples", type=int, default=9999, help="resamples of the defaults")
    parser.add_argument("--n-resamples-within-scenario", type=int, default=999,
                        help="resamples of the within-scenario configuration")
    parser.add_argument("--truth-episodes", type=int, default=20000, help="episodes of the large simulation")
    parser.add_argument("--truth-chunk", type=int, default=2000, help="episodes per chunk of the large simulation")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of calibration.json / calibration.md")
    parser.add_argument("--recompute-truth", action="store_true", help="ignore the cached true values")
    parser.add_argument("--tables-only", action="store_true",
                        help="no simulation: recompute the acceptance checks and the table from calibration.json")
    args = parser.parse_args(argv)
    settings = Settings(args.replicates, args.seed, args.episodes, args.steps, args.n_resamples,
                        args.n_resamples_within_scenario, args.truth_episodes, args.truth_chunk, args.processes)
    return settings, args


def replicate_seeds(seed: int, replicates: int) -> tuple[np.random.SeedSequence, list[np.random.SeedSequence]]:
    """The seed of the large simulation and one seed per replicate, all spawned from the master seed."""
    truth, replicate_root = np.random.SeedSequence(seed).spawn(2)
    return truth, replicate_root.spawn(replicates)


# --------------------------------------------------------------------------------------------------- truth
def catalog_directions(feature_names: tuple[str, ...] | list[str], n_heads: int) -> np.ndarray:
    """The focus direction the catalog fixes per (head, feature): +1, -1, or 0 for "either" (taken from rho)."""
    from hsi_stats import DRIVING_CATALOG

    signs = [{"positive": 1, "negative": -1}.get(DRIVING_CATALOG.meaning(name).sign, 0) for name in feature_names]
    return np.tile(np.array(signs), (n_heads, 1))


def large_simulation_rho(kind: str, settings: Settings, seed: np.random.SeedSequence) -> dict[str, Any]:
    """The default within estimator's rho and the focus on ``truth_episodes`` episodes, summed chunk by chunk.

    Both are ratios of additive sums, so the chunk sums add exactly; a chunk-level SE is reported for rho. The
    focus is computed in both directions and kept in the catalog's (NaN where the catalog says "either").
    """
    from hsi_stats import estimate
    from hsi_stats.focus import FocusSums, focus_sums
    from hsi_stats.synthetic import generate

    n_chunks = max(1, -(-settings.truth_episodes // settings.truth_chunk))
    totals: list[np.ndarray] = []
    chunk_rho = []
    names: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    for chunk_seed in seed.spawn(n_chunks):
        run = generate(n_episodes=settings.truth_chunk, n_steps=settings.n_steps, null=kind == "null",
                       rng=np.random.default_rng(chunk_seed))
        est = estimate(run.dataset)
        sums = est.sums
        shape = est.rho.shape
        down, up = (focus_sums(run.dataset, np.full(shape, d)) for d in (-1, 1))
        parts = [sums.cross.sum(axis=0), sums.attention_ss.sum(axis=0), sums.feature_ss.sum(axis=0),
                 *(getattr(side, name).sum(axis=0) for side in (down, up) for name in ("total", "count", "floor"))]
        totals = parts if not totals else [t + p for t, p in zip(totals, parts, strict=True)]
        chunk_rho.append(est.rho)
        names = (est.head_names, est.feature_names)
    cross, attention_ss, feature_ss, *sides = totals
    rho = cross / np.sqrt(attention_ss * feature_ss[None, :])
    # the focus of all the episodes together, by the package's definition (a negative mean excess over its floor)
    down_focus, up_focus = (FocusSums(*(part[None] for part in sides[k:k + 3])).focus() for k in (0, 3))
    se = np.std(np.stack(chunk_rho), axis=0, ddof=1) / np.sqrt(n_chunks) if n_chunks > 1 else np.full_like(rho, np.nan)
    directions = catalog_directions(names[1], len(names[0]))
    focus = np.where(directions < 0, down_focus, up_focus)
    focus = np.where(directions == 0, np.nan, focus)
    return {"episodes": n_chunks * settings.truth_chunk, "chunks": n_chunks, "heads": list(names[0]),
            "features": list(names[1]), "rho": rho.tolist(), "mc_se": se.tolist(), "focus": focus.tolist(),
            "max_abs_rho": float(np.abs(rho).max()), "max_mc_se": float(np.nanmax(se))}


def truth_key(settings: Settings) -> dict[str, Any]:
    """What the cached true values depend on (the default estimator and correlation define the true rho)."""
    from hsi_stats.settings import AnalysisSettings

    defaults = AnalysisSettings()
    return {"seed": settings.seed, "n_steps": settings.n_steps, "truth_episodes": settings.truth_episodes,
            "truth_chunk": settings.truth_chunk, "estimator": defaults.estimator,
            "correlation": defaults.correlation, "with_focus": True, "focus_scale": "floor-scaled"}


def load_or_compute_truth(settings: Settings, out: Path, recompute: bool) -> tuple[dict[str, Any], float, bool]:
    """True rho of both kinds of data: from the cache in ``calibration.json`` when its key matches, else simulated."""
    cached_path = out / "calibration.json"
    if not recompute and cached_path.exists():
        cached = json.loads(cached_path.read_text()).get("truth", {})
        if cached.get("key") == truth_key(settings):
            return cached, 0.0, True
    start = time.perf_counter()
    seed, _ = replicate_seeds(settings.seed, 0)
    null_seed, planted_seed = seed.spawn(2)
    truth = {"key": truth_key(settings),
             "null": large_simulation_rho("null", settings, null_seed),
             "planted": large_simulation_rho("planted", settings, planted_seed)}
    return truth, time.perf_counter() - start, False


# --------------------------------------------------------------------------------------------------- replicates
def _analyze_numbers(ds: Any, options: dict[str, Any], seed: np.random.SeedSequence) -> dict[str, Any]:
    """The numbers of one :func:`hsi_stats.analyze` call that the study aggregates."""
    from hsi_stats import analyze

    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = analyze(ds, rng=np.random.default_rng(seed), **options)
    pairs, heads = result.pairs, result.heads
    return {
        "seconds": time.perf_counter() - start,
        "warnings": len(caught),
        "scheme": result.settings["scheme"],
        "ci_method": result.settings["ci_method"],
        "correlation": result.settings["correlation"],
        "hsi": heads["hsi"].to_numpy(float),
        "hsi_low": heads["ci_low"].to_numpy(float),
        "hsi_high": heads["ci_high"].to_numpy(float),
        "rho": pairs["rho"].to_numpy(float),
        "ci_low": pairs["ci_low"].to_numpy(float),
        "ci_high": pairs["ci_high"].to_numpy(float),
        "p_value": pairs["p_value"].to_numpy(float),
        "p_adjusted": pairs["p_adjusted"].to_numpy(float),
        "focus_low": pairs["focus_ci_low"].to_numpy(float),
        "focus_high": pairs["focus_ci_high"].to_numpy(float),
        "head_p_value": heads["hsi_p_value"].to_numpy(float),
        "head_p_adjusted": heads["hsi_p_adjusted"].to_numpy(float),
        "validated": heads["validated"].to_numpy(bool),
        "label": heads["label"].astype(str).tolist(),
    }


def _original_numbers(ds: Any) -> dict[str, Any]:
    """The original method on one data set: pooled Pearson HSI and iid Pearson p-values per (head, feature)."""
    from hsi_stats import estimate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = estimate(ds, estimator="pooled", correlation="pearson")
        p_iid = np.full(est.rho.shape, np.nan)
        for f, name in enumerate(ds.feature_names):
            values = ds.features[name]
            valid = ds.mask & np.isfinite(values)
            x = values[valid]
            for h in range(ds.n_heads):
                p_iid[h, f] = stats.pearsonr(ds.attention[:, h, :][valid], x).pvalue
    return {"hsi": est.hsi, "primary": list(est.primary_feature), "p_iid": p_iid.reshape(-1)}


def default_ci_method() -> str:
    """The ``ci_method`` that :func:`hsi_stats.analyze` uses by default."""
    from hsi_stats.settings import AnalysisSettings

    return AnalysisSettings().ci_method


def other_ci_methods() -> tuple[str, ...]:
    """Interval methods of the package other than the default of ``analyze``."""
    from hsi_stats.settings import CI_METHODS

    default = default_ci_method()
    return tuple(m for m in CI_METHODS if m != default)


def _other_intervals(ds: Any, n_resamples: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    """rho intervals of the other methods, on the bootstrap draws of the analysis (same sums, seed, resamples)."""
    from hsi_stats import estimate
    from hsi_stats.inference import cluster_bootstrap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sums = estimate(ds).sums
        out = {}
        for method in other_ci_methods():
            boot = cluster_bootstrap(sums, n_resamples=n_resamples, method=method, rng=np.random.default_rng(seed))
            out[method] = {"ci_low": boot.rho_low.reshape(-1), "ci_high": boot.rho_high.reshape(-1)}
    return out


def run_replicate(task: tuple[str, int, np.random.SeedSequence, Settings]) -> dict[str, Any]:
    """Simulate one data set and analyse it under every configuration (and the original method on null data)."""
    from hsi_stats.synthetic import generate

    kind, index, seed, settings = task
    null_data, null_analysis, planted_data, planted_analysis = seed.spawn(4)
    data_seed, analysis_seed = (null_data, null_analysis) if kind == "null" else (planted_data, planted_analysis)
    run = generate(n_episodes=settings.n_episodes, n_steps=settings.n_steps, null=kind == "null",
                   rng=np.random.default_rng(data_seed))
    out: dict[str, Any] = {"kind": kind, "index": index,
                           "configs": {c: _analyze_numbers(run.dataset, settings.analyze_options(c), analysis_seed)
                                       for c in CONFIGS}}
    out["other_intervals"] = _other_intervals(run.dataset, settings.n_resamples, analysis_seed)
    if kind == "null":
        out["original"] = _original_numbers(run.dataset)
    return out


def run_all(settings: Settings) -> tuple[list[dict[str, Any]], float]:
    """Every (kind, replicate) on a pool of spawned worker processes with one BLAS thread each."""
    _, seeds = replicate_seeds(settings.seed, settings.replicates)
    tasks = [(kind, r, seeds[r], settings) for r in range(settings.replicates) for kind in KINDS]
    results, seconds = run_pool(run_replicate, tasks, settings.processes, "calibration")
    results.sort(key=lambda r: (r["kind"], r["index"]))
    return results, seconds


# --------------------------------------------------------------------------------------------------- statistics
def binomial_greater(k: int, n: int, p0: float = ALPHA) -> float:
    """One-sided exact binomial p-value of k successes in n trials against ``p0`` (alternative: greater)."""
    return float(stats.binomtest(int(k), int(n), p0, alternative="greater").pvalue)


def rate_summary(rejected: np.ndarray, pair_names: list[str]) -> dict[str, Any]:
    """Per-test rate of a (R, m) array of rejections (NaN = test undefined), with the binomial tests of the doc."""
    defined = ~np.isnan(rejected)
    hits = np.where(defined, rejected, 0.0)
    n_rep = rejected.shape[0]
    per_pair_k = hits.sum(axis=0).astype(int)
    per_pair_n = defined.sum(axis=0)
    per_pair_rate = per_pair_k / np.maximum(per_pair_n, 1)
    pooled = float(hits.sum() / defined.sum())
    per_replicate = hits.sum(axis=1) / np.maximum(defined.sum(axis=1), 1)
    sd = float(per_replicate.std(ddof=1))
    effective_k = round(pooled * n_rep)
    worst = int(np.argmax(per_pair_rate))
    worst_p = binomial_greater(per_pair_k[worst], per_pair_n[worst])
    per_pair_p = np.array([binomial_greater(k, n) for k, n in zip(per_pair_k, per_pair_n, strict=True)])
    z = (per_replicate.mean() - ALPHA) / (sd / np.sqrt(n_rep)) if sd > 0 else float("nan")
    return {
        "rate": pooled,
        "tests": int(defined.sum()),
        "undefined_tests": int((~defined).sum()),
        "replicate_mean": float(per_replicate.mean()),
        "replicate_sd": sd,
        "replicate_z_test_p": float(stats.norm.sf(z)) if np.isfinite(z) else float("nan"),
        "binomial_effective_k": int(effective_k),
        "binomial_n": int(n_rep),
        "binomial_p": binomial_greater(effective_k, n_rep),
        "max_pair": pair_names[worst],
        "max_pair_rate": float(per_pair_rate[worst]),
        "max_pair_k": int(per_pair_k[worst]),
        "max_pair_binomial_p": worst_p,
        "max_pair_binomial_p_bonferroni": min(1.0, worst_p * len(pair_names)),
        "pairs_with_binomial_p_below_0.01": int((per_pair_p < TEST_LEVEL).sum()),
        "per_pair_rate": dict(zip(pair_names, per_pair_rate.round(4).tolist(), strict=True)),
    }


def share_summary(indicator: np.ndarray) -> dict[str, Any]:
    """Share of replicates with an event (one Bernoulli per replicate) and its exact binomial test against 0.05."""
    k, n = int(indicator.sum()), int(indicator.size)
    return {"rate": k / n, "k": k, "n": n, "binomial_p": binomial_greater(k, n)}


def coverage_summary(low: np.ndarray, high: np.ndarray, truth: np.ndarray, pair_names: list[str],
                     subsets: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Coverage of (R, m) intervals of the true values (m,): mean over pairs and replicates, with a replicate SE."""
    defined = np.isfinite(low) & np.isfinite(high)
    covered = np.where(defined, (low <= truth) & (truth <= high), np.nan)
    per_replicate = np.nanmean(covered, axis=1)
    per_pair = np.nanmean(covered, axis=0)
    out = {
        "coverage": float(np.nanmean(covered)),
        "mc_se": float(per_replicate.std(ddof=1) / np.sqrt(per_replicate.size)),
        "undefined_intervals": int((~defined).sum()),
        "mean_width": float(np.nanmean(high - low)),
        "below": float(np.nanmean(np.where(defined, truth < low, np.nan))),
        "above": float(np.nanmean(np.where(defined, truth > high, np.nan))),
        "min_pair": pair_names[int(np.nanargmin(per_pair))],
        "min_pair_coverage": float(np.nanmin(per_pair)),
        "max_pair_coverage": float(np.nanmax(per_pair)),
        "per_pair": dict(zip(pair_names, per_pair.round(4).tolist(), strict=True)),
    }
    for name, columns in (subsets or {}).items():
        out[f"coverage_{name}"] = float(np.nanmean(covered[:, columns]))
    return out


# --------------------------------------------------------------------------------------------------- aggregation
def _stack(results: list[dict[str, Any]], config: str, key: str) -> np.ndarray:
    return np.stack([np.asarray(r["configs"][config][key]) for r in results])


def _outside_estimate(results: list[dict[str, Any]], config: str) -> int:
    """How many HSI intervals do not hold their own estimate."""
    hsi = _stack(results, config, "hsi")
    low, high = _stack(results, config, "hsi_low"), _stack(results, config, "hsi_high")
    return int(((hsi < low - 1e-12) | (hsi > high + 1e-12)).sum())


def _reject(p: np.ndarray) -> np.ndarray:
    """Rejections at 0.05 as floats, NaN where the p-value is undefined."""
    return np.where(np.isnan(p), np.nan, (p < ALPHA).astype(float))


def null_config_summary(results: list[dict[str, Any]], config: str, truth: dict[str, Any],
                        pair_names: list[str]) -> dict[str, Any]:
    """False positives, family-wise error and coverage on null data for one configuration."""
    p_adj = _stack(results, config, "p_adjusted")
    head_p_adj = _stack(results, config, "head_p_adjusted")
    zero = np.zeros(len(pair_names))
    simulated = np.asarray(truth["rho"]).reshape(-1)
    return {
        "per_test_fpr": rate_summary(_reject(_stack(results, config, "p_value")), pair_names),
        "head_test_fpr": share_summary(_stack(results, config, "head_p_value").reshape(-1) < ALPHA),
        "fwer_pairs": share_summary((p_adj < ALPHA).any(axis=1)),
        "fwer_heads": share_summary((head_p_adj < ALPHA).any(axis=1)),
        "any_validated_label": share_summary(_stack(results, config, "validated").any(axis=1)),
        "per_head_label_rate": float(_stack(results, config, "validated").mean()),
        "coverage_truth_zero": coverage_summary(_stack(results, config, "ci_low"), _stack(results, config, "ci_high"),
                                                zero, pair_names),
        "coverage_truth_simulated": coverage_summary(_stack(results, config, "ci_low"),
                                                     _stack(results, config, "ci_high"), simulated, pair_names),
        "hsi_coverage_truth_zero": coverage_summary(_stack(results, config, "hsi_low"),
                                                    _stack(results, config, "hsi_high"),
                                                    np.zeros(len(truth["heads"])), list(truth["heads"])),
        "hsi_outside_estimate": _outside_estimate(results, config),
        "seconds_per_analysis": float(_stack(results, config, "seconds").mean()),
        "warnings": int(_stack(results, config, "warnings").sum()),
        "scheme": results[0]["configs"][config]["scheme"],
        "ci_method": results[0]["configs"][config]["ci_method"],
        "correlation": results[0]["configs"][config]["correlation"],
    }


def _planted_indices(pair_names: list[str], heads: list[str]) -> tuple[list[int], list[int], list[int]]:
    """Columns of the planted pairs, of the no-effect heads' pairs, and the planted head rows."""
    from hsi_stats.synthetic import default_heads

    specs = default_heads()
    planted = [pair_names.index(f"{s.name}|{s.feature}") for s in specs if s.feature is not None]
    null_heads = {s.name for s in specs if s.feature is None}
    no_effect = [i for i, name in enumerate(pair_names) if name.split("|")[0] in null_heads]
    head_rows = [heads.index(s.name) for s in specs if s.feature is not None]
    return planted, no_effect, head_rows


def planted_config_summary(results: list[dict[str, Any]], config: str, truth: dict[str, Any],
                           pair_names: list[str]) -> dict[str, Any]:
    """Coverage, power and label recovery on planted data for one configuration."""
    from hsi_stats.synthetic import default_heads

    heads = truth["heads"]
    planted, no_effect, head_rows = _planted_indices(pair_names, heads)
    expected = {s.name: s for s in default_heads()}
    p_adj = _stack(results, config, "p_adjusted")
    validated = _stack(results, config, "validated")
    labels = np.array([r["configs"][config]["label"] for r in results])
    right = np.array([[labels[r, h] == _expected_label(expected[heads[h]]) and validated[r, h] for h in head_rows]
                      for r in range(len(results))])
    rho_true = np.asarray(truth["rho"]).reshape(-1)
    subsets = {"planted_pairs": np.array(planted), "no_effect_heads": np.array(no_effect)}
    hsi_true = np.abs(np.asarray(truth["rho"])).max(axis=1)[head_rows]
    null_rows = [h for h in range(len(heads)) if h not in head_rows]
    hsi_low = _stack(results, config, "hsi_low")[:, head_rows]
    hsi_high = _stack(results, config, "hsi_high")[:, head_rows]
    focus_true = np.asarray(truth["focus"], dtype=float).reshape(-1)
    fixed = np.isfinite(focus_true)  # directions the catalog fixes
    focus_low = np.where(fixed, _stack(results, config, "focus_low"), np.nan)
    focus_high = np.where(fixed, _stack(results, config, "focus_high"), np.nan)
    return {
        "coverage": coverage_summary(_stack(results, config, "ci_low"), _stack(results, config, "ci_high"), rho_true,
                                     pair_names, subsets),
        "hsi_coverage_planted_heads": coverage_summary(hsi_low, hsi_high, hsi_true, [heads[h] for h in head_rows]),
        "hsi_coverage_null_heads": coverage_summary(_stack(results, config, "hsi_low")[:, null_rows],
                                                    _stack(results, config, "hsi_high")[:, null_rows],
                                                    np.abs(np.asarray(truth["rho"])).max(axis=1)[null_rows],
                                                    [heads[h] for h in null_rows]),
        "hsi_outside_estimate": _outside_estimate(results, config),
        "focus_coverage": coverage_summary(focus_low, focus_high, np.nan_to_num(focus_true), pair_names,
                                           {"planted_pairs": np.array(planted)}),
        "power_planted_pairs": float((p_adj[:, planted] < ALPHA).mean()),
        "power_per_planted_pair": {pair_names[i]: float((p_adj[:, i] < ALPHA).mean()) for i in planted},
        "planted_heads_validated_right_label": float(right.mean()),
        "per_planted_head_right_label": {heads[h]: float(right[:, j].mean()) for j, h in enumerate(head_rows)},
        "no_effect_heads_fwer": share_summary((p_adj[:, no_effect] < ALPHA).any(axis=1)),
        "no_effect_heads_labelled": share_summary(validated[:, [heads.index(n) for n in heads
                                                                if n not in {heads[h] for h in head_rows}]]
                                                  .any(axis=1)),
        "seconds_per_analysis": float(_stack(results, config, "seconds").mean()),
        "warnings": int(_stack(results, config, "warnings").sum()),
    }


def _expected_label(spec: Any) -> str:
    from hsi_stats.synthetic import HeadTruth

    return HeadTruth.of(spec).expected_label


def other_intervals_summary(results: list[dict[str, Any]], truth: np.ndarray,
                            pair_names: list[str]) -> dict[str, Any]:
    """Coverage of the rho intervals of the other methods (same bootstrap draws as the defaults)."""
    methods = results[0]["other_intervals"]
    return {m: coverage_summary(np.stack([r["other_intervals"][m]["ci_low"] for r in results]),
                                np.stack([r["other_intervals"][m]["ci_high"] for r in results]), truth, pair_names)
            for m in methods}


def original_summary(results: list[dict[str, Any]], truth: dict[str, Any], pair_names: list[str]) -> dict[str, Any]:
    """The original method's false 'specialised' heads and iid Pearson p-values on null data."""
    hsi = np.stack([r["original"]["hsi"] for r in results])
    specialised = hsi >= SPECIALISED
    primaries = [p for r in results for p, s in zip(r["original"]["primary"], r["original"]["hsi"] >= SPECIALISED,
                                                    strict=True) if s]
    p_iid = np.stack([r["original"]["p_iid"] for r in results])
    return {
        "any_head_specialised": share_summary(specialised.any(axis=1)),
        "per_head_specialised_rate": float(specialised.mean()),
        "hsi_quantiles": dict(zip(("median", "q95", "max"), np.quantile(hsi, [0.5, 0.95, 1.0]).round(4).tolist(),
                                  strict=True)),
        "per_head": dict(zip(truth["heads"], specialised.mean(axis=0).round(4).tolist(), strict=True)),
        "specialised_primary_features": {f: primaries.count(f) for f in sorted(set(primaries))},
        "iid_pearson_per_test_fpr": rate_summary(_reject(p_iid), pair_names),
    }


def acceptance(summary: dict[str, Any]) -> dict[str, Any]:
    """The acceptance checks of the issue on the defaults, each with the number it is decided on."""
    null, planted = summary["null"]["defaults"], summary["planted"]["defaults"]
    coverage, focus = planted["coverage"]["coverage"], planted["focus_coverage"]["coverage"]
    checks = {
        "per_test_fpr_not_above_0.05": {
            "rate": null["per_test_fpr"]["rate"], "binomial_p": null["per_test_fpr"]["binomial_p"],
            "passed": null["per_test_fpr"]["binomial_p"] >= TEST_LEVEL},
        "fwer_not_above_0.05": {
            "rate": null["fwer_pairs"]["rate"], "binomial_p": null["fwer_pairs"]["binomial_p"],
            "passed": null["fwer_pairs"]["binomial_p"] >= TEST_LEVEL},
        "coverage_in_range": {"coverage": coverage, "range": list(COVERAGE_RANGE),
                              "passed": COVERAGE_RANGE[0] <= coverage <= COVERAGE_RANGE[1]},
        "focus_coverage_in_range": {"coverage": focus, "range": list(COVERAGE_RANGE),
                                    "passed": COVERAGE_RANGE[0] <= focus <= COVERAGE_RANGE[1]},
        "hsi_coverage_at_least_0.93": {
            "planted": planted["hsi_coverage_planted_heads"]["coverage"],
            "no_effect": planted["hsi_coverage_null_heads"]["coverage"],
            "null": null["hsi_coverage_truth_zero"]["coverage"],
            "passed": min(planted["hsi_coverage_planted_heads"]["coverage"],
                          planted["hsi_coverage_null_heads"]["coverage"],
                          null["hsi_coverage_truth_zero"]["coverage"]) >= HSI_COVERAGE_FLOOR},
        "hsi_intervals_hold_the_estimate": {
            "outside": null["hsi_outside_estimate"] + planted["hsi_outside_estimate"],
            "passed": null["hsi_outside_estimate"] + planted["hsi_outside_estimate"] == 0},
    }
    checks["all_passed"] = all(c["passed"] for c in checks.values())
    return checks


def summarise(results: list[dict[str, Any]], truth: dict[str, Any]) -> dict[str, Any]:
    """Every number of the study, by kind of data and configuration."""
    heads, features = truth["null"]["heads"], truth["null"]["features"]
    pair_names = [f"{h}|{f}" for h in heads for f in features]
    null = [r for r in results if r["kind"] == "null"]
    planted = [r for r in results if r["kind"] == "planted"]
    summary: dict[str, Any] = {
        "null": {c: null_config_summary(null, c, truth["null"], pair_names) for c in CONFIGS},
        "planted": {c: planted_config_summary(planted, c, truth["planted"], pair_names) for c in CONFIGS},
    }
    summary["null"]["original"] = original_summary(null, truth["null"], pair_names)
    summary["null"]["other_ci_methods"] = other_intervals_summary(null, np.zeros(len(pair_names)), pair_names)
    summary["planted"]["other_ci_methods"] = other_intervals_summary(
        planted, np.asarray(truth["planted"]["rho"]).reshape(-1), pair_names)
    summary["acceptance"] = acceptance(summary)
    return summary


# --------------------------------------------------------------------------------------------------- reporting
def _p(value: float) -> str:
    return f"{value:.2g}" if value >= 1e-4 else "<1e-4"


def _coverage(entry: dict[str, Any]) -> str:
    return f"{entry['coverage']:.3f} ± {entry['mc_se']:.3f}"


def _rate(entry: dict[str, Any]) -> str:
    return f"{entry['rate']:.3f} (p = {_p(entry['binomial_p'])})"


def markdown_table(summary: dict[str, Any], settings: Settings) -> str:
    """The docs' table: rows are quantities, columns the defaults, the within-scenario scheme and the original."""
    n0, p0 = summary["null"]["defaults"], summary["planted"]["defaults"]
    n1, p1 = summary["null"]["within-scenario"], summary["planted"]["within-scenario"]
    orig = summary["null"]["original"]
    dash = "—"
    rows = [
        ("null", "per-test false-positive rate (raw p < 0.05)", "≤ 0.05", _rate(n0["per_test_fpr"]),
         _rate(n1["per_test_fpr"]), f"{_rate(orig['iid_pearson_per_test_fpr'])} iid Pearson p"),
        ("null", "worst single (head, feature) test", "≤ 0.05",
         f"{n0['per_test_fpr']['max_pair_rate']:.3f} ({n0['per_test_fpr']['max_pair']})",
         f"{n1['per_test_fpr']['max_pair_rate']:.3f} ({n1['per_test_fpr']['max_pair']})",
         f"{orig['iid_pearson_per_test_fpr']['max_pair_rate']:.3f} "
         f"({orig['iid_pearson_per_test_fpr']['max_pair']})"),
        ("null", "family-wise error, 64 pair tests (any p_adj < 0.05)", "≤ 0.05", _rate(n0["fwer_pairs"]),
         _rate(n1["fwer_pairs"]), dash),
        ("null", "family-wise error, 8 head (HSI) tests", "≤ 0.05", _rate(n0["fwer_heads"]), _rate(n1["fwer_heads"]),
         dash),
        ("null", "data sets with any head labelled", "≤ 0.05", _rate(n0["any_validated_label"]),
         _rate(n1["any_validated_label"]), f"{_rate(orig['any_head_specialised'])} (HSI ≥ 0.3)"),
        ("null", "heads labelled (per head)", "≤ 0.05", f"{n0['per_head_label_rate']:.3f}",
         f"{n1['per_head_label_rate']:.3f}", f"{orig['per_head_specialised_rate']:.3f} (HSI ≥ 0.3)"),
        ("planted", "coverage of 95% CIs of rho (all 64 pairs)", "0.93–0.97",
         _coverage(p0["coverage"]), _coverage(p1["coverage"]), "no intervals"),
        ("null", "coverage of 95% CIs of rho (true rho = 0)", "0.93–0.97",
         _coverage(n0["coverage_truth_zero"]), _coverage(n1["coverage_truth_zero"]), "no intervals"),
        ("planted", "power: planted pairs with p_adj < 0.05", "high", f"{p0['power_planted_pairs']:.3f}",
         f"{p1['power_planted_pairs']:.3f}", dash),
        ("planted", "planted heads validated with the right label", "high",
         f"{p0['planted_heads_validated_right_label']:.3f}", f"{p1['planted_heads_validated_right_label']:.3f}",
         dash),
        ("planted", "family-wise error on the 32 tests of no-effect heads", "≤ 0.05",
         _rate(p0["no_effect_heads_fwer"]), _rate(p1["no_effect_heads_fwer"]), dash),
    ]
    rows.append(("planted", "coverage of 95% CIs of HSI (4 planted heads)", "≥ 0.93",
                 _coverage(p0["hsi_coverage_planted_heads"]), _coverage(p1["hsi_coverage_planted_heads"]),
                 "no intervals"))
    rows.append(("planted", "coverage of 95% CIs of HSI (4 no-effect heads)", "≥ 0.93",
                 _coverage(p0["hsi_coverage_null_heads"]), _coverage(p1["hsi_coverage_null_heads"]),
                 "no intervals"))
    rows.append(("null", "coverage of 95% CIs of HSI (true HSI = 0)", "≥ 0.93",
                 _coverage(n0["hsi_coverage_truth_zero"]), _coverage(n1["hsi_coverage_truth_zero"]), "no intervals"))
    rows.append(("both", "HSI intervals not holding their estimate", "0",
                 str(n0["hsi_outside_estimate"] + p0["hsi_outside_estimate"]),
                 str(n1["hsi_outside_estimate"] + p1["hsi_outside_estimate"]), dash))
    rows.append(("planted", "coverage of 95% CIs of focus (56 pairs / 4 planted pairs)", "0.93–0.97",
                 f"{_coverage(p0['focus_coverage'])} / {p0['focus_coverage']['coverage_planted_pairs']:.3f}",
                 f"{_coverage(p1['focus_coverage'])} / {p1['focus_coverage']['coverage_planted_pairs']:.3f}",
                 "no focus"))
    for method, planted_cov in summary["planted"]["other_ci_methods"].items():
        null_cov = summary["null"]["other_ci_methods"][method]
        rows.append(("both", f"contrast: coverage with `ci_method=\"{method}\"` (planted / null)", "0.93–0.97",
                     f"{planted_cov['coverage']:.3f} / {null_cov['coverage']:.3f}", "(same draws)", dash))
    defaults = f"defaults (within {n0['correlation']}, {n0['ci_method']} CIs, {n0['scheme']}, studentised max-T)"
    header = (f"| data | quantity | target | {defaults} | `scheme=\"within-scenario\"` | original (pooled Pearson) |"
              "\n|---|---|---|---|---|---|")
    body = "\n".join("| " + " | ".join(row) + " |" for row in rows)
    verdict = summary["acceptance"]
    checks = ", ".join(f"{name}: {'PASS' if check['passed'] else 'FAIL'}" for name, check in verdict.items()
                       if name != "all_passed")
    notes = (f"R = {settings.replicates} data sets of each kind ({settings.n_episodes} episodes x {settings.n_steps} "
             f"steps, 8 slots, 8 heads, 8 features: 64 tests). Defaults use n_resamples = {settings.n_resamples}; the "
             f"within-scenario column uses n_resamples = {settings.n_resamples_within_scenario} (bootstrap and test). "
             "Rates are followed by the one-sided exact binomial p-value against 0.05: for the per-test rate, over R "
             "trials with k = round(R x rate) (conservative: the 64 tests of a data set are dependent); for the "
             "family-wise error and the labels, one trial per data set. Coverage ± Monte-Carlo standard error; "
             f"true rho from {summary['truth_episodes']} simulated episodes. Acceptance (defaults): {checks}.")
    return f"{header}\n{body}\n\n{notes}\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


@dataclass
class Timing:
    """Wall-clock seconds of the parts of the study."""

    truth: float = 0.0
    replicates: float = 0.0
    total: float = 0.0
    truth_cached: bool = False
    extra: dict[str, float] = field(default_factory=dict)


def write_outputs(out: Path, settings: Settings, truth: dict[str, Any], summary: dict[str, Any],
                  timing: Timing, table: str, started: dict[str, Any]) -> None:
    """calibration.json (settings, seeds, versions, times, truth, every number) and calibration.md."""
    out.mkdir(parents=True, exist_ok=True)
    record = {
        "description": "Calibration study of hsi_stats.analyze; see benchmarks/calibration.py for the method.",
        "settings": {**settings.__dict__, "configs": {c: settings.analyze_options(c) for c in CONFIGS},
                     "seeding": "SeedSequence(seed).spawn(2): [large simulation, replicates]; replicates.spawn(R)[r]"
                                ".spawn(4) = null data, null analysis, planted data, planted analysis",
                     "alpha": ALPHA, "binomial_test_level": TEST_LEVEL, "coverage_range": list(COVERAGE_RANGE),
                     "specialised_threshold": SPECIALISED},
        "environment": started,
        "environment_at_end": environment(),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "elapsed_seconds": {"truth": timing.truth, "truth_cached": timing.truth_cached,
                            "replicates": timing.replicates, "total": timing.total},
        "truth": truth,
        "results": summary,
        "markdown": table,
    }
    (out / "calibration.json").write_text(json.dumps(record, indent=1, default=_json_default) + "\n")
    (out / "calibration.md").write_text(table)


def rewrite_tables(out: Path) -> int:
    """Recompute the acceptance checks and the table from the numbers ``calibration.json`` holds (no simulation)."""
    path = out / "calibration.json"
    record = json.loads(path.read_text())
    summary = record["results"]
    summary["acceptance"] = acceptance(summary)
    fields = {name: record["settings"][name] for name in Settings.__dataclass_fields__}
    table = markdown_table(summary, Settings(**fields))
    record["markdown"] = table
    path.write_text(json.dumps(record, indent=1, default=_json_default) + "\n")
    (out / "calibration.md").write_text(table)
    print(table)
    return 0 if summary["acceptance"]["all_passed"] else 1


def main(argv: list[str] | None = None) -> int:
    """Run the study, print the table and write the outputs; exit code 1 when the defaults fail the acceptance."""
    settings, args = parse_args(argv)
    if args.tables_only:
        return rewrite_tables(args.out)
    started = {**environment(), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    start = time.perf_counter()
    timing = Timing()
    truth, timing.truth, timing.truth_cached = load_or_compute_truth(settings, args.out, args.recompute_truth)
    print(f"true rho: null data max |rho| = {truth['null']['max_abs_rho']:.4f} (MC SE up to "
          f"{truth['null']['max_mc_se']:.4f}); {'cached' if timing.truth_cached else f'{timing.truth:.0f} s'}",
          flush=True)
    results, timing.replicates = run_all(settings)
    summary = summarise(results, truth)
    summary["truth_episodes"] = truth["planted"]["episodes"]
    timing.total = time.perf_counter() - start
    table = markdown_table(summary, settings)
    write_outputs(args.out, settings, truth, summary, timing, table, started)
    if started["hsi_stats_source_sha256"] != package_source_sha256():
        print("warning: the package's source files changed while the study ran; the workers imported them at start")
    print(table)
    print(f"elapsed: {timing.total / 60:.1f} min (replicates {timing.replicates / 60:.1f} min); "
          f"wrote {args.out / 'calibration.json'} and calibration.md")
    return 0 if summary["acceptance"]["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
