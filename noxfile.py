"""Development sessions: ``nox -s tests`` (the suite), ``lint``, ``typecheck``, ``latex``, ``demo``, ``notebooks``,
``bench``, ``calibration``, ``bands``."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def tests(session: nox.Session) -> None:
    """Run the whole test suite (doctests included) with hypothesis derandomized."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs, env={"CI": os.environ.get("CI", "true")})


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: style, imports, numpy idioms."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "hsi_stats", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy on the package."""
    session.install("-e", ".[dev]")
    session.run("mypy")


#: The TeX Live packages the LaTeX outputs need (booktabs, longtable, siunitx, amsmath).
TEXLIVE = ("texlive-latex-base", "texlive-latex-recommended", "texlive-latex-extra", "texlive-science")


@nox.session
def latex(session: nox.Session) -> None:
    """Compile table.tex, pairs.tex and methods.md's math with pdflatex (``tests/test_latex.py``).

    Installs TeX Live with apt-get when ``pdflatex`` is missing (as root, or through sudo); skips with a message
    when it cannot.
    """
    if shutil.which("pdflatex") is None:
        if shutil.which("apt-get") is None:
            session.skip("pdflatex is not installed and apt-get is not available to install TeX Live")
        root = os.geteuid() == 0
        if not root and shutil.which("sudo") is None:
            session.skip("pdflatex is not installed and installing TeX Live needs root (or sudo)")
        sudo = () if root else ("sudo",)
        session.run(*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *TEXLIVE, external=True)
    session.install("-e", ".[test]")
    session.run("pytest", "tests/test_latex.py", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Install the package and run the demo end to end."""
    session.install(".")
    session.run("hsi-stats", "demo", "--out", str(session.create_tmp() + "/demo"), *session.posargs)


@nox.session
def notebooks(session: nox.Session) -> None:
    """Execute the original notebook on ``hsi_stats.compat`` and ``examples/head_specialization.ipynb`` (nbclient).

    The original notebook is rebuilt from ``tests/data/original_notebook.txt`` with only its import line and its
    three paths changed; the example runs at the full demo size. Executed copies and outputs go to a temporary
    folder (``-- --out DIR`` to keep them elsewhere).
    """
    session.install("-e", ".", "nbclient", "nbformat", "ipykernel")
    out = session.posargs or ["--out", str(session.create_tmp() + "/notebooks")]
    session.run("python", "tests/notebook_from_seed.py", "--full", *out)


@nox.session
def bench(session: nox.Session) -> None:
    """Time the estimators and the whole analysis (against per-pair scipy) on the reference workload of DESIGN 7.

    ``bench_analyze.py`` writes ``benchmarks/results/bench_analyze.json``. Arguments after ``--`` go to both scripts
    (only ``--repeats`` is understood by both).
    """
    session.install(".")
    session.run("python", "benchmarks/bench_estimate.py", *session.posargs)
    session.run("python", "benchmarks/bench_analyze.py", *session.posargs)


@nox.session
def calibration(session: nox.Session) -> None:
    """Calibration study of the defaults on synthetic null and planted data (R = 500, 20-30 min on 2 cores).

    Writes ``benchmarks/results/calibration.json`` and ``calibration.md`` and, run without arguments, the README's
    table; arguments after ``--`` go to the script (e.g. ``nox -s calibration -- --replicates 100``).
    """
    session.install(".")
    session.run("python", "benchmarks/calibration.py", *session.posargs)
    if not session.posargs:  # the study as the README reports it: rewrite the README's table from its results
        session.run("python", "benchmarks/readme_tables.py", "calibration")


@nox.session
def bands(session: nox.Session) -> None:
    """Where planted heads of graded strength land in the 0.3/0.5/0.7 bands, per estimator and correlation (< 1 min).

    Writes ``benchmarks/results/bands.json`` and ``bands.md`` and, run without arguments, the README's table;
    arguments after ``--`` go to the script (e.g. ``nox -s bands -- --seed 7 --out /tmp/bands``).
    """
    session.install(".")
    session.run("python", "benchmarks/bands.py", *session.posargs)
    if not session.posargs:  # the study as the README reports it: rewrite the README's table from its results
        session.run("python", "benchmarks/readme_tables.py", "bands")


@nox.session
def trend(session: nox.Session) -> None:
    """Size and power of tests of change over training, on simulated runs of 3, 5 and 10 checkpoints (~15 min).

    Writes ``benchmarks/results/trend.json`` and ``trend.md`` and, run without arguments, the README's table;
    arguments after ``--`` go to the script (e.g. ``nox -s trend -- --scale 0.1`` for a quick look).
    """
    session.install(".")
    session.run("python", "benchmarks/trend_study.py", *session.posargs)
    if not session.posargs:  # the study as the README reports it: rewrite the README's table from its results
        session.run("python", "benchmarks/readme_tables.py", "trend")
