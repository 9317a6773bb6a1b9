r"""Coverage of the intervals of rates and bounded means measured over episodes, near 0, 1/2 and 1.

Run by ``nox -s calibration`` (or ``python benchmarks/rate_study.py``). Writes ``benchmarks/results/rates.json`` and
``rates.md`` (the docs' table) and prints the table.

What is simulated
-----------------
G episodes (10, 30 or 100) of 40 steps. A rate: episode g has its own rate :math:`p_g \sim
\mathrm{Beta}(\pi\kappa, (1-\pi)\kappa)` (mean :math:`\pi`; :math:`\kappa = 5`, strong clustering, intra-episode
correlation 1/6, or :math:`\kappa = 50`, mild, 1/51) and each step is a success with probability :math:`p_g`. A
bounded mean: each step's value is :math:`\mathrm{Beta}(4 p_g, 4(1 - p_g))` (a total-variation distance, say),
with the same episode means. True values :math:`\pi` from 0.002 to 0.998 and exactly 0.

What is measured
----------------
The share of 95% intervals containing :math:`\pi` (± Monte-Carlo standard error) and their mean width, for the
package's interval (:func:`hsi_stats.inference.rates.clustered_rate_interval`: Wilson's score interval with a design
effect and t degrees of freedom from the episodes on the rarer side), the same with G - 1 degrees of freedom (the
rule it replaced), and the cluster bootstrap's expanded percentile interval (999 resamples), which collapses to a
point when every episode is the same. Replicate r of a cell draws from ``SeedSequence([seed, cell]).spawn(R)[r]``.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _parallel import run_pool
from _provenance import environment, write_study
from scipy.stats import t as student_t

RESULTS = Path(__file__).resolve().parent / "results"
GROUPS, STEPS = (10, 30, 100), 40
RATES = (0.0, 0.002, 0.01, 0.05, 0.5, 0.95, 0.99, 0.998)
CLUSTERING = {5.0: "strong", 50.0: "mild"}
METHODS = {"wilson": "clustered Wilson (reported)", "wilson-g": "clustered Wilson, G - 1 df",
           "bootstrap": "cluster bootstrap, expanded percentile"}


def _episodes(rng: np.random.Generator, n_groups: int, rate: float, kappa: float, bounded: bool
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode sums of the values and numbers of steps."""
    if rate in (0.0, 1.0):
        means = np.full(n_groups, rate)
    else:
        means = rng.beta(rate * kappa, (1 - rate) * kappa, n_groups)
    if bounded:
        clipped = np.clip(means, 1e-9, 1 - 1e-9)
        values = rng.beta(4 * clipped[:, None], 4 * (1 - clipped[:, None]), (n_groups, STEPS))
        values = np.where(means[:, None] == 0, 0.0, np.where(means[:, None] == 1, 1.0, values))
        return values.sum(axis=1), np.full(n_groups, float(STEPS))
    return rng.binomial(STEPS, means).astype(float), np.full(n_groups, float(STEPS))


def _wilson_g(x: np.ndarray, n: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The clustered Wilson interval with G - 1 degrees of freedom whatever the episodes (written out here)."""
    g, total = len(x), n.sum()
    p = x.sum() / total
    variance = g / (g - 1) * ((x - p * n) ** 2).sum() / total**2
    m = p * (1 - p) / variance if variance > 0 and 0 < p < 1 else g
    q = student_t.ppf(0.5 + level / 2, g - 1)
    shrink = 1 + q * q / m
    centre, half = (p + q * q / (2 * m)) / shrink, q * math.sqrt(p * (1 - p) / m + q * q / (4 * m * m)) / shrink
    return max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p))


def run_cell(task: tuple[int, int, int, float, float, bool, int]) -> dict[str, Any]:
    """R replicates of one cell: coverage and width of each method."""
    from hsi_stats.inference.bootstrap import bootstrap_weights, expanded_alpha
    from hsi_stats.inference.rates import clustered_rate_interval

    seed, cell, n_groups, rate, kappa, bounded, replicates = task
    covered = {name: 0 for name in METHODS}
    width = {name: 0.0 for name in METHODS}
    tail = expanded_alpha(0.025, n_groups)
    for child in np.random.SeedSequence([seed, cell]).spawn(replicates):
        rng = np.random.default_rng(child)
        x, n = _episodes(rng, n_groups, rate, kappa, bounded)
        _, low, high = clustered_rate_interval(x, n)
        intervals = {"wilson": (float(low), float(high)), "wilson-g": _wilson_g(x, n)}
        weights = bootstrap_weights(rng, 999, n_groups)
        resampled = (weights @ x) / (weights @ n)
        intervals["bootstrap"] = tuple(float(v) for v in np.quantile(resampled, [tail, 1 - tail]))
        for name, (lo, hi) in intervals.items():
            covered[name] += int(lo - 1e-12 <= rate <= hi + 1e-12)
            width[name] += hi - lo
    return {"groups": n_groups, "rate": rate, "kappa": kappa, "bounded": bounded, "replicates": replicates,
            "coverage": {k: v / replicates for k, v in covered.items()},
            "width": {k: v / replicates for k, v in width.items()}}


def markdown(cells: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = ["| kind | clustering | true rate | episodes G | " + " | ".join(f"coverage: {m}" for m in METHODS.values())
             + " | mean width (reported) |", "|" + "---|" * (5 + len(METHODS))]
    for cell in cells:
        se = math.sqrt(0.95 * 0.05 / cell["replicates"])
        lines.append(f"| {'bounded mean' if cell['bounded'] else 'rate'} | {CLUSTERING[cell['kappa']]} | "
                     f"{cell['rate']:g} | {cell['groups']} | "
                     + " | ".join(f"{cell['coverage'][m]:.3f}" for m in METHODS)
                     + f" | {cell['width']['wilson']:.3f} |")
    worst = min(c["coverage"]["wilson"] for c in cells)
    worst_g = min(c["coverage"]["wilson-g"] for c in cells)
    worst_boot = min(c["coverage"]["bootstrap"] for c in cells)
    notes = (f"\n\nR = {settings['replicates']} replicates per cell (Monte-Carlo standard error about {se:.3f} at "
             f"0.95) of G episodes of {STEPS} steps; episode rates Beta with mean the true rate and concentration 5 "
             "(strong clustering) or 50 (mild); a bounded mean's steps Beta around the episode's rate. 95% "
             f"intervals. Lowest coverage: {worst:.3f} for the reported interval, {worst_g:.3f} with G - 1 degrees "
             f"of freedom, {worst_boot:.3f} for the cluster bootstrap.")
    return "\n".join(lines) + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = {**environment(), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    designs = [(False, kappa, rate, g) for kappa in CLUSTERING for rate in RATES for g in GROUPS]
    designs += [(True, kappa, rate, g) for kappa in (5.0,) for rate in (0.0, 0.01, 0.5, 0.99) for g in GROUPS]
    tasks = [(args.seed, i, g, rate, kappa, bounded, args.replicates)
             for i, (bounded, kappa, rate, g) in enumerate(designs)]
    found, seconds = run_pool(run_cell, tasks, args.processes, "rates")
    order = {design: i for i, design in enumerate(itertools.chain(designs))}
    cells = sorted(found, key=lambda c: order[(c["bounded"], c["kappa"], c["rate"], c["groups"])])
    settings = {"replicates": args.replicates, "seed": args.seed, "steps": STEPS, "methods": METHODS}
    write_study(args.out, "rates", {"settings": settings, "environment": started, "seconds": seconds,
                                    "cells": cells}, markdown(cells, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
