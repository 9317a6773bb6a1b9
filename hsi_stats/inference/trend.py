r"""Change over training, tested at the episode level: the trend of each head's HSI across checkpoints.

Checkpoints are evaluated on independent episodes, so the unit of the test is the episode, not the checkpoint. For
head h with :math:`\mathrm{HSI}_{hk}` the HSI of the episodes of the k-th of K checkpoints (in step order), the
trend is the least-squares slope on the step index,

.. math:: b_h = \frac{\sum_k (k - \bar k)\, \mathrm{HSI}_{hk}}{\sum_k (k - \bar k)^2},

the change of HSI from one checkpoint to the next. Every HSI is a function of the per-episode additive sums
(:mod:`hsi_stats.group_sums`), so a reassignment of episodes to checkpoints is one weighted sum.

Test. Under "no change over training" the episodes of all checkpoints are exchangeable: the episodes are permuted
between checkpoints (each keeps its number of episodes), the K HSIs and the slope recomputed, and
:math:`p_h = (1 + \#\{b : |b^*_{bh}| \ge |b_h| - \epsilon\}) / (1 + B)` [1]_. The heads are corrected together by
the step-down max-T procedure from the same permutations [2]_, which controls the family-wise error over heads.

Estimate. The trend reported with an interval is the slope of rho of the feature the head tracks over the run:
the feature whose rho, averaged over the checkpoints, is largest in magnitude,
:math:`f_h = \arg\max_f |\bar\rho_{hf}|` with :math:`\bar\rho_{hf} = K^{-1} \sum_k \rho_{hfk}`, signed so that
a positive slope moves towards that relation: :math:`\operatorname{sign}(\bar\rho_{hf_h}) \sum_k c_k
\rho_{hf_hk}`. The choice weighs every checkpoint alike, so under "no change" it favours no direction of change
(the mean of K exchangeable values is uncorrelated with their contrasts): choosing the strongest feature at the
last checkpoint instead picks the feature that is largest there by chance and shows a rise towards it where there
is none (its intervals covered a zero trend in 81-89% of no-effect heads in ``benchmarks/trend_study.py``). Unlike
the slope of HSI, which the upward bias of a maximum of noisy correlations pulls towards 0 where a head does not
yet track anything, rho is nearly unbiased, so its interval covers (see the README's table; the slope of HSI
covered 20-60%). The episodes of each checkpoint are resampled with replacement within that checkpoint (a
stratified cluster bootstrap) and the slope recomputed; the interval is the percentile interval of those slopes.

With the ``pooled`` estimator and a ranked correlation, the ranks are those of all checkpoints together (the
pooled ranks are not additive); every other estimator gives each checkpoint's own numbers exactly.

References
----------
.. [1] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. Stat. Appl. Genet. Mol.
   Biol. 9(1). https://doi.org/10.2202/1544-6115.1585
.. [2] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from .._validation import HSIDataError
from ..chunks import ChunkSource
from ..data import HSIDataset
from ..estimators import estimate_with, hsi_from_rho, rho_strength
from ..group_sums import GroupSums
from ..settings import AnalysisSettings
from .bootstrap import weights_from_uniforms
from .resampling import ExceedanceCounter, batch_sizes, quantiles_along_first

__all__ = ["TREND_COLUMNS", "EpisodeSums", "TrendResult", "episode_sums", "slope_contrast", "slopes",
           "tracked_feature", "trend_test"]

FloatArray = NDArray[np.float64]
#: Columns of :attr:`TrendResult.table`, in order.
TREND_COLUMNS = ("head", "feature", "slope", "ci_low", "ci_high", "hsi_slope", "p_value", "p_adjusted", "n_steps")
_BATCH = 500  # permutations or resamples per batch: memory only, the numbers do not depend on it


@dataclass(frozen=True, eq=False)
class TrendResult:
    """The trend of each head's HSI over training.

    Attributes
    ----------
    table : DataFrame
        One row per head: ``head, feature`` (the feature it tracks over the run, :func:`tracked_feature`),
        ``slope`` (change of that feature's rho per checkpoint, positive towards the relation), ``ci_low, ci_high``
        (stratified cluster
        bootstrap), ``hsi_slope`` (the tested statistic, change of HSI per checkpoint), ``p_value``
        (episode-permutation test of the HSI slope), ``p_adjusted`` (step-down max-T over heads), ``n_steps``.
    steps : tuple of int
        The checkpoints, in order.
    hsi : ndarray (K, H)
        Each checkpoint's HSI, from the same sums.
    n_resamples : int
        Permutations of the test, and bootstrap resamples of the interval.
    confidence_level : float
    """

    table: pd.DataFrame
    steps: tuple[int, ...]
    hsi: FloatArray
    n_resamples: int
    confidence_level: float


@dataclass(frozen=True, eq=False)
class EpisodeSums:
    """Per-episode sums of a multi-checkpoint data set and the checkpoint each episode belongs to.

    Attributes
    ----------
    sums : GroupSums
        One row per (checkpoint, episode).
    step_of_row : ndarray of int (G,)
        Index (0..K-1) of each row's checkpoint.
    steps : tuple of int
        The checkpoints, in order.
    feature_names : tuple of str
    """

    sums: GroupSums
    step_of_row: NDArray[np.intp]
    steps: tuple[int, ...]
    feature_names: tuple[str, ...]

    def rho(self, weights: FloatArray) -> FloatArray:
        """rho (b, K, H, F) of each checkpoint for group weights (b, K, G)."""
        b, k, g = weights.shape
        rho = self.sums.rho(weights.reshape(b * k, g))
        return rho.reshape(b, k, *rho.shape[1:])

    def hsi(self, weights: FloatArray) -> FloatArray:
        """HSI (b, K, H) of each checkpoint for group weights (b, K, G)."""
        return hsi_from_rho(self.rho(weights))

    def assigned(self, assignment: NDArray[np.intp]) -> FloatArray:
        """Weights (b, K, G) that give checkpoint k the rows assigned to it, for assignments (b, G) of 0..K-1."""
        return (assignment[:, None, :] == np.arange(len(self.steps))[None, :, None]).astype(float)

    def permuted(self, rng: np.random.Generator, size: int) -> FloatArray:
        """Weights of ``size`` random reassignments of the episodes to checkpoints (each keeps its count)."""
        return self.assigned(np.stack([rng.permutation(self.step_of_row) for _ in range(size)]))

    def resampled(self, rng: np.random.Generator, size: int) -> FloatArray:
        """Weights of ``size`` stratified cluster-bootstrap resamples: each checkpoint's episodes, with replacement.

        Each resample draws one uniform per episode, resample after resample, so the stream of resamples does not
        depend on how they are split into batches.
        """
        uniforms = rng.random((size, self.step_of_row.size))
        weights = np.zeros((size, len(self.steps), self.step_of_row.size))
        for k in range(len(self.steps)):
            rows = np.flatnonzero(self.step_of_row == k)
            weights[:, k, rows] = weights_from_uniforms(uniforms[:, rows])
        return weights


def episode_sums(dataset: HSIDataset | ChunkSource, settings: AnalysisSettings) -> EpisodeSums:
    """The per-episode sums of ``dataset`` (one group per checkpoint and episode) for ``settings``' estimator."""
    if dataset.steps is None:
        raise HSIDataError("a trend over training needs `steps`, but this dataset has none.")
    steps = np.unique(dataset.steps)
    if steps.size < 2:
        raise HSIDataError(f"a trend over training needs at least 2 distinct `steps`, but this dataset has "
                           f"{steps.size}.")
    labels = np.char.add(np.char.add(dataset.steps.astype(str), "|"), dataset.groups.astype(str))
    per_episode = dataset.with_groups(labels)
    codes = per_episode.group_codes
    step_of_row = np.empty(int(codes.max()) + 1, dtype=np.intp)
    step_of_row[codes] = np.searchsorted(steps, dataset.steps)
    return EpisodeSums(estimate_with(per_episode, settings).sums, step_of_row, tuple(int(s) for s in steps),
                       dataset.feature_names)


def trend_test(dataset: HSIDataset | ChunkSource, settings: AnalysisSettings, *, n_resamples: int,
               rng: np.random.Generator, confidence_level: float | None = None) -> TrendResult:
    """Slope of each head's HSI on the checkpoint index, its interval and its corrected p-value (module doc).

    Parameters
    ----------
    dataset : HSIDataset
        With ``steps``; at least 2 distinct steps.
    settings : AnalysisSettings
        The estimator and correlation of the HSI (the other options are not used).
    n_resamples : int
        Permutations of the test and bootstrap resamples of the interval, each.
    rng : Generator
    confidence_level : float, optional
        Default: ``settings.confidence_level``.

    Returns
    -------
    TrendResult

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats.settings import AnalysisSettings
    >>> from hsi_stats.synthetic import generate
    >>> run = generate(n_episodes=10, n_steps=5, checkpoints=(1, 2, 3), specialise=(1, 3), rng=0)
    >>> trend = trend_test(run.dataset, AnalysisSettings(), n_resamples=199, rng=np.random.default_rng(0))
    >>> row = trend.table.loc[0]
    >>> row["feature"], bool(row["slope"] > 0), bool(row["p_adjusted"] < 0.05)
    ('ttc', True, True)
    """
    episodes = episode_sums(dataset, settings)
    n_steps = len(episodes.steps)
    level = settings.confidence_level if confidence_level is None else float(confidence_level)
    contrast = slope_contrast(n_steps)
    hsi = episodes.hsi(episodes.assigned(episodes.step_of_row[None, :]))
    observed = slopes(hsi, contrast)
    counter = ExceedanceCounter(np.abs(observed[0]))
    for size in batch_sizes(n_resamples, _BATCH):
        counter.update(np.abs(slopes(episodes.hsi(episodes.permuted(rng, size)), contrast)))
    raw, _, step_down = counter.p_values(exact=False)

    rho = episodes.rho(episodes.assigned(episodes.step_of_row[None, :]))[0]  # (K, H, F)
    feature, orientation = tracked_feature(rho)
    heads = np.arange(rho.shape[1])
    estimate = orientation * (contrast @ rho[:, heads, feature])
    replicates = np.empty((n_resamples, rho.shape[1]))
    done = 0
    for size in batch_sizes(n_resamples, _BATCH):
        resampled = episodes.rho(episodes.resampled(rng, size))[:, :, heads, feature]
        replicates[done:done + size] = orientation * slopes(resampled, contrast)
        done += size
    alpha = (1.0 - level) / 2.0
    low = quantiles_along_first(replicates, np.asarray(alpha))
    high = quantiles_along_first(replicates, np.asarray(1.0 - alpha))
    names = episodes.feature_names
    table = pd.DataFrame({"head": list(dataset.head_names), "feature": [names[f] for f in feature],
                          "slope": estimate, "ci_low": low, "ci_high": high, "hsi_slope": observed[0],
                          "p_value": raw, "p_adjusted": step_down, "n_steps": n_steps})
    return TrendResult(table.loc[:, list(TREND_COLUMNS)], episodes.steps, hsi[0], n_resamples, level)


def tracked_feature(rho: FloatArray) -> tuple[NDArray[np.intp], FloatArray]:
    r"""The feature each head tracks over the run and the sign of that relation.

    :math:`f_h = \arg\max_f |\bar\rho_{hf}|`, :math:`\bar\rho_{hf} = K^{-1} \sum_k \rho_{hfk}`: every checkpoint
    weighs alike, so the choice does not favour a direction of change (module doc). A feature whose rho is
    undefined at some checkpoint is chosen only when every feature is.

    Parameters
    ----------
    rho : ndarray (K, H, F)
        rho of each checkpoint, head and feature.

    Returns
    -------
    feature : ndarray of int (H,)
    orientation : ndarray (H,)
        +1 or -1, the sign of :math:`\bar\rho_{hf_h}` (+1 where it is 0 or undefined).

    Examples
    --------
    One head, two features over K = 3 checkpoints: the second is the stronger over the run, though the first is
    the stronger at the last checkpoint.

    >>> rho = np.array([[[0.1, -0.5]], [[0.2, -0.5]], [[0.6, -0.4]]])
    >>> tracked_feature(rho)
    (array([1]), array([-1.]))
    """
    mean = np.asarray(rho, dtype=float).mean(axis=0)  # (H, F)
    feature = rho_strength(mean).argmax(axis=1)
    chosen = np.take_along_axis(mean, feature[:, None], axis=1)[:, 0]
    return feature, np.where(np.nan_to_num(chosen) < 0, -1.0, 1.0)


def slopes(hsi: FloatArray, contrast: FloatArray) -> FloatArray:
    """Slopes (b, H) of per-checkpoint values (b, K, H) with the weights of :func:`slope_contrast`."""
    return np.einsum("bkh,k->bh", hsi, contrast)


def slope_contrast(n_steps: int) -> FloatArray:
    """Weights c (K,) with slope = c @ y for values y at the step indices 0..K-1 (least squares)."""
    index = np.arange(n_steps, dtype=float)
    centred = index - index.mean()
    return centred / np.sum(centred**2)
