r"""Change over training, tested at the episode level: one trend per head, its test and its interval.

Checkpoints are evaluated on independent episodes, so the unit of inference is the episode, not the checkpoint.

Statistic. For head h, the feature it tracks over the run is the one whose rho, averaged over the K checkpoints,
is largest in magnitude, :math:`f_h = \arg\max_f |\bar\rho_{hf}|` with :math:`\bar\rho_{hf} = K^{-1} \sum_k
\rho_{hfk}`, and :math:`o_h = \operatorname{sign}(\bar\rho_{hf_h})` the sign of that relation. The trend is the
least-squares slope of that feature's rho on the checkpoint index, oriented by the relation,

.. math:: S_h = o_h \sum_k c_k \rho_{hf_hk}, \qquad c_k = \frac{k - \bar k}{\sum_{k'} (k' - \bar k)^2},

the change per checkpoint of :math:`\rho_{hf_h}` towards its relation: positive when the relation strengthens
(rho moves away from 0 in its own sign, :math:`|\rho|` grows), negative when it weakens; every view says which in
words (:func:`trend_words`). The choice of :math:`f_h` weighs every checkpoint alike, so under "no change" it
favours no direction of change (the strongest feature at the last checkpoint instead shows a rise towards whichever
feature is largest there by chance: its intervals covered a zero trend in 81-89% of no-effect heads). Unlike the
slope of HSI, which the upward bias of a maximum of noisy correlations pulls towards 0 where a head does not yet
track anything, rho is nearly unbiased. Every rho is a function of per-episode additive sums
(:mod:`hsi_stats.group_sums`), so a reassignment of episodes to checkpoints is one weighted sum.

Test. Under "no change over training" the episodes of all checkpoints are exchangeable: the episodes are permuted
between checkpoints (each keeps its number of episodes) and :math:`S^*_h` recomputed from the permuted data, the
tracked feature and its sign chosen again, so the test pays for the choice;
:math:`p_h = (1 + \#\{b : |S^*_{bh}| \ge |S_h| - \epsilon\}) / (1 + B)` [1]_. The heads are corrected together by
the step-down max-T procedure from the same permutations [2]_, which controls the family-wise error over heads.

Interval. :math:`S_h \pm q_h`, with :math:`q_h` the value of :math:`|S^*_h|` above which the permutation p-value
falls below :math:`\alpha` (the :math:`m`-th largest of the B permuted values,
:math:`m = \lceil \alpha (B + 1) \rceil - 1`): the interval of the test inverted under a location shift (the trend
moves the statistic, not its spread). It excludes 0 exactly when :math:`p_h < \alpha`, so the test and the interval
cannot disagree. Where the trend is large the permutation spread includes part of it, and the interval errs on the
wide side.

With the ``pooled`` estimator and a ranked correlation, the ranks are those of all checkpoints together (the
pooled ranks are not additive); every other estimator gives each checkpoint's own numbers exactly.

References
----------
.. [1] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. Stat. Appl. Genet. Mol.
   Biol. 9(1). https://doi.org/10.2202/1544-6115.1585
.. [2] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
"""

from __future__ import annotations

import math
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
from .resampling import ExceedanceCounter, batch_sizes

__all__ = ["TREND_COLUMNS", "EpisodeSums", "TrendResult", "episode_sums", "oriented_trends", "slope_contrast",
           "slopes", "tracked_feature", "trend_test", "trend_words"]

FloatArray = NDArray[np.float64]
#: Columns of :attr:`TrendResult.table`, in order.
TREND_COLUMNS = ("head", "feature", "relation", "slope", "ci_low", "ci_high", "p_value", "p_adjusted", "n_steps",
                 "trend")
_BATCH = 500  # permutations or resamples per batch: memory only, the numbers do not depend on it


@dataclass(frozen=True, eq=False)
class TrendResult:
    """The trend of each head over training.

    Attributes
    ----------
    table : DataFrame
        One row per head (:data:`TREND_COLUMNS`): ``head, feature`` (the feature it tracks over the run,
        :func:`tracked_feature`), ``relation`` (``"positive"`` or ``"negative"``: the sign of that feature's rho over
        the run), ``slope`` (:math:`S_h`, the change of that rho per checkpoint towards its relation: positive when
        it strengthens), ``ci_low, ci_high`` (the interval of the permutation test, which excludes 0 exactly when
        ``p_value`` < 1 - confidence level), ``p_value`` (episode-permutation test of :math:`S_h`), ``p_adjusted``
        (step-down max-T over heads), ``n_steps`` and ``trend``, the slope in words (:func:`trend_words`).
    steps : tuple of int
        The checkpoints, in order.
    hsi : ndarray (K, H)
        Each checkpoint's HSI, from the same sums.
    n_resamples : int
        Permutations of the test.
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
    """Each head's trend :math:`S_h`, its permutation test, max-T over heads and its interval (module doc).

    Parameters
    ----------
    dataset : HSIDataset
        With ``steps``; at least 2 distinct steps.
    settings : AnalysisSettings
        The estimator and correlation of rho (the other options are not used).
    n_resamples : int
        Permutations of the episodes between checkpoints.
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
    >>> row["feature"], row["relation"], bool(row["slope"] > 0), bool(row["p_adjusted"] < 0.05)
    ('ttc', 'negative', True, True)
    >>> row["trend"]
    'rho(ttc) falls by 0.351 per checkpoint: its negative relation strengthens (|rho| grows)'
    """
    episodes = episode_sums(dataset, settings)
    n_steps = len(episodes.steps)
    level = settings.confidence_level if confidence_level is None else float(confidence_level)
    contrast = slope_contrast(n_steps)
    rho = episodes.rho(episodes.assigned(episodes.step_of_row[None, :]))  # (1, K, H, F)
    hsi = hsi_from_rho(rho)
    observed = oriented_trends(rho, contrast)[0]
    counter = ExceedanceCounter(np.abs(observed))
    null = []
    for size in batch_sizes(n_resamples, _BATCH):
        permuted = np.abs(oriented_trends(episodes.rho(episodes.permuted(rng, size)), contrast))
        counter.update(permuted)
        null.append(permuted)
    raw, _, step_down = counter.p_values(exact=False)
    half = _inverted_half_width(np.concatenate(null), 1.0 - level)
    feature, orientation = tracked_feature(rho[0])
    names = episodes.feature_names
    chosen = [names[f] for f in feature]
    table = pd.DataFrame({"head": list(dataset.head_names), "feature": chosen,
                          "relation": np.where(orientation < 0, "negative", "positive"), "slope": observed,
                          "ci_low": observed - half, "ci_high": observed + half, "p_value": raw,
                          "p_adjusted": step_down, "n_steps": n_steps,
                          "trend": [trend_words(name, float(s), float(o)) for name, s, o in
                                    zip(chosen, observed, orientation, strict=True)]})
    return TrendResult(table.loc[:, list(TREND_COLUMNS)], episodes.steps, hsi[0], n_resamples, level)


def _inverted_half_width(null: FloatArray, alpha: float) -> FloatArray:
    """q (H,): the m-th largest |S*| (m = ceil(alpha (B + 1)) - 1), so that |S| > q exactly when the permutation
    p-value (1 + #{|S*| >= |S|}) / (1 + B) is below alpha; NaN where the statistic is, and infinite when no
    p-value can be below alpha (m = 0: too few permutations)."""
    ordered = -np.sort(-np.where(np.isnan(null), -np.inf, null), axis=0)  # descending
    m = math.ceil(alpha * (null.shape[0] + 1) - 1e-9) - 1  # 0.05 * 100 is 5.000000000000001 in floats
    if m < 1:
        return np.full(null.shape[1], np.inf)
    return np.where(np.isfinite(ordered[m - 1]), ordered[m - 1], np.nan)


def oriented_trends(rho: FloatArray, contrast: FloatArray) -> FloatArray:
    """:math:`S_h` (b, H) for rho (b, K, H, F): the tracked feature and its sign chosen for each row."""
    mean = np.asarray(rho, dtype=float).mean(axis=1)  # (b, H, F)
    feature = rho_strength(mean).argmax(axis=2)  # (b, H)
    chosen_mean = np.take_along_axis(mean, feature[..., None], axis=2)[..., 0]
    orientation = np.where(np.nan_to_num(chosen_mean) < 0, -1.0, 1.0)
    tracked = np.take_along_axis(rho, feature[:, None, :, None], axis=3)[..., 0]  # (b, K, H)
    return orientation * slopes(tracked, contrast)


def trend_words(feature: str, trend: float, orientation: float) -> str:
    """The trend in words: which way rho moves, by how much, and whether its relation strengthens.

    Examples
    --------
    >>> trend_words("ttc", 0.096, -1.0)
    'rho(ttc) falls by 0.096 per checkpoint: its negative relation strengthens (|rho| grows)'
    >>> trend_words("is_left", -0.02, 1.0)
    'rho(is_left) falls by 0.020 per checkpoint: its positive relation weakens (|rho| shrinks)'
    """
    if not np.isfinite(trend):
        return f"rho({feature}): no trend (undefined)"
    moves = "rises" if trend * orientation > 0 else "falls"
    change = "strengthens (|rho| grows)" if trend > 0 else "weakens (|rho| shrinks)"
    return (f"rho({feature}) {moves} by {abs(trend):.3f} per checkpoint: its "
            f"{'negative' if orientation < 0 else 'positive'} relation {change}")


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
