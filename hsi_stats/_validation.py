"""Shared argument checks and the package's warning classes.

Every public entry point validates its arguments with the helpers here so that bad input gives one clear
error naming the parameter, what is allowed and what was passed. This module must never import anything
above the data layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "ConstantInputWarning",
    "DataAlignmentWarning",
    "HSIDataError",
    "check_choice",
    "normalize_rng",
]


class HSIDataError(ValueError):
    """Input data that cannot be analysed (wrong shape, non-finite attention, unmatched files...)."""


class ConstantInputWarning(RuntimeWarning):
    """A correlation is undefined because one of its variables never varies; its value is NaN."""


class DataAlignmentWarning(UserWarning):
    """Data were aligned by an assumption (sorted file order, slot = object id) rather than by identifiers."""


def check_choice(param: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` lower-cased when it is one of ``allowed``; raise a clear ``ValueError`` otherwise.

    Examples
    --------
    >>> check_choice("estimator", "Within", ("within", "pooled"))
    'within'
    """
    options = tuple(allowed)
    if isinstance(value, str) and value.lower() in options:
        return value.lower()
    listed = ", ".join(repr(o) for o in options)
    raise ValueError(f"The value for `{param}` must be one of {{{listed}}}, but {value!r} was passed.")


def normalize_rng(rng: object) -> np.random.Generator:
    """Turn anything :func:`numpy.random.default_rng` accepts into a ``Generator`` (once, at the entry point)."""
    try:
        return np.random.default_rng(rng)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "The value for `rng` must be None, an int seed, a SeedSequence, a BitGenerator or a Generator, "
            f"but {rng!r} was passed."
        ) from exc
