"""Time the point estimators at three sizes of the reference workload (8 slots, 8 heads, 8 features).

Run with ``nox -s bench``. Prints seconds per estimator and correlation type at 50, 100 and 200 episodes of 50
steps (8 slots, 8 heads, 8 features), so the growth in scenarios can be read off, and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import time

from hsi_stats import HSIDataset, estimate
from hsi_stats.synthetic import generate

SIZES = (50, 100, 200)
COMBINATIONS = (("within", "spearman", None), ("within", "pearson", None), ("within", "spearman", "slot"),
                ("pooled", "pearson", None), ("pooled", "spearman", None), ("fisher", "spearman", None))


def seconds_to_estimate(dataset: HSIDataset, estimator: str, correlation: str, adjust: str | None,
                        repeats: int) -> float:
    """Best of ``repeats`` wall-clock times of one :func:`hsi_stats.estimate` call."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        estimate(dataset, estimator=estimator, correlation=correlation, adjust=adjust)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    names = [f"{e}/{c}/{a or '-'}" for e, c, a in COMBINATIONS]
    print(f"{'episodes':>8} {'scenarios':>9}  " + "  ".join(names))
    for n_episodes in SIZES:
        dataset = generate(n_episodes=n_episodes, n_steps=50, rng=0).dataset
        cells = [f"{seconds_to_estimate(dataset, e, c, a, args.repeats):>{len(name)}.3f}"
                 for (e, c, a), name in zip(COMBINATIONS, names, strict=True)]
        print(f"{n_episodes:>8} {dataset.n_scenarios:>9}  " + "  ".join(cells))
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
