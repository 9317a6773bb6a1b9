"""Reader and writer of unified extraction files ``extraction_{checkpoint}.pkl``.

Each file holds the per-vehicle attention and the semantic features of many scenarios at one
checkpoint, either as independent snapshots or as rollouts (episodes of consecutive timesteps).
:func:`load_extraction` turns one file, or a folder of them (one checkpoint each), into an
:class:`~hsi_stats.data.HSIDataset`, reading the files as the extractors write them: scalar and
metadata entries of ``semantic_features`` (:data:`METADATA_KEYS`) are never features, the features
are the catalog's unless others are asked for, the raw token attention stands in when the
per-vehicle attention is absent, and ``model_final`` (step -1) comes after every numbered
checkpoint. :func:`write_extraction` writes a dataset in that layout.
It validates fields with the helpers it shares with the two-directory reader
(:mod:`hsi_stats.io._common`), never skips a scenario silently, unpickles only through the safe
loader and never writes anything that loader would refuse."""

from __future__ import annotations

import functools
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import HSIDataError, OptionError, OptionTypeError, check_choice
from ..catalog import FeatureCatalog, load_catalog
from ..data import HSIDataset
from ._common import (
    Block,
    assemble,
    check_dataset,
    checkpoint_rows,
    dump_pickle,
    entity_attention,
    episode_ids_of,
    features_by_slot,
    list_files,
    numeric_array,
    require_int,
    require_key,
    require_mapping,
    scenario_values,
    select_attention_keys,
    split_semantic,
    token_weights,
)
from .safe_pickle import safe_load_pickle
from .shards import ShardedDataset, check_alike, shard_of
from .shards import no_loader as _no_loader

__all__ = ["FINAL_STEP", "METADATA_KEYS", "load_extraction", "scan_extraction", "write_extraction"]

EXTRACTION_PATTERN = "extraction_*.pkl"

#: Entries of ``semantic_features`` that describe the scenario or its vehicles without being features:
#: the ego's index, the timestep and the ego's speed (scalars), the positions and object types (per
#: vehicle), and ``valid``, the mask. They are never taken as features, even when asked for.
METADATA_KEYS = ("sdc_index", "timestep", "ego_speed", "positions_x", "positions_y", "object_types", "valid")

#: The ``step`` the extractors give the ``model_final`` checkpoint.
FINAL_STEP = -1
#: How the ``model_final`` checkpoint is shown (:attr:`hsi_stats.HSIDataset.step_names`).
FINAL_NAME = "final"

# The mask (V,) and the features name -> (V,) of one scenario.
_Semantic = tuple[NDArray[np.bool_], dict[str, NDArray[np.float64]]]

# The attention module whose raw weights stand in for a missing ``attention_per_vehicle``: the
# cross-attention of the latents to the other vehicles' tokens, from which the extractors sum it.
_VEHICLE_MODULE = "other_traj"


@dataclass
class _Reading:
    """How scenarios are read (the features asked for, None for the catalog's), and what was left out."""

    features: tuple[str, ...] | None
    catalog: FeatureCatalog
    left_out: set[str] = field(default_factory=set)


def _load_extraction_iv(
    features: object, catalog: FeatureCatalog | Mapping[str, Any] | str | os.PathLike[str] | None
) -> _Reading:
    resolved = load_catalog(catalog)
    if features is None:
        return _Reading(None, resolved)
    if isinstance(features, (str, bytes)) or not isinstance(features, (Sequence, np.ndarray)):
        raise OptionTypeError("The value for `features` must be None or a sequence of feature names, but "
                              f"{type(features).__name__} was passed.")
    names = tuple(features)
    if not names or not all(isinstance(name, str) and name for name in names) or len(set(names)) != len(names):
        raise OptionError("The value for `features` must be a non-empty sequence of distinct, non-empty "
                          f"names, but {list(names)!r} was passed.")
    metadata = [name for name in names if name in METADATA_KEYS]
    if metadata:
        raise OptionError(f"The value for `features` must name per-vehicle features, never the metadata "
                          f"{list(METADATA_KEYS)} (scalars, positions, object types and the `valid` mask), but "
                          f"{metadata} was passed.")
    return _Reading(names, resolved)


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


def _is_per_vehicle(value: Any) -> bool:
    try:
        return bool(np.ndim(value) == 1)
    except ValueError:  # a ragged list: no array at all
        return False


def _semantic(raw: Any, source: str, reading: _Reading) -> _Semantic:
    """The mask and the chosen features of one ``semantic_features`` dict, all of shape (V,)."""
    entries = require_mapping(raw, "`semantic_features`", source)
    per_vehicle = [name for name, value in entries.items() if name not in METADATA_KEYS and _is_per_vehicle(value)]
    if reading.features is None:
        names = [name for name in entries if name in reading.catalog and name not in METADATA_KEYS]
        reading.left_out.update(str(name) for name in per_vehicle if name not in reading.catalog)
        if not names:
            raise HSIDataError(f"{source}: `semantic_features` must hold a feature of the catalog "
                               f"{list(reading.catalog)}, but it has none (its per-vehicle entries: "
                               f"{per_vehicle}); pass `features=` to take others.")
    else:
        names = list(reading.features)
        missing = [name for name in names if name not in entries]
        if missing:
            raise HSIDataError(f"{source}: `semantic_features` must hold every feature asked for in "
                               f"`features`, but {missing} are missing (its per-vehicle entries: "
                               f"{per_vehicle}).")
    chosen = {name: entries[name] for name in names}
    if "valid" in entries:
        chosen["valid"] = entries["valid"]
    # Only what is taken is checked: metadata such as string object types may be of any kind.
    return split_semantic(chosen, source, ndims=(1,), dims="(V,)")


def _scenario_block(
    attention: NDArray[Any], field: str, layout: str, semantic: _Semantic, source: str, step: int, group: str,
) -> Block:
    """One scenario: per-vehicle attention laid out as ``layout`` ("(H, V)" or "(V, H)")."""
    mask, features = semantic
    if attention.ndim != 2:
        raise HSIDataError(f"{source}: `{field}` must have shape {layout}, but it has shape "
                           f"{attention.shape}.")
    per_head = attention if layout == "(H, V)" else attention.T
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


def _raw_attention(scenario: Mapping[Any, Any], n_slots: int, source: str) -> tuple[NDArray[np.float64], str]:
    """(H, V) attention summed from a snapshot's raw ``attention_weights``, and the key it came from."""
    weights = require_mapping(scenario["attention_weights"], "`attention_weights`", source)
    keys = select_attention_keys(weights, _VEHICLE_MODULE, source)
    if len(keys) != 1:
        raise HSIDataError(f"{source}: `attention_weights` must hold one layer of {_VEHICLE_MODULE!r} to stand in "
                           f"for the missing `attention_per_vehicle`, but it holds {keys}.")
    field = f"attention_weights[{keys[0]!r}]"
    tokens = token_weights(weights[keys[0]], field, source)
    if tokens.shape[0] != 1:
        raise HSIDataError(f"{source}: `{field}` has shape {tokens.shape}, but a snapshot is one sample, so "
                           f"n_samples must be 1.")
    boundaries = require_mapping(scenario.get("token_boundaries", {}), "`token_boundaries`", source)
    return entity_attention(tokens, keys[0], n_slots, boundaries, source, source)[0], field


def _snapshot_block(scenario: Mapping[Any, Any], source: str, step: int, group: str,
                    reading: _Reading) -> Block:
    semantic = _semantic(require_key(scenario, "semantic_features", source), source, reading)
    if "attention_per_vehicle" in scenario:
        field = "attention_per_vehicle"
        attention = numeric_array(scenario[field], field, source)
    else:
        attention, field = _raw_attention(scenario, semantic[0].shape[0], source)
    return _scenario_block(attention, field, "(H, V)", semantic, source, step, group)


def _rollout_blocks(
    scenario: Mapping[Any, Any], source: str, step: int, group: str, reading: _Reading
) -> Iterator[Block]:
    for t, raw in enumerate(_require_list(scenario["timesteps"], "timesteps", source)):
        where = f"{source}, timestep {t}"
        timestep = require_mapping(raw, "a timestep", where)
        distributions = require_mapping(require_key(timestep, "attention_distributions", where),
                                         "`attention_distributions`", where)
        field = "attention_distributions.per_vehicle_attention"
        attention = numeric_array(require_key(distributions, "per_vehicle_attention", where), field, where)
        semantic = _semantic(require_key(timestep, "semantic_features", where), where, reading)
        yield _scenario_block(attention, field, "(V, H)", semantic, where, step, group)


def _file_blocks(path: Path, trust_pickle: bool, reading: _Reading) -> Iterator[Block]:
    source = str(path)
    content = safe_load_pickle(path, trust_pickle=trust_pickle)
    extraction = require_mapping(content, "an extraction file", source)
    step = require_int(require_key(extraction, "step", source), "step", source)
    if step < FINAL_STEP:
        raise HSIDataError(f"{source}: `step` must be a checkpoint's number (0 or more) or {FINAL_STEP} "
                           f"(model_final), but it is {step}.")
    scenarios = _require_list(require_key(extraction, "scenarios", source), "scenarios", source)
    for i, raw in enumerate(scenarios):
        where = f"{source}: scenario {i}"
        scenario = require_mapping(raw, "a scenario", where)
        if "attention_per_vehicle" in scenario or "attention_weights" in scenario:
            yield _snapshot_block(scenario, where, step, f"{path.stem}/snapshot{i}", reading)
        elif "timesteps" in scenario:
            yield from _rollout_blocks(scenario, where, step, f"{path.stem}/rollout{i}", reading)
        else:
            raise HSIDataError(f"{where}: a scenario must hold `attention_per_vehicle` or "
                               f"`attention_weights` (snapshot) or `timesteps` (rollout), but it has "
                               f"fields {sorted(map(str, scenario))}.")


def _final_step(steps: Collection[int]) -> tuple[int, list[str], dict[int, str]]:
    """The step ``model_final`` takes among ``steps``, the note that says so and its name.

    Steps stay integers, and the analysis takes the last one by default, so model_final becomes the
    step after the last numbered checkpoint; alone, it keeps its own step. Either way it is shown as "final".
    """
    if FINAL_STEP not in steps:
        return FINAL_STEP, [], {}
    numbered = [step for step in steps if step != FINAL_STEP]
    if not numbered:
        return FINAL_STEP, [f"Step {FINAL_STEP} is the final checkpoint (model_final), shown as 'final'."], {
            FINAL_STEP: FINAL_NAME}
    final = max(numbered) + 1
    return final, [f"Step {final} is the final checkpoint (model_final, stored as step {FINAL_STEP}), shown "
                   f"as 'final': it follows every numbered checkpoint, the last of which is {max(numbered)}."], {
        final: FINAL_NAME}


def _with_final(blocks: Sequence[Block], final: int) -> list[Block]:
    return [replace(block, step=final) if block.step == FINAL_STEP else block for block in blocks]


def _left_out_notes(reading: _Reading) -> list[str]:
    if not reading.left_out:
        return []
    return [f"per-vehicle entries outside the feature catalog were not taken as features: "
            f"{sorted(reading.left_out)} (pass features= to take them)"]


def _load_file(path: Path, features: tuple[str, ...] | None, catalog: FeatureCatalog, trust_pickle: bool,
               final: int = FINAL_STEP, notes: Sequence[str] = (), step_names: Mapping[int, str] | None = None,
               ) -> HSIDataset:
    """One extraction file as a dataset, model_final at step ``final``, with the notes and step names of the whole
    scan (a shard's loader for :func:`scan_extraction`)."""
    blocks = _with_final(list(_file_blocks(path, trust_pickle, _Reading(features, catalog))), final)
    present = {block.step for block in blocks}
    return assemble(blocks, notes=notes, step_names={step: name for step, name in (step_names or {}).items()
                                                      if step in present})


def scan_extraction(
    path: str | os.PathLike[str], *, features: Sequence[str] | None = None,
    catalog: FeatureCatalog | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    trust_pickle: bool = False,
) -> ShardedDataset:
    """The extraction files :func:`load_extraction` reads (same options, checks and notes) as a lazy data set
    whose shards are the files, in step order: each file is read here once, for its metadata, and again by every
    reduction, so memory holds one file at a time. See :func:`hsi_stats.io.scan`.
    """
    reading = _load_extraction_iv(features, catalog)
    described = []  # (step, file, its dataset's metadata)
    for file in _extraction_files(path):
        dataset = assemble(list(_file_blocks(file, trust_pickle, reading)), notes=())
        described.append((int(dataset.steps[0]) if dataset.steps is not None else FINAL_STEP, file,
                          shard_of(dataset, str(file), (file,), _no_loader)))
    final, notes, names = _final_step({step for step, _, _ in described})
    notes += _left_out_notes(reading)
    shards = [replace(shard, steps=np.full(shard.n_scenarios, final if step == FINAL_STEP else step),
                      notes=tuple(notes), step_names=names, load=functools.partial(
                          _load_file, file, reading.features, reading.catalog, trust_pickle, final, notes, names))
              # as load_extraction concatenates them: in (stable) step order
              for step, file, shard in sorted(described, key=lambda item: final if item[0] == FINAL_STEP else item[0])]
    check_alike(shards)
    return ShardedDataset(shards)


def load_extraction(
    path: str | os.PathLike[str], *, features: Sequence[str] | None = None,
    catalog: FeatureCatalog | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    trust_pickle: bool = False,
) -> HSIDataset:
    """Read unified extraction files into one :class:`HSIDataset`.

    Parameters
    ----------
    path : str or path-like
        One ``extraction_{checkpoint}.pkl`` file, or a directory whose ``extraction_*.pkl`` files
        (one checkpoint each, such as ``extraction_100000.pkl`` and ``extraction_model_final.pkl``)
        are all read and concatenated in step order. Each file is a dict with ``step`` (int: the
        checkpoint's number, or -1 for ``model_final``) and ``scenarios`` (list). A scenario is either

        - a snapshot, with ``semantic_features`` and ``attention_per_vehicle`` (H, V), the attention
          summed over latents and observation steps. It is used as given, not normalised: it is
          attention mass, and the estimates do not depend on its scale within a scenario. Without
          it, the raw ``attention_weights`` (``{"other_traj/cross_attn_0": (1, n_latents, n_tokens,
          H)}``, one layer) are summed over latents and over each vehicle's tokens (entity-major,
          within the scenario's ``token_boundaries["other_traj"]`` when given). Each snapshot is
          its own group; or
        - a rollout, ``{"timesteps": [...]}``, each timestep a dict with
          ``"attention_distributions": {"per_vehicle_attention": (V, H)}`` (note the transpose),
          ``"semantic_features"`` and ``"collision_risk"`` (not read). Every timestep becomes a
          scenario of the dataset; the whole rollout is one group.

        ``semantic_features`` maps names to per-vehicle arrays (V,) and to scalars. Scalars and
        the :data:`METADATA_KEYS` (``sdc_index``, ``timestep``, ``ego_speed``, ``positions_x``,
        ``positions_y``, ``object_types``, ``valid``) are never features; a boolean ``valid`` is
        the mask (all vehicles valid without it). Other fields of files and scenarios are not read.
    features : sequence of str, optional
        The semantic features to take, in this order; each must be a per-vehicle array in every
        scenario. By default, the features of ``catalog`` that the scenarios hold, in their order
        there (a note on the dataset names the per-vehicle entries left out).
    catalog : None, FeatureCatalog, mapping or path
        The feature catalog whose features are taken by default (see
        :func:`~hsi_stats.catalog.load_catalog`); None for the driving catalog.
    trust_pickle : bool, default False
        Passed to :func:`~hsi_stats.io.safe_pickle.safe_load_pickle`: by default only plain data
        is unpickled.

    Returns
    -------
    HSIDataset
        One scenario per snapshot or rollout timestep, heads named ``h0 .. h{H-1}``, ``steps`` from
        each file's ``step`` and groups labelled ``"{file stem}/snapshot{i}"`` or
        ``"{file stem}/rollout{i}"`` (i = the scenario's index in the file). ``model_final``
        (step -1) becomes the step after the last numbered checkpoint, so that it comes last and
        is the step analysed by default; the dataset's notes say which step it is ("final").

    Raises
    ------
    HSIDataError
        On a missing file or directory, a scenario whose fields or shapes do not fit, or a feature
        that is missing or not per-vehicle; the message names the file, the scenario index (and
        timestep), the field and the shapes.
    OptionError, OptionTypeError
        On ``features`` that are not distinct names or that name metadata, or a bad ``catalog``.

    Examples
    --------
    >>> import os, pickle, tempfile
    >>> import numpy as np
    >>> folder = tempfile.mkdtemp()
    >>> snapshot = {"attention_per_vehicle": np.array([[4.0, 2.0, 2.0], [1.0, 1.0, 6.0]]),
    ...             "semantic_features": {"ttc": np.array([1.0, 2.0, 5.0]), "sdc_index": 0,
    ...                                   "valid": np.array([True, True, False])}}
    >>> for name, step in (("500", 500), ("model_final", -1)):
    ...     with open(os.path.join(folder, f"extraction_{name}.pkl"), "wb") as f:
    ...         pickle.dump({"step": step, "scenarios": [snapshot, snapshot]}, f)
    >>> ds = load_extraction(folder)
    >>> ds.attention.shape, ds.feature_names, ds.n_groups, ds.steps.tolist()
    ((4, 2, 3), ('ttc',), 4, [500, 500, 501, 501])
    >>> ds.notes[0].split(":")[0], ds.step_label(501)
    ("Step 501 is the final checkpoint (model_final, stored as step -1), shown as 'final'", 'final')
    """
    reading = _load_extraction_iv(features, catalog)
    blocks = [block for file in _extraction_files(path) for block in _file_blocks(file, trust_pickle, reading)]
    final, notes, names = _final_step({block.step for block in blocks})
    return assemble(_with_final(blocks, final), notes=notes + _left_out_notes(reading), step_names=names)


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
    """Write ``dataset`` as unified extractions that :func:`load_extraction` reads back.

    Each checkpoint (distinct ``dataset.steps``) becomes ``path/extraction_{step}.pkl``, holding
    ``{"step": step, "scenarios": [...]}``; the step named ``"final"`` (:attr:`~hsi_stats.data.HSIDataset.step_names`)
    becomes ``extraction_model_final.pkl`` with step -1, as the extractors write it. ``kind="rollout"``: one
    scenario per episode (``episode_id``, ``timesteps``), each of its scenarios in dataset order a timestep with
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
        final = dataset.step_names.get(step) == FINAL_NAME  # written back as the extractors write model_final
        dump_pickle({"step": FINAL_STEP if final else step, "scenarios": scenarios},
                    Path(path) / EXTRACTION_PATTERN.replace("*", "model_final" if final else str(step)))
