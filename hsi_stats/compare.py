r"""Do head functions replicate across runs? :func:`compare_runs` and its frozen result, :class:`RunComparison`.

Runs of one architecture trained with different seeds need not put a function on the same head, so heads are
matched across runs by what they track (:mod:`hsi_stats.inference.matching`), and a function replicates in k of
R runs, with an exact (Clopper-Pearson) interval over the runs. Runs come as :class:`~hsi_stats.HSIResult` objects
or as the folders :func:`hsi_stats.write_report` and ``hsi-stats analyze`` write (read from their CSV and JSON
files, never from pickles). It belongs to the results layer: it never imports a plotting library and never rounds;
the figure and the page of a comparison are in :mod:`hsi_stats.report.compare`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import binomtest
from tqdm import tqdm

from ._validation import (
    HSIDataError,
    OptionError,
    check_choice,
    check_int,
    is_real,
    seeded_generator,
)
from .catalog import GENERAL_CONTEXT
from .evolution import EvolutionResult
from .formatting import MISSING, format_number
from .inference.matching import Assignment, best_assignment, match_stability, profile_similarity
from .inference.resampling import check_batch
from .profiles import significant_rows
from .results import HSIResult
from .runs import (
    SETTINGS_REFUSED,
    SETTINGS_WARNED,
    ComparisonWarning,
    RunTables,
    attach_emergence,
    check_same_features,
    check_same_settings,
    load_runs,
)

#: Pair margin below which a match is ambiguous when its stability cannot be measured (runs read from folders).
DEFAULT_MIN_MARGIN = 0.1

__all__ = ["CARRIER_COLUMNS", "DEFAULT_MIN_MARGIN", "FUNCTION_COLUMNS", "MATCH_COLUMNS", "SETTINGS_REFUSED",
           "SETTINGS_WARNED", "ComparisonWarning", "RunComparison", "compare_runs"]

#: Columns of :attr:`RunComparison.matches`, in order.
MATCH_COLUMNS = ("run", "head", "reference_head", "similarity", "margin", "pair_margin", "stability", "ambiguous",
                 "label", "reference_label")
#: Columns of :attr:`RunComparison.functions`, in order.
FUNCTION_COLUMNS = ("label", "runs_with", "runs", "rate", "ci_low", "ci_high", "kind", "carried_by")
#: Columns of :attr:`RunComparison.carriers`, in order.
CARRIER_COLUMNS = ("label", "run", "head", "reference_head", "ambiguous", "hsi", "rho", "focus", "emerges_at")


# ------------------------------------------------------------------------------------------------- the result
@dataclass(frozen=True, eq=False)
class RunComparison:
    """What :func:`compare_runs` found, frozen.

    Attributes
    ----------
    matches : DataFrame
        One row per head of every run after the first (:data:`MATCH_COLUMNS`): ``run, head, reference_head``
        (missing for a head left unmatched), ``similarity`` (Pearson correlation of the two profiles),
        ``margin`` (the run's: best total similarity minus the best total of any other assignment),
        ``pair_margin`` (the pair's: what the best assignment without this pair loses; the run's margin is the
        smallest), ``stability`` (share of resamples that keep the pair; NaN for runs read from folders),
        ``ambiguous`` (stability below ``min_match_stability``, or, without a stability, pair margin below
        ``min_margin``; an unmatched head and an undefined similarity are ambiguous too), ``label`` and
        ``reference_label`` (validated labels, else General Context Head).
    functions : DataFrame
        :data:`FUNCTION_COLUMNS`. One row per validated label (``kind="label"``): ``runs_with`` of the ``runs``
        runs have a head that validates it, ``rate`` = runs_with / runs and its Clopper-Pearson interval;
        ``carried_by`` names the head of each run, its HSI, focus and, with evolution results, the step it
        emerged at. With ``by="joint"``, also one row per reference head with a profile (``kind="profile"``): of
        the ``runs`` = R - 1 other runs, ``runs_with`` match it unambiguously with a head whose profile has the same
        significant features with the same signs.
    carriers : DataFrame
        The heads behind ``carried_by``, one row per (label, run, head) (:data:`CARRIER_COLUMNS`).
    similarity : DataFrame
        Every reference head x head of every other run: ``run, reference_head, head, similarity``.
    profiles : mapping of str to DataFrame
        Each run's profiles (heads x features) as compared.
    rho : mapping of str to DataFrame
        Each run's rho (heads x features), for the figure.
    runs : tuple of str
        The runs' names, the reference first.
    sources : tuple of str
        ``"memory"`` or the folder of each run.
    features : tuple of str
        The features the profiles are compared over.
    settings : mapping
        ``by, min_match_stability, min_margin, n_resamples, confidence_level, seed`` and ``run_settings`` (the
        analysis settings of the reference run).
    notes : tuple of str
    """

    matches: pd.DataFrame
    functions: pd.DataFrame
    carriers: pd.DataFrame
    similarity: pd.DataFrame
    profiles: Mapping[str, pd.DataFrame]
    rho: Mapping[str, pd.DataFrame]
    runs: tuple[str, ...]
    sources: tuple[str, ...]
    features: tuple[str, ...]
    settings: Mapping[str, Any]
    notes: tuple[str, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """The matches (:attr:`matches`), as a copy."""
        return self.matches.copy()

    def order(self, run: str) -> list[str | None]:
        """The heads of ``run`` in the reference's head order (None where a reference head has no match), then its
        unmatched heads: the rows of the figure."""
        reference = list(self.rho[self.runs[0]].index)
        if run == self.runs[0]:
            return list(reference)
        rows = self.matches[self.matches["run"] == run]
        by_reference = {r: h for h, r in zip(rows["head"], rows["reference_head"], strict=True) if isinstance(r, str)}
        unmatched = [h for h, r in zip(rows["head"], rows["reference_head"], strict=True) if not isinstance(r, str)]
        return [by_reference.get(r) for r in reference] + unmatched

    def summary(self) -> str:
        """A readable account of the matches and of the functions' replication, with how they were computed."""
        s = self.settings
        level = round(100 * s["confidence_level"])
        stability = (f"stability from {s['n_resamples']} cluster-bootstrap resamples of each run's episodes "
                     f"(seed={s['seed']}), ambiguous below {s['min_match_stability']:g}"
                     if self.matches["stability"].notna().any() else
                     f"no stability (runs read from folders): ambiguous when the pair margin is below "
                     f"{s['min_margin']:g}")
        header = (f"Comparison of {len(self.runs)} runs ({', '.join(self.runs)}) over {len(self.features)} features: "
                  f"heads matched to {self.runs[0]}'s by their {'rho' if s['by'] == 'rho' else 'joint-model'} "
                  f"profiles (Pearson similarity, optimal assignment); {stability}")
        shown = pd.DataFrame({
            "run": self.matches["run"], "head": self.matches["head"],
            "matches": self.matches["reference_head"].fillna(MISSING),
            "similarity": [format_number(v, 2) for v in self.matches["similarity"]],
            "pair margin": [format_number(v, 3) for v in self.matches["pair_margin"]],
            "stability": [format_number(v, 2) for v in self.matches["stability"]],
            "ambiguous": np.where(self.matches["ambiguous"], "yes", "no"),
            "label": self.matches["label"], "reference label": self.matches["reference_label"],
        })
        margins = ", ".join(f"{run} {format_number(m, 3)}" for run, m in
                            self.matches.groupby("run", sort=False)["margin"].first().items())
        functions = pd.DataFrame({
            "function": self.functions["label"],
            "runs": [f"{k}/{n}" for k, n in zip(self.functions["runs_with"], self.functions["runs"], strict=True)],
            f"rate [{level}% CI]": [f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in
                                    zip(self.functions["rate"], self.functions["ci_low"], self.functions["ci_high"],
                                        strict=True)],
        })
        lines = [header, shown.to_string(index=False),
                 f"margin of each run (best total similarity minus the next best assignment's): {margins}",
                 "", "Functions (Clopper-Pearson intervals over runs; a profile row counts the runs besides the "
                 "reference whose matched head is unambiguous and keeps its significant features and signs):",
                 functions.to_string(index=False) if len(functions) else "  no validated label in any run"]
        lines += [f"  {label}: {carried}" for label, carried in zip(self.functions["label"],
                                                                     self.functions["carried_by"], strict=True)]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"RunComparison(runs={list(self.runs)}, by={self.settings['by']!r}, "
                f"ambiguous matches={int(self.matches['ambiguous'].sum())}/{len(self.matches)}, "
                f"functions={len(self.functions)})")


# ------------------------------------------------------------------------------------------------- computation
def clopper_pearson(k: int, n: int, confidence_level: float) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a binomial proportion k/n.

    Examples
    --------
    >>> [round(v, 3) for v in clopper_pearson(3, 3, 0.95)]
    [0.292, 1.0]
    """
    if n == 0:
        return math.nan, math.nan
    interval = binomtest(k, n).proportion_ci(confidence_level=confidence_level, method="exact")
    return float(interval.low), float(interval.high)


def _common_features(runs: list[RunTables], by: str) -> tuple[list[str], list[str]]:
    notes = []
    if by == "joint":
        missing = [run.name for run in runs if run.joint is None]
        if missing:
            raise HSIDataError(f"by='joint' needs the joint model of every run, but {', '.join(missing)} has none "
                               "(analysed with joint=False, or no joint.csv in its folder); use by='rho'")
        kept = [set(map(str, run.joint["feature"])) for run in runs if run.joint is not None]
        features = [f for f in runs[0].features if all(f in k for k in kept)]
        dropped = [f for f in runs[0].features if f not in features]
        if dropped:
            notes.append(f"features left out of some run's joint model, so not compared: {', '.join(dropped)}")
    else:
        features = [f for f in runs[0].features
                    if all(np.isfinite(run.profiles("rho")[f].to_numpy(float)).all() for run in runs)]
        dropped = [f for f in runs[0].features if f not in features]
        if dropped:
            notes.append(f"features with an undefined rho in some run, so not compared: {', '.join(dropped)}")
    if len(features) < 3:
        raise HSIDataError(f"profiles need at least 3 features to be compared, but only {features} are defined in "
                           "every run")
    return features, notes


def _ambiguous(similarity: float, stability: float, pair_margin: float, min_match_stability: float,
               min_margin: float) -> bool:
    if not math.isfinite(similarity):
        return True
    if math.isfinite(stability):
        return stability < min_match_stability
    return pair_margin < min_margin


def _signature(joint: pd.DataFrame | None, head: str, alpha: float,
               features: Sequence[str]) -> frozenset[tuple[str, int]]:
    if joint is None:
        return frozenset()
    rows = significant_rows(joint[(joint["head"] == head) & joint["feature"].isin(features)], alpha)
    return frozenset((str(f), int(np.sign(c))) for f, c in zip(rows["feature"], rows["coef"], strict=True))


def _signature_text(signature: frozenset[tuple[str, int]]) -> str:
    return ", ".join(f"{f} {'+' if s > 0 else '−'}" for f, s in sorted(signature))


def _carrier_text(row: Mapping[str, Any]) -> str:
    parts = [f"HSI {format_number(row['hsi'], 2)}", f"focus {format_number(row['focus'], 2)}"]
    if row["emerges_at"] is not None:
        parts.append(f"emerged at step {row['emerges_at']}")
    return f"{row['head']} ({', '.join(parts)}{'; ambiguous match' if row['ambiguous'] else ''})"


def _functions(runs: list[RunTables], matches: pd.DataFrame, by: str, features: Sequence[str],
               level: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    carriers, rows = [], []
    matched = {(r, h): (ref, amb) for r, h, ref, amb in zip(matches["run"], matches["head"],
                                                            matches["reference_head"], matches["ambiguous"],
                                                            strict=True)}
    labels = [lab for run in runs for lab in run.labels() if lab != GENERAL_CONTEXT]
    for label in dict.fromkeys(labels):
        per_run = []
        for i, run in enumerate(runs):
            chosen = [h for h, lab in zip(run.head_names, run.labels(), strict=True) if lab == label]
            for head in chosen:
                row = run.heads[run.heads["head"].astype(str) == head].iloc[0]
                reference, ambiguous = (head, False) if i == 0 else matched.get((run.name, head), (None, True))
                emerges = None if run.emergence is None else run.emergence.get(head)
                carriers.append({"label": label, "run": run.name, "head": head,
                                 "reference_head": reference if isinstance(reference, str) else None,
                                 "ambiguous": bool(ambiguous), "hsi": float(row["hsi"]),
                                 "rho": float(row.get("label_rho", math.nan)),
                                 "focus": float(row.get("label_focus", math.nan)), "emerges_at": emerges})
            texts = [_carrier_text(c) for c in carriers if c["label"] == label and c["run"] == run.name]
            per_run.append(f"{run.name}: {', '.join(texts) if texts else 'none'}")
        k = sum(1 for run in runs if label in run.labels())
        low, high = clopper_pearson(k, len(runs), level)
        rows.append({"label": label, "runs_with": k, "runs": len(runs), "rate": k / len(runs), "ci_low": low,
                     "ci_high": high, "kind": "label", "carried_by": "; ".join(per_run)})
    if by == "joint":
        reference = runs[0]
        alpha = float(reference.settings.get("alpha", 0.05))
        for head in reference.head_names:
            signature = _signature(reference.joint, head, alpha, features)
            if not signature:
                continue
            k, per_run = 0, []
            for run in runs[1:]:
                found = matches[(matches["run"] == run.name) & (matches["reference_head"] == head)]
                if found.empty:
                    per_run.append(f"{run.name}: no match")
                    continue
                other, ambiguous = str(found["head"].iloc[0]), bool(found["ambiguous"].iloc[0])
                theirs = _signature(run.joint, other, float(run.settings.get("alpha", 0.05)), features)
                same = theirs == signature
                k += same and not ambiguous
                why = "same profile" if same else f"profile {_signature_text(theirs) or 'none'}"
                per_run.append(f"{run.name}: {other} ({why}{', ambiguous match' if ambiguous else ''})")
            low, high = clopper_pearson(k, len(runs) - 1, level)
            rows.append({"label": f"profile of {reference.name}:{head} ({_signature_text(signature)})",
                         "runs_with": k, "runs": len(runs) - 1, "rate": k / (len(runs) - 1), "ci_low": low,
                         "ci_high": high, "kind": "profile", "carried_by": "; ".join(per_run)})
    functions = pd.DataFrame(rows, columns=list(FUNCTION_COLUMNS)).astype({"runs_with": np.int64, "runs": np.int64})
    carried = pd.DataFrame(carriers, columns=list(CARRIER_COLUMNS))
    carried["emerges_at"] = carried["emerges_at"].astype("Int64")
    return functions, carried


def _match_rows(run: RunTables, reference: RunTables, similarity: np.ndarray, assignment: Assignment,
                stability: np.ndarray | None, min_match_stability: float, min_margin: float) -> list[dict[str, Any]]:
    by_head = {int(j): k for k, j in enumerate(assignment.other)}
    labels, reference_labels = run.labels(), reference.labels()
    rows = []
    for j, head in enumerate(run.head_names):
        k = by_head.get(j)
        if k is None:
            rows.append({"run": run.name, "head": head, "reference_head": None, "similarity": math.nan,
                         "margin": assignment.margin, "pair_margin": math.nan, "stability": math.nan,
                         "ambiguous": True, "label": labels[j], "reference_label": None})
            continue
        i = int(assignment.reference[k])
        value, margin = float(similarity[i, j]), float(assignment.pair_margins[k])
        kept = math.nan if stability is None else float(stability[k])
        rows.append({"run": run.name, "head": head, "reference_head": reference.head_names[i], "similarity": value,
                     "margin": assignment.margin, "pair_margin": margin, "stability": kept,
                     "ambiguous": _ambiguous(value, kept, margin, min_match_stability, min_margin),
                     "label": labels[j], "reference_label": reference_labels[i]})
    return rows


def _unit_iv(param: str, value: object) -> float:
    if not is_real(value) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise OptionError(f"The value for `{param}` must be a number in [0, 1], but {value!r} was passed.")
    return float(value)  # type: ignore[arg-type]


def compare_runs(
    runs: Sequence[HSIResult | str | os.PathLike[str]],
    names: Sequence[str] | None = None,
    by: str = "rho",
    min_match_stability: float = 0.8,
    evolution: Sequence[EvolutionResult | None] | None = None,
    *,
    min_margin: float = DEFAULT_MIN_MARGIN,
    n_resamples: int = 999,
    confidence_level: float = 0.95,
    rng: object = None,
    batch: int | None = None,
    progress: bool = False,
) -> RunComparison:
    r"""Match the heads of several runs by what they track, and count in how many runs each function replicates.

    Heads are not aligned across runs (head 3 of one seed need not be head 3 of another), several heads may share a
    label, and a count of labels says nothing of which head does what. Each head's *profile* is its vector over
    the features (:math:`\rho_{h\cdot}`, or with ``by="joint"`` its joint model's log odds ratios); heads of every
    run are matched to the heads of the first run (the reference) by the one-to-one assignment that maximises the
    sum of the Pearson correlations of matched profiles,

    .. math::

        s_{ij} = \operatorname{corr}_f(x_{if}, y_{jf}), \qquad
        \hat\pi = \arg\max_\pi \sum_i s_{i\pi(i)},

    solved exactly (the Hungarian algorithm [1]_ [2]_, :func:`scipy.optimize.linear_sum_assignment`); heads of
    different layers may match; with different numbers of heads every head of the smaller side is matched and the
    others are reported unmatched. A constant profile has an undefined similarity, counted as 0.

    **Margin.** For a matched pair :math:`(i, j)`, the pair margin is :math:`T(\hat\pi) - \max_{\pi:\pi(i)\neq j}
    T(\pi)` (the best assignment with that pair forbidden, solved again); the run's margin is the smallest pair
    margin, which equals :math:`T(\hat\pi)` minus the best total of any other assignment [3]_. It is on the scale
    of a sum of correlations: two heads swapped at a margin of 0.02 are a near-tie.

    **Stability.** With :class:`~hsi_stats.HSIResult` objects in memory, the episodes of every run are resampled
    with the package's cluster bootstrap (:func:`~hsi_stats.inference.bootstrap.bootstrap_weights`; each run's
    resamples drawn in turn from one generator), the profiles recomputed (rho from the group sums; the joint
    coefficients by one Newton step from the estimate, :math:`\hat\beta + I^{-1}\sum_g w_g s_g`), every run matched
    again to the resampled reference, and a pair's stability is the share of the ``n_resamples`` resamples in which
    it stays matched. Runs read from folders have no episodes to resample: their stability is NaN.

    **Ambiguous matches.** A pair is ambiguous when its stability is below ``min_match_stability`` or, without a
    stability, when its pair margin is below ``min_margin``; an unmatched head or an undefined similarity is
    ambiguous too. An ambiguous match never counts as a replication of a profile.

    **Replication.** For each validated label, the runs in which any head validates it: k of R, with the exact
    interval of Clopper and Pearson [4]_ over the runs,

    .. math::

        \Big[B\big(\tfrac{\alpha}{2}; k, R-k+1\big),\ B\big(1-\tfrac{\alpha}{2}; k+1, R-k\big)\Big]

    (:math:`B(q; a, b)` the beta quantile; 0 when k = 0, 1 when k = R): 3 of 3 runs is [0.29, 1] at 95%, not
    certainty. The runs are the sampled units (seeds), so the interval says how often training would put the
    function on some head. With ``by="joint"``, each reference head with a profile (features with an adjusted
    p-value below the run's ``alpha``) also gets a row: of the other R - 1 runs (the reference defines the
    profile, so it is not counted), those whose matched head is unambiguous and has exactly the same significant
    features with the same signs.

    Parameters
    ----------
    runs : sequence of HSIResult or path
        At least two runs with the same features: results of :func:`hsi_stats.analyze`, or the folders
        ``hsi-stats analyze`` and :func:`hsi_stats.write_report` write (their ``heads.csv``, ``pairs.csv``,
        ``joint.csv``, ``head_functions.json`` and, when present, ``trends.csv`` for the emergence steps). The first
        is the reference. Settings that change what rho or a label means (:data:`SETTINGS_REFUSED`: estimator,
        correlation, adjust, catalog, and the Fisher clip) must agree, else an
        :class:`~hsi_stats._validation.HSIDataError`; those that change intervals or the validation rules
        (:data:`SETTINGS_WARNED`: confidence level, interval method, resamples, test scheme, correction, alpha,
        threshold, stability, selectivity, strict, joint) give a :class:`ComparisonWarning`.
    names : sequence of str, optional
        One distinct name per run; default the folder names, or ``run0``, ``run1``, ...
    by : {"rho", "joint"}, default "rho"
        The profile: rho per feature, or the joint model's coefficients (log odds ratios; every run needs the
        joint model; features left out of some run's fit are not compared).
    min_match_stability : float, default 0.8
        Least stability of an unambiguous match.
    evolution : sequence of EvolutionResult or None, optional
        One per run (:func:`hsi_stats.analyze_evolution`): the step at which each carrier's label emerged.
    min_margin : float, default 0.1
        Least pair margin of an unambiguous match when the stability cannot be measured.
    n_resamples : int, default 999
        Cluster-bootstrap resamples of each run for the stability.
    confidence_level : float, default 0.95
        Of the Clopper-Pearson intervals.
    rng : seed or Generator, optional
        The only source of randomness (the stability); same seed, same numbers, whatever ``batch``.
    batch : int, optional
        Resamples per batch (memory only).
    progress : bool, default False
        Show a progress bar over the runs' resamples.

    Returns
    -------
    RunComparison

    References
    ----------
    .. [1] Kuhn, H. W. (1955). The Hungarian method for the assignment problem. Naval Research Logistics Quarterly
       2(1-2), 83-97. https://doi.org/10.1002/nav.3800020109
    .. [2] Munkres, J. (1957). Algorithms for the assignment and transportation problems. Journal of the Society
       for Industrial and Applied Mathematics 5(1), 32-38. https://doi.org/10.1137/0105003
    .. [3] Murty, K. G. (1968). An algorithm for ranking all the assignments in order of increasing cost.
       Operations Research 16(3), 682-687. https://doi.org/10.1287/opre.16.3.682
    .. [4] Clopper, C. J. and Pearson, E. S. (1934). The use of confidence or fiducial limits illustrated in the
       case of the binomial. Biometrika 26(4), 404-413. https://doi.org/10.1093/biomet/26.4.404

    Examples
    --------
    Two runs whose four planted heads sit in another order (the second run's h0 does what the first's h3 does):

    >>> from dataclasses import replace
    >>> from hsi_stats import analyze
    >>> from hsi_stats.synthetic import default_heads, generate
    >>> heads = default_heads()[:4]
    >>> permuted = [replace(spec, name=f"h{i}") for i, spec in enumerate(heads[::-1])]
    >>> runs = [analyze(generate(n_episodes=16, n_steps=8, heads=specs, rng=seed).dataset, n_resamples=99, rng=seed)
    ...         for seed, specs in enumerate([heads, permuted])]
    >>> comparison = compare_runs(runs, names=["seed0", "seed1"], n_resamples=99, rng=0)
    >>> comparison.matches[["head", "reference_head"]].to_numpy().tolist()
    [['h0', 'h3'], ['h1', 'h2'], ['h2', 'h1'], ['h3', 'h0']]
    >>> print(comparison.functions[["label", "runs_with", "runs", "ci_low", "ci_high"]].round(3).to_string(index=False))
                label  runs_with  runs  ci_low  ci_high
          Safety Head          2     2   0.158    1.000
       Proximity Head          2     2   0.158    1.000
       Left Lane Head          1     2   0.013    0.987
    Traffic Flow Head          2     2   0.158    1.000
    """
    by = check_choice("by", by, ("rho", "joint"))
    min_match_stability = _unit_iv("min_match_stability", min_match_stability)
    if not is_real(min_margin) or not float(min_margin) >= 0:
        raise OptionError(f"The value for `min_margin` must be a number >= 0, but {min_margin!r} was passed.")
    n_resamples = check_int("n_resamples", n_resamples, 1)
    if not is_real(confidence_level) or not 0 < float(confidence_level) < 1:
        raise OptionError(f"The value for `confidence_level` must lie in (0, 1), but {confidence_level!r} was "
                          "passed.")
    loaded = load_runs(runs, names)
    check_same_features(loaded)
    check_same_settings(loaded)
    attach_emergence(evolution, loaded)
    features, notes = _common_features(loaded, by)
    seed, generator = seeded_generator(rng)

    profiles = {run.name: run.profiles(by)[features] for run in loaded}
    replicates: list[np.ndarray | None] = []
    resampling = loaded[0].result is not None and any(run.result is not None for run in loaded[1:])
    for run in tqdm(loaded, desc="resampling runs", unit="run", disable=not (progress and resampling)):
        batch_size = check_batch(batch, run.result.estimate.sums.n_groups if run.result is not None else 1)
        replicates.append(run.replicates(by, features, generator, n_resamples, batch_size) if resampling else None)
    if not resampling:
        notes.append("runs read from folders (or a reference read from one) carry no episodes to resample: "
                     f"stability is missing and a match is ambiguous when its pair margin is below {min_margin:g}")

    reference = loaded[0]
    rows, similarities = [], []
    for r, run in enumerate(loaded[1:], start=1):
        similarity = profile_similarity(profiles[reference.name].to_numpy(float), profiles[run.name].to_numpy(float))
        assignment = best_assignment(similarity)
        stability = None
        if replicates[0] is not None and replicates[r] is not None:
            stability = match_stability(replicates[0], replicates[r], assignment)  # type: ignore[arg-type]
        rows += _match_rows(run, reference, similarity, assignment, stability, min_match_stability,
                            float(min_margin))
        frame = pd.DataFrame(similarity, index=reference.head_names, columns=run.head_names)
        long = frame.rename_axis(index="reference_head", columns="head").stack()
        similarities.append(pd.DataFrame({"similarity": long}).reset_index().assign(run=run.name))
        if len(run.head_names) != len(reference.head_names):
            notes.append(f"{run.name} has {len(run.head_names)} heads and {reference.name} "
                         f"{len(reference.head_names)}: {abs(len(run.head_names) - len(reference.head_names))} "
                         "head(s) left unmatched")
    matches = pd.DataFrame(rows, columns=list(MATCH_COLUMNS)).astype({"ambiguous": bool})
    functions, carriers = _functions(loaded, matches, by, features, float(confidence_level))
    return RunComparison(
        matches=matches, functions=functions, carriers=carriers,
        similarity=pd.concat(similarities, ignore_index=True)[["run", "reference_head", "head", "similarity"]],
        profiles=MappingProxyType(profiles),
        rho=MappingProxyType({run.name: run.profiles("rho")[run.features] for run in loaded}),
        runs=tuple(run.name for run in loaded), sources=tuple(run.source for run in loaded),
        features=tuple(features),
        settings=MappingProxyType({"by": by, "min_match_stability": min_match_stability,
                                   "min_margin": float(min_margin),
                                   "n_resamples": n_resamples if resampling else None,
                                   "confidence_level": float(confidence_level),
                                   "seed": seed if resampling else None,
                                   "run_settings": MappingProxyType(dict(reference.settings))}),
        notes=tuple(notes),
    )
