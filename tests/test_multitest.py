"""Multiple-comparison adjustments against independent references.

- ``adjust_pvalues`` equals statsmodels' ``multipletests`` for every method (NaN kept in place, shape kept) and
  values computed by hand with the algorithms of R's ``p.adjust`` (stats package) for two small vectors.
- ``ExceedanceCounter`` (max-T, Westfall & Young) equals an implementation written here from the definition with
  explicit loops, on random null matrices with dependent tests; and it has the properties the definition implies
  (adjusted >= raw, never below the raw p-value of a larger statistic, step-down <= single-step, monotone in
  the statistic, ties share a p-value, counts independent of how the null is split into batches).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests

from hsi_stats.inference.multitest import adjust_pvalues
from hsi_stats.inference.resampling import ExceedanceCounter
from hsi_stats.settings import STATSMODELS_METHODS

TIE = 100 * np.finfo(np.float64).eps


# --------------------------------------------------------------------------- adjust_pvalues
@pytest.mark.parametrize("method", STATSMODELS_METHODS)
def test_adjust_pvalues_equals_statsmodels_with_nan_in_place(method):
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(4, 6)) ** 2
    p[1, 2] = p[3, 0] = np.nan
    adjusted = adjust_pvalues(p, method)
    assert adjusted.shape == p.shape
    finite = np.isfinite(p)
    np.testing.assert_array_equal(np.isnan(adjusted), ~finite)
    np.testing.assert_allclose(adjusted[finite], multipletests(p[finite], method=method)[1], rtol=1e-14)
    assert np.all(adjusted[finite] >= p[finite] - 1e-15) and np.all(adjusted[finite] <= 1)


def test_none_returns_the_input():
    p = np.array([[0.3, np.nan], [0.01, 1.0]])
    np.testing.assert_array_equal(adjust_pvalues(p, "none"), p)


def test_method_names_are_case_insensitive_and_checked():
    p = np.array([0.01, 0.2, 0.03])
    np.testing.assert_array_equal(adjust_pvalues(p, "Holm"), adjust_pvalues(p, "holm"))
    with pytest.raises(ValueError, match=r"`correction`.*'holm'.*'hochberg'"):
        adjust_pvalues(p, "hochberg")


def test_all_nan_stays_nan():
    assert np.isnan(adjust_pvalues(np.array([np.nan, np.nan]), "holm")).all()


# Reference values worked out by hand with the algorithms of R's p.adjust (R 4.x, stats/R/p.adjust.R).
# BY multiplies by q = 1 + 1/2 + 1/3 + 1/4 + 1/5 = 137/60.
_Q5 = 137 / 60
R_P_ADJUST = {
    (0.01, 0.02, 0.03, 0.04, 0.05): {
        "holm": [0.05, 0.08, 0.09, 0.09, 0.09],
        "bonferroni": [0.05, 0.10, 0.15, 0.20, 0.25],
        "fdr_bh": [0.05] * 5,
        "fdr_by": [0.05 * _Q5] * 5,
        "hommel": [0.05] * 5,
    },
    (0.01, 0.04, 0.03, 0.005, 0.5): {
        "holm": [0.04, 0.09, 0.09, 0.025, 0.5],
        "bonferroni": [0.05, 0.2, 0.15, 0.025, 1.0],
        "fdr_bh": [0.025, 0.05, 0.05, 0.025, 0.5],
        "fdr_by": [0.025 * _Q5, 0.05 * _Q5, 0.05 * _Q5, 0.025 * _Q5, 1.0],
        "hommel": [0.04, 0.08, 0.06, 0.025, 0.5],
    },
}


@pytest.mark.parametrize("p", list(R_P_ADJUST))
@pytest.mark.parametrize("method", ["holm", "bonferroni", "fdr_bh", "fdr_by", "hommel"])
def test_adjust_pvalues_matches_r_p_adjust(p, method):
    np.testing.assert_allclose(adjust_pvalues(np.array(p), method), R_P_ADJUST[p][method], rtol=1e-12)


@pytest.mark.parametrize("p", list(R_P_ADJUST))
def test_sidak_and_holm_sidak_from_their_formulas(p):
    p = np.array(p)
    m = p.size
    np.testing.assert_allclose(adjust_pvalues(p, "sidak"), 1 - (1 - p) ** m, rtol=1e-12)
    order = np.argsort(p)
    step = [1 - (1 - p[j]) ** (m - rank) for rank, j in enumerate(order)]
    expected = np.empty(m)
    expected[order] = np.minimum(np.maximum.accumulate(step), 1.0)
    np.testing.assert_allclose(adjust_pvalues(p, "holm-sidak"), expected, rtol=1e-12)


# --------------------------------------------------------------------------- max-T from the definition
def _reaches(value: float, observed: float) -> bool:
    return (not math.isnan(value)) and value >= observed - TIE * abs(observed)


def _westfall_young(observed: np.ndarray, null: np.ndarray, plus: int = 1):
    """Raw, single-step and step-down max-T p-values, one test and one resample at a time.

    Step-down (Westfall & Young 1993, algorithm 2.8): with tests ordered by decreasing statistic,
    p_(j) = max_{i <= j} (plus + #{b: max_{k >= i} T*_b(k) >= T_(i)}) / (n + plus).
    """
    n, m = null.shape
    tests = [j for j in range(m) if not math.isnan(observed[j])]
    raw, single, step_down = np.full(m, np.nan), np.full(m, np.nan), np.full(m, np.nan)
    for j in tests:
        raw[j] = (plus + sum(_reaches(null[b, j], observed[j]) for b in range(n))) / (n + plus)
        single[j] = (plus + sum(any(_reaches(null[b, k], observed[j]) for k in tests)
                                for b in range(n))) / (n + plus)
    order = sorted(tests, key=lambda j: -observed[j])
    running = 0.0
    for position, j in enumerate(order):
        rest = order[position:]
        count = sum(any(_reaches(null[b, k], observed[j]) for k in rest) for b in range(n))
        running = max(running, (plus + count) / (n + plus))
        step_down[j] = running
    return raw, single, step_down


def _null_family(seed: int, n: int = 300, m: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """|z| statistics of m dependent tests (a shared factor) and observed values spread over the null range."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(n, 1))
    null = np.abs(0.6 * shared + 0.8 * rng.normal(size=(n, m)))
    observed = np.abs(rng.normal(size=m)) * rng.choice([0.5, 1.0, 2.0], size=m)
    return observed, null


def _counter(observed: np.ndarray, null: np.ndarray, chunks: tuple[int, ...] = ()) -> ExceedanceCounter:
    counter = ExceedanceCounter(observed)
    for part in np.split(null, np.cumsum(chunks)) if chunks else [null]:
        if part.shape[0]:
            counter.update(part)
    return counter


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("exact", [False, True])
def test_exceedance_counter_equals_westfall_young(seed, exact):
    observed, null = _null_family(seed)
    if seed == 3:  # NaN statistics: no p-value, and a NaN resample never reaches
        observed[2] = np.nan
        null[::7, 4] = np.nan
    ours = _counter(observed, null).p_values(exact=exact)
    theirs = _westfall_young(observed, null, plus=0 if exact else 1)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14)
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


def test_tied_statistics_share_their_adjusted_p_value():
    observed, null = _null_family(5)
    observed[4] = observed[1]
    _, single, step_down = _counter(observed, null).p_values(exact=False)
    assert step_down[4] == step_down[1] and single[4] == single[1]  # raw p-values differ: own null columns
    np.testing.assert_allclose(step_down, _westfall_young(observed, null)[2], rtol=1e-14)


def test_floating_point_ties_with_the_observed_value_count():
    observed = np.array([0.3, 0.7])
    null = np.array([[0.3 * (1 - 10 * np.finfo(float).eps), 0.1], [0.1, 0.7 + 1e-17], [0.29, 0.69]])
    raw, _, _ = _counter(observed, null).p_values(exact=False)
    np.testing.assert_array_equal(raw, [2 / 4, 2 / 4])


@pytest.mark.parametrize("seed", range(6))
def test_max_t_properties(seed):
    observed, null = _null_family(10 + seed, n=199, m=9)
    raw, single, step_down = _counter(observed, null).p_values(exact=False)
    assert np.all(single >= raw) and np.all(step_down >= raw)
    assert np.all(step_down <= single)
    assert np.all((raw >= 1 / 200) & (single <= 1))
    for i in range(observed.size):
        for j in range(observed.size):
            if observed[i] >= observed[j]:
                # never below the single-test p-value of a larger statistic; monotone in the statistic
                assert step_down[j] >= raw[i] and single[j] >= raw[i]
                assert step_down[i] <= step_down[j] and single[i] <= single[j]


@pytest.mark.parametrize("chunks", [(1,), (50, 50, 1), (7,) * 42, (299,)])
def test_counts_do_not_depend_on_the_batch_split(chunks):
    observed, null = _null_family(20)
    whole, split = _counter(observed, null), _counter(observed, null, chunks)
    assert whole.n == split.n == null.shape[0]
    for name in ("raw", "single_step", "step_down"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(split, name))
    for a, b in zip(whole.p_values(exact=False), split.p_values(exact=False), strict=True):
        np.testing.assert_array_equal(a, b)
