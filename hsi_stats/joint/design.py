r"""The joint model's design: each entity's covariates, which entities a scenario's fit uses, and which features
the fit can tell apart.

Covariates. For scenario s and its valid entities (present, and no feature NaN: an entity with NaN in any feature
is left out of that scenario's fit and counted), every feature enters as its within-scenario mid-rank percentile
:math:`z = (r - \tfrac12)/n` over the :math:`n` entities of the fit (average ties; :math:`\pm\infty` ranks as an
extreme), the scale of the ``rank-feature`` correlation. An indicator (every value 0 or 1) enters as 0/1; its
percentile is exactly :math:`\tfrac12 x + c_s` with :math:`c_s` constant within the scenario, and scenario
constants cancel in the conditional logit, so the fit runs on percentiles throughout and an indicator's
coefficient is half its percentile coefficient (:data:`INDICATOR_SCALE`). With the slot adjustment the entity's
observation slot enters too, as 0/1 indicators (nuisance columns, never reported).

Aliasing. The columns are judged on their within-scenario centred cross-products
:math:`C = \sum_s \sum_v (z_{sv} - \bar z_s)(z_{sv} - \bar z_s)^\top`: a column is left out when it has no
variation within any scenario, or when its variance-inflation factor :math:`\mathrm{VIF}_j = 1/(1 - R^2_j)`
(:math:`R^2_j` of column j on the other kept columns, from :math:`C`) exceeds :data:`MAX_VIF` (10, the usual rule
of thumb: Kutner, Nachtsheim, Neter and Li 2005, section 10.5). Of a set of (nearly) aliased columns the one
listed last in the priority order (slot columns, then the catalog's order, then the data's) is left out, one at a
time, until no VIF exceeds the bound. A feature left out is described by the kept column that explains most of it
(its proxy) and the sign of that relation (``is_behind`` is ``is_ahead`` with the sign turned where every entity
is one or the other).

This module computes covariates and decides columns; it fits nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..within import centre_within, percentile_within

__all__ = ["INDICATOR_SCALE", "MAX_VIF", "Aliasing", "LeftOutColumn", "choose_columns", "design_chunk",
           "fitted_targets", "slot_column_names", "within_cross_products"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Largest variance-inflation factor a kept column may have.
MAX_VIF = 10.0
#: An indicator's coefficient per unit of its 0/1 value is its percentile coefficient times this.
INDICATOR_SCALE = 0.5
#: A feature's percentiles over the entities given: ``percentiles(name, valid) -> (s, V)``.
Percentiles = Callable[[str, BoolArray], FloatArray]
#: A column whose within-scenario variation is below this share of the largest column's has none.
_CONSTANT = 1e-12


def slot_column_names(slot_values: Sequence[int]) -> tuple[str, ...]:
    """Names of the slot indicator columns (``"slot 0"``, ...)."""
    return tuple(f"slot {int(k)}" for k in slot_values)


def design_chunk(features: Mapping[str, FloatArray], mask: BoolArray, names: Sequence[str],
                 slot_onehot: FloatArray | None = None, percentiles: Percentiles | None = None,
                 ) -> tuple[FloatArray, BoolArray, int]:
    """Covariates (s, V, K) of a chunk's entities, the entities the fit uses (s, V) and the entities left out.

    ``features`` maps each of ``names`` to (s, V); ``mask`` marks the entities present; ``slot_onehot`` (s, V, k)
    adds slot indicator columns after the features. Covariates are 0 on entities the fit does not use.
    ``percentiles(name, valid)`` gives a feature's percentiles (default :func:`~hsi_stats.within.percentile_within`;
    a chunk's :meth:`~hsi_stats.chunks.Chunk.percentiles` shares them with the other reductions of a pass).

    Examples
    --------
    >>> z, valid, left_out = design_chunk({"d": np.array([[3.0, 1.0, np.inf, np.nan]])}, np.ones((1, 4), bool), ["d"])
    >>> z[0, :, 0].tolist(), valid.tolist(), left_out
    ([0.5, 0.16666666666666666, 0.8333333333333334, 0.0], [[True, True, True, False]], 1)
    """
    valid = mask.copy()
    for name in names:
        valid &= ~np.isnan(features[name])
    left_out = int((mask & ~valid).sum())
    if percentiles is None:
        values = np.stack([np.asarray(features[name], dtype=np.float64) for name in names], axis=1)  # (s, F, V)
        found = percentile_within(values, valid[:, None, :])
    else:
        found = np.stack([percentiles(name, valid) for name in names], axis=1)
    z = np.where(valid[:, None, :], found, 0.0).transpose(0, 2, 1)
    if slot_onehot is not None:
        z = np.concatenate([z, np.where(valid[..., None], slot_onehot, 0.0)], axis=2)
    return np.ascontiguousarray(z), valid, left_out


def within_cross_products(z: FloatArray, valid: BoolArray) -> FloatArray:
    """Per scenario, the centred cross-products of the covariates over the valid entities: (s, K, K)."""
    centred = centre_within(z.transpose(0, 2, 1), valid[:, None, :])  # (s, K, V)
    return np.matmul(centred, centred.transpose(0, 2, 1))


@dataclass(frozen=True)
class LeftOutColumn:
    """A column the fit leaves out: why, and what explains it.

    Attributes
    ----------
    name : str
    reason : {"constant", "aliased"}
        No variation within any scenario, or a variance-inflation factor above :data:`MAX_VIF`.
    vif : float
        Its variance-inflation factor on the kept columns (inf when exactly aliased or constant).
    explained_by : tuple of str
        The kept columns that explain it, the strongest first (standardised coefficients at least a third of
        the largest).
    proxy : str or None
        The kept column that explains most of it; ``proxy_sign`` the sign of that relation (+1 or -1).
    """

    name: str
    reason: str
    vif: float
    explained_by: tuple[str, ...] = ()
    proxy: str | None = None
    proxy_sign: int = 1

    def describe(self) -> str:
        """One sentence for the notes."""
        if self.reason == "constant":
            return f"{self.name} left out of the joint model: it does not vary within any scenario."
        how = ", ".join(self.explained_by) or "the other columns"
        strength = "exactly" if not np.isfinite(self.vif) or self.vif > 1e8 else f"nearly (VIF {self.vif:.3g})"
        return (f"{self.name} left out of the joint model: within scenarios it is {strength} a linear function of "
                f"{how}.")


@dataclass(frozen=True)
class Aliasing:
    """The columns a joint fit keeps and the ones it leaves out (:func:`choose_columns`)."""

    kept: tuple[int, ...]
    left_out: tuple[LeftOutColumn, ...]

    def left_out_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.left_out)


def _regression(cross: FloatArray, target: int, others: list[int]) -> tuple[float, FloatArray]:
    """R^2 of column ``target`` on ``others`` and the standardised coefficients, from cross-products."""
    if not others:
        return 0.0, np.zeros(0)
    columns = [target, *others]
    scale = np.sqrt(np.diag(cross)[columns])
    correlation = cross[np.ix_(columns, columns)] / np.outer(scale, scale)
    among, towards = correlation[1:, 1:], correlation[1:, 0]
    coef = np.linalg.lstsq(among, towards, rcond=1e-12)[0]
    return float(np.clip(towards @ coef, 0.0, 1.0)), coef


def choose_columns(cross: FloatArray, names: Sequence[str], priority: Sequence[int],
                   max_vif: float = MAX_VIF) -> Aliasing:
    """The columns to keep, from the within-scenario cross-products ``cross`` (K, K).

    ``priority`` orders the column indices from the first to keep to the first to leave out.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ahead = rng.integers(0, 2, 200).astype(float)
    >>> x = np.stack([ahead, 1 - ahead, rng.random(200)], axis=1)
    >>> x -= x.mean(axis=0)
    >>> chosen = choose_columns(x.T @ x, ["is_ahead", "is_behind", "d"], [0, 1, 2])
    >>> chosen.kept, chosen.left_out[0].proxy, chosen.left_out[0].proxy_sign
    ((0, 2), 'is_ahead', -1)
    """
    cross = np.asarray(cross, dtype=np.float64)
    variance = np.diag(cross)
    largest = float(variance.max()) if variance.size else 0.0
    kept = [int(k) for k in priority]
    left_out: list[LeftOutColumn] = []
    for k in list(kept):
        if not variance[k] > _CONSTANT * largest:
            kept.remove(k)
            left_out.append(LeftOutColumn(str(names[k]), "constant", float("inf")))
    while len(kept) > 1:
        vifs = {}
        for k in kept:
            r2 = _regression(cross, k, [j for j in kept if j != k])[0]
            vifs[k] = float("inf") if r2 >= 1.0 - 1e-15 else 1.0 / (1.0 - r2)
        offenders = [k for k in kept if vifs[k] > max_vif]
        if not offenders:
            break
        dropped = offenders[-1]  # the last in priority order
        kept.remove(dropped)
        left_out.append(_left_out(cross, names, dropped, kept, vifs[dropped]))
    return Aliasing(tuple(sorted(kept)), tuple(left_out))


def _left_out(cross: FloatArray, names: Sequence[str], column: int, kept: list[int], vif: float) -> LeftOutColumn:
    """A column left out for aliasing, described by the kept columns that explain it."""
    _, coef = _regression(cross, column, kept)
    order = np.argsort(-np.abs(coef), kind="stable")
    strongest = float(np.abs(coef[order[0]])) if coef.size else 0.0
    explained = tuple(str(names[kept[i]]) for i in order if strongest > 0 and abs(coef[i]) >= strongest / 3)
    proxy = str(names[kept[order[0]]]) if strongest > 0 else None
    sign = -1 if coef.size and coef[order[0]] < 0 else 1
    return LeftOutColumn(str(names[column]), "aliased", vif, explained, proxy, sign)


def fitted_targets(features: Mapping[str, FloatArray], mask: BoolArray,
                   coefficients: Sequence[tuple[str, float, bool]]) -> tuple[BoolArray, BoolArray]:
    """The entities a head's joint model predicts it attends most: those of highest fitted utility.

    ``coefficients`` are ``(feature, coefficient, indicator)`` triples on the reported scale (an indicator's per
    flag, a continuous feature's per unit of within-scenario percentile); ``features`` map names to (..., V) and
    ``mask`` marks the entities present. Returns the predicted entities (ties all predicted) and the entities
    the prediction is made among (present, no NaN in the features used), both (..., V).

    Examples
    --------
    >>> ahead = np.array([[0.0, 1.0, 1.0]]); distance = np.array([[5.0, 30.0, 10.0]])
    >>> targets, valid = fitted_targets({"is_ahead": ahead, "distance_to_ego": distance}, np.ones((1, 3), bool),
    ...                                 [("is_ahead", 3.6, True), ("distance_to_ego", -5.3, False)])
    >>> targets.tolist()  # the nearest vehicle ahead
    [[False, False, True]]
    """
    valid = np.asarray(mask, dtype=bool).copy()
    for name, _, _ in coefficients:
        valid &= ~np.isnan(features[name])
    utility = np.zeros(valid.shape)
    for name, coefficient, indicator in coefficients:
        values = np.asarray(features[name], dtype=np.float64)
        scaled = values if indicator else percentile_within(values, valid)
        utility += coefficient * np.where(valid, scaled, 0.0)
    utility = np.where(valid, utility, -np.inf)
    return valid & (utility == utility.max(axis=-1, keepdims=True)), valid
