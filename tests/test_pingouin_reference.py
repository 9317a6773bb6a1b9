"""The ``within`` estimator against pingouin's repeated-measures and partial correlations (independent references).

- Pearson's ``within`` rho is the repeated-measures correlation of Bakdash & Marusich (2017) with the scenario as
  the subject: ``pingouin.rm_corr``. So is ``rank-feature``, with the feature replaced by its mid-rank percentile
  within each scenario.
- The slot-adjusted rho is the partial correlation of attention and feature given scenario and slot indicators:
  ``pingouin.partial_corr`` with one indicator per scenario and per slot (the first of each left out).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats

from hsi_stats import HSIDataset, estimate

N_SCENARIOS, N_SLOTS = 40, 5
# pingouin calls pandas APIs that pandas deprecates; its warnings are about pingouin, not about what is tested here.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")


def _data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    feature = rng.gamma(2.0, 10.0, size=(N_SCENARIOS, N_SLOTS))
    attention = np.exp(-feature / 15.0 + rng.normal(0.0, 0.7, size=feature.shape))
    attention /= attention.sum(axis=1, keepdims=True)
    return attention, feature


def _long(attention: np.ndarray, feature: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"attention": attention.ravel(), "feature": feature.ravel(),
                         "scenario": np.repeat(np.arange(N_SCENARIOS), N_SLOTS),
                         "slot": np.tile(np.arange(N_SLOTS), N_SCENARIOS)})


@pytest.mark.parametrize("seed", [0, 1])
def test_within_pearson_is_the_repeated_measures_correlation(seed: int) -> None:
    attention, feature = _data(seed)
    ds = HSIDataset(attention[:, None, :], {"x": feature})
    reference = pg.rm_corr(data=_long(attention, feature), x="attention", y="feature", subject="scenario")
    ours = estimate(ds, correlation="pearson").rho[0, 0]
    assert ours == pytest.approx(float(reference["r"].iloc[0]), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1])
def test_rank_feature_is_the_repeated_measures_correlation_with_percentiles(seed: int) -> None:
    attention, feature = _data(seed)
    percentile = (stats.rankdata(feature, axis=1) - 0.5) / N_SLOTS
    reference = pg.rm_corr(data=_long(attention, percentile), x="attention", y="feature", subject="scenario")
    ours = estimate(HSIDataset(attention[:, None, :], {"x": feature})).rho[0, 0]
    assert ours == pytest.approx(float(reference["r"].iloc[0]), rel=1e-10)


def test_slot_adjusted_rho_is_the_partial_correlation_given_scenario_and_slot() -> None:
    rng = np.random.default_rng(3)
    attention, feature = _data(3)
    slots = np.array([rng.permutation(N_SLOTS) for _ in range(N_SCENARIOS)])  # slots not in column order
    data = _long(attention, feature)
    data["slot"] = slots.ravel()
    dummies = pd.get_dummies(data[["scenario", "slot"]].astype(str), drop_first=True).astype(float)
    covariates = list(dummies.columns)
    reference = pg.partial_corr(data=pd.concat([data, dummies], axis=1), x="attention", y="feature",
                                covar=covariates)
    ours = estimate(HSIDataset(attention[:, None, :], {"x": feature}, slots=slots), correlation="pearson",
                    adjust="slot").rho[0, 0]
    assert ours == pytest.approx(float(reference["r"].iloc[0]), rel=1e-8)
