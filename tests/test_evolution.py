"""``hsi_stats.evolution``: the analysis per training step, the trend over training and the emergence step.

The end-to-end checks use a synthetic run whose planted heads specialise over training: 10 checkpoints 100k..1M,
planted window (300k, 800k) (effects absent up to 300k, growing linearly, complete from 800k on), 30 episodes x 20
steps per checkpoint. The trend test's size and power are measured by ``benchmarks/trend_study.py``
(docs/guides/evolution.md): at K = 10 with 40 episodes every planted head is found in every run; under no change the
family-wise error over the 8 heads is at the nominal 5%, so the assertions on no-effect heads below (at most one
adjusted p-value below 0.05, at least two above 0.01) fail with probability well under 1e-3. The statistics of the
test itself are checked in ``tests/test_trend.py``; the acceptance run of 5 checkpoints (effects 0, 0, 0.5, 1, 1) is
here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from hsi_stats import analyze_evolution
from hsi_stats._validation import ConstantInputWarning
from hsi_stats.data import HSIDataset
from hsi_stats.evolution import PER_STEP_COLUMNS, EvolutionResult, _emergence_step
from hsi_stats.synthetic import generate, specialising_heads

CHECKPOINTS = tuple(range(100_000, 1_100_000, 100_000))
WINDOW = (300_000, 800_000)
PLANTED = ("h0", "h1", "h2", "h3")
NULL = ("h4", "h5", "h6", "h7")


@pytest.fixture(scope="module")
def evolution() -> EvolutionResult:
    run = generate(n_episodes=30, n_steps=20, checkpoints=CHECKPOINTS, specialise=WINDOW, rng=20240611)
    assert [t.emergence for t in run.truth] == [WINDOW] * 4 + [None] * 4
    return analyze_evolution(run.dataset, n_resamples=199, rng=7)


@pytest.fixture(scope="module")
def small_run_dataset() -> HSIDataset:
    run = generate(n_episodes=8, n_steps=6, checkpoints=(0, 10, 20, 30, 40, 50), specialise=(0, 50), rng=3)
    return run.dataset


# ------------------------------------------------------------------------------------------- the run
@pytest.mark.slow  # the run of 10 checkpoints
def test_trend_is_detected_for_planted_heads_only(evolution: EvolutionResult) -> None:
    trends = evolution.trends.set_index("head")
    assert list(trends.index) == [f"h{h}" for h in range(8)]
    planted, null = trends.loc[list(PLANTED)], trends.loc[list(NULL)]
    assert (planted["p_adjusted"] < 0.05).all(), planted
    assert (planted["slope"] > 0).all() and (planted["ci_low"] > 0).all()
    assert planted["trend"].str.endswith("relation strengthens (|rho| grows)").all()
    assert list(planted["feature"]) == ["ttc", "distance_to_ego", "is_left", "is_ahead"]
    assert (trends["n_steps"] == 10).all()
    counts = trends["p_value"] * 10_000  # Monte Carlo p-values (1 + k) / (1 + B), never 0
    np.testing.assert_allclose(counts, np.round(counts), rtol=0, atol=1e-6)
    assert (trends["p_adjusted"] >= trends["p_value"]).all() and (trends["p_value"] >= 1 / 10_000).all()
    assert (null["p_adjusted"] < 0.05).sum() <= 1 and (null["p_adjusted"] > 0.01).sum() >= 2, null


def test_acceptance_run_of_five_checkpoints() -> None:
    # Effects 0, 0, 0.5, 1, 1 x the planted strength, 50 episodes per checkpoint.
    run = generate(n_episodes=50, n_steps=10, checkpoints=(1, 2, 3, 4, 5), heads=specialising_heads(2, 4), rng=9)
    assert [run.heads[0].effect_scale(c) for c in (1, 2, 3, 4, 5)] == [0, 0, 0.5, 1, 1]
    evo = analyze_evolution(run.dataset, n_resamples=199, trend_resamples=999, rng=1)
    trends = evo.trends.set_index("head")
    assert (trends.loc[list(PLANTED), "p_adjusted"] < 0.05).all(), trends
    assert (trends.loc[list(NULL), "p_adjusted"] > 0.01).sum() >= 2, trends
    for head in PLANTED:
        assert evo.emergence[head] in (3, 4), (head, evo.emergence[head])
        row = trends.loc[head]
        assert row["emerges_at"] == evo.emergence[head] and row["emergence_ci_low"] < row["emergence_ci_high"]


@pytest.mark.slow  # the run of 10 checkpoints
def test_emergence_lies_in_the_planted_window(evolution: EvolutionResult) -> None:
    for head in PLANTED:
        step = evolution.emergence[head]
        assert step is not None and WINDOW[0] <= step <= WINDOW[1], (head, step)
    labels = evolution.per_step.query("step == 1000000").set_index("head")["label"]
    assert list(labels[list(PLANTED)]) == ["Safety Head", "Proximity Head", "Left Lane Head", "Traffic Flow Head"]
    for head in NULL:
        assert evolution.emergence[head] is None


@pytest.mark.slow  # the run of 10 checkpoints
def test_emergence_matches_a_direct_scan(evolution: EvolutionResult) -> None:
    for head, rows in evolution.per_step.groupby("head"):
        rows = rows.sort_values("step")
        steps, labels, ok = rows["step"].tolist(), rows["label"].tolist(), rows["validated"].tolist()
        expected = None
        for i, step in enumerate(steps):
            if all(ok[j] and labels[j] == labels[-1] for j in range(i, len(steps))):
                expected = step
                break
        assert evolution.emergence[head] == expected, head


@pytest.mark.slow  # the run of 10 checkpoints
def test_per_step_table(evolution: EvolutionResult) -> None:
    frame = evolution.per_step
    assert list(frame.columns) == list(PER_STEP_COLUMNS) == [
        "step", "head", "hsi", "ci_low", "ci_high", "primary_feature", "label_feature", "label_rho", "label_ci_low",
        "label_ci_high", "label_focus", "label", "validated"]
    assert len(frame) == 10 * 8
    assert list(frame["step"].unique()) == list(CHECKPOINTS) == list(evolution.steps)
    assert frame["step"].dtype == np.int64 and frame["validated"].dtype == bool
    assert frame["hsi"].notna().all() and (frame["ci_low"] <= frame["hsi"]).all()
    for step, result in evolution.results.items():
        rows = frame[frame["step"] == step].reset_index(drop=True)
        pd.testing.assert_frame_equal(rows.drop(columns="step"),
                                      result.heads[list(PER_STEP_COLUMNS[1:])].reset_index(drop=True))
    pd.testing.assert_frame_equal(evolution.to_frame(), frame)
    assert evolution.to_frame() is not frame
    assert evolution.settings["n_resamples"] == 199 and evolution.settings["trend_resamples"] == 9999
    assert evolution.settings["estimator"] == "within" and "rng" not in evolution.settings
    assert evolution.provenance["seed"] == 7 and evolution.notes == ()


@pytest.mark.slow  # the run of 10 checkpoints
def test_planted_hsi_grows_across_the_window(evolution: EvolutionResult) -> None:
    hsi = evolution.per_step.pivot(index="step", columns="head", values="hsi")
    before, after = hsi.loc[[100_000, 200_000, 300_000]], hsi.loc[[800_000, 900_000, 1_000_000]]
    assert (after[list(PLANTED)].min() > before[list(PLANTED)].max() + 0.1).all()


def test_same_rng_gives_identical_numbers(small_run_dataset: HSIDataset) -> None:
    first = analyze_evolution(small_run_dataset, n_resamples=99, trend_resamples=99, rng=5)
    second = analyze_evolution(small_run_dataset, n_resamples=99, trend_resamples=99, rng=5)
    pd.testing.assert_frame_equal(first.per_step, second.per_step)
    pd.testing.assert_frame_equal(first.trends, second.trends)
    assert dict(first.emergence) == dict(second.emergence)
    generator = analyze_evolution(small_run_dataset, n_resamples=99, trend_resamples=99,
                                  rng=np.random.default_rng(5))
    pd.testing.assert_frame_equal(first.per_step, generator.per_step)
    assert generator.provenance["seed"] == "user-supplied Generator"
    other = analyze_evolution(small_run_dataset, n_resamples=99, trend_resamples=99, rng=6)
    assert not np.array_equal(first.per_step["ci_low"], other.per_step["ci_low"])


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
def test_a_seed_is_drawn_and_recorded_when_rng_is_none(small_run_dataset: HSIDataset) -> None:
    evo = analyze_evolution(small_run_dataset.select(step_range=(0, 10)), n_resamples=19, trend_resamples=9)
    seed = evo.provenance["seed"]
    assert isinstance(seed, int)
    again = analyze_evolution(small_run_dataset.select(step_range=(0, 10)), n_resamples=19, trend_resamples=9,
                              rng=seed)
    pd.testing.assert_frame_equal(evo.per_step, again.per_step)


# ------------------------------------------------------------------------------------------ edge cases
def test_a_step_with_a_single_group_gives_nan_rows(small_run_dataset: HSIDataset) -> None:
    ds = small_run_dataset
    groups = np.where(ds.steps == 20, "lonely", ds.groups)
    evo = analyze_evolution(ds.with_groups(groups), n_resamples=99, trend_resamples=999, rng=2)
    rows = evo.per_step[evo.per_step["step"] == 20]
    assert len(rows) == 8 and rows["hsi"].isna().all()
    assert rows["ci_low"].isna().all() and rows["ci_high"].isna().all()
    assert rows["primary_feature"].isna().all()
    assert (rows["label"] == "General Context Head").all() and not rows["validated"].any()
    assert 20 not in evo.results and sorted(evo.results) == [0, 10, 30, 40, 50]
    assert len(evo.notes) == 1 and "step 20" in evo.notes[0] and "1 group" in evo.notes[0]
    # The trend is tested at the episode level: a checkpoint of one episode still takes part.
    assert (evo.trends["n_steps"] == 6).all() and evo.trends["p_value"].notna().all()
    for step in evo.emergence.values():  # a label cannot stay validated through the unanalysed step
        assert step is None or step > 20


def test_one_episode_per_checkpoint_cannot_show_a_trend() -> None:
    run = generate(n_episodes=1, n_steps=4, checkpoints=(0, 1), rng=0)
    with pytest.warns(ConstantInputWarning, match="is_left"):  # no vehicle on the left in these 8 scenarios
        evo = analyze_evolution(run.dataset, n_resamples=9, trend_resamples=99, rng=0)
    assert evo.per_step["hsi"].isna().all() and len(evo.notes) == 2 and not evo.results
    # Two episodes can be assigned to two checkpoints in 2 ways: no p-value below 1/2 (up to Monte-Carlo error).
    assert (evo.trends["p_value"] > 0.3).all()
    assert set(evo.emergence.values()) == {None} and evo.trends["emerges_at"].isna().all()


def test_emergence_step_helper() -> None:
    steps = [1, 2, 3, 4]
    assert _emergence_step(steps, ["A", "A", "A", "A"], [True, False, True, True]) == 3
    assert _emergence_step(steps, ["A", "B", "B", "A"], [True, True, True, True]) == 4
    assert _emergence_step(steps, ["A", "A", "A", "A"], [True, True, True, True]) == 1
    assert _emergence_step(steps, ["A", "A", "A", "A"], [True, True, True, False]) is None


def test_dataset_without_steps_is_rejected() -> None:
    rng = np.random.default_rng(0)
    ds = HSIDataset(rng.random((20, 2, 4)), {"x": rng.random((20, 4))}, groups=np.repeat(np.arange(5), 4))
    with pytest.raises(ValueError, match=r"needs `steps`.*this dataset has none"):
        analyze_evolution(ds)


def test_a_single_step_is_rejected() -> None:
    run = generate(n_episodes=3, n_steps=2, rng=0)
    with pytest.raises(ValueError, match=r"at least 2 distinct `steps`, but this dataset has 1 \(\[1000000\]\)"):
        analyze_evolution(run.dataset)


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"trend_resamples": 0}, ValueError, r"`trend_resamples` must be an integer >= 1, but 0 was passed"),
    ({"trend_resamples": 9.5}, ValueError, r"`trend_resamples` must be an integer >= 1, but 9.5 was passed"),
    ({"n_resample": 9}, TypeError, r"`analyze_evolution` takes the options \[.*'n_resamples'.*\], but 'n_resample' "
                                   r"was passed"),
    ({"rng": "seed"}, TypeError, r"`rng`"),
])
def test_bad_arguments_are_rejected(small_run_dataset: HSIDataset, kwargs: dict[str, Any], error: type,
                                    message: str) -> None:
    with pytest.raises(error, match=message):
        analyze_evolution(small_run_dataset, **kwargs)
    with pytest.raises(TypeError, match=r"`dataset` must be an HSIDataset \(or a ShardedDataset from "
                                        r"hsi_stats.scan\), but dict was passed"):
        analyze_evolution({})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------ the synthetic option
def test_specialising_heads_scale_the_planted_effect() -> None:
    heads = specialising_heads(*WINDOW)
    assert [h.emergence for h in heads] == [WINDOW] * 4 + [None] * 4
    assert [heads[0].effect_scale(c) for c in (0, 300_000, 550_000, 800_000, 10**7)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    shortcut = generate(n_episodes=3, n_steps=4, checkpoints=(0, 500_000), specialise=WINDOW, rng=1)
    explicit = generate(n_episodes=3, n_steps=4, checkpoints=(0, 500_000), heads=heads, rng=1)
    assert shortcut.dataset.fingerprint() == explicit.dataset.fingerprint()
    plain = generate(n_episodes=3, n_steps=4, checkpoints=(0, 500_000), rng=1)
    # Same traffic and noise; only the planted heads' attention differs, and not before the window.
    first = plain.dataset.steps == 0
    for name in plain.dataset.feature_names:
        np.testing.assert_array_equal(plain.dataset.features[name], shortcut.dataset.features[name])
    np.testing.assert_array_equal(plain.dataset.attention[:, 4:], shortcut.dataset.attention[:, 4:])
    assert not np.allclose(plain.dataset.attention[first, :4], shortcut.dataset.attention[first, :4])
    frame = shortcut.truth_frame()
    assert list(frame["emergence_start"][:4]) == [300_000] * 4 and frame["emergence_end"][4:].isna().all()


def test_an_effect_before_its_window_is_none() -> None:
    # Before the window the planted heads are exactly like heads with no effect and no slot preference.
    from hsi_stats.synthetic import HeadSpec

    late = [HeadSpec("a", "ttc", beta=-3.0, emergence=(10, 20)), HeadSpec("b")]
    flat = [HeadSpec("a"), HeadSpec("b")]
    run_late = generate(n_episodes=2, n_steps=3, checkpoints=(5,), heads=late, rng=4)
    run_flat = generate(n_episodes=2, n_steps=3, checkpoints=(5,), heads=flat, rng=4)
    np.testing.assert_array_equal(run_late.dataset.attention, run_flat.dataset.attention)
    assert run_late.truth[0].emergence == (10, 20)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"emergence": (5, 5)}, r"`emergence` must be None or a pair of integer training steps \(start, end\) "
                            r"with 0 <= start < end, but \(5, 5\) was passed"),
    ({"emergence": (-1, 5)}, r"`emergence` must be None or a pair"),
    ({"emergence": (1.5, 5)}, r"`emergence` must be None or a pair"),
    ({"emergence": "ab"}, r"`emergence` must be None or a pair"),
])
def test_emergence_window_is_validated(kwargs: dict[str, Any], message: str) -> None:
    from hsi_stats.synthetic import HeadSpec

    with pytest.raises(ValueError, match=message):
        HeadSpec("h", "ttc", beta=1.0, **kwargs)
    with pytest.raises(ValueError, match=r"`feature` None has no effect to emerge: `emergence` must be None"):
        HeadSpec("h", emergence=(0, 1))


def test_specialise_is_validated() -> None:
    with pytest.raises(ValueError, match=r"`specialise` must be None or a pair .* but \(3, 1\) was passed"):
        generate(n_episodes=1, n_steps=1, specialise=(3, 1))
    with pytest.raises(ValueError, match=r"With `null=True` .* `specialise` must be None"):
        generate(n_episodes=1, n_steps=1, null=True, specialise=(0, 1))
