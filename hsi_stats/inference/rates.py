r"""Intervals for rates and bounded means measured over the steps of episodes, that do not collapse at 0 or 1.

A rate :math:`\hat p = \sum_g x_g / \sum_g n_g` over G groups (episodes), with :math:`x_g` the sum over group g's
:math:`n_g` steps of a value in [0, 1] (an indicator for a rate such as an agreement or a changed action; a
bounded value such as a total-variation distance for a bounded mean). Its interval is Wilson's score interval
(Wilson 1927) with the number of steps N replaced by an effective number that accounts for the steps of an episode
being alike (a design effect, Kish 1965):

.. math::

    \hat V = \frac{G}{G-1} \frac{\sum_g (x_g - \hat p\, n_g)^2}{N^2}, \qquad
    m = \frac{\hat p (1 - \hat p)}{\hat V}, \qquad
    \frac{\hat p + \frac{q^2}{2m} \pm q \sqrt{\frac{\hat p(1-\hat p)}{m} + \frac{q^2}{4m^2}}}{1 + q^2/m},

with :math:`\hat V` the cluster-robust (linearised) variance of the ratio, :math:`m` the effective number of
steps (:math:`N` over the design effect :math:`\hat V / (\hat p(1-\hat p)/N)`) and :math:`q` the
:math:`1 - \alpha/2` quantile of Student's t. The variance is estimated from the episodes that carry the rarer
side: with :math:`k = (\sum_g w_g)^2 / \sum_g w_g^2` the effective number of episodes over which the successes
:math:`w_g = x_g` (or the failures :math:`w_g = n_g - x_g`, whichever give fewer) are spread, t has
:math:`\max(1, \min(G, k) - 1)` degrees of freedom, so that a rate carried by one or two episodes gets the width
that so few episodes support (for a 0/1 rate, k is the number of episodes with a success when they have equal
counts). Where every episode is the same (a rate of exactly 0 or 1, where the design effect is 0/0; or
:math:`\hat V = 0`) the effective number is the number of episodes G, with G - 1 degrees of freedom: a rate of 0
over G episodes gets :math:`[0, q^2/(G + q^2)]`, the interval of no event in G independent trials. The interval
always holds :math:`\hat p` and lies in [0, 1]. ``nox -s calibration`` measures its coverage for rates near 0, 1/2
and 1 against the cluster bootstrap (``benchmarks/rate_study.py``).

References
----------
.. [1] Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference. Journal of the
   American Statistical Association 22(158), 209-212. https://doi.org/10.1080/01621459.1927.10502953
.. [2] Kish, L. (1965). Survey Sampling. Wiley, New York.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.stats import t as student_t

__all__ = ["clustered_rate_interval", "effective_steps"]

FloatArray = NDArray[np.float64]


def _effective_groups(mass: FloatArray) -> FloatArray:
    """How many groups carry ``mass`` (G, ...): :math:`(\\sum_g w_g)^2 / \\sum_g w_g^2`, 0 without mass."""
    total, squares = mass.sum(axis=0), (mass**2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(squares > 0, total**2 / np.where(squares > 0, squares, 1.0), 0.0)


def effective_steps(successes: ArrayLike, steps: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """The rate, its effective number of steps m and the degrees of freedom of its variance, per column.

    ``successes`` and ``steps`` are per-group sums (G, ...); a group without steps does not count.
    """
    x, n = np.asarray(successes, dtype=float), np.asarray(steps, dtype=float)
    total = n.sum(axis=0)
    used = n > 0
    groups = used.sum(axis=0).astype(float)
    rarer = np.minimum(_effective_groups(np.where(used, x, 0.0)), _effective_groups(np.where(used, n - x, 0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(total > 0, x.sum(axis=0) / np.where(total > 0, total, 1.0), np.nan)
        variance = (groups / np.maximum(groups - 1, 1) * ((x - rate * n) ** 2).sum(axis=0)
                    / np.where(total > 0, total, 1.0) ** 2)
        spread = rate * (1.0 - rate)
        varies = (variance > 0) & (spread > 0) & (rarer > 0)
        m = np.where(varies, spread / np.where(varies, variance, 1.0), groups)
    freedom = np.where(varies, np.maximum(1.0, np.minimum(groups, rarer) - 1.0), np.maximum(groups - 1.0, 1.0))
    return rate, m, np.where(groups >= 2, freedom, np.nan)


def clustered_rate_interval(successes: ArrayLike, steps: ArrayLike, *, confidence_level: float = 0.95
                            ) -> tuple[FloatArray, FloatArray, FloatArray]:
    """A rate (or bounded mean) over the steps of groups with its clustered Wilson interval (see the module).

    Parameters
    ----------
    successes, steps : array_like (G, ...)
        Per group, the sum of the values in [0, 1] and the number of steps.
    confidence_level : float, default 0.95

    Returns
    -------
    rate, low, high : ndarray (...)
        NaN where there are no steps, or fewer than two groups with steps.

    Examples
    --------
    >>> rate, low, high = clustered_rate_interval([0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [40] * 10)
    >>> float(rate), float(low), round(float(high), 3)  # no event in 10 episodes
    (0.0, 0.0, 0.339)
    >>> rate, low, high = clustered_rate_interval([20, 24, 16, 22, 18], [40] * 5)
    >>> float(rate), bool(low < 0.5 < high)
    (0.5, True)
    """
    rate, m, freedom = effective_steps(successes, steps)
    q = student_t.ppf(0.5 + confidence_level / 2.0, np.nan_to_num(freedom, nan=1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        shrink = 1.0 + q**2 / m
        centre = (rate + q**2 / (2.0 * m)) / shrink
        half = q * np.sqrt(rate * (1.0 - rate) / m + q**2 / (4.0 * m**2)) / shrink
    usable = np.isfinite(rate) & np.isfinite(freedom)
    low = np.where(usable, np.clip(np.minimum(centre - half, rate), 0.0, 1.0), np.nan)
    high = np.where(usable, np.clip(np.maximum(centre + half, rate), 0.0, 1.0), np.nan)
    return rate, low, high
