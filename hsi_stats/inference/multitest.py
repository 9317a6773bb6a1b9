r"""Multiple comparisons over the family of (head, feature) tests, or of head-level HSI tests (DESIGN 4.3).

``maxT`` (Westfall-Young) adjusts from the same randomisations as the raw p-values: for single-step,
:math:`\tilde p_j = (1 + \#\{b: \max_k T^*_{bk} \ge T_j\}) / (1 + B)`; for step-down, tests are ordered by
decreasing statistic and the maximum is taken over the tests not yet rejected, with monotonicity enforced
(:math:`\tilde p_{(j)} = \max_{i \le j} \tilde p_{(i)}`). It controls the family-wise error rate under any
dependence among the tests. The other corrections are delegated to
:func:`statsmodels.stats.multitest.multipletests`.

References
----------
.. [1] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
.. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Statist. 6, 65-70.
.. [3] Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57, 289-300.
   https://doi.org/10.1111/j.2517-6161.1995.tb02031.x
.. [4] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. Stat. Appl. Genet.
   Mol. Biol. 9(1). https://doi.org/10.2202/1544-6115.1585
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from statsmodels.stats.multitest import multipletests

from .._validation import check_choice

__all__ = ["CORRECTIONS", "STATSMODELS_METHODS", "ExceedanceCounter", "adjust_pvalues"]

FloatArray = NDArray[np.float64]
STATSMODELS_METHODS = ("holm", "bonferroni", "fdr_bh", "fdr_by", "sidak", "holm-sidak", "hommel")
CORRECTIONS = ("maxt", "maxt-single-step", *STATSMODELS_METHODS, "none")
#: Relative tolerance for floating-point ties between a resampled and the observed statistic (as scipy).
TIE_TOLERANCE = 100 * np.finfo(np.float64).eps


def adjust_pvalues(p_values: FloatArray, method: str) -> FloatArray:
    """Adjust raw p-values with a :func:`~statsmodels.stats.multitest.multipletests` method (NaN kept as NaN).

    Examples
    --------
    >>> adjust_pvalues(np.array([0.01, 0.04, np.nan]), "holm").tolist()
    [0.02, 0.04, nan]
    """
    method = check_choice("correction", method, (*STATSMODELS_METHODS, "none"))
    flat = np.asarray(p_values, dtype=float).reshape(-1)
    adjusted = np.full(flat.shape, np.nan)
    finite = np.isfinite(flat)
    if method == "none":
        adjusted[finite] = flat[finite]
    elif finite.any():
        adjusted[finite] = multipletests(flat[finite], method=method)[1]
    return adjusted.reshape(np.shape(p_values))


class ExceedanceCounter:
    """Counts, over batches of resampled statistics, how often they reach the observed ones.

    Keeps, for a family of m tests with observed statistics ``T`` (larger = more extreme), the counts needed
    for the raw p-values and both max-T adjustments, without storing the resamples.
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
