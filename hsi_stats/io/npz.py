"""The ``.npz`` interchange file: exact round trip, never needs ``allow_pickle``."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._atomic import atomic_path
from .._validation import HSIDataError
from ..data import HSIDataset

__all__ = ["load_npz", "write_npz"]

_REQUIRED = ("attention", "features", "feature_names")
_OPTIONAL = ("mask", "groups", "steps", "slots", "head_names", "notes", "named_steps", "step_names")


def write_npz(dataset: HSIDataset, path: str | os.PathLike[str]) -> None:
    """Write ``dataset`` as the interchange ``.npz`` file, compressed and atomically.

    String fields are stored as fixed-width unicode arrays so that reading never needs pickle;
    :func:`load_npz` gives the same dataset back (equal :meth:`~hsi_stats.data.HSIDataset.fingerprint`).

    Parameters
    ----------
    dataset : HSIDataset
        The dataset to write, with its optional fields and notes.
    path : str or path-like
        Output file; its folder is created when missing.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from hsi_stats import HSIDataset, write_npz
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> write_npz(HSIDataset(np.ones((3, 2, 4)), {"ttc": np.zeros((3, 4))}), path)
    >>> with np.load(path) as archive:
    ...     sorted(archive.files)
    ['attention', 'feature_names', 'features', 'groups', 'head_names', 'mask']
    """
    arrays: dict[str, Any] = {
        "attention": dataset.attention,
        "features": dataset.feature_array(),
        "feature_names": np.array(dataset.feature_names, dtype=str),
        "mask": dataset.mask,
        "groups": dataset.groups,
        "head_names": np.array(dataset.head_names, dtype=str),
    }
    if dataset.steps is not None:
        arrays["steps"] = dataset.steps
    if dataset.slots is not None:
        arrays["slots"] = dataset.slots
    if dataset.notes:
        arrays["notes"] = np.array(dataset.notes, dtype=str)
    if dataset.step_names:
        arrays["named_steps"] = np.array(list(dataset.step_names), dtype=np.int64)
        arrays["step_names"] = np.array(list(dataset.step_names.values()), dtype=str)
    with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def _read_arrays(archive: np.lib.npyio.NpzFile, path: Path) -> dict[str, Any]:
    names = set(archive.files)
    missing = [k for k in _REQUIRED if k not in names]
    if missing:
        raise HSIDataError(f"{path}: the .npz file must contain {list(_REQUIRED)}, but {missing} "
                           f"are missing (it has {sorted(names)}).")
    try:
        return {k: archive[k] for k in (*_REQUIRED, *_OPTIONAL) if k in names}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise HSIDataError(f"{path}: an array needs pickle to load, which is refused ({exc}).") from None


def load_npz(path: str | os.PathLike[str]) -> HSIDataset:
    """Read an :class:`HSIDataset` from the interchange ``.npz`` file.

    The file holds ``attention`` (S, H, V), ``features`` (S, F, V) and ``feature_names`` (F,), and optionally
    ``mask``, ``groups``, ``steps``, ``slots``, ``head_names``, ``notes`` and ``named_steps`` with
    ``step_names`` (the steps shown by name, and their names). Object arrays are refused: loading never
    unpickles.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from hsi_stats import HSIDataset, load_npz, write_npz
    >>> ds = HSIDataset(np.ones((3, 2, 4)), {"ttc": np.arange(12.0).reshape(3, 4)})
    >>> path = os.path.join(tempfile.mkdtemp(), "run.npz")
    >>> write_npz(ds, path)
    >>> load_npz(path).fingerprint() == ds.fingerprint()
    True
    """
    path = Path(path)
    if not path.is_file():
        raise HSIDataError(f"`path` must be an existing .npz file, but {str(path)!r} does not exist.")
    if not zipfile.is_zipfile(path):  # else numpy's message would advise allow_pickle for any non-archive
        raise HSIDataError(f"{path}: not an .npz file (an .npz file is a zip archive of named arrays, as "
                           "write_npz or hsi-stats convert writes it).")
    # np.load is given our own handle: it leaks the file it opened itself when the zip is corrupt.
    with open(path, "rb") as handle:
        try:
            archive = np.load(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise HSIDataError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc}).") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise HSIDataError(f"{path}: expected an .npz archive of named arrays, but the file holds a single "
                               f"{type(archive).__name__}.")
        with archive:
            data = _read_arrays(archive, path)
    features = data["features"]
    feature_names = [str(n) for n in data["feature_names"]]
    if len(set(feature_names)) != len(feature_names):
        raise HSIDataError(f"{path}: `feature_names` must be unique, but {feature_names} was found.")
    if features.ndim != 3 or features.shape[1] != len(feature_names):
        raise HSIDataError(f"{path}: `features` must have shape (S, F, V) with F = len(feature_names) = "
                           f"{len(feature_names)}, but it has shape {features.shape}.")
    return HSIDataset(
        data["attention"],
        {name: features[:, i, :] for i, name in enumerate(feature_names)},
        mask=data.get("mask"),
        groups=data.get("groups"),
        steps=data.get("steps"),
        slots=data.get("slots"),
        head_names=None if "head_names" not in data else [str(n) for n in data["head_names"]],
        notes=() if "notes" not in data else [str(n) for n in data["notes"]],
        step_names=_step_names(data, path),
        copy=False,  # arrays read from the file and held nowhere else
    )


def _step_names(data: dict[str, Any], path: Path) -> dict[int, str]:
    """The ``named_steps``/``step_names`` pair of arrays as a mapping (both or neither, of equal length)."""
    if ("named_steps" in data) != ("step_names" in data):
        raise HSIDataError(f"{path}: `named_steps` and `step_names` must be stored together, but only "
                           f"{'named_steps' if 'named_steps' in data else 'step_names'} was found.")
    if "named_steps" not in data:
        return {}
    steps, names = data["named_steps"], data["step_names"]
    if steps.ndim != 1 or names.shape != steps.shape or not np.issubdtype(steps.dtype, np.integer):
        raise HSIDataError(f"{path}: `named_steps` (integers) and `step_names` must be 1-d arrays of one length, "
                           f"but they have shapes {steps.shape} and {names.shape} and dtype {steps.dtype}.")
    return {int(step): str(name) for step, name in zip(steps, names, strict=True)}
