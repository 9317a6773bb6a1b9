r"""One pass of the joint model over the data: what Newton's method needs at given coefficients, summed over scenarios.

For head h with coefficients :math:`\beta`, scenario s contributes, over the entities v of its fit (the valid
entities of :mod:`hsi_stats.joint.design`), with :math:`a_{sv}` the head's attention renormalised over them and
:math:`p_{sv} = \exp(\beta^\top z_{sv}) / \sum_{v'} \exp(\beta^\top z_{sv'})`,

.. math::
    \ell_s = \sum_v a_{sv} \log p_{sv}, \qquad
    g_s = \sum_v (a_{sv} - p_{sv}) z_{sv}, \qquad
    I_s = \sum_v p_{sv} (z_{sv} - \bar z_s)(z_{sv} - \bar z_s)^\top, \quad \bar z_s = \sum_v p_{sv} z_{sv},

the log-likelihood, the score and the information (minus the Hessian) of a multinomial logit with fractional
responses (McFadden 1974; Mullahy 2015). A scenario counts when it has at least two entities in the fit and the
head's attention there is not all zero; attention is a share of mass, so a negative value counts by its
magnitude. For a head fitted with Firth's penalty the pass also sums the third central moments
:math:`T_s = \sum_v p_{sv} \tilde z_{sv} \otimes \tilde z_{sv} \otimes \tilde z_{sv}`, from which the penalty's
gradient follows. Per-group (episode) scores and informations are summed when the inference needs them (the last
pass). The first pass of an analysis also sums what decides the fit itself: the design's within-scenario
cross-products (aliasing), and for each head the part of them that its support (the entities with positive
attention) lacks (whether the unpenalised estimate exists), the zeros and the entities left out.

:class:`JointPass` is an accumulator of :mod:`hsi_stats.chunks` (fed chunk by chunk, merged part by part), so the
same numbers come from memory, shards and a Dask cluster. This module sums; it decides nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from itertools import pairwise

import numpy as np
from numpy.typing import NDArray

from ..chunks import Chunk, slot_onehot
from ..group_sums import Grouping, GroupTotals
from .design import design_chunk, within_cross_products

__all__ = ["DesignCache", "JointPass"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


class DesignCache:
    """The covariates of an in-memory data set's chunks, computed on the first pass and kept for the others.

    A mid-rank percentile is :math:`(2r - 1)/(2n)` with :math:`2r - 1` an integer, so each is kept as that integer
    (one byte for up to 64 entities) with :math:`n`, and decoded to the same double: the division of the same two
    integers. Only for data held in memory (a chunk is known by its first scenario); shards compute them anew.
    """

    def __init__(self) -> None:
        self._chunks: dict[tuple[int, int], tuple[NDArray[np.integer], NDArray[np.int16], BoolArray, int]] = {}

    def design(self, chunk: Chunk, names: Sequence[str]) -> tuple[FloatArray, BoolArray, int]:
        """The feature covariates (s, V, F) of ``chunk``, its entities in the fit and the entities left out."""
        key = (chunk.start, chunk.n_scenarios)
        if key not in self._chunks:
            z, valid, left_out = design_chunk(chunk.features, chunk.mask, names, percentiles=chunk.percentiles)
            n = valid.sum(axis=1).astype(np.int16)[:, None, None]
            codes = np.rint(z * (2 * n)).astype(np.int8 if valid.shape[1] <= 64 else np.int16)
            self._chunks[key] = (codes, n, valid, left_out)
            return z, valid, left_out
        codes, n, valid, left_out = self._chunks[key]
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(valid[..., None], codes / (2.0 * n), 0.0)
        return z, valid, left_out


class JointPass:
    """Sums of one pass at coefficients ``coef`` for the heads ``heads``.

    Parameters
    ----------
    n_groups : int
    names : sequence of str
        The features, in the data's order (the design's first columns).
    slot_values : ndarray or None
        The distinct slots, for slot indicator columns (``adjust="slot"``).
    heads : sequence of int
        The heads evaluated (indices into the data's heads).
    coef : ndarray (len(heads), K)
        Their coefficients, 0 on columns left out.
    firth, per_group : ndarray of bool (len(heads),)
        Which heads need the third moments (Firth's penalty) and per-group sums.
    first : bool
        Also sum the design's cross-products, support deficits, zeros and left-out entities.
    cache : DesignCache, optional
        Covariates kept from an earlier pass over the same data in memory.

    Attributes (after the data went through)
    ----------------------------------------
    loglik (h,), score (h, K), information (h, K, K), third (h, K, K, K) (zero for heads without Firth), used (h,)
    scenarios counted; per group (``group_totals``): ``"score"`` (G, h', K), ``"information"`` (G, h', K, K),
    ``"used"`` (G, h') for the heads with ``per_group``; first pass: ``cross`` (K, K), ``deficit`` (h, K, K),
    ``zeros`` (h,), ``left_out`` and ``entities`` (int).
    """

    def __init__(self, *, n_groups: int, names: Sequence[str], slot_values: NDArray[np.int64] | None,
                 heads: Sequence[int] | NDArray[np.intp], coef: FloatArray, firth: BoolArray, per_group: BoolArray,
                 first: bool, cache: DesignCache | None = None) -> None:
        self.names, self.slot_values, self.cache = tuple(names), slot_values, cache
        self.heads = np.asarray(heads, dtype=np.intp)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.firth, self.per_group, self.first = np.asarray(firth, bool), np.asarray(per_group, bool), bool(first)
        n, k = self.coef.shape
        self.loglik, self.score, self.information = np.zeros(n), np.zeros((n, k)), np.zeros((n, k, k))
        self.third = np.zeros((n, k, k, k)) if self.firth.any() else None
        self.used = np.zeros(n)
        self.group_totals = GroupTotals(n_groups)
        self.cross, self.deficit = np.zeros((k, k)), np.zeros((n, k, k))
        self.zeros, self.left_out, self.entities = np.zeros(n, dtype=np.int64), 0, 0

    def _design(self, chunk: Chunk) -> tuple[FloatArray, BoolArray, int]:
        if self.cache is not None:
            z, valid, left_out = self.cache.design(chunk, self.names)
        else:
            z, valid, left_out = design_chunk(chunk.features, chunk.mask, self.names, percentiles=chunk.percentiles)
        if self.slot_values is not None:
            onehot = np.where(valid[..., None], slot_onehot(chunk, self.slot_values), 0.0)
            z = np.concatenate([z, onehot], axis=2)
        return z, valid, left_out

    def add(self, chunk: Chunk) -> None:
        z, valid, left_out = self._design(chunk)
        mass = np.abs(chunk.attention[:, self.heads, :])  # (s, h, V)
        mass[~np.broadcast_to(valid[:, None, :], mass.shape)] = 0.0
        total = mass.sum(axis=2)
        usable = (valid.sum(axis=1)[:, None] >= 2) & (total > 0)
        mass /= np.where(usable, total, 1.0)[..., None]
        mass *= usable[..., None]  # the attention shares a (0 in a scenario not counted)
        p, log_p = _softmax(z, valid, self.coef)
        p *= usable[..., None]
        self.used += usable.sum(axis=0)
        self.loglik += np.einsum("shv,shv->h", mass, log_p)
        residual = mass - p
        per_scenario = np.matmul(residual, z)  # (s, h, K): each scenario's score
        self.score += per_scenario.sum(axis=0)
        mean = np.matmul(p, z)  # (s, h, K): the p-weighted mean covariate of each scenario
        self.information += _second_moments(p, z) - np.matmul(mean.transpose(1, 2, 0), mean.transpose(1, 0, 2))
        if self.third is not None:
            for i in np.flatnonzero(self.firth):
                self.third[i] += _third_moments(z, p[:, i, :], mean[:, i, :])
        if self.per_group.any():
            self._add_groups(chunk.grouping(), z, per_scenario, p, mean, usable)
        if self.first:
            self._add_first(z, valid, mass, usable, left_out)

    def _add_groups(self, grouping: Grouping, z: FloatArray, per_scenario: FloatArray, p: FloatArray,
                    mean: FloatArray, usable: BoolArray) -> None:
        chosen = np.flatnonzero(self.per_group)
        self.group_totals.add("score", grouping, grouping.sum(per_scenario[:, chosen]))
        self.group_totals.add("used", grouping, grouping.sum(usable[:, chosen].astype(np.float64)))
        z, p, mean = grouping.ordered(z), grouping.ordered(p[:, chosen]), grouping.ordered(mean[:, chosen])
        bounds = np.r_[grouping.starts, z.shape[0]]
        information = np.empty((grouping.n_groups, chosen.size, z.shape[2], z.shape[2]))
        for g, (a, b) in enumerate(pairwise(bounds)):  # one product per episode
            information[g] = (_second_moments(p[a:b], z[a:b])
                              - np.matmul(mean[a:b].transpose(1, 2, 0), mean[a:b].transpose(1, 0, 2)))
        self.group_totals.add("information", grouping, information)

    def _add_first(self, z: FloatArray, valid: BoolArray, shares: FloatArray, usable: BoolArray,
                   left_out: int) -> None:
        # sum_s sum_v (z - mean_s)(z - mean_s)' = sum z z' - sum_s n_s mean_s mean_s', over the entities in the fit
        n = valid.sum(axis=1)
        flat = np.where(valid[..., None], z, 0.0).reshape(-1, z.shape[2])
        totals = flat.reshape(z.shape).sum(axis=1)  # (s, K): n_s times each scenario's mean
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(n[:, None] > 0, totals / np.maximum(n, 1)[:, None], 0.0)
        self.cross += flat.T @ flat - totals.T @ scaled
        self.left_out += left_out
        self.entities += int(valid.sum())
        # a scenario a head does not count lacks all its cross-products; one where it gives an entity nothing,
        # those of the entities outside its support
        zero = valid[:, None, :] & (shares == 0) & usable[..., None]
        self.zeros += zero.sum(axis=(0, 2))
        lacking = ~usable | zero.any(axis=2)  # (s, h)
        scenarios = np.flatnonzero(lacking.any(axis=1))
        if scenarios.size:
            per_scenario = within_cross_products(z[scenarios], valid[scenarios])  # (s', K, K)
            self.deficit += np.einsum("sh,skl->hkl", (~usable[scenarios]).astype(np.float64), per_scenario)
            rows, heads = np.nonzero(zero[scenarios].any(axis=2))
            if rows.size:
                support = valid[scenarios[rows]] & (shares[scenarios[rows], heads] > 0)
                deficit = per_scenario[rows] - within_cross_products(z[scenarios[rows]], support)
                np.add.at(self.deficit, heads, deficit)

    def merge(self, other: JointPass) -> None:
        self.loglik += other.loglik
        self.score += other.score
        self.information += other.information
        if self.third is not None and other.third is not None:
            self.third += other.third
        self.used += other.used
        self.group_totals.merge(other.group_totals)
        self.cross += other.cross
        self.deficit += other.deficit
        self.zeros += other.zeros
        self.left_out += other.left_out
        self.entities += other.entities

    def __deepcopy__(self, memo: dict[int, object]) -> JointPass:
        # an empty copy for each part of a reduction: the cache (in-memory data only) is shared, not copied
        copied = copy.copy(self)
        for name, value in vars(self).items():
            if name != "cache":
                setattr(copied, name, copy.deepcopy(value, memo))
        return copied


def _softmax(z: FloatArray, valid: BoolArray, coef: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Fitted shares p (s, h, V) over the valid entities and their logarithms (0 elsewhere)."""
    utility = np.matmul(coef, z.transpose(0, 2, 1))  # (s, h, V)
    invalid = np.broadcast_to(~valid[:, None, :], utility.shape)
    utility[invalid] = -np.inf
    top = utility.max(axis=2, keepdims=True)
    utility -= np.where(np.isfinite(top), top, 0.0)
    p = np.exp(utility)
    norm = p.sum(axis=2, keepdims=True)
    norm[norm == 0] = 1.0
    p /= norm
    utility -= np.log(norm)
    utility[invalid] = 0.0
    return p, utility


def _second_moments(p: FloatArray, z: FloatArray) -> FloatArray:
    """:math:`\\sum_s \\sum_v p_{shv} z_{sv} z_{sv}^\top` per head: (h, K, K)."""
    weighted = p.transpose(1, 0, 2).reshape(p.shape[1], -1, 1) * z.reshape(1, -1, z.shape[2])  # (h, sV, K)
    return np.matmul(weighted.transpose(0, 2, 1), z.reshape(-1, z.shape[2]))
def _third_moments(z: FloatArray, p: FloatArray, mean: FloatArray) -> FloatArray:
    """:math:`\\sum_s \\sum_v p_{sv} \\tilde z \\otimes \\tilde z \\otimes \\tilde z` (K, K, K) for one head."""
    centred = z - mean[:, None, :]  # (s, V, K)
    weighted = (p[..., None] * centred).reshape(-1, z.shape[2])
    flat = centred.reshape(-1, z.shape[2])
    pairs = (weighted[:, :, None] * flat[:, None, :]).reshape(flat.shape[0], -1)  # (sV, K*K)
    return (pairs.T @ flat).reshape(z.shape[2], z.shape[2], z.shape[2])
