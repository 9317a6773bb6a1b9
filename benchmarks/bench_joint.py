"""What the joint model costs: the default analysis against ``analyze(joint=False)`` in one run, and its passes.

Run with ``nox -s bench`` (or ``python benchmarks/bench_joint.py``). The workload is the reference one at 200,000
scenarios (:func:`hsi_stats.synthetic.generate`, 4,000 episodes of 50 steps, 8 slots, the 8 default heads, the 8
driving features), generated once; ``analyze`` runs with the defaults (``n_resamples=9999``) alternately with
``joint=False`` and with the joint model, ``--repeats`` times each in the same process (after a small warm-up
analysis), and the best time of each is kept. Also recorded: the passes over the data each analysis made, the
joint model's passes and its start, and the share of the time the joint model takes.

Writes ``benchmarks/results/bench_joint.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

from _provenance import environment, say

from hsi_stats import analyze
from hsi_stats.synthetic import generate

RESULTS = Path(__file__).resolve().parent / "results" / "bench_joint.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=4000, help="episodes of 50 steps (4,000: 200,000 scenarios)")
    parser.add_argument("--resamples", type=int, default=9999)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    started = {**environment(), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    data = generate(n_episodes=args.episodes, n_steps=50, rng=0).dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analyze(generate(n_episodes=20, n_steps=10, rng=1).dataset, n_resamples=99, rng=0)  # imports, caches
    seconds: dict[str, list[float]] = {"marginal": [], "joint": []}
    passes = {}
    joint_summary = None
    for repeat in range(args.repeats):
        for name, joint in (("marginal", False), ("joint", True)):
            start = time.perf_counter()
            result = analyze(data, n_resamples=args.resamples, rng=0, joint=joint)
            seconds[name].append(time.perf_counter() - start)
            passes[name] = result.data_summary["passes"]
            joint_summary = result.data_summary["joint"] if joint else joint_summary
            say(f"repeat {repeat + 1}: {name} {seconds[name][-1]:.2f} s, {passes[name]} pass(es)")
    best = {name: min(times) for name, times in seconds.items()}
    record = {
        "environment": started, "scenarios": data.n_scenarios, "episodes": args.episodes, "heads": data.n_heads,
        "features": data.n_features, "slots": data.n_slots, "n_resamples": args.resamples, "repeats": args.repeats,
        "seconds": seconds, "best": best, "ratio": best["joint"] / best["marginal"], "passes": passes,
        "joint": joint_summary,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    say(f"joint/marginal = {record['ratio']:.2f} ({best['joint']:.2f} s / {best['marginal']:.2f} s); wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
