"""The original in-house HSI method, written out from its description, for comparison in the tests.

Pair the sorted feature logs with the sorted attention extractions, sum each extraction over latents and over each
entity's tokens, stack every scenario, flatten all (scenario, slot) pairs, drop the non-finite ones per feature,
``scipy.stats.pearsonr`` per head and feature, HSI = max |r|. Shared by ``test_original_method.py`` and
``test_compat.py``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
from scipy.stats import pearsonr


def original_attention(extraction: dict, key: str, n_objects: int, boundaries: tuple[int, int]) -> np.ndarray:
    weights = extraction["attention_weights"][key]  # (n_samples, n_latents, n_tokens, n_heads)
    start, end = boundaries
    tokens = weights[:, :, start:end, :]
    t_obs = (end - start) // n_objects
    per_entity = np.zeros((weights.shape[0], weights.shape[3], n_objects))
    for v in range(n_objects):
        per_entity[:, :, v] = tokens[:, :, v * t_obs:(v + 1) * t_obs, :].sum(axis=(1, 2))
    return per_entity


def original_method(feature_dir: Path, attention_dir: Path, key: str) -> tuple[np.ndarray, list[str]]:
    """Pearson r (H, F) of the original method and the feature names in log order."""
    feature_files = sorted(feature_dir.glob("attention_log_*.pkl"))
    attention_files = sorted(attention_dir.glob("attention_scenario_*.pkl"))
    attention, features = [], {}
    for feature_file, attention_file in zip(feature_files, attention_files, strict=True):
        log = pickle.loads(feature_file.read_bytes())
        extraction = pickle.loads(attention_file.read_bytes())
        semantic = {k: v for k, v in log["semantic_features"].items() if k != "valid"}
        n_objects = next(iter(semantic.values())).shape[1]
        attention.append(original_attention(extraction, key, n_objects, log["token_boundaries"]["other_traj"]))
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


def corrupt_features(feature_dir: Path, rng: np.random.Generator) -> None:
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
