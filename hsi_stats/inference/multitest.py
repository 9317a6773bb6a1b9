r"""Multiple comparisons over the family of (head, feature) tests, and over the family of head-level HSI tests.

:func:`family_adjusted` is the one place where a ``correction`` turns raw p-values into adjusted ones: ``maxt``
and ``maxt-single-step`` take the Westfall-Young max-T adjustments of the studentised statistics that the
randomisation test counted from the same randomisations (:class:`~hsi_stats.inference.resampling.ExceedanceCounter`),
``maxt-raw`` and ``maxt-raw-single-step`` those of the raw |rho| and HSI, valid under any dependence among the
tests; the other corrections are delegated to
:func:`statsmodels.stats.multitest.multipletests` (:func:`adjust_pvalues`). This module only adjusts p-values: it
neither resamples nor checks option names (:class:`~hsi_stats.settings.AnalysisSettings` does).

References
----------
.. [1] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
.. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scand. J. Statist. 6, 65-70.
.. [3] Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate. JRSS B 57, 289-300.
   https://doi.org/10.1111/j.2517-6161.1995.tb02031.x
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from statsmodels.stats.multitest import multipletests

from .._validation import OptionError
from ..settings import MAXT_CORRECTIONS, STATSMODELS_METHODS, check_option
from .randomisation import RandomisationResult

__all__ = ["adjust_pvalues", "family_adjusted", "head_p_values", "smallest_adjusted"]

FloatArray = NDArray[np.float64]


def adjust_pvalues(p_values: FloatArray, method: str) -> FloatArray:
    """Adjust raw p-values with a :func:`~statsmodels.stats.multitest.multipletests` method (NaN kept as NaN).

    ``method`` is one of the statsmodels corrections of ``AnalysisSettings.correction`` or ``"none"``.

    Examples
    --------
    >>> adjust_pvalues(np.array([0.01, 0.04, np.nan]), "holm").tolist()
    [0.02, 0.04, nan]
    """
    method = check_option("correction", method)
    if method not in (*STATSMODELS_METHODS, "none"):
        listed = ", ".join(repr(m) for m in (*STATSMODELS_METHODS, "none"))
        raise OptionError(f"The value for `correction` must be one of {{{listed}}} (max-T needs the "
                         f"randomisations: use family_adjusted), but {method!r} was passed.")
    return _statsmodels_adjusted(p_values, method)


def _statsmodels_adjusted(p_values: FloatArray, method: str) -> FloatArray:
    flat = np.asarray(p_values, dtype=float).reshape(-1)
    adjusted = np.full(flat.shape, np.nan)
    finite = np.isfinite(flat)
    if method == "none":
        adjusted[finite] = flat[finite]
    elif finite.any():
        adjusted[finite] = multipletests(flat[finite], method=method)[1]
    return adjusted.reshape(np.shape(p_values))


def head_p_values(test: RandomisationResult, correction: str) -> FloatArray:
    """The head-level p-values a ``correction`` adjusts: of the raw HSI for the raw max-T corrections, else of the
    studentised HSI."""
    return test.head_p_raw if correction in ("maxt-raw", "maxt-raw-single-step") else test.head_p


def family_adjusted(test: RandomisationResult, correction: str) -> tuple[FloatArray, FloatArray]:
    """Adjusted p-values (pairs (H, F), heads (H,)) of a randomisation test under an already checked ``correction``.

    Each family is adjusted on its own: all head x feature pair tests, and all head-level HSI tests (of the
    p-values :func:`head_p_values` gives).
    """
    chosen = {"maxt": (test.pair_p_step_down, test.head_p_step_down),
              "maxt-single-step": (test.pair_p_single_step, test.head_p_single_step),
              "maxt-raw": (test.pair_p_raw_step_down, test.head_p_raw_step_down),
              "maxt-raw-single-step": (test.pair_p_raw_single_step, test.head_p_raw_single_step)}
    if correction in chosen:
        return chosen[correction]
    return (_statsmodels_adjusted(test.pair_p, correction),
            _statsmodels_adjusted(head_p_values(test, correction), correction))


def smallest_adjusted(smallest_raw: float, n_tests: int, correction: str) -> float:
    """The smallest adjusted p-value a family of ``n_tests`` can reach when no raw p-value is below
    ``smallest_raw`` (the resolution of a randomisation test: 1/(B + 1), or 1/2^G when exact).

    Every test at the smallest raw value is the configuration that gives the smallest adjusted value for each
    correction (max-T adjusts from the same randomisations and cannot go below the raw resolution).

    Examples
    --------
    >>> smallest_adjusted(1 / 100, 64, "holm"), smallest_adjusted(1 / 100, 64, "maxt")
    (0.64, 0.01)
    """
    if correction in MAXT_CORRECTIONS:
        return float(smallest_raw)
    return float(np.nanmin(_statsmodels_adjusted(np.full(n_tests, float(smallest_raw)), correction)))
