"""The ``hsi-stats`` command line: demo end to end, analyze/convert/registry on user data, and bad input."""

from __future__ import annotations

import io
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hsi_stats import HSIDataset, load_npz, write_npz
from hsi_stats.cli import main
from hsi_stats.synthetic import DEMO_CHECKPOINTS, generate, write_driving_logs

FAST = ["--n-resamples", "199"]


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--out", str(out), "--seed", "0", *FAST]) == 0
    return out


def test_demo_finds_the_planted_heads(demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = pd.read_csv(demo_dir / "planted_vs_found.csv")
    planted = table[table["planted_label"] != "General Context Head"]
    assert len(planted) == 4
    assert (planted["found_feature"] == planted["planted_feature"]).all()
    assert (planted["found_label"] == planted["planted_label"]).all()
    assert planted["validated"].all()
    no_effect = table[table["planted_label"] == "General Context Head"]
    assert len(no_effect) == 4
    assert (no_effect["found_label"] == "General Context Head").all()
    assert not no_effect["validated"].any()
    assert table["match"].all()


def test_demo_writes_outputs_and_logs(demo_dir: Path) -> None:
    for name in ("report.html", "report.pdf", "methods.md", "references.bib", "table.tex", "pairs.tex", "pairs.csv",
                 "heads.csv", "head_functions.json", "planted_vs_found.csv"):
        assert (demo_dir / name).is_file(), name
    assert sorted(p.name for p in (demo_dir / "logs" / "features").iterdir()) == [
        f"attention_log_{step:08d}.pkl" for step in DEMO_CHECKPOINTS]
    assert sorted(p.name for p in (demo_dir / "logs" / "attention").iterdir()) == [
        f"attention_scenario_{i:04d}.pkl" for i in range(len(DEMO_CHECKPOINTS))]
    assert "Specialisation over training" in (demo_dir / "report.html").read_text()
    figures = sorted(p.name for p in (demo_dir / "figures").iterdir())
    stems = {name.rsplit(".", 1)[0] for name in figures}
    assert figures == sorted(f"{stem}.{kind}" for stem in stems for kind in ("pdf", "svg"))  # each figure as both
    assert {"heatmap", "hsi", "focus", "forest", "distributions", "null", "evolution"} <= stems
    registry = json.loads((demo_dir / "head_functions.json").read_text())
    assert set(registry) == {*map(str, range(8)), "_meta"}
    assert registry["0"]["name"] == "Safety Head"
    assert registry["0"]["primary_feature"] == "ttc"
    assert registry["0"]["correlation_sign"] == "negative"
    pairs = pd.read_csv(demo_dir / "pairs.csv")
    assert len(pairs) == 64
    assert list(pairs.columns[:7]) == ["head", "feature", "rho", "ci_low", "ci_high", "p_value", "p_adjusted"]


def test_demo_prints_planted_versus_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--out", str(tmp_path), "--seed", "3", "--format", "", *FAST]) == 0
    printed = capsys.readouterr().out
    assert "planted versus found" in printed
    assert "8/8 heads found as planted" in printed
    assert not (tmp_path / "report.html").exists()


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("logs")
    run = generate(n_episodes=16, n_steps=8, rng=1)
    write_driving_logs(run, root / "f", root / "a", rng=2)
    return root / "f", root / "a"


def test_convert_then_analyze_npz(tmp_path: Path, logs: tuple[Path, Path]) -> None:
    npz = tmp_path / "run.npz"
    assert main(["convert", "--feature-dir", str(logs[0]), "--attention-dir", str(logs[1]), "-o", str(npz)]) == 0
    dataset = load_npz(npz)
    assert dataset.n_heads == 8 and dataset.head_names[0] == "other_traj/cross_attn_0:h0"
    out = tmp_path / "out"
    assert main(["analyze", str(npz), "--out", str(out), "--seed", "1", "--format", "", *FAST]) == 0
    heads = pd.read_csv(out / "heads.csv")
    assert list(heads["head"]) == list(dataset.head_names)


def test_analyze_logs_and_registry(tmp_path: Path, logs: tuple[Path, Path]) -> None:
    registry_path = tmp_path / "reg.json"
    args = ["--feature-dir", str(logs[0]), "--attention-dir", str(logs[1]), "--seed", "2", *FAST]
    assert main(["registry", *args, "-o", str(registry_path)]) == 0
    registry = json.loads(registry_path.read_text())
    assert registry["_meta"]["allow_unvalidated"] is False
    assert all(entry["validated"] or entry["name"] == "General Context Head"
               for key, entry in registry.items() if key != "_meta")


class _Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("pwned",))


def _inputs(root: Path) -> None:
    """An extraction whose loading would run code, and an npz file with a single group."""
    (root / "extraction_1.pkl").write_bytes(pickle.dumps({"step": 1, "scenarios": [_Evil()]}))
    write_npz(HSIDataset(np.ones((3, 1, 2)), {"x": np.arange(6.0).reshape(3, 2)}, groups=[0, 0, 0]),
              root / "one_group.npz")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["analyze", "{root}/missing.npz", "--out", "{root}/out"], "does not exist"),
        (["analyze", "--out", "{root}/out"], "give exactly one input"),
        (["analyze", "--extraction", "{root}/extraction_1.pkl", "--out", "{root}/out"], "builtins.print"),
        (["convert", "--extraction", "{root}/nothing", "-o", "{root}/out/x.npz"], "nothing"),
        (["analyze", "{root}/one_group.npz", "--out", "{root}/out"], "at least 2 groups"),
        (["registry", "{root}/one_group.npz", "-o", "{root}/out/reg.json"], "at least 2 groups"),
    ],
    ids=["missing-file", "no-input", "unsafe-pickle", "missing-extraction", "one-group", "registry-one-group"],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str],
                                         message: str) -> None:
    _inputs(tmp_path)
    assert main([part.format(root=tmp_path) for part in command]) == 2
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hsi-stats: error:")
    assert message in lines[0]
    assert "pwned" not in captured.out
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- input errors and bugs
@pytest.mark.parametrize(("flags", "message"), [
    (["--alpha", "1.5"], r"`alpha` must be a number in \[0, 1\], but 1.5 was passed"),
    (["--estimator", "pooled", "--adjust", "slot"], r"`adjust='slot'` is defined for estimator='within' only"),
    (["--scheme", "within-group", "--estimator", "fisher"], r"`scheme='within-group'` permutes entities"),
    (["--catalog", "{root}/missing.toml"], r"`catalog` must be an existing .toml or .json file"),
    (["--n-resamples", "0"], r"`n_resamples` must be an integer >= 1, but 0 was passed"),
    (["--batch", "0"], r"`batch` must be an integer >= 1"),
])
def test_bad_options_exit_2_with_one_line(tmp_path: Path, logs: tuple[Path, Path], capsys: pytest.CaptureFixture[str],
                                          flags: list[str], message: str) -> None:
    command = ["analyze", "--feature-dir", str(logs[0]), "--attention-dir", str(logs[1]), "--out",
               str(tmp_path / "out"), *[f.format(root=tmp_path) for f in flags]]
    assert main(command) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hsi-stats: error:")
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("error", [ZeroDivisionError("division by zero"), ValueError("operands could not be broadcast"),
                                   TypeError("unsupported operand"), KeyError("label_feature")])
def test_a_bug_is_not_reported_as_bad_input(tmp_path: Path, logs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str], error: Exception) -> None:
    def broken(*_: object, **__: object) -> None:
        raise error

    monkeypatch.setattr("hsi_stats.results.analyze", broken)
    command = ["analyze", "--feature-dir", str(logs[0]), "--attention-dir", str(logs[1]), "--out", str(tmp_path)]
    assert main(command) == 70
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and f"{type(error).__name__}" in err
    assert "hsi-stats: internal error: this is a bug in hsi_stats" in err and "Please report it" in err
    assert "hsi-stats: error:" not in err


def test_every_option_of_the_api_is_a_flag_with_the_same_meaning() -> None:
    from hsi_stats.cli import analysis_settings, build_parser
    from hsi_stats.settings import AnalysisSettings, option_names

    parser = build_parser()
    flags = {action.dest for action in parser._subparsers._group_actions[0].choices["analyze"]._actions}  # type: ignore[union-attr]
    assert set(option_names()) <= flags
    args = parser.parse_args(["analyze", "x.npz", "--estimator", "Fisher", "--fisher-clip", "0.99", "--correlation",
                              "pearson", "--n-resamples", "49", "--confidence-level", "0.9", "--ci-method", "bca",
                              "--scheme", "sign-flip", "--correction", "maxT-single-step", "--alpha", "0.01",
                              "--threshold", "0.4", "--min-stability", "0.7", "--min-selectivity", "0.1", "--strict"])
    assert analysis_settings(args) == AnalysisSettings(
        estimator="fisher", fisher_clip=0.99, correlation="pearson", n_resamples=49, confidence_level=0.9,
        ci_method="bca", scheme="sign-flip", correction="maxt-single-step", alpha=0.01, threshold=0.4,
        min_stability=0.7, min_selectivity=0.1, strict=True)


def test_step_range_applies_to_every_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hsi_stats import write_npz

    run = generate(n_episodes=12, n_steps=3, checkpoints=(100, 200), rng=4)
    write_npz(run.dataset, tmp_path / "run.npz")
    base = ["analyze", str(tmp_path / "run.npz"), "--n-resamples", "49", "--seed", "0", "--format", ""]
    assert main([*base, "--out", str(tmp_path / "one"), "--step-range", "200", "200"]) == 0
    assert "36 scenarios in 12 groups" in capsys.readouterr().out
    registry = json.loads((tmp_path / "one" / "head_functions.json").read_text())
    assert registry["_meta"]["data_summary"]["steps"] == [200]
    for flags, message in ((["200", "100"], "needs START <= END, but 200 100"),
                           (["300", "400"], r"keeps no scenario of .*run.npz \(its steps: \[100, 200\]\)")):
        assert main([*base, "--out", str(tmp_path / "bad"), "--step-range", *flags]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(message, err[0]), err
    assert not (tmp_path / "bad").exists()


def test_an_extraction_gives_the_features_of_the_catalog_passed(tmp_path: Path) -> None:
    from hsi_stats.cli import build_parser, load_input

    semantic = {"gap": np.arange(3.0), "ttc": np.ones(3), "sdc_index": 0}
    scenario = {"attention_per_vehicle": np.ones((2, 3)), "semantic_features": semantic}
    (tmp_path / "extraction_5.pkl").write_bytes(pickle.dumps({"step": 5, "scenarios": [scenario, scenario]}))
    (tmp_path / "catalog.toml").write_text('[gap]\nlabel = "Gap Head"\n')
    parser = build_parser()
    driving, _ = load_input(parser.parse_args(["analyze", "--extraction", str(tmp_path)]))
    own, _ = load_input(parser.parse_args(["analyze", "--extraction", str(tmp_path), "--catalog",
                                           str(tmp_path / "catalog.toml")]))
    assert driving.feature_names == ("ttc",) and own.feature_names == ("gap",)


def test_a_final_checkpoint_is_shown_as_final(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hsi_stats import HSIDataset
    from hsi_stats.io.extraction import write_extraction

    run = generate(n_episodes=6, n_steps=3, checkpoints=(100, 200, 201), rng=2).dataset
    named = HSIDataset(run.attention, run.features, mask=run.mask, groups=run.groups, steps=run.steps,
                       head_names=run.head_names, step_names={201: "final"})
    write_extraction(named, tmp_path / "run", kind="snapshot")  # extraction_model_final.pkl, step -1
    out = tmp_path / "out"
    assert main(["analyze", "--extraction", str(tmp_path / "run"), "--out", str(out), "--n-resamples", "19",
                 "--seed", "0", "--format", ""]) == 0
    printed = capsys.readouterr().out
    assert "HSI analysis at training step final (the last of 3 steps" in printed
    assert "Evolution over 3 training steps (100 to final)" in printed
    assert sorted(pd.read_csv(out / "evolution.csv")["step"].unique()) == [100, 200, 201]  # numbers in the tables
    notes = json.loads((out / "head_functions.json").read_text())["_meta"]["data_summary"]["notes"]
    assert any(note.startswith("Step 201 is the final checkpoint (model_final, stored as step -1)") for note in notes)


# ----------------------------------------------------------------------------- training runs
@pytest.mark.slow  # evolution, report and three more analyses
def test_a_run_of_three_checkpoints_is_analysed_one_policy_at_a_time(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from hsi_stats import estimate, write_npz
    from hsi_stats.evolution import PER_STEP_COLUMNS

    run = generate(n_episodes=14, n_steps=5, checkpoints=(100, 200, 300), specialise=(100, 300), rng=6)
    write_npz(run.dataset, tmp_path / "run.npz")
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "run.npz"), "--out", str(out), "--n-resamples", "99", "--seed", "1",
                 "--format", "html"]) == 0
    printed = capsys.readouterr().out
    assert "HSI analysis at training step 300 (the last of 3 steps" in printed
    assert "Evolution over 3 training steps" in printed
    heads = pd.read_csv(out / "heads.csv")
    last = estimate(run.dataset.select(step_range=(300, 300)))
    np.testing.assert_allclose(heads["hsi"], last.hsi, rtol=1e-12)
    registry = json.loads((out / "head_functions.json").read_text())
    assert registry["_meta"]["data_summary"]["steps"] == [300]
    assert registry["_meta"]["data_summary"]["step_selection"] == {"step": 300, "available": [100, 200, 300],
                                                                    "pooled": False, "chosen": False,
                                                                    "step_names": {}}
    evolution = pd.read_csv(out / "evolution.csv")
    assert list(evolution.columns) == list(PER_STEP_COLUMNS) and sorted(evolution["step"].unique()) == [100, 200, 300]
    trends = pd.read_csv(out / "trends.csv")
    assert len(trends) == 8 and (trends.loc[:3, "p_adjusted"] < 0.05).all()
    html = (out / "report.html").read_text()
    assert "Specialisation over training" in html and "training step 300" in html
    assert (out / "methods.md").read_text().count("Change over training was measured") == 1

    # --step picks another checkpoint; --pool-steps pools them, and says so
    assert main(["analyze", str(tmp_path / "run.npz"), "--out", str(tmp_path / "s2"), "--n-resamples", "49",
                 "--seed", "1", "--format", "", "--step", "200"]) == 0
    assert "at training step 200 (one of 3 steps, as asked" in capsys.readouterr().out
    assert main(["analyze", str(tmp_path / "run.npz"), "--out", str(tmp_path / "pooled"), "--n-resamples", "49",
                 "--seed", "1", "--format", "", "--pool-steps"]) == 0
    captured = capsys.readouterr()
    assert "3 training steps pooled" in captured.out and "as asked (--pool-steps)" in captured.err
    assert not (tmp_path / "pooled" / "evolution.csv").exists()
    assert main(["analyze", str(tmp_path / "run.npz"), "--out", str(tmp_path / "bad"), "--step", "250"]) == 2
    assert "`step` must be one of the dataset's training steps [100, 200, 300], but 250" in capsys.readouterr().err


def test_the_demo_logs_are_analysed_at_the_final_checkpoint(demo_dir: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    logs = demo_dir / "logs"
    assert main(["analyze", "--feature-dir", str(logs / "features"), "--attention-dir", str(logs / "attention"),
                 "--out", str(tmp_path), "--seed", "0", "--format", "", *FAST]) == 0
    printed = capsys.readouterr().out
    assert f"HSI analysis at training step {DEMO_CHECKPOINTS[-1]} (the last of {len(DEMO_CHECKPOINTS)} steps" in printed
    registry = json.loads((tmp_path / "head_functions.json").read_text())
    assert registry["0"]["name"] == "Safety Head" and registry["0"]["validated"]
    assert (tmp_path / "evolution.csv").is_file()


# ----------------------------------------------------------------------------- options honoured or refused, outputs
def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("hsi-stats: error:") and "Traceback" not in captured.err
    return lines[0]


def test_an_output_that_cannot_be_written_is_refused_before_loading(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # The input does not exist: an error about the output proves the output was checked first.
    missing = str(tmp_path / "missing.npz")
    (tmp_path / "afile").write_text("x")
    assert main(["analyze", missing, "--out", str(tmp_path / "afile")]) == 2
    assert "--out: " in _one_error_line(capsys) and "is a file, but an output folder is needed" in capsys_text(
        capsys, main(["demo", "--out", str(tmp_path / "afile")]))
    assert main(["registry", missing, "-o", str(tmp_path)]) == 2
    assert "is a folder, but an output file is needed" in _one_error_line(capsys)
    assert main(["convert", missing, "-o", str(tmp_path / "run.csv")]) == 2
    assert "must be a .npz file" in _one_error_line(capsys)
    if Path("/sys").is_dir():  # a folder nobody may write into, whoever runs the tests
        assert main(["analyze", missing, "--out", "/sys/hsi-stats-out"]) == 2
        line = _one_error_line(capsys)
        assert "cannot write into /sys" in line and ".tmp" not in line


def capsys_text(capsys: pytest.CaptureFixture[str], code: int) -> str:
    assert code == 2
    return _one_error_line(capsys)


@pytest.mark.parametrize(("flags", "message"), [
    (["--pair-by", "order"], "--pair-by applies to logs input only, but the input is an .npz file"),
    (["--attention-key", "other_traj"], "--attention-key applies to logs input only"),
    (["--trust-pickle"], "--trust-pickle applies to logs and extraction input only"),
])
def test_options_that_do_not_apply_to_the_input_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                            flags: list[str], message: str) -> None:
    from hsi_stats import write_npz

    write_npz(generate(n_episodes=12, n_steps=2, rng=0).dataset, tmp_path / "run.npz")
    assert main(["analyze", str(tmp_path / "run.npz"), "--out", str(tmp_path / "out"), *flags]) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("argv", "hint"), [(["analyze", "--alpha", "abc", "x.npz"], "hsi-stats analyze --help"),
                                            (["analyze", "--bogus", "x.npz"], "hsi-stats analyze --help"),
                                            (["demo", "--feature-dir", "x"], "hsi-stats demo --help"),
                                            (["nonsense"], "hsi-stats --help"), ([], "hsi-stats --help")])
def test_usage_errors_are_one_line_with_a_hint(argv: list[str], hint: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert f"(see '{hint}')" in line and "usage:" not in line


def test_too_few_resamples_to_reach_alpha_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hsi_stats import analyze, write_npz
    from hsi_stats._validation import ResamplingWarning

    dataset = generate(n_episodes=12, n_steps=3, rng=0).dataset
    with pytest.warns(ResamplingWarning, match=r"with 5 randomisations the smallest attainable adjusted p-value is "
                                               r"0\.167 \(studentised step-down max-T over 64 tests\), not below "
                                               r"alpha 0\.05: no label can validate; use n_resamples >= 99"):
        analyze(dataset, n_resamples=5, rng=0)
    with pytest.warns(ResamplingWarning, match=r"0\.213 \(Holm over 64 tests\).*n_resamples >= 1999"):
        analyze(dataset, n_resamples=299, correction="holm", rng=0)
    write_npz(dataset, tmp_path / "run.npz")
    assert main(["analyze", str(tmp_path / "run.npz"), "--out", str(tmp_path / "out"), "--format", "",
                 "--n-resamples", "5", "--seed", "0"]) == 0
    assert "hsi-stats: warning: with 5 randomisations" in capsys.readouterr().err


def test_a_failing_output_leaves_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from hsi_stats import write_npz

    write_npz(generate(n_episodes=12, n_steps=3, rng=0).dataset, tmp_path / "run.npz")
    out = tmp_path / "out"
    command = ["analyze", str(tmp_path / "run.npz"), "--out", str(out), "--n-resamples", "99", "--format", ""]
    assert main([*command, "--seed", "0"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the registry writer failed")  # after the tables were written

    monkeypatch.setattr("hsi_stats.results.HSIResult.export_registry", broken)
    assert main([*command, "--seed", "1"]) == 70  # a bug, not bad input
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the previous set, untouched
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging folder left behind
    capsys.readouterr()


def test_atomic_folder_moves_a_complete_set_only(tmp_path: Path) -> None:
    from hsi_stats._atomic import atomic_folder

    target = tmp_path / "report"
    target.mkdir()
    (target / "keep.txt").write_text("not part of the set")
    (target / "a.csv").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(target) as staging:
        (staging / "a.csv").write_text("new")
        raise RuntimeError("half-way")
    assert (target / "a.csv").read_text() == "old"
    with atomic_folder(target) as staging:
        (staging / "a.csv").write_text("new")
        (staging / "b.csv").write_text("new")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"keep.txt": "not part of the set", "a.csv": "new",
                                                                  "b.csv": "new"}
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


@pytest.mark.slow  # two demos
def test_the_demo_is_reproducible_from_its_seed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = []
    for name in ("first", "second"):
        assert main(["demo", "--out", str(tmp_path / name), "--seed", "0", "--format", "", *FAST]) == 0
        runs.append(tmp_path / name)
    capsys.readouterr()
    files = sorted(p.relative_to(runs[0]) for p in runs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(runs[1]) for p in runs[1].rglob("*") if p.is_file())
    for relative in files:
        first, second = (run / relative for run in runs)
        if relative.name == "head_functions.json":  # identical but for the time of the analysis
            a, b = json.loads(first.read_text()), json.loads(second.read_text())
            a["_meta"]["provenance"].pop("time"), b["_meta"]["provenance"].pop("time")
            assert a == b
        else:
            assert first.read_bytes() == second.read_bytes(), relative


def test_the_files_written_are_listed_with_folders_counted(tmp_path: Path) -> None:
    from hsi_stats.cli import _written

    paths = [tmp_path / "report.pdf", tmp_path / "figures" / "hsi.pdf", tmp_path / "figures" / "hsi.svg",
             tmp_path / "heads.csv"]
    assert _written(tmp_path, paths) == f"wrote {tmp_path}: report.pdf, figures/ (2 files), heads.csv"


def test_convert_to_shards_then_analyze_the_folder(tmp_path: Path, logs: tuple[Path, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    shards, whole = tmp_path / "shards", tmp_path / "run.npz"
    base = ["convert", "--feature-dir", str(logs[0]), "--attention-dir", str(logs[1])]
    assert main([*base, "-o", str(shards), "--shard-size", "50"]) == 0
    assert "shard(s) of up to 50 scenarios" in capsys.readouterr().out
    assert main([*base, "-o", str(whole)]) == 0
    out_shards, out_whole = tmp_path / "a", tmp_path / "b"
    assert main(["analyze", str(shards), "--out", str(out_shards), "--seed", "1", "--format", "", *FAST]) == 0
    assert main(["analyze", str(whole), "--out", str(out_whole), "--seed", "1", "--format", "", *FAST]) == 0
    a, b = pd.read_csv(out_shards / "pairs.csv"), pd.read_csv(out_whole / "pairs.csv")
    numbers = ["rho", "ci_low", "ci_high", "p_value", "p_adjusted"]
    np.testing.assert_allclose(a[numbers].to_numpy(), b[numbers].to_numpy(), rtol=0, atol=1e-9)
    assert main(["analyze", str(shards / "shard-*.npz"), "--out", str(tmp_path / "c"), "--seed", "1", "--format",
                 "", *FAST]) == 0
    bracketed = tmp_path / "run[1].npz"  # a file whose name looks like a glob is still one file
    whole.rename(bracketed)
    assert main(["analyze", str(bracketed), "--out", str(tmp_path / "d"), "--seed", "1", "--format", "", *FAST]) == 0
    assert main(["convert", str(shards), "-o", str(tmp_path / "x.npz")]) == 2
    assert "names shards" in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "y"), "--shard-size", "0"]) == 2


def test_logs_and_extractions_are_streamed_and_converted_a_file_at_a_time(tmp_path: Path, logs: tuple[Path, Path],
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from hsi_stats import scan
    from hsi_stats.io.extraction import write_extraction

    base = ["analyze", "--feature-dir", str(logs[0]), "--attention-dir", str(logs[1]), "--seed", "1", "--format",
            "", *FAST]
    assert main([*base, "--out", str(tmp_path / "memory")]) == 0
    assert main([*base, "--out", str(tmp_path / "stream"), "--stream"]) == 0
    a, b = pd.read_csv(tmp_path / "stream" / "pairs.csv"), pd.read_csv(tmp_path / "memory" / "pairs.csv")
    numbers = ["rho", "ci_low", "ci_high", "p_value", "p_adjusted", "focus"]
    np.testing.assert_allclose(a[numbers].to_numpy(), b[numbers].to_numpy(), rtol=0, atol=1e-9)
    # an extraction with model_final, converted to shards file by file: the steps' names and the notes are kept
    run = generate(n_episodes=6, n_steps=3, checkpoints=(100, 200), rng=2).dataset
    named = HSIDataset(run.attention, run.features, mask=run.mask, groups=run.groups, steps=run.steps,
                       head_names=run.head_names, step_names={200: "final"})
    write_extraction(named, tmp_path / "run", kind="snapshot")
    assert main(["convert", "--extraction", str(tmp_path / "run"), "-o", str(tmp_path / "shards"),
                 "--shard-size", "10"]) == 0
    assert "wrote 4 shard(s)" in capsys.readouterr().out  # 18 scenarios per file: 10 + 8, twice
    shards = scan(tmp_path / "shards")
    # model_final is stored as step -1 and read as the step after the last numbered one, as load_extraction does
    assert dict(shards.step_names) == {101: "final"} and shards.notes[0].startswith("Step 101 is the final")
    np.testing.assert_array_equal(shards.steps, np.repeat([100, 101], 18))


def test_explain_prints_the_claims_of_validated_heads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = generate(n_episodes=20, n_steps=6, rng=3).dataset
    write_npz(run, tmp_path / "run.npz")
    registry = tmp_path / "head_functions.json"
    assert main(["registry", str(tmp_path / "run.npz"), "-o", str(registry), "--seed", "1", *FAST]) == 0
    capsys.readouterr()
    assert main(["explain", str(registry), str(tmp_path / "run.npz"), "--scenario", "7"]) == 0
    text = capsys.readouterr().out
    validated = [entry["head"] for key, entry in json.loads(registry.read_text()).items()
                 if key.isdigit() and entry["validated"]]
    step = int(run.steps[7])  # one checkpoint: the registry's
    first = re.match(rf"Explained: training step {step}, the step the registry describes.\nscenario 7:\n  (h\d) "
                     r"\((Safety|Proximity|Left Lane|Traffic Flow) Head\): attends entity", text)
    assert first is not None and first.group(1) == validated[0]
    assert "no claim (no validated label)" in text
    assert main(["explain", str(registry), str(tmp_path / "run.npz"), "--format", "csv"]) == 0
    claims = pd.read_csv(io.StringIO(capsys.readouterr().out))
    labels = {entry["name"] for key, entry in json.loads(registry.read_text()).items()
              if key.isdigit() and entry["validated"]}
    assert len(claims) == run.n_scenarios * claims["head"].nunique() and set(claims["label"]) == labels
    renamed = HSIDataset(run.attention, run.features, mask=run.mask, groups=run.groups,
                         head_names=[f"x{h}" for h in range(run.n_heads)])
    write_npz(renamed, tmp_path / "other.npz")
    assert main(["explain", str(registry), str(tmp_path / "other.npz")]) == 2
    assert f"the registry names heads ['{validated[0]}'" in capsys.readouterr().err
    stepless = HSIDataset(run.attention, run.features, mask=run.mask, groups=run.groups, head_names=run.head_names)
    write_npz(stepless, tmp_path / "stepless.npz")
    assert main(["explain", str(registry), str(tmp_path / "stepless.npz"), "--step", "5"]) == 2
    assert f"--step needs training steps, but {tmp_path / 'stepless.npz'} has none" in _one_error_line(capsys)


def _demo_explain(demo_dir: Path, *flags: str) -> list[str]:
    logs = demo_dir / "logs"
    return ["explain", str(demo_dir / "head_functions.json"), "--feature-dir", str(logs / "features"),
            "--attention-dir", str(logs / "attention"), *flags]


@pytest.fixture(scope="module")
def demo_steps(demo_dir: Path) -> np.ndarray:
    """The training step of each scenario of the demo's logs, as explain reads them."""
    from hsi_stats import load_logs

    logs = demo_dir / "logs"
    steps = load_logs(logs / "features", logs / "attention").steps
    assert steps is not None and sorted(set(steps.tolist())) == list(DEMO_CHECKPOINTS)
    return steps


def test_explain_on_the_demo_logs_explains_the_registry_step_only(demo_dir: Path, demo_steps: np.ndarray,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    final = DEMO_CHECKPOINTS[-1]
    assert json.loads((demo_dir / "head_functions.json").read_text())["_meta"]["data_summary"]["steps"] == [final]
    assert main(_demo_explain(demo_dir)) == 0
    lines = capsys.readouterr().out.splitlines()
    at_final = np.flatnonzero(demo_steps == final)
    assert lines[0] == (f"Explained: training step {final}, the step the registry describes, {at_final.size} of the "
                        f"{demo_steps.size} scenarios given; those of the other {len(DEMO_CHECKPOINTS) - 1} training "
                        f"steps {DEMO_CHECKPOINTS[0]} to {DEMO_CHECKPOINTS[-2]} only when asked for (step=, --step N).")
    explained = [int(line.split()[1].rstrip(":")) for line in lines if line.startswith("scenario ")]
    assert explained == at_final.tolist()
    assert not any("[Note:" in line for line in lines)
    # one scenario of another step: refused, with the way to ask for it
    early = int(np.flatnonzero(demo_steps == DEMO_CHECKPOINTS[0])[3])
    assert main(_demo_explain(demo_dir, "--scenario", str(early))) == 2
    line = _one_error_line(capsys)
    assert (f"--scenario {early} is of training step {DEMO_CHECKPOINTS[0]}, but the registry describes training step "
            f"{final}: pass --step {DEMO_CHECKPOINTS[0]}") in line
    assert f"or a scenario of step {final} ({at_final[0]}..{at_final[-1]})" in line


def test_explain_another_step_when_asked_notes_it_on_every_claim(demo_dir: Path, demo_steps: np.ndarray,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    first, final = DEMO_CHECKPOINTS[0], DEMO_CHECKPOINTS[-1]
    early = int(np.flatnonzero(demo_steps == first)[3])
    assert main(_demo_explain(demo_dir, "--scenario", str(early), "--step", str(first))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == (f"Explained: training step {first}, as asked; the registry describes training step {final}, "
                        "another network: every claim notes it.")
    claims = [line for line in lines if ": attends " in line]
    note = (f" [Note: the registry describes training step {final}, not step {first}: its labels and rates are those "
            "of another network.]")
    registry = json.loads((demo_dir / "head_functions.json").read_text())
    n_validated = sum(entry["validated"] for key, entry in registry.items() if key.isdigit())
    assert len(claims) == n_validated > 0 and all(line.endswith(note) for line in claims)
    assert main(_demo_explain(demo_dir, "--step", str(first), "--format", "csv")) == 0
    captured = capsys.readouterr()
    table = pd.read_csv(io.StringIO(captured.out))
    assert set(table["scenario"]) == set(np.flatnonzero(demo_steps == first).tolist())
    assert (table["step"] == first).all() and (table["note"] == note[len(" [Note: "):-len(".]")]).all()
    assert captured.err.startswith(f"hsi-stats: Explained: training step {first}, as asked")


def test_explain_refuses_a_registry_step_the_data_lack_naming_the_steps(demo_dir: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    final, earlier = DEMO_CHECKPOINTS[-1], list(DEMO_CHECKPOINTS[:-1])
    assert main(_demo_explain(demo_dir, "--step-range", str(earlier[0]), str(earlier[-1]))) == 2
    assert (f"the registry describes training step {final} (its _meta.data_summary), but the data hold the training "
            f"steps {earlier}, not that one") in _one_error_line(capsys)
    assert main(_demo_explain(demo_dir, "--step", "250")) == 2
    assert f"--step must be one of the training steps of {demo_dir / 'logs'}" in _one_error_line(capsys)


# ----------------------------------------------------------------------------------------------- compare
@pytest.fixture(scope="module")
def run_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three analysis folders of runs with different seeds, written by hsi-stats analyze (tables only)."""
    root = tmp_path_factory.mktemp("compare")
    folders = []
    for seed in range(3):
        write_npz(generate(n_episodes=16, n_steps=8, rng=seed).dataset, root / f"seed{seed}.npz")
        out = root / f"seed{seed}"
        assert main(["analyze", str(root / f"seed{seed}.npz"), "--out", str(out), "--format", "", "--seed", "0",
                     *FAST]) == 0
        folders.append(out)
    return folders


def test_compare_writes_the_tables_figure_page_and_summary(run_dirs: list[Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    out = tmp_path / "cmp"
    assert main(["compare", *map(str, run_dirs), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("Comparison of 3 runs (seed0, seed1, seed2)") and f"wrote {out}" in printed
    for name in ("matches.csv", "functions.csv", "carriers.csv", "similarity.csv", "summary.txt", "comparison.html",
                 "figures/runs.pdf", "figures/runs.svg", "figures/runs.png"):
        assert (out / name).is_file(), name
    matches = pd.read_csv(out / "matches.csv")
    assert len(matches) == 16 and matches["stability"].isna().all()
    functions = pd.read_csv(out / "functions.csv")
    assert {"label", "runs_with", "runs", "rate", "ci_low", "ci_high"} <= set(functions.columns)
    assert (functions["runs"] == 3).all()
    html = (out / "comparison.html").read_text()
    assert "<script" not in html and "data:image/png;base64," in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert (out / "summary.txt").read_text().strip() in printed


def test_compare_bad_input_exits_2_with_one_line_naming_the_folder(run_dirs: list[Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for name in ("heads.csv", "head_functions.json"):
        (fewer / name).write_bytes((run_dirs[1] / name).read_bytes())
    pairs = pd.read_csv(run_dirs[1] / "pairs.csv")
    pairs[pairs["feature"] != "ttc"].to_csv(fewer / "pairs.csv", index=False)
    out = tmp_path / "out"
    cases = [([str(run_dirs[0])], f"{run_dirs[0]}: a comparison needs at least 2"),
             ([str(run_dirs[0]), str(tmp_path)], f"{tmp_path}: not an analysis output folder"),
             ([str(run_dirs[0]), str(fewer)], f"{fewer}: the runs must have the same features")]
    for runs, message in cases:
        capsys.readouterr()
        assert main(["compare", *runs, "--out", str(out)]) == 2
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("hsi-stats: error: ") and message in lines[0], lines
        assert not out.exists()  # nothing written
