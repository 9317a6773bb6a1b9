"""The pooled Pearson estimator reproduces the original in-house method on logs in the original layout.

The original method is written out in ``tests/original_method.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hsi_stats import estimate, load_logs
from hsi_stats._validation import DataAlignmentWarning, StepPoolingWarning
from hsi_stats.synthetic import generate, write_driving_logs
from tests.original_method import corrupt_features, original_method


def test_pooled_pearson_equals_the_original_method(tmp_path: Path) -> None:
    run = generate(n_episodes=6, n_steps=10, checkpoints=(1000, 2000, 3000), rng=11)
    feature_dir, attention_dir = tmp_path / "features", tmp_path / "attention"
    write_driving_logs(run, feature_dir, attention_dir, dtype=np.float64, include_object_ids=False,
                       include_steps=False, rng=3)
    corrupt_features(feature_dir, np.random.default_rng(5))

    with pytest.warns(DataAlignmentWarning):
        dataset = load_logs(feature_dir, attention_dir, pair_by="order")
    with pytest.warns(StepPoolingWarning, match="pools the scenarios of 3 training steps"):  # as the original did
        est = estimate(dataset, estimator="pooled", correlation="pearson")
    expected_r, names = original_method(feature_dir, attention_dir, "other_traj/cross_attn_0")

    assert list(est.feature_names) == names
    np.testing.assert_allclose(est.rho, expected_r, rtol=0, atol=1e-9)
    np.testing.assert_allclose(est.hsi, np.abs(expected_r).max(axis=1), rtol=0, atol=1e-9)
    assert est.left_out["infinite_left_out"].sum() > 0  # the inf values were counted, not silently dropped
