"""Reader and writer of unified extraction files ``extraction_{checkpoint}.pkl`` (DESIGN 2.2).

Each file holds the per-vehicle attention and the semantic features of many scenarios at one
checkpoint, either as independent snapshots or as rollouts (episodes of consecutive timesteps).
:func:`load_extraction` turns one file, or a directory of them, into an
:class:`~hsi_stats.data.HSIDataset`; :func:`write_extraction` writes a dataset in that layout.
It validates fields with the helpers it shares with the two-directory reader
(:mod:`hsi_stats.io._common`), never skips a scenario silently, unpickles only through the safe
loader and never writes anything that loader would refuse."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import HSIDataError, check_choice
from ..data import HSIDataset
from ._common import (
    Block,
    assemble,
    check_dataset,
    checkpoint_rows,
    dump_pickle,
    episode_ids_of,
    features_by_slot,
    list_files,
    numeric_array,
    require_int,
    require_key,
    require_mapping,
    scenario_values,
    split_semantic,
)
from .safe_pickle import safe_load_pickle

__all__ = ["load_extraction", "write_extraction"]

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


# ------------------------------------------------------------------------------ writer
def _rollout_scenarios(dataset: HSIDataset, rows: NDArray[np.intp], episodes: NDArray[np.int64],
                       risk: NDArray[np.float64] | None) -> list[dict[str, Any]]:
    """One scenario per episode, with one entry per step."""
    scenarios = []
    for episode in np.unique(episodes[rows]):
        timesteps = []
        for row in rows[episodes[rows] == episode]:
            timestep: dict[str, Any] = {
                "attention_distributions": {"per_vehicle_attention": np.array(dataset.attention[row].T)},
                "semantic_features": features_by_slot(dataset, int(row)),
            }
            if risk is not None:
                timestep["collision_risk"] = float(risk[row])
            timesteps.append(timestep)
        scenarios.append({"episode_id": int(episode), "timesteps": timesteps})
    return scenarios


def _snapshot_scenarios(dataset: HSIDataset, rows: NDArray[np.intp], episodes: NDArray[np.int64],
                        timesteps: NDArray[np.int64] | None) -> list[dict[str, Any]]:
    """One scenario per (episode, step)."""
    scenarios = []
    for row in rows:
        scenario: dict[str, Any] = {"episode_id": int(episodes[row])}
        if timesteps is not None:
            scenario["timestep"] = int(timesteps[row])
        scenario["attention_per_vehicle"] = np.array(dataset.attention[row])
        scenario["semantic_features"] = features_by_slot(dataset, int(row))
        scenarios.append(scenario)
    return scenarios


def write_extraction(
    dataset: HSIDataset, path: str | os.PathLike[str], *, kind: str = "rollout",
    episode_ids: ArrayLike | None = None, timesteps: ArrayLike | None = None,
    collision_risk: ArrayLike | None = None,
) -> None:
    """Write ``dataset`` as unified extractions (DESIGN 2.2) that :func:`load_extraction` reads back.

    Each checkpoint (distinct ``dataset.steps``) becomes ``path/extraction_{step}.pkl``, holding
    ``{"step": step, "scenarios": [...]}``. ``kind="rollout"``: one scenario per episode
    (``episode_id``, ``timesteps``), each of its scenarios in dataset order a timestep with
    ``attention_distributions.per_vehicle_attention`` (V, H), ``semantic_features`` (name -> (V,),
    plus the bool ``valid``) and ``collision_risk``. ``kind="snapshot"``: one scenario per dataset
    scenario, with ``episode_id``, ``timestep``, ``attention_per_vehicle`` (H, V) and
    ``semantic_features``. Entities are in slot order. Files are plain pickles (protocol 4),
    written atomically.

    Parameters
    ----------
    dataset : HSIDataset
        The scenarios to write; must have ``steps``.
    path : str or path-like
        Output folder, created when missing.
    kind : {"rollout", "snapshot"}, default "rollout"
        Layout of the scenarios.
    episode_ids : array_like of int, shape (S,), optional
        Episode of each scenario (a rollout's scenarios are one episode's). Default: the
        dataset's groups, numbered as in :attr:`~hsi_stats.data.HSIDataset.group_codes`.
    timesteps : array_like of int, shape (S,), optional
        Step of each scenario within its episode, written as a snapshot's ``timestep``; left out
        when None.
    collision_risk : array_like of float, shape (S,), optional
        Collision risk of each scenario, written into a rollout's timesteps; left out when None.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset, load_extraction
    >>> ds = HSIDataset(np.full((4, 2, 3), 1 / 3), {"ttc": np.arange(12.0).reshape(4, 3)},
    ...                 groups=["a", "a", "b", "b"], steps=[0, 0, 0, 0])
    >>> folder = tempfile.mkdtemp()
    >>> write_extraction(ds, folder, kind="rollout", collision_risk=[0.1, 0.2, 0.0, 0.4])
    >>> back = load_extraction(folder)
    >>> back.groups.tolist(), back.fingerprint() == ds.with_groups(back.groups).fingerprint()
    (['extraction_0/rollout0', 'extraction_0/rollout0', 'extraction_0/rollout1', 'extraction_0/rollout1'], True)
    """
    dataset = check_dataset(dataset)
    mode = check_choice("kind", kind, ("rollout", "snapshot"))
    episodes = episode_ids_of(episode_ids, dataset)
    steps_in_episode = None if timesteps is None else scenario_values(timesteps, "timesteps", dataset, np.int64)
    risk = None if collision_risk is None else scenario_values(collision_risk, "collision_risk", dataset,
                                                               np.float64)
    for step, rows in checkpoint_rows(dataset):
        scenarios = (_rollout_scenarios(dataset, rows, episodes, risk) if mode == "rollout"
                     else _snapshot_scenarios(dataset, rows, episodes, steps_in_episode))
        dump_pickle({"step": step, "scenarios": scenarios}, Path(path) / EXTRACTION_PATTERN.replace("*", str(step)))
