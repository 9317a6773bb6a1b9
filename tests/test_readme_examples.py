"""The examples users read run as written: each code block after an ``<!-- example: NAME -->`` marker in the README
or in a Markdown page of ``docs/`` is executed.

The pages show the examples that need PyTorch, highway-env or JAX with recorded output and do not execute them
when the documentation is built; this test is where they run. The gallery (``examples/gallery/``) is executed by
the documentation build itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = (ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md")))
#: Example -> the packages it needs (the test-full extra installs them; elsewhere the example is skipped).
NEEDS = {"highway": ("torch", "highway_env"), "flax": ("jax", "flax"), "explain": (), "joint": (),
         "ablation": ("torch", "highway_env"), "quickstart": (), "compare": ()}


def _examples() -> dict[str, tuple[Path, str]]:
    found: dict[str, tuple[Path, str]] = {}
    for page in PAGES:
        if "_build" in page.parts:
            continue
        text = page.read_text(encoding="utf-8")
        for name, code in re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, flags=re.DOTALL):
            assert name not in found, f"example {name!r} is marked in {found[name][0]} and in {page}"
            found[name] = (page, code)
    return found


def test_every_marked_example_is_tested() -> None:
    assert set(_examples()) == set(NEEDS)


SLOW = ("highway", "ablation")  # roll-outs in highway-env


def _marks(name: str) -> list[pytest.MarkDecorator]:
    """``slow`` for roll-outs, ``extras`` for an example that needs a framework (the full tier runs both)."""
    return [pytest.mark.slow] * (name in SLOW) + [pytest.mark.extras] * bool(NEEDS[name])


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name)) for name in sorted(NEEDS)])
def test_the_marked_example_runs(name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an example may write files
    for package in NEEDS[name]:
        pytest.importorskip(package, reason=f"the {name} example needs {package}")
    page, code = _examples()[name]
    exec(compile(code, f"{page.relative_to(ROOT)} example {name}", "exec"), {"__name__": "__readme__"})
    printed = capsys.readouterr().out
    if name == "highway":
        assert "HSI analysis" in printed
    if name == "ablation":  # both heads removed, open and closed loop, and the report's section
        assert "attention:h0" in printed and "attention:h1" in printed and "return_delta" in printed
        assert "What removing each head does" in (tmp_path / "ablation_report" / "report.html").read_text()
    if name == "explain":
        assert "h0 (Safety Head): attends" in printed and "no claim (no validated label)" in printed
    if name == "joint":  # both Proximity Heads at the margin, told apart by their profiles
        lines = printed.splitlines()
        lead = next(line for line in lines if line.strip().startswith("lead"))
        nearest = next(line for line in lines if line.strip().startswith("nearest"))
        assert "Proximity Head" in lead and "Proximity Head" in nearest
        assert "is_ahead ×" in lead and "is_ahead" not in nearest
    if name == "compare":  # three runs, each planted function found in every one
        assert "Comparison of 3 runs (seed0, seed1, seed2)" in printed and "Safety Head          3     3" in printed
    if name == "quickstart":  # the planted heads are found; the registry and the report are written
        assert "Safety Head" in printed and "General Context Head" in printed
        assert (tmp_path / "head_functions.json").is_file()
        assert (tmp_path / "reports" / "run1" / "report.html").is_file()
