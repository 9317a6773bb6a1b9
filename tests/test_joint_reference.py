"""The joint model against an independent implementation (``tests/joint_reference.py``) and statsmodels.

- coefficients equal a plain damped Newton loop over scenarios to 1e-8, with padding, NaN (the entity left out of
  its scenario's fit), +-inf (ranked as extremes), ties (mid ranks) and aliasing (an exact complement, a monotone
  copy, a feature constant within scenarios, left out by statsmodels' variance-inflation factors);
- a separated head (attention exactly zero off its support) is fitted with Firth's penalty, finite, and equals the
  loop with the same penalty;
- the cluster-jackknife standard errors equal the loop's own one-step leave-one-group-out shifts;
- on small data without separation and without a penalty, a Poisson GLM with scenario fixed effects
  (:mod:`statsmodels`) gives the same coefficients (Baker 1994).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from hsi_stats import HSIDataset, analyze
from hsi_stats.catalog import DRIVING_CATALOG
from tests.joint_reference import reference_columns, reference_design, reference_fit, reference_jackknife_se

INDICATORS = ("is_ahead", "is_behind", "is_left")
BETA = {"ttc": -1.5, "distance_to_ego": -2.0, "is_ahead": 1.2, "is_left": -0.8}


def _data(seed: int, *, extra: bool, nan: bool, separated: bool = False, n_groups: int = 12, steps: int = 6,
          n_slots: int = 6) -> tuple[HSIDataset, tuple[str, ...]]:
    """Planted heads over features with padding, ties and +inf (and, with ``extra``, aliased columns)."""
    rng = np.random.default_rng(seed)
    n_scenarios = n_groups * steps
    present = rng.integers(2, n_slots + 1, n_scenarios)
    mask = np.arange(n_slots)[None, :] < present[:, None]
    distance = rng.lognormal(3.0, 0.6, (n_scenarios, n_slots))
    closing = rng.normal(2.0, 3.0, (n_scenarios, n_slots))
    ttc = np.where(closing > 0.5, np.minimum(distance / np.where(closing > 0.5, closing, 1.0), 5.0), np.inf)
    ttc = np.where(rng.random(ttc.shape) < 0.15, 5.0, ttc)  # ties at the censoring value
    features = {"ttc": ttc, "distance_to_ego": distance,
                "is_ahead": (rng.random((n_scenarios, n_slots)) < 0.5).astype(float),
                "is_left": (rng.random((n_scenarios, n_slots)) < 0.3).astype(float)}
    if extra:
        features["is_behind"] = 1.0 - features["is_ahead"]  # an exact complement
        features["distance_cubed"] = distance**3  # the same ranks: an exact copy on the percentile scale
        features["lane_width"] = np.full((n_scenarios, n_slots), 3.7)  # no variation within a scenario
    if nan:
        features["distance_to_ego"] = np.where(rng.random(distance.shape) < 0.07, np.nan, distance)
        mask[0, 2:] = False  # a scenario left with one entity in the fit: it does not count
        features["distance_to_ego"][0, 0] = np.nan
    names = tuple(features)
    features = {name: np.where(mask, values, 0.0) for name, values in features.items()}
    z, _ = reference_design(features, mask, list(BETA), INDICATORS)
    attention = []
    for scale, concentration in ((1.0, 20.0), (0.5, 5.0), (0.0, 20.0)):
        beta = scale * np.array(list(BETA.values()))
        utility = np.where(mask, z @ beta, -np.inf)
        p = np.exp(utility - utility.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        draws = rng.gamma(np.where(mask, concentration * p + 1e-12, 1.0))
        attention.append(np.where(mask, draws, 0.0) / np.where(mask, draws, 0.0).sum(axis=1, keepdims=True))
    if separated:  # only the vehicles ahead, where there are any
        allowed = np.where((features["is_ahead"] * mask).any(axis=1, keepdims=True), features["is_ahead"] > 0, mask)
        head = np.where(allowed, attention[0], 0.0)
        attention[1] = head / head.sum(axis=1, keepdims=True)
    groups = np.repeat(np.arange(n_groups), steps)
    return HSIDataset(np.stack(attention, axis=1), features, mask=mask, groups=groups), names


def _priority(names: tuple[str, ...]) -> list[int]:
    known = [names.index(name) for name in DRIVING_CATALOG if name in names]
    return known + [i for i in range(len(names)) if i not in known]


def _compare(ds: HSIDataset, names: tuple[str, ...], *, firth_heads: tuple[int, ...] = ()) -> pd.DataFrame:
    result = analyze(ds, n_resamples=99, rng=0)
    indicators = [name for name in names if name in INDICATORS]
    z, valid = reference_design(ds.features, ds.mask, names, indicators)
    kept = reference_columns(z, valid, _priority(names))
    joint = result.joint
    assert list(joint[joint["head"] == "h0"]["feature"]) == [names[k] for k in kept]
    for h, head in enumerate(ds.head_names):
        firth = h in firth_heads
        fit = reference_fit(ds.attention[:, h], z[..., kept], valid, ds.groups, firth=firth)
        rows = joint[joint["head"] == head]
        assert set(rows["fit"]) == {"firth" if firth else "mle"}
        np.testing.assert_allclose(rows["coef"].to_numpy(), fit.coef, rtol=1e-8, atol=1e-8)
        np.testing.assert_allclose(rows["se"].to_numpy(), reference_jackknife_se(fit), rtol=1e-5)
        assert np.isfinite(rows["coef"]).all()
    return joint


@pytest.mark.parametrize("seed", [0, 1])
def test_coefficients_and_standard_errors_equal_a_plain_loop_with_padding_ties_and_inf(seed: int) -> None:
    ds, names = _data(seed, extra=False, nan=False)
    assert np.isinf(ds.features["ttc"][ds.mask]).any() and ds.mask.sum() < ds.mask.size
    _compare(ds, names)


def test_nan_entities_are_left_out_of_their_scenario_and_counted() -> None:
    ds, names = _data(2, extra=False, nan=True)
    _compare(ds, names)
    result = analyze(ds, n_resamples=99, rng=0)
    assert (ds.mask[0] & ~np.isnan(ds.features["distance_to_ego"][0])).sum() == 1
    expected = int((np.isnan(ds.features["distance_to_ego"]) & ds.mask).sum())
    assert result.data_summary["joint"]["entities_left_out"] == expected > 0
    assert any(f"{expected} entities with a NaN feature" in note for note in result.data_summary["notes"])


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ConstantInputWarning")  # rho of the constant feature
def test_aliased_and_constant_columns_are_left_out_and_named() -> None:
    ds, names = _data(3, extra=True, nan=False)
    joint = _compare(ds, names)
    assert {"is_behind", "distance_cubed", "lane_width"}.isdisjoint(joint["feature"])
    notes = " ".join(analyze(ds, n_resamples=99, rng=0).data_summary["notes"])
    assert "is_behind left out of the joint model: within scenarios it is exactly a linear function of is_ahead" \
        in notes
    assert "distance_cubed left out" in notes and "distance_to_ego" in notes
    assert "lane_width left out of the joint model: it does not vary within any scenario" in notes


def test_a_separated_head_gets_firths_penalty_and_equals_the_penalised_loop() -> None:
    ds, names = _data(4, extra=False, nan=False, separated=True)
    joint = _compare(ds, names, firth_heads=(1,))
    ahead = joint[(joint["head"] == "h1") & (joint["feature"] == "is_ahead")].iloc[0]
    assert 2.0 < ahead["coef"] < np.inf and ahead["p_adjusted"] < 0.05  # large, finite and found


def test_a_poisson_glm_with_scenario_fixed_effects_gives_the_same_coefficients() -> None:
    rng = np.random.default_rng(5)
    n_scenarios, n_slots = 40, 5
    distance, speed = rng.random((n_scenarios, n_slots)), rng.random((n_scenarios, n_slots))
    ahead = (rng.random((n_scenarios, n_slots)) < 0.5).astype(float)
    z, _ = reference_design({"distance_to_ego": distance, "agent_speeds": speed, "is_ahead": ahead},
                            np.ones((n_scenarios, n_slots), bool), ["distance_to_ego", "agent_speeds", "is_ahead"],
                            ["is_ahead"])
    utility = z @ np.array([-2.0, 0.5, 1.0])
    p = np.exp(utility) / np.exp(utility).sum(axis=1, keepdims=True)
    attention = rng.dirichlet(np.ones(n_slots), n_scenarios) * 0.4 + 0.6 * p
    ds = HSIDataset(attention[:, None, :], {"distance_to_ego": distance, "agent_speeds": speed, "is_ahead": ahead},
                    groups=np.repeat(np.arange(10), 4))
    ours = analyze(ds, n_resamples=99, rng=0).joint.set_index("feature")["coef"]
    exog = np.concatenate([z.reshape(-1, 3), np.kron(np.eye(n_scenarios), np.ones((n_slots, 1)))], axis=1)
    glm = sm.GLM(attention.reshape(-1), exog, family=sm.families.Poisson()).fit(tol=1e-14, maxiter=500)
    np.testing.assert_allclose(ours[["distance_to_ego", "agent_speeds", "is_ahead"]].to_numpy(), glm.params[:3],
                               rtol=1e-7, atol=1e-8)


def test_a_near_separated_head_converges_to_its_exact_coefficients() -> None:
    # attention exactly softmax(beta . z) with odds ratios of 1e5 and 1e-7: the fit recovers beta, no warning
    rng = np.random.default_rng(6)
    n_scenarios, n_slots = 240, 6
    mask = np.arange(n_slots)[None, :] < rng.integers(3, n_slots + 1, n_scenarios)[:, None]
    features = {"distance_to_ego": np.where(mask, rng.random((n_scenarios, n_slots)), 0.0),
                "is_ahead": np.where(mask, (rng.random((n_scenarios, n_slots)) < 0.4).astype(float), 0.0)}
    z, valid = reference_design(features, mask, ["distance_to_ego", "is_ahead"], ["is_ahead"])
    beta = np.array([-16.0, 11.5])
    utility = np.where(valid, z @ beta, -np.inf)
    attention = np.exp(utility - utility.max(axis=1, keepdims=True))
    attention /= attention.sum(axis=1, keepdims=True)
    ds = HSIDataset(attention[:, None, :], features, mask=mask, groups=np.repeat(np.arange(24), 10))
    joint = analyze(ds, n_resamples=99, rng=0).joint.set_index("feature")
    assert set(joint["fit"]) == {"mle"}
    np.testing.assert_allclose(joint.loc[["distance_to_ego", "is_ahead"], "coef"].to_numpy(), beta, rtol=1e-7)
