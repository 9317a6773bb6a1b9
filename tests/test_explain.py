"""Run-time explanations from the registry (:mod:`hsi_stats.explain`, :mod:`hsi_stats.agreement`).

A synthetic run with a planted Safety Head and a no-effect head is analysed and its registry exported; the explainer
must claim for the Safety Head only, say which vehicle it attends and whether that is the lowest-TTC vehicle; the
agreement rate, its interval and the concentration percentiles must equal brute-force computations.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hsi_stats import HSIDataset, analyze
from hsi_stats._validation import HSIDataError, OptionError, RegistryStepWarning
from hsi_stats.agreement import PERCENTILES
from hsi_stats.explain import Explainer, registry_step
from hsi_stats.synthetic import HeadSpec, generate
from tests.rates_reference import clustered_wilson

V = 8


@pytest.fixture(scope="module")
def analysed():  # type: ignore[no-untyped-def]
    heads = [HeadSpec("safety", "ttc", beta=-3.0), HeadSpec("no_effect", slot_preference=1.5)]
    run = generate(n_episodes=30, n_steps=12, heads=heads, rng=11)
    return run.dataset, analyze(run.dataset, n_resamples=499, rng=2)


@pytest.fixture(scope="module")
def registry_path(tmp_path_factory: pytest.TempPathFactory, analysed) -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("registry") / "head_functions.json"
    analysed[1].export_registry(path)
    return path


def _step(lowest: int, attended: int, share: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One step: vehicle ``lowest`` has the lowest TTC; the Safety Head puts ``share`` on vehicle ``attended``."""
    ttc = np.linspace(1.0, 4.5, V)
    ttc[[0, lowest]] = ttc[[lowest, 0]]
    attention = np.full((2, V), 1.0 / V)
    attention[0] = (1 - share) / (V - 1)
    attention[0, attended] = share
    features = {"ttc": ttc, "distance_to_ego": np.linspace(5, 40, V), "closing_speed": np.zeros(V),
                "is_ahead": np.ones(V), "is_behind": np.zeros(V), "is_left": np.zeros(V), "is_right": np.zeros(V),
                "agent_speeds": np.full(V, 25.0)}
    return attention, features


def test_the_safety_head_claims_and_the_no_effect_head_does_not(analysed, registry_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, result = analysed
    assert list(result.heads["label"]) == ["Safety Head", "General Context Head"]
    explainer = Explainer.from_registry(registry_path)
    assert explainer.heads == ("safety",) and explainer.silent == ("no_effect",)
    attention, features = _step(lowest=3, attended=3, share=0.9)
    claims = explainer.explain(attention, features).claims
    assert len(claims) == 1
    claim = claims.iloc[0]
    assert (claim["label"], claim["head_name"], claim["entity"], bool(claim["consistent"])) == (
        "Safety Head", "safety", 3, True)
    assert claim["share"] == pytest.approx(0.9) and claim["value"] == pytest.approx(1.0)
    text = explainer.explain(attention, features, entity_names=[f"vehicle {v}" for v in range(V)]).text()
    assert "safety (Safety Head): attends vehicle 3 with 90% of its attention" in text
    assert "as its label predicts (the entity with the lowest ttc)" in text
    assert "no claim (no validated label): no_effect" in text
    elsewhere = explainer.explain(*_step(lowest=3, attended=5, share=0.9)).claims.iloc[0]
    assert elsewhere["entity"] == 5 and not elsewhere["consistent"]


def test_a_batch_gives_the_claims_of_each_step(analysed, registry_path: Path) -> None:  # type: ignore[no-untyped-def]
    dataset, _ = analysed
    explainer = Explainer.from_registry(registry_path)
    rows = np.arange(0, dataset.n_scenarios, 7)
    features = {name: values[rows] for name, values in dataset.features.items()}
    batch = explainer.explain(dataset.attention[rows], features, dataset.mask[rows]).claims
    assert list(batch["scenario"]) == list(range(rows.size))
    one_by_one = pd.concat([explainer.explain(dataset.attention[r], {k: v[i] for k, v in features.items()},
                                              dataset.mask[r]).claims for i, r in enumerate(rows)], ignore_index=True)
    pd.testing.assert_frame_equal(batch.drop(columns="scenario"), one_by_one)
    arrays = explainer.explain(dataset.attention[rows], features, dataset.mask[rows]).arrays
    np.testing.assert_array_equal(arrays["entity"].reshape(-1), batch["entity"])
    np.testing.assert_array_equal(arrays["share"].reshape(-1), batch["share"])


def test_agreement_and_concentration_agree_with_a_brute_force_loop(analysed) -> None:  # type: ignore[no-untyped-def]
    dataset, result = analysed
    found = result.label_agreement()[0]
    assert found.target.words == "lowest ttc"
    counted, agree, chance = (np.zeros(dataset.n_groups) for _ in range(3))
    shares: list[float] = []
    for s in range(dataset.n_scenarios):
        valid = dataset.mask[s] & ~np.isnan(dataset.features["ttc"][s])
        ttc, mass = dataset.features["ttc"][s][valid], np.abs(dataset.attention[s, 0][valid])
        targets = ttc == ttc.min()
        if valid.sum() < 2 or targets.all() or mass.sum() == 0:
            continue
        g = dataset.group_codes[s]
        top = int(np.argmax(mass))
        counted[g] += 1
        agree[g] += targets[top]
        chance[g] += targets.sum() / valid.sum()
        shares.append(mass[top] / mass.sum())
    assert found.n_scenarios == counted.sum()
    assert found.rate == pytest.approx(agree.sum() / counted.sum(), rel=1e-12)
    assert found.chance == pytest.approx(chance.sum() / counted.sum(), rel=1e-12)
    np.testing.assert_allclose(found.concentration, np.percentile(shares, PERCENTILES), rtol=1e-12)
    _, low, high = clustered_wilson(list(agree), list(counted))  # statsmodels' Wilson at the effective count
    np.testing.assert_allclose([found.ci_low, found.ci_high], [low, high], rtol=1e-9)
    # the percentile an explanation quotes places the step's share in the reference shares
    explainer = Explainer.from_registry(result.registry())
    attention, features = _step(lowest=3, attended=3, share=0.5)
    quoted = explainer.explain(attention, features).claims.iloc[0]["focus_percentile"]
    assert quoted == pytest.approx(stats.percentileofscore(shares, 0.5, kind="mean"), abs=1.0)


def test_registries_without_evidence_or_that_do_not_fit_are_refused(tmp_path: Path, analysed,  # type: ignore[no-untyped-def]
                                                                   registry_path: Path) -> None:
    original = {"0": {"name": "Safety Head", "description": "x", "primary_feature": "ttc", "hsi": 0.4,
                      "correlation": -0.3, "correlation_sign": "negative"},
                "1": {"name": "General Context Head", "description": "y", "primary_feature": None, "hsi": 0.1,
                      "correlation": None, "correlation_sign": None}}
    with pytest.raises(HSIDataError, match=r"no validation evidence for heads \['0', '1'\].*allow_unvalidated=True"):
        Explainer.from_registry(original)
    explainer = Explainer.from_registry(original, allow_unvalidated=True)
    attention, features = _step(lowest=3, attended=3, share=0.9)
    claim = explainer.explain(attention, features).claims.iloc[0]
    assert not claim["validated"] and claim["consistent"] and np.isnan(claim["agreement"])
    assert "label NOT validated" in explainer.explain(attention, features).text()
    with pytest.raises(HSIDataError, match=r"`features` must hold .* but \['ttc'\] are missing"):
        Explainer.from_registry(registry_path).explain(attention, {"distance_to_ego": features["distance_to_ego"]})
    with pytest.raises(HSIDataError, match=r"the registry describes 2 heads .* but `attention` has 1"):
        Explainer.from_registry(registry_path).explain(attention[:1], features)
    (tmp_path / "bad.json").write_text(json.dumps(["not", "a", "registry"]))
    with pytest.raises(HSIDataError, match="a registry is a JSON object"):
        Explainer.from_registry(tmp_path / "bad.json")


def test_the_report_explains_each_validated_head_on_two_scenarios(analysed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from hsi_stats import write_report
    from hsi_stats.explain import example_explanations

    _, result = analysed
    examples = example_explanations(result)
    assert list(examples["head"]) == ["safety", "safety"]
    assert list(examples["example"]) == ["most typical", "least typical"]
    claims = Explainer.from_registry(result.registry()).explain(
        result.dataset.attention, result.dataset.features, result.dataset.mask).claims
    hits = claims[claims["consistent"].fillna(False).to_numpy(dtype=bool)]
    assert examples["scenario"][0] == hits["scenario"].iloc[int(np.argmax(hits["share"].to_numpy()))]
    write_report(result, tmp_path / "report", formats="html")
    html = (tmp_path / "report" / "report.html").read_text()
    assert "Explanations on example scenarios" in html and html.count("(Safety Head): attends entity") == 2


# ----------------------------------------------------------------------------------------- training steps
@pytest.fixture(scope="module")
def two_steps(analysed):  # type: ignore[no-untyped-def]
    """The analysed scenarios as two checkpoints, 100 and 200 (interleaved, so that a selection must follow the
    steps rather than a block of rows), and the registry of their analysis, which is of the last step, 200."""
    dataset, _ = analysed
    steps = np.where(np.arange(dataset.n_scenarios) % 3 == 0, 100, 200)
    stepped = HSIDataset(dataset.attention, dataset.features, mask=dataset.mask, groups=dataset.groups, steps=steps,
                         head_names=dataset.head_names)
    return stepped, analyze(stepped, n_resamples=199, rng=2).registry()


def _stepless(registry: dict) -> dict:  # type: ignore[type-arg]
    """The registry as the analysis of data without steps writes it: ``steps`` None, no step selected."""
    summary = {**registry["_meta"]["data_summary"], "steps": None,
               "step_selection": {"step": None, "available": [], "pooled": False, "chosen": False}}
    return {**registry, "_meta": {**registry["_meta"], "data_summary": summary}}


def _batch(dataset: HSIDataset) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    return dataset.attention, dict(dataset.features), dataset.mask


def test_the_registry_step_is_read_from_its_meta(two_steps, registry_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, registry = two_steps
    assert registry["_meta"]["data_summary"]["steps"] == [200]
    assert registry_step(registry) == 200 and Explainer.from_registry(registry).step == 200
    written = json.loads(registry_path.read_text())  # the synthetic run's one checkpoint, through the file
    assert registry_step(written) == written["_meta"]["data_summary"]["steps"][0]
    assert registry_step(_stepless(registry)) is None  # data without steps
    assert registry_step({key: value for key, value in registry.items() if key != "_meta"}) is None
    pooled = {**registry, "_meta": {"data_summary": {"steps": [100, 200], "step_selection": {
        "step": None, "available": [100, 200], "pooled": True, "chosen": False}}}}
    assert registry_step(pooled) is None
    only_steps = {**registry, "_meta": {"data_summary": {"steps": [300]}}}
    assert registry_step(only_steps) == 300


def test_data_with_steps_are_explained_at_the_registry_step_only(two_steps) -> None:  # type: ignore[no-untyped-def]
    dataset, registry = two_steps
    explainer = Explainer.from_registry(registry)
    explanation = explainer.explain(*_batch(dataset), steps=dataset.steps)
    claims = explanation.claims
    at_200 = np.flatnonzero(dataset.steps == 200)
    assert claims["scenario"].unique().tolist() == at_200.tolist()  # labelled by their place in the data given
    assert (claims["step"] == 200).all() and claims["note"].isna().all()
    alone = explainer.explain(dataset.attention[at_200], {k: v[at_200] for k, v in dataset.features.items()},
                              dataset.mask[at_200], scenarios=at_200).claims
    pd.testing.assert_frame_equal(claims.drop(columns=["step", "note"]), alone.drop(columns=["step", "note"]))
    assert explanation.heading == (f"Explained: training step 200, the step the registry describes, {at_200.size} of "
                                   f"the {dataset.n_scenarios} scenarios given; those of the other training step 100 "
                                   f"only when asked for (step=, --step N).")
    assert explanation.text().splitlines()[0] == explanation.heading and "[Note:" not in explanation.text()
    # one step at run time, its checkpoint given as one number
    one = explainer.explain(dataset.attention[1], {k: v[1] for k, v in dataset.features.items()}, dataset.mask[1],
                            steps=200)
    assert one.heading == "Explained: training step 200, the step the registry describes." and len(one.claims) == 1


def test_another_step_only_when_asked_and_every_claim_notes_it(two_steps) -> None:  # type: ignore[no-untyped-def]
    dataset, registry = two_steps
    explanation = Explainer.from_registry(registry).explain(*_batch(dataset), steps=dataset.steps, step=100)
    claims = explanation.claims
    at_100 = np.flatnonzero(dataset.steps == 100)
    assert claims["scenario"].unique().tolist() == at_100.tolist() and (claims["step"] == 100).all()
    note = "the registry describes training step 200, not step 100: its labels and rates are those of another network"
    assert (claims["note"] == note).all()
    claim_lines = [line for line in explanation.text().splitlines() if "(Safety Head): attends" in line]
    assert len(claim_lines) == at_100.size and all(line.endswith(f" [Note: {note}.]") for line in claim_lines)
    assert "the registry describes training step 200, another network: every claim notes it" in explanation.heading
    same = Explainer.from_registry(registry).explain(*_batch(dataset), steps=dataset.steps, step=200)
    assert same.claims["note"].isna().all() and "as asked, the step the registry describes" in same.heading


def test_steps_that_lack_the_registry_step_or_do_not_fit_are_refused(two_steps) -> None:  # type: ignore[no-untyped-def]
    dataset, registry = two_steps
    explainer = Explainer.from_registry(registry)
    batch = _batch(dataset)
    with pytest.raises(HSIDataError, match=r"registry describes training step 200 .* but the data hold the training "
                                           r"steps \[100\], not that one: pass step="):
        explainer.explain(*batch, steps=np.full(dataset.n_scenarios, 100))
    with pytest.raises(HSIDataError, match=r"`step` must be one of the training steps of the data \[100, 200\], but "
                                           r"300 was passed"):
        explainer.explain(*batch, steps=dataset.steps, step=300)
    with pytest.raises(OptionError, match=r"`step=100` picks .* but no `steps` were passed"):
        explainer.explain(*batch, step=100)
    with pytest.raises(OptionError, match=rf"each of the {dataset.n_scenarios} scenarios .* but 3 steps were passed"):
        explainer.explain(*batch, steps=[100, 200, 200])
    with pytest.raises(OptionError, match="`steps` must be integer training steps"):
        explainer.explain(*batch, steps=dataset.steps.astype(float))


def test_a_registry_without_a_step_explains_every_step_given_with_a_warning(two_steps) -> None:  # type: ignore[no-untyped-def]
    dataset, registry = two_steps
    explainer = Explainer.from_registry(_stepless(registry))
    assert explainer.step is None
    with pytest.warns(RegistryStepWarning, match=r"does not say which training step it describes, and the data hold "
                                                 r"the 2 training steps 100 and 200"):
        explanation = explainer.explain(*_batch(dataset), steps=dataset.steps)
    assert explanation.claims["scenario"].nunique() == dataset.n_scenarios
    np.testing.assert_array_equal(explanation.claims["step"], dataset.steps)
    assert explanation.claims["note"].isna().all()
    one_step = explainer.explain(*_batch(dataset), steps=dataset.steps, step=100)  # asked: no warning
    assert one_step.claims["scenario"].nunique() == int((dataset.steps == 100).sum())
    assert "the registry does not say which step it describes" in one_step.heading
    pooled = {**registry, "_meta": {"data_summary": {"steps": [100, 200], "step_selection": {"step": None,
                                                                                             "pooled": True}}}}
    with pytest.warns(RegistryStepWarning, match=r"the registry pools the 2 training steps 100 and 200"):
        Explainer.from_registry(pooled).explain(*_batch(dataset), steps=dataset.steps)


def test_without_steps_what_is_given_is_explained_as_before(two_steps) -> None:  # type: ignore[no-untyped-def]
    dataset, registry = two_steps
    explanation = Explainer.from_registry(registry).explain(*_batch(dataset))
    assert explanation.heading is None and explanation.claims["scenario"].nunique() == dataset.n_scenarios
    assert explanation.claims["step"].isna().all()
