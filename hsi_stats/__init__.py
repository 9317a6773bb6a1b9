"""hsi_stats: what each attention head tracks, with the evidence to say so.

The public API is small: the data model (:class:`HSIDataset`), the loaders (:func:`load_npz`,
:func:`load_logs`, :func:`load_extraction`), the writer of the interchange file (:func:`write_npz`), the options
of an analysis (:class:`AnalysisSettings`), the estimators (:func:`estimate`) and the full analysis with inference
and validated labels (:func:`analyze`, returning an :class:`HSIResult`).
"""

from importlib.metadata import PackageNotFoundError, version

from .catalog import DRIVING_CATALOG, FeatureCatalog, FeatureMeaning, load_catalog
from .data import HSIDataset
from .estimators import Estimate, estimate
from .evolution import analyze_evolution
from .io import load_extraction, load_logs, load_npz, write_npz
from .results import HSIResult, analyze
from .settings import AnalysisSettings

try:
    __version__ = version("hsi_stats")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without installing
    __version__ = "0.0.0"


def __getattr__(name: str) -> object:
    # The report needs the optional plotting dependencies: import it only when asked for.
    if name == "write_report":
        from .report import write_report

        return write_report
    raise AttributeError(f"module 'hsi_stats' has no attribute {name!r}")


__all__ = [
    "DRIVING_CATALOG",
    "AnalysisSettings",
    "Estimate",
    "FeatureCatalog",
    "FeatureMeaning",
    "HSIDataset",
    "HSIResult",
    "__version__",
    "analyze",
    "analyze_evolution",
    "estimate",
    "load_catalog",
    "load_extraction",
    "load_logs",
    "load_npz",
    "write_npz",
    "write_report",
]
