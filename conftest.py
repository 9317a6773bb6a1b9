"""The two test tiers.

``nox -s tests`` (the quick tier) installs the package with its light test extra and runs
``pytest -m "not slow and not extras" --ignore=tests/extras``; ``nox -s tests_full`` installs the frameworks
(torch, highway-env, dask, jax/flax, a notebook kernel) and runs everything. Tests under ``tests/extras`` and the
doctests of the modules that drive a live PyTorch model are marked ``extras`` here, so that
``-m "not extras"`` leaves them out wherever they are collected. Modules that import a framework when they are
loaded are not collected for their doctests where that framework is not installed (the quick tier's environment).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

import pytest

EXTRAS_TESTS = Path(__file__).resolve().parent / "tests" / "extras"
#: Modules whose doctests run a real PyTorch model.
EXTRAS_DOCTESTS = ("hsi_stats.capture.ablation", "hsi_stats.capture.torch_recorder")
#: Module -> the package it imports when it is loaded.
LOADS = {"hsi_stats/capture/ablation.py": "torch", "hsi_stats/capture/torch_recorder.py": "torch",
         "hsi_stats/capture/highway.py": "highway_env", "hsi_stats/synthetic/policy.py": "torch",
         "tests/notebook_from_seed.py": "nbformat"}
collect_ignore = [module for module, package in LOADS.items() if find_spec(package) is None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        in_folder = EXTRAS_TESTS in Path(item.path).resolve().parents
        doctest = item.name.startswith(EXTRAS_DOCTESTS)  # a doctest's name is its object's dotted path
        if in_folder or doctest:
            item.add_marker(pytest.mark.extras)
