"""Run-time explanations: the latency of one step and the throughput of a batch (``hsi_stats.explain``).

Run with ``nox -s bench``. A registry is exported from an analysis of the default synthetic heads (8 heads, 4 of
them validated, 8 slots, 8 features); then

- one step (H, V) is explained many times: the median and 99th percentile latency of ``Explainer.explain`` (the
  claims computed in numpy) and of building its ``claims`` DataFrame;
- a batch of 100,000 steps (B, H, V) is explained at once: seconds for ``explain`` and for its ``claims``.

Writes ``benchmarks/results/bench_explain.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hsi_stats import analyze
from hsi_stats.explain import Explainer
from hsi_stats.synthetic import generate

RESULTS = Path(__file__).parent / "results" / "bench_explain.json"


def _latencies(call, repeats: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2000, help="single-step calls timed")
    parser.add_argument("--batch", type=int, default=100_000, help="steps in the batch")
    args = parser.parse_args()
    data = generate(n_episodes=40, n_steps=30, rng=0).dataset
    explainer = Explainer.from_registry(analyze(data, n_resamples=999, rng=0).registry())
    step = (data.attention[0], {name: values[0] for name, values in data.features.items()}, data.mask[0])
    explain_step = _latencies(lambda: explainer.explain(*step), max(1, args.repeats))
    table_step = _latencies(lambda: explainer.explain(*step).claims, max(1, args.repeats // 10))
    rows = np.arange(args.batch) % data.n_scenarios
    batch = (data.attention[rows], {name: values[rows] for name, values in data.features.items()}, data.mask[rows])
    start = time.perf_counter()
    explanation = explainer.explain(*batch)
    explain_batch = time.perf_counter() - start
    start = time.perf_counter()
    claims = explanation.claims
    table_batch = time.perf_counter() - start
    found = {
        "heads": data.n_heads, "claiming_heads": len(explainer.heads), "slots": data.n_slots,
        "single_step_ms": {"explain_median": 1e3 * float(np.median(explain_step)),
                           "explain_p99": 1e3 * float(np.quantile(explain_step, 0.99)),
                           "with_claims_table_median": 1e3 * float(np.median(table_step))},
        "batch": {"steps": args.batch, "claims": len(claims), "explain_seconds": explain_batch,
                  "claims_table_seconds": table_batch, "steps_per_second": args.batch / (explain_batch + table_batch)},
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(found, indent=2) + "\n")
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
