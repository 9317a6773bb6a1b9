"""The full analysis: :func:`analyze` and its frozen result, :class:`HSIResult` (DESIGN 5).

``analyze`` runs estimation, the cluster bootstrap, the randomisation test, the multiple-comparison correction
and the label validation in that order, from one ``rng``, and keeps everything a report needs to trace a number
back to its settings, data and seed. The registry export lives here too. No plotting is imported.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from ._validation import HSIDataError, check_choice
from .catalog import FeatureCatalog, load_catalog
from .data import HSIDataset
from .estimators import Estimate, estimate, selectivity
from .inference.bootstrap import CI_METHODS, BootstrapResult, cluster_bootstrap
from .inference.multitest import CORRECTIONS, adjust_pvalues
from .inference.randomisation import SCHEMES, PermutationInputs, RandomisationResult, randomisation_test
from .labels import HeadEvidence, ValidationRules, judge_head
from .registry import build_registry, write_registry

__all__ = ["HSIResult", "analyze"]

_VERSIONED = ("hsi_stats", "numpy", "scipy", "pandas", "statsmodels")


@dataclass(frozen=True, eq=False)
class HSIResult:
    """Everything :func:`analyze` found, frozen.

    Attributes
    ----------
    pairs : DataFrame
        One row per (head, feature): ``head, feature, rho, ci_low, ci_high, p_value, p_adjusted`` (plus
        ``n_used`` and ``se``).
    heads : DataFrame
        One row per head: ``head, hsi, ci_low, ci_high, p_value, p_adjusted, primary_feature, primary_rho,
        runner_up, stability, selectivity, label_feature, label, strength, validated, reasons`` (plus
        ``label_rho``, ``label_ci_low``, ``label_ci_high``, ``label_p_adjusted``, ``label_stability``).
    settings : mapping
        Every option of the analysis, resolved (``scheme="auto"`` shows the scheme used).
    data_summary : mapping
        Scenarios, groups, entities, heads, features, left-out values per feature and why, loader notes.
    provenance : mapping
        Package versions, data fingerprint, seed and time.
    estimate, bootstrap, test : the underlying results (for figures and further work).
    catalog : FeatureCatalog
        The feature meanings the labels were judged against.
    dataset : HSIDataset
        The data analysed (immutable), for figures of attention against features.
    """

    pairs: pd.DataFrame
    heads: pd.DataFrame
    settings: Mapping[str, Any]
    data_summary: Mapping[str, Any]
    provenance: Mapping[str, Any]
    estimate: Estimate
    bootstrap: BootstrapResult
    test: RandomisationResult
    catalog: FeatureCatalog
    dataset: HSIDataset

    def summary(self) -> str:
        """A readable table of the heads with the settings that produced it."""
        s = self.settings
        level = round(100 * s["confidence_level"])
        header = (f"HSI analysis: {self.data_summary['n_scenarios']} scenarios in {self.data_summary['n_groups']} "
                  f"groups, {self.data_summary['n_heads']} heads x {self.data_summary['n_features']} features\n"
                  f"estimator={s['estimator']} ({s['correlation']}{', slot-adjusted' if s['adjust'] else ''}), "
                  f"{level}% {s['ci_method']} CIs from {s['n_resamples']} cluster-bootstrap resamples, "
                  f"{s['scheme']} test ({self.test.n_resamples} randomisations{', exact' if self.test.exact else ''})"
                  f", correction={s['correction']}, seed={self.provenance['seed']}")
        table = pd.DataFrame({
            "head": self.heads["head"],
            "HSI [CI]": [f"{h:.3f} [{lo:.3f}, {hi:.3f}]" for h, lo, hi in
                         zip(self.heads["hsi"], self.heads["ci_low"], self.heads["ci_high"], strict=True)],
            "primary": self.heads["primary_feature"],
            "p_adj": [f"{p:.4f}" for p in self.heads["label_p_adjusted"]],
            "stability": [f"{v:.2f}" for v in self.heads["stability"]],
            "label": self.heads["label"],
            "validated": self.heads["validated"].map({True: "yes", False: "no"}),
        })
        failed = self.heads[~self.heads["validated"] & (self.heads["reasons"] != "")]
        reasons = "\n".join(f"  {r['head']}: {r['reasons']}" for _, r in failed.iterrows())
        return f"{header}\n{table.to_string(index=False)}" + (f"\nreasons:\n{reasons}" if reasons else "")

    def registry(self, *, allow_unvalidated: bool = False) -> dict[str, Any]:
        """The head-function registry as a dictionary (see :meth:`export_registry`)."""
        meta = {
            "package": "hsi_stats",
            "settings": dict(self.settings),
            "provenance": dict(self.provenance),
            "data_summary": {k: v for k, v in self.data_summary.items() if k != "left_out"},
        }
        return build_registry(self.heads, self.pairs, self.catalog, meta=meta,
                              allow_unvalidated=allow_unvalidated)

    def export_registry(self, path: str | os.PathLike[str], *, allow_unvalidated: bool = False) -> None:
        """Write ``head_functions.json`` atomically.

        Keys ``"0"``, ``"1"``, ... (head index as a string) hold ``name, description, primary_feature, hsi,
        correlation, correlation_sign`` as before plus the evidence; ``_meta`` holds settings and provenance.
        A label that did not validate is written as a General Context Head unless ``allow_unvalidated=True``.
        """
        write_registry(path, self.registry(allow_unvalidated=allow_unvalidated))


def _seed_and_generator(rng: object) -> tuple[object, np.random.Generator]:
    """A Generator and what to record as its seed (fresh entropy is drawn and recorded when rng is None)."""
    if rng is None:
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        return seed, np.random.default_rng(seed)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng), np.random.default_rng(int(rng))
    try:
        return f"user-supplied {type(rng).__name__}", np.random.default_rng(rng)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise TypeError("The value for `rng` must be None, an int seed, a SeedSequence, a BitGenerator or a "
                        f"Generator, but {rng!r} was passed.") from None


def _versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            found[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            found[name] = "unknown"
    return found


def _data_summary(dataset: HSIDataset, est: Estimate) -> dict[str, Any]:
    present = dataset.mask.sum(axis=1)
    return {
        "n_scenarios": dataset.n_scenarios,
        "n_groups": dataset.n_groups,
        "n_heads": dataset.n_heads,
        "n_features": dataset.n_features,
        "n_slots": dataset.n_slots,
        "n_entities": int(present.sum()),
        "entities_per_scenario": {"min": int(present.min()), "mean": float(present.mean()),
                                  "max": int(present.max())},
        "steps": None if dataset.steps is None else sorted(int(s) for s in np.unique(dataset.steps)),
        "left_out": est.left_out.to_dict(orient="records"),
        "notes": list(dataset.notes),
    }


def _pairs_frame(est: Estimate, boot: BootstrapResult, test: RandomisationResult,
                 p_adjusted: np.ndarray) -> pd.DataFrame:
    frame = est.to_frame().drop(columns="primary")
    frame.insert(3, "ci_low", boot.rho_low.reshape(-1))
    frame.insert(4, "ci_high", boot.rho_high.reshape(-1))
    frame.insert(5, "p_value", test.pair_p.reshape(-1))
    frame.insert(6, "p_adjusted", p_adjusted.reshape(-1))
    frame["se"] = boot.rho_se.reshape(-1)
    return frame


def _heads_frame(est: Estimate, boot: BootstrapResult, test: RandomisationResult, pair_adjusted: np.ndarray,
                 head_adjusted: np.ndarray, selectivities: np.ndarray, catalog: FeatureCatalog,
                 rules: ValidationRules) -> pd.DataFrame:
    base = est.heads_frame().drop(columns="runner_up_rho")
    stability = boot.stability(est.rho)
    rows = []
    for h in range(len(est.head_names)):
        evidence = HeadEvidence(est.rho[h], pair_adjusted[h], boot.rho_low[h], boot.rho_high[h],
                                boot.rho_distribution[:, h, :], float(selectivities[h]))
        verdict = judge_head(evidence, est.feature_names, catalog, rules)
        f = None if verdict["label_feature"] is None else est.feature_names.index(str(verdict["label_feature"]))
        def at(values: np.ndarray, f: int | None = f, h: int = h) -> float:
            return float("nan") if f is None else float(values[h, f])

        rows.append({
            "ci_low": boot.hsi_low[h], "ci_high": boot.hsi_high[h], "p_value": test.head_p[h],
            "p_adjusted": head_adjusted[h], "stability": stability[h], "selectivity": selectivities[h],
            "label_feature": verdict["label_feature"], "label": verdict["label"], "strength": verdict["strength"],
            "validated": verdict["validated"], "reasons": verdict["reasons"],
            "label_rho": at(est.rho), "label_ci_low": at(boot.rho_low), "label_ci_high": at(boot.rho_high),
            "label_p_adjusted": at(pair_adjusted), "label_stability": verdict["label_stability"],
        })
    extra = pd.DataFrame(rows)
    frame = pd.concat([base, extra], axis=1)
    order = ["head", "hsi", "ci_low", "ci_high", "p_value", "p_adjusted", "primary_feature", "primary_rho",
             "runner_up", "stability", "selectivity", "label_feature", "label", "strength", "validated", "reasons"]
    return frame[order + [c for c in frame.columns if c not in order]]


def _analyze_iv(dataset: HSIDataset, ci_method: str, scheme: str, correction: str) -> tuple[str, str, str]:
    if not isinstance(dataset, HSIDataset):
        raise TypeError(f"`dataset` must be an HSIDataset, but {type(dataset).__name__} was passed.")
    if dataset.n_groups < 2:
        raise HSIDataError(f"inference needs at least 2 groups (independent episodes), but `groups` has "
                           f"{dataset.n_groups}.")
    return (check_choice("ci_method", ci_method, CI_METHODS), check_choice("scheme", scheme, SCHEMES),
            check_choice("correction", correction, CORRECTIONS))


def analyze(
    dataset: HSIDataset,
    *,
    estimator: str = "within",
    correlation: str = "spearman",
    adjust: str | None = None,
    n_resamples: int = 9999,
    confidence_level: float = 0.95,
    ci_method: str = "expanded",
    scheme: str = "auto",
    correction: str = "maxT",
    alpha: float = 0.05,
    threshold: float = 0.3,
    min_stability: float = 0.8,
    min_selectivity: float = 0.05,
    strict: bool = False,
    catalog: FeatureCatalog | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    rng: object = None,
    batch: int | None = None,
    fisher_clip: float = 0.999,
    progress: bool = False,
) -> HSIResult:
    """Estimate, bootstrap, test, correct and validate: the whole analysis of DESIGN 4 in one call.

    Parameters
    ----------
    dataset : HSIDataset
        Needs at least two groups (the resampling unit).
    estimator, correlation, adjust, fisher_clip
        As in :func:`hsi_stats.estimate`.
    n_resamples : int, default 9999
        For the bootstrap and for the randomisation test each.
    confidence_level : float, default 0.95
    ci_method : {"expanded", "bca", "percentile", "basic"}, default "expanded"
        ``expanded`` is the small-sample expanded percentile interval (Hesterberg 2015), which keeps the
        coverage near nominal with few groups; see :mod:`hsi_stats.inference.bootstrap`.
    scheme : {"auto", "sign-flip", "within-group", "within-scenario"}, default "auto"
    correction : {"maxT", "maxT-single-step", "holm", "bonferroni", "fdr_bh", "fdr_by", "sidak", "holm-sidak",
        "hommel", "none"}, default "maxT"
        ``maxT`` is the step-down Westfall-Young adjustment from the same randomisations.
    alpha, threshold, min_stability, min_selectivity, strict
        Validation rules (DESIGN 4.4).
    catalog : catalog, mapping or path, optional
        Feature meanings; default the driving catalog.
    rng : seed or Generator, optional
        The only source of randomness; a seed is drawn and recorded in ``provenance`` when omitted.
    batch : int, optional
        Resamples per batch (memory only: the numbers do not depend on it).
    progress : bool, default False
        Show progress bars.

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
    ci_method, scheme, correction = _analyze_iv(dataset, ci_method, scheme, correction)
    rules = ValidationRules(threshold=threshold, alpha=alpha, min_stability=min_stability,
                            min_selectivity=min_selectivity, strict=bool(strict))
    resolved_catalog = load_catalog(catalog)
    seed, generator = _seed_and_generator(rng)

    est = estimate(dataset, estimator=estimator, correlation=correlation, adjust=adjust, fisher_clip=fisher_clip)
    boot = cluster_bootstrap(est.sums, n_resamples=n_resamples, confidence_level=confidence_level,
                             method=ci_method, rng=generator, batch=batch, progress=progress)
    permutable = est.estimator == "within" and est.adjust == "none"
    inputs = (PermutationInputs.from_dataset(dataset, est.correlation)
              if permutable and scheme != "sign-flip" else None)
    test = randomisation_test(est.sums, scheme=scheme, permutation_inputs=inputs, n_resamples=n_resamples,
                              rng=generator, batch=batch, progress=progress)

    if correction == "maxt":
        pair_adjusted, head_adjusted = test.pair_p_step_down, test.head_p_step_down
    elif correction == "maxt-single-step":
        pair_adjusted, head_adjusted = test.pair_p_single_step, test.head_p_single_step
    else:
        pair_adjusted, head_adjusted = adjust_pvalues(test.pair_p, correction), adjust_pvalues(test.head_p, correction)

    selectivities = selectivity(dataset)
    settings = MappingProxyType({
        "estimator": est.estimator, "correlation": est.correlation,
        "adjust": None if est.adjust == "none" else est.adjust, "fisher_clip": float(fisher_clip),
        "n_resamples": int(n_resamples), "confidence_level": float(confidence_level), "ci_method": ci_method,
        "scheme": test.scheme, "scheme_requested": scheme, "correction": correction, "alpha": rules.alpha,
        "threshold": rules.threshold, "min_stability": rules.min_stability,
        "min_selectivity": rules.min_selectivity, "strict": rules.strict,
        "catalog": ("driving" if catalog is None else str(catalog) if isinstance(catalog, (str, os.PathLike))
                    else "user mapping"),
    })
    provenance = MappingProxyType({
        "versions": _versions(), "data_fingerprint": dataset.fingerprint(), "seed": seed,
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    return HSIResult(
        pairs=_pairs_frame(est, boot, test, pair_adjusted),
        heads=_heads_frame(est, boot, test, pair_adjusted, head_adjusted, selectivities, resolved_catalog, rules),
        settings=settings,
        data_summary=MappingProxyType(_data_summary(dataset, est)),
        provenance=provenance,
        estimate=est, bootstrap=boot, test=test, catalog=resolved_catalog, dataset=dataset,
    )
