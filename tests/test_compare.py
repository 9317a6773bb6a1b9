"""Comparing runs: heads matched across runs, margins, stability, and the replication of functions over runs.

The assignment and its margin are checked against a brute-force loop over every assignment
(:func:`itertools.permutations`), the intervals against :func:`scipy.stats.binomtest` and statsmodels; runs are
synthetic, their heads planted in another order in each run and one function left out of one run.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from hsi_stats import HSIDataset, HSIResult, analyze, compare_runs
from hsi_stats._validation import HSIDataError, OptionError
from hsi_stats.compare import ComparisonWarning, RunComparison, clopper_pearson
from hsi_stats.evolution import EvolutionResult
from hsi_stats.inference.matching import best_assignment, match_stability, profile_similarity
from hsi_stats.outputs import write_tables
from hsi_stats.synthetic import HeadSpec, default_heads, generate

PLANTED = default_heads()[:4]  # ttc, distance_to_ego, is_left, is_ahead
#: Run -> the planted head (index into PLANTED, None for a head with no effect) at each position.
LAYOUTS = {"seed0": [0, 1, 2, 3], "seed1": [2, 0, 3, 1], "seed2": [3, None, 1, 0]}  # is_left missing from seed2
EXPECTED = {"Safety Head": 3, "Proximity Head": 3, "Traffic Flow Head": 3, "Left Lane Head": 2}


def _specs(layout: list[int | None]) -> list[HeadSpec]:
    return [HeadSpec(f"h{i}", slot_preference=1.5) if k is None else replace(PLANTED[k], name=f"h{i}")
            for i, k in enumerate(layout)]


@pytest.fixture(scope="module")
def runs() -> list[HSIResult]:
    return [analyze(generate(n_episodes=30, n_steps=10, heads=_specs(layout), rng=seed).dataset, n_resamples=199,
                    rng=seed) for seed, layout in enumerate(LAYOUTS.values())]


@pytest.fixture(scope="module")
def comparison(runs: list[HSIResult]) -> RunComparison:
    return compare_runs(runs, names=list(LAYOUTS), n_resamples=99, rng=0)


@pytest.fixture(scope="module")
def folders(runs: list[HSIResult], tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    for name, result in zip(LAYOUTS, runs, strict=True):
        write_tables(result, root / name)
    return [root / name for name in LAYOUTS]


def _true_reference(run: str, position: int) -> str | None:
    """The reference head planted with the same function as head ``position`` of ``run`` (None: no function)."""
    planted = LAYOUTS[run][position]
    return None if planted is None else f"h{LAYOUTS['seed0'].index(planted)}"


# ------------------------------------------------------------------------------------------------ recovery
def test_the_matching_recovers_the_permutation(comparison: RunComparison) -> None:
    for row in comparison.matches.itertuples():
        expected = _true_reference(row.run, int(row.head[1:]))
        if expected is None:  # the head with no function takes the reference head left over: the missing one
            assert row.reference_head == "h2" and row.reference_label == "Left Lane Head"
        else:
            assert row.reference_head == expected, row
            assert row.similarity > 0.8


def test_replication_counts_are_a_hand_count_with_exact_intervals(comparison: RunComparison,
                                                                  runs: list[HSIResult]) -> None:
    functions = comparison.functions.set_index("label")
    assert dict(functions["runs_with"]) == EXPECTED
    for label, k in EXPECTED.items():
        by_hand = sum(bool(((r.heads["label"] == label) & r.heads["validated"]).any()) for r in runs)
        assert by_hand == k
        interval = binomtest(k, 3).proportion_ci(confidence_level=0.95, method="exact")
        assert functions.loc[label, "runs"] == 3 and functions.loc[label, "rate"] == pytest.approx(k / 3)
        assert functions.loc[label, ["ci_low", "ci_high"]].tolist() == pytest.approx([interval.low, interval.high])
    assert functions.loc["Safety Head", ["ci_low", "ci_high"]].tolist() == pytest.approx([0.2924, 1.0], abs=1e-4)
    assert "seed2: none" in functions.loc["Left Lane Head", "carried_by"]


@pytest.mark.parametrize(("k", "n"), [(0, 1), (0, 5), (2, 3), (3, 3), (7, 10)])
def test_clopper_pearson_agrees_with_statsmodels(k: int, n: int) -> None:
    assert clopper_pearson(k, n, 0.9) == pytest.approx(proportion_confint(k, n, alpha=0.1, method="beta"))


# ------------------------------------------------------------------------------------------------ brute force
def _brute_force(similarity: np.ndarray) -> tuple[list[int], float, float]:
    """Every assignment of the smaller side into the larger: the best (as columns per row), its total and the
    second-best total (-inf when there is only one)."""
    s = np.where(np.isnan(similarity), 0.0, similarity)
    flipped = s.shape[0] > s.shape[1]
    s = s.T if flipped else s
    totals = sorted(((sum(s[i, j] for i, j in enumerate(p)), p)
                     for p in itertools.permutations(range(s.shape[1]), s.shape[0])), reverse=True)
    best = list(totals[0][1])
    if flipped:
        best = [best.index(i) if i in best else -1 for i in range(s.shape[1])]
    return best, totals[0][0], totals[1][0] if len(totals) > 1 else -np.inf


def test_assignment_and_margin_agree_with_every_permutation(comparison: RunComparison) -> None:
    for run in comparison.runs[1:]:
        table = comparison.similarity[comparison.similarity["run"] == run]
        matrix = table.pivot(index="reference_head", columns="head", values="similarity").to_numpy()
        best, total, second = _brute_force(matrix)
        rows = comparison.matches[comparison.matches["run"] == run]
        assert [int(h[1:]) for h in rows.sort_values("reference_head")["head"]] == best
        assert rows["margin"].iloc[0] == pytest.approx(total - second)
        assert rows["pair_margin"].min() == pytest.approx(total - second)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 5), st.integers(1, 5)), elements=st.floats(-1, 1)))
def test_best_assignment_is_the_brute_force_optimum(similarity: np.ndarray) -> None:
    found = best_assignment(similarity)
    _, total, second = _brute_force(similarity)
    assert found.total == pytest.approx(total, abs=1e-12)
    if np.isfinite(second):
        assert found.margin == pytest.approx(total - second, abs=1e-12)
    else:
        assert found.margin == np.inf
    for k, (i, j) in enumerate(zip(found.reference, found.other, strict=True)):  # each pair's margin, by brute force
        others = [sum(similarity[a, p[a]] for a in range(similarity.shape[0]))
                  for p in itertools.permutations(range(similarity.shape[1]), similarity.shape[0]) if p[i] != j] \
            if similarity.shape[0] <= similarity.shape[1] else None
        if others is not None:
            expected = total - max(others) if others else np.inf
            assert found.pair_margins[k] == pytest.approx(expected, abs=1e-12)


# ------------------------------------------------------------------------------------------------ invariants
_profiles = arrays(np.float64, st.tuples(st.integers(2, 6), st.just(5)), elements=st.floats(-1, 1))


def _distinct(profiles: np.ndarray) -> bool:
    s = profile_similarity(profiles, profiles)
    off = s[~np.eye(len(s), dtype=bool)]
    return bool(np.isfinite(s).all() and (off < 1 - 1e-6).all())


@settings(max_examples=60, deadline=None)
@given(_profiles)
def test_a_run_matched_to_itself_is_the_identity_with_similarity_one(profiles: np.ndarray) -> None:
    if not _distinct(profiles):
        return
    found = best_assignment(profile_similarity(profiles, profiles))
    assert found.other.tolist() == list(range(len(profiles)))
    assert found.total == pytest.approx(len(profiles))


@settings(max_examples=60, deadline=None)
@given(_profiles, _profiles, st.randoms(use_true_random=False))
def test_relabelling_a_runs_heads_permutes_its_matches(reference: np.ndarray, other: np.ndarray, random) -> None:
    permutation = list(range(len(other)))
    random.shuffle(permutation)
    before = best_assignment(profile_similarity(reference, other))
    after = best_assignment(profile_similarity(reference, other[permutation]))
    if before.margin < 1e-9:  # a tie: either optimum is right
        return
    assert [permutation[j] for j in after.other] == before.other.tolist()
    assert after.total == pytest.approx(before.total)


def test_relabelling_the_heads_of_an_analysed_run_permutes_the_matches(runs: list[HSIResult],
                                                                        comparison: RunComparison) -> None:
    ds = runs[1].dataset
    assert isinstance(ds, HSIDataset)
    order = [3, 1, 0, 2]
    shuffled = HSIDataset(ds.attention[:, order, :], {f: ds.features[f] for f in ds.feature_names}, mask=ds.mask,
                          groups=ds.groups, head_names=[f"g{k}" for k in range(4)])
    again = compare_runs([runs[0], analyze(shuffled, n_resamples=199, rng=1)], n_resamples=99, rng=0)
    before = comparison.matches[comparison.matches["run"] == "seed1"].set_index("head")["reference_head"]
    after = again.matches.set_index("head")["reference_head"]
    assert {f"g{k}": before[f"h{h}"] for k, h in enumerate(order)} == dict(after)


def test_the_reference_matched_to_itself(runs: list[HSIResult]) -> None:
    itself = compare_runs([runs[0], runs[0]], n_resamples=99, rng=0)
    assert (itself.matches["head"] == itself.matches["reference_head"]).all()
    assert itself.matches["similarity"].to_numpy() == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------------ stability
def test_stability_is_a_share_of_resamples_and_repeats_with_the_seed(runs: list[HSIResult],
                                                                     comparison: RunComparison) -> None:
    stability = comparison.matches["stability"].to_numpy()
    assert np.isfinite(stability).all() and ((stability >= 0) & (stability <= 1)).all()
    assert np.allclose(stability * 99, np.round(stability * 99))
    planted = comparison.matches["label"] != "General Context Head"
    assert (comparison.matches.loc[planted, "stability"] > 0.9).all()
    again = compare_runs(runs, names=list(LAYOUTS), n_resamples=99, rng=0, batch=7)
    pd.testing.assert_frame_equal(again.matches, comparison.matches)
    assert not compare_runs(runs, names=list(LAYOUTS), n_resamples=99, rng=1).matches["stability"].equals(
        comparison.matches["stability"])


def test_match_stability_counts_resamples_that_keep_each_pair() -> None:
    reference = np.array([[[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]]] * 4)
    other = reference.copy()
    other[:1] = reference[:1, ::-1]  # the first resample swaps the two heads
    pairs = best_assignment(profile_similarity(reference[0], reference[0]))
    assert match_stability(reference, other, pairs).tolist() == [0.75, 0.75]


def test_ambiguous_matches_never_count_as_a_replicated_profile(runs: list[HSIResult]) -> None:
    strict = compare_runs(runs, names=list(LAYOUTS), by="joint", min_match_stability=1.0, n_resamples=99, rng=0)
    loose = compare_runs(runs, names=list(LAYOUTS), by="joint", min_match_stability=0.0, n_resamples=99, rng=0)
    for frame in (strict, loose):
        planted = frame.matches[frame.matches["label"] != "General Context Head"]
        assert all(row.reference_head == _true_reference(row.run, int(row.head[1:])) for row in planted.itertuples())
    profiles = loose.functions[loose.functions["kind"] == "profile"].set_index("label")
    assert (profiles["runs"] == 2).all()
    ahead = next(label for label in profiles.index if "is_ahead +" in label)
    assert profiles.loc[ahead, "runs_with"] == 2
    strict_profiles = strict.functions[strict.functions["kind"] == "profile"]
    ambiguous_everywhere = strict.matches["stability"] < 1.0
    assert (strict_profiles["runs_with"] <= loose.functions[loose.functions["kind"] == "profile"]["runs_with"]
            .to_numpy()).all()
    if ambiguous_everywhere.all():
        assert (strict_profiles["runs_with"] == 0).all()


# ------------------------------------------------------------------------------------------------ folders
def test_folders_give_the_matches_and_functions_of_the_results(folders: list[Path],
                                                               comparison: RunComparison) -> None:
    read = compare_runs(folders)
    assert read.runs == tuple(LAYOUTS)
    same = ["run", "head", "reference_head", "similarity", "margin", "pair_margin", "label", "reference_label"]
    pd.testing.assert_frame_equal(read.matches[same], comparison.matches[same])
    assert read.matches["stability"].isna().all()
    assert (read.matches["ambiguous"] == (read.matches["pair_margin"] < 0.1)).all()
    columns = ["label", "runs_with", "runs", "rate", "ci_low", "ci_high", "kind"]
    pd.testing.assert_frame_equal(read.functions[columns], comparison.functions[columns])
    assert "stability is missing" in read.summary()


def test_settings_that_change_rho_are_refused_and_others_warned(folders: list[Path], tmp_path: Path) -> None:
    def altered(name: str, **changes: object) -> Path:
        copy = tmp_path / name
        shutil.copytree(folders[1], copy)
        registry = json.loads((copy / "head_functions.json").read_text())
        registry["_meta"]["settings"].update(changes)
        (copy / "head_functions.json").write_text(json.dumps(registry))
        return copy

    with pytest.raises(HSIDataError, match=r"pooled.*estimator='within' vs 'pooled'"):
        compare_runs([folders[0], altered("pooled", estimator="pooled")])
    with pytest.warns(ComparisonWarning, match=r"alpha=0.05 vs 0.01"):
        compare_runs([folders[0], altered("strict", alpha=0.01)])


def test_bad_input_gets_one_clear_error(folders: list[Path], tmp_path: Path, runs: list[HSIResult]) -> None:
    with pytest.raises(HSIDataError, match="at least 2 runs, but 1 was given"):
        compare_runs([folders[0]])
    with pytest.raises(HSIDataError, match=r"not an analysis output folder.*heads.csv"):
        compare_runs([folders[0], tmp_path])
    fewer = tmp_path / "fewer"
    shutil.copytree(folders[1], fewer)
    pairs = pd.read_csv(fewer / "pairs.csv")
    pairs[pairs["feature"] != "ttc"].to_csv(fewer / "pairs.csv", index=False)
    with pytest.raises(HSIDataError, match=re.escape(f"{fewer}: the runs must have the same features")):
        compare_runs([folders[0], fewer])
    no_joint = tmp_path / "no_joint"
    shutil.copytree(folders[1], no_joint)
    (no_joint / "joint.csv").unlink()
    with pytest.raises(HSIDataError, match="by='joint' needs the joint model of every run, but no_joint"):
        compare_runs([folders[0], no_joint], by="joint")
    with pytest.raises(OptionError, match=r"`names` must be None or 2 distinct"):
        compare_runs(runs[:2], names=["a"])
    with pytest.raises(OptionError, match=r"`by` must be one of \{'rho', 'joint'\}, but 'hsi'"):
        compare_runs(runs[:2], by="hsi")
    with pytest.raises(OptionError, match=r"`min_match_stability` must be a number in \[0, 1\], but 2"):
        compare_runs(runs[:2], min_match_stability=2)
    with pytest.raises(OptionError, match=r"`n_resamples` must be an integer >= 1, but 0"):
        compare_runs(runs[:2], n_resamples=0)


def test_emergence_steps_come_from_the_evolution_results(runs: list[HSIResult]) -> None:
    def evolution(steps: dict[str, int | None]) -> EvolutionResult:
        return EvolutionResult(per_step=pd.DataFrame(), trends=pd.DataFrame(), emergence=steps, results={},
                               steps=(0, 1), settings={}, provenance={})

    found = compare_runs(runs[:2], names=["a", "b"], n_resamples=9, rng=0, evolution=[
        evolution({"h0": 300, "h1": None, "h2": 500, "h3": 400}), None])
    safety = found.carriers[(found.carriers["label"] == "Safety Head")].set_index("run")
    assert safety.loc["a", "emerges_at"] == 300 and pd.isna(safety.loc["b", "emerges_at"])
    assert "emerged at step 300" in found.functions.set_index("label").loc["Safety Head", "carried_by"]
    with pytest.raises(HSIDataError, match=r"`evolution\[0\]` must have the heads of run a"):
        compare_runs(runs[:2], names=["a", "b"], evolution=[evolution({"x": 1}), None])


def test_unequal_numbers_of_heads_leave_heads_unmatched(runs: list[HSIResult]) -> None:
    ds = runs[1].dataset
    assert isinstance(ds, HSIDataset)
    three = analyze(ds.select(heads=["h0", "h1", "h2"]), n_resamples=199, rng=0)
    found = compare_runs([three, runs[0]], n_resamples=19, rng=0)
    unmatched = found.matches[found.matches["reference_head"].isna()]
    assert len(unmatched) == 1 and bool(unmatched["ambiguous"].iloc[0])
    assert any("left unmatched" in note for note in found.notes)


def test_the_figure_puts_matched_heads_on_the_same_row(comparison: RunComparison) -> None:
    import matplotlib.pyplot as plt

    from hsi_stats.report.figures.compare import run_heatmaps

    fig = run_heatmaps(comparison)
    panels = [ax for ax in fig.axes if ax.get_visible() and ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["seed0 (reference)", "seed1", "seed2"]
    for run, ax in zip(comparison.runs, panels, strict=True):
        shown = [t.get_text().removesuffix(" ?") for t in ax.get_yticklabels()]
        assert shown == [h or "" for h in comparison.order(run)]
        if run != "seed0":
            rows = comparison.matches[comparison.matches["run"] == run].set_index("reference_head")["head"]
            assert shown == [rows[f"h{i}"] for i in range(4)]
    plt.close(fig)
