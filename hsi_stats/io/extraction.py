"""Reader for unified extraction files ``extraction_{checkpoint}.pkl`` (DESIGN 2.2).

Each file holds the per-vehicle attention and the semantic features of many scenarios at one
checkpoint, either as independent snapshots or as rollouts (episodes of consecutive timesteps).
This module turns one file, or a directory of them, into an :class:`~hsi_stats.data.HSIDataset`.
It validates fields with the helpers it shares with the two-directory reader
(:mod:`hsi_stats.io._common`), never skips a scenario silently and unpickles only through the safe
loader.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import HSIDataError
from ..data import HSIDataset
from ._common import (
    Block,
    assemble,
    list_files,
    numeric_array,
    require_int,
    require_key,
    require_mapping,
    split_semantic,
)
from .safe_pickle import safe_load_pickle

__all__ = ["load_extraction"]

EXTRACTION_PATTERN = "extraction_*.pkl"


def _extraction_files(path: str | os.PathLike[str]) -> list[Path]:
    target = Path(path)
    if target.is_dir():
        return list_files(target, EXTRACTION_PATTERN, "path")
    if not target.is_file():
        raise HSIDataError(f"`path` must be an extraction file or a directory of "
                           f"{EXTRACTION_PATTERN!r} files, but {str(target)!r} does not exist.")
    return [target]


def _require_list(value: Any, field: str, source: str) -> list[Any]:
    if not isinstance(value, (list, tuple)) or not value:
        length = len(value) if isinstance(value, (list, tuple)) else "-"
        raise HSIDataError(f"{source}: `{field}` must be a non-empty list, but it is a "
                           f"{type(value).__name__} of length {length}.")
    return list(value)


def _scenario_block(
    raw_attention: Any, field: str, layout: str, semantic: Any, source: str, step: int,
    group: str,
) -> Block:
    """One scenario: per-vehicle attention laid out as ``layout`` ("(H, V)" or "(V, H)")."""
    attention = numeric_array(raw_attention, field, source)
    if attention.ndim != 2:
        raise HSIDataError(f"{source}: `{field}` must have shape {layout}, but it has shape "
                           f"{attention.shape}.")
    per_head = attention if layout == "(H, V)" else attention.T
    mask, features = split_semantic(semantic, source, ndims=(1,), dims="(V,)")
    if per_head.shape[1] != mask.shape[0]:
        raise HSIDataError(f"{source}: `{field}` has shape {attention.shape} {layout}, so V = "
                           f"{per_head.shape[1]}, but `semantic_features` have shape "
                           f"{mask.shape} (V,).")
    return Block(
        source=source,
        step=step,
        attention=per_head.astype(np.float64)[None],
        features={name: values[None] for name, values in features.items()},
        mask=mask[None],
        groups=np.array([group]),
        head_names=tuple(f"h{h}" for h in range(per_head.shape[0])),
    )


def _snapshot_block(scenario: Mapping[Any, Any], source: str, step: int, group: str) -> Block:
    semantic = require_key(scenario, "semantic_features", source)
    return _scenario_block(scenario["attention_per_vehicle"], "attention_per_vehicle", "(H, V)",
                           semantic, source, step, group)


def _rollout_blocks(
    scenario: Mapping[Any, Any], source: str, step: int, group: str
) -> Iterator[Block]:
    for t, raw in enumerate(_require_list(scenario["timesteps"], "timesteps", source)):
        where = f"{source}, timestep {t}"
        timestep = require_mapping(raw, "a timestep", where)
        distributions = require_mapping(require_key(timestep, "attention_distributions", where),
                                         "`attention_distributions`", where)
        yield _scenario_block(require_key(distributions, "per_vehicle_attention", where),
                              "attention_distributions.per_vehicle_attention", "(V, H)",
                              require_key(timestep, "semantic_features", where), where, step,
                              group)


def _file_blocks(path: Path, trust_pickle: bool) -> Iterator[Block]:
    source = str(path)
    content = safe_load_pickle(path, trust_pickle=trust_pickle)
    extraction = require_mapping(content, "an extraction file", source)
    step = require_int(require_key(extraction, "step", source), "step", source)
    scenarios = _require_list(require_key(extraction, "scenarios", source), "scenarios", source)
    for i, raw in enumerate(scenarios):
        where = f"{source}: scenario {i}"
        scenario = require_mapping(raw, "a scenario", where)
        if "attention_per_vehicle" in scenario:
            yield _snapshot_block(scenario, where, step, f"{path.stem}/snapshot{i}")
        elif "timesteps" in scenario:
            yield from _rollout_blocks(scenario, where, step, f"{path.stem}/rollout{i}")
        else:
            raise HSIDataError(f"{where}: a scenario must hold `attention_per_vehicle` (snapshot) "
                               f"or `timesteps` (rollout), but it has fields "
                               f"{sorted(map(str, scenario))}.")


def load_extraction(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> HSIDataset:
    """Read unified extraction files into one :class:`HSIDataset`.

    Parameters
    ----------
    path : str or path-like
        One ``extraction_{checkpoint}.pkl`` file, or a directory whose ``extraction_*.pkl`` files
        are all read and concatenated in step order. Each file is a dict with ``step`` (int) and
        ``scenarios`` (list). A scenario is either

        - a snapshot, ``{"attention_per_vehicle": (H, V), "semantic_features": {name: (V,)}}``;
          each snapshot is its own group; or
        - a rollout, ``{"timesteps": [...]}``, each timestep a dict with
          ``"attention_distributions": {"per_vehicle_attention": (V, H)}`` (note the transpose),
          ``"semantic_features": {name: (V,)}`` and ``"collision_risk"`` (not read). Every
          timestep becomes a scenario of the dataset; the whole rollout is one group.

        A boolean ``valid`` among the semantic features is the mask.
    trust_pickle : bool, default False
        Passed to :func:`~hsi_stats.io.safe_pickle.safe_load_pickle`: by default only plain data
        is unpickled.

    Returns
    -------
    HSIDataset
        One scenario per snapshot or rollout timestep, heads named ``h0 .. h{H-1}``, ``steps`` from
        each file's ``step`` and groups labelled ``"{file stem}/snapshot{i}"`` or
        ``"{file stem}/rollout{i}"`` (i = the scenario's index in the file).

    Raises
    ------
    HSIDataError
        On a missing file or directory, or a scenario whose fields or shapes do not fit; the
        message names the file, the scenario index (and timestep) and the shapes.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> import numpy as np
    >>> path = os.path.join(tempfile.mkdtemp(), "extraction_500.pkl")
    >>> snapshot = {"attention_per_vehicle": np.full((2, 3), 1 / 3),
    ...             "semantic_features": {"ttc": np.array([1.0, 2.0, 5.0])}}
    >>> with open(path, "wb") as f:
    ...     pickle.dump({"step": 500, "scenarios": [snapshot, snapshot]}, f)
    >>> ds = load_extraction(path)
    >>> ds.attention.shape, ds.n_groups, ds.steps.tolist()
    ((2, 2, 3), 2, [500, 500])
    """
    files = _extraction_files(path)
    return assemble([block for file in files for block in _file_blocks(file, trust_pickle)],
                     notes=())
