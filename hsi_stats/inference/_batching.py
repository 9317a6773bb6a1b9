"""Batches of resamples and the quantile rule shared by the resampling procedures."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

__all__ = ["DEFAULT_BATCH", "batch_sizes", "check_batch", "check_n_resamples", "quantiles_along_first"]

#: Resamples evaluated per matrix product when ``batch=None``: large enough to amortise Python overhead,
#: small enough to keep the (batch, H, F) intermediate arrays within a few tens of MB.
DEFAULT_BATCH = 1000


def check_n_resamples(n_resamples: object) -> int:
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)) or n_resamples < 1:
        raise ValueError(f"The value for `n_resamples` must be a positive integer, but {n_resamples!r} was passed.")
    return int(n_resamples)


def check_batch(batch: object) -> int:
    if batch is None:
        return DEFAULT_BATCH
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"The value for `batch` must be None or a positive integer, but {batch!r} was passed.")
    return int(batch)


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
