"""Shared argument checks, the package's error and warning classes, and the one way to turn ``rng`` into numbers.

Every public entry point validates its arguments with the helpers here so that bad input gives one clear
error naming the parameter, what is allowed and what was passed. Errors caused by what a user passed (data,
files, options) derive from :class:`InputError`, so that a command line can tell them from a bug in the package.
This module must never import anything above the data layer.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = [
    "ClusterError",
    "ConstantInputWarning",
    "ConvergenceWarning",
    "DataAlignmentWarning",
    "HSIDataError",
    "InputError",
    "OptionError",
    "OptionTypeError",
    "RegistryStepWarning",
    "ResamplingWarning",
    "StepPoolingWarning",
    "check_choice",
    "check_int",
    "is_int",
    "is_real",
    "normalize_rng",
    "seeded_generator",
]


class InputError(Exception):
    """Base of the errors caused by the input (data, files, options), as opposed to a bug in hsi_stats."""


class HSIDataError(InputError, ValueError):
    """Input data that cannot be analysed (wrong shape, non-finite attention, unmatched files...)."""


class OptionError(InputError, ValueError):
    """An option outside its allowed values (the message names the option, what is allowed and what was passed)."""


class OptionTypeError(InputError, TypeError):
    """An argument of the wrong type (the message names the argument, the type expected and the type passed)."""


class ClusterError(Exception):
    """The Dask cluster failed under the computation (its scheduler lost or unreachable, every worker gone): the
    environment failed, neither the input nor hsi_stats. The message names the scheduler's address and what
    happened."""


class ConstantInputWarning(RuntimeWarning):
    """A correlation is undefined because one of its variables never varies; its value is NaN."""


class ResamplingWarning(UserWarning):
    """Too few resamples for the question asked (no adjusted p-value can fall below alpha)."""


class StepPoolingWarning(UserWarning):
    """Scenarios of several training steps (different networks) were pooled into one estimate."""


class RegistryStepWarning(UserWarning):
    """Attention of several training steps explained with a registry that does not say which step it describes."""


class ConvergenceWarning(RuntimeWarning):
    """An iterative fit stopped before its convergence rule held."""


class DataAlignmentWarning(UserWarning):
    """Data were aligned by an assumption (sorted file order, slot = object id) rather than by identifiers."""


def is_int(value: object) -> bool:
    """True for a Python or numpy integer (a bool is not one)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """True for a Python or numpy integer or float (a bool is not one)."""
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def check_int(param: str, value: object, minimum: int) -> int:
    """``value`` as an int when it is an integer >= ``minimum``; a clear :class:`OptionError` otherwise.

    Examples
    --------
    >>> check_int("n_resamples", 99, 1)
    99
    """
    if not is_int(value) or int(value) < minimum:  # type: ignore[call-overload]
        raise OptionError(f"The value for `{param}` must be an integer >= {minimum}, but {value!r} was passed.")
    return int(value)  # type: ignore[call-overload]


def check_choice(param: str, value: object, allowed: Iterable[str]) -> str:
    """Return ``value`` lower-cased when it is one of ``allowed``; raise a clear :class:`OptionError` otherwise.

    Examples
    --------
    >>> check_choice("estimator", "Within", ("within", "pooled"))
    'within'
    """
    options = tuple(allowed)
    if isinstance(value, str) and value.lower() in options:
        return value.lower()
    listed = ", ".join(repr(o) for o in options)
    raise OptionError(f"The value for `{param}` must be one of {{{listed}}}, but {value!r} was passed.")


def normalize_rng(rng: object) -> np.random.Generator:
    """Turn anything :func:`numpy.random.default_rng` accepts into a ``Generator`` (once, at the entry point)."""
    try:
        return np.random.default_rng(rng)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise OptionTypeError(
            "The value for `rng` must be None, an int seed, a SeedSequence, a BitGenerator or a Generator, "
            f"but {rng!r} was passed."
        ) from exc


def seeded_generator(rng: object) -> tuple[int | str, np.random.Generator]:
    """The Generator an analysis draws from, and what to record as its seed.

    ``None`` draws fresh entropy and records it as the seed (so the run can be repeated); an int is its own
    seed; anything else ``numpy.random.default_rng`` accepts is recorded as ``"user-supplied <type>"``.

    Examples
    --------
    >>> seed, generator = seeded_generator(4)
    >>> seed, type(generator).__name__
    (4, 'Generator')
    """
    if rng is None:
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
        return seed, np.random.default_rng(seed)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return int(rng), normalize_rng(int(rng))
    return f"user-supplied {type(rng).__name__}", normalize_rng(rng)
