"""What the resampling procedures share: batches of resamples, exceedance counts and the quantile rule.

The cluster bootstrap and the randomisation test both evaluate resamples in batches (the numbers never depend on
the batch size), count how often a resampled statistic reaches the observed one (with a relative tolerance for
floating ties, as scipy) and read quantiles of a bootstrap distribution. Nothing here chooses a procedure.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from .._validation import check_int

__all__ = ["BATCH_VALUES", "DEFAULT_BATCH", "TIE_TOLERANCE", "ExceedanceCounter", "batch_sizes", "check_batch",
           "quantiles_along_first"]

#: Resamples evaluated per matrix product when ``batch=None``: large enough to amortise Python overhead,
#: small enough to keep the (batch, H, F) intermediate arrays within a few tens of MB.
FloatArray = NDArray[np.float64]

DEFAULT_BATCH = 1000
#: Relative tolerance for floating-point ties between a resampled and the observed statistic (as scipy).
TIE_TOLERANCE = 100 * np.finfo(np.float64).eps


#: Resample x group weights per batch at most when ``batch`` is not given: 2**22 values are 32 MiB per array, and a
#: batch holds a few such arrays (the uniforms, the draws, the weights).
BATCH_VALUES = 2**22


def check_batch(batch: object, n_groups: int = 1) -> int:
    """``batch`` as a number of resamples; memory only, never the numbers.

    None gives :data:`DEFAULT_BATCH`, fewer when the (batch, G) weight arrays of ``n_groups`` groups would exceed
    :data:`BATCH_VALUES` values (at least 1).

    Examples
    --------
    >>> check_batch(None, 40), check_batch(None, 20_000), check_batch(64, 20_000)
    (1000, 209, 64)
    """
    if batch is None:
        return max(1, min(DEFAULT_BATCH, BATCH_VALUES // max(int(n_groups), 1)))
    return check_int("batch", batch, 1)


def batch_sizes(total: int, batch: int) -> Iterator[int]:
    """Sizes of consecutive batches covering ``total`` resamples."""
    done = 0
    while done < total:
        size = min(batch, total - done)
        yield size
        done += size


def quantiles_along_first(values: NDArray[np.float64], probabilities: NDArray[np.float64]) -> NDArray[np.float64]:
    """Linear-interpolation quantiles (numpy's default) along axis 0, one probability per element.

    ``values`` is (B, ...); ``probabilities`` broadcasts to ``values.shape[1:]``. NaN replicates are ignored;
    an element with no finite replicate, or a NaN probability, gives NaN.
    """
    ordered = np.sort(values, axis=0)  # NaN sorts last
    n_finite = np.isfinite(ordered).sum(axis=0)
    probabilities = np.broadcast_to(probabilities, values.shape[1:])
    position = probabilities * np.maximum(n_finite - 1, 0)
    valid = (n_finite > 0) & np.isfinite(position)
    position = np.where(valid, position, 0.0)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, np.maximum(n_finite - 1, 0))
    low_values = np.take_along_axis(ordered, low[None], axis=0)[0]
    high_values = np.take_along_axis(ordered, high[None], axis=0)[0]
    result = low_values + (position - low) * (high_values - low_values)
    return np.where(valid, result, np.nan)


class ExceedanceCounter:
    r"""Counts, over batches of resampled statistics, how often they reach the observed ones.

    Keeps, for a family of m tests with observed statistics ``T`` (larger = more extreme), the counts needed
    for the raw p-values and both max-T adjustments [1]_, without storing the resamples. A resampled value
    reaches an observed one when :math:`T^* \ge T - \epsilon |T|`, :math:`\epsilon` = :data:`TIE_TOLERANCE`.

    - raw: :math:`p_j = (1 + \#\{b: T^*_{bj} \ge T_j\}) / (1 + B)`;
    - single-step max-T: :math:`\tilde p_j = (1 + \#\{b: \max_k T^*_{bk} \ge T_j\}) / (1 + B)`;
    - step-down max-T: tests ordered by decreasing statistic, the maximum taken over the tests not yet
      rejected, monotonicity enforced (:math:`\tilde p_{(j)} = \max_{i \le j} \tilde p_{(i)}`). Both control
      the family-wise error rate under any dependence among the tests.

    Under exact enumeration (every randomisation evaluated once) the counts are divided by B without the +1.

    References
    ----------
    .. [1] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
    """

    def __init__(self, observed: FloatArray) -> None:
        self.observed = np.asarray(observed, dtype=float).reshape(-1)
        self.finite = np.isfinite(self.observed)
        self.threshold = self.observed - TIE_TOLERANCE * np.abs(self.observed)
        finite_index = np.flatnonzero(self.finite)
        self.order = finite_index[np.argsort(-self.observed[finite_index], kind="stable")]
        self.raw = np.zeros(self.observed.size, dtype=np.int64)
        self.single_step = np.zeros(self.observed.size, dtype=np.int64)
        self.step_down = np.zeros(self.observed.size, dtype=np.int64)
        self.n = 0

    def update(self, null: FloatArray) -> None:
        """Add a batch of resampled statistics, shape (b, m); NaN counts as never reaching."""
        null = null.reshape(null.shape[0], -1)
        null = np.where(np.isnan(null), -np.inf, null)
        self.raw += (null >= self.threshold).sum(axis=0)
        if self.order.size:
            ordered = null[:, self.order]
            successive_max = np.maximum.accumulate(ordered[:, ::-1], axis=1)[:, ::-1]
            self.step_down[self.order] += (successive_max >= self.threshold[self.order]).sum(axis=0)
            self.single_step[self.order] += (successive_max[:, :1] >= self.threshold[self.order]).sum(axis=0)
        self.n += null.shape[0]

    def p_values(self, *, exact: bool) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Raw, single-step max-T and step-down max-T p-values, (k + 1)/(n + 1) (k/n when exact)."""
        plus = 0 if exact else 1
        def ratio(counts: NDArray[np.int64]) -> FloatArray:
            return np.where(self.finite, (counts + plus) / (self.n + plus), np.nan)

        raw, single_step, step_down = ratio(self.raw), ratio(self.single_step), ratio(self.step_down)
        if self.order.size:
            step_down[self.order] = np.maximum.accumulate(step_down[self.order])
        return raw, single_step, step_down
