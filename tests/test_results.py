"""``analyze`` and ``HSIResult`` against the synthetic ground truth and the output contracts.

- On ``generate(n_episodes=20)`` the planted heads h0-h3 are validated with their planted label and the
  no-effect heads h4-h7 are not (each with its reasons); the tables have the documented columns in that order and
  the HSI column is max |rho| of the pair table (recomputed here).
- The result is frozen; ``summary()`` names every head and the settings; settings record the resolved scheme;
  provenance records versions, the data fingerprint and a seed that reproduces the result.
- ``export_registry`` writes the documented keys, writes unvalidated labels as General Context Heads unless
  ``allow_unvalidated=True``, and is atomic: a failure while writing leaves an existing file untouched and no
  temporary file behind.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest

import hsi_stats._atomic
from hsi_stats import analyze
from hsi_stats.catalog import GENERAL_CONTEXT
from hsi_stats.synthetic import generate

PAIR_COLUMNS = ["head", "feature", "rho", "ci_low", "ci_high", "p_value", "p_adjusted"]
HEAD_COLUMNS = ["head", "hsi", "ci_low", "ci_high", "hsi_p_value", "hsi_p_adjusted", "primary_feature",
                "primary_rho", "runner_up", "primary_stability", "selectivity", "label_feature", "label", "strength",
                "validated", "reasons", "label_rho", "label_ci_low", "label_ci_high", "label_p_value",
                "label_p_adjusted", "label_stability"]
REGISTRY_KEYS = {"name", "description", "primary_feature", "hsi", "correlation", "correlation_sign", "head",
                 "validated", "reasons", "strength", "hsi_ci", "correlation_ci", "p_value", "p_adjusted",
                 "stability"}
N_RESAMPLES = 499


@pytest.fixture(scope="module")
def run():
    return generate(n_episodes=20, rng=0)


@pytest.fixture(scope="module")
def result(run):
    return analyze(run.dataset, n_resamples=N_RESAMPLES, rng=1)


@pytest.fixture(scope="module")
def unvalidated(run):
    """No label can validate: the smallest attainable p-value, 1/500, is above alpha."""
    return analyze(run.dataset, n_resamples=N_RESAMPLES, rng=1, alpha=0.001)


# --------------------------------------------------------------------------- tables
def test_tables_have_the_design_columns(result, run):
    ds = run.dataset
    assert list(result.pairs.columns[:len(PAIR_COLUMNS)]) == PAIR_COLUMNS
    assert list(result.heads.columns[:len(HEAD_COLUMNS)]) == HEAD_COLUMNS
    assert len(result.pairs) == ds.n_heads * ds.n_features and len(result.heads) == ds.n_heads
    assert list(result.heads["head"]) == list(ds.head_names)
    hsi = result.pairs.assign(magnitude=result.pairs["rho"].abs()).groupby("head", sort=False)["magnitude"].max()
    np.testing.assert_allclose(result.heads["hsi"], hsi.loc[list(ds.head_names)], rtol=1e-15)


def test_the_label_columns_are_the_label_features_pair(result):
    pairs = result.pairs.set_index(["head", "feature"])
    for head in result.heads[result.heads["label_feature"].notna()].itertuples():
        pair = pairs.loc[(head.head, head.label_feature)]
        assert (head.label_rho, head.label_ci_low, head.label_ci_high) == (pair["rho"], pair["ci_low"], pair["ci_high"])
        assert (head.label_p_value, head.label_p_adjusted) == (pair["p_value"], pair["p_adjusted"])
        assert (head.label_focus, head.label_focus_target) == (pair["focus"], pair["focus_target"])
    # The HSI's own test is another family (the heads) than the pairs': its p-values are not the pairs'.
    assert not np.allclose(result.heads["hsi_p_adjusted"], result.heads["label_p_adjusted"])


def test_planted_heads_are_validated_and_null_heads_are_not(result, run):
    truth = run.truth_frame().set_index("head")
    heads = result.heads.set_index("head")
    for head in ("h0", "h1", "h2", "h3"):
        row = heads.loc[head]
        assert row["validated"], (head, row["reasons"])
        assert row["label"] == truth.loc[head, "expected_label"]
        assert row["label_feature"] == truth.loc[head, "feature"]
    for head in ("h4", "h5", "h6", "h7"):
        row = heads.loc[head]
        assert not row["validated"] and row["label"] == GENERAL_CONTEXT
        assert row["reasons"], head


# --------------------------------------------------------------------------- result object
def test_result_is_frozen(result):
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.pairs = pd.DataFrame()
    with pytest.raises(TypeError):
        result.settings["alpha"] = 0.5  # type: ignore[index]
    with pytest.raises(TypeError):
        result.provenance["seed"] = 0  # type: ignore[index]


def test_summary_mentions_every_head_and_the_settings(result):
    text = result.summary()
    for head in result.heads["head"]:
        assert head in text
    for setting in ("estimator=within", "rank-feature", "expanded", f"{N_RESAMPLES} cluster-bootstrap", "sign-flip",
                    "correction=maxt", "seed=1", "95%"):
        assert setting in text, setting


def test_provenance(result, run):
    provenance = result.provenance
    assert provenance["seed"] == 1
    assert provenance["data_fingerprint"] == run.dataset.fingerprint()
    versions = provenance["versions"]
    assert versions["numpy"] == np.__version__ and versions["pandas"] == pd.__version__
    assert versions["scipy"] == version("scipy") and versions["statsmodels"] == version("statsmodels")
    assert versions["python"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert "hsi_stats" in versions and provenance["time"]


@pytest.mark.parametrize(("n_episodes", "scheme"), [(20, "sign-flip"), (8, "within-group")])
def test_settings_record_the_resolved_scheme(n_episodes, scheme, result):
    if n_episodes == 20:
        settings = result.settings
    else:
        settings = analyze(generate(n_episodes=n_episodes, n_steps=10, rng=3).dataset, n_resamples=99,
                           rng=0).settings
    assert settings["scheme"] == scheme and settings["scheme_requested"] == "auto"
    assert settings["n_resamples"] == (N_RESAMPLES if n_episodes == 20 else 99)


def test_seed_drawn_for_rng_none_reproduces_the_result():
    ds = generate(n_episodes=12, n_steps=10, rng=4).dataset
    first = analyze(ds, n_resamples=99)
    seed = first.provenance["seed"]
    assert isinstance(seed, int)
    again = analyze(ds, n_resamples=99, rng=seed)
    pd.testing.assert_frame_equal(first.pairs, again.pairs)
    pd.testing.assert_frame_equal(first.heads, again.heads)
    assert dict(first.settings) == dict(again.settings)


# --------------------------------------------------------------------------- registry
def _read(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_registry_has_the_design_keys(result, tmp_path):
    path = tmp_path / "head_functions.json"
    result.export_registry(path)
    registry = _read(path)
    assert set(registry) == {str(h) for h in range(8)} | {"_meta"}
    heads = result.heads
    for h in range(8):
        entry = registry[str(h)]
        assert REGISTRY_KEYS <= set(entry), REGISTRY_KEYS - set(entry)
        row = heads.iloc[h]
        assert entry["head"] == row["head"] and entry["validated"] == bool(row["validated"])
        assert entry["name"] == row["label"]
        assert entry["hsi"] == pytest.approx(row["hsi"])
        assert len(entry["hsi_ci"]) == 2 and len(entry["correlation_ci"]) == 2
    safety = registry["0"]
    assert safety["name"] == "Safety Head" and safety["primary_feature"] == "ttc"
    assert safety["correlation_sign"] == "negative" and safety["correlation"] < 0
    assert safety["strength"] in {"weak", "moderate", "strong"} and safety["reasons"] == []
    meta = registry["_meta"]
    assert meta["settings"]["scheme"] == "sign-flip" and meta["provenance"]["seed"] == 1
    assert meta["allow_unvalidated"] is False


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
def test_unvalidated_labels_are_exported_as_general_context(unvalidated, tmp_path):
    heads = unvalidated.heads
    assert not heads["validated"].any()
    assert heads.loc[0, "label"] == "Safety Head"  # the point label exists but did not validate
    path = tmp_path / "head_functions.json"
    unvalidated.export_registry(path)
    registry = _read(path)
    for h in range(8):
        assert registry[str(h)]["name"] == GENERAL_CONTEXT and registry[str(h)]["validated"] is False
    assert any("not validated" in reason for reason in registry["0"]["reasons"])
    assert any("adjusted p" in reason for reason in registry["0"]["reasons"])

    unvalidated.export_registry(path, allow_unvalidated=True)
    allowed = _read(path)
    assert allowed["0"]["name"] == "Safety Head" and allowed["0"]["validated"] is False
    assert allowed["_meta"]["allow_unvalidated"] is True
    assert allowed["4"]["name"] == GENERAL_CONTEXT


class _Crash(RuntimeError):
    pass


def _half_writing_open(real_open):
    """An ``open`` whose handles write half of the text, then fail."""
    def fake_open(file, mode="r", *args, **kwargs):
        handle = real_open(file, mode, *args, **kwargs)
        if "w" not in mode:
            return handle
        write = handle.write

        def partial_write(text):
            write(text[:len(text) // 2])
            handle.flush()
            raise _Crash("disk full")

        handle.write = partial_write
        return handle
    return fake_open


@pytest.mark.parametrize("failure", ["serialise", "write", "rename"])
def test_registry_write_is_atomic(result, tmp_path, monkeypatch, failure):
    path = tmp_path / "head_functions.json"
    path.write_text('{"old": true}\n', encoding="utf-8")

    def crash(*args, **kwargs):
        raise _Crash(failure)

    if failure == "serialise":
        monkeypatch.setattr(json, "dumps", crash)
    elif failure == "write":
        monkeypatch.setattr(hsi_stats._atomic, "open", _half_writing_open(open), raising=False)
    else:
        monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(_Crash):
        result.export_registry(path)
    assert path.read_text(encoding="utf-8") == '{"old": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head_functions.json"]
