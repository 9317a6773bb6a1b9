"""The safe unpickler: plain data and numpy arrays load, anything that could run code is refused
before it runs, and ``trust_pickle=True`` falls back to plain pickle."""

from __future__ import annotations

import collections
import math
import os
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from hsi_stats._validation import HSIDataError
from hsi_stats.io.safe_pickle import UnsafePickleError, safe_load_pickle

REFUSAL = "only plain containers, numbers, strings and numpy arrays are accepted"


def _write_marker(path: str) -> str:
    Path(path).write_text("the pickle ran code")
    return "ran"


class _WritesMarker:
    """Unpickling this calls ``_write_marker``: the payload a malicious file would carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return _write_marker, (str(self.marker),)


class _CallsOsSystem:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return os.system, (f"touch {self.marker}",)


class _CallsEval:
    def __reduce__(self) -> tuple[Any, ...]:
        return eval, ("1 + 1",)


class Point:
    """An ordinary user class: refused by default, loaded when trusted."""

    def __init__(self, x: float = 0.0, y: float = 0.0) -> None:
        self.x, self.y = x, y


def _dump(path: Path, obj: object, protocol: int = pickle.DEFAULT_PROTOCOL) -> Path:
    with open(path, "wb") as handle:
        pickle.dump(obj, handle, protocol=protocol)
    return path


def _qualified(obj: Any) -> str:
    return re.escape(f"`{obj.__module__}.{obj.__qualname__}`")


# ---------------------------------------------------------------------------------- refusal
@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_refuses_a_function_call_before_it_runs(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "marker.txt"
    path = _dump(tmp_path / "evil.pkl", {"step": 1, "payload": _WritesMarker(marker)}, protocol)
    with pytest.raises(UnsafePickleError, match=_qualified(_write_marker)) as info:
        safe_load_pickle(path)
    assert not marker.exists()
    message = str(info.value)
    assert str(path) in message
    assert REFUSAL in message
    assert "trust_pickle=True" in message and "--trust-pickle" in message


def test_refuses_os_system(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    path = _dump(tmp_path / "evil.pkl", [_CallsOsSystem(marker)])
    with pytest.raises(UnsafePickleError, match=re.escape(f"`{os.system.__module__}.system`")):
        safe_load_pickle(path)
    assert not marker.exists()


def test_refuses_builtins_outside_the_allow_list(tmp_path: Path) -> None:
    path = _dump(tmp_path / "eval.pkl", _CallsEval(), protocol=2)
    with pytest.raises(UnsafePickleError, match=r"`builtins\.eval`"):
        safe_load_pickle(path)


def test_unsafe_error_is_a_data_error() -> None:
    assert issubclass(UnsafePickleError, HSIDataError)
    assert issubclass(UnsafePickleError, ValueError)


def test_refuses_a_user_class_but_trusting_loads_it(tmp_path: Path) -> None:
    path = _dump(tmp_path / "point.pkl", {"p": Point(1.0, 2.0)})
    with pytest.raises(UnsafePickleError, match=_qualified(Point)):
        safe_load_pickle(path)
    loaded = safe_load_pickle(path, trust_pickle=True)
    assert isinstance(loaded["p"], Point)
    assert (loaded["p"].x, loaded["p"].y) == (1.0, 2.0)


def test_trust_pickle_is_plain_pickle(tmp_path: Path) -> None:
    # With trust the file is loaded as pickle would load it: the payload does run.
    marker = tmp_path / "marker.txt"
    path = _dump(tmp_path / "trusted.pkl", _WritesMarker(marker))
    assert safe_load_pickle(path, trust_pickle=True) == "ran"
    assert marker.exists()


def test_codecs_encode_only_decodes_latin1(tmp_path: Path) -> None:
    path = tmp_path / "rot13.pkl"
    path.write_bytes(b"c_codecs\nencode\n(Vabc\nVrot13\ntR.")
    with pytest.raises(HSIDataError, match=r"rot13\.pkl: not a readable pickle.*latin-1"):
        safe_load_pickle(path)


# ---------------------------------------------------------------------------------- bad files
@pytest.mark.parametrize("trust", [False, True])
def test_truncated_file_is_a_data_error(tmp_path: Path, trust: bool) -> None:
    data = pickle.dumps({"x": np.arange(100.0)}, protocol=4)
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(HSIDataError, match=rf"{re.escape(str(path))}: not a readable pickle file"):
        safe_load_pickle(path, trust_pickle=trust)


@pytest.mark.parametrize("content", [b"", b"this is not a pickle", b"\x80\x05\x95garbage"])
def test_garbage_file_is_a_data_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pkl"
    path.write_bytes(content)
    with pytest.raises(HSIDataError, match=r"garbage\.pkl: not a readable pickle file"):
        safe_load_pickle(path)


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(HSIDataError, match=r"`path` must be an existing pickle file.*nope\.pkl"):
        safe_load_pickle(tmp_path / "nope.pkl")


# ---------------------------------------------------------------------------------- plain data
ARRAYS = {
    "float32": np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4),
    "float64_nan_inf": np.array([1.5, np.nan, np.inf, -np.inf]),
    "bool": np.array([[True, False], [False, True]]),
    "int64": np.arange(-5, 5, dtype=np.int64),
    "int32_big_endian": np.arange(4, dtype=">i4"),
    "uint8": np.arange(7, dtype=np.uint8),
    "zero_d": np.array(3.25),
    "empty": np.zeros((0, 3)),
    "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    "strings": np.array(["ttc", "distance_to_ego", ""], dtype=object),
    "unicode": np.array(["a", "bé"]),
}


@pytest.mark.parametrize("protocol", [2, 4, 5])
@pytest.mark.parametrize("name", sorted(ARRAYS))
def test_numpy_arrays_load(tmp_path: Path, protocol: int, name: str) -> None:
    array = ARRAYS[name]
    path = _dump(tmp_path / "a.pkl", {"a": array}, protocol)
    loaded = safe_load_pickle(path)["a"]
    # Exactly what plain pickle gives (which, with some protocols, is native byte order).
    expected = pickle.loads(path.read_bytes())["a"]
    assert isinstance(loaded, np.ndarray)
    assert loaded.dtype == expected.dtype and loaded.shape == array.shape
    assert loaded.flags.f_contiguous == expected.flags.f_contiguous
    assert np.array_equal(loaded, array, equal_nan=array.dtype.kind == "f")


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_scalars_load(tmp_path: Path, protocol: int) -> None:
    scalars = [np.float64(2.5), np.float32(-1.0), np.int64(7), np.bool_(True), np.int8(-3)]
    loaded = safe_load_pickle(_dump(tmp_path / "s.pkl", scalars, protocol))
    assert [type(x) for x in loaded] == [type(x) for x in scalars]
    assert loaded == scalars


def test_numpy_1_module_names_load_without_deprecation_warnings(tmp_path: Path) -> None:
    # numpy 1.x writes ``numpy.core.multiarray``; numpy 2 deprecates that alias (and pytest turns
    # its DeprecationWarning into an error), so the loader must resolve it without touching it.
    value = {"array": np.arange(4.0), "scalar": np.float64(1.5)}
    data = pickle.dumps(value, protocol=2)
    if b"numpy._core." in data:
        data = data.replace(b"cnumpy._core.", b"cnumpy.core.")
    assert b"cnumpy.core.multiarray\n" in data
    path = tmp_path / "numpy1.pkl"
    path.write_bytes(data)
    loaded = safe_load_pickle(path)
    np.testing.assert_array_equal(loaded["array"], value["array"])
    assert loaded["scalar"] == value["scalar"]


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_containers_load(tmp_path: Path, protocol: int) -> None:
    value = {
        "list": [1, 2.5, "three", None, True],
        "tuple": (1, (2, 3)),
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "bytes": b"\x00\xff raw",
        "empty_bytes": b"",
        "bytearray": bytearray(b"xyz"),
        "complex": 1 + 2j,
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "default": collections.defaultdict(list, {"k": [1]}),
        "big_int": 2**100,
        7: "int key",
    }
    loaded = safe_load_pickle(_dump(tmp_path / "c.pkl", value, protocol))
    assert loaded == value
    assert type(loaded["ordered"]) is collections.OrderedDict
    assert list(loaded["ordered"]) == ["b", "a"]
    assert type(loaded["default"]) is collections.defaultdict
    assert loaded["default"].default_factory is list


def test_defaultdict_factory_goes_through_the_allow_list(tmp_path: Path) -> None:
    path = _dump(tmp_path / "d.pkl", collections.defaultdict(Point))
    with pytest.raises(UnsafePickleError, match=_qualified(Point)):
        safe_load_pickle(path)


# ---------------------------------------------------------------------------------- round trip
def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return (a.dtype == b.dtype and a.shape == b.shape
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


_numpy_arrays = hnp.arrays(
    dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int16, np.uint8, np.bool_]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4),
)
_leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
           | st.binary(max_size=10) | _numpy_arrays)


def _containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (st.lists(children, max_size=4) | st.tuples(children, children)
            | st.dictionaries(st.text(max_size=6), children, max_size=4))


_nested = st.recursive(_leaves, _containers, max_leaves=12)


@given(value=_nested, protocol=st.sampled_from([2, 3, 4, 5]))
def test_plain_data_round_trips(tmp_path_factory: pytest.TempPathFactory, value: Any,
                                protocol: int) -> None:
    path = tmp_path_factory.getbasetemp() / "round_trip.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    assert _same(safe_load_pickle(path), value)
