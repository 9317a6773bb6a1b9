"""What a benchmark's numbers came from: package versions, platform, git commit and a hash of the package sources.

Also the small helpers the scripts share: flushed progress lines, the process's peak resident memory and writing a
study's JSON and table. Shared by ``bench_analyze.py``, ``bench_scale.py``, ``calibration.py``, ``bands.py``,
``trend_study.py``, ``joint_study.py`` and ``ablation_study.py`` (run as scripts, so this module is imported by
name).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import platform
import resource
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from hsi_stats.settings import AnalysisSettings

REPOSITORY = Path(__file__).resolve().parent.parent


def package_source_sha256() -> str:
    """SHA-256 over the imported package's source files (paths and contents), to pin the code that ran."""
    spec = importlib.util.find_spec("hsi_stats")
    if spec is None or spec.origin is None:
        return "unknown"
    root = Path(spec.origin).parent
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in {".py", ".toml", ".j2", ".css"}):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True, check=True).stdout


def environment() -> dict[str, Any]:
    """Package versions, platform, CPUs, the git commit (and uncommitted package files) and the source hash."""
    found: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                             "processor": platform.processor(), "cpus": os.cpu_count()}
    for name in ("hsi_stats", "numpy", "scipy", "pandas", "statsmodels"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "source tree" if name == "hsi_stats" else "unknown"
    try:
        found["git_commit"] = _git("rev-parse", "HEAD").strip()
        found["hsi_stats_uncommitted_changes"] = [line[3:] for line in _git("status", "--porcelain", "hsi_stats")
                                                  .split("\n") if line.strip()]
    except (OSError, subprocess.CalledProcessError):
        found["git_commit"] = "unknown"
    found["hsi_stats_source_sha256"] = package_source_sha256()
    found["default_ci_method"] = AnalysisSettings().ci_method
    return found


def say(message: str) -> None:
    """Print a progress line on stdout, flushed."""
    print(message, flush=True)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (``ru_maxrss``, which is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_study(out: Path, name: str, record: dict[str, Any], table: str) -> None:
    """Write a study's ``out/<name>.json`` (``record`` with the table under ``markdown``) and ``out/<name>.md`` (the
    docs' table), and print the table."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps({**record, "markdown": table}, indent=1, default=str) + "\n",
                                      encoding="utf-8")
    (out / f"{name}.md").write_text(table + "\n", encoding="utf-8")
    print(table)
