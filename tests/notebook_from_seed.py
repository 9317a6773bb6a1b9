"""Rebuild the original head-specialization notebook from its text and run notebooks with nbclient.

The original notebook is kept as text (``tests/data/original_notebook.txt``): markdown, and code cells each opened
by a line ``In [None]:``. :func:`parse_seed` turns that text back into cells, :func:`seed_notebook` builds the
notebook with exactly two kinds of change (the import line now reads ``from hsi_stats.compat import (`` and the three
configuration paths ``FEATURE_DIR``, ``ATTENTION_DIR``, ``OUTPUT_DIR`` point at the given folders) and
:func:`execute` runs a notebook top to bottom.

Used by ``tests/test_notebooks.py`` and by ``nox -s notebooks``, which runs this file::

    python tests/notebook_from_seed.py --out DIR [--full]

It writes demo logs in the original two-directory layout, runs the rebuilt original notebook and
``examples/head_specialization.ipynb`` and keeps the executed notebooks and their outputs in ``DIR``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import nbformat

REPO = Path(__file__).resolve().parents[1]
SEED_TEXT = REPO / "tests" / "data" / "original_notebook.txt"
EXAMPLE = REPO / "examples" / "head_specialization.ipynb"

CODE_MARKER = "In [None]:"
ORIGINAL_IMPORT = "from head_specialization_analysis import ("
COMPAT_IMPORT = "from hsi_stats.compat import ("
CONFIG_PATHS = ("FEATURE_DIR", "ATTENTION_DIR", "OUTPUT_DIR")
# A markdown heading of level 2 or more ends a code cell (code comments in the seed use a single "#").
_HEADING = re.compile(r"^#{2,} \S")

#: Small demo settings for the test suite (the nox session runs the example at its full size).
SMALL_EXAMPLE = {"N_EPISODES": 12, "N_STEPS": 10, "CHECKPOINTS": (100_000, 500_000, 1_000_000), "N_RESAMPLES": 999}


def parse_seed(text: str) -> list[tuple[str, str]]:
    """The cells of a notebook written as text, as ``(kind, source)`` with kind ``"markdown"`` or ``"code"``.

    A line ``In [None]:`` opens a code cell, which runs until the next such line or the next markdown heading of
    level two or more (``## ...``); everything else is markdown. Blank lines around a cell are dropped.
    """
    cells: list[tuple[str, list[str]]] = []
    kind, lines = "markdown", []  # type: tuple[str, list[str]]
    for line in text.splitlines():
        if line.strip() == CODE_MARKER:
            cells.append((kind, lines))
            kind, lines = "code", []
        elif kind == "code" and _HEADING.match(line):
            cells.append((kind, lines))
            kind, lines = "markdown", [line]
        else:
            lines.append(line)
    cells.append((kind, lines))
    return [(kind, "\n".join(lines).strip("\n")) for kind, lines in cells if "".join(lines).strip()]


def seed_notebook(text: str, paths: Mapping[str, str | Path]) -> nbformat.NotebookNode:
    """The seed notebook with only its import line changed and its configuration paths set from ``paths``."""
    cells = []
    changed = dict.fromkeys([ORIGINAL_IMPORT, *CONFIG_PATHS], 0)
    for kind, source in parse_seed(text):
        if kind == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(source))
            continue
        lines = source.split("\n")
        for i, line in enumerate(lines):
            if line.strip() == ORIGINAL_IMPORT:
                lines[i] = line.replace(ORIGINAL_IMPORT, COMPAT_IMPORT)
                changed[ORIGINAL_IMPORT] += 1
            name = line.split("=", 1)[0].strip()
            if name in CONFIG_PATHS and line.startswith(name):
                lines[i] = f"{name} = {str(paths[name])!r}"
                changed[name] += 1
        cells.append(nbformat.v4.new_code_cell("\n".join(lines)))
    if any(count != 1 for count in changed.values()):
        raise ValueError(f"expected to change each of {list(changed)} exactly once, but changed {changed}")
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return notebook


def write_demo_logs(root: Path, *, n_episodes: int = 12, n_steps: int = 10,
                    checkpoints: tuple[int, ...] = (100_000, 200_000), rng: int = 0,
                    with_steps: bool = True) -> tuple[Path, Path]:
    """Synthetic logs in the two-directory layout (as ``hsi-stats demo`` writes them; ``with_steps=False``: as the
    original logger wrote them, attention files without a ``step``)."""
    from hsi_stats.synthetic import generate, write_driving_logs

    feature_dir, attention_dir = root / "logs" / "features", root / "logs" / "attention"
    run = generate(n_episodes=n_episodes, n_steps=n_steps, checkpoints=checkpoints, rng=rng)
    write_driving_logs(run, feature_dir, attention_dir, rng=rng, include_steps=with_steps)
    return feature_dir, attention_dir


def with_parameters(notebook: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """A copy with a cell assigning ``parameters`` inserted after the cell tagged ``parameters`` (papermill style)."""
    copy = nbformat.from_dict(notebook)
    index = next(i for i, cell in enumerate(copy.cells) if "parameters" in cell.metadata.get("tags", []))
    source = "# injected parameters\n" + "\n".join(f"{name} = {value!r}" for name, value in parameters.items())
    copy.cells.insert(index + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return copy


def execute(notebook: nbformat.NotebookNode, cwd: Path, *, timeout: int = 120) -> nbformat.NotebookNode:
    """Run every cell in order in a fresh ``python3`` kernel started in ``cwd``; a failing cell raises."""
    from nbclient import NotebookClient

    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": cwd}})
    client.execute()
    return notebook


def run_seed_notebook(out: Path, *, timeout: int = 120) -> nbformat.NotebookNode:
    """Write logs as the original logger did (no ``step`` in the attention files) under ``out``, rebuild the
    original notebook pointing at them and run it in ``out``."""
    out = out.resolve()  # the notebook runs in ``out``: its paths must not be relative to the caller's folder
    feature_dir, attention_dir = write_demo_logs(out, with_steps=False)
    paths = {"FEATURE_DIR": feature_dir, "ATTENTION_DIR": attention_dir, "OUTPUT_DIR": out / "hsi_results"}
    notebook = seed_notebook(SEED_TEXT.read_text(encoding="utf-8"), paths)
    return execute(notebook, out, timeout=timeout)


def run_example(out: Path, *, parameters: Mapping[str, Any] | None = None, timeout: int = 300) -> nbformat.NotebookNode:
    """Run ``examples/head_specialization.ipynb`` in ``out`` (where it writes its demo logs and results)."""
    notebook = nbformat.read(EXAMPLE, as_version=4)
    if parameters:
        notebook = with_parameters(notebook, parameters)
    return execute(notebook, out, timeout=timeout)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for the logs, results and executed notebooks")
    parser.add_argument("--full", action="store_true", help="run the example at its full demo size")
    args = parser.parse_args(argv)
    for name, run in (("original_notebook", lambda out: run_seed_notebook(out)),
                      ("head_specialization", lambda out: run_example(
                          out, parameters=None if args.full else SMALL_EXAMPLE))):
        folder = (args.out / name).resolve()
        folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(run(folder), folder / f"{name}.executed.ipynb")
        print(f"executed {name}: {folder}")


if __name__ == "__main__":
    main()
