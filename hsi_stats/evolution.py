"""Evolution over training: the analysis at every training step, the trend of each head and when labels emerge.

:func:`analyze_evolution` runs :func:`hsi_stats.analyze` on the scenarios of each training step (checkpoint), from
one random generator; tests each head for a change of its HSI over training at the episode level
(:mod:`hsi_stats.inference.trend`: the slope of HSI on the checkpoint index, episodes permuted between
checkpoints, max-T over heads) and estimates the trend of the feature it tracks over the run with an interval; and
gives the first step from which each head's label stays validated. It belongs to the results layer: it never
imports a plotting library and never rounds; the report draws its figures from the :class:`EvolutionResult`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ._validation import HSIDataError, OptionTypeError, check_int, seeded_generator
from .catalog import GENERAL_CONTEXT
from .chunks import ChunkSource
from .data import HSIDataset, step_label
from .formatting import format_p
from .inference.trend import TREND_COLUMNS, trend_test
from .results import HSIResult, analyze
from .settings import AnalysisSettings

__all__ = ["EMERGENCE_COLUMNS", "PER_STEP_COLUMNS", "EvolutionResult", "analyze_evolution"]

PER_STEP_COLUMNS: tuple[str, ...] = ("step", "head", "hsi", "ci_low", "ci_high", "primary_feature", "label_feature",
                                     "label_rho", "label_ci_low", "label_ci_high", "label_focus", "label",
                                     "validated")
"""Columns of :attr:`EvolutionResult.per_step`, in order (taken from each step's :attr:`HSIResult.heads`)."""
EMERGENCE_COLUMNS: tuple[str, ...] = ("emerges_at", "emergence_ci_low", "emergence_ci_high")
"""Columns added to :attr:`EvolutionResult.trends`: the emergence step and the HSI interval at that step."""


@dataclass(frozen=True, eq=False)
class EvolutionResult:
    """What :func:`analyze_evolution` found, frozen.

    Attributes
    ----------
    per_step : DataFrame
        One row per (step, head), step-major and in head order, with the columns :data:`PER_STEP_COLUMNS` taken
        from each step's :attr:`HSIResult.heads` (HSI and its interval, the label's feature with its rho, interval
        and focus, the label and whether it validated). A step with fewer than 2 groups has NaN numbers, no
        feature, label "General Context Head" and ``validated`` False (see :attr:`notes`).
    trends : DataFrame
        One row per head: ``head, feature, relation, slope, ci_low, ci_high, p_value, p_adjusted, n_steps, trend``
        (:class:`~hsi_stats.inference.trend.TrendResult`: ``slope`` is the change per checkpoint of the rho of the
        feature the head tracks over the run, positive when that relation strengthens, tested by permuting the
        episodes between checkpoints, ``p_adjusted`` step-down max-T over the heads, and its interval the test's,
        which excludes 0 exactly when ``p_value`` is below 1 - confidence level; ``trend`` says it in words), then
        ``emerges_at`` and the HSI interval at that step.
    emergence : mapping of str to int or None
        For each head, the first step from which its label is validated at every later step, the label being
        the same as at the last step; None when the head is not validated at the last step.
    results : mapping of int to HSIResult
        The full analysis of each step that had at least 2 groups (for the report).
    steps : tuple of int
        The distinct steps analysed, in increasing order.
    settings : mapping
        The options of the analysis at every step (:meth:`AnalysisSettings.to_dict
        <hsi_stats.settings.AnalysisSettings.to_dict>`; ``scheme`` as requested, each step's result records the
        scheme it used) and ``trend_resamples``.
    provenance : mapping
        ``seed`` (the int seed used, drawn and recorded when ``rng`` was None) and ``data_fingerprint``.
    notes : tuple of str
        What happened on the way (steps left out of the analysis and why).
    step_names : mapping of int to str
        The data set's :attr:`~hsi_stats.data.HSIDataset.step_names`: steps shown by name (e.g. ``"final"``).
    """

    per_step: pd.DataFrame
    trends: pd.DataFrame
    emergence: Mapping[str, int | None]
    results: Mapping[int, HSIResult]
    steps: tuple[int, ...]
    settings: Mapping[str, Any]
    provenance: Mapping[str, Any]
    notes: tuple[str, ...] = ()
    step_names: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))

    def step_label(self, step: int) -> str:
        """How ``step`` is shown in tables and figures: its name (e.g. ``"final"``), else its number."""
        return step_label(step, self.step_names)

    def to_frame(self) -> pd.DataFrame:
        """The per-step table (:attr:`per_step`), as a copy."""
        return self.per_step.copy()

    def summary(self) -> str:
        """A readable table of each head's trend and emergence, with the settings that produced it."""
        s = self.settings
        level = round(100 * s["confidence_level"])
        header = (f"Evolution over {len(self.steps)} training steps ({self.step_label(self.steps[0])} to "
                  f"{self.step_label(self.steps[-1])}): "
                  f"{s['estimator']} ({s['correlation']}) at every step; trend: change per checkpoint of the rho "
                  f"of the feature each head tracks over the run, positive when its relation strengthens, tested "
                  f"by {s['trend_resamples']} episode permutations ({level}% intervals of the same test, "
                  f"step-down max-T over heads); seed={self.provenance['seed']}")
        table = pd.DataFrame({
            "head": self.trends["head"],
            "feature": self.trends["feature"],
            "trend [CI]": [f"{v:+.3f} [{lo:+.3f}, {hi:+.3f}]" for v, lo, hi in
                           zip(self.trends["slope"], self.trends["ci_low"], self.trends["ci_high"], strict=True)],
            "p_adj": [format_p(p) for p in self.trends["p_adjusted"]],
            "in words": list(self.trends["trend"]),
            "label at the last step": [self.per_step[(self.per_step["step"] == self.steps[-1])
                                                     & (self.per_step["head"] == h)]["label"].iloc[0]
                                       for h in self.trends["head"]],
            "emerges at": ["never" if pd.isna(v) else self.step_label(int(v)) for v in self.trends["emerges_at"]],
        })
        notes = "".join(f"\nnote: {n}" for n in self.notes)
        return f"{header}\n{table.to_string(index=False)}{notes}"

    def __repr__(self) -> str:
        found = sum(v is not None for v in self.emergence.values())
        return (f"EvolutionResult(steps={list(self.steps)}, heads={len(self.trends)}, "
                f"labels emerging={found}, trends with p_adjusted < 0.05="
                f"{int((self.trends['p_adjusted'] < 0.05).sum())})")


# ------------------------------------------------------------------------------------------- emergence
def _emergence_step(steps: list[int], labels: list[str], validated: list[bool]) -> int | None:
    """First step of the final run of steps at which the last step's label is validated."""
    if not validated or not validated[-1]:
        return None
    final = labels[-1]
    first = len(steps) - 1
    while first > 0 and validated[first - 1] and labels[first - 1] == final:
        first -= 1
    return steps[first]


# ---------------------------------------------------------------------------------------------- analysis
def _analyze_evolution_iv(dataset: object, trend_resamples: object) -> NDArray[np.int64]:
    """The step of every scenario, once the dataset and ``trend_resamples`` are checked."""
    if not isinstance(dataset, (HSIDataset, ChunkSource)):
        raise OptionTypeError(f"`dataset` must be an HSIDataset (or a ShardedDataset from hsi_stats.scan), but "
                              f"{type(dataset).__name__} was passed.")
    if dataset.steps is None:
        raise HSIDataError("evolution over training needs `steps` (the training step of each scenario), but "
                           "this dataset has none.")
    steps = np.unique(dataset.steps)
    if steps.size < 2:
        raise HSIDataError("evolution over training needs at least 2 distinct `steps`, but this dataset has "
                           f"{steps.size} ({steps.tolist()}).")
    check_int("trend_resamples", trend_resamples, 1)
    return dataset.steps


def _step_rows(step: int, result: HSIResult | None, head_names: tuple[str, ...]) -> pd.DataFrame:
    if result is None:
        frame = pd.DataFrame({c: math.nan for c in PER_STEP_COLUMNS}, index=range(len(head_names)))
        frame["head"], frame["label"], frame["validated"] = list(head_names), GENERAL_CONTEXT, False
        frame["primary_feature"] = frame["label_feature"] = None
    else:
        frame = result.heads.loc[:, [c for c in PER_STEP_COLUMNS if c != "step"]].copy()
    frame["step"] = step
    return frame.loc[:, list(PER_STEP_COLUMNS)]


def analyze_evolution(dataset: HSIDataset | ChunkSource, settings: AnalysisSettings | None = None, *,
                      trend_resamples: int = 9999, joint_every_step: bool = False, rng: object = None,
                      batch: int | None = None, progress: bool = False, **options: Any) -> EvolutionResult:
    r"""Run the analysis at every training step, test each head for a change over training, find when labels emerge.

    The scenarios of each distinct step are analysed with :func:`hsi_stats.analyze` (same options at every
    step). A step whose scenarios hold fewer than 2 groups cannot be analysed; it gets NaN rows and a note
    instead of an error.

    Trend. Checkpoints are evaluated on independent episodes, so the change over training is tested at the episode
    level (:func:`hsi_stats.inference.trend.trend_test`): for head h, with :math:`f_h` the feature whose rho is
    largest in magnitude on average over the K steps (a choice that favours no direction of change) and :math:`o_h`
    the sign of that relation, the trend is :math:`S_h = o_h \sum_k c_k \rho_{hf_hk}`,
    :math:`c_k = (k - \bar k) / \sum_k (k - \bar k)^2`, positive when the relation strengthens. Under "no change
    over training" the episodes are exchangeable between checkpoints, so they are permuted between them (each
    checkpoint keeps its count, the feature is chosen again in each) and
    :math:`p_h = (1 + \#\{b: |S^*_{bh}| \ge |S_h|\}) / (1 + B)` [1]_, adjusted over the heads by the step-down
    max-T procedure from the same permutations [2]_. The interval inverts the same test, so it excludes 0 exactly
    when :math:`p_h` is below the level. The size, power and coverage of this test and interval are measured by
    ``nox -s trend`` and reported in the documentation (runs over training).

    Emergence. For each head, the first step :math:`t_j` such that at every step :math:`t_k \ge t_j` the
    head is validated with the label it has at the last step, with the HSI interval at that step; None when it is
    not validated at the last step.

    Parameters
    ----------
    dataset : HSIDataset
        Must have ``steps`` with at least 2 distinct values.
    settings : AnalysisSettings, optional
        The options of the analysis at every step; default ``AnalysisSettings()``.
    trend_resamples : int, default 9999
        Episode permutations of the trend test (and its interval).
    joint_every_step : bool, default False
        With ``joint=True`` (the default setting), fit the joint model at every step; by default it is fitted at
        the last step only (the policy as trained), and the labels of the other steps are judged by the marginal
        rules alone.
    rng : seed or Generator, optional
        Turned into one Generator, which every step's analysis and then the trend test draw from in turn: the
        same seed gives the same numbers.
    batch, progress
        As in :func:`hsi_stats.analyze`.
    **options
        Options overriding ``settings`` (``n_resamples``, ``estimator``, ``correction``, ...; see
        :class:`~hsi_stats.settings.AnalysisSettings`).

    Returns
    -------
    EvolutionResult

    Raises
    ------
    HSIDataError
        When ``dataset`` has no ``steps`` or fewer than 2 distinct steps.

    References
    ----------
    .. [1] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. Statistical
       Applications in Genetics and Molecular Biology, 9(1). doi:10.2202/1544-6115.1585
    .. [2] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.

    Examples
    --------
    >>> from hsi_stats.synthetic import generate
    >>> run = generate(n_episodes=12, n_steps=10, checkpoints=(0, 1, 2, 3, 4), specialise=(0, 4), rng=0)
    >>> evo = analyze_evolution(run.dataset, n_resamples=199, trend_resamples=499, rng=1)
    >>> len(evo.per_step), list(evo.trends.columns[:4])  # 5 steps x 8 heads
    (40, ['head', 'feature', 'relation', 'slope'])
    >>> bool(evo.trends.loc[0, "p_adjusted"] < 0.05), evo.trends.loc[0, "feature"]
    (True, 'ttc')
    """

    settings = AnalysisSettings.from_options(settings, options, caller="analyze_evolution")
    scenario_steps = _analyze_evolution_iv(dataset, trend_resamples)
    if not isinstance(joint_every_step, (bool, np.bool_)):
        raise OptionTypeError(f"The value for `joint_every_step` must be True or False, but {joint_every_step!r} was "
                              "passed.")
    steps = np.unique(scenario_steps)
    seed, generator = seeded_generator(rng)

    results: dict[int, HSIResult] = {}
    frames, notes = [], []
    for step in (int(s) for s in steps):
        subset = dataset.select(scenarios=scenario_steps == step)
        result = None
        if subset.n_groups < 2:
            notes.append(f"step {dataset.step_label(step)}: {subset.n_groups} group(s) in {subset.n_scenarios} "
                         "scenario(s); inference needs at least 2, so its HSI is NaN and no label is validated.")
        else:
            joint = settings.joint and (bool(joint_every_step) or step == int(steps[-1]))
            result = analyze(subset, settings.replace(joint=joint), rng=generator, batch=batch, progress=progress)
            results[step] = result
        frames.append(_step_rows(step, result, dataset.head_names))
    per_step = pd.concat(frames, ignore_index=True).loc[:, list(PER_STEP_COLUMNS)]
    per_step = per_step.astype({"step": np.int64, "hsi": np.float64, "ci_low": np.float64,
                                "ci_high": np.float64, "validated": bool})

    trend = trend_test(dataset, settings, n_resamples=int(trend_resamples), rng=generator)
    emergence: dict[str, int | None] = {}
    emergence_rows = []
    for head in dataset.head_names:
        rows = per_step[per_step["head"] == head]
        first = _emergence_step(rows["step"].tolist(), rows["label"].tolist(), rows["validated"].tolist())
        emergence[head] = first
        at = rows[rows["step"] == first] if first is not None else rows.iloc[:0]
        emergence_rows.append({"emerges_at": first,
                               "emergence_ci_low": float(at["ci_low"].iloc[0]) if len(at) else math.nan,
                               "emergence_ci_high": float(at["ci_high"].iloc[0]) if len(at) else math.nan})
    trends = pd.concat([trend.table, pd.DataFrame(emergence_rows)], axis=1)
    trends["emerges_at"] = trends["emerges_at"].astype("Int64")

    return EvolutionResult(
        per_step=per_step,
        trends=trends.loc[:, [*TREND_COLUMNS, *EMERGENCE_COLUMNS]],
        emergence=MappingProxyType(emergence),
        results=MappingProxyType(results),
        steps=tuple(int(s) for s in steps),
        settings=MappingProxyType({**settings.to_dict(), "trend_resamples": int(trend_resamples)}),
        provenance=MappingProxyType({"seed": seed, "data_fingerprint": dataset.fingerprint()}),
        notes=tuple(notes),
        step_names=MappingProxyType(dict(dataset.step_names)),
    )
