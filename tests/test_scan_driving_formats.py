"""Scans of the driving formats (:func:`hsi_stats.scan` over log folders and extractions): one file (or file pair)
at a time, the numbers, notes, warnings and errors of the same files loaded in memory.

A generated run over three checkpoints is written as two-directory logs and as extraction files (the last one as
``model_final``); ``analyze`` and ``analyze_evolution`` of the scan and of the loaded data set, with the same seed,
must agree to 1e-9.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from hsi_stats import analyze, analyze_evolution, estimate, scan
from hsi_stats._validation import DataAlignmentWarning, HSIDataError, OptionError
from hsi_stats.io import load_extraction, load_logs, write_extraction
from hsi_stats.synthetic import generate, write_driving_logs
from tests.test_shards import SUPPORTED, _assert_same_analysis, _assert_same_evolution

CHECKPOINTS = (0, 1, 2)


@pytest.fixture(scope="module")
def run():  # type: ignore[no-untyped-def]
    return generate(n_episodes=14, n_steps=5, checkpoints=CHECKPOINTS, specialise=(0, 2), rng=4)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory, run) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("logs")
    write_driving_logs(run, root / "features", root / "attention", rng=0)
    return root / "features", root / "attention"


@pytest.fixture(scope="module")
def extractions(tmp_path_factory: pytest.TempPathFactory, run) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("extraction")
    dataset = run.dataset
    named = type(dataset)(dataset.attention, dataset.features, mask=dataset.mask, groups=dataset.groups,
                          steps=dataset.steps, head_names=dataset.head_names, step_names={2: "final"})
    write_extraction(named, folder)
    assert sorted(p.name for p in folder.iterdir()) == ["extraction_0.pkl", "extraction_1.pkl",
                                                        "extraction_model_final.pkl"]
    return folder


def test_a_scan_of_logs_reads_one_pair_per_shard(logs: tuple[Path, Path]) -> None:
    lazy = scan(logs[0], attention_dir=logs[1])
    loaded = load_logs(*logs)
    assert len(lazy.paths) == 2 * len(CHECKPOINTS)  # a feature log and its attention file per checkpoint
    assert (lazy.n_scenarios, lazy.n_groups, lazy.head_names, lazy.feature_names) == (
        loaded.n_scenarios, loaded.n_groups, loaded.head_names, loaded.feature_names)
    np.testing.assert_array_equal(lazy.steps, loaded.steps)
    np.testing.assert_array_equal(lazy.groups, loaded.groups)
    assert lazy.notes == loaded.notes


@pytest.mark.parametrize("name", ["within-rank-feature", "fisher-spearman", "within-slot-pearson"])
def test_a_scan_of_logs_gives_the_numbers_of_the_loaded_logs(name: str, logs: tuple[Path, Path]) -> None:
    options = SUPPORTED[name]
    lazy, loaded = scan(logs[0], attention_dir=logs[1]), load_logs(*logs)
    np.testing.assert_allclose(estimate(lazy.select(scenarios=lazy.steps == 1), **options).rho,
                               estimate(loaded.select(scenarios=loaded.steps == 1), **options).rho,
                               rtol=0, atol=1e-12)
    _assert_same_analysis(analyze(lazy, n_resamples=199, rng=3, **options),
                          analyze(loaded, n_resamples=199, rng=3, **options))


def test_a_scan_of_extractions_gives_the_numbers_and_the_final_step(extractions: Path) -> None:
    lazy, loaded = scan(extractions), load_extraction(extractions)
    assert dict(lazy.step_names) == dict(loaded.step_names) == {2: "final"}
    assert lazy.notes == loaded.notes and lazy.notes[0].startswith("Step 2 is the final checkpoint")
    np.testing.assert_array_equal(lazy.steps, loaded.steps)
    _assert_same_analysis(analyze(lazy, n_resamples=199, rng=5), analyze(loaded, n_resamples=199, rng=5))
    one = extractions / "extraction_1.pkl"
    assert scan(one).n_scenarios == load_extraction(one).n_scenarios == int(np.sum(loaded.steps == 1))


def test_the_evolution_of_a_scan_of_logs(logs: tuple[Path, Path]) -> None:
    a = analyze_evolution(scan(logs[0], attention_dir=logs[1]), n_resamples=99, trend_resamples=99, rng=2)
    b = analyze_evolution(load_logs(*logs), n_resamples=99, trend_resamples=99, rng=2)
    _assert_same_evolution(a, b)


def test_a_scan_of_logs_warns_and_notes_as_the_loader(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    features, attention = tmp_path / "f", tmp_path / "a"
    write_driving_logs(run, features, attention, include_object_ids=False, include_steps=False, rng=0)
    with pytest.warns(DataAlignmentWarning) as loaded_warnings:
        loaded = load_logs(features, attention, step_range=(1, 2))
    with pytest.warns(DataAlignmentWarning) as scanned_warnings:
        lazy = scan(features, attention_dir=attention, step_range=(1, 2))
    assert [str(w.message) for w in scanned_warnings] == [str(w.message) for w in loaded_warnings]
    assert lazy.notes == loaded.notes and len(lazy.notes) == 2
    assert sorted(np.unique(lazy.steps).tolist()) == [1, 2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataAlignmentWarning)
        _assert_same_analysis(analyze(lazy, n_resamples=99, rng=0), analyze(loaded, n_resamples=99, rng=0))


def test_scans_of_the_driving_formats_refuse_what_the_loaders_refuse(tmp_path: Path, run,  # type: ignore[no-untyped-def]
                                                                     logs: tuple[Path, Path]) -> None:
    with pytest.raises(OptionError, match="pass their attention files' folder as `attention_dir`"):
        scan(logs[0])
    with pytest.raises(OptionError, match=r"scan of npz takes the options none, but \['pair_by'\]"):
        scan(tmp_path, pair_by="step")
    with pytest.raises(OptionError, match=r"scan of logs takes the options pair_by, step_range, attention_key, "
                                          r"trust_pickle, but \['features'\]"):
        scan(logs[0], attention_dir=logs[1], features=["ttc"])
    features, attention = tmp_path / "f", tmp_path / "a"
    write_driving_logs(run, features, attention, rng=0)
    (attention / "attention_scenario_0001.pkl").unlink()
    with pytest.raises(HSIDataError, match="has no attention file of that step"):
        scan(features, attention_dir=attention)


def test_a_shard_changed_after_its_scan_is_refused(tmp_path: Path, run) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "e"
    write_extraction(run.dataset, folder)
    lazy = scan(folder)
    path = folder / "extraction_1.pkl"
    content = pickle.loads(path.read_bytes())
    content["scenarios"] = content["scenarios"][:-1]
    path.write_bytes(pickle.dumps(content))
    with pytest.raises(HSIDataError, match=r"extraction_1\.pkl: the shard changed since it was scanned"):
        estimate(lazy.select(scenarios=lazy.steps == 1))
