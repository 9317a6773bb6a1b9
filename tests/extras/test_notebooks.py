"""The notebooks run top to bottom: the original notebook on hsi_stats.compat, and the maintained example.

The original notebook is rebuilt from its text (``tests/data/original_notebook.txt``) with only its import line and
its three configuration paths changed, and run with nbclient on demo logs in the original two-directory layout.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("nbclient", reason="the notebook tests need nbclient (extra `test`)")
pytest.importorskip("ipykernel", reason="the notebook tests need ipykernel (extra `test`)")

import nbformat

from tests.notebook_from_seed import (
    COMPAT_IMPORT,
    EXAMPLE,
    ORIGINAL_IMPORT,
    SEED_TEXT,
    SMALL_EXAMPLE,
    parse_seed,
    run_example,
    run_seed_notebook,
    seed_notebook,
)

pytestmark = pytest.mark.slow  # executes notebooks in a kernel

SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "000_ab47f41b40a66697.txt"


def _outputs(notebook: nbformat.NotebookNode, kind: str) -> str:
    """All text a notebook's cells wrote to ``kind`` ("stdout" or "stderr")."""
    return "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                   for output in cell.outputs if output.output_type == "stream" and output.name == kind)


def test_the_copy_is_the_original_notebook_text() -> None:
    if not SHARED_SEED.is_file():
        pytest.skip(f"the shared seed {SHARED_SEED} is not beside this checkout")
    assert SEED_TEXT.read_text(encoding="utf-8") == SHARED_SEED.read_text(encoding="utf-8")


def test_seed_text_parses_into_the_original_cells() -> None:
    text = SEED_TEXT.read_text(encoding="utf-8")
    cells = parse_seed(text)
    code = [source for kind, source in cells if kind == "code"]
    assert len(code) == text.count("In [None]:") == 15
    assert cells[0][0] == "markdown" and cells[0][1].startswith("# Head Specialization Analysis")
    assert code[0].startswith("# ====") and code[-1].endswith('print("=" * 60)')
    assert all("## " not in source.split("\n", 1)[0] for source in code)


def test_rebuilt_notebook_changes_only_the_import_and_the_three_paths() -> None:
    text = SEED_TEXT.read_text(encoding="utf-8")
    paths = {"FEATURE_DIR": "/f", "ATTENTION_DIR": "/a", "OUTPUT_DIR": "/o"}
    rebuilt = seed_notebook(text, paths)
    original = [line for _, source in parse_seed(text) for line in source.split("\n")]
    changed = [line for cell in rebuilt.cells for line in cell.source.split("\n")]
    assert len(original) == len(changed)
    differences = {(a, b) for a, b in zip(original, changed, strict=True) if a != b}
    assert {b for _, b in differences} == {COMPAT_IMPORT, "FEATURE_DIR = '/f'", "ATTENTION_DIR = '/a'",
                                           "OUTPUT_DIR = '/o'"}
    assert ORIGINAL_IMPORT in {a for a, _ in differences}


def test_original_notebook_runs_on_compat(tmp_path: Path) -> None:
    notebook = run_seed_notebook(tmp_path, timeout=120)

    results = tmp_path / "hsi_results"
    for name in ("head_functions.json", "correlation_heatmap.png", "hsi_scores.png"):
        assert (results / name).is_file(), name
    registry = json.loads((results / "head_functions.json").read_text())
    assert {"0", "1", "2", "3"} <= set(registry)
    stdout = _outputs(notebook, "stdout")
    assert "⚠" not in stdout  # no cell fell back to its "could not" branch
    assert stdout.count("hsi_stats.compat: compute_hsi() runs hsi_stats.analyze") == 1
    assert "Head Specialization Analysis Complete" in stdout
    assert "Name: Proximity Head" in stdout


def test_example_notebook_runs(tmp_path: Path) -> None:
    notebook = run_example(tmp_path, parameters=SMALL_EXAMPLE, timeout=120)

    results = tmp_path / "hsi_demo" / "results"
    for name in ("head_functions.json", "report.html", "report.pdf", "heads.csv"):
        assert (results / name).is_file(), name
    stdout = _outputs(notebook, "stdout")
    assert "validated labels at step 1000000" in stdout
    assert "original HSI" in stdout


def test_committed_example_has_no_outputs() -> None:
    notebook = nbformat.read(EXAMPLE, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
    assert any("parameters" in cell.metadata.get("tags", []) for cell in code)
