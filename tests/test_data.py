"""The data model (``HSIDataset``) and the npz interchange file.

Every invalid input must raise a ``ValueError`` that names the field and the shapes involved; a valid
dataset is immutable; ``select`` and ``fingerprint`` behave as documented; loading an npz file never
unpickles.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest

from hsi_stats import HSIDataset, load_npz, write_npz

S, H, V = 4, 3, 5
FEATURE_NAMES = ("ttc", "distance_to_ego")


def inputs() -> dict:
    """Constructor arguments of a valid dataset (fresh, writable arrays on every call)."""
    rng = np.random.default_rng(7)
    mask = rng.random((S, V)) < 0.7
    ttc = rng.exponential(2.0, (S, V))
    ttc[0, 1] = np.nan
    return {
        "attention": rng.random((S, H, V)),
        "features": {"ttc": ttc, "distance_to_ego": rng.random((S, V))},
        "mask": mask,
        "groups": np.array(["a", "a", "b", "c"]),
        "steps": np.array([0, 10, 10, 20]),
        "slots": np.tile(np.arange(V), (S, 1)),
        "head_names": ["q0:h0", "q0:h1", "q1:h0"],
    }


def build(**changes) -> HSIDataset:
    args = inputs()
    args.update(changes)
    return HSIDataset(args.pop("attention"), args.pop("features"), **args)


# --------------------------------------------------------------------------- validation
def shape_error(field: str, dims: str, expected: tuple, got: tuple) -> str:
    return re.escape(f"`{field}` must have shape {dims} = {expected}, but it has shape {got}")


def nan_attention_on(s: int, h: int, v: int) -> np.ndarray:
    attention = inputs()["attention"]
    attention[s, h, v] = np.nan
    return attention


@pytest.mark.parametrize(("changes", "pattern"), [
    pytest.param({"attention": np.ones((S, H))},
                 re.escape("`attention` must have shape (S, H, V) (3 dimensions), but it has shape (4, 3)"),
                 id="attention-ndim"),
    pytest.param({"attention": np.ones((0, H, V))},
                 re.escape("`attention` must be non-empty in every dimension, but it has shape (0, 3, 5)"),
                 id="attention-empty"),
    pytest.param({"attention": np.full((S, H, V), "x")}, r"`attention` .* could not be converted",
                 id="attention-not-numeric"),
    pytest.param({"features": {"ttc": np.ones((S, V + 1))}},
                 shape_error("features['ttc']", "(S, V)", (S, V), (S, V + 1)), id="feature-shape"),
    pytest.param({"features": {"ttc": np.ones((S, V, 1))}},
                 re.escape("`features['ttc']` must have shape (S, V) (2 dimensions), but it has shape "
                           "(4, 5, 1)"), id="feature-ndim"),
    pytest.param({"features": {}}, r"`features` must be a non-empty mapping .* dict of length 0",
                 id="features-empty"),
    pytest.param({"features": [np.ones((S, V))]}, r"`features` must be a non-empty mapping .* list",
                 id="features-not-mapping"),
    pytest.param({"features": {"": np.ones((S, V))}},
                 "feature names must be non-empty strings, but '' was passed", id="feature-name-empty"),
    pytest.param({"features": {3: np.ones((S, V))}},
                 "feature names must be non-empty strings, but 3 was passed", id="feature-name-type"),
    pytest.param({"mask": np.ones((S, V + 1), bool)}, shape_error("mask", "(S, V)", (S, V), (S, V + 1)),
                 id="mask-shape"),
    pytest.param({"mask": np.full((S, V), 2)}, r"`mask` must be boolean \(or 0/1\).*int64",
                 id="mask-values"),
    pytest.param({"mask": np.full((S, V), "y")}, r"`mask` must be boolean \(or 0/1\).*<U1",
                 id="mask-dtype"),
    pytest.param({"mask": None, "attention": nan_attention_on(1, 2, 3)},
                 re.escape("`attention` must be finite on every valid entity, but 1 value(s) are not "
                           "(first at scenario 1, head 2, slot 3: nan)"), id="attention-non-finite"),
    pytest.param({"groups": np.arange(S - 1)}, re.escape("`groups` must have shape (S,) = (4,), but it "
                                                         "has shape (3,)"), id="groups-shape"),
    pytest.param({"groups": np.zeros((S, 1))}, re.escape("`groups` must have shape (S,) = (4,), but it "
                                                         "has shape (4, 1)"), id="groups-ndim"),
    pytest.param({"steps": np.arange(S + 1)}, re.escape("`steps` must have shape (S,) = (4,), but it "
                                                        "has shape (5,)"), id="steps-shape"),
    pytest.param({"steps": [0, 1.5, 2, 3]}, r"`steps` must hold integers, but dtype float64",
                 id="steps-fraction"),
    pytest.param({"steps": ["0", "1", "2", "3"]}, r"`steps` must hold integers, but dtype <U1",
                 id="steps-text"),
    pytest.param({"slots": np.zeros((S, V - 1), int)}, shape_error("slots", "(S, V)", (S, V), (S, V - 1)),
                 id="slots-shape"),
    pytest.param({"slots": np.zeros((S, V))}, r"`slots` must hold integers, but dtype float64",
                 id="slots-dtype"),
    pytest.param({"head_names": ["a", "b"]},
                 re.escape("`head_names` must have length H = 3, but it has length 2"), id="heads-length"),
    pytest.param({"head_names": ["a", "b", "a"]},
                 re.escape("`head_names` must be unique, but ('a', 'b', 'a') was passed"),
                 id="heads-duplicate"),
])
def test_invalid_input_names_the_field_and_shapes(changes, pattern):
    with pytest.raises(ValueError, match=pattern):
        build(**changes)


def test_non_finite_attention_is_allowed_on_padding():
    args = inputs()
    args["attention"][:, 0, :] = np.where(args["mask"], args["attention"][:, 0, :], np.inf)
    args["attention"][:, 1, :] = np.where(args["mask"], args["attention"][:, 1, :], np.nan)
    dataset = build(attention=args["attention"], mask=args["mask"])
    np.testing.assert_array_equal(dataset.attention, args["attention"])


def test_defaults_and_accepted_conversions():
    args = inputs()
    dataset = HSIDataset(args["attention"], args["features"])
    assert dataset.mask.dtype == np.bool_ and dataset.mask.all()
    np.testing.assert_array_equal(dataset.groups, np.arange(S))
    assert dataset.steps is None and dataset.slots is None
    assert dataset.head_names == ("h0", "h1", "h2")
    assert dataset.feature_names == FEATURE_NAMES
    assert (dataset.n_scenarios, dataset.n_heads, dataset.n_slots, dataset.n_features) == (S, H, V, 2)

    converted = build(mask=args["mask"].astype(int), steps=[0.0, 10.0, 10.0, 20.0],
                      groups=np.array([1, "a", 1, "b"], dtype=object))
    np.testing.assert_array_equal(converted.mask, args["mask"])
    assert converted.steps.dtype == np.int64
    np.testing.assert_array_equal(converted.steps, [0, 10, 10, 20])
    assert converted.n_groups == 3


# --------------------------------------------------------------------------- immutability
@pytest.mark.parametrize("field", ["attention", "mask", "groups", "steps", "slots"])
def test_arrays_are_read_only(field):
    array = getattr(build(), field)
    with pytest.raises(ValueError, match="read-only"):
        array[(0,) * array.ndim] = array[(0,) * array.ndim]


def test_features_are_read_only():
    dataset = build()
    with pytest.raises(ValueError, match="read-only"):
        dataset.features["ttc"][0, 0] = 1.0
    with pytest.raises(TypeError):
        dataset.features["speed"] = np.ones((S, V))  # type: ignore[index]


def test_fields_cannot_be_reassigned():
    dataset = build()
    with pytest.raises(dataclasses.FrozenInstanceError):
        dataset.attention = np.ones((S, H, V))  # type: ignore[misc]


def test_dataset_copies_its_inputs():
    args = inputs()
    dataset = HSIDataset(args["attention"], args["features"], mask=args["mask"], slots=args["slots"])
    expected = dataset.attention.copy(), dataset.features["ttc"].copy(), dataset.mask.copy()
    args["attention"][:] = 0.0
    args["features"]["ttc"][:] = 0.0
    args["mask"][:] = False
    args["features"]["speed"] = np.ones((S, V))
    for kept, original in zip((dataset.attention, dataset.features["ttc"], dataset.mask), expected,
                              strict=True):
        np.testing.assert_array_equal(kept, original)
    assert dataset.feature_names == FEATURE_NAMES


# --------------------------------------------------------------------------- select
def assert_selected(sub: HSIDataset, heads: list[int], features: tuple[str, ...],
                    scenarios: np.ndarray) -> None:
    """``sub`` holds exactly the chosen heads, features and scenarios of :func:`inputs`."""
    args = inputs()
    np.testing.assert_array_equal(sub.attention, args["attention"][scenarios][:, heads, :])
    assert sub.feature_names == features
    for name in features:
        np.testing.assert_array_equal(sub.features[name], args["features"][name][scenarios])
    for field in ("mask", "groups", "steps", "slots"):
        np.testing.assert_array_equal(getattr(sub, field), args[field][scenarios])
    assert sub.head_names == tuple(args["head_names"][h] for h in heads)


@pytest.mark.parametrize(("selection", "heads", "features", "scenarios"), [
    pytest.param({"heads": ["q1:h0", "q0:h0"]}, [2, 0], FEATURE_NAMES, [0, 1, 2, 3], id="head-names"),
    pytest.param({"heads": [1, np.int64(2)]}, [1, 2], FEATURE_NAMES, [0, 1, 2, 3], id="head-indices"),
    pytest.param({"features": ["distance_to_ego"]}, [0, 1, 2], ("distance_to_ego",), [0, 1, 2, 3],
                 id="features"),
    pytest.param({"step_range": (10, 20)}, [0, 1, 2], FEATURE_NAMES, [1, 2, 3], id="steps-inclusive"),
    pytest.param({"scenarios": [3, 0]}, [0, 1, 2], FEATURE_NAMES, [0, 3], id="scenario-indices"),
    pytest.param({"scenarios": [True, False, True, False]}, [0, 1, 2], FEATURE_NAMES, [0, 2],
                 id="scenario-mask"),
    pytest.param({"heads": [0], "features": ["distance_to_ego", "ttc"], "step_range": (0, 10),
                  "scenarios": [1, 2, 3]}, [0], ("distance_to_ego", "ttc"), [1, 2], id="combined"),
])
def test_select_keeps_what_was_asked(selection, heads, features, scenarios):
    assert_selected(build().select(**selection), heads, features, np.array(scenarios))


HEAD_ERROR = "`heads` must name heads among ['q0:h0', 'q0:h1', 'q1:h0'] or index 0..2, but {} was passed"
FEATURE_ERROR = "`features` must be a non-empty selection of ['ttc', 'distance_to_ego'], but {} was passed"


@pytest.mark.parametrize(("selection", "message"), [
    ({"heads": ["h9"]}, HEAD_ERROR.format("'h9'")),
    ({"heads": [3]}, HEAD_ERROR.format("3")),
    ({"heads": [-1]}, HEAD_ERROR.format("-1")),
    ({"heads": [True]}, HEAD_ERROR.format("True")),
    ({"heads": []}, "`heads` must select at least one head"),
    ({"features": ["speed"]}, FEATURE_ERROR.format("['speed']")),
    ({"features": []}, FEATURE_ERROR.format("[]")),
    ({"step_range": (30, 40)}, "the selection is empty"),
    ({"scenarios": [False] * S}, "the selection is empty"),
    ({"scenarios": [True] * (S - 1)}, "`scenarios` must have shape (S,) = (4,), but it has shape (3,)"),
])
def test_select_errors_name_the_parameter(selection, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        build().select(**selection)


def test_step_range_needs_steps():
    with pytest.raises(ValueError, match="`step_range` needs a dataset with `steps`"):
        build(steps=None).select(step_range=(0, 10))


def test_select_out_of_range_scenario_names_the_parameter():
    with pytest.raises(ValueError, match="`scenarios`"):
        build().select(scenarios=[S])


# --------------------------------------------------------------------------- fingerprint
def _set(field: str, index: tuple, value) -> dict:
    """Constructor changes that set one entry of one array of :func:`inputs`."""
    args = inputs()
    container = args["features"] if field in FEATURE_NAMES else args
    container[field][index] = value
    return {"features": args["features"]} if field in FEATURE_NAMES else {field: args[field]}


def _first_padding() -> tuple[int, int]:
    s, v = np.argwhere(~inputs()["mask"])[0]
    return int(s), int(v)


FINGERPRINT_CHANGES = {
    "attention": lambda: _set("attention", (1, 1, 1), 0.5),
    "padding-attention": lambda: _set("attention", (*_first_padding()[:1], 0, _first_padding()[1]), 9.0),
    "feature": lambda: _set("distance_to_ego", (3, 4), -1.0),
    "nan-feature": lambda: _set("ttc", (0, 1), 0.0),
    "mask": lambda: _set("mask", (0, 0), not inputs()["mask"][0, 0]),
    "group": lambda: _set("groups", (3,), "d"),
    "step": lambda: _set("steps", (0,), 1),
    "slot": lambda: _set("slots", (2, 2), 7),
    "no-steps": lambda: {"steps": None},
    "head-name": lambda: {"head_names": ["q0:h0", "q0:h1", "q1:h1"]},
    "feature-name": lambda: {"features": {"TTC" if k == "ttc" else k: v
                                          for k, v in inputs()["features"].items()}},
    "feature-order": lambda: {"features": dict(reversed(inputs()["features"].items()))},
}


def test_equal_data_give_equal_fingerprints():
    first, second = build(), build()
    assert first is not second
    assert first.fingerprint() == second.fingerprint()
    assert re.fullmatch("[0-9a-f]{64}", first.fingerprint())


def test_fingerprint_does_not_depend_on_the_width_of_the_group_labels():
    groups = np.asarray(inputs()["groups"]).astype(str)
    wide = groups.astype("<U40")
    assert wide.dtype != groups.dtype
    assert build(groups=wide).fingerprint() == build(groups=groups).fingerprint()
    moved = groups.astype("<U4")
    moved[0], moved[1] = moved[1] + "x", moved[0]  # same characters, other labels
    assert build(groups=moved).fingerprint() != build(groups=groups).fingerprint()


@pytest.mark.parametrize("change", FINGERPRINT_CHANGES.values(), ids=FINGERPRINT_CHANGES.keys())
def test_fingerprint_changes_with_any_value(change):
    assert build(**change()).fingerprint() != build().fingerprint()


# --------------------------------------------------------------------------- npz
def write_raw_npz(path: Path, **arrays) -> Path:
    """An npz file written with plain numpy (pickle allowed), as a careless producer would."""
    np.savez(path, **arrays)
    return path


def raw_arrays() -> dict:
    args = inputs()
    return {"attention": args["attention"],
            "features": np.stack([args["features"][n] for n in FEATURE_NAMES], axis=1),
            "feature_names": np.array(FEATURE_NAMES)}


def test_npz_round_trip_keeps_notes(tmp_path):
    dataset = HSIDataset(**{**inputs(), "notes": ["alignment assumed"]})
    write_npz(dataset, tmp_path / "run.npz")
    loaded = load_npz(tmp_path / "run.npz")
    assert loaded.notes == ("alignment assumed",)
    assert loaded.fingerprint() == dataset.fingerprint()


def test_npz_round_trip_keeps_step_names(tmp_path):
    steps = np.repeat([100, 101], [2, 2])
    dataset = HSIDataset(**{**inputs(), "steps": steps, "step_names": {101: "final"}})
    write_npz(dataset, tmp_path / "run.npz")
    loaded = load_npz(tmp_path / "run.npz")
    assert dict(loaded.step_names) == {101: "final"} and loaded.step_label(100) == "100"
    arrays = {**raw_arrays(), "steps": steps, "named_steps": np.array([101])}
    with pytest.raises(ValueError, match="`named_steps` and `step_names` must be stored together, but only "
                                         "named_steps was found"):
        load_npz(write_raw_npz(tmp_path / "half.npz", **arrays))


@pytest.mark.parametrize(("names", "steps", "message"), [
    ({7: "final"}, [1, 1, 2, 2], "`step_names` keys must be training steps of the dataset ([1, 2]), but 7 was passed"),
    ({2: " "}, [1, 1, 2, 2], "`step_names[2]` must be a non-empty string, but ' ' was passed"),
    ({1: "a", 2: "a"}, [1, 1, 2, 2], "must give each step its own name"),
    ({2: "final"}, None, "`step_names` names training steps, but the dataset has no `steps`"),
    (["final"], [1, 1, 2, 2], "`step_names` must be a mapping of training step to name, but list was passed"),
])
def test_step_names_are_checked(names, steps, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        HSIDataset(**{**inputs(), "steps": steps, "step_names": names})


def test_npz_loads_minimal_file(tmp_path):
    loaded = load_npz(write_raw_npz(tmp_path / "min.npz", **raw_arrays()))
    assert loaded.feature_names == FEATURE_NAMES
    np.testing.assert_array_equal(loaded.features["ttc"], inputs()["features"]["ttc"])
    assert loaded.mask.all() and loaded.steps is None


@pytest.mark.parametrize("missing", ["attention", "features", "feature_names"])
def test_npz_missing_key_is_named(tmp_path, missing):
    arrays = raw_arrays()
    del arrays[missing]
    path = write_raw_npz(tmp_path / "partial.npz", **arrays)
    message = f"must contain ['attention', 'features', 'feature_names'], but ['{missing}'] are missing"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_npz(path)


def test_npz_feature_names_must_match_features(tmp_path):
    path = write_raw_npz(tmp_path / "names.npz", **{**raw_arrays(), "feature_names": np.array(["ttc"])})
    with pytest.raises(ValueError, match=re.escape("F = len(feature_names) = 1, but it has shape (4, 2, 5)")):
        load_npz(path)


def test_npz_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(ValueError, match=re.escape(f"`path` must be an existing .npz file, but "
                                                   f"{str(path)!r} does not exist")):
        load_npz(path)


class _RunsCode:
    """Unpickling this object creates a directory: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.mark.parametrize("key", ["feature_names", "groups", "head_names"])
def test_npz_refuses_pickled_arrays_without_running_them(tmp_path, key):
    marker = tmp_path / "code-ran"
    payload = np.array([_RunsCode(marker), "x"], dtype=object)
    path = write_raw_npz(tmp_path / "evil.npz", **{**raw_arrays(), key: payload})
    with pytest.raises(ValueError, match="needs pickle to load, which is refused"):
        load_npz(path)
    assert not marker.exists()


def test_npz_rejects_a_file_that_is_not_numpy(tmp_path):
    path = tmp_path / "notes.npz"
    path.write_text("not an array file")
    with pytest.raises(ValueError, match=re.escape("not an .npz file (an .npz file is a zip archive")) as caught:
        load_npz(path)
    assert "allow_pickle" not in str(caught.value)  # numpy's advice would be wrong here
    np.save(tmp_path / "single.npy", np.ones(3))
    (tmp_path / "single.npy").rename(tmp_path / "single.npz")  # a .npy file under an .npz name
    with pytest.raises(ValueError, match=re.escape("not an .npz file")):
        load_npz(tmp_path / "single.npz")


def _zip_garbage(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 truncated")


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _plain_npy(path: Path) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ones(3))


@pytest.mark.parametrize("writer", [_zip_garbage, _empty, _plain_npy], ids=["corrupt-zip", "empty", "npy"])
def test_npz_rejects_broken_files_with_a_clear_error(tmp_path, writer):
    path = tmp_path / "broken.npz"
    writer(path)
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_npz(path)


def test_npz_refuses_duplicate_feature_names(tmp_path):
    path = write_raw_npz(tmp_path / "dup.npz", **{**raw_arrays(), "feature_names": np.array(["a", "a"])})
    with pytest.raises(ValueError, match="feature_names"):
        load_npz(path)


def test_read_only_inputs_and_copy_false_are_held_once():
    args = inputs()
    frozen = args["attention"].copy()
    frozen.setflags(write=False)
    kept = HSIDataset(frozen, args["features"])
    assert np.shares_memory(kept.attention, frozen)  # cannot change through `frozen`: no copy needed
    assert not np.shares_memory(kept.features["ttc"], args["features"]["ttc"])  # writeable: copied
    views = HSIDataset(args["attention"], args["features"], mask=args["mask"], copy=False)
    assert np.shares_memory(views.attention, args["attention"])
    assert np.shares_memory(views.features["ttc"], args["features"]["ttc"])
    assert not views.attention.flags.writeable and not views.features["ttc"].flags.writeable
    converted = HSIDataset(args["attention"].astype(np.float32), args["features"])
    assert converted.attention.dtype == np.float64  # a converted input is new memory, copied once


def test_fingerprint_does_not_depend_on_the_chunk_size(monkeypatch):
    import hsi_stats.chunks

    dataset = build()
    before = dataset.fingerprint()
    monkeypatch.setattr(hsi_stats.chunks, "CHUNK_VALUES", dataset.n_heads * dataset.n_slots)  # one scenario
    assert dataset.fingerprint() == before
