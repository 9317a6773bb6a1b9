"""The reduction to per-group sums, chunk by chunk: the same numbers whatever the chunk size.

Every estimator, the focus, the selectivity and the indicator flags are computed a chunk of scenarios at a time
(:mod:`hsi_stats.chunks`); a group whose scenarios fall in several chunks gets the sum of its parts. Checked here:
chunks of one scenario, of a few and the whole data give the same estimates, counts and sums (to rounding);
the pairwise within-scenario ranks equal ``scipy.stats.rankdata``; the jackknife totals computed as
total-minus-row equal the product with the G x G weight matrix.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata

import hsi_stats.chunks
from hsi_stats import HSIDataset, estimate
from hsi_stats._validation import ConstantInputWarning
from hsi_stats.chunks import scenario_chunks
from hsi_stats.estimators import selectivity
from hsi_stats.focus import feature_indicators, focus_sums
from hsi_stats.group_sums import LEAVE_ONE_OUT
from hsi_stats.synthetic import generate
from hsi_stats.within import rank_within
from tests.test_estimator_properties import COMBOS, datasets

TOL = 1e-12


def _with_chunk(monkeypatch: pytest.MonkeyPatch, dataset: HSIDataset, scenarios: int) -> None:
    monkeypatch.setattr(hsi_stats.chunks, "CHUNK_VALUES", scenarios * dataset.n_heads * dataset.n_slots)


def _everything(dataset: HSIDataset) -> dict[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        estimates = {name: estimate(dataset, **options) for name, options in COMBOS.items()}
    directions = np.where(np.arange(dataset.n_heads * dataset.n_features).reshape(dataset.n_heads, -1) % 2, 1, -1)
    focus = focus_sums(dataset, directions)
    return {"estimates": estimates, "focus": focus, "selectivity": selectivity(dataset),
            "indicators": feature_indicators(dataset)}


def _assert_same(actual: dict, expected: dict) -> None:
    for name, est in expected["estimates"].items():
        other = actual["estimates"][name]
        np.testing.assert_allclose(other.rho, est.rho, rtol=0, atol=TOL, equal_nan=True, err_msg=name)
        np.testing.assert_array_equal(other.n_used, est.n_used, err_msg=name)
        assert other.left_out.equals(est.left_out), name
    np.testing.assert_allclose(actual["focus"].total, expected["focus"].total, rtol=0, atol=TOL)
    np.testing.assert_array_equal(actual["focus"].count, expected["focus"].count)
    np.testing.assert_allclose(actual["selectivity"], expected["selectivity"], rtol=0, atol=TOL, equal_nan=True)
    assert actual["indicators"] == expected["indicators"]


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(dataset=datasets(max_scenarios=9), scenarios=st.integers(1, 4))
def test_results_do_not_depend_on_the_chunk_size(dataset: HSIDataset, scenarios: int) -> None:
    whole = _everything(dataset)
    with pytest.MonkeyPatch.context() as monkeypatch:
        _with_chunk(monkeypatch, dataset, scenarios)
        assert sum(1 for _ in scenario_chunks(dataset)) == -(-dataset.n_scenarios // scenarios)
        _assert_same(_everything(dataset), whole)


def test_groups_split_across_chunks_give_the_sums_of_the_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    dataset = generate(n_episodes=6, n_steps=7, rng=4).dataset  # episodes of 7 scenarios, chunks of 3
    whole = _everything(dataset)
    _with_chunk(monkeypatch, dataset, 3)
    _assert_same(_everything(dataset), whole)


@settings(max_examples=200, deadline=None)
@given(values=arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 9)),
                     elements=st.sampled_from([-2.0, -0.5, 0.0, 0.5, 3.0, np.inf, -np.inf, np.nan])),
       valid=st.data())
def test_pairwise_ranks_equal_rankdata(values: np.ndarray, valid: st.DataObject) -> None:
    mask = valid.draw(arrays(np.bool_, values.shape)) & ~np.isnan(values)
    expected = rankdata(np.where(mask, values, np.nan), axis=-1, nan_policy="omit")
    np.testing.assert_array_equal(rank_within(values, mask), expected)


@pytest.mark.parametrize("name", sorted(COMBOS))
def test_jackknife_totals_equal_the_weight_matrix(name: str) -> None:
    dataset = generate(n_episodes=7, n_steps=5, rng=2).dataset
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        sums = estimate(dataset, **COMBOS[name]).sums
    matrix = 1.0 - np.eye(sums.n_groups)
    # The two compute the same totals in another order (total minus a row, or a sum of the other rows): equal to
    # rounding. The pooled estimator's rho subtracts raw moments (cross - sa * sx / n), which magnifies that
    # rounding for correlations near 0; 1e-7 is far below anything the jackknife acceleration can resolve.
    atol = 1e-7 if name.startswith("pooled") else 1e-10
    np.testing.assert_allclose(sums.rho(LEAVE_ONE_OUT), sums.rho(matrix), rtol=0, atol=atol, equal_nan=True)
    focus = focus_sums(dataset, np.ones((dataset.n_heads, dataset.n_features), dtype=int))
    np.testing.assert_allclose(focus.focus(LEAVE_ONE_OUT), focus.focus(matrix), rtol=0, atol=1e-12,
                               equal_nan=True)
