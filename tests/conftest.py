"""Shared test configuration: Hypothesis profiles and the import path of the source tree.

Both profiles are derandomized, so a property test draws the same examples on every run and never
flakes; ``CI`` selects the profile meant for continuous integration. No example database is written
into the tree.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from hypothesis import settings

if importlib.util.find_spec("hsi_stats") is None:  # a source tree that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

settings.register_profile("ci", derandomize=True, deadline=None, database=None, print_blob=True)
settings.register_profile("dev", derandomize=True, deadline=None, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
