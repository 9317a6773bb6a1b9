"""The pooled Pearson estimator reproduces the original in-house method on logs in the original layout.

The original method, written out here from its description: pair the sorted feature logs with the sorted attention
extractions, sum each extraction over latents and over each entity's tokens, stack every scenario, flatten all
(scenario, slot) pairs, drop the non-finite ones per feature, ``scipy.stats.pearsonr`` per head and feature,
HSI = max |r|.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import pearsonr

from hsi_stats import estimate, load_logs
from hsi_stats._validation import DataAlignmentWarning
from hsi_stats.synthetic import generate, write_driving_logs


def _original_attention(extraction: dict, key: str, n_objects: int, boundaries: tuple[int, int]) -> np.ndarray:
    weights = extraction["attention_weights"][key]  # (n_samples, n_latents, n_tokens, n_heads)
    start, end = boundaries
    tokens = weights[:, :, start:end, :]
    t_obs = (end - start) // n_objects
    per_entity = np.zeros((weights.shape[0], weights.shape[3], n_objects))
    for v in range(n_objects):
        per_entity[:, :, v] = tokens[:, :, v * t_obs:(v + 1) * t_obs, :].sum(axis=(1, 2))
    return per_entity


def _original_method(feature_dir: Path, attention_dir: Path, key: str) -> tuple[np.ndarray, list[str]]:
    """Pearson r (H, F) of the original method and the feature names in log order."""
    feature_files = sorted(feature_dir.glob("attention_log_*.pkl"))
    attention_files = sorted(attention_dir.glob("attention_scenario_*.pkl"))
    attention, features = [], {}
    for feature_file, attention_file in zip(feature_files, attention_files, strict=True):
        log = pickle.loads(feature_file.read_bytes())
        extraction = pickle.loads(attention_file.read_bytes())
        semantic = {k: v for k, v in log["semantic_features"].items() if k != "valid"}
        n_objects = next(iter(semantic.values())).shape[1]
        attention.append(_original_attention(extraction, key, n_objects, log["token_boundaries"]["other_traj"]))
        for name, values in semantic.items():
            features.setdefault(name, []).append(values)
    stacked = np.concatenate(attention)  # (N, H, V)
    names = list(features)
    r = np.zeros((stacked.shape[1], len(names)))
    for h in range(stacked.shape[1]):
        for f, name in enumerate(names):
            a = stacked[:, h, :].ravel()
            x = np.concatenate(features[name]).ravel()
            keep = np.isfinite(a) & np.isfinite(x)
            r[h, f] = pearsonr(a[keep], x[keep]).statistic
    return r, names


def _corrupt_features(feature_dir: Path, rng: np.random.Generator) -> None:
    """Padding to NaN (the original had no mask) and a few NaN/+-inf among present vehicles."""
    for path in sorted(feature_dir.glob("attention_log_*.pkl")):
        log = pickle.loads(path.read_bytes())
        valid = log["semantic_features"]["valid"]
        for name, values in log["semantic_features"].items():
            if name == "valid":
                continue
            values = values.astype(np.float64)
            values[~valid] = np.nan
            hit = valid & (rng.random(values.shape) < 0.02)
            values[hit] = rng.choice([np.nan, np.inf, -np.inf], size=int(hit.sum()))
            log["semantic_features"][name] = values
        path.write_bytes(pickle.dumps(log, protocol=4))


def test_pooled_pearson_equals_the_original_method(tmp_path: Path) -> None:
    run = generate(n_episodes=6, n_steps=10, checkpoints=(1000, 2000, 3000), rng=11)
    feature_dir, attention_dir = tmp_path / "features", tmp_path / "attention"
    write_driving_logs(run, feature_dir, attention_dir, dtype=np.float64, include_object_ids=False,
                       include_steps=False, rng=3)
    _corrupt_features(feature_dir, np.random.default_rng(5))

    with pytest.warns(DataAlignmentWarning):
        dataset = load_logs(feature_dir, attention_dir, pair_by="order")
    est = estimate(dataset, estimator="pooled", correlation="pearson")
    expected_r, names = _original_method(feature_dir, attention_dir, "other_traj/cross_attn_0")

    assert list(est.feature_names) == names
    np.testing.assert_allclose(est.rho, expected_r, rtol=0, atol=1e-9)
    np.testing.assert_allclose(est.hsi, np.abs(expected_r).max(axis=1), rtol=0, atol=1e-9)
    assert est.left_out["infinite_left_out"].sum() > 0  # the inf values were counted, not silently dropped
