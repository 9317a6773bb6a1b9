"""hsi_stats.compat: the original notebook's API on the toolkit (issue 5)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from hsi_stats import DRIVING_CATALOG, load_logs
from hsi_stats._validation import DataAlignmentWarning, HSIDataError
from hsi_stats.compat import (
    FEATURE_TO_LABEL,
    AttentionLog,
    AttentionLogLoader,
    HeadSpecializationAnalyzer,
    HeadVisualization,
)
from hsi_stats.synthetic import generate, write_driving_logs
from tests.original_method import corrupt_features, original_method

NOTICE = "hsi_stats.compat: compute_hsi() runs hsi_stats.analyze"


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("logs")
    run = generate(n_episodes=12, n_steps=6, checkpoints=(100_000, 200_000, 300_000), rng=0)
    write_driving_logs(run, root / "features", root / "attention", rng=0)
    return root / "features", root / "attention"


@pytest.fixture(scope="module")
def analyzer(logs: tuple[Path, Path]) -> HeadSpecializationAnalyzer:
    analyzer = HeadSpecializationAnalyzer(feature_dir=logs[0], attention_dir=logs[1])
    analyzer.load_data()
    return analyzer


def test_feature_to_label_comes_from_the_catalog() -> None:
    assert FEATURE_TO_LABEL == {feature: meaning.label for feature, meaning in DRIVING_CATALOG.items()}
    assert FEATURE_TO_LABEL["ttc"] == "Safety Head"


def test_logs_hold_the_stored_contents_in_step_order(analyzer: HeadSpecializationAnalyzer,
                                                     logs: tuple[Path, Path]) -> None:
    assert [log.step for log in analyzer.logs] == [100_000, 200_000, 300_000]
    first = analyzer.logs[0]
    assert isinstance(first, AttentionLog)
    stored = pickle.loads((logs[0] / "attention_log_00100000.pkl").read_bytes())
    assert list(first.semantic_features) == list(stored["semantic_features"])
    np.testing.assert_array_equal(first.semantic_features["ttc"], stored["semantic_features"]["ttc"])
    assert first.token_boundaries == stored["token_boundaries"]
    assert first.config == stored["config"]
    assert list(first.attention_weights) == ["other_traj/cross_attn_0"]
    assert first.attention_weights["other_traj/cross_attn_0"].ndim == 4


def test_aggregates_are_the_loaded_dataset(analyzer: HeadSpecializationAnalyzer, logs: tuple[Path, Path]) -> None:
    dataset = load_logs(*logs)
    attention = analyzer.aggregate_attention_by_vehicle()
    assert attention.shape == (216, 8, 8)  # (N, H, V): 12 episodes x 6 steps x 3 checkpoints
    np.testing.assert_array_equal(attention, dataset.attention)
    features = analyzer.aggregate_features()
    assert list(features) == list(dataset.features)
    assert all(values.shape == (216, 8) for values in features.values())


def test_step_range_and_loader(logs: tuple[Path, Path]) -> None:
    analyzer = HeadSpecializationAnalyzer(feature_dir=logs[0], attention_dir=logs[1])
    analyzer.load_data(step_range=(150_000, 300_000))
    assert [log.step for log in analyzer.logs] == [200_000, 300_000]
    assert analyzer.aggregate_attention_by_vehicle().shape[0] == 144
    assert [log.step for log in AttentionLogLoader(*logs).load(step_range=(0, 100_000))] == [100_000]


def test_errors_before_loading_or_computing(logs: tuple[Path, Path], tmp_path: Path) -> None:
    analyzer = HeadSpecializationAnalyzer(feature_dir=logs[0], attention_dir=logs[1])
    with pytest.raises(RuntimeError, match="load_data"):
        analyzer.aggregate_attention_by_vehicle()
    analyzer.load_data()
    with pytest.raises(RuntimeError, match="compute_hsi"):
        analyzer.export_registry(tmp_path / "r.json")
    with pytest.raises(HSIDataError, match="no files matching"):
        HeadSpecializationAnalyzer(feature_dir=tmp_path, attention_dir=logs[1]).load_data()


def test_compute_hsi_runs_analyze_and_prints_one_notice(analyzer: HeadSpecializationAnalyzer,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    result = analyzer.compute_hsi(n_resamples=999, rng=0)
    out = capsys.readouterr().out
    assert out.count(NOTICE) == 1
    assert "estimator='within'" in out and "compute_hsi(estimator='pooled', correlation='pearson')" in out

    heads = result.analysis.heads
    np.testing.assert_array_equal(result.hsi_scores, heads["hsi"].to_numpy(float))
    assert result.correlation_matrix.shape == (8, len(result.feature_names))
    assert set(result.head_labels) == set(range(8))
    registry = result.analysis.registry()
    for h, label in result.head_labels.items():
        for key in ("name", "hsi", "primary_feature", "correlation", "description", "validated", "reasons",
                    "hsi_ci", "p_adjusted"):
            assert key in label
        assert label["name"] == registry[str(h)]["name"]
        assert label["hsi"] == pytest.approx(result.hsi_scores[h])
        if not label["validated"]:
            assert label["name"] == "General Context Head"
    assert result.head_labels[1]["name"] == "Proximity Head" and result.head_labels[1]["validated"]


def test_original_options_change_the_notice(analyzer: HeadSpecializationAnalyzer,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    analyzer.compute_hsi(estimator="pooled", correlation="pearson", n_resamples=99, rng=0)
    out = capsys.readouterr().out
    assert out.count(NOTICE) == 1
    assert "HSI values are the original method's" in out


def test_pooled_pearson_returns_the_original_hsi(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Acceptance 2: logs written as the original layout held them (float64, no object ids), with NaN padding and
    # a few non-finite feature values; the original method pairs sorted files, which here is also step order.
    run = generate(n_episodes=6, n_steps=10, checkpoints=(1000, 2000, 3000), rng=11)
    feature_dir, attention_dir = tmp_path / "features", tmp_path / "attention"
    write_driving_logs(run, feature_dir, attention_dir, dtype=np.float64, include_object_ids=False, rng=3)
    corrupt_features(feature_dir, np.random.default_rng(5))

    analyzer = HeadSpecializationAnalyzer(feature_dir=feature_dir, attention_dir=attention_dir)
    with pytest.warns(DataAlignmentWarning, match="object_ids"):
        analyzer.load_data()
    result = analyzer.compute_hsi(estimator="pooled", correlation="pearson", n_resamples=99, rng=0)
    expected_r, names = original_method(feature_dir, attention_dir, "other_traj/cross_attn_0")

    assert list(result.feature_names) == names
    np.testing.assert_allclose(result.hsi_scores, np.abs(expected_r).max(axis=1), rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.correlation_matrix, expected_r, rtol=0, atol=1e-9)
    assert capsys.readouterr().out.count(NOTICE) == 1


def test_original_logs_without_steps_are_paired_by_order_with_a_warning(tmp_path: Path) -> None:
    run = generate(n_episodes=4, n_steps=3, checkpoints=(1000, 2000), rng=1)
    write_driving_logs(run, tmp_path / "f", tmp_path / "a", include_steps=False, rng=1)
    analyzer = HeadSpecializationAnalyzer(feature_dir=tmp_path / "f", attention_dir=tmp_path / "a")
    with pytest.warns(DataAlignmentWarning, match="sorted order"):
        analyzer.load_data()
    assert [log.step for log in analyzer.logs] == [1000, 2000]
    strict = HeadSpecializationAnalyzer(feature_dir=tmp_path / "f", attention_dir=tmp_path / "a", pair_by="step")
    with pytest.raises(HSIDataError, match="pair_by='order'"):  # asked to pair by step: refused, with the way out
        strict.load_data()


def test_export_registry_keeps_the_validation_rule(analyzer: HeadSpecializationAnalyzer, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    result = analyzer.compute_hsi(n_resamples=999, rng=0)
    path = tmp_path / "out" / "head_functions.json"
    path.parent.mkdir()
    analyzer.export_registry(path)
    registry = json.loads(path.read_text())
    assert {str(h) for h in range(8)} | {"_meta"} == set(registry)
    assert registry["_meta"]["allow_unvalidated"] is False
    for h, label in result.head_labels.items():
        assert registry[str(h)]["name"] == label["name"]
    analyzer.export_registry(path, allow_unvalidated=True)
    assert json.loads(path.read_text())["_meta"]["allow_unvalidated"] is True
    capsys.readouterr()


def test_visualization_writes_the_figures(analyzer: HeadSpecializationAnalyzer, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = analyzer.compute_hsi(n_resamples=199, rng=0)
    capsys.readouterr()
    viz = HeadVisualization(analyzer)
    assert viz.plot_correlation_heatmap() is not None
    assert viz.plot_hsi_bar(save_path=tmp_path / "bars.png") is not None
    assert viz.plot_attention_vs_feature(1, "distance_to_ego") is not None
    plt.close("all")
    assert (tmp_path / "bars.png").read_bytes().startswith(b"\x89PNG")

    written = viz.plot_all(tmp_path / "figures")
    names = {path.name for path in written}
    assert {"correlation_heatmap.png", "hsi_scores.png"} <= names
    specialised = [h for h, label in result.head_labels.items() if label["hsi"] >= 0.3]
    assert specialised and all(
        f"attention_vs_feature_h{h}_{result.head_labels[h]['primary_feature']}.png" in names for h in specialised)
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)
    assert plt.get_fignums() == []  # plot_all closes what it saved
