"""Data sets in shards (:func:`hsi_stats.scan`): the numbers of the same scenarios in memory, read a shard at a time.

The shards of a generated run are written with episodes split across shards; ``analyze`` of the scan and of the
in-memory data set, with the same seed, must agree to 1e-9 in every point estimate, interval and p-value, for every
estimator and correlation the scan supports. What needs every scenario at once is refused with a clear message.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hsi_stats import HSIDataset, analyze, estimate, load_npz, scan, write_npz, write_report, write_shards
from hsi_stats._validation import ConstantInputWarning, HSIDataError, OptionError
from hsi_stats.synthetic import generate
from tests.test_estimator_properties import COMBOS

SUPPORTED = {name: options for name, options in COMBOS.items() if options["estimator"] != "pooled"}
NUMBERS = {"pairs": ["rho", "ci_low", "ci_high", "p_value", "p_adjusted", "focus", "focus_ci_low", "focus_ci_high",
                     "se"],
           "heads": ["hsi", "ci_low", "ci_high", "hsi_p_value", "hsi_p_adjusted", "selectivity", "label_rho",
                     "label_p_adjusted", "label_stability", "primary_stability"]}


@pytest.fixture(scope="module")
def dataset() -> HSIDataset:
    return generate(n_episodes=14, n_steps=9, rng=6).dataset  # episodes of 9 scenarios, shards of 20


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory, dataset: HSIDataset) -> Path:
    folder = tmp_path_factory.mktemp("shards")
    paths = write_shards(dataset, folder, shard_size=20)
    assert len(paths) == 7
    return folder


def _assert_same_analysis(sharded, in_memory) -> None:
    for table, columns in NUMBERS.items():
        a, b = getattr(sharded, table), getattr(in_memory, table)
        for column in columns:
            np.testing.assert_allclose(a[column].to_numpy(float), b[column].to_numpy(float), rtol=0, atol=1e-9,
                                       equal_nan=True, err_msg=f"{table}.{column}")
    for column in ("label", "validated", "primary_feature", "label_feature", "reasons"):
        pd.testing.assert_series_equal(sharded.heads[column], in_memory.heads[column])
    assert sharded.data_summary["n_entities"] == in_memory.data_summary["n_entities"]
    assert sharded.data_summary["entities_per_scenario"] == in_memory.data_summary["entities_per_scenario"]
    assert sharded.data_summary["left_out"] == in_memory.data_summary["left_out"]


def _assert_same_evolution(a, b) -> None:  # type: ignore[no-untyped-def]
    """Two evolution results with the same numbers (to 1e-9) and the same emergence."""
    for table in ("per_step", "trends"):
        left, right = getattr(a, table), getattr(b, table)
        numeric = right.select_dtypes("number").columns
        np.testing.assert_allclose(left[numeric].to_numpy(float), right[numeric].to_numpy(float), rtol=0, atol=1e-9,
                                   equal_nan=True, err_msg=table)
    assert a.emergence == b.emergence


def test_episodes_span_shards(shards: Path, dataset: HSIDataset) -> None:
    sharded = scan(shards)
    assert sharded.n_scenarios == dataset.n_scenarios and sharded.n_groups == dataset.n_groups
    first, second = (load_npz(path) for path in sharded.paths[:2])
    assert set(first.groups) & set(second.groups)  # an episode in two shards
    np.testing.assert_array_equal(sharded.group_codes, dataset.group_codes)


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_scan_gives_the_numbers_of_the_data_in_memory(name: str, shards: Path, dataset: HSIDataset) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        options = SUPPORTED[name]
        sharded, in_memory = scan(shards), dataset
        np.testing.assert_allclose(estimate(sharded, **options).rho, estimate(in_memory, **options).rho, rtol=0,
                                   atol=1e-12, equal_nan=True)
        _assert_same_analysis(analyze(sharded, n_resamples=199, rng=3, **options),
                              analyze(in_memory, n_resamples=199, rng=3, **options))


def test_steps_are_selected_across_shards(tmp_path: Path) -> None:
    run = generate(n_episodes=12, n_steps=6, checkpoints=(0, 1, 2), specialise=(0, 2), rng=1).dataset
    write_shards(run, tmp_path, shard_size=50)
    for step in (None, 1):
        a = analyze(scan(tmp_path), n_resamples=99, rng=0, step=step)
        b = analyze(run, n_resamples=99, rng=0, step=step)
        _assert_same_analysis(a, b)
        assert a.data_summary["step_selection"] == b.data_summary["step_selection"]


def test_a_glob_and_a_list_of_files_scan_the_same(shards: Path) -> None:
    paths = sorted(shards.glob("*.npz"))
    assert scan(str(shards / "shard-*.npz")).paths == scan(paths).paths == tuple(paths)
    assert scan(paths).fingerprint() == scan(shards).fingerprint()
    assert scan(paths[:3]).fingerprint() != scan(shards).fingerprint()


def test_the_report_of_a_scan_is_written(shards: Path, tmp_path: Path) -> None:
    result = analyze(scan(shards), n_resamples=99, rng=0)
    written = write_report(result, tmp_path / "report", formats="html")
    assert (tmp_path / "report" / "report.html").stat().st_size > 10_000 and "figures/distributions.svg" in written


def test_what_needs_every_scenario_is_refused(shards: Path) -> None:
    sharded = scan(shards)
    with pytest.raises(OptionError, match=r"estimator='pooled'.*shard by shard"):
        analyze(sharded, n_resamples=99, rng=0, estimator="pooled")
    with pytest.raises(OptionError, match=r"scheme='within-group'.*shard by shard"):
        analyze(sharded, n_resamples=99, rng=0, scheme="within-group")


def test_bad_shards_are_refused_with_the_file_named(tmp_path: Path, dataset: HSIDataset) -> None:
    with pytest.raises(HSIDataError, match="holds none"):
        scan(tmp_path)
    write_npz(dataset.select(heads=["h0", "h1"] if "h0" in dataset.head_names else list(dataset.head_names[:2])),
              tmp_path / "a.npz")
    write_npz(dataset, tmp_path / "b.npz")
    with pytest.raises(HSIDataError, match=r"same heads: \S*a\.npz has"):
        scan(tmp_path)
    (tmp_path / "b.npz").unlink()
    (tmp_path / "c.npz").write_text("not a zip")
    with pytest.raises(HSIDataError, match=r"c\.npz. must be an \.npz file"):
        scan(tmp_path)
    (tmp_path / "c.npz").unlink()
    np.savez(tmp_path / "d.npz", attention=np.ones((2, 1, 3)), features=np.ones((2, 1, 3)),
             feature_names=np.array(["x"]), groups=np.array([{"episode": 1}, {"episode": 2}], dtype=object))
    with pytest.raises(HSIDataError, match=r"d\.npz: an array cannot be read without pickle"):
        scan(tmp_path / "d.npz")
    with pytest.raises(HSIDataError, match="`shard_size` must be a positive integer"):
        write_shards(dataset, tmp_path / "x", shard_size=0)


def test_the_evolution_over_training_of_a_scan(tmp_path: Path) -> None:
    from hsi_stats import analyze_evolution

    run = generate(n_episodes=12, n_steps=6, checkpoints=(0, 1, 2), specialise=(0, 2), rng=1).dataset
    write_shards(run, tmp_path, shard_size=50)
    a = analyze_evolution(scan(tmp_path), n_resamples=99, trend_resamples=99, rng=2)
    b = analyze_evolution(run, n_resamples=99, trend_resamples=99, rng=2)
    _assert_same_evolution(a, b)


def test_progress_shows_the_shards(shards: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = analyze(scan(shards), n_resamples=99, rng=0)
    assert "shards" not in capsys.readouterr().err
    shown = analyze(scan(shards), n_resamples=99, rng=0, progress=True)
    err = capsys.readouterr().err
    assert "shards: 100%" in err and "7/7" in err  # a bar over the 7 shards (for each reduction)
    pd.testing.assert_frame_equal(shown.pairs, quiet.pairs, check_exact=True)
