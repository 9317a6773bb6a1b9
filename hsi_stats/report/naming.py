"""Short head names for the places where space is short (figure axes, the PDF and LaTeX tables).

A head read from a real model is named by its layer and index (``other_traj/cross_attn_0:h2``); in a figure with 72
heads or a table column 2 cm wide such names overlap or break. :func:`short_head_names` gives every head one short,
unique name, used the same way in every figure and table, and :func:`name_legend` the table that maps them back.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

__all__ = ["MAX_SHORT", "name_legend", "short_head_names"]

#: Names up to this many characters are short already and kept as they are.
MAX_SHORT = 8
_LAYERED = re.compile(r"^(?P<layer>.+):h(?P<head>\d+)$")


def short_head_names(names: Sequence[str]) -> dict[str, str]:
    """A short, unique name for each head: full name -> short name, in the order given.

    Names of at most :data:`MAX_SHORT` characters are kept. Otherwise, when every name is ``<layer>:h<k>`` (the
    loaders' naming), layers are numbered in order of first appearance and the head becomes ``L<layer>.H<k>``;
    any other naming becomes ``h0, h1, ...`` by position.

    Examples
    --------
    >>> short_head_names(["other_traj/cross_attn_0:h0", "other_traj/cross_attn_1:h3"])
    {'other_traj/cross_attn_0:h0': 'L0.H0', 'other_traj/cross_attn_1:h3': 'L1.H3'}
    >>> short_head_names(["h0", "h1"])
    {'h0': 'h0', 'h1': 'h1'}
    """
    names = [str(name) for name in names]
    if all(len(name) <= MAX_SHORT for name in names):
        return {name: name for name in names}
    matches = [match for match in map(_LAYERED.match, names) if match is not None]
    if len(matches) == len(names):
        layers: dict[str, int] = {}
        short = {}
        for name, match in zip(names, matches, strict=True):
            layer = layers.setdefault(match["layer"], len(layers))
            short[name] = f"L{layer}.H{int(match['head'])}"
        if len(set(short.values())) == len(names):
            return short
    return {name: f"h{i}" for i, name in enumerate(names)}


def name_legend(names: Sequence[str]) -> pd.DataFrame | None:
    """The table ``short name | head`` for the names :func:`short_head_names` changes; None when it keeps them."""
    short = short_head_names(names)
    if all(full == abbreviated for full, abbreviated in short.items()):
        return None
    return pd.DataFrame({"short name": list(short.values()), "head": list(short)})
