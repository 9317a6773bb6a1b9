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

Interval. The episodes of each checkpoint are resampled with replacement within that checkpoint (a stratified
cluster bootstrap) and the slope recomputed; the interval is the percentile interval of those slopes.

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
from ..data import HSIDataset
from ..estimators import estimate_with, hsi_from_rho
from ..group_sums import GroupSums
from ..settings import AnalysisSettings
from .bootstrap import bootstrap_weights
from .resampling import ExceedanceCounter, batch_sizes, quantiles_along_first

__all__ = ["TREND_COLUMNS", "EpisodeSums", "TrendResult", "episode_sums", "slope_contrast", "slopes",
           "trend_test"]

FloatArray = NDArray[np.float64]
#: Columns of :attr:`TrendResult.table`, in order.
TREND_COLUMNS = ("head", "slope", "ci_low", "ci_high", "p_value", "p_adjusted", "n_steps")
_BATCH = 500  # permutations or resamples per batch: memory only, the numbers do not depend on it


@dataclass(frozen=True, eq=False)
class TrendResult:
    """The trend of each head's HSI over training.

    Attributes
    ----------
    table : DataFrame
        One row per head: ``head, slope`` (change of HSI per checkpoint), ``ci_low, ci_high`` (stratified cluster
        bootstrap), ``p_value`` (episode-permutation test), ``p_adjusted`` (step-down max-T over heads),
        ``n_steps``.
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
    """

    sums: GroupSums
    step_of_row: NDArray[np.intp]
    steps: tuple[int, ...]

    def hsi(self, weights: FloatArray) -> FloatArray:
        """HSI (b, K, H) of each checkpoint for group weights (b, K, G)."""
        b, k, g = weights.shape
        return hsi_from_rho(self.sums.rho(weights.reshape(b * k, g))).reshape(b, k, -1)

    def assigned(self, assignment: NDArray[np.intp]) -> FloatArray:
        """Weights (b, K, G) that give checkpoint k the rows assigned to it, for assignments (b, G) of 0..K-1."""
        return (assignment[:, None, :] == np.arange(len(self.steps))[None, :, None]).astype(float)

    def permuted(self, rng: np.random.Generator, size: int) -> FloatArray:
        """Weights of ``size`` random reassignments of the episodes to checkpoints (each keeps its count)."""
        return self.assigned(np.stack([rng.permutation(self.step_of_row) for _ in range(size)]))

    def resampled(self, rng: np.random.Generator, size: int) -> FloatArray:
        """Weights of ``size`` stratified cluster-bootstrap resamples: each checkpoint's episodes, with replacement."""
        weights = np.zeros((size, len(self.steps), self.step_of_row.size))
        for k in range(len(self.steps)):
            rows = np.flatnonzero(self.step_of_row == k)
            weights[:, k, rows] = bootstrap_weights(rng, size, rows.size)
        return weights


def episode_sums(dataset: HSIDataset, settings: AnalysisSettings) -> EpisodeSums:
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
    return EpisodeSums(estimate_with(per_episode, settings).sums, step_of_row, tuple(int(s) for s in steps))


def trend_test(dataset: HSIDataset, settings: AnalysisSettings, *, n_resamples: int, rng: np.random.Generator,
               confidence_level: float | None = None) -> TrendResult:
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
    >>> bool(trend.table.loc[0, "slope"] > 0), bool(trend.table.loc[0, "p_adjusted"] < 0.05)
    (True, True)
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

    replicates = np.empty((n_resamples, observed.shape[1]))
    done = 0
    for size in batch_sizes(n_resamples, _BATCH):
        replicates[done:done + size] = slopes(episodes.hsi(episodes.resampled(rng, size)), contrast)
        done += size
    alpha = (1.0 - level) / 2.0
    low = quantiles_along_first(replicates, np.asarray(alpha))
    high = quantiles_along_first(replicates, np.asarray(1.0 - alpha))
    table = pd.DataFrame({"head": list(dataset.head_names), "slope": observed[0], "ci_low": low, "ci_high": high,
                          "p_value": raw, "p_adjusted": step_down, "n_steps": n_steps})
    return TrendResult(table.loc[:, list(TREND_COLUMNS)], episodes.steps, hsi[0], n_resamples, level)


def slopes(hsi: FloatArray, contrast: FloatArray) -> FloatArray:
    """Slopes (b, H) of per-checkpoint values (b, K, H) with the weights of :func:`slope_contrast`."""
    return np.einsum("bkh,k->bh", hsi, contrast)


def slope_contrast(n_steps: int) -> FloatArray:
    """Weights c (K,) with slope = c @ y for values y at the step indices 0..K-1 (least squares)."""
    index = np.arange(n_steps, dtype=float)
    centred = index - index.mean()
    return centred / np.sum(centred**2)
