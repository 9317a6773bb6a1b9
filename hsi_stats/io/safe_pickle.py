"""Load pickle files without letting them run code.

Unpickling calls whatever callable the file names, so a pickle from an untrusted source can run
arbitrary code the moment it is loaded. The driving-log formats (feature logs, attention files, unified
extractions) are pickles holding
nothing but plain containers, numbers, strings and numpy arrays, so the loader here resolves only
those and refuses any other global with :class:`UnsafePickleError` *before* it is called. This
module must never call :func:`pickle.load` on a file unless the user passed ``trust_pickle=True``.
"""

from __future__ import annotations

import builtins
import collections
import functools
import importlib
import os
import pickle
import warnings
from pathlib import Path
from typing import Any

from .._validation import HSIDataError

__all__ = ["UnsafePickleError", "safe_load_pickle"]


class UnsafePickleError(HSIDataError):
    """A pickle file names a class or function outside the allow-list of plain data types."""


# Python 2 era module names written by protocols 0-2. The default ``find_class`` maps them
# (``fix_imports``); an override receives them raw and must map them itself.
_PY2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg"}

_BUILTINS = frozenset({
    "dict", "list", "tuple", "set", "frozenset", "bytes", "bytearray", "complex",
    # Plain scalar types: harmless to call, and the usual ``defaultdict`` factories.
    "int", "float", "str", "bool",
})

# numpy's array, dtype and scalar reconstruction functions, under the numpy >= 2 (``numpy._core``)
# and the numpy 1.x (``numpy.core``) module names: a pickle written by either names one of them.
_NUMPY_INTERNALS = {
    ("multiarray", "_reconstruct"),
    ("multiarray", "scalar"),
    ("numeric", "_frombuffer"),
}
_NUMPY_GLOBALS = {
    (f"{package}.{module}", name): (module, name)
    for package in ("numpy._core", "numpy.core")
    for module, name in _NUMPY_INTERNALS
}
_LATIN1 = frozenset({"latin1", "latin-1", "latin_1", "iso-8859-1", "iso8859-1", "l1"})

_REFUSAL = ("only plain containers, numbers, strings and numpy arrays are accepted from pickle "
            "files, because unpickling anything else can run code. If you trust this file, pass "
            "trust_pickle=True (CLI --trust-pickle) to load it with plain pickle.")


def _latin1_encode(obj: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as protocol-2 pickles use it to store bytes, restricted to latin-1."""
    if not isinstance(obj, str) or encoding.lower() not in _LATIN1:
        raise pickle.UnpicklingError("`_codecs.encode` is accepted only to rebuild bytes from "
                                     f"latin-1 text, but encoding {encoding!r} was asked for.")
    return obj.encode("latin-1", errors)


@functools.cache
def _numpy_internal(module: str, name: str) -> Any:
    """Resolve a numpy reconstruction function without touching the deprecated ``numpy.core``."""
    for package in ("numpy._core", "numpy.core"):
        try:
            namespace = importlib.import_module(f"{package}.{module}")
        except ImportError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            found = getattr(namespace, name, None)
        if found is not None:
            return found
    raise pickle.UnpicklingError(f"this numpy version has no `{module}.{name}` to rebuild arrays.")


def _resolve(module: str, name: str) -> Any:
    """Return the allow-listed object ``module.name`` refers to, or None when it is not allowed."""
    if module == "builtins" and name in _BUILTINS:
        return getattr(builtins, name)
    if module == "collections" and name in ("OrderedDict", "defaultdict"):
        return getattr(collections, name)
    if module == "_codecs" and name == "encode":
        return _latin1_encode
    if module == "numpy" and name in ("ndarray", "dtype"):
        import numpy

        return getattr(numpy, name)
    if (module, name) in _NUMPY_GLOBALS:
        return _numpy_internal(*_NUMPY_GLOBALS[module, name])
    return None


class _AllowListUnpickler(pickle.Unpickler):
    """Resolves only allow-listed globals: ``find_class`` is the only door through which a pickle
    reaches code, so refusing there stops a malicious file before anything runs."""

    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        module = _PY2_MODULES.get(module, module)
        found = _resolve(module, name)
        if found is None:
            raise UnsafePickleError(f"{self._path}: refusing to load `{module}.{name}`: {_REFUSAL}")
        return found


def safe_load_pickle(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> Any:
    """Load one pickle file, refusing anything but plain data unless the file is trusted.

    Parameters
    ----------
    path : str or path-like
        The pickle file.
    trust_pickle : bool, default False
        When False, only these globals may appear in the file: the builtin containers and scalar
        types (``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``bytes``, ``bytearray``,
        ``complex``, ``int``, ``float``, ``str``, ``bool``), ``collections.OrderedDict`` and
        ``collections.defaultdict``, numpy's array, dtype and scalar reconstruction
        (``numpy.ndarray``, ``numpy.dtype``, ``numpy[._]core.multiarray._reconstruct`` and
        ``.scalar``, ``numpy[._]core.numeric._frombuffer``), and ``_codecs.encode`` restricted to
        latin-1 (protocol-2 pickles store bytes with it). Anything else is refused before it is
        called. When True, the file is read with plain :func:`pickle.load`, which runs whatever
        code the file names: pass it only for files you vouch for.

    Returns
    -------
    object
        The unpickled object.

    Raises
    ------
    UnsafePickleError
        If the file names a class or function outside the allow-list; the message names it as
        ``module.name``. A subclass of :class:`HSIDataError`.
    HSIDataError
        If the file is missing, truncated or not a pickle.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "log.pkl")
    >>> with open(path, "wb") as handle:
    ...     pickle.dump({"step": 3, "x": np.arange(3.0)}, handle, protocol=2)
    >>> safe_load_pickle(path)
    {'step': 3, 'x': array([0., 1., 2.])}
    """
    path = Path(path)
    if not path.is_file():
        raise HSIDataError(f"`path` must be an existing pickle file, but {str(path)!r} does not "
                           f"exist.")
    try:
        with open(path, "rb") as handle:
            if trust_pickle:
                return pickle.load(handle)
            return _AllowListUnpickler(handle, path).load()
    except HSIDataError:
        raise
    except Exception as exc:  # a corrupt pickle can fail with almost any exception type
        raise HSIDataError(f"{path}: not a readable pickle file "
                           f"({type(exc).__name__}: {exc}).") from exc
