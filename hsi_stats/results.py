"""The full analysis: :func:`analyze` and its frozen result, :class:`HSIResult`.

``analyze`` runs estimation, the cluster bootstrap, the randomisation test, the multiple-comparison correction
and the label validation in that order, from one ``rng``, and keeps everything a report needs to trace a number
back to its settings, data and seed. The registry export lives here too. No plotting is imported.
"""

from __future__ import annotations

import os
import platform
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ._validation import HSIDataError, OptionError, OptionTypeError, ResamplingWarning, seeded_generator
from .agreement import JointTarget, LabelAgreement, LabelTarget, label_agreement
from .catalog import GENERAL_CONTEXT, FeatureCatalog
from .chunks import ChunkSource, EntityCounts, Fused, accumulate, entity_summary, slot_values
from .data import HSIDataset
from .estimators import Estimate, SelectivityReduction, estimate_with, selectivity_from, sums_reduction
from .focus import IndicatorReduction, focus_from, focus_reduction, indicators_from
from .formatting import MISSING, format_interval, format_number, format_p
from .inference.bootstrap import BootstrapResult, run_cluster_bootstrap
from .inference.joint import JointInference, ScoreBootstrap, joint_inference
from .inference.multitest import family_adjusted, head_p_values, smallest_adjusted
from .inference.randomisation import PermutationInputs, RandomisationResult, resolve_scheme, run_randomisation_test
from .inference.resampling import check_batch
from .joint import JointFit, fit_joint
from .labels import HeadEvidence, judge_head
from .profiles import profile_text
from .registry import build_registry, write_registry
from .settings import (
    CORRECTION_NAMES,
    MAXT_CORRECTIONS,
    MIN_SIGN_FLIP_GROUPS,
    PERMUTATION_SCHEMES,
    AnalysisSettings,
    document_options,
)
from .step_selection import StepSelection, select_step

__all__ = ["HEAD_COLUMNS", "HSIResult", "analyze"]

#: Columns of :attr:`HSIResult.heads`, in order.
HEAD_COLUMNS = ("head", "hsi", "ci_low", "ci_high", "hsi_p_value", "hsi_p_adjusted", "primary_feature",
                "primary_rho", "runner_up", "primary_stability", "selectivity", "label_feature", "label", "strength",
                "validated", "reasons", "label_rho", "label_ci_low", "label_ci_high", "label_p_value",
                "label_p_adjusted", "label_stability", "label_focus", "label_focus_ci_low", "label_focus_ci_high",
                "label_focus_target", "label_joint_feature", "label_joint_or", "label_joint_ci_low",
                "label_joint_ci_high", "label_joint_p_adjusted", "profile")

_VERSIONED = ("hsi_stats", "numpy", "scipy", "pandas", "statsmodels")



def hsi_interval_note(heads: pd.DataFrame, confidence_level: float = 0.95) -> str:
    """What the HSI interval is, said under the head table of the summary, the report and ``table.tex``.

    The interval projects a simultaneous band of the head's rhos onto the largest |rho|
    (:func:`hsi_stats.inference.bootstrap.projected_hsi_interval`): it holds the estimate, and starts at 0 when no
    feature of the head is told apart from 0.

    Examples
    --------
    >>> hsi_interval_note(pd.DataFrame({"ci_low": [0.41, 0.0, 0.0]}))[-88:]
    '2 of 3 intervals start at 0: no feature of those heads is told apart from 0 by the band.'
    """
    at_zero = int((heads["ci_low"] <= 0).sum())
    level = round(100 * confidence_level)
    note = (f"HSI [CI]: the largest |rho| of the head, with the largest |rho| its rhos can have within their "
            f"simultaneous {level}% band over the features (a projection, which covers the true HSI of every head, "
            "no effect included).")
    if at_zero:
        note += (f" {at_zero} of {len(heads)} interval{'s' if len(heads) > 1 else ''} start at 0: no feature of "
                 f"{'those heads' if at_zero > 1 else 'that head'} is told apart from 0 by the band.")
    return note


@dataclass(frozen=True, eq=False)
class HSIResult:
    """Everything :func:`analyze` found, frozen.

    Attributes
    ----------
    pairs : DataFrame
        One row per (head, feature): ``head, feature, rho, ci_low, ci_high, p_value, p_adjusted`` (plus
        ``n_used`` and ``se``).
    heads : DataFrame
        One row per head: ``head, hsi, ci_low, ci_high, hsi_p_value, hsi_p_adjusted, primary_feature,
        primary_rho, runner_up, primary_stability, selectivity, label_feature, label, strength, validated,
        reasons, label_rho, label_ci_low, label_ci_high, label_p_value, label_p_adjusted, label_stability,
        label_focus, label_focus_ci_low, label_focus_ci_high, label_focus_target``. Two tests, two names:
        ``hsi_p_*`` is the test of the head's HSI (adjusted over the heads), ``label_p_*`` the test of the label
        feature's pair (adjusted over every head x feature pair, as in :attr:`pairs`). ``primary_stability`` is
        the share of bootstrap resamples in which the primary feature stays the strongest; ``label_stability``
        the label feature's among the sign-consistent features. ``label_feature`` is the feature the label is
        judged on: for a General Context Head, the candidate that failed (the ``reasons`` say why), or none.
        With the joint model: ``profile`` (the features with a conditional effect, strongest first,
        :mod:`hsi_stats.profiles`) and the label feature's conditional odds ratio ``label_joint_or`` with its
        interval and adjusted p-value (``label_joint_feature`` names the feature judged: the label's, or the kept
        feature that explains it when the joint model left it out, the sign turned where their relation is
        inverse).
    joint : DataFrame or None
        The joint model (:mod:`hsi_stats.joint`): one row per head x kept feature, ``head, feature, coef, ci_low,
        ci_high, odds_ratio, p_value, p_adjusted`` (coefficient and interval on the log odds scale, ``odds_ratio``
        its exponential) plus ``se``, ``scale`` and ``fit``; None when ``joint=False``.
    settings : AnalysisSettings
        Every option of the analysis, resolved: ``scheme`` is the scheme used, ``scheme_requested`` what was
        asked for. ``settings.to_dict()`` is what the registry and the report record.
    data_summary : mapping
        Scenarios, groups, entities, heads, features, left-out values per feature and why, loader notes.
    provenance : mapping
        Package versions, data fingerprint, seed and time.
    estimate, bootstrap, test, joint_model : the underlying results (for figures and further work);
        ``joint_model`` (a :class:`~hsi_stats.inference.joint.JointInference`) holds the fit, its columns left out
        and its passes over the data.
    catalog : FeatureCatalog
        The feature meanings the labels were judged against.
    dataset : HSIDataset
        The data analysed (immutable), for figures of attention against features.
    """

    pairs: pd.DataFrame
    heads: pd.DataFrame
    settings: AnalysisSettings
    data_summary: Mapping[str, Any]
    provenance: Mapping[str, Any]
    estimate: Estimate
    bootstrap: BootstrapResult
    test: RandomisationResult
    catalog: FeatureCatalog
    dataset: HSIDataset | ChunkSource
    joint: pd.DataFrame | None = None
    joint_model: JointInference | None = None
    _agreement: dict[str, dict[int, LabelAgreement]] = field(default_factory=dict, repr=False, compare=False)

    def summary(self) -> str:
        """A readable table of the heads with the settings that produced it."""
        s = self.settings
        level = round(100 * s["confidence_level"])
        selection = StepSelection.from_dict(self.data_summary["step_selection"])
        at = (f" at training step {selection.label(selection.step)}" if selection.step is not None else
              f", {len(selection.available)} training steps pooled" if selection.pooled else "")
        if selection.step is not None and len(selection.available) > 1:
            at += (f" ({'one of' if selection.chosen else 'the last of'} {len(selection.available)} steps"
                   f"{', as asked' if selection.chosen else ''}; the others are in the evolution over training)")
        header = (f"HSI analysis{at}: {self.data_summary['n_scenarios']} scenarios in "
                  f"{self.data_summary['n_groups']} groups, {self.data_summary['n_heads']} heads x "
                  f"{self.data_summary['n_features']} features\n"
                  f"estimator={s['estimator']} ({s['correlation']}{', slot-adjusted' if s['adjust'] else ''}), "
                  f"{level}% {s['ci_method']} CIs from {s['n_resamples']} cluster-bootstrap resamples, "
                  f"{s['scheme']} test ({self.test.n_resamples} randomisations{', exact' if self.test.exact else ''})"
                  f", correction={s['correction']}, seed={self.provenance['seed']}")
        rows, reasons = [], []
        for head in self.heads.to_dict(orient="records"):
            labelled = isinstance(head["label_feature"], str)
            rows.append({
                "head": head["head"],
                "HSI [CI]": format_interval(head["hsi"], head["ci_low"], head["ci_high"]),
                "HSI p_adj": format_p(head["hsi_p_adjusted"]),
                "primary": head["primary_feature"] if isinstance(head["primary_feature"], str) else MISSING,
                "label feature": head["label_feature"] if labelled else MISSING,
                "rho": format_number(head["label_rho"]) if labelled else MISSING,
                "focus": format_number(head["label_focus"], 2) if labelled else MISSING,
                "label p_adj": format_p(head["label_p_adjusted"]) if labelled else MISSING,
                "stability": format_number(head["label_stability"], 2) if labelled else MISSING,
                "label": head["label"],
                "validated": "yes" if head["validated"] else "no",
            })
            if not head["validated"] and head["reasons"]:
                reasons.append(f"  {head['head']}: {head['reasons']}")
        table = pd.DataFrame(rows).to_string(index=False)
        footnote = ("HSI p_adj: the test of the head's HSI, adjusted over the heads. label feature: the feature the "
                    "label is judged on (for a General Context Head, the candidate that failed); its rho, focus "
                    "(excess attention share on its target: 0 uniform, 1 all, -1 none), label p_adj (its pair test, "
                    "adjusted over every head x feature pair) and stability (share of resamples in which it stays the "
                    "strongest) decide the label")
        footnote += "\n" + hsi_interval_note(self.heads, self.settings.confidence_level)
        return (f"{header}\n{table}\n{footnote}" + ("\nreasons:\n" + "\n".join(reasons) if reasons else "")
                + self._profiles_text())

    def _profiles_text(self) -> str:
        """The heads' profiles for the summary (empty without the joint model)."""
        if self.joint_model is None:
            return ""
        fit = self.joint_model.fit
        lines = [f"  {head}: {profile}" for head, profile in self.heads[["head", "profile"]].itertuples(index=False)]
        left_out = [c.name for c in fit.aliasing.left_out if c.name in self.estimate.feature_names]
        return ("\nprofiles (joint model: the features with a conditional effect, adjusted p < "
                f"{self.settings.alpha:g}, the others held fixed; strongest first; odds ratios of attention"
                + (f"; left out as aliased: {', '.join(left_out)}" if left_out else "")
                + f"; the analysis made {self.data_summary['passes']} passes over the data):\n" + "\n".join(lines))

    def __repr__(self) -> str:
        d = self.data_summary
        validated = [f"{h}: {lab}" for h, lab, ok in self.heads[["head", "label", "validated"]].itertuples(index=False)
                     if ok]
        selection = StepSelection.from_dict(d["step_selection"])
        step = "" if selection.step is None else f", step={selection.label(selection.step)}"
        return (f"HSIResult(heads={d['n_heads']}, features={d['n_features']}, scenarios={d['n_scenarios']}, "
                f"groups={d['n_groups']}{step}, validated={validated}, "
                f"seed={self.provenance['seed']!r})")

    def registry(self, *, allow_unvalidated: bool = False, ablation: Any = None) -> dict[str, Any]:
        """The head-function registry as a dictionary (see :meth:`export_registry`)."""
        meta = {
            "package": "hsi_stats",
            "settings": self.settings.to_dict(),
            "provenance": dict(self.provenance),
            "data_summary": {k: v for k, v in self.data_summary.items() if k != "left_out"},
        }
        validated_only = not allow_unvalidated
        return build_registry(self.heads, self.pairs, self.catalog, meta=meta,
                              allow_unvalidated=allow_unvalidated,
                              agreement=self.label_agreement(validated_only=validated_only), joint=self.joint,
                              joint_agreement=self.joint_agreement(validated_only=validated_only),
                              ablation=ablation)

    def label_agreement(self, *, validated_only: bool = True) -> dict[int, LabelAgreement]:
        """By head index, the agreement of each labelled head's top entity with its label's target on the data
        analysed, with its clustered Wilson interval, and its concentration
        (:func:`hsi_stats.agreement.label_agreement`; one pass over the data)."""
        return self._agreements(validated_only)[0]

    def joint_agreement(self, *, validated_only: bool = True) -> dict[int, LabelAgreement]:
        """By head index, the agreement of each labelled head's top entity with the entity its joint model predicts
        (highest fitted attention from the effects of its profile, those with adjusted p < alpha), computed in the
        same pass as :meth:`label_agreement`; empty without the joint model."""
        return self._agreements(validated_only)[1]

    def _agreements(self, validated_only: bool) -> tuple[dict[int, LabelAgreement], dict[int, LabelAgreement]]:
        key = "validated" if validated_only else "labelled"
        if key not in self._agreement:
            targets: list[LabelTarget | JointTarget] = []
            for h, head in enumerate(self.heads.to_dict(orient="records")):
                words = head.get("label_focus_target")
                if head["label"] == GENERAL_CONTEXT or not isinstance(words, str) or not head.get("label_feature") \
                        or (validated_only and not head["validated"]):
                    continue
                targets.append(LabelTarget(h, str(head["label_feature"]), 1 if words in ("flagged", "highest")
                                           else -1, words in ("flagged", "not flagged")))
                rows = None if self.joint is None else self.joint[(self.joint["head"] == head["head"])
                                                                  & (self.joint["p_adjusted"] < self.settings.alpha)]
                if rows is not None and len(rows) and np.isfinite(rows["coef"]).all():
                    targets.append(JointTarget(h, tuple((str(f), float(c), scale == "indicator") for f, c, scale in
                                                        rows[["feature", "coef", "scale"]].itertuples(index=False))))
            found = label_agreement(self.dataset, targets, confidence_level=self.settings.confidence_level)
            self._agreement[key] = {item.target.head: item for item in found if isinstance(item.target, LabelTarget)}
            self._agreement["joint " + key] = {item.target.head: item for item in found
                                               if isinstance(item.target, JointTarget)}
        return self._agreement[key], self._agreement["joint " + key]

    def export_registry(self, path: str | os.PathLike[str], *, allow_unvalidated: bool = False,
                        ablation: Any = None) -> None:
        """Write ``head_functions.json`` atomically.

        Keys ``"0"``, ``"1"``, ... (head index as a string) hold ``name, description, primary_feature, hsi,
        correlation, correlation_sign`` as before plus the evidence; ``_meta`` holds settings and provenance.
        A label that did not validate is written as a General Context Head unless ``allow_unvalidated=True``.
        ``ablation`` (an :class:`~hsi_stats.ablation.AblationEffects`, an
        :class:`~hsi_stats.ablation.AblationEpisodes` or a sequence of them, computed on the model this analysis
        recorded) adds each head's ``ablation`` block: what removing it did to the policy
        (:func:`hsi_stats.registry.ablation_entries`).
        """
        write_registry(path, self.registry(allow_unvalidated=allow_unvalidated, ablation=ablation))


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found[name] = "unknown"
    return found


def _data_summary(dataset: Any, est: Estimate, selection: StepSelection, present: Mapping[str, float], passes: int,
                  fit: JointFit | None) -> dict[str, Any]:
    described = selection.describe()
    joint_notes = [] if fit is None else list(fit.notes)
    if fit is not None and fit.left_out_entities:
        joint_notes.append(f"{fit.left_out_entities} entities with a NaN feature were left out of the joint model's "
                           "fit of their scenario.")
    return {
        "n_scenarios": dataset.n_scenarios,
        "n_groups": dataset.n_groups,
        "n_heads": dataset.n_heads,
        "n_features": dataset.n_features,
        "n_slots": dataset.n_slots,
        "n_entities": int(present["total"]),
        "entities_per_scenario": {"min": int(present["min"]), "mean": float(present["mean"]),
                                  "max": int(present["max"])},
        "steps": None if dataset.steps is None else sorted(int(s) for s in np.unique(dataset.steps)),
        "step_selection": selection.as_dict(),
        "left_out": est.left_out.to_dict(orient="records"),
        "passes": passes,
        "joint": None if fit is None else {
            "passes": fit.passes, "start_scenarios": fit.sample_scenarios,
            "features_left_out": [c.name for c in fit.aliasing.left_out if c.name in dataset.feature_names],
            "entities_left_out": fit.left_out_entities, "firth_heads": [
                name for name, method in zip(dataset.head_names, fit.method, strict=True) if method == "firth"]},
        "notes": [*([described[0].upper() + described[1:] + "."] if described else []), *dataset.notes,
                  *joint_notes],
    }


def _focus_directions(rho: np.ndarray, feature_names: tuple[str, ...], catalog: FeatureCatalog) -> np.ndarray:
    """+1 or -1 per (head, feature): the catalog's expected sign, else (``either``) the sign of rho (+1 if none)."""
    expected = np.array([{"positive": 1, "negative": -1}.get(catalog.meaning(name).sign, 0) for name in feature_names])
    observed = np.where(np.nan_to_num(rho) < 0, -1, 1)
    return np.where(expected[None, :] != 0, expected[None, :], observed)


def _focus_targets(directions: np.ndarray, kinds: list[bool]) -> list[str]:
    """What the focus of each (head, feature) counts as the target, in words, head-major (``kinds``: whether each
    feature is an indicator)."""
    words = {(True, 1): "flagged", (True, -1): "not flagged", (False, 1): "highest", (False, -1): "lowest"}
    return [words[(kinds[f], int(directions[h, f]))] for h in range(directions.shape[0])
            for f in range(directions.shape[1])]


def _pairs_frame(est: Estimate, boot: BootstrapResult, test: RandomisationResult, p_adjusted: np.ndarray,
                 focus: np.ndarray, targets: list[str]) -> pd.DataFrame:
    frame = est.to_frame().drop(columns="primary")
    frame.insert(3, "ci_low", boot.rho_low.reshape(-1))
    frame.insert(4, "ci_high", boot.rho_high.reshape(-1))
    frame.insert(5, "p_value", test.pair_p.reshape(-1))
    frame.insert(6, "p_adjusted", p_adjusted.reshape(-1))
    frame.insert(7, "focus", focus.reshape(-1))
    frame.insert(8, "focus_ci_low", np.asarray(boot.focus_low).reshape(-1))
    frame.insert(9, "focus_ci_high", np.asarray(boot.focus_high).reshape(-1))
    frame.insert(10, "focus_target", targets)
    frame["se"] = boot.rho_se.reshape(-1)
    return frame


def _heads_frame(est: Estimate, boot: BootstrapResult, test: RandomisationResult, pair_adjusted: np.ndarray,
                 head_adjusted: np.ndarray, selectivities: np.ndarray, settings: AnalysisSettings,
                 focus: np.ndarray, targets: list[str], joint: JointInference | None) -> pd.DataFrame:
    base = est.heads_frame().drop(columns="runner_up_rho")
    stability = boot.stability(est.rho)
    left_out = () if joint is None else joint.fit.aliasing.left_out
    rows = []
    for h, name in enumerate(est.head_names):
        joint_rows = None if joint is None else joint.rows(name)
        evidence = HeadEvidence(est.rho[h], pair_adjusted[h], boot.rho_low[h], boot.rho_high[h],
                                boot.rho_distribution[:, h, :], float(selectivities[h]), joint_rows, left_out)
        verdict = judge_head(evidence, est.feature_names, settings.feature_catalog, settings)
        f = None if verdict.label_feature is None else est.feature_names.index(verdict.label_feature)
        def at(values: np.ndarray, f: int | None = f, h: int = h) -> float:
            return float("nan") if f is None else float(values[h, f])

        rows.append({
            "ci_low": boot.hsi_low[h], "ci_high": boot.hsi_high[h],
            "hsi_p_value": head_p_values(test, settings.correction)[h],
            "hsi_p_adjusted": head_adjusted[h], "primary_stability": stability[h], "selectivity": selectivities[h],
            **verdict.as_row(),
            "label_rho": at(est.rho), "label_ci_low": at(boot.rho_low), "label_ci_high": at(boot.rho_high),
            "label_p_value": at(test.pair_p), "label_p_adjusted": at(pair_adjusted), "label_focus": at(focus),
            "label_focus_ci_low": at(np.asarray(boot.focus_low)),
            "label_focus_ci_high": at(np.asarray(boot.focus_high)),
            "label_focus_target": None if f is None else targets[h * len(est.feature_names) + f],
            "profile": None if joint_rows is None else profile_text(joint_rows, settings.alpha, left_out),
        })
    extra = pd.DataFrame(rows)
    frame = pd.concat([base, extra], axis=1)
    order = list(HEAD_COLUMNS)
    return frame[order + [c for c in frame.columns if c not in order]]


def _warn_if_alpha_unreachable(test: RandomisationResult, settings: AnalysisSettings, n_tests: int) -> None:
    """A warning when no adjusted p-value can fall below alpha: then no label can validate, whatever the data."""
    resolution = 1.0 / test.n_resamples if test.exact else 1.0 / (test.n_resamples + 1)
    smallest = smallest_adjusted(resolution, n_tests, settings.correction)
    if smallest < settings.alpha:
        return
    needed = next((b for b in (99, 199, 499, 999, 1999, 4999, 9999, 19999, 49999, 99999)
                   if smallest_adjusted(1.0 / (b + 1), n_tests, settings.correction) < settings.alpha), None)
    advice = f"use n_resamples >= {needed}" if needed else "use far more resamples"
    warnings.warn(f"with {test.n_resamples} randomisations the smallest attainable adjusted p-value is "
                  f"{smallest:.3g} ({CORRECTION_NAMES[settings.correction]} over {n_tests} tests), not below alpha "
                  f"{settings.alpha:g}: no label can validate; {advice}.", ResamplingWarning, stacklevel=3)


def _check_dataset(dataset: Any) -> Any:
    if not isinstance(dataset, (HSIDataset, ChunkSource)):
        raise OptionTypeError(f"`dataset` must be an HSIDataset (or a ShardedDataset from hsi_stats.scan), but "
                              f"{type(dataset).__name__} was passed.")
    if dataset.n_groups < 2:
        raise HSIDataError(f"inference needs at least 2 groups (independent episodes), but `groups` has "
                           f"{dataset.n_groups}.")
    return dataset


def analyze(
    dataset: HSIDataset | ChunkSource,
    settings: AnalysisSettings | None = None,
    *,
    step: int | None = None,
    pool_steps: bool = False,
    rng: object = None,
    batch: int | None = None,
    progress: bool = False,
    **options: Any,
) -> HSIResult:
    """Estimate, bootstrap, test, correct and validate: the whole analysis in one call.

    Parameters
    ----------
    dataset : HSIDataset or ShardedDataset
        Needs at least two groups (the resampling unit). A :class:`~hsi_stats.io.ShardedDataset`
        (:func:`hsi_stats.scan`) is read shard by shard and gives the numbers of the same scenarios in memory; it
        supports the ``within`` and ``fisher`` estimators and the sign-flip test.
    settings : AnalysisSettings, optional
        Every option of the analysis; default ``AnalysisSettings()``.
    step : int, optional
        The training step to analyse when the data hold several; default the last one (the policy as trained).
        :func:`analyze_evolution` compares the steps.
    pool_steps : bool, default False
        Pool the scenarios of every step instead (only on request: a correlation pooled over different networks
        describes none of them). ``data_summary["step_selection"]`` and a note record what was analysed.
    rng : seed or Generator, optional
        The only source of randomness; a seed is drawn and recorded in ``provenance`` when omitted.
    batch : int, optional
        Resamples per batch (memory only: the numbers do not depend on it); default 1000, fewer with many groups
        (:func:`~hsi_stats.inference.resampling.check_batch`).
    progress : bool, default False
        Show progress bars.
    **options
        Options overriding ``settings`` (see :class:`~hsi_stats.settings.AnalysisSettings`):

        {options}

    Returns
    -------
    HSIResult

    Examples
    --------
    >>> from hsi_stats.synthetic import generate
    >>> result = analyze(generate(n_episodes=20, rng=0).dataset, n_resamples=499, rng=1)
    >>> result.heads.loc[0, "label"], bool(result.heads.loc[0, "validated"])
    ('Safety Head', True)
    """
    settings = AnalysisSettings.from_options(settings, options)
    _check_dataset(dataset)
    if progress and hasattr(dataset, "with_progress"):  # a sharded data set: a bar over its shards too
        dataset = dataset.with_progress(True)
    dataset, selection = select_step(dataset, step=step, pool_steps=pool_steps)
    dataset = _check_dataset(dataset)
    batch_size = check_batch(batch, dataset.n_groups)
    seed, generator = seeded_generator(rng)
    scheme = resolve_scheme(settings.scheme, dataset.n_groups, permutable=settings.permutable)
    if scheme in PERMUTATION_SCHEMES and isinstance(dataset, ChunkSource):
        raise OptionError(f"`scheme={scheme!r}` shuffles the entities of every scenario at once, which a data set "
                              "read shard by shard does not hold; use scheme='sign-flip' (it needs at least "
                              f"{MIN_SIGN_FLIP_GROUPS} groups; the data have {dataset.n_groups}) or load the data "
                              "in memory.")

    catalog = settings.feature_catalog
    slots = slot_values(dataset) if settings.adjust == "slot" else None
    passes = 1 if slots is not None and isinstance(dataset, ChunkSource) else 0
    # The reductions that need no result of another share one pass over the data (the joint model's first).
    sums = sums_reduction(dataset, settings, slots) if settings.estimator != "pooled" else None
    counts, flags = EntityCounts(), IndicatorReduction(dataset.feature_names)
    expected = np.array([{"positive": 1, "negative": -1}.get(catalog.meaning(n).sign, 0)
                         for n in dataset.feature_names])
    focus_part, selective = focus_reduction(dataset, expected), SelectivityReduction(dataset.n_heads)
    extras = [part for part in (sums, counts, flags, focus_part, selective) if part is not None]
    fit: JointFit | None = None
    if settings.joint:
        fit = fit_joint(dataset, priority=column_priority(dataset.feature_names, catalog, slots),
                        slot_values=slots, extras=extras)
        passes += fit.passes
    else:
        accumulate(dataset, Fused(extras))
        passes += 1
    est = estimate_with(dataset, settings, sums)
    passes += sums is None  # pooled ranks every pair at once: a pass of its own
    directions = _focus_directions(est.rho, est.feature_names, catalog)
    indicators = indicators_from(flags)
    focus = focus_from(focus_part, directions)
    scores = ScoreBootstrap(fit) if fit is not None and settings.correction in MAXT_CORRECTIONS else None
    boot = run_cluster_bootstrap(est.sums, settings.n_resamples, settings.confidence_level, settings.ci_method,
                                 generator, batch_size, progress, focus, also=() if scores is None else (scores.add,))
    inputs = (PermutationInputs.from_dataset(dataset, est.correlation)
              if scheme in PERMUTATION_SCHEMES and isinstance(dataset, HSIDataset) else None)
    test = run_randomisation_test(est.sums, scheme, inputs, settings.n_resamples, generator, batch_size, progress)
    pair_adjusted, head_adjusted = family_adjusted(test, settings.correction)
    _warn_if_alpha_unreachable(test, settings, pair_adjusted.size)
    joint = None if fit is None else joint_inference(
        fit, dataset.head_names, indicators, confidence_level=settings.confidence_level,
        correction=settings.correction, deviations=None if scores is None else scores.deviations)

    used = settings.with_scheme_used(scheme)
    provenance = MappingProxyType({
        "versions": _versions(), "data_fingerprint": dataset.fingerprint(), "seed": seed,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    targets = _focus_targets(directions, indicators)
    summary = _data_summary(dataset, est, selection, entity_summary(counts), passes, fit)
    return HSIResult(
        pairs=_pairs_frame(est, boot, test, pair_adjusted, focus.focus(), targets),
        heads=_heads_frame(est, boot, test, pair_adjusted, head_adjusted, selectivity_from(selective), used,
                           focus.focus(), targets, joint),
        settings=used,
        data_summary=MappingProxyType(summary),
        provenance=provenance,
        estimate=est, bootstrap=boot, test=test, catalog=used.feature_catalog, dataset=dataset,
        joint=None if joint is None else joint.table, joint_model=joint,
    )


def column_priority(names: tuple[str, ...], catalog: FeatureCatalog, slots: np.ndarray | None) -> list[int]:
    """The joint model's columns (features in the data's order, then slots) from the first to keep to the first to
    leave out when aliased: the slots, then the features in the catalog's order, then the others in the data's."""
    listed = [name for name in catalog if name in names]
    order = [names.index(name) for name in listed] + [i for i, name in enumerate(names) if name not in listed]
    return [*range(len(names), len(names) + (0 if slots is None else slots.size)), *order]


document_options(analyze, indent="        ")
