"""The numbers of a fixed set of analyses, written to ``tests/data/regression_reference.json``.

``tests/test_regression.py`` recomputes them and compares: a change that is meant to leave the statistics alone
(a refactoring, a new option with the old default) must give the same numbers for the same seed. Only the public
API is used, so that the reference survives changes to the package's inside. When a change is *meant* to move the
numbers, rerun this script and say why in the commit::

    python tests/regression_reference.py            # rewrites tests/data/regression_reference.json

The cases cover the demo's path (driving logs of several checkpoints written, loaded back, the final checkpoint
analysed and the evolution over training) and each estimator, interval method, randomisation scheme and family
of corrections once; and the registry that ``hsi-stats demo --seed 0`` itself writes (with 199 resamples).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

REFERENCE = Path(__file__).parent / "data" / "regression_reference.json"

#: name -> options of ``analyze`` for the single-step cases (all on the final checkpoint of the demo-like run).
CASES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "pooled-pearson-holm": {"estimator": "pooled", "correlation": "pearson", "correction": "holm"},
    "fisher-bca-bh": {"estimator": "fisher", "ci_method": "bca", "correction": "fdr_bh"},
    "slot-percentile-single-step": {"adjust": "slot", "ci_method": "percentile",
                                    "correction": "maxT-single-step"},
    "within-group-basic-strict": {"scheme": "within-group", "ci_method": "basic", "strict": True},
    "within-scenario-pearson": {"scheme": "within-scenario", "correlation": "pearson", "correction": "none"},
}
N_RESAMPLES = 299
SEED = 7
DEMO_COMMAND = ("demo", "--seed", "0", "--n-resamples", "199", "--format", "")


def _clean(value: Any) -> Any:
    """JSON-safe plain values: NaN as None, numpy scalars as Python numbers, tuples as lists."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _without_run_specifics(registry: dict[str, Any]) -> dict[str, Any]:
    """The registry minus what legitimately changes from run to run (time, versions, file paths)."""
    meta = dict(registry["_meta"])
    meta["provenance"] = {"seed": meta["provenance"]["seed"]}
    meta["data_summary"] = {k: v for k, v in meta["data_summary"].items() if k != "notes"}
    return {**registry, "_meta": meta}


def demo_registry() -> dict[str, Any]:
    """The registry ``hsi-stats demo`` writes for :data:`DEMO_COMMAND` (its printout is discarded)."""
    import contextlib
    import io

    from hsi_stats.cli import main

    with tempfile.TemporaryDirectory() as folder, contextlib.redirect_stdout(io.StringIO()):
        if main([*DEMO_COMMAND, "--out", folder]) != 0:
            raise RuntimeError(f"hsi-stats {' '.join(DEMO_COMMAND)} failed")
        return _without_run_specifics(json.loads((Path(folder) / "head_functions.json").read_text()))


def _data_summary(dataset: Any) -> dict[str, Any]:
    """Sizes and sums of the data analysed: the same data to rounding (a hash would change with the last bit)."""
    import numpy as np

    valid = dataset.mask
    return {
        "shape": list(dataset.attention.shape), "n_groups": dataset.n_groups, "n_valid": int(valid.sum()),
        "steps": sorted(int(step) for step in np.unique(dataset.steps)),
        "attention_sum": float(dataset.attention.sum(axis=1)[valid].sum()),
        "attention_squares": float((dataset.attention**2).sum(axis=1)[valid].sum()),
        "feature_sums": {name: float(values[valid].sum()) for name, values in dataset.features.items()},
    }


def compute() -> dict[str, Any]:
    """Every number of the reference cases, as plain JSON-ready data."""
    from hsi_stats import analyze, analyze_evolution, load_logs
    from hsi_stats._validation import ResamplingWarning
    from hsi_stats.synthetic import generate, specialising_heads, write_driving_logs

    checkpoints = (100_000, 200_000, 300_000, 400_000)
    run = generate(n_episodes=16, n_steps=12, checkpoints=checkpoints, heads=specialising_heads(150_000, 350_000),
                   rng=3)
    with tempfile.TemporaryDirectory() as folder:
        write_driving_logs(run, Path(folder) / "f", Path(folder) / "a", rng=4)
        dataset = load_logs(Path(folder) / "f", Path(folder) / "a")
    final = dataset.select(step_range=(checkpoints[-1], checkpoints[-1]))
    out: dict[str, Any] = {"data": _data_summary(dataset), "cases": {}}
    for name, options in CASES.items():
        with warnings.catch_warnings():  # Holm over 64 tests cannot reach 0.05 with 299 randomisations: on purpose
            warnings.simplefilter("ignore", ResamplingWarning)
            result = analyze(final, n_resamples=N_RESAMPLES, rng=SEED, **options)
        out["cases"][name] = {
            "registry": _without_run_specifics(result.registry(allow_unvalidated=True)),
            "pairs": result.pairs.to_dict(orient="list"),
            "heads": result.heads.to_dict(orient="list"),
            "joint": result.joint.to_dict(orient="list"),
            "null_hsi_mean": result.test.null_hsi.mean(axis=0).tolist(),
        }
    evolution = analyze_evolution(dataset, n_resamples=N_RESAMPLES, trend_resamples=999, rng=SEED)
    out["evolution"] = {
        "per_step": evolution.per_step.to_dict(orient="list"),
        "trends": evolution.trends.to_dict(orient="list"),
        "emergence": dict(evolution.emergence),
        "settings": dict(evolution.settings),
    }
    out["demo_registry"] = demo_registry()
    return _clean(out)


def main() -> int:
    REFERENCE.write_text(json.dumps(compute(), indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {REFERENCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
