"""Label validation (the six rules) on constructed evidence, strength bands at their edges, and selectivity.

Each validation rule is switched on alone against evidence that passes every other rule, and the verdict and
the recorded reason are checked; the choice of the label's feature among sign-consistent features is checked
on a head whose strongest relation is sign-inverted. ``selectivity`` is compared with a Python loop over heads
and scenarios that calls ``scipy.stats.entropy``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hsi_stats import DRIVING_CATALOG, HSIDataset
from hsi_stats.catalog import GENERAL_CONTEXT
from hsi_stats.estimators import selectivity
from hsi_stats.labels import HeadEvidence, Verdict, judge_head, strength_band
from hsi_stats.settings import AnalysisSettings

FEATURES = ("ttc", "distance_to_ego", "is_ahead", "is_behind")
N_REPLICATES = 100


def _evidence(rho, *, p=None, ci=None, selectivity_value=0.4, winners=None) -> HeadEvidence:
    """Evidence for one head. ``winners`` maps feature -> number of replicates it wins (the rest: as ``rho``)."""
    rho = np.array(rho, dtype=float)
    replicates = np.tile(rho, (N_REPLICATES, 1))
    start = 0
    for name, count in (winners or {}).items():
        f = FEATURES.index(name)
        replicates[start:start + count, f] = np.sign(rho[f]) * 0.99
        start += count
    low, high = (rho - 0.1, rho + 0.1) if ci is None else (np.array(ci[0], float), np.array(ci[1], float))
    p_adjusted = np.full(rho.size, 0.001) if p is None else np.array(p, dtype=float)
    return HeadEvidence(rho, p_adjusted, low, high, replicates, selectivity_value)


def _judge(evidence: HeadEvidence, **rules) -> Verdict:
    return judge_head(evidence, FEATURES, DRIVING_CATALOG, AnalysisSettings(**rules))


SAFETY = [-0.5, -0.1, 0.05, -0.05]  # a Safety Head that passes every rule


def test_evidence_passing_every_rule_validates():
    verdict = _judge(_evidence(SAFETY))
    assert verdict.as_row() == {"label_feature": "ttc", "label": "Safety Head", "strength": "moderate",
                                "validated": True, "label_stability": 1.0, "reasons": "",
                                "label_joint_feature": None, "label_joint_or": pytest.approx(np.nan, nan_ok=True),
                                "label_joint_ci_low": pytest.approx(np.nan, nan_ok=True),
                                "label_joint_ci_high": pytest.approx(np.nan, nan_ok=True),
                                "label_joint_p_adjusted": pytest.approx(np.nan, nan_ok=True)}
    assert verdict.failures == () and verdict.remarks == ()


@pytest.mark.parametrize(("rho", "validated"), [(-0.3, True), (-0.2999, False), (-0.75, True)])
def test_threshold_rule(rho, validated):
    verdict = _judge(_evidence([rho, -0.1, 0.05, -0.05]))
    assert verdict.validated is validated
    assert verdict.label == ("Safety Head" if validated else GENERAL_CONTEXT)
    assert ("< threshold 0.3" in verdict.reasons) is not validated


@pytest.mark.parametrize(("p_ttc", "validated"), [(0.0499, True), (0.05, False), (np.nan, False)])
def test_adjusted_p_value_rule_uses_the_label_feature(p_ttc, validated):
    # Other features' p-values are 1: only the label feature's adjusted p-value counts.
    verdict = _judge(_evidence(SAFETY, p=[p_ttc, 1.0, 1.0, 1.0]))
    assert verdict.validated is validated
    assert verdict.label == "Safety Head"  # the label stays; it is just not validated
    assert ("adjusted p" in verdict.reasons and ">= alpha 0.05" in verdict.reasons) is not validated


@pytest.mark.parametrize(("rival_wins", "validated"), [(20, True), (21, False), (70, False)])
def test_stability_rule_names_the_rival(rival_wins, validated):
    verdict = _judge(_evidence(SAFETY, winners={"distance_to_ego": rival_wins}))
    assert verdict.label_stability == pytest.approx(1 - rival_wins / N_REPLICATES)
    assert verdict.validated is validated
    if not validated:
        assert f"ambiguous: ttc vs distance_to_ego (stability {1 - rival_wins / N_REPLICATES:.2f} < 0.8)" in (
            verdict.reasons)


@pytest.mark.parametrize(("ci", "strict_passes"), [
    ((-0.6, -0.31), True),
    ((-0.6, -0.30), True),
    ((-0.6, -0.25), False),
    ((-0.6, 0.10), False),  # the interval straddles zero: the bound nearest zero is 0
    ((-0.6, np.nan), False),  # an undefined interval (e.g. degenerate BCa) must not validate
    ((np.nan, -0.31), False),
])
def test_strict_rule_uses_the_ci_bound_nearest_zero(ci, strict_passes):
    low = [ci[0], -0.2, 0.0, -0.1]
    high = [ci[1], 0.0, 0.1, 0.0]
    evidence = _evidence(SAFETY, ci=(low, high))
    assert _judge(evidence).validated is True  # without strict the interval is not looked at
    verdict = _judge(evidence, strict=True)
    assert verdict.validated is strict_passes
    assert ("strict: CI bound nearest zero" in verdict.reasons) is not strict_passes


@pytest.mark.parametrize(("value", "validated"), [(0.05, True), (0.0499, False), (0.0, False), (np.nan, False)])
def test_selectivity_rule(value, validated):
    verdict = _judge(_evidence(SAFETY, selectivity_value=value))
    assert verdict.validated is validated
    assert ("not selective" in verdict.reasons) is not validated


def test_every_failed_rule_is_recorded():
    evidence = _evidence([-0.25, -0.1, 0.05, -0.05], p=[0.2, 1, 1, 1], winners={"distance_to_ego": 50},
                         selectivity_value=0.01)
    reasons = _judge(evidence, strict=True).reasons.split("; ")
    assert [r.split(" ")[0] for r in reasons] == ["|rho|", "adjusted", "ambiguous:", "strict:", "not"]


def test_sign_consistent_feature_labels_a_head_whose_strongest_relation_is_inverted():
    # A head that attends ahead: is_ahead +0.50, is_behind -0.55 (is_behind expects a positive sign).
    rho = [0.05, -0.1, 0.50, -0.55]
    # is_behind wins every replicate overall; among the sign-consistent features is_ahead always wins.
    verdict = _judge(_evidence(rho, winners={"is_behind": N_REPLICATES}))
    assert verdict.label_feature == "is_ahead"
    assert verdict.label == "Traffic Flow Head"
    assert verdict.validated is True
    assert verdict.label_stability == 1.0
    assert verdict.reasons.startswith("also: avoids is_behind (rho = -0.550")


def test_inverted_relation_does_not_rescue_a_failing_consistent_feature():
    rho = [0.05, -0.1, 0.50, -0.55]
    verdict = _judge(_evidence(rho, p=[1, 1, 0.2, 0.001]))
    assert verdict.label_feature == "is_ahead" and verdict.validated is False
    assert "also: avoids is_behind" in verdict.reasons and "adjusted p = 0.2" in verdict.reasons


def test_only_sign_inverted_features_give_no_label():
    verdict = _judge(_evidence([0.6, 0.2, -0.1, -0.05]))  # ttc and distance expect negative, is_* positive
    assert verdict.label_feature is None and verdict.label == GENERAL_CONTEXT
    assert verdict.validated is False and verdict.strength == "general"
    assert verdict.reasons == "sign-inverted: ttc rho = +0.600, expected negative"


def test_sign_either_feature_is_always_consistent():
    names = ("agent_speeds", "ttc")
    evidence = HeadEvidence(np.array([-0.6, 0.1]), np.array([0.001, 0.5]), np.array([-0.7, 0.0]),
                            np.array([-0.5, 0.2]), np.tile([-0.6, 0.1], (10, 1)), 0.5)
    verdict = judge_head(evidence, names, DRIVING_CATALOG, AnalysisSettings())
    assert verdict.label == "Dynamic Object Head" and verdict.validated is True


# --------------------------------------------------------------------------- strength bands and rules
@pytest.mark.parametrize(("value", "band"), [
    (0.7001, "strong"), (0.7, "moderate"), (0.5, "moderate"), (0.4999, "weak"), (0.3, "weak"),
    (0.2999, "general"), (0.0, "general"), (1.0, "strong"), (-0.75, "strong"), (-0.5, "moderate"),
    (math.nan, "general"),
])
def test_strength_band_edges(value, band):
    assert strength_band(value) == band


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"threshold": -0.1}, "`threshold`"),
    ({"threshold": 1.5}, "`threshold`"),
    ({"alpha": 1.5}, "`alpha`"),
    ({"alpha": math.nan}, "`alpha`"),
    ({"min_stability": True}, "`min_stability`"),
    ({"min_selectivity": "0.1"}, "`min_selectivity`"),
])
def test_validation_rules_reject_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AnalysisSettings(**kwargs)


# --------------------------------------------------------------------------- selectivity
def _brute_force_selectivity(attention: np.ndarray, mask: np.ndarray) -> np.ndarray:
    values = []
    for h in range(attention.shape[1]):
        per_scenario = []
        for s in range(attention.shape[0]):
            p = attention[s, h, mask[s]]
            n = p.size
            if n < 2 or p.sum() == 0:
                continue
            per_scenario.append(1 - stats.entropy(p) / math.log(n))
        values.append(np.mean(per_scenario) if per_scenario else math.nan)
    return np.array(values)


def test_selectivity_matches_scipy_entropy():
    rng = np.random.default_rng(8)
    n_scen, n_slots = 30, 6
    mask = rng.random((n_scen, n_slots)) > 0.3
    mask[0] = [True, False, False, False, False, False]  # one valid entity: skipped
    attention = rng.random((n_scen, 4, n_slots)) ** 3
    attention[:, 1] = 1.0  # uniform over the valid entities: 0
    attention[:, 2] = 0.0
    attention[:, 2, 0] = 1.0  # one-hot where slot 0 is valid: 1 (all mass invalid elsewhere: skipped)
    attention[5, 0] = 0.0  # no mass: skipped
    attention = np.where(mask[:, None, :], attention, np.nan)  # padding may hold anything
    ds = HSIDataset(attention, {"x": rng.random((n_scen, n_slots))}, mask=mask)
    ours = selectivity(ds)
    np.testing.assert_allclose(ours, _brute_force_selectivity(np.where(np.isnan(attention), 0, attention), mask),
                               rtol=1e-12, atol=1e-14)
    assert ours[1] == pytest.approx(0.0, abs=1e-12) and ours[2] == pytest.approx(1.0)


def test_selectivity_is_nan_without_a_usable_scenario():
    ds = HSIDataset(np.array([[[1.0, 0.0]], [[0.0, 0.0]]]), {"x": np.zeros((2, 2))},
                    mask=np.array([[True, False], [True, True]]))
    assert np.isnan(selectivity(ds)[0])


def test_complementary_features_tied_to_rounding_do_not_lower_the_stability():
    # is_ahead and is_behind are complements: their |rho| agree in every replicate up to the last bits, which
    # must not decide which one is "the strongest".
    evidence = _evidence([0.05, -0.1, 0.60, -0.60])
    noise = 1.0 + np.random.default_rng(0).choice([-1.0, 1.0], size=N_REPLICATES) * 4e-16
    replicates = evidence.replicates.copy()
    replicates[:, 3] = -replicates[:, 2] * noise
    verdict = _judge(HeadEvidence(evidence.rho, evidence.p_adjusted, evidence.rho_ci_low, evidence.rho_ci_high,
                                  replicates, evidence.selectivity))
    assert verdict.label_feature == "is_ahead" and verdict.label_stability == 1.0 and verdict.validated
    # A real lead (beyond rounding) still counts against it.
    replicates[:50, 3] *= 1.01
    verdict = _judge(HeadEvidence(evidence.rho, evidence.p_adjusted, evidence.rho_ci_low, evidence.rho_ci_high,
                                  replicates, evidence.selectivity))
    assert verdict.label_stability == 0.5
