"""The feature catalog: the built-in driving table, generic labels and user catalogs."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pytest

from hsi_stats import DRIVING_CATALOG, FeatureCatalog, FeatureMeaning, load_catalog

DRIVING_TABLE = {
    "ttc": ("Safety Head", "negative"),
    "distance_to_ego": ("Proximity Head", "negative"),
    "closing_speed": ("Threat Assessment Head", "positive"),
    "is_ahead": ("Traffic Flow Head", "positive"),
    "is_behind": ("Rear Monitoring Head", "positive"),
    "is_left": ("Left Lane Head", "positive"),
    "is_right": ("Right Lane Head", "positive"),
    "agent_speeds": ("Dynamic Object Head", "either"),
}

USER_ENTRIES = {
    "token_is_prev": {"label": "Previous Token Head", "sign": "positive",
                      "description": "Attends to the previous token."},
    "token_distance": {"label": "Locality Head", "sign": "Negative"},
    "token_frequency": {"label": "Frequency Head"},
}
USER_EXPECTED = {
    "token_is_prev": ("Previous Token Head", "positive", "Attends to the previous token."),
    "token_distance": ("Locality Head", "negative", None),
    "token_frequency": ("Frequency Head", "either", None),
}


# --------------------------------------------------------------------------- the driving catalog
@pytest.mark.parametrize(("feature", "label", "sign"),
                         [(f, label, sign) for f, (label, sign) in DRIVING_TABLE.items()])
def test_driving_catalog_matches_the_design_table(feature, label, sign):
    meaning = DRIVING_CATALOG[feature]
    assert (meaning.feature, meaning.label, meaning.sign) == (feature, label, sign)
    assert DRIVING_CATALOG.meaning(feature) == meaning
    assert meaning.description.strip()


def test_driving_catalog_has_exactly_the_design_features():
    assert sorted(DRIVING_CATALOG) == sorted(DRIVING_TABLE)
    assert len(DRIVING_CATALOG) == len(DRIVING_TABLE)


def test_none_means_the_driving_catalog():
    assert load_catalog(None) is DRIVING_CATALOG
    assert load_catalog(DRIVING_CATALOG) is DRIVING_CATALOG


@pytest.mark.parametrize("catalog", [DRIVING_CATALOG, FeatureCatalog.from_mapping(USER_ENTRIES)],
                         ids=["driving", "user"])
@pytest.mark.parametrize("feature", ["lane_curvature", "TTC"])
def test_unknown_feature_gets_a_generic_label(catalog, feature):
    meaning = catalog.meaning(feature)
    assert (meaning.feature, meaning.label, meaning.sign) == (feature, f"{feature} Head", "either")
    assert feature in meaning.description
    assert feature not in catalog
    with pytest.raises(KeyError):
        catalog[feature]


def test_catalog_and_meanings_are_read_only():
    with pytest.raises(TypeError):
        DRIVING_CATALOG["ttc"] = DRIVING_CATALOG["is_left"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        DRIVING_CATALOG["ttc"].label = "Other"  # type: ignore[misc]


# --------------------------------------------------------------------------- user catalogs
def toml_text(entries: dict) -> str:
    lines = []
    for feature, entry in entries.items():
        lines.append(f"[{feature}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in entry.items())
        lines.append("")
    return "\n".join(lines)


def _mapping(tmp_path):
    return USER_ENTRIES


def _toml_file(tmp_path):
    path = tmp_path / "catalog.toml"
    path.write_text(toml_text(USER_ENTRIES), encoding="utf-8")
    return path


def _json_file(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(USER_ENTRIES), encoding="utf-8")
    return str(path)


@pytest.mark.parametrize("source", [_mapping, _toml_file, _json_file], ids=["mapping", "toml", "json"])
def test_user_catalog_sources_agree(tmp_path, source):
    catalog = load_catalog(source(tmp_path))
    assert isinstance(catalog, FeatureCatalog)
    assert sorted(catalog) == sorted(USER_EXPECTED)
    for feature, (label, sign, description) in USER_EXPECTED.items():
        meaning = catalog[feature]
        assert (meaning.feature, meaning.label, meaning.sign) == (feature, label, sign)
        assert meaning.description == (description or f"Attends to entities according to {feature}.")
    assert "ttc" not in catalog  # a user catalog replaces the driving one


def test_mapping_may_hold_feature_meanings():
    meaning = FeatureMeaning("speed", "Speed Head", "Attends to fast entities.", "POSITIVE")
    catalog = load_catalog({"speed": meaning})
    assert catalog["speed"] is meaning and meaning.sign == "positive"


SIGN_CHOICES = "must be one of {'positive', 'negative', 'either'}"


@pytest.mark.parametrize(("entries", "pattern"), [
    pytest.param({"x": "Some Head"}, "the entry for feature 'x' must be a table with at least a 'label' key",
                 id="not-a-table"),
    pytest.param({"x": {"sign": "positive"}}, "the entry for feature 'x' must be a table with at least "
                 "a 'label' key", id="no-label"),
    pytest.param({"x": {"label": "X", "colour": "red"}}, "the entry for feature 'x' may only have the "
                 "keys 'label', 'description', 'sign', but it also has ['colour']", id="unknown-key"),
    pytest.param({"x": {"label": "X", "sign": "up"}},
                 f"`sign of feature 'x'` {SIGN_CHOICES}, but 'up' was passed", id="bad-sign"),
])
def test_bad_mapping_entries_are_named(entries, pattern):
    with pytest.raises(ValueError, match=re.escape(pattern)):
        load_catalog(entries)


@pytest.mark.parametrize(("name", "text", "pattern"), [
    pytest.param("bad.toml", "[x\nlabel = ", "the catalog file could not be parsed", id="toml-syntax"),
    pytest.param("bad.json", "{\"x\": ", "the catalog file could not be parsed", id="json-syntax"),
    pytest.param("list.json", "[1, 2]", "the catalog must be a table of features, but a list was found",
                 id="json-list"),
    pytest.param("entry.toml", "x = 3\n", "the entry for feature 'x' must be a table", id="toml-entry"),
    pytest.param("sign.json", json.dumps({"x": {"label": "X", "sign": "+"}}), "`sign of feature 'x'`",
                 id="json-sign"),
    pytest.param("catalog.yaml", "x: {label: X}", "`catalog file suffix` must be one of {'toml', 'json'}, "
                 "but 'yaml' was passed", id="suffix"),
])
def test_bad_catalog_files_are_named(tmp_path, name, text, pattern):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(pattern)):
        load_catalog(path)


def test_bad_file_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("[x", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_catalog(path)


def test_missing_catalog_file_is_named(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ValueError, match=re.escape(f"`catalog` must be an existing .toml or .json file, "
                                                   f"but {str(path)!r} does not exist")):
        load_catalog(path)


def test_catalog_of_the_wrong_type_is_refused():
    with pytest.raises(TypeError, match=r"`catalog` must be None, a mapping or a path .* int was passed"):
        load_catalog(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- sign semantics
@pytest.mark.parametrize(("sign", "rho", "expected"), [
    ("positive", 0.4, True), ("positive", 1e-12, True), ("positive", -0.4, False),
    ("positive", 0.0, False), ("positive", math.nan, False),
    ("negative", -0.4, True), ("negative", -1e-12, True), ("negative", 0.4, False),
    ("negative", -0.0, False), ("negative", math.nan, False),
    ("either", 0.4, True), ("either", -0.4, True), ("either", 0.0, True), ("either", math.nan, False),
])
def test_sign_matches(sign, rho, expected):
    meaning = FeatureMeaning("f", "F Head", "", sign)
    assert meaning.sign_matches(rho) is expected
