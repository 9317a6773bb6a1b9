"""Feature meanings: which head function a feature stands for and which sign of correlation is expected.

The driving catalog (eight driving features, each with a head-function label and an expected sign) is built in; users
pass their own as a mapping or a TOML/JSON file for other domains. A feature the catalog does not know gets the
generic label ``"<feature> Head"`` with sign ``either``. This module holds data and lookups only: it computes nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._validation import OptionError, OptionTypeError, check_choice

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["DRIVING_CATALOG", "GENERAL_CONTEXT", "SIGNS", "FeatureCatalog", "FeatureMeaning", "load_catalog"]

GENERAL_CONTEXT = "General Context Head"
#: The expected signs a feature meaning can have.
SIGNS = ("positive", "negative", "either")


@dataclass(frozen=True)
class FeatureMeaning:
    """What a correlation between a head's attention and one feature means.

    Attributes
    ----------
    feature : str
        Feature name as it appears in the data.
    label : str
        Head-function name given to a head validated on this feature (e.g. ``"Safety Head"``).
    description : str
        One sentence for the registry and the report.
    sign : {"positive", "negative", "either"}
        Expected sign of rho for the label to apply.
    """

    feature: str
    label: str
    description: str
    sign: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "sign", check_choice(f"sign of feature {self.feature!r}", self.sign, SIGNS))

    def sign_matches(self, rho: float) -> bool:
        """True when ``rho`` has the expected sign (always True for ``either``; False for rho = 0 or NaN)."""
        if self.sign == "either":
            return bool(rho == rho)  # NaN compares unequal to itself
        return bool(rho < 0) if self.sign == "negative" else bool(rho > 0)


class FeatureCatalog(Mapping[str, FeatureMeaning]):
    """A read-only mapping of feature name to :class:`FeatureMeaning`, generic for unknown features.

    Examples
    --------
    >>> DRIVING_CATALOG["ttc"].label
    'Safety Head'
    >>> DRIVING_CATALOG.meaning("lane_curvature").label
    'lane_curvature Head'
    """

    def __init__(self, meanings: Mapping[str, FeatureMeaning]) -> None:
        self._meanings = dict(meanings)

    def __getitem__(self, feature: str) -> FeatureMeaning:
        return self._meanings[feature]

    def __iter__(self) -> Iterator[str]:
        return iter(self._meanings)

    def __len__(self) -> int:
        return len(self._meanings)

    def meaning(self, feature: str) -> FeatureMeaning:
        """The catalog entry for ``feature``, or the generic ``"<feature> Head"`` with sign ``either``."""
        if feature in self._meanings:
            return self._meanings[feature]
        return FeatureMeaning(feature, f"{feature} Head",
                              f"Attends to entities according to {feature}.", "either")

    def __repr__(self) -> str:
        return f"FeatureCatalog({sorted(self._meanings)})"

    @classmethod
    def from_mapping(cls, entries: Mapping[str, Any], *, source: str = "catalog") -> FeatureCatalog:
        """Build a catalog from ``{feature: {"label": ..., "description": ..., "sign": ...}}``.

        A value may also be a :class:`FeatureMeaning`. ``description`` defaults to a generic sentence and
        ``sign`` to ``either``.
        """
        meanings: dict[str, FeatureMeaning] = {}
        for feature, entry in entries.items():
            if isinstance(entry, FeatureMeaning):
                meanings[feature] = entry
                continue
            if not isinstance(entry, Mapping) or "label" not in entry:
                raise OptionError(f"{source}: the entry for feature {feature!r} must be a table with at least "
                                 f"a 'label' key, but {entry!r} was passed.")
            unknown = set(entry) - {"label", "description", "sign"}
            if unknown:
                raise OptionError(f"{source}: the entry for feature {feature!r} may only have the keys "
                                 f"'label', 'description', 'sign', but it also has {sorted(unknown)}.")
            meanings[feature] = FeatureMeaning(
                feature,
                str(entry["label"]),
                str(entry.get("description", f"Attends to entities according to {feature}.")),
                str(entry.get("sign", "either")),
            )
        return cls(meanings)


def load_catalog(catalog: FeatureCatalog | Mapping[str, Any] | str | os.PathLike[str] | None) -> FeatureCatalog:
    """Resolve the ``catalog`` argument of the public API into a :class:`FeatureCatalog`.

    Parameters
    ----------
    catalog : None, FeatureCatalog, mapping or path
        ``None`` gives :data:`DRIVING_CATALOG`; a mapping is read by :meth:`FeatureCatalog.from_mapping`; a path
        to a ``.toml`` or ``.json`` file holds the same table (TOML: one ``[feature]`` table per feature).

    Examples
    --------
    >>> load_catalog({"token_is_prev": {"label": "Previous Token Head", "sign": "positive"}})["token_is_prev"].sign
    'positive'
    """
    if catalog is None:
        return DRIVING_CATALOG
    if isinstance(catalog, FeatureCatalog):
        return catalog
    if isinstance(catalog, Mapping):
        return FeatureCatalog.from_mapping(catalog)
    if isinstance(catalog, (str, os.PathLike)):
        path = Path(catalog)
        if not path.is_file():
            raise OptionError(f"`catalog` must be an existing .toml or .json file, but {str(path)!r} does not exist.")
        suffix = check_choice("catalog file suffix", path.suffix.lstrip("."), ("toml", "json"))
        try:
            if suffix == "toml":
                entries = tomllib.loads(path.read_text(encoding="utf-8"))
            else:
                entries = json.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
            raise OptionError(f"{path}: the catalog file could not be parsed ({exc}).") from None
        if not isinstance(entries, Mapping):
            raise OptionError(f"{path}: the catalog must be a table of features, but a "
                             f"{type(entries).__name__} was found.")
        return FeatureCatalog.from_mapping(entries, source=str(path))
    raise OptionTypeError(f"The value for `catalog` must be None, a mapping or a path to a .toml/.json file, "
                    f"but {type(catalog).__name__} was passed.")


#: The built-in driving catalog: ``ttc`` (Safety Head, negative), ``distance_to_ego`` (Proximity Head, negative),
#: ``closing_speed`` (Threat Assessment Head, positive), ``is_ahead`` (Traffic Flow Head, positive), ``is_behind``
#: (Rear Monitoring Head, positive), ``is_left`` (Left Lane Head, positive), ``is_right`` (Right Lane Head,
#: positive) and ``agent_speeds`` (Dynamic Object Head, either). The default ``catalog`` of every analysis.
DRIVING_CATALOG = FeatureCatalog.from_mapping(
    {
        "ttc": {"label": "Safety Head", "sign": "negative",
                "description": "Attends to vehicles with low time-to-collision (collision threats)."},
        "distance_to_ego": {"label": "Proximity Head", "sign": "negative",
                            "description": "Attends to nearby vehicles."},
        "closing_speed": {"label": "Threat Assessment Head", "sign": "positive",
                          "description": "Attends to vehicles approaching the ego vehicle."},
        "is_ahead": {"label": "Traffic Flow Head", "sign": "positive",
                     "description": "Attends to leading vehicles ahead of the ego vehicle."},
        "is_behind": {"label": "Rear Monitoring Head", "sign": "positive",
                      "description": "Attends to vehicles behind the ego vehicle."},
        "is_left": {"label": "Left Lane Head", "sign": "positive",
                    "description": "Monitors vehicles in the lane(s) to the left."},
        "is_right": {"label": "Right Lane Head", "sign": "positive",
                     "description": "Monitors vehicles in the lane(s) to the right."},
        "agent_speeds": {"label": "Dynamic Object Head", "sign": "either",
                         "description": "Attends to vehicles according to their speed."},
    },
    source="driving catalog",
)
