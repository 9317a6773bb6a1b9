"""Open-loop ablation (``hsi_stats.ablation_effects``) on the planted policy of ``hsi_stats.synthetic.policy``.

- Its head 0 decides the action and its head 1 is inert: head 0's ``changed`` interval is far from 0, head 1's
  estimate is exactly 0; the targeted comparison finds head 0's effect where its label's target (the nearest
  vehicle) is salient, and none for head 1, whose Left Lane label validates although the policy ignores it.
- The per-step values and the table equal a plain loop (weights zeroed by hand, argmax, total variation); the
  intervals agree with a bootstrap written here as a loop over resampled episodes, within Monte-Carlo error; the
  salient steps with a loop over steps; the Holm adjustment with statsmodels.
- Invariants (hypothesis): the order of the observations changes nothing.
- The registry and the report carry the results; bad input gets one clear error; importing needs no torch.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from statsmodels.stats.multitest import multipletests

from hsi_stats import analyze
from hsi_stats._validation import HSIDataError, OptionError
from hsi_stats.ablation import ABLATION_COLUMNS, TARGETED_COLUMNS, label_targets, salient_steps
from tests.rates_reference import clustered_wilson, no_event_bound

torch = pytest.importorskip("torch", reason="the torch extra (hsi_stats[torch]) is not installed")
from hsi_stats import ablation_effects  # noqa: E402
from hsi_stats.capture import TorchAttentionRecorder  # noqa: E402
from hsi_stats.synthetic.policy import PlantedTraffic, planted_policy, planted_traffic  # noqa: E402

HEADS = ("attention:h0", "attention:h1")


@pytest.fixture(scope="module")
def traffic() -> PlantedTraffic:
    return planted_traffic(60, 40, rng=0)


@pytest.fixture(scope="module")
def result(traffic: PlantedTraffic):  # type: ignore[no-untyped-def]
    policy = planted_policy()
    with TorchAttentionRecorder(policy) as recorder:
        policy.predict(traffic.observations)
    dataset = recorder.to_dataset(traffic.features, mask=traffic.mask, groups=traffic.groups, query=0,
                                  entities=slice(1, None))
    return analyze(dataset, n_resamples=999, rng=0)


@pytest.fixture(scope="module")
def effects(traffic: PlantedTraffic, result):  # type: ignore[no-untyped-def]
    policy = planted_policy()
    return ablation_effects(policy.predict, traffic.observations, policy, groups=traffic.groups, result=result,
                            features=traffic.features, mask=traffic.mask, n_resamples=1999, rng=1,
                            sets={"both": list(HEADS)})


# ------------------------------------------------------------------------------------------------ planted truth
def test_the_deciding_head_matters_and_the_inert_head_does_not(effects, result) -> None:  # type: ignore[no-untyped-def]
    assert list(result.heads["label"]) == ["Proximity Head", "Left Lane Head"] and result.heads["validated"].all()
    table = effects.table.set_index("head")
    assert list(effects.table.columns) == list(ABLATION_COLUMNS) and list(table.index) == [*HEADS, "both"]
    assert table.loc["attention:h0", "changed_ci_low"] > 0.15  # far from 0
    assert table.loc["attention:h1", ["changed", "changed_ci_low"]].tolist() == [0.0, 0.0]
    # no changed action in 60 episodes: the interval of no event in 60 trials, not [0, 0]
    assert table.loc["attention:h1", "changed_ci_high"] == pytest.approx(no_event_bound(60), rel=1e-12)
    assert table.loc["attention:h1", "tv"] < 1e-6  # the softmax cancels its shift, up to float32 rounding
    assert effects.conditions == {"attention:h0": ("attention:h0",), "attention:h1": ("attention:h1",),
                                  "both": HEADS}
    np.testing.assert_array_equal(effects.changed["both"], effects.changed["attention:h0"])


def test_the_targeted_comparison_finds_the_effect_where_the_target_is_salient(traffic, result, effects) -> None:  # type: ignore[no-untyped-def]
    targeted = effects.targeted.set_index("head")
    assert list(effects.targeted.columns) == list(TARGETED_COLUMNS)
    near = targeted.loc["attention:h0"]
    assert near["target"] == "lowest distance_to_ego" and near["ci_low"] > 0.08 and near["p_adjusted"] < 0.01
    assert near["changed_salient"] > 2 * near["changed_other"]
    inert = targeted.loc["attention:h1"]
    assert inert["target"] == "flagged by is_left" and inert["difference"] == 0.0 and inert["p_adjusted"] == 1.0
    # every resample gives 0: Newcombe's hybrid of the two shares' intervals, not [0, 0]
    where = salient_steps(label_targets(result=result)["attention:h1"], traffic.features, traffic.mask)
    shares = [clustered_wilson([0.0] * 60, [float((side & (traffic.groups == g)).sum()) for g in range(60)])
              for side in (where, ~where)]
    (_, l1, u1), (_, l2, u2) = shares
    assert [inert["ci_low"], inert["ci_high"]] == pytest.approx([-math.hypot(0 - l1, u2), math.hypot(u1, 0 - l2)],
                                                                rel=1e-9)


# ------------------------------------------------------------------------------------------------ plain loops
def _zeroed_by_hand(head: int):  # type: ignore[no-untyped-def]
    policy = copy.deepcopy(planted_policy())
    with torch.no_grad():
        policy.attention.out_proj.weight[:, 2 * head:2 * head + 2] = 0.0
    return policy


def test_the_table_equals_a_plain_loop(traffic: PlantedTraffic, effects) -> None:  # type: ignore[no-untyped-def]
    intact = planted_policy().predict(traffic.observations)
    for k, head in enumerate(HEADS):
        ablated = _zeroed_by_hand(k).predict(traffic.observations)
        changed = [int(np.argmax(p) != np.argmax(q)) for p, q in zip(intact, ablated, strict=True)]
        tv = [0.5 * sum(abs(a - b) for a, b in zip(p, q, strict=True)) for p, q in zip(intact, ablated, strict=True)]
        np.testing.assert_array_equal(effects.changed[head], np.array(changed, dtype=bool))
        np.testing.assert_array_equal(effects.tv[head], np.array(tv))
        row = effects.table.set_index("head").loc[head]
        assert row["changed"] == sum(changed) / len(changed)
        assert row["tv"] == pytest.approx(sum(tv) / len(tv), rel=1e-12, abs=1e-15)


def test_the_intervals_are_the_clustered_wilson_intervals_of_the_episodes(traffic: PlantedTraffic, effects) -> None:  # type: ignore[no-untyped-def]
    episodes = np.unique(traffic.groups)
    steps = [float((traffic.groups == g).sum()) for g in episodes]
    for head in HEADS:
        row = effects.table.set_index("head").loc[head]
        for measure, values in (("changed", effects.changed[head].astype(float)), ("tv", effects.tv[head])):
            sums = [float(values[traffic.groups == g].sum()) for g in episodes]
            rate, low, high = clustered_wilson(sums, steps)
            assert row[measure] == pytest.approx(rate, rel=1e-12, abs=1e-15)
            assert [row[f"{measure}_ci_low"], row[f"{measure}_ci_high"]] == pytest.approx([low, high], rel=1e-9,
                                                                                          abs=1e-12)


def test_salient_steps_equal_a_loop_over_steps(traffic: PlantedTraffic, result, effects) -> None:  # type: ignore[no-untyped-def]
    targets = label_targets(result=result)
    assert targets == label_targets(registry=result.registry())  # the registry names the same targets
    distance, mask = traffic.features["distance_to_ego"], traffic.mask
    nearest = [min(d for d, ok in zip(row, valid, strict=True) if ok) if valid.sum() >= 2 else None
               for row, valid in zip(distance, mask, strict=True)]
    typical = np.median([n for n in nearest if n is not None])
    expected = np.array([n is not None and n < typical for n in nearest])
    found = salient_steps(targets["attention:h0"], traffic.features, mask)
    np.testing.assert_array_equal(found, expected)
    left = traffic.features["is_left"]
    expected_left = [0 < sum(f for f, ok in zip(row, valid, strict=True) if ok) < valid.sum()
                     for row, valid in zip(left, mask, strict=True)]
    np.testing.assert_array_equal(salient_steps(targets["attention:h1"], traffic.features, mask),
                                  np.array(expected_left))
    changed = effects.changed["attention:h0"]
    row = effects.targeted.set_index("head").loc["attention:h0"]
    assert row["changed_salient"] == changed[found].mean() and row["changed_other"] == changed[~found].mean()
    assert row["salient_steps"] == int(expected.sum())
    raw = effects.targeted["p_value"].to_numpy()
    np.testing.assert_allclose(effects.targeted["p_adjusted"], multipletests(raw, method="holm")[1])


# ------------------------------------------------------------------------------------------------ invariants
@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_the_order_of_the_observations_changes_nothing(seed: int) -> None:
    traffic = planted_traffic(8, 12, rng=3)
    order = np.random.default_rng(seed).permutation(len(traffic.groups))
    policy = planted_policy()
    found = [ablation_effects(policy.predict, observations, policy, groups=groups, n_resamples=199, rng=5).table
             for observations, groups in ((traffic.observations, traffic.groups),
                                          (traffic.observations[order], traffic.groups[order]))]
    for column in ("changed", "changed_ci_low", "changed_ci_high"):  # shares of whole steps: exactly equal
        np.testing.assert_array_equal(found[0][column], found[1][column])
    for column in ("tv", "tv_ci_low", "tv_ci_high"):  # sums in another order
        np.testing.assert_allclose(found[0][column], found[1][column], rtol=1e-12, atol=1e-15)


def test_the_same_seed_gives_the_same_numbers(traffic: PlantedTraffic) -> None:
    policy = planted_policy()
    runs = [ablation_effects(policy.predict, traffic.observations, policy, groups=traffic.groups, n_resamples=299,
                             rng=11).table for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])


# ------------------------------------------------------------------------------------------------ evidence travels
def test_the_registry_and_the_report_carry_the_results(tmp_path, result, effects) -> None:  # type: ignore[no-untyped-def]
    from hsi_stats.report import write_report

    files = write_report(result, tmp_path / "report", ablation=effects)
    registry = json.loads(files["head_functions.json"].read_text())
    for h, head in enumerate(HEADS):
        row = effects.table.set_index("head").loc[head]
        block = registry[str(h)]["ablation"]
        assert block["open_loop"]["changed"] == row["changed"] and block["closed_loop"] is None
        assert block["open_loop"]["changed_ci"] == [row["changed_ci_low"], row["changed_ci_high"]]
        assert block["open_loop"]["n_episodes"] == 60 and block["open_loop"]["n_steps"] == 2400
        targeted = effects.targeted.set_index("head").loc[head]
        assert block["targeted"]["difference"] == targeted["difference"]
        assert block["targeted"]["p_adjusted"] == targeted["p_adjusted"]
    assert registry["_meta"]["ablation_sets"]["both"]["heads"] == list(HEADS)
    plain = result.registry()  # nothing without ablation results
    assert all(plain[str(h)]["ablation"] is None for h in range(2)) and "ablation_sets" not in plain["_meta"]
    pd.testing.assert_frame_equal(pd.read_csv(files["ablation.csv"]), effects.table, check_exact=False, rtol=1e-12)
    html = files["report.html"].read_text()
    assert "What removing each head does" in html and "Where the label says the head works" in html
    assert "Removing L0.H0 (Proximity Head) changes the action in" in html
    pdf = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(files["report.pdf"]).pages)
    assert "What removing each head does" in pdf and "Removing L0.H0 (Proximity Head) changes the action in" in pdf
    assert "Michel et al., 2019" in html and "Closed loop" not in html  # no closed-loop results were given
    assert "michel2019" in files["references.bib"].read_text() and "figures/ablation.svg" in {
        str(p.relative_to(tmp_path / "report")) for p in files.values()}


def test_results_that_name_no_head_of_the_analysis_are_refused(traffic: PlantedTraffic, result) -> None:  # type: ignore[no-untyped-def]
    policy = planted_policy()
    effects = ablation_effects(policy.predict, traffic.observations, policy, groups=traffic.groups, n_resamples=99,
                               rng=0, sets={"first": ["attention:h0"]}, heads=[])
    with pytest.raises(HSIDataError, match="name no head of the analysis"):
        result.registry(ablation=effects)
    with pytest.raises(TypeError, match="must hold AblationEffects or AblationEpisodes"):
        result.registry(ablation=[effects.table])


# ------------------------------------------------------------------------------------------------ errors
def test_bad_input_gets_one_clear_error(traffic: PlantedTraffic, result) -> None:  # type: ignore[no-untyped-def]
    policy = planted_policy()
    obs, groups = traffic.observations, traffic.groups
    cases = [
        (lambda: ablation_effects(lambda o: policy.predict(o)[:, 0], obs, policy, groups=groups), HSIDataError,
         r"must return action probabilities \(B, A\) for the B observations, but it returned shape \(2400,\)"),
        (lambda: ablation_effects(lambda o: 2 * policy.predict(o), obs, policy, groups=groups), HSIDataError,
         "each row summing to 1"),
        (lambda: ablation_effects(policy.predict, obs, policy, groups=groups[:10]), HSIDataError,
         r"`groups` must label the 2400 observations \(shape \(2400,\)\), but it has shape \(10,\)"),
        (lambda: ablation_effects(policy.predict, obs, policy, groups=np.zeros(len(groups))), HSIDataError,
         "at least 2 episodes"),
        (lambda: ablation_effects(policy.predict, obs, policy, groups=groups, sets={"attention:h0": [0]}),
         OptionError, "must differ from the heads'"),
        (lambda: ablation_effects(policy.predict, obs, policy, groups=groups, result=result), OptionError,
         "needs `features`"),
        (lambda: ablation_effects(policy.predict, obs, policy, groups=groups, heads=["attention:h7"]), OptionError,
         "is not a head of the model"),
        (lambda: ablation_effects(policy.predict, obs, policy, groups=groups, n_resamples=0), OptionError,
         "n_resamples"),
    ]
    for call, kind, message in cases:
        with pytest.raises(kind, match=message):
            call()
    with pytest.warns(UserWarning, match="no head removed has a validated label"):
        empty = ablation_effects(policy.predict, obs, policy, groups=groups, registry=result.registry(), heads=[],
                                 sets={"both": list(HEADS)}, features=traffic.features, mask=traffic.mask)
    assert list(empty.targeted.columns) == list(TARGETED_COLUMNS) and empty.targeted.empty


def test_importing_the_package_and_ablation_effects_needs_no_torch() -> None:
    code = ("import sys; import hsi_stats; from hsi_stats import ablation_effects; import hsi_stats.ablation; "
            "import hsi_stats.report; print('torch' in sys.modules)")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "False"
