"""The head-specialization notebook's API on top of hsi_stats: change one import and the notebook runs.

The original notebook imported ``AttentionLogLoader``, ``HeadSpecializationAnalyzer``, ``HeadVisualization`` and
``FEATURE_TO_LABEL`` from its own analysis module. This module offers the same names, signatures and return shapes,
but nothing in it is a second implementation: loading goes through :func:`hsi_stats.io.driving_logs.load_logs_with_raw`
(the safe unpickler, the same pairing and checks as :func:`hsi_stats.load_logs`), :meth:`compute_hsi` through
:func:`hsi_stats.analyze`, the registry through :meth:`hsi_stats.HSIResult.export_registry` and the plots through
:mod:`hsi_stats.report.figures`.

What differs from the original: by default :meth:`HeadSpecializationAnalyzer.compute_hsi` runs the toolkit's analysis
(within-scenario rank-feature estimator, cluster-bootstrap intervals, corrected randomisation p-values, validated
labels), and says so in one printed notice. ``compute_hsi(estimator="pooled", correlation="pearson")`` returns the
original HSI values; the labels stay validated either way. Files are paired by their ``step`` when the attention
files carry one, else by sorted name as the original loader did, with a warning (``pair_by="auto"``).

Examples
--------
>>> import tempfile
>>> from hsi_stats.synthetic import generate, write_driving_logs
>>> root = tempfile.mkdtemp()
>>> write_driving_logs(generate(n_episodes=12, n_steps=5, rng=0), root + "/f", root + "/a", rng=0)
>>> analyzer = HeadSpecializationAnalyzer(feature_dir=root + "/f", attention_dir=root + "/a")
>>> analyzer.load_data()
>>> analyzer.aggregate_attention_by_vehicle().shape
(60, 8, 8)
>>> result = analyzer.compute_hsi(n_resamples=199, rng=0)  # doctest: +ELLIPSIS
hsi_stats.compat: compute_hsi() runs hsi_stats.analyze; ...
>>> result.head_labels[1]["name"], len(result.hsi_scores)
('Proximity Head', 8)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .catalog import DRIVING_CATALOG
from .data import HSIDataset
from .io.driving_logs import load_logs_with_raw
from .results import HSIResult, analyze
from .settings import CORRECTION_NAMES, AnalysisSettings

if TYPE_CHECKING:  # pragma: no cover - typing only; the figures need the optional report dependencies
    from matplotlib.axes import Axes

__all__ = ["FEATURE_TO_LABEL", "AttentionLog", "AttentionLogLoader", "CompatHSIResult", "HeadSpecializationAnalyzer",
           "HeadVisualization"]

#: Feature name -> head-function name, from the driving catalog (``DRIVING_CATALOG[f].label``).
FEATURE_TO_LABEL: dict[str, str] = {feature: meaning.label for feature, meaning in DRIVING_CATALOG.items()}

ORIGINAL_OPTIONS = {"estimator": "pooled", "correlation": "pearson"}


@dataclass(frozen=True)
class AttentionLog:
    """One checkpoint's logs as stored: the feature log and its paired attention file."""

    step: int
    attention_weights: Mapping[str, NDArray[Any]]
    semantic_features: Mapping[str, Any]
    token_boundaries: Mapping[str, Any]
    config: Mapping[str, Any]


class AttentionLogLoader:
    """Reads the two-directory driving logs (``attention_log_*.pkl`` + ``attention_scenario_*.pkl``).

    ``pair_by``, ``attention_key`` and ``trust_pickle`` are those of :func:`hsi_stats.load_logs`.
    """

    def __init__(self, feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], *,
                 pair_by: str = "auto", attention_key: str = "other_traj", trust_pickle: bool = False) -> None:
        self.feature_dir = feature_dir
        self.attention_dir = attention_dir
        self.pair_by = pair_by
        self.attention_key = attention_key
        self.trust_pickle = trust_pickle

    def load_with_dataset(self, step_range: tuple[int, int] | None = None) -> tuple[list[AttentionLog], HSIDataset]:
        """The logs in step order and the :class:`HSIDataset` built from them (every file read once)."""
        dataset, pairs = load_logs_with_raw(self.feature_dir, self.attention_dir, pair_by=self.pair_by,
                                            step_range=step_range, attention_key=self.attention_key,
                                            trust_pickle=self.trust_pickle)
        logs = [AttentionLog(step=pair.step,
                             attention_weights=pair.attention["attention_weights"],
                             semantic_features=pair.feature_log["semantic_features"],
                             token_boundaries=pair.feature_log.get("token_boundaries", {}),
                             config=pair.feature_log.get("config", {}))
                for pair in pairs]
        return logs, dataset

    def load(self, step_range: tuple[int, int] | None = None) -> list[AttentionLog]:
        """The logs in step order, optionally only those with ``lo <= step <= hi``."""
        return self.load_with_dataset(step_range)[0]


@dataclass(frozen=True)
class CompatHSIResult:
    """What the notebook reads from ``compute_hsi()``, backed by the full :class:`HSIResult`.

    Attributes
    ----------
    hsi_scores : ndarray (H,)
        HSI per head (max |rho| over features, for the estimator used).
    head_labels : dict int -> dict
        Per head the registry entry: ``name, hsi, primary_feature, correlation, description`` plus the evidence
        (``validated, reasons, strength, hsi_ci, correlation_ci, p_value, p_adjusted, stability``...). A label that
        did not validate is shown as a General Context Head with the reason. Missing numbers are NaN.
    correlation_matrix : ndarray (H, F)
        rho per head and feature; ``feature_names`` names the columns.
    analysis : HSIResult
        Everything :func:`hsi_stats.analyze` found (tables, settings, provenance).
    """

    hsi_scores: NDArray[np.float64]
    head_labels: dict[int, dict[str, Any]]
    correlation_matrix: NDArray[np.float64]
    feature_names: tuple[str, ...]
    analysis: HSIResult = field(repr=False)


def _notice(settings: AnalysisSettings, selection: dict[str, Any]) -> str:
    """One notice saying what differs from the original method and how to get its numbers."""
    original = all(settings[key] == value for key, value in ORIGINAL_OPTIONS.items()) and settings.adjust is None
    if original:
        estimate = "HSI values are the original method's (estimator='pooled', correlation='pearson')"
        how = "that is what you asked for"
    else:
        estimate = (f"HSI uses estimator={settings.estimator!r}, correlation={settings.correlation!r}"
                    f"{', adjust=' + repr(settings.adjust) if settings.adjust else ''} instead of the "
                    f"original pooled Pearson correlation")
        how = "compute_hsi(estimator='pooled', correlation='pearson') reproduces the original HSI values"
    correction = CORRECTION_NAMES[settings.correction]
    steps = len(selection.get("available", ()))
    pooled = (f" The {steps} checkpoints are pooled, as the original notebook pooled them; "
              "compute_hsi(step=N) analyses one." if selection.get("pooled") else "")
    return (f"hsi_stats.compat: compute_hsi() runs hsi_stats.analyze; {estimate}. New: "
            f"{round(100 * settings.confidence_level)}% cluster-bootstrap CIs, {correction}-corrected "
            f"p-values, and labels kept only when validated (others are named General Context Head, with reasons); "
            f"{how}.{pooled}")


def _number_or_nan(value: Any) -> float:
    return float("nan") if value is None else float(value)


class HeadSpecializationAnalyzer:
    """The notebook's analyzer: load, aggregate, compute HSI, export the registry."""

    def __init__(self, feature_dir: str | os.PathLike[str], attention_dir: str | os.PathLike[str], *,
                 pair_by: str = "auto", attention_key: str = "other_traj", trust_pickle: bool = False) -> None:
        self.loader = AttentionLogLoader(feature_dir, attention_dir, pair_by=pair_by, attention_key=attention_key,
                                         trust_pickle=trust_pickle)
        self.logs: list[AttentionLog] = []
        self.dataset: HSIDataset | None = None
        self.result: CompatHSIResult | None = None

    def load_data(self, step_range: tuple[int, int] | None = None) -> None:
        """Read and pair the logs (``step_range``: keep steps in ``[lo, hi]``); fills ``logs`` and ``dataset``."""
        self.logs, self.dataset = self.loader.load_with_dataset(step_range)
        self.result = None

    def _dataset(self) -> HSIDataset:
        if self.dataset is None:
            raise RuntimeError("No data loaded: call load_data() first.")
        return self.dataset

    def aggregate_attention_by_vehicle(self) -> NDArray[np.float64]:
        """Attention per head and vehicle, ``(N_scenarios, N_heads, N_vehicles)`` (summed over latents and tokens)."""
        return np.array(self._dataset().attention)

    def aggregate_features(self) -> dict[str, NDArray[np.float64]]:
        """Each semantic feature per vehicle, name -> ``(N_scenarios, N_vehicles)``, aligned with the attention."""
        return {name: np.array(values) for name, values in self._dataset().features.items()}

    def compute_hsi(self, **analyze_options: Any) -> CompatHSIResult:
        """Run :func:`hsi_stats.analyze` on the loaded data and return the notebook's view of it.

        ``analyze_options`` go to :func:`hsi_stats.analyze` (``estimator``, ``correlation``, ``n_resamples``,
        ``rng``, ``step``...). ``estimator="pooled", correlation="pearson"`` gives the original HSI values. The
        checkpoints loaded are pooled, as in the original notebook, unless ``step=`` names one. Prints one notice
        saying what differs from the original method.
        """
        # The original notebook pooled every checkpoint it loaded: keep that, explicitly, unless a step is named.
        options: dict[str, Any] = {"pool_steps": "step" not in analyze_options, **analyze_options}
        analysis = analyze(self._dataset(), **options)
        print(_notice(analysis.settings, dict(analysis.data_summary["step_selection"])))
        registry = analysis.registry()
        labels = {h: {**registry[str(h)], "hsi": _number_or_nan(registry[str(h)]["hsi"]),
                      "correlation": _number_or_nan(registry[str(h)]["correlation"])}
                  for h in range(len(analysis.heads))}
        self.result = CompatHSIResult(hsi_scores=analysis.heads["hsi"].to_numpy(dtype=float),
                                      head_labels=labels, correlation_matrix=np.array(analysis.estimate.rho),
                                      feature_names=tuple(analysis.estimate.feature_names), analysis=analysis)
        return self.result

    def _result(self) -> CompatHSIResult:
        if self.result is None:
            raise RuntimeError("No HSI result: call compute_hsi() first.")
        return self.result

    def export_registry(self, path: str | os.PathLike[str], *, allow_unvalidated: bool = False) -> None:
        """Write ``head_functions.json`` (keys ``"0"``, ``"1"``... plus ``_meta``) from the last ``compute_hsi()``.

        Labels that did not validate are written as General Context Heads unless ``allow_unvalidated=True``.
        """
        self._result().analysis.export_registry(path, allow_unvalidated=allow_unvalidated)


class HeadVisualization:
    """The notebook's plots, drawn by :mod:`hsi_stats.report.figures` from the analyzer's last result.

    Each ``plot_*`` method returns the matplotlib axes (shown by ``%matplotlib inline``) and saves a PNG when given
    ``save_path``.
    """

    def __init__(self, analyzer: HeadSpecializationAnalyzer) -> None:
        self.analyzer = analyzer

    def _analysis(self) -> HSIResult:
        return self.analyzer._result().analysis

    @staticmethod
    def _saved(ax: Axes, save_path: str | os.PathLike[str] | None) -> Axes:
        if save_path is not None:
            from .report.figures import save_figure

            save_figure(ax, save_path, close=False)
        return ax

    def plot_correlation_heatmap(self, save_path: str | os.PathLike[str] | None = None) -> Axes:
        """Heatmap of rho (heads x features) with significance marks."""
        from .report.figures import rho_heatmap

        return self._saved(rho_heatmap(self._analysis()), save_path)

    def plot_hsi_bar(self, save_path: str | os.PathLike[str] | None = None) -> Axes:
        """HSI per head with its confidence interval and validated label."""
        from .report.figures import hsi_bars

        return self._saved(hsi_bars(self._analysis()), save_path)

    def plot_attention_vs_feature(self, head: int | str, feature: str,
                                  save_path: str | os.PathLike[str] | None = None) -> Axes:
        """Attention of ``head`` (index or name) against ``feature`` over the valid vehicles."""
        from .report.figures import attention_vs_feature

        return self._saved(attention_vs_feature(self._analysis(), head, feature), save_path)

    def plot_all(self, output_dir: str | os.PathLike[str], *, threshold: float | None = None) -> list[Path]:
        """Save ``correlation_heatmap.png``, ``hsi_scores.png`` and, for each head with HSI >= ``threshold``,
        ``attention_vs_feature_h{h}_{feature}.png`` into ``output_dir``; returns the paths written.

        ``threshold`` defaults to the one the analysis validated labels with.
        """
        from .report.figures import save_figure

        if threshold is None:
            threshold = self._analysis().settings.threshold
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "correlation_heatmap.png", out / "hsi_scores.png"]
        save_figure(self.plot_correlation_heatmap(), written[0])
        save_figure(self.plot_hsi_bar(), written[1])
        for h, label in self.analyzer._result().head_labels.items():
            feature = label.get("primary_feature")
            if feature and label["hsi"] >= threshold:
                written.append(out / f"attention_vs_feature_h{h}_{feature}.png")
                save_figure(self.plot_attention_vs_feature(h, feature), written[-1])
        return written
