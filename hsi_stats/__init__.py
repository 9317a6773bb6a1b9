"""hsi_stats: what each attention head tracks, with the evidence to say so.

The public API is small: the data model (:class:`HSIDataset`), the loaders (:func:`load_npz`,
:func:`load_logs`, :func:`load_extraction`), the writer of the interchange file (:func:`write_npz`), data sets
larger than memory in shards (:func:`write_shards`, :func:`scan`), the options
of an analysis (:class:`AnalysisSettings`), the estimators (:func:`estimate`) and the full analysis with inference
and validated labels (:func:`analyze`, returning an :class:`HSIResult`), and run-time explanations from the
registry it exports (:class:`Explainer`), and the effect of removing heads on a live policy's actions
(:func:`ablation_effects`), and whether head functions replicate across runs (:func:`compare_runs`). Recording
attention from a live model, and removing heads from it, is :mod:`hsi_stats.capture`.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

try:
    __version__ = version("hsi_stats")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"

#: Public name -> the module that defines it. Loaded on first use, so that ``import hsi_stats`` (and the command
#: line refusing a bad option) does not pay for scipy, pandas and the plotting libraries up front.
_EXPORTS = {
    "AnalysisSettings": "settings",
    "DRIVING_CATALOG": "catalog", "FeatureCatalog": "catalog", "FeatureMeaning": "catalog", "load_catalog": "catalog",
    "HSIDataset": "data",
    "Estimate": "estimators", "estimate": "estimators",
    "analyze_evolution": "evolution",
    "load_extraction": "io", "load_logs": "io", "load_npz": "io", "write_npz": "io",
    "ShardedDataset": "io", "scan": "io", "write_shards": "io",
    "HSIResult": "results", "analyze": "results",
    "Explainer": "explain",
    "ablation_effects": "ablation",
    "write_report": "report",
    "RunComparison": "compare", "compare_runs": "compare",
}

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .ablation import ablation_effects
    from .catalog import DRIVING_CATALOG, FeatureCatalog, FeatureMeaning, load_catalog
    from .compare import RunComparison, compare_runs
    from .data import HSIDataset
    from .estimators import Estimate, estimate
    from .evolution import analyze_evolution
    from .explain import Explainer
    from .io import ShardedDataset, load_extraction, load_logs, load_npz, scan, write_npz, write_shards
    from .report import write_report
    from .results import HSIResult, analyze
    from .settings import AnalysisSettings


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hsi_stats' has no attribute {name!r}")
    value = getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


__all__ = [
    "DRIVING_CATALOG",
    "AnalysisSettings",
    "Estimate",
    "Explainer",
    "FeatureCatalog",
    "FeatureMeaning",
    "HSIDataset",
    "HSIResult",
    "RunComparison",
    "ShardedDataset",
    "__version__",
    "ablation_effects",
    "analyze",
    "analyze_evolution",
    "compare_runs",
    "estimate",
    "load_catalog",
    "load_extraction",
    "load_logs",
    "load_npz",
    "scan",
    "write_npz",
    "write_report",
    "write_shards",
]
