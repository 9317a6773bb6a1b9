"""The tables an analysis writes beside its report: ``pairs.csv``, ``heads.csv``, ``joint.csv`` (with the joint model),
the registry and, with an evolution over training, ``evolution.csv`` and ``trends.csv``; with ablation results,
``ablation.csv``, ``ablation_targeted.csv`` and ``ablation_episodes.csv``.

One definition of these files for the report writer and for the command line's tables-only output
(``--format ''``). Every file is written atomically. This module reads result objects only and imports no
plotting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._atomic import atomic_folder, atomic_write_text
from .ablation import AblationEffects, ablation_results
from .evolution import EvolutionResult
from .results import HSIResult

__all__ = ["table_texts", "write_tables", "write_tables_into"]


def table_texts(result: HSIResult, evolution: EvolutionResult | None = None,
                ablation: Any = None) -> dict[str, str]:
    """File name -> CSV text of the tables (the registry is written by :func:`write_tables`)."""
    texts = {"pairs.csv": result.pairs.to_csv(index=False), "heads.csv": result.heads.to_csv(index=False)}
    if result.joint is not None:
        texts["joint.csv"] = result.joint.to_csv(index=False)
    if evolution is not None:
        texts["evolution.csv"] = evolution.per_step.to_csv(index=False)
        texts["trends.csv"] = evolution.trends.to_csv(index=False)
    for item in ablation_results(ablation):
        if isinstance(item, AblationEffects):
            texts["ablation.csv"] = item.table.to_csv(index=False)
            if item.targeted is not None:
                texts["ablation_targeted.csv"] = item.targeted.to_csv(index=False)
        else:
            texts["ablation_episodes.csv"] = item.table.to_csv(index=False)
    return texts


def write_tables_into(folder: Path, result: HSIResult, *, evolution: EvolutionResult | None = None,
                      allow_unvalidated: bool = False, ablation: Any = None) -> list[str]:
    """Write the tables and ``head_functions.json`` into ``folder`` (a staging folder); the names written."""
    names = []
    for name, text in table_texts(result, evolution, ablation).items():
        atomic_write_text(folder / name, text)
        names.append(name)
    result.export_registry(folder / "head_functions.json", allow_unvalidated=allow_unvalidated, ablation=ablation)
    return [*names, "head_functions.json"]


def write_tables(result: HSIResult, out_dir: str | os.PathLike[str], *, evolution: EvolutionResult | None = None,
                 allow_unvalidated: bool = False, ablation: Any = None) -> dict[str, Path]:
    """Write the tables and ``head_functions.json`` into ``out_dir`` as one set; file name -> path.

    With ``ablation`` (results of :mod:`hsi_stats.ablation`), the registry gains each head's ``ablation`` block and
    the set ``ablation.csv`` and ``ablation_targeted.csv`` (open loop) or ``ablation_episodes.csv`` (closed loop).

    The set is written into a staging folder and moved into place when complete: a failure leaves the previous
    set as it was.
    """
    out = Path(out_dir)
    with atomic_folder(out) as staging:
        names = write_tables_into(staging, result, evolution=evolution, allow_unvalidated=allow_unvalidated,
                                  ablation=ablation)
    return {name: out / name for name in names}
