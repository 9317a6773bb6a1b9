"""Argument checks shared by the modules of :mod:`hsi_stats.synthetic`.

Each check raises the package's error ("The value for `param` must be ..., but X was passed.").
This module must never import anything but numpy.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_int", "is_int", "is_real"]


def is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def check_int(param: str, value: object, minimum: int) -> int:
    if not is_int(value) or int(value) < minimum:  # type: ignore[call-overload]
        raise ValueError(f"The value for `{param}` must be an integer >= {minimum}, "
                         f"but {value!r} was passed.")
    return int(value)  # type: ignore[call-overload]

