"""A :class:`~hsi_stats.synthetic.run.SyntheticRun` written in the driving formats: two-directory logs and unified
extraction files.

Thin wrappers that hand a run's dataset and per-scenario arrays to the writers of
:mod:`hsi_stats.io`, so that the readers can be tested end to end on data with a known truth.
The file layouts live in :mod:`hsi_stats.io` alone: this module must never build a file's
content or open a file itself.
"""

from __future__ import annotations

import os

import numpy as np
from numpy.typing import DTypeLike

from .._validation import OptionTypeError
from ..io import driving_logs, extraction
from .run import SyntheticRun
from .traffic import collision_risk

__all__ = ["write_driving_logs", "write_extraction"]


def _check_run(run: object) -> None:
    if not isinstance(run, SyntheticRun):
        raise OptionTypeError("The value for `run` must be a SyntheticRun, "
                        f"but {type(run).__name__} was passed.")


def write_driving_logs(
    run: SyntheticRun,
    feature_dir: str | os.PathLike[str],
    attention_dir: str | os.PathLike[str],
    *,
    n_latents: int = 4,
    t_obs: int = 5,
    dtype: DTypeLike = np.float32,
    include_object_ids: bool = True,
    include_steps: bool = True,
    rng: object = None,
) -> None:
    """Write ``run`` in the two-directory driving-log layout, a pair per checkpoint.

    The layout: a feature directory of ``attention_log_{step:08d}.pkl`` files and an attention directory of
    ``attention_scenario_{i:04d}.pkl`` files (see the data guide).

    :func:`hsi_stats.io.driving_logs.write_logs` with the run's episodes and, with
    ``include_object_ids``, its object-id map (the features are then indexed by raw object id,
    as in the real logs; without the map they are in slot order).

    Parameters
    ----------
    run : SyntheticRun
        The run to write.
    feature_dir, attention_dir : path-like
        Output folders, created when missing.
    n_latents : int, default 4
        Latent queries of the fake encoder.
    t_obs : int, default 5
        Observed time steps (tokens) per entity.
    dtype : floating dtype, default float32
        dtype of the attention arrays; float64 gives an exact round trip.
    include_object_ids : bool, default True
        Write the object-id map and index the features by object id.
    include_steps : bool, default True
        Write ``step`` into the attention files.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Randomness of the split over latents and tokens.

    Examples
    --------
    >>> import os, tempfile
    >>> from hsi_stats.synthetic import generate
    >>> folder = tempfile.mkdtemp()
    >>> run = generate(n_episodes=2, n_steps=2, rng=0)
    >>> write_driving_logs(run, os.path.join(folder, "f"), os.path.join(folder, "a"), rng=0)
    >>> os.listdir(os.path.join(folder, "f")), os.listdir(os.path.join(folder, "a"))
    (['attention_log_01000000.pkl'], ['attention_scenario_0000.pkl'])
    """
    _check_run(run)
    driving_logs.write_logs(
        run.dataset, feature_dir, attention_dir, object_ids=run.object_ids if include_object_ids else None,
        episode_ids=run.episode_ids, n_latents=n_latents, t_obs=t_obs, dtype=dtype, include_steps=include_steps,
        rng=rng)


def write_extraction(run: SyntheticRun, path: str | os.PathLike[str], *,
                     kind: str = "rollout") -> None:
    """Write ``run`` as unified extraction files, ``extraction_{checkpoint}.pkl`` each.

    :func:`hsi_stats.io.extraction.write_extraction` with the run's episodes and timesteps, and as
    collision risk of each step the largest ``1 - ttc / 5`` over its present vehicles.

    Parameters
    ----------
    run : SyntheticRun
        The run to write.
    path : path-like
        Output folder, created when missing.
    kind : {"rollout", "snapshot"}, default "rollout"
        One scenario per episode, or one per (episode, step).

    Examples
    --------
    >>> import os, tempfile
    >>> from hsi_stats.synthetic import generate
    >>> folder = tempfile.mkdtemp()
    >>> write_extraction(generate(n_episodes=2, n_steps=2, rng=0), folder, kind="snapshot")
    >>> os.listdir(folder)
    ['extraction_1000000.pkl']
    """
    _check_run(run)
    risk = collision_risk(run.dataset.features["ttc"], run.dataset.mask)
    extraction.write_extraction(run.dataset, path, kind=kind, episode_ids=run.episode_ids,
                                timesteps=run.timesteps, collision_risk=risk)

