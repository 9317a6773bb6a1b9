"""The package's shape: no import cycle, statistics that never import plotting, modules of a readable size.

The import graph is read from the source with :mod:`ast` (every ``import`` and ``from ... import``, those inside
functions too; imports under ``if TYPE_CHECKING:`` are for annotations only and are left out). Importing a module
of a subpackage also runs the subpackage's ``__init__``, so that edge is part of the graph (except towards the
importer's own packages, which are already being imported). Each check is first shown to catch what it is for on
a small package written here.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hsi_stats"
MAX_LINES = 600
#: Modules that compute statistics or read data: none may import a plotting library or the report.
STATISTICS = ("hsi_stats._validation", "hsi_stats.settings", "hsi_stats.catalog", "hsi_stats.data", "hsi_stats.io",
              "hsi_stats.group_sums", "hsi_stats.estimators", "hsi_stats.inference", "hsi_stats.labels",
              "hsi_stats.registry", "hsi_stats.results", "hsi_stats.evolution", "hsi_stats.synthetic",
              "hsi_stats.ablation", "hsi_stats.compare", "hsi_stats.runs")
PLOTTING = ("matplotlib", "seaborn", "hsi_stats.report")


# --------------------------------------------------------------------------------------- reading the graph
def _modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every ``.py`` file of the package at ``root``."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs, wherever it stands (not under ``if TYPE_CHECKING:``)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _imported(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Absolute names of what module ``name`` imports (package-internal or not)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            targets.add(submodule if submodule in modules else base)
    return targets


def import_graph(root: Path) -> dict[str, set[str]]:
    """Package-internal import edges, including the implicit ones to the ``__init__`` of a target's packages."""
    modules = _modules(root)
    top = root.name
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
        edges = set()
        for target in _imported(name, path, modules):
            if target.split(".")[0] != top:
                continue
            parts = target.split(".")
            for i in range(2, len(parts) + 1):  # the target's packages below the top one, and the target
                step = ".".join(parts[:i])
                if step in modules and step not in own_packages:
                    edges.add(step)
        graph[name] = edges - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


@functools.cache
def all_imports(root: Path) -> dict[str, set[str]]:
    """Every module's runtime imports, internal or not (absolute names)."""
    modules = _modules(root)
    return {name: _imported(name, path, modules) for name, path in modules.items()}


# --------------------------------------------------------------------------------------- the checks can fail
def _write(root: Path, files: dict[str, str]) -> Path:
    for relative, text in files.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return root


def test_the_graph_reader_finds_cycles_direct_lazy_and_through_a_package(tmp_path: Path) -> None:
    package = _write(tmp_path / "pkg", {
        "__init__.py": "from .a import x\n",
        "a.py": "from .b import y\nx = 1\n",
        "b.py": "def f():\n    from .a import x\ny = 2\n",  # lazy import: still a cycle
        "typed.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .c import z\n",
        "c.py": "from .typed import TYPE_CHECKING\nz = 3\n",  # typed -> c only for annotations: no cycle
        "sub/__init__.py": "from .m import w\n",
        "sub/m.py": "from ..d import v\nw = 4\n",
        "d.py": "from .sub.other import u\nv = 5\n",  # runs sub/__init__, which imports m, which imports d
        "sub/other.py": "u = 6\n",
    })
    found = cycles(import_graph(package))
    assert ["pkg.a", "pkg.b"] in found
    assert ["pkg.d", "pkg.sub", "pkg.sub.m"] in found
    assert not any("pkg.c" in component for component in found)


# --------------------------------------------------------------------------------------- the package
def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph(PACKAGE)
    assert "hsi_stats.io.npz" in graph["hsi_stats.io"] and "hsi_stats.data" in graph["hsi_stats.io.npz"]
    assert cycles(graph) == []


@pytest.mark.parametrize("layer", STATISTICS)
def test_statistics_and_data_never_import_plotting(layer: str) -> None:
    imports = all_imports(PACKAGE)
    offenders = {name: sorted(t for t in targets if t.split(".")[0] in ("matplotlib", "seaborn")
                              or t.startswith("hsi_stats.report"))
                 for name, targets in imports.items() if name == layer or name.startswith(layer + ".")}
    assert offenders, f"no module named {layer}"
    assert {name: found for name, found in offenders.items() if found} == {}


def test_no_module_imports_a_private_name_of_another() -> None:
    modules = _modules(PACKAGE)
    offenders = []
    for name, path in modules.items():
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                offenders += [f"{name}: {node.module}.{a.name}" for a in node.names
                              if a.name.startswith("_") and not a.name.startswith("__")]
    assert offenders == []


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def test_long_modules_say_why() -> None:
    long = {name: path for name, path in _modules(PACKAGE).items() if _line_count(path) > MAX_LINES}
    unexplained = [name for name, path in long.items()
                   if "Why it is longer" not in (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
                                                 or "")]
    assert unexplained == [], f"modules over {MAX_LINES} lines without a reason in their docstring"
    assert len(long) <= 1, f"more than one long module: {sorted(long)}"
