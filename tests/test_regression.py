"""Same seed, same numbers: the reference analyses of ``tests/regression_reference.py`` against the stored numbers.

The reference was written by the package before a refactoring; every estimate, interval, p-value, label and the
registry itself must come out the same. Floating values are compared to a relative 1e-10 (the last bits may move
with a numpy release); strings, booleans and counts exactly.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from tests.regression_reference import REFERENCE, compute


def _differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every place where ``actual`` departs from ``expected`` (floats to a relative 1e-10)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{path}: keys {sorted(set(expected) ^ set(actual))} differ"] if set(expected) != set(actual) else []
        for key in set(expected) & set(actual):
            found += _differences(expected[key], actual[key], f"{path}/{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: length {len(actual)} instead of {len(expected)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True))
                for d in _differences(e, a, f"{path}[{i}]")]
    both_numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (expected, actual))
    if both_numbers and (isinstance(expected, float) or isinstance(actual, float)):
        if math.isclose(expected, actual, rel_tol=1e-10, abs_tol=1e-12):
            return []
    elif expected == actual and type(expected) is type(actual):
        return []
    return [f"{path}: {actual!r} instead of {expected!r}"]


@pytest.fixture(scope="module")
def recomputed() -> dict[str, Any]:
    return json.loads(json.dumps(compute()))  # no warning either: the suite turns warnings into errors


def test_reference_cases_give_the_stored_numbers(recomputed: dict[str, Any]) -> None:
    stored = json.loads(REFERENCE.read_text(encoding="utf-8"))
    differences = _differences(stored, recomputed)
    assert not differences, f"{len(differences)} difference(s), e.g. " + "; ".join(differences[:8])


def test_the_comparison_can_fail(recomputed: dict[str, Any]) -> None:
    # A one-ulp-scale change passes, a change in the fourth digit of one interval does not.
    changed = json.loads(json.dumps(recomputed))
    head = changed["cases"]["defaults"]["registry"]["0"]
    head["hsi_ci"][0] *= 1 + 1e-14
    assert not _differences(recomputed, changed)
    head["hsi_ci"][0] *= 1.0001
    assert _differences(recomputed, changed) == [
        f"/cases/defaults/registry/0/hsi_ci[0]: {head['hsi_ci'][0]!r} instead of "
        f"{recomputed['cases']['defaults']['registry']['0']['hsi_ci'][0]!r}"]
    changed["cases"]["defaults"]["registry"]["1"]["validated"] = False
    assert len(_differences(recomputed, changed)) == 2
