"""What the joint model changes in an analysis: profiles, the conditional label rule, and nothing else.

- Heads the marginal analysis calls alike (a lead-vehicle head and a nearest-vehicle head, both "Proximity Head")
  get different profiles, each the right one; a TTC head a TTC profile; a rear-monitoring head, whose feature the
  joint model leaves out as the complement of ``is_ahead``, is judged on ``is_ahead`` with the sign turned.
- A head whose marginal label (TTC, through its collinearity with distance and closing speed) passes every
  marginal rule but has no conditional effect does not validate, and the reason names what explains it.
- ``joint=False`` gives no joint table, no profile and the marginal verdicts, and ``joint=True`` changes no other
  number of the analysis (its only random draws are the bootstrap's, shared).
- The passes over the data are reported; shards give the in-memory numbers; the slot adjustment adds slot columns
  that are never reported; the evolution fits the joint model at the last step unless asked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hsi_stats import analyze, analyze_evolution, scan, write_shards
from hsi_stats.synthetic import generate
from hsi_stats.synthetic.conditional import LogitHead, logit_run

JOINT_COLUMNS = ["label_joint_feature", "label_joint_or", "label_joint_ci_low", "label_joint_ci_high",
                 "label_joint_p_adjusted", "profile"]


@pytest.fixture(scope="module")
def planted():
    heads = [LogitHead("lead", {"is_ahead": 2.0, "distance_to_ego": -4.0}),
             LogitHead("nearest", {"distance_to_ego": -4.0}), LogitHead("ttc", {"ttc": -3.0}),
             LogitHead("rear", {"is_behind": 3.0}), LogitHead("none", {})]
    run = logit_run(n_episodes=30, n_steps=20, heads=heads, rng=1)
    return run, analyze(run.dataset, n_resamples=999, rng=0)


def _head(result, name: str) -> pd.Series:
    return result.heads.set_index("head").loc[name]


def test_heads_alike_at_the_margin_get_different_and_right_profiles(planted) -> None:
    _, result = planted
    lead, nearest = _head(result, "lead"), _head(result, "nearest")
    assert lead["label"] == nearest["label"] == "Proximity Head" and lead["validated"] and nearest["validated"]
    assert lead["primary_feature"] == nearest["primary_feature"] == "distance_to_ego"
    significant = result.joint[result.joint["p_adjusted"] < 0.05].groupby("head")["feature"].apply(set)
    assert significant["lead"] == {"distance_to_ego", "is_ahead"}
    assert significant["nearest"] == {"distance_to_ego"}
    assert significant["ttc"] == {"ttc"}
    assert "none" not in significant or significant["none"] <= {"ttc", "distance_to_ego", "closing_speed"}
    assert lead["profile"].startswith("distance_to_ego ×0.0") and "is_ahead ×" in lead["profile"]
    assert nearest["profile"].startswith("distance_to_ego ×0.0") and "is_ahead" not in nearest["profile"]


def test_a_label_feature_left_out_as_a_complement_is_judged_on_it_with_the_sign_turned(planted) -> None:
    _, result = planted
    rear = _head(result, "rear")
    assert rear["label"] == "Rear Monitoring Head" and rear["validated"]
    assert rear["label_joint_feature"] == "is_ahead" and rear["label_joint_or"] > 5
    assert rear["label_joint_ci_low"] < rear["label_joint_or"] < rear["label_joint_ci_high"]
    ahead = result.joint[(result.joint["head"] == "rear") & (result.joint["feature"] == "is_ahead")].iloc[0]
    assert rear["label_joint_or"] == pytest.approx(1 / ahead["odds_ratio"])
    assert rear["profile"].startswith("is_ahead ×0.0") and "(is_behind ×" in rear["profile"]
    assert "is_behind" not in set(result.joint["feature"])


def test_a_marginal_label_without_a_conditional_effect_does_not_validate() -> None:
    run = logit_run(n_episodes=30, n_steps=20, heads=[LogitHead("graded", {"distance_to_ego": -2.5,
                                                                             "closing_speed": 2.5})], rng=2)
    with_joint = analyze(run.dataset, n_resamples=999, rng=0)
    without = analyze(run.dataset, n_resamples=999, rng=0, joint=False)
    head, marginal = with_joint.heads.iloc[0], without.heads.iloc[0]
    assert head["label"] == marginal["label"] == "Safety Head"
    assert marginal["validated"] and not head["validated"]
    assert head["reasons"].startswith("ttc: no effect once distance_to_ego, closing_speed are held fixed")


def test_joint_false_gives_the_marginal_analysis_and_joint_true_changes_no_other_number(planted) -> None:
    run, result = planted
    marginal = analyze(run.dataset, n_resamples=999, rng=0, joint=False)
    assert marginal.joint is None and marginal.joint_model is None and marginal.heads["profile"].isna().all()
    assert marginal.data_summary["passes"] == 1 and marginal.data_summary["joint"] is None
    pd.testing.assert_frame_equal(marginal.pairs, result.pairs)
    same = [c for c in result.heads.columns if c not in (*JOINT_COLUMNS, "validated", "reasons")]
    pd.testing.assert_frame_equal(marginal.heads[same], result.heads[same])
    np.testing.assert_array_equal(marginal.test.null_hsi, result.test.null_hsi)
    assert result.data_summary["passes"] == result.joint_model.fit.passes > 1


def test_shards_give_the_numbers_in_memory(tmp_path) -> None:
    run = logit_run(n_episodes=20, n_steps=30, heads=[LogitHead("lead", {"is_ahead": 2.0, "distance_to_ego": -3.0}),
                                                      LogitHead("none", {})], rng=4)
    write_shards(run.dataset, tmp_path / "shards", 77)  # episodes split across shards
    memory = analyze(run.dataset, n_resamples=199, rng=0).joint
    sharded = analyze(scan(tmp_path / "shards"), n_resamples=199, rng=0).joint
    pd.testing.assert_frame_equal(memory, sharded, rtol=1e-9, atol=1e-12)


def test_the_slot_adjustment_adds_slot_columns_that_are_never_reported() -> None:
    data = generate(n_episodes=20, n_steps=10, rng=0).dataset
    result = analyze(data, n_resamples=199, rng=0, adjust="slot")
    assert not any(feature.startswith("slot") for feature in result.joint["feature"])
    assert "slot" in " ".join(result.data_summary["notes"])  # a slot left out as aliased with the others


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")
def test_the_evolution_fits_the_joint_model_at_the_last_step_unless_asked() -> None:
    data = generate(n_episodes=12, n_steps=5, checkpoints=(1, 2, 3), rng=0).dataset
    evolution = analyze_evolution(data, n_resamples=99, trend_resamples=99, rng=0)
    assert [r.joint is not None for r in evolution.results.values()] == [False, False, True]
    every = analyze_evolution(data, n_resamples=99, trend_resamples=99, rng=0, joint_every_step=True)
    assert all(r.joint is not None for r in every.results.values())
    with pytest.raises(TypeError, match="`joint_every_step` must be True or False, but 'yes'"):
        analyze_evolution(data, n_resamples=99, trend_resamples=99, rng=0, joint_every_step="yes")
