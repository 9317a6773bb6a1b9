"""Evolution over training (DESIGN 4.5): the analysis per training step, trend tests and emergence steps.

:func:`analyze_evolution` runs :func:`hsi_stats.analyze` on the scenarios of each training step (checkpoint), from
one random generator, tests each head for a monotone trend of its HSI over training with a randomisation test of
Spearman's rank correlation between step and HSI, and gives the first step from which each head's label stays
validated. It belongs to the results layer: it never imports a plotting library and never rounds; the report
draws its figures from the :class:`EvolutionResult`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import stats

from ._validation import HSIDataError, OptionTypeError, check_int, seeded_generator
from .catalog import GENERAL_CONTEXT
from .data import HSIDataset
from .results import HSIResult, analyze
from .settings import AnalysisSettings

__all__ = ["EvolutionResult", "analyze_evolution"]

PER_STEP_COLUMNS: tuple[str, ...] = ("step", "head", "hsi", "ci_low", "ci_high", "primary_feature", "label",
                                     "validated")
"""Columns of :attr:`EvolutionResult.per_step`, in order."""

_TREND_BATCH = 10_000  # permutations per batch of the trend test: memory only, the numbers do not depend on it


@dataclass(frozen=True, eq=False)
class EvolutionResult:
    """What :func:`analyze_evolution` found, frozen.

    Attributes
    ----------
    per_step : DataFrame
        One row per (step, head), step-major and in head order, with exactly the columns
        ``step, head, hsi, ci_low, ci_high, primary_feature, label, validated`` taken from each step's
        :attr:`HSIResult.heads`. A step with fewer than 2 groups has NaN ``hsi, ci_low, ci_high``, no primary
        feature, label "General Context Head" and ``validated`` False (see :attr:`notes`).
    trends : DataFrame
        One row per head: ``head``, ``statistic`` (Spearman's rank correlation between step and HSI over the
        steps where the HSI is defined), ``p_value`` (two-sided randomisation test of that correlation),
        ``n_steps`` (steps used) and ``exact`` (whether all permutations were enumerated). NaN when the HSI is
        defined at fewer than 2 steps or does not vary.
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
    """

    per_step: pd.DataFrame
    trends: pd.DataFrame
    emergence: Mapping[str, int | None]
    results: Mapping[int, HSIResult]
    steps: tuple[int, ...]
    settings: Mapping[str, Any]
    provenance: Mapping[str, Any]
    notes: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """The per-step table (:attr:`per_step`), as a copy."""
        return self.per_step.copy()


# ------------------------------------------------------------------------------------------------ trend
def _spearman_against(hsi: NDArray[np.float64]) -> Any:
    """Spearman's rho between (permuted) step ranks and the fixed ``hsi``, vectorised over leading axes.

    The step ranks are a permutation of 1..K, so their centred sum of squares is the same for every
    permutation; the HSI is ranked once, with average ties.
    """
    q = stats.rankdata(hsi)
    q_centred = q - q.mean()
    q_norm = float(np.sqrt(np.sum(q_centred**2)))

    def statistic(step_ranks: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
        r = np.moveaxis(np.asarray(step_ranks, dtype=np.float64), axis, -1)
        r_centred = r - r.mean(axis=-1, keepdims=True)
        r_norm = np.sqrt(np.sum(r_centred**2, axis=-1))
        return np.asarray(np.sum(r_centred * q_centred, axis=-1) / (r_norm * q_norm))

    return statistic


def _trend_test(steps: NDArray[np.int64], hsi: NDArray[np.float64], n_resamples: int,
                rng: np.random.Generator) -> tuple[float, float, int, bool]:
    """Signed Spearman rho, two-sided p-value, steps used and exactness for one head."""
    finite = np.isfinite(hsi)
    used = int(finite.sum())
    if used < 2 or np.ptp(hsi[finite]) == 0:
        return math.nan, math.nan, used, False
    spearman = _spearman_against(hsi[finite])
    step_ranks = stats.rankdata(steps[finite])

    def magnitude(x: NDArray[np.float64], axis: int = -1) -> NDArray[np.float64]:
        return np.abs(spearman(x, axis=axis))

    # "pairings" with one sample permutes the step labels against the fixed HSI: all K! orders when they fit in
    # n_resamples (p = k / K!), else n_resamples random ones (p = (1 + k) / (1 + B)); ties within 100 eps.
    kwargs: dict[str, Any] = {"rng": rng} if "rng" in _PERMUTATION_TEST_PARAMETERS else {"random_state": rng}
    test = stats.permutation_test((step_ranks,), magnitude, permutation_type="pairings", vectorized=True,
                                  n_resamples=n_resamples, batch=_TREND_BATCH, alternative="greater", **kwargs)
    exact = math.factorial(used) <= n_resamples
    return float(spearman(step_ranks)), float(test.pvalue), used, exact


_PERMUTATION_TEST_PARAMETERS = frozenset(inspect.signature(stats.permutation_test).parameters)


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
    if not isinstance(dataset, HSIDataset):
        raise OptionTypeError(f"`dataset` must be an HSIDataset, but {type(dataset).__name__} was passed.")
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
        return pd.DataFrame({"step": step, "head": list(head_names), "hsi": math.nan, "ci_low": math.nan,
                             "ci_high": math.nan, "primary_feature": None, "label": GENERAL_CONTEXT,
                             "validated": False})
    frame = result.heads.loc[:, [c for c in PER_STEP_COLUMNS if c != "step"]].copy()
    frame.insert(0, "step", step)
    return frame


def analyze_evolution(dataset: HSIDataset, settings: AnalysisSettings | None = None, *, trend_resamples: int = 9999,
                      rng: object = None, batch: int | None = None, progress: bool = False,
                      **options: Any) -> EvolutionResult:
    r"""Run the analysis at every training step, test each head's HSI for a trend and find when labels emerge.

    The scenarios of each distinct step are analysed with :func:`hsi_stats.analyze` (same options at every
    step). A step whose scenarios hold fewer than 2 groups cannot be analysed; it gets NaN rows and a note
    instead of an error.

    Trend test. For head h with HSI values :math:`y_1, \dots, y_K` at steps :math:`t_1 < \dots < t_K` (steps
    where the HSI is NaN are left out), the statistic is Spearman's rank correlation [1]_

    .. math::

        r_s = \frac{\sum_k (R_k - \bar R)(Q_k - \bar Q)}
                   {\sqrt{\sum_k (R_k - \bar R)^2 \sum_k (Q_k - \bar Q)^2}},

    :math:`R_k` the rank of :math:`t_k` and :math:`Q_k` that of :math:`y_k` (average ranks for ties). Under
    the null hypothesis of no trend every assignment of the steps to the HSI values is equally likely, so the
    step labels are permuted: with :math:`T = |r_s|`, :math:`T^*` its value under a permutation and
    :math:`\gamma = 100\,\epsilon\,T` a tolerance for floating ties, the two-sided p-value is

    .. math::

        p = \frac{\#\{\pi \in S_K : T^*_\pi \ge T - \gamma\}}{K!}

    by exact enumeration when :math:`K! \le` ``trend_resamples``, else
    :math:`p = (1 + \#\{b : T^*_b \ge T - \gamma\}) / (1 + B)` over :math:`B` = ``trend_resamples`` random
    permutations [2]_. This is :func:`scipy.stats.permutation_test` with ``permutation_type="pairings"``.
    The trend test treats the K HSI estimates as exchangeable under the null; it does not use their
    confidence intervals.

    Because reversing the steps turns :math:`r_s` into :math:`-r_s`, the exact p-value is never below
    :math:`2 / K!`: 0.33 with 3 steps, 0.083 with 4 (so no trend over 4 steps can reach 0.05), 0.017 with 5,
    0.0028 with 6.

    Emergence. For each head, the first step :math:`t_j` such that at every step :math:`t_k \ge t_j` the
    head is validated with the label it has at the last step; None when it is not validated at the last step.

    Parameters
    ----------
    dataset : HSIDataset
        Must have ``steps`` with at least 2 distinct values.
    settings : AnalysisSettings, optional
        The options of the analysis at every step; default ``AnalysisSettings()``.
    trend_resamples : int, default 9999
        Random permutations of the trend test; all :math:`K!` are enumerated when that is not more.
    rng : seed or Generator, optional
        Turned into one Generator, which every step's analysis and then the trend tests draw from in turn: the
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
    .. [1] Spearman, C. (1904). The proof and measurement of association between two things. The American
       Journal of Psychology, 15(1), 72-101. doi:10.2307/1412159
    .. [2] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. Statistical
       Applications in Genetics and Molecular Biology, 9(1). doi:10.2202/1544-6115.1585

    Examples
    --------
    >>> from hsi_stats.synthetic import generate
    >>> run = generate(n_episodes=12, n_steps=10, checkpoints=(0, 1, 2, 3, 4), specialise=(0, 4), rng=0)
    >>> evo = analyze_evolution(run.dataset, n_resamples=199, trend_resamples=999, rng=1)
    >>> list(evo.per_step.columns)
    ['step', 'head', 'hsi', 'ci_low', 'ci_high', 'primary_feature', 'label', 'validated']
    >>> len(evo.per_step), bool(evo.trends.loc[0, "exact"])  # 5 steps x 8 heads; 5! = 120 <= 999
    (40, True)
    >>> float(evo.trends.loc[0, "p_value"]) >= 2 / 120  # never below 2 / K!
    True
    """
    settings = AnalysisSettings.from_options(settings, options, caller="analyze_evolution")
    scenario_steps = _analyze_evolution_iv(dataset, trend_resamples)
    steps = np.unique(scenario_steps)
    seed, generator = seeded_generator(rng)

    results: dict[int, HSIResult] = {}
    frames, notes = [], []
    for step in (int(s) for s in steps):
        subset = dataset.select(scenarios=scenario_steps == step)
        result = None
        if subset.n_groups < 2:
            notes.append(f"step {step}: {subset.n_groups} group(s) in {subset.n_scenarios} scenario(s); inference "
                         "needs at least 2, so its HSI is NaN and no label is validated.")
        else:
            result = analyze(subset, settings, rng=generator, batch=batch, progress=progress)
            results[step] = result
        frames.append(_step_rows(step, result, dataset.head_names))
    per_step = pd.concat(frames, ignore_index=True).loc[:, list(PER_STEP_COLUMNS)]
    per_step = per_step.astype({"step": np.int64, "hsi": np.float64, "ci_low": np.float64,
                                "ci_high": np.float64, "validated": bool})

    trend_rows, emergence = [], {}
    for head in dataset.head_names:
        rows = per_step[per_step["head"] == head]
        statistic, p_value, used, exact = _trend_test(rows["step"].to_numpy(), rows["hsi"].to_numpy(),
                                                      int(trend_resamples), generator)
        trend_rows.append({"head": head, "statistic": statistic, "p_value": p_value, "n_steps": used,
                           "exact": exact})
        emergence[head] = _emergence_step(rows["step"].tolist(), rows["label"].tolist(),
                                          rows["validated"].tolist())

    return EvolutionResult(
        per_step=per_step,
        trends=pd.DataFrame(trend_rows, columns=["head", "statistic", "p_value", "n_steps", "exact"]),
        emergence=MappingProxyType(emergence),
        results=MappingProxyType(results),
        steps=tuple(int(s) for s in steps),
        settings=MappingProxyType({**settings.to_dict(), "trend_resamples": int(trend_resamples)}),
        provenance=MappingProxyType({"seed": seed, "data_fingerprint": dataset.fingerprint()}),
        notes=tuple(notes),
    )
