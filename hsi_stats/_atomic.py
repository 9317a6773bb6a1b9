"""Atomic file writing: a crash never leaves a half-written output, and a failing set leaves the previous one.

Each writer writes to a temporary file in the destination folder and renames it over the target only once
the content is complete (``os.replace`` is atomic on POSIX and Windows). A set of files (a report with its tables)
is written into a temporary folder beside the destination and moved into place only once every file is
complete (:func:`atomic_folder`). :func:`check_writable` says before any computation whether an output can be
written, naming the output rather than a temporary file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO

__all__ = ["atomic_folder", "atomic_path", "atomic_write_text", "check_writable", "write_files"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``target``; move it onto ``target`` if the block succeeds.

    The temporary file is removed if the block raises.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix + ".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates the file private (0600); give the result the permissions of an ordinary new file.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def _open_atomic(target: str | os.PathLike[str], mode: str) -> Iterator[IO[str]]:
    with atomic_path(target) as tmp, open(tmp, mode, encoding="utf-8", newline="") as handle:
        yield handle


def atomic_write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    with _open_atomic(target, "w") as handle:
        handle.write(text)


@contextlib.contextmanager
def atomic_folder(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder beside ``target``; move every file written into it onto ``target`` if the block
    succeeds (files of ``target`` not in the set are left alone), and remove it either way."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield staging
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(staging.rglob("*")):
            if path.is_file():
                destination = target / path.relative_to(staging)
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, destination)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_files(folder: Path, files: Mapping[str, str | bytes]) -> None:
    """Write ``files`` (relative path -> text, as UTF-8, or bytes) into ``folder``, making subfolders as needed;
    meant for the staging folder of :func:`atomic_folder`."""
    for name, data in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data, encoding="utf-8")


def _existing_ancestor(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")  # pragma: no cover - a relative path whose parents do not exist resolves to the cwd


def check_writable(target: str | os.PathLike[str], *, folder: bool) -> str | None:
    """Why ``target`` (a folder, or a file when ``folder`` is False) cannot be written, or None when it can.

    Nothing is created: writability is probed with a temporary file in the nearest existing folder.
    """
    path = Path(target)
    if path.exists() and folder and not path.is_dir():
        return f"{path} is a file, but an output folder is needed"
    if path.exists() and not folder and path.is_dir():
        return f"{path} is a folder, but an output file is needed"
    base = _existing_ancestor(path if folder else path.parent)
    if not base.is_dir():
        return f"{base} is a file, so {path} cannot be created"
    try:
        handle, probe = tempfile.mkstemp(prefix=".hsi-stats-probe.", dir=base)
    except OSError as exc:
        return f"cannot write into {base} ({exc.strerror or exc})"
    os.close(handle)
    os.unlink(probe)
    return None
