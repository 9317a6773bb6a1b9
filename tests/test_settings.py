"""``AnalysisSettings``: one place for every option's default, allowed values and check.

- Changing a default on ``AnalysisSettings`` (its constructor's defaults are the only ones) moves the CLI's flags
  and help, ``analyze``, the report's methods text and the evolution figure's threshold with it.
- No public function restates an option's default in its signature.
- Every option refuses a bad value with an ``OptionError`` naming the option, what is allowed and what was passed.
- ``scheme="auto"`` is resolved before any array is built: with enough groups for the sign-flip test, the
  permutation inputs (S x H x F x V arrays) are never built.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import numpy as np
import pytest

from hsi_stats import HSIDataset, analyze, analyze_evolution, estimate
from hsi_stats._validation import InputError, OptionError, OptionTypeError
from hsi_stats.cli import analysis_settings, build_parser
from hsi_stats.compat import HeadVisualization
from hsi_stats.inference import cluster_bootstrap, randomisation_test
from hsi_stats.inference.randomisation import MIN_SIGN_FLIP_GROUPS, PermutationInputs
from hsi_stats.report.figures import evolution_plot
from hsi_stats.report.methods import methods_text
from hsi_stats.settings import CORRECTIONS, AnalysisSettings, check_option, option_names
from hsi_stats.synthetic import generate

#: The keys of the settings mapping recorded in the registry's ``_meta`` (and the report) since the first release.
RECORDED_KEYS = ["estimator", "correlation", "adjust", "fisher_clip", "n_resamples", "confidence_level", "ci_method",
                 "scheme", "scheme_requested", "correction", "alpha", "threshold", "min_stability",
                 "min_selectivity", "strict", "joint", "catalog"]


@pytest.fixture(scope="module")
def dataset() -> HSIDataset:
    return generate(n_episodes=14, n_steps=4, rng=2).dataset


# ----------------------------------------------------------------------------------------- one default
def test_a_changed_default_reaches_every_face(monkeypatch: pytest.MonkeyPatch, dataset: HSIDataset,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    defaults = AnalysisSettings.__init__.__kwdefaults__
    assert defaults is not None and defaults["threshold"] == AnalysisSettings().threshold
    monkeypatch.setitem(defaults, "threshold", 0.45)
    monkeypatch.setitem(defaults, "n_resamples", 123)
    monkeypatch.setitem(defaults, "ci_method", "percentile")
    assert AnalysisSettings().threshold == 0.45

    # the command line: flag defaults and help text
    parser = build_parser()
    args = parser.parse_args(["analyze", "run.npz"])
    assert analysis_settings(args) == AnalysisSettings()
    with pytest.raises(SystemExit):
        parser.parse_args(["analyze", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "(default: 0.45)" in help_text and "(default: 123)" in help_text and "(default: percentile)" in help_text

    # the API and the report's methods text
    result = analyze(dataset, rng=0)
    assert result.settings.threshold == 0.45 and result.bootstrap.n_resamples == 123
    assert result.bootstrap.method == "percentile" and result.test.n_resamples == 123
    text = " ".join(methods_text(result).paragraphs)
    assert "reached 0.45" in text and "123 cluster-bootstrap resamples" in text and "as percentile intervals" in text
    assert result.registry()["_meta"]["settings"]["threshold"] == 0.45

    # a lower-level function without the option given uses the same default
    assert cluster_bootstrap(result.estimate.sums, rng=0).n_resamples == 123


def test_no_public_function_restates_an_option_default() -> None:
    options = set(option_names())
    functions = [analyze, analyze_evolution, estimate, cluster_bootstrap, randomisation_test,
                 evolution_plot, HeadVisualization.plot_all]
    restated = [f"{function.__qualname__}({name}={parameter.default!r})"
                for function in functions
                for name, parameter in inspect.signature(function).parameters.items()
                if name in options | {"method", "threshold"}
                and parameter.default not in (None, inspect.Parameter.empty)]
    assert restated == []


def test_every_option_has_a_documented_check() -> None:
    for field in dataclasses.fields(AnalysisSettings):
        if field.name == "scheme_requested":
            assert not field.init
            continue
        assert callable(field.metadata["check"]) and len(field.metadata["doc"]) > 20, field.name
        # the default passes its own check and the analyze docstring documents the option with its default
        assert check_option(field.name, field.default) == getattr(AnalysisSettings(), field.name)
        assert f"{field.name} : " in (analyze.__doc__ or "")
    assert f"default {AnalysisSettings().n_resamples!r}" in (analyze.__doc__ or "")


# ----------------------------------------------------------------------------------------- checks
BAD_VALUES = [
    ("estimator", "median", r"`estimator` must be one of \{'within', 'pooled', 'fisher'\}, but 'median'"),
    ("correlation", 3, r"`correlation` must be one of .*, but 3 was passed"),
    ("adjust", "scenario", r"`adjust` must be one of \{'none', 'slot'\}"),
    ("fisher_clip", 1.0, r"`fisher_clip` must lie in \(0, 1\), but 1.0"),
    ("n_resamples", 0, r"`n_resamples` must be an integer >= 1, but 0"),
    ("n_resamples", 9.5, r"`n_resamples` must be an integer >= 1, but 9.5"),
    ("n_resamples", True, r"`n_resamples`"),
    ("confidence_level", 95, r"`confidence_level` must lie in \(0, 1\), but 95"),
    ("confidence_level", "0.9", r"`confidence_level`"),
    ("ci_method", "studentized", r"`ci_method` must be one of \{'expanded', 'bca', 'percentile', 'basic'\}"),
    ("scheme", "bootstrap", r"`scheme` must be one of \{'auto', 'sign-flip'"),
    ("correction", "hochberg", r"`correction` must be one of \{'maxt', .*'hommel', 'none'\}, but 'hochberg'"),
    ("joint", "yes", r"`joint` must be True or False, but 'yes' was passed"),
    ("alpha", math.nan, r"`alpha` must be a number in \[0, 1\], but nan"),
    ("threshold", 1.5, r"`threshold` must be a number in \[0, 1\]"),
    ("min_stability", True, r"`min_stability`"),
    ("min_selectivity", "0.1", r"`min_selectivity`"),
    ("strict", "yes", r"`strict` must be True or False, but 'yes'"),
    ("catalog", 42, r"`catalog` must be None, a mapping or a path"),
    ("catalog", "missing.toml", r"`catalog` must be an existing .toml or .json file"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_VALUES, ids=[f"{n}={v!r}" for n, v, _ in BAD_VALUES])
def test_bad_values_are_refused_naming_the_option(name: str, value: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as caught:
        AnalysisSettings(**{name: value})
    assert isinstance(caught.value, (OptionError, OptionTypeError))
    with pytest.raises(InputError, match=message):
        AnalysisSettings().replace(**{name: value})


def test_all_options_are_covered_by_the_bad_value_cases() -> None:
    assert {name for name, _, _ in BAD_VALUES} == set(option_names())


@pytest.mark.parametrize(("options", "message"), [
    ({"estimator": "pooled", "adjust": "slot"}, r"`adjust='slot'` is defined for estimator='within' only"),
    ({"estimator": "fisher", "scheme": "within-group"}, r"`scheme='within-group'` permutes entities"),
    ({"adjust": "slot", "scheme": "within-scenario"}, r"`scheme='within-scenario'` permutes entities"),
])
def test_options_that_do_not_go_together(options: dict[str, object], message: str) -> None:
    with pytest.raises(OptionError, match=message):
        AnalysisSettings(**options)


def test_choices_are_case_insensitive_and_stored_canonically() -> None:
    settings = AnalysisSettings(correction="maxT-Single-Step", ci_method="BCa", estimator="Within", adjust="None")
    assert (settings.correction, settings.ci_method, settings.estimator, settings.adjust) == (
        "maxt-single-step", "bca", "within", None)
    assert "maxt" in CORRECTIONS and AnalysisSettings().correction == "maxt"


def test_unknown_options_are_refused_with_the_list(dataset: HSIDataset) -> None:
    with pytest.raises(OptionTypeError, match=r"`analyze` takes the options \[.*'n_resamples'.*\], but 'n_resample'"):
        analyze(dataset, n_resample=9)
    with pytest.raises(OptionTypeError, match=r"`estimate` takes the options \['estimator', 'correlation', 'adjust', "
                                              r"'fisher_clip'\], but 'n_resamples' was passed"):
        estimate(dataset, n_resamples=9)
    with pytest.raises(OptionTypeError, match=r"`settings` must be an AnalysisSettings or None, but dict"):
        analyze(dataset, {"n_resamples": 9})  # type: ignore[arg-type]
    with pytest.raises(OptionTypeError, match=r"options of an analysis are .*, but 'seed'"):
        AnalysisSettings().replace(seed=1)


# ----------------------------------------------------------------------------------------- the object
def test_settings_are_immutable_and_comparable() -> None:
    settings = AnalysisSettings(n_resamples=99)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.n_resamples = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings["alpha"] = 0.5  # type: ignore[index]
    assert settings == AnalysisSettings(n_resamples=99) != AnalysisSettings()
    assert hash(settings) == hash(AnalysisSettings(n_resamples=99))
    assert settings.replace() is settings and settings.replace(alpha=0.01).alpha == 0.01


def test_the_recorded_mapping_keeps_its_keys(dataset: HSIDataset) -> None:
    result = analyze(dataset, n_resamples=49, rng=0)
    assert list(result.settings.to_dict()) == RECORDED_KEYS == list(result.settings)
    assert result.registry()["_meta"]["settings"] == result.settings.to_dict()
    assert result.settings["scheme"] == result.settings.scheme == "sign-flip"
    assert result.settings["scheme_requested"] == "auto" and result.settings["catalog"] == "driving"
    assert dict(result.settings) == result.settings.to_dict()


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
def test_evolution_records_the_same_settings(dataset: HSIDataset) -> None:
    run = generate(n_episodes=3, n_steps=2, checkpoints=(1, 2), rng=0).dataset
    evolution = analyze_evolution(run, AnalysisSettings(n_resamples=19), trend_resamples=9, rng=0)
    assert dict(evolution.settings) == {**AnalysisSettings(n_resamples=19).to_dict(), "trend_resamples": 9}


# ----------------------------------------------------------------------------------------- scheme resolved first
def _count_permutation_inputs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    built: list[int] = []
    original = PermutationInputs.from_dataset.__func__  # type: ignore[attr-defined]

    def counting(cls: type[PermutationInputs], dataset: HSIDataset, correlation: str) -> PermutationInputs:
        built.append(dataset.n_scenarios)
        return original(cls, dataset, correlation)

    monkeypatch.setattr(PermutationInputs, "from_dataset", classmethod(counting))
    return built


def test_auto_with_enough_groups_builds_no_permutation_input(monkeypatch: pytest.MonkeyPatch) -> None:
    built = _count_permutation_inputs(monkeypatch)
    enough = generate(n_episodes=MIN_SIGN_FLIP_GROUPS, n_steps=3, rng=1).dataset
    result = analyze(enough, n_resamples=49, rng=0)
    assert result.test.scheme == "sign-flip" and built == []
    few = generate(n_episodes=MIN_SIGN_FLIP_GROUPS - 1, n_steps=3, rng=1).dataset
    result = analyze(few, n_resamples=49, rng=0)
    assert result.test.scheme == "within-group" and built == [few.n_scenarios]


def test_a_scheme_that_cannot_apply_fails_before_any_computation(monkeypatch: pytest.MonkeyPatch,
                                                                 dataset: HSIDataset) -> None:
    def no_estimation(*_: object) -> None:
        raise AssertionError("estimation ran before the scheme was checked")

    monkeypatch.setattr("hsi_stats.results.estimate_with", no_estimation)
    with pytest.raises(OptionError, match="permutes entities"):
        analyze(dataset, estimator="pooled", scheme="within-group")
    few = generate(n_episodes=5, n_steps=3, rng=1).dataset
    with pytest.raises(OptionError, match=r"within-group.*permutes entities.*12 groups.*5"):
        analyze(few, estimator="pooled")  # auto resolves to within-group, which pooled cannot use


@pytest.mark.filterwarnings("ignore::hsi_stats._validation.ResamplingWarning")  # few resamples, on purpose
def test_resolved_settings_record_the_request(dataset: HSIDataset) -> None:
    few = generate(n_episodes=4, n_steps=3, rng=1).dataset
    result = analyze(few, n_resamples=19, rng=0)
    assert (result.settings.scheme, result.settings.scheme_requested) == ("within-group", "auto")
    again = analyze(few, result.settings, rng=0)  # the resolved settings give the same analysis
    np.testing.assert_array_equal(again.pairs["p_value"], result.pairs["p_value"])


def test_every_choice_has_its_display_name_and_methods_sentence() -> None:
    from hsi_stats.report import methods
    from hsi_stats.settings import CI_METHOD_NAMES, CI_METHODS, CORRECTION_NAMES, CORRELATIONS, ESTIMATORS, SCHEMES

    assert set(CORRECTION_NAMES) == set(CORRECTIONS) == set(methods._CORRECTION_TEXT)
    assert set(CI_METHOD_NAMES) == set(CI_METHODS) == set(methods._CI_TEXT)
    assert set(methods._SCHEME_TEXT) == set(SCHEMES) - {"auto"}  # a result records the scheme used
    assert set(methods._ESTIMATOR_TEXT) == set(ESTIMATORS)
    assert set(methods._CORRELATION_TEXT) == set(methods._SCALE_TEXT) == set(CORRELATIONS)
