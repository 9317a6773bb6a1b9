"""The runs a comparison reads: an :class:`~hsi_stats.HSIResult` in memory or an analysis folder, as tables.

:class:`RunTables` holds what :func:`hsi_stats.compare_runs` needs of one run (heads, pairs, the joint model's
table, the settings, the emergence steps) and, in memory, resamples its profiles with the cluster bootstrap.
Folders written by ``hsi-stats analyze`` or :func:`hsi_stats.write_report` are read from their CSV and JSON files,
never from pickles. The checks that runs can be compared (same features, settings that agree) live here too.
No plotting is imported.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._validation import HSIDataError, OptionError, OptionTypeError
from .catalog import GENERAL_CONTEXT
from .evolution import EvolutionResult
from .inference.bootstrap import bootstrap_weights
from .inference.joint import ScoreBootstrap
from .inference.resampling import batch_sizes
from .joint.design import INDICATOR_SCALE
from .results import HSIResult

__all__ = ["FILES", "SETTINGS_REFUSED", "SETTINGS_WARNED", "ComparisonWarning", "RunTables", "attach_emergence",
           "check_same_features", "check_same_settings", "load_runs", "read_run_folder", "run_from_result"]

#: Settings that change what rho or a label means: runs that differ in one are not compared.
SETTINGS_REFUSED = ("estimator", "correlation", "adjust", "fisher_clip", "catalog")
#: Settings that change the intervals or how strict the validation is: runs that differ in one are compared with a
#: :class:`ComparisonWarning`.
SETTINGS_WARNED = ("confidence_level", "ci_method", "n_resamples", "scheme", "correction", "alpha", "threshold",
                   "min_stability", "min_selectivity", "strict", "joint")
#: The files of an analysis folder a comparison needs.
FILES = ("heads.csv", "pairs.csv", "head_functions.json")


class ComparisonWarning(UserWarning):
    """Runs compared although some of their settings differ (the message names them)."""


@dataclass(frozen=True, eq=False)
class RunTables:
    """One run as the comparison reads it, from memory or from a folder."""

    name: str
    source: str
    heads: pd.DataFrame
    pairs: pd.DataFrame
    joint: pd.DataFrame | None
    settings: Mapping[str, Any]
    result: HSIResult | None = None
    emergence: Mapping[str, Any] | None = None

    @property
    def head_names(self) -> list[str]:
        return [str(h) for h in self.heads["head"]]

    @property
    def features(self) -> list[str]:
        return [str(f) for f in pd.unique(self.pairs["feature"])]

    def labels(self) -> list[str]:
        """The validated label of each head, else General Context Head."""
        return [str(label) if bool(ok) else GENERAL_CONTEXT
                for label, ok in zip(self.heads["label"], self.heads["validated"], strict=True)]

    def profiles(self, by: str) -> pd.DataFrame:
        """Heads x features: rho, or the joint model's coefficients (log odds ratios)."""
        if by == "rho":
            return self.pairs.pivot(index="head", columns="feature", values="rho").reindex(index=self.head_names)
        assert self.joint is not None
        return self.joint.pivot(index="head", columns="feature", values="coef").reindex(index=self.head_names)

    def replicates(self, by: str, features: Sequence[str], rng: np.random.Generator, n_resamples: int,
                   batch: int) -> np.ndarray | None:
        """Resampled profiles (B, H, F) from the cluster bootstrap of the run's episodes; None from a folder."""
        if self.result is None:
            return None
        sums = self.result.estimate.sums
        names = list(self.result.estimate.feature_names)
        scores = None
        if by == "joint":
            model = self.result.joint_model
            assert model is not None
            scores = ScoreBootstrap(model.fit)
            kept = list(model.fit.kept)
            names = [model.fit.columns[c] for c in kept]
        out = []
        for size in batch_sizes(n_resamples, batch):
            weights = bootstrap_weights(rng, size, sums.n_groups)
            if scores is None:
                out.append(sums.rho(weights))
            else:
                scores.add(weights)
        if scores is None:
            values = np.concatenate(out)
        else:
            fit = scores.fit
            values = fit.coef[:, kept][None] + scores.deviations
            scale = {str(f): s for f, s in zip(self.joint["feature"], self.joint["scale"], strict=True)}  # type: ignore[index]
            values = values * np.array([INDICATOR_SCALE if scale.get(n) == "indicator" else 1.0 for n in names])
        return values[:, :, [names.index(f) for f in features]]


# ------------------------------------------------------------------------------------------------- reading runs
def run_from_result(result: HSIResult, name: str) -> RunTables:
    return RunTables(name, "memory", result.heads, result.pairs, result.joint, result.settings.to_dict(), result)


def read_run_folder(path: Path, name: str) -> RunTables:
    if not path.is_dir():
        raise HSIDataError(f"{path}: not a folder (an analysis output folder, written by hsi-stats analyze or "
                           "write_report, is needed)")
    missing = [f for f in FILES if not (path / f).is_file()]
    if missing:
        raise HSIDataError(f"{path}: not an analysis output folder (written by hsi-stats analyze or write_report): "
                           f"{', '.join(missing)} missing")
    try:
        meta = json.loads((path / "head_functions.json").read_text(encoding="utf-8")).get("_meta", {})
        heads, pairs = pd.read_csv(path / "heads.csv"), pd.read_csv(path / "pairs.csv")
        joint = pd.read_csv(path / "joint.csv") if (path / "joint.csv").is_file() else None
        trends = pd.read_csv(path / "trends.csv") if (path / "trends.csv").is_file() else None
    except (ValueError, AttributeError) as exc:
        raise HSIDataError(f"{path}: an analysis file cannot be read ({exc})") from None
    for table, file, needed in ((heads, "heads.csv", ("head", "hsi", "label", "validated")),
                                (pairs, "pairs.csv", ("head", "feature", "rho"))):
        absent = [c for c in needed if c not in table.columns]
        if absent:
            raise HSIDataError(f"{path}: {file} must have the columns {list(needed)}, but {absent} are missing")
    if not isinstance(meta, Mapping) or not isinstance(meta.get("settings"), Mapping):
        raise HSIDataError(f"{path}: head_functions.json has no _meta.settings (the settings of the analysis)")
    emergence = None
    if trends is not None and {"head", "emerges_at"} <= set(trends.columns):
        emergence = {str(h): (None if pd.isna(v) else int(v)) for h, v in zip(trends["head"], trends["emerges_at"],
                                                                            strict=True)}
    return RunTables(name, str(path), heads, pairs, joint, dict(meta["settings"]), None, emergence)


def load_runs(runs: object, names: object) -> list[RunTables]:
    if isinstance(runs, (str, os.PathLike, HSIResult)) or not isinstance(runs, Sequence):
        raise OptionTypeError("The value for `runs` must be a sequence of HSIResult objects or analysis folders, "
                              f"but {type(runs).__name__} was passed.")
    if len(runs) < 2:
        given = ", ".join(str(r) if not isinstance(r, HSIResult) else "an HSIResult" for r in runs) or "none"
        raise HSIDataError(f"a comparison needs at least 2 runs, but 1 was given ({given})" if runs else
                           "a comparison needs at least 2 runs, but none was given")
    if names is None:
        chosen = [Path(r).name if isinstance(r, (str, os.PathLike)) else f"run{i}" for i, r in enumerate(runs)]
        if len(set(chosen)) < len(chosen):
            chosen = [f"run{i}" for i in range(len(runs))]
    else:
        if isinstance(names, str) or not isinstance(names, Sequence) or len(names) != len(runs) \
                or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
            raise OptionError(f"The value for `names` must be None or {len(runs)} distinct non-empty strings (one "
                              f"per run), but {names!r} was passed.")
        chosen = list(names)
    loaded = []
    for run, name in zip(runs, chosen, strict=True):
        if isinstance(run, HSIResult):
            loaded.append(run_from_result(run, name))
        elif isinstance(run, (str, os.PathLike)):
            loaded.append(read_run_folder(Path(run), name))
        else:
            raise OptionTypeError(f"Each of `runs` must be an HSIResult or an analysis folder, but "
                                  f"{type(run).__name__} was passed.")
    return loaded


def check_same_features(runs: list[RunTables]) -> None:
    first = runs[0]
    for run in runs[1:]:
        if set(run.features) != set(first.features):
            raise HSIDataError(f"{run.source if run.result is None else run.name}: the runs must have the same "
                               f"features, but {run.name} has {run.features} and {first.name} {first.features}")


def check_same_settings(runs: list[RunTables]) -> None:
    first = runs[0]
    for run in runs[1:]:
        refused = [k for k in SETTINGS_REFUSED if k != "fisher_clip" or first.settings.get("estimator") == "fisher"
                   if run.settings.get(k) != first.settings.get(k)]
        if refused:
            pairs = ", ".join(f"{k}={first.settings.get(k)!r} vs {run.settings.get(k)!r}" for k in refused)
            raise HSIDataError(f"{run.source if run.result is None else run.name}: analysed with other settings than "
                               f"{first.name} ({pairs}); they change what rho and the labels mean, so the runs are "
                               "not compared: analyse them with the same settings")
        warned = [k for k in SETTINGS_WARNED if run.settings.get(k) != first.settings.get(k)]
        if warned:
            pairs = ", ".join(f"{k}={first.settings.get(k)!r} vs {run.settings.get(k)!r}" for k in warned)
            warnings.warn(f"{run.name} was analysed with other settings than {first.name} ({pairs}): intervals or "
                          "the validation of labels differ between the runs", ComparisonWarning, stacklevel=3)


def attach_emergence(evolution: object, runs: list[RunTables]) -> None:
    if evolution is None:
        return
    if not isinstance(evolution, Sequence) or len(evolution) != len(runs) or not all(
            e is None or isinstance(e, EvolutionResult) for e in evolution):
        raise OptionError(f"The value for `evolution` must be None or {len(runs)} EvolutionResult objects (or None), "
                          f"one per run, but {evolution!r} was passed.")
    for i, (evo, run) in enumerate(zip(evolution, runs, strict=True)):
        if evo is None:
            continue
        if set(evo.emergence) != set(run.head_names):
            raise HSIDataError(f"`evolution[{i}]` must have the heads of run {run.name} ({run.head_names}), but it "
                               f"has {list(evo.emergence)}")
        object.__setattr__(run, "emergence", dict(evo.emergence))


