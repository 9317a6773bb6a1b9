"""Development sessions: ``nox -s tests`` (the quick tier), ``tests_full`` (the whole suite), ``lint``,
``typecheck``, ``docs``, ``latex``, ``render``, ``demo``, ``notebooks``, ``bench``, ``scale``, ``calibration``,
``bands``, ``trend``, ``joint``, ``ablation``."""

from __future__ import annotations

import os
import shutil

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True


#: The quick tier: everything but the slow statistical checks and studies and the tests that need a framework.
QUICK = ("-m", "not slow and not extras", "--ignore=tests/extras")


@nox.session
def tests(session: nox.Session) -> None:
    """The quick tier (a few minutes): unit, reference and property tests and doctests, hypothesis derandomized.

    Installs the package with its light test extra only; the frameworks, the simulations and the slow tier are
    ``tests_full``. Arguments after ``--`` go to pytest.
    """
    session.install("-e", ".[test]")
    session.run("pytest", *QUICK, *session.posargs, env={"CI": os.environ.get("CI", "true")})


@nox.session
def tests_full(session: nox.Session) -> None:
    """The whole suite: the quick tier, the slow tier (simulations, brute force, 72-head reports, studies' checks)
    and the tests that run torch, highway-env, Dask clusters, jax/flax and notebooks for real (about 15 min)."""
    _install_torch(session)
    session.install("-e", ".[test-full]")
    session.run("pytest", *session.posargs, env={"CI": os.environ.get("CI", "true")})


#: The PyTorch release the tests install first: a CPU build where the machine holds one (a range left to the test
#: extra would let pip pick a larger CUDA build).
TORCH = "torch==2.13.0"


def _install_torch(session: nox.Session) -> None:
    session.install(TORCH)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff: style, imports, numpy idioms."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", "hsi_stats", "tests", "benchmarks", "examples/highway_ppo", "noxfile.py")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation into ``docs/_build/html`` with warnings as errors (the gallery's examples run).

    Installs the package with its ``docs`` extra (Sphinx, numpydoc, MyST, sphinx-gallery, the pydata theme);
    arguments after ``--`` go to ``sphinx-build`` (e.g. ``nox -s docs -- -E`` to rebuild every page).
    """
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", *session.posargs, "docs", "docs/_build/html",
                env={"MPLBACKEND": "Agg"})


@nox.session
def typecheck(session: nox.Session) -> None:
    """Mypy on the package."""
    _install_torch(session)
    session.install("-e", ".[dev]")
    session.run("mypy")


#: The TeX Live packages the LaTeX outputs need (booktabs, longtable, siunitx, amsmath).
TEXLIVE = ("texlive-latex-base", "texlive-latex-recommended", "texlive-latex-extra", "texlive-science")


@nox.session
def latex(session: nox.Session) -> None:
    """Compile table.tex, pairs.tex and methods.md's math with pdflatex (``tests/test_latex.py``).

    Installs TeX Live with apt-get when ``pdflatex`` is missing (as root, or through sudo); without it the tests
    are skipped with a reason.
    """
    _install_system_tools(session, {"pdflatex": TEXLIVE})
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
    """Time the estimators and the whole analysis (against per-pair scipy) on the reference workload.

    The reference workload: 200 episodes x 50 steps x 8 entity slots (2-8 present), 8 heads, 8 features,
    ``n_resamples=9999`` for both the bootstrap and the randomisation test.

    ``bench_analyze.py`` writes ``benchmarks/results/bench_analyze.json``. Arguments after ``--`` go to both scripts
    (only ``--repeats`` is understood by both). ``bench_explain.py`` times run-time explanations (one step, and a
    batch of 100,000) into ``benchmarks/results/bench_explain.json``; ``bench_joint.py`` the default analysis
    against ``joint=False`` at 200,000 scenarios, with the passes each makes, into
    ``benchmarks/results/bench_joint.json``. Without arguments the docs' tables are rewritten from the results.
    """
    session.install(".")
    session.run("python", "benchmarks/bench_estimate.py", *session.posargs)
    session.run("python", "benchmarks/bench_analyze.py", *session.posargs)
    session.run("python", "benchmarks/bench_explain.py")
    session.run("python", "benchmarks/bench_joint.py")
    if not session.posargs:
        session.run("python", "benchmarks/readme_tables.py", "joint-cost")


@nox.session
def scale(session: nox.Session) -> None:
    """Time and peak memory of ``analyze`` at 10,000, 100,000 and 1,000,000 scenarios, each in a fresh process.

    Writes ``benchmarks/results/bench_scale.json`` and, run without arguments, the docs' table; arguments after
    ``--`` go to the script (e.g. ``nox -s scale -- --sizes 10000 100000 --resamples 999`` for a quick look; the
    default 1,000,000 scenarios need several minutes and gigabytes of memory).
    """
    session.install(".")
    session.run("python", "benchmarks/bench_scale.py", *session.posargs)
    if not session.posargs:  # the benchmark as the docs report it: rewrite their table from its results
        session.run("python", "benchmarks/readme_tables.py", "scale")


@nox.session
def calibration(session: nox.Session) -> None:
    """Calibration study of the defaults on synthetic null and planted data (R = 500, 20-30 min on 2 cores), then
    the corrections on a family whose features vary unequally (``correction_study.py``, about 10 min) and the
    intervals of rates near 0 and 1 (``rate_study.py``, 2 min).

    Writes ``benchmarks/results/calibration.json``, ``corrections.json`` and ``rates.json`` (and their ``.md``
    tables) and, run without arguments, the documentation's tables; arguments after ``--`` go to the calibration script
    (e.g. ``nox -s calibration -- --replicates 100``).
    """
    session.install(".")
    session.run("python", "benchmarks/calibration.py", *session.posargs)
    session.run("python", "benchmarks/correction_study.py")
    session.run("python", "benchmarks/rate_study.py")
    if not session.posargs:  # the study as the docs report it: rewrite their table from its results
        session.run("python", "benchmarks/readme_tables.py", "calibration", "corrections", "rates")


@nox.session
def bands(session: nox.Session) -> None:
    """Where planted heads of graded strength land in the 0.3/0.5/0.7 bands, per estimator and correlation (< 1 min).

    Writes ``benchmarks/results/bands.json`` and ``bands.md`` and, run without arguments, the docs' table;
    arguments after ``--`` go to the script (e.g. ``nox -s bands -- --seed 7 --out /tmp/bands``).
    """
    session.install(".")
    session.run("python", "benchmarks/bands.py", *session.posargs)
    if not session.posargs:  # the study as the docs report it: rewrite their table from its results
        session.run("python", "benchmarks/readme_tables.py", "bands")


@nox.session
def trend(session: nox.Session) -> None:
    """Size and power of tests of change over training, on simulated runs of 3, 5 and 10 checkpoints (~15 min).

    Writes ``benchmarks/results/trend.json`` and ``trend.md`` and, run without arguments, the docs' table;
    arguments after ``--`` go to the script (e.g. ``nox -s trend -- --scale 0.1`` for a quick look).
    """
    session.install(".")
    session.run("python", "benchmarks/trend_study.py", *session.posargs)
    if not session.posargs:  # the study as the docs report it: rewrite their table from its results
        session.run("python", "benchmarks/readme_tables.py", "trend")


def _install_system_tools(session: nox.Session, packages: dict[str, tuple[str, ...]]) -> None:
    """Install with apt-get (as root, or through sudo) the Debian packages of the commands not on PATH.

    ``packages`` maps a command to the packages that provide it. Where nothing can install them, the session goes
    on with a warning and the tests that need them are skipped with a reason.
    """
    wanted = sorted({p for command, names in packages.items() if shutil.which(command) is None for p in names})
    if not wanted:
        return
    root = os.geteuid() == 0
    if shutil.which("apt-get") is None or not (root or shutil.which("sudo")):
        session.warn(f"{', '.join(wanted)} missing and not installable here (needs apt-get as root or sudo)")
        return
    sudo = () if root else ("sudo",)
    session.run(*sudo, "apt-get", "update", "-q", external=True)
    session.run(*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *wanted, external=True)


@nox.session
def render(session: nox.Session) -> None:
    """Render the demo report and a 72-head report to PNG to look at (PDF pages with pdftoppm, HTML with Chromium).

    Installs poppler-utils and chromium with apt-get when missing, runs ``tests/test_render.py`` and writes the
    images to a temporary folder (``-- --out DIR`` to keep them elsewhere; ``-- --report FOLDER --out DIR`` renders
    an existing report).
    """
    _install_system_tools(session, {"pdftoppm": ("poppler-utils",), "chromium": ("chromium",)})
    session.install("-e", ".[test]")
    session.run("pytest", "tests/test_render.py", env={"CI": "true"})
    out = session.posargs or ["--out", str(session.create_tmp() + "/rendered")]
    session.run("python", "tests/render_report.py", *out)


@nox.session
def joint(session: nox.Session) -> None:
    """Calibration study of the joint model: coverage, family-wise error and power with known coefficients (R = 300,
    about 5 min on 2 cores).

    Writes ``benchmarks/results/joint.json`` and ``joint.md`` and, run without arguments, the docs' table;
    arguments after ``--`` go to the script (e.g. ``nox -s joint -- --replicates 50 --n-resamples 999``).
    """
    session.install(".")
    session.run("python", "benchmarks/joint_study.py", *session.posargs)
    if not session.posargs:  # the study as the docs report it: rewrite their table from its results
        session.run("python", "benchmarks/readme_tables.py", "joint")


@nox.session
def ablation(session: nox.Session) -> None:
    """Calibration study of ablation: coverage of the open-loop intervals on episodes drawn from a pool of the planted
    policy, and the closed-loop intervals and tests (R = 1000, about 17 min on 2 cores).

    Writes ``benchmarks/results/ablation.json`` and ``ablation.md`` and, run without arguments, the docs' table;
    arguments after ``--`` go to the script (e.g. ``nox -s ablation -- --replicates 100``).
    """
    _install_torch(session)
    session.install(".[torch]")
    session.run("python", "benchmarks/ablation_study.py", *session.posargs)
    if not session.posargs:  # the study as the docs report it: rewrite their table from its results
        session.run("python", "benchmarks/readme_tables.py", "ablation")
