"""Every option of an analysis in one place: :class:`AnalysisSettings` owns its default, allowed values and check.

:func:`hsi_stats.analyze`, :func:`hsi_stats.analyze_evolution`, :func:`hsi_stats.estimate`, the command line (its
flags are built from the fields here), the labels, the report and the compatibility layer all read one
``AnalysisSettings``; none of them states a default or re-checks an option. The lower-level public functions
(:func:`~hsi_stats.inference.cluster_bootstrap`, ...) check their arguments with :func:`check_option`, the same rule.
The display names of the choices (``maxt`` is "step-down max-T") are declared here too.

This module sits just above the data layer: it imports the catalog loader and nothing that computes.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from ._validation import OptionError, OptionTypeError, check_choice, check_int, is_real
from .catalog import FeatureCatalog, load_catalog

__all__ = [
    "ADJUSTMENTS",
    "CI_METHODS",
    "CI_METHOD_NAMES",
    "CORRECTIONS",
    "CORRECTION_NAMES",
    "CORRELATIONS",
    "ESTIMATORS",
    "MAXT_CORRECTIONS",
    "MIN_SIGN_FLIP_GROUPS",
    "PERMUTATION_SCHEMES",
    "SCHEMES",
    "STATSMODELS_METHODS",
    "AnalysisSettings",
    "check_option",
    "document_options",
    "option_names",
    "options_doc",
]

ESTIMATORS = ("within", "pooled", "fisher")
CORRELATIONS = ("rank-feature", "spearman", "pearson")
ADJUSTMENTS = ("none", "slot")
CI_METHODS = ("expanded", "bca", "percentile", "basic")
SCHEMES = ("auto", "sign-flip", "within-group", "within-scenario")
PERMUTATION_SCHEMES = ("within-group", "within-scenario")
#: Fewest groups with which ``scheme="auto"`` uses the sign-flip test (2**12 = 4096 sign patterns, enough for a
#: p-value below 0.001); below it, the within-group permutation test.
MIN_SIGN_FLIP_GROUPS = 12
STATSMODELS_METHODS = ("holm", "bonferroni", "fdr_bh", "fdr_by", "sidak", "holm-sidak", "hommel")
#: The max-T corrections, counted from the randomisations: studentised (the default) or on the raw |rho| and HSI.
MAXT_CORRECTIONS = ("maxt", "maxt-single-step", "maxt-raw", "maxt-raw-single-step")
CORRECTIONS = (*MAXT_CORRECTIONS, *STATSMODELS_METHODS, "none")

#: How each ``correction`` is named in tables, captions and notices.
CORRECTION_NAMES: Mapping[str, str] = {
    "maxt": "studentised step-down max-T", "maxt-single-step": "studentised single-step max-T",
    "maxt-raw": "raw step-down max-T", "maxt-raw-single-step": "raw single-step max-T",
    "holm": "Holm", "bonferroni": "Bonferroni",
    "fdr_bh": "Benjamini-Hochberg", "fdr_by": "Benjamini-Yekutieli", "sidak": "Sidak", "holm-sidak": "Holm-Sidak",
    "hommel": "Hommel", "none": "unadjusted",
}
#: How each ``ci_method`` is named in tables and captions.
CI_METHOD_NAMES: Mapping[str, str] = {"expanded": "expanded-percentile", "bca": "BCa", "percentile": "percentile",
                                      "basic": "basic"}


# ------------------------------------------------------------------------------------------------ checks
def _positive_int(param: str, value: object) -> int:
    return check_int(param, value, 1)


def _open_unit(param: str, value: object) -> float:
    if not is_real(value) or not 0.0 < float(value) < 1.0:  # type: ignore[arg-type]
        raise OptionError(f"The value for `{param}` must lie in (0, 1), but {value!r} was passed.")
    return float(value)  # type: ignore[arg-type]


def _unit(param: str, value: object) -> float:
    if not is_real(value) or not 0.0 <= float(value) <= 1.0:  # type: ignore[arg-type]
        raise OptionError(f"The value for `{param}` must be a number in [0, 1], but {value!r} was passed.")
    return float(value)  # type: ignore[arg-type]


def _flag(param: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise OptionTypeError(f"The value for `{param}` must be True or False, but {value!r} was passed.")
    return bool(value)


def _choice(allowed: tuple[str, ...]) -> Callable[[str, object], str]:
    return lambda param, value: check_choice(param, value, allowed)


def _adjustment(param: str, value: object) -> str | None:
    chosen = check_choice(param, "none" if value is None else value, ADJUSTMENTS)
    return None if chosen == "none" else chosen


def _catalog(param: str, value: object) -> object:
    if value is not None and not isinstance(value, (FeatureCatalog, Mapping, str, os.PathLike)):
        raise OptionTypeError(f"The value for `{param}` must be None, a mapping or a path to a .toml/.json file, "
                              f"but {type(value).__name__} was passed.")
    return value


# ------------------------------------------------------------------------------------------------ options
def _option(default: Any, check: Callable[[str, object], Any], doc: str, *, kind: str,
            choices: tuple[str, ...] | None = None, typed: str | None = None) -> Any:
    """A field of :class:`AnalysisSettings`: its default, its check and the text that documents it.

    ``kind`` (str, int, float, bool or path) is what the command line reads; ``typed`` what the docstrings say,
    when it differs.
    """
    return field(default=default, metadata={"check": check, "doc": doc, "kind": kind, "choices": choices,
                                            "typed": typed})


def _one_of(default: str, choices: tuple[str, ...], doc: str) -> Any:
    """An option whose value is one of ``choices`` (matched case-insensitively)."""
    return _option(default, _choice(choices), doc, kind="str", choices=choices)


@dataclass(frozen=True, kw_only=True)
class AnalysisSettings(Mapping[str, Any]):
    """Every option of an analysis, checked once at construction (immutable; :meth:`replace` makes a copy).

    Attribute access (``settings.alpha``) is the interface; item access (``settings["alpha"]``) reads
    :meth:`to_dict`, the form written into the registry's ``_meta`` and the report. After an analysis,
    ``scheme`` is the scheme used and ``scheme_requested`` what was asked for (``"auto"``).

    Parameters
    ----------
    {options}

    Examples
    --------
    >>> settings = AnalysisSettings(n_resamples=999, correction="Holm")
    >>> settings.correction, settings.replace(alpha=0.01).alpha
    ('holm', 0.01)
    >>> AnalysisSettings(estimator="median")
    Traceback (most recent call last):
    ...
    hsi_stats._validation.OptionError: The value for `estimator` must be one of {'within', 'pooled', 'fisher'}, \
but 'median' was passed.
    """

    estimator: str = _one_of(
        "within", ESTIMATORS,
        "How rho is estimated: ``within`` centres attention and feature within each scenario (compares entities "
        "present together; immune to traffic density), ``pooled`` correlates all (scenario, entity) pairs (the "
        "original method), ``fisher`` averages per-scenario Fisher z (kept for comparability).")
    correlation: str = _one_of(
        "rank-feature", CORRELATIONS,
        "``rank-feature`` correlates the attention mass with the feature's mid-rank percentile (within each "
        "scenario, or over the pooled pairs): linear in attention, robust to the feature's scale and tails; "
        "``spearman`` ranks both sides (average ties); ``pearson`` uses raw values.")
    adjust: str | None = _option(
        None, _adjustment, kind="str", choices=ADJUSTMENTS, typed="{None, 'slot'}",
        doc="``slot`` (``within`` only) also removes per-slot means (two-way fixed effects), for slots ordered "
            "by distance; ``none`` (or None) correlates as observed.")
    fisher_clip: float = _option(
        0.999, _open_unit, kind="float",
        doc="``fisher`` only: per-scenario r is clipped to +-fisher_clip before Fisher's z.")
    n_resamples: int = _option(
        9999, _positive_int, kind="int",
        doc="Cluster-bootstrap resamples, and randomisations of the test, each.")
    confidence_level: float = _option(0.95, _open_unit, kind="float", doc="Level of the confidence intervals.")
    ci_method: str = _one_of(
        "expanded", CI_METHODS,
        "Bootstrap interval: ``expanded`` percentile (Hesterberg 2015; near-nominal coverage with few groups), "
        "``bca``, ``percentile`` or ``basic``.")
    scheme: str = _one_of(
        "auto", SCHEMES,
        "Randomisation test: ``sign-flip`` (each group's contribution gets a random sign), ``within-group`` or "
        "``within-scenario`` entity permutations (``within`` estimator without adjustment only); ``auto`` uses "
        f"sign-flip with at least {MIN_SIGN_FLIP_GROUPS} groups, else within-group.")
    correction: str = _one_of(
        "maxt", CORRECTIONS,
        "Multiple-comparison correction over all head x feature tests (and over the head tests): ``maxT`` "
        "(step-down Westfall-Young from the same randomisations, each statistic divided by the spread of its own "
        "null), ``maxT-single-step``, ``maxT-raw`` and ``maxT-raw-single-step`` (on |rho| and the HSI unscaled), "
        "or a statsmodels method.")
    alpha: float = _option(0.05, _unit, kind="float", doc="Significance level of the label validation.")
    threshold: float = _option(0.3, _unit, kind="float", doc="|rho| a label needs (the HSI band 'weak').")
    min_stability: float = _option(
        0.8, _unit, kind="float",
        doc="Share of bootstrap resamples in which the label's feature must stay the strongest.")
    min_selectivity: float = _option(
        0.05, _unit, kind="float",
        doc="Least mean 1 - H(p)/log n of the head's attention (0 = uniform) for a label.")
    strict: bool = _option(False, _flag, kind="bool",
                           doc="Also require the CI bound nearest zero to reach the threshold.")
    joint: bool = _option(
        True, _flag, kind="bool",
        doc="Fit the joint model of each head (a conditional logit of its attention on every feature, the others "
            "held fixed): its coefficients with intervals and corrected tests, each head's profile, and a label "
            "validates only if its feature keeps a conditional effect in the expected direction.")
    catalog: FeatureCatalog | Mapping[str, Any] | str | os.PathLike[str] | None = _option(  # noqa: RUF009 - a field
        None, _catalog, kind="path", typed="None, mapping or path",
        doc="Feature meanings (head-function names, expected signs): a .toml/.json file (or, in Python, a "
            "mapping); None for the driving catalog.")
    scheme_requested: str = field(default="", init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        for option in _options():
            object.__setattr__(self, option.name, option.metadata["check"](option.name, getattr(self, option.name)))
        if self.adjust == "slot" and self.estimator != "within":
            raise OptionError(f"`adjust='slot'` is defined for estimator='within' only, but estimator="
                              f"{self.estimator!r} was passed.")
        if self.scheme in PERMUTATION_SCHEMES and not self.permutable:
            given = (f"estimator={self.estimator!r}" if self.estimator != "within" else f"adjust={self.adjust!r}")
            raise OptionError(f"`scheme={self.scheme!r}` permutes entities and is available for estimator='within' "
                              f"without adjustment only, but {given} was passed; use scheme='sign-flip'.")
        object.__setattr__(self, "_feature_catalog", load_catalog(self.catalog))
        object.__setattr__(self, "scheme_requested", self.scheme)

    # ------------------------------------------------------------------ derived
    @property
    def permutable(self) -> bool:
        """Whether the entity-permutation schemes apply (``within`` estimator without adjustment)."""
        return self.estimator == "within" and self.adjust is None

    @property
    def feature_catalog(self) -> FeatureCatalog:
        """The catalog the labels are judged against (``catalog`` loaded)."""
        loaded: FeatureCatalog = self.__dict__["_feature_catalog"]
        return loaded

    @classmethod
    def from_options(cls, settings: AnalysisSettings | None, options: Mapping[str, Any], *,
                     allowed: tuple[str, ...] | None = None, caller: str = "analyze") -> AnalysisSettings:
        """``settings`` (default ``AnalysisSettings()``) with ``options`` overriding some of its fields.

        ``allowed`` restricts the names ``caller`` takes (an :class:`OptionTypeError` lists them otherwise).
        """
        if settings is None:
            settings = cls()
        elif not isinstance(settings, AnalysisSettings):
            raise OptionTypeError(f"The value for `settings` must be an AnalysisSettings or None, but "
                                  f"{type(settings).__name__} was passed.")
        names = option_names() if allowed is None else allowed
        unknown = sorted(set(options) - set(names))
        if unknown:
            raise OptionTypeError(f"`{caller}` takes the options {list(names)}, but "
                                  f"{', '.join(map(repr, unknown))} was passed.")
        return settings.replace(**options)

    def replace(self, **changes: Any) -> AnalysisSettings:
        """A copy with some options changed (checked like the constructor's).

        Raises
        ------
        OptionTypeError
            For a name that is not an option; the message lists the options.
        """
        unknown = sorted(set(changes) - set(option_names()))
        if unknown:
            raise OptionTypeError(f"The options of an analysis are {list(option_names())}, but "
                                  f"{', '.join(map(repr, unknown))} was passed.")
        return replace(self, **changes) if changes else self

    def with_scheme_used(self, scheme: str) -> AnalysisSettings:
        """A copy recording ``scheme`` as used and the present ``scheme`` as requested."""
        used = replace(self, scheme=scheme)
        object.__setattr__(used, "scheme_requested", self.scheme_requested)
        return used

    # ------------------------------------------------------------------ serialised form
    def catalog_name(self) -> str:
        """``"driving"``, the catalog file's path, or ``"user mapping"``."""
        if self.catalog is None:
            return "driving"
        return str(self.catalog) if isinstance(self.catalog, (str, os.PathLike)) else "user mapping"

    def to_dict(self) -> dict[str, Any]:
        """Plain values of every option (``catalog`` by name, ``scheme_requested`` added) for JSON and reports."""
        out: dict[str, Any] = {}
        for option in _options():
            out[option.name] = self.catalog_name() if option.name == "catalog" else getattr(self, option.name)
            if option.name == "scheme":
                out["scheme_requested"] = self.scheme_requested
        return out

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, option.name) for option in _options())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnalysisSettings):
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        # A catalog given as a mapping is not hashable: hash its serialised form (equal settings, equal hashes).
        return hash(tuple(repr(value) for value in self.to_dict().values()))


def _options() -> tuple[Any, ...]:
    """The fields that are options (everything but what an analysis records on the way)."""
    return tuple(f for f in fields(AnalysisSettings) if "check" in f.metadata)


def option_names() -> tuple[str, ...]:
    """The names of the options, in order."""
    return tuple(f.name for f in _options())


def option_kind(name: str) -> tuple[str, tuple[str, ...] | None, str]:
    """``(kind, choices, doc)`` of an option: kind is ``str``, ``int``, ``float``, ``bool`` or ``path``."""
    option = next(f for f in _options() if f.name == name)
    return option.metadata["kind"], option.metadata["choices"], option.metadata["doc"]


def check_option(name: str, value: object, *, param: str | None = None) -> Any:
    """Check one option's value by the rule :class:`AnalysisSettings` applies, naming ``param`` in errors.

    Examples
    --------
    >>> check_option("ci_method", "BCa", param="method")
    'bca'
    """
    option = next(f for f in _options() if f.name == name)
    return option.metadata["check"](param or name, value)


def options_doc(names: tuple[str, ...] | None = None, indent: str = "    ") -> str:
    """numpydoc entries of some options (all by default) with their defaults, for docstrings."""
    defaults = AnalysisSettings()
    entries = []
    for option in _options():
        if names is not None and option.name not in names:
            continue
        kind, choices, doc = option.metadata["kind"], option.metadata["choices"], option.metadata["doc"]
        default = getattr(defaults, option.name)
        typed = option.metadata["typed"] or ("{" + ", ".join(repr(c) for c in choices) + "}" if choices else kind)
        wrapped = textwrap.fill(doc, width=112, initial_indent=indent + "    ", subsequent_indent=indent + "    ")
        entries.append(f"{option.name} : {typed}, default {default!r}\n{wrapped}")
    return f"\n{indent}".join(entries)


def document_options(obj: Any, names: tuple[str, ...] | None = None, indent: str = "    ") -> None:
    """Replace the marker ``{options}`` in ``obj``'s docstring by the numpydoc entries of some options."""
    obj.__doc__ = (obj.__doc__ or "").replace("{options}", options_doc(names, indent))


document_options(AnalysisSettings)
