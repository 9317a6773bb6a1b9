"""The README's examples run as written: each code block after an ``<!-- example: NAME -->`` marker is executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
#: Example -> the packages it needs (the test-full extra installs them; elsewhere the example is skipped).
NEEDS = {"highway": ("torch", "highway_env"), "flax": ("jax", "flax"), "explain": (), "joint": (),
         "ablation": ("torch", "highway_env")}


def _examples() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    return dict(re.findall(r"<!-- example: (\w+) -->\n```python\n(.*?)```", text, flags=re.DOTALL))


def test_every_marked_example_is_tested() -> None:
    assert set(_examples()) == set(NEEDS)


SLOW = ("highway", "ablation")  # roll-outs in highway-env


def _marks(name: str) -> list[pytest.MarkDecorator]:
    """``slow`` for roll-outs, ``extras`` for an example that needs a framework (the full tier runs both)."""
    return [pytest.mark.slow] * (name in SLOW) + [pytest.mark.extras] * bool(NEEDS[name])


@pytest.mark.parametrize("name", [pytest.param(name, marks=_marks(name)) for name in sorted(NEEDS)])
def test_the_readme_example_runs(name: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # an example may write files
    for package in NEEDS[name]:
        pytest.importorskip(package, reason=f"the README's {name} example needs {package}")
    exec(compile(_examples()[name], f"README.md example {name}", "exec"), {"__name__": "__readme__"})
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
