"""Per-group additive sums and the closed forms that turn them into correlations rho[h, f].

Every estimator (``within``, ``pooled``, ``fisher``, with each correlation) is a smooth function of sums over groups
(episodes). Storing those sums, one row per group, makes resampling cheap and exact: a cluster bootstrap replicate is
a weighted sum of rows (weights = how often each group was drawn) and a sign-flip replicate multiplies each group's
cross-product row by +-1. The classes here hold such rows and evaluate rho for a whole batch of weight vectors with
one matrix product.

This module knows nothing about files, labels or plotting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

__all__ = ["LEAVE_ONE_OUT", "CentredSums", "FisherSums", "GroupSums", "GroupTotals", "Grouping", "LeaveOneOut",
           "PooledSums", "Weights", "rowwise_product", "weighted_total"]

FloatArray = NDArray[np.float64]


class Grouping:
    """Sums rows over groups with one sort and ``np.add.reduceat`` (one row per group present, in code order).

    ``codes`` holds the group code of each row; :attr:`codes` afterwards holds the codes present, in the order of
    the rows :meth:`sum` returns (all of 0..G-1 when every group is present, as for a whole dataset).
    """

    def __init__(self, codes: NDArray[np.intp]) -> None:
        #: Whether the rows are already in code order (scenarios of one episode together, episodes in order): then
        #: they are summed where they lie, without a reordered copy.
        self.in_order = bool(np.all(codes[1:] >= codes[:-1]))
        self.order = np.arange(codes.size) if self.in_order else np.argsort(codes, kind="stable")
        sorted_codes = codes if self.in_order else codes[self.order]
        self.starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        self.codes = sorted_codes[self.starts]
        self.n_groups = int(self.starts.size)

    def ordered(self, values: FloatArray) -> FloatArray:
        """``values`` (rows first) in code order."""
        return values if self.in_order else values[self.order]

    def sum(self, values: FloatArray) -> FloatArray:
        return np.add.reduceat(self.ordered(values), self.starts, axis=0)


class GroupTotals:
    """Per-group totals built up chunk by chunk: ``add`` the rows of a chunk's groups, read ``totals[key]``.

    A group whose scenarios fall in several chunks receives the sum of its parts, so that the totals equal those of
    the whole data at once (to rounding).

    Examples
    --------
    >>> import numpy as np
    >>> totals = GroupTotals(3)
    >>> for codes, values in [(np.array([0, 2, 0]), np.array([1.0, 2.0, 3.0])), (np.array([2]), np.array([5.0]))]:
    ...     grouping = Grouping(codes)
    ...     totals.add("x", grouping, grouping.sum(values))
    >>> totals["x"].tolist()
    [4.0, 0.0, 7.0]
    """

    def __init__(self, n_groups: int) -> None:
        self.n_groups = n_groups
        self._totals: dict[object, FloatArray] = {}

    def add(self, key: object, grouping: Grouping, rows: FloatArray) -> None:
        """Add ``rows`` (one per group of ``grouping``, in its order) to the totals of ``key``."""
        total = self._totals.get(key)
        if total is None:
            total = self._totals[key] = np.zeros((self.n_groups, *rows.shape[1:]))
        total[grouping.codes] += rows

    def merge(self, other: GroupTotals) -> None:
        """Add the totals of ``other`` (of the same groups), key by key."""
        for key, total in other._totals.items():
            if key in self._totals:
                self._totals[key] += total
            else:
                self._totals[key] = total.copy()

    def __getitem__(self, key: object) -> FloatArray:
        return self._totals[key]

    def __contains__(self, key: object) -> bool:
        return key in self._totals


def rowwise_product(left: FloatArray, right: FloatArray) -> FloatArray:
    """``left @ right`` for 2-D arrays, each output row computed on its own in a fixed order.

    A BLAS product may sum in an order that depends on the shape of ``left``, so that a resample's value would
    change (in the last bits) with the batch it is computed in; this product does not, which makes results
    identical for any ``batch``.
    """
    return np.einsum("bg,gk->bk", left, right, optimize=False)


class LeaveOneOut:
    """The weights of the G leave-one-group-out (jackknife) samples, :math:`1 - I_G`, as a marker.

    :func:`weighted_total` computes their totals as the full total minus each group's row, in O(G) memory and time,
    instead of forming the G x G matrix and multiplying (3 GB and minutes at G = 20,000).
    """

    def __repr__(self) -> str:
        return "LEAVE_ONE_OUT"


#: Pass as ``weights`` for the jackknife samples (see :class:`LeaveOneOut`).
LEAVE_ONE_OUT = LeaveOneOut()

#: Group weights: None (the data as they are), an array (B, G), or :data:`LEAVE_ONE_OUT` (B = G).
Weights = FloatArray | LeaveOneOut | None


def weighted_total(rows: FloatArray, weights: Weights) -> FloatArray:
    """Sum ``rows`` (G, ...) over groups, once per row of ``weights`` (B, G).

    Returns shape ``rows.shape[1:]`` when ``weights`` is None (plain sum), else ``(B,) + rows.shape[1:]``; for
    :data:`LEAVE_ONE_OUT`, row g is the total without group g.

    Examples
    --------
    >>> rows = np.array([1.0, 2.0, 4.0])
    >>> weighted_total(rows, LEAVE_ONE_OUT).tolist(), weighted_total(rows, 1.0 - np.eye(3)).tolist()
    ([6.0, 5.0, 3.0], [6.0, 5.0, 3.0])
    """
    if weights is None:
        return rows.sum(axis=0)
    if isinstance(weights, LeaveOneOut):
        return rows.sum(axis=0)[None] - rows
    flat = rows.reshape(rows.shape[0], -1)
    return rowwise_product(weights, flat).reshape((weights.shape[0], *rows.shape[1:]))


def _safe_ratio(numerator: FloatArray, denominator_sq: FloatArray) -> FloatArray:
    """``numerator / sqrt(denominator_sq)``, NaN where the denominator is not positive, clipped to [-1, 1]."""
    positive = denominator_sq > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(positive, numerator / np.sqrt(np.where(positive, denominator_sq, 1.0)), np.nan)
    return np.clip(ratio, -1.0, 1.0)


class GroupSums(ABC):
    """Rows of per-group sums from which rho (H, F) follows in closed form.

    Subclasses implement :meth:`rho`. ``weights`` is None for the estimate itself or an array (B, G) of
    non-negative group weights (bootstrap counts, jackknife indicators); the result is then (B, H, F).
    """

    n_groups: int

    @abstractmethod
    def rho(self, weights: Weights = None) -> FloatArray:
        """Correlations for the full data (``weights=None``) or for each weight vector."""

    @abstractmethod
    def flip_rows(self) -> FloatArray:
        """Each group's signed contribution (G, H, F) to the numerator of rho, for sign-flip tests.

        The rows sum to the numerator of the full-data rho; :meth:`rho_from_flip_total` turns any signed
        combination of them into a correlation with the full-data denominator.
        """

    @abstractmethod
    def rho_from_flip_total(self, total: FloatArray) -> FloatArray:
        """rho for numerator totals ``total`` (..., H, F), the denominators held at their full-data values."""


@dataclass(frozen=True)
class CentredSums(GroupSums):
    r"""Sums for the ``within`` estimator, optionally with the two-way (scenario and slot) adjustment.

    With attention :math:`\tilde a` and feature :math:`\tilde x` centred within each scenario over its valid
    entities, group g contributes :math:`S^{ax}_g = \sum \tilde a \tilde x`, :math:`S^{aa}_g = \sum \tilde a^2`
    and :math:`S^{xx}_g = \sum \tilde x^2`, and

    .. math:: \rho = \frac{\sum_g S^{ax}_g}{\sqrt{\sum_g S^{aa}_g \sum_g S^{xx}_g}}.

    With the slot adjustment the slot indicators :math:`\tilde D` (also centred within scenario) are partialled
    out (Frisch-Waugh-Lovell), using the additive sums :math:`S^{aD}, S^{xD}, S^{DD}`:
    :math:`S^{ax}_{\mathrm{adj}} = S^{ax} - S^{aD} (S^{DD})^{+} S^{xD}`, and likewise for the squares. This is
    the correlation of the residuals of a two-way fixed-effects regression (scenario and slot), which equals
    double centring when every slot is present in every scenario.

    Attributes
    ----------
    cross : (G, H, F)  sums of centred attention x centred feature.
    attention_ss : (G, H, F)  sums of squared centred attention (over the entities valid for each feature).
    feature_ss : (G, F)  sums of squared centred feature.
    attention_slot, feature_slot, slot_slot : (G, H, F, K), (G, F, K), (G, F, K, K) or None
        Cross sums with the centred slot indicators (slot adjustment only).
    """

    cross: FloatArray
    attention_ss: FloatArray
    feature_ss: FloatArray
    attention_slot: FloatArray | None = None
    feature_slot: FloatArray | None = None
    slot_slot: FloatArray | None = None

    @property
    def n_groups(self) -> int:  # type: ignore[override]
        return int(self.cross.shape[0])

    def rho(self, weights: Weights = None) -> FloatArray:
        cross, attention_ss, feature_ss = self._adjusted_totals(weights)
        return _safe_ratio(cross, attention_ss * feature_ss)

    def _adjusted_totals(self, weights: Weights) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Numerator and the two sums of squares, after partialling out the slots when adjusted."""
        cross = weighted_total(self.cross, weights)
        attention_ss = weighted_total(self.attention_ss, weights)
        feature_ss = weighted_total(self.feature_ss, weights)[..., None, :]
        if self.slot_slot is None:
            return cross, attention_ss, feature_ss
        a_d, x_d, a_proj, x_proj = self._slot_projections(weights)
        cross = cross - np.einsum("...hfk,...fk->...hf", a_d, x_proj)
        feature_adj = feature_ss - np.einsum("...fk,...fk->...f", x_d, x_proj)[..., None, :]
        attention_adj = attention_ss - np.einsum("...hfk,...hfk->...hf", a_d, a_proj)
        # Residual sums of squares are non-negative; clear the rounding noise of a perfect fit.
        attention_adj = np.where(attention_adj > 1e-12 * attention_ss, attention_adj, 0.0)
        feature_adj = np.where(feature_adj > 1e-12 * feature_ss, feature_adj, 0.0)
        return cross, attention_adj, feature_adj

    def _slot_projections(self, weights: Weights) -> tuple[FloatArray, ...]:
        """Totals of D'a, D'x and the regression coefficients (D'D)^+ D'a, (D'D)^+ D'x."""
        assert self.attention_slot is not None and self.feature_slot is not None
        assert self.slot_slot is not None
        a_d = weighted_total(self.attention_slot, weights)  # (..., H, F, K)
        x_d = weighted_total(self.feature_slot, weights)  # (..., F, K)
        d_inv = np.linalg.pinv(weighted_total(self.slot_slot, weights), rcond=1e-10, hermitian=True)
        x_proj = np.einsum("...fkl,...fl->...fk", d_inv, x_d)
        a_proj = np.einsum("...fkl,...hfl->...hfk", d_inv, a_d)
        return a_d, x_d, a_proj, x_proj

    def flip_rows(self) -> FloatArray:
        if self.slot_slot is None:
            return self.cross
        # Per-group cross products of the residuals, with the slot coefficients of the full data:
        # a_r'x_r = a'x - b_a'D'x - a'D b_x + b_a'D'D b_x, summed over groups = the adjusted numerator.
        assert self.attention_slot is not None and self.feature_slot is not None
        _, _, a_proj, x_proj = self._slot_projections(None)
        return (self.cross
                - np.einsum("ghfk,fk->ghf", self.attention_slot, x_proj)
                - np.einsum("hfk,gfk->ghf", a_proj, self.feature_slot)
                + np.einsum("hfk,gfkl,fl->ghf", a_proj, self.slot_slot, x_proj))

    def rho_from_flip_total(self, total: FloatArray) -> FloatArray:
        _, attention_ss, feature_ss = self._adjusted_totals(None)
        return _safe_ratio(total, attention_ss * feature_ss)


@dataclass(frozen=True)
class PooledSums(GroupSums):
    r"""Sums for the ``pooled`` estimator: Pearson's r over every valid (scenario, entity) pair.

    Each group stores :math:`n, \sum a, \sum x, \sum a^2, \sum x^2, \sum a x` (values shifted by their overall
    mean beforehand, which leaves r unchanged and keeps the sums well conditioned), and

    .. math:: r = \frac{\sum ax - \sum a \sum x / n}
                       {\sqrt{(\sum a^2 - (\sum a)^2/n)(\sum x^2 - (\sum x)^2/n)}}.
    """

    count: FloatArray  # (G, F)
    attention_sum: FloatArray  # (G, H, F)
    feature_sum: FloatArray  # (G, F)
    attention_sq: FloatArray  # (G, H, F)
    feature_sq: FloatArray  # (G, F)
    cross: FloatArray  # (G, H, F)

    @property
    def n_groups(self) -> int:  # type: ignore[override]
        return int(self.cross.shape[0])

    def rho(self, weights: Weights = None) -> FloatArray:
        cross, denominator_sq = self._centred_totals(weights)
        return _safe_ratio(cross, denominator_sq)

    def _centred_totals(self, weights: Weights) -> tuple[FloatArray, FloatArray]:
        n = weighted_total(self.count, weights)[..., None, :]
        sa = weighted_total(self.attention_sum, weights)
        sx = weighted_total(self.feature_sum, weights)[..., None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            cross = weighted_total(self.cross, weights) - sa * sx / n
            var_a = weighted_total(self.attention_sq, weights) - sa * sa / n
            var_x = weighted_total(self.feature_sq, weights)[..., None, :] - sx * sx / n
        return cross, np.where(n > 1, var_a * var_x, 0.0)

    def flip_rows(self) -> FloatArray:
        # Each group's sum of (a - mean a)(x - mean x) with the overall means held fixed.
        n = self.count.sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_a = np.where(n > 0, self.attention_sum.sum(axis=0) / n, 0.0)  # (H, F)
            mean_x = np.where(n > 0, self.feature_sum.sum(axis=0) / n, 0.0)  # (F,)
        return (self.cross - self.attention_sum * mean_x - mean_a * self.feature_sum[:, None, :]
                + self.count[:, None, :] * mean_a * mean_x)

    def rho_from_flip_total(self, total: FloatArray) -> FloatArray:
        return _safe_ratio(total, self._centred_totals(None)[1])


@dataclass(frozen=True)
class FisherSums(GroupSums):
    r"""Sums for the ``fisher`` estimator: the mean over groups of each group's mean Fisher z.

    Group g stores the mean :math:`\bar z_g` of :math:`z = \operatorname{artanh}(\operatorname{clip}(r_s,
    \pm c))` over its usable scenarios and an indicator :math:`u_g` that it has any; then

    .. math:: \rho = \tanh\Big(\frac{\sum_g w_g u_g \bar z_g}{\sum_g w_g u_g}\Big).
    """

    mean_z: FloatArray  # (G, H, F), 0 where unused
    used: FloatArray  # (G, H, F) 0/1

    @property
    def n_groups(self) -> int:  # type: ignore[override]
        return int(self.mean_z.shape[0])

    def rho(self, weights: Weights = None) -> FloatArray:
        return self._rho(weighted_total(self.mean_z, weights), weighted_total(self.used, weights))

    @staticmethod
    def _rho(z_total: FloatArray, used: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(used > 0, np.tanh(z_total / np.where(used > 0, used, 1.0)), np.nan)

    def flip_rows(self) -> FloatArray:
        return self.mean_z

    def rho_from_flip_total(self, total: FloatArray) -> FloatArray:
        return self._rho(total, self.used.sum(axis=0))
