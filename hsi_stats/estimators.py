"""Estimators of rho[h, f] and the Head Specialization Index.

The estimators (``within``, ``pooled``, ``fisher``) and correlations (``rank-feature``, ``spearman``,
``pearson``) are defined, with the reasons for the defaults, in the statistical guide of the docs.

:func:`estimate` turns an :class:`~hsi_stats.data.HSIDataset` into per-group additive sums
(:mod:`hsi_stats.group_sums`) and evaluates them once. The same sums are what the inference layer resamples, so
the point estimate and every resample share one code path.

Estimators (``estimator=``):

``within`` (default)
    Correlation after centring attention and feature within each scenario over its valid entities,
    :math:`\\rho = \\sum \\tilde a \\tilde x / \\sqrt{\\sum \\tilde a^2 \\sum \\tilde x^2}`.
``pooled``
    The correlation over every valid (scenario, entity) pair: the original in-house method (with Pearson).
``fisher``
    Mean Fisher z of per-scenario correlations (scenarios with >= 3 valid entities and both variables
    non-constant), averaged within group then over groups, back-transformed. Kept for comparability.

Correlations (``correlation=``): ``rank-feature`` (default) keeps the attention mass as it is and replaces the
feature by its mid-rank percentile :math:`(r - 1/2)/n` among the n entities valid in the scenario (over all pooled
pairs for ``pooled``), so rho is linear in attention and insensitive to the feature's scale and tails; ``spearman``
ranks both sides; ``pearson`` uses both as they are. Ranks use average ties, within each scenario (``within``,
``fisher``) or over the pooled pairs (``pooled``); ``+-inf`` ranks as an extreme value. Under Pearson ``+-inf`` is
left out and counted. NaN is always left out for that feature only. Every combination is defined; with the slot
adjustment, a feature that is a function of the slot (distance when slots are ordered by distance) keeps under
``rank-feature`` only how its percentile moves with the number of entities present, which is not a feature
effect (under ``spearman`` it is constant within slot and its rho is NaN). This module never imports plotting.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from ._validation import ConstantInputWarning, OptionError, StepPoolingWarning
from .chunks import Chunk, ChunkSource, accumulate, scenario_chunks, slot_onehot
from .chunks import slot_values as chunk_slot_values
from .data import HSIDataset
from .group_sums import CentredSums, FisherSums, Grouping, GroupSums, GroupTotals, PooledSums
from .settings import AnalysisSettings, check_option, document_options
from .within import centre_within, percentile_within, rank_within

__all__ = ["ESTIMATION_OPTIONS", "Estimate", "SelectivityReduction", "SumsReduction", "estimate", "estimate_with",
           "hsi_from_rho", "rho_strength", "selectivity", "selectivity_from", "sums_reduction", "within_centred"]

#: The options of :class:`~hsi_stats.settings.AnalysisSettings` that :func:`estimate` reads.
ESTIMATION_OPTIONS = ("estimator", "correlation", "adjust", "fisher_clip")
MIN_FISHER_ENTITIES = 3

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------- inputs per feature
@dataclass(frozen=True)
class _FeatureInput:
    """One feature's values and the entities it uses, after the non-finite rules.

    NaN is left out; +-inf is ranked as the most extreme value, or left out under Pearson.
    """

    values: FloatArray  # (S, V), finite (or +-inf under Spearman) where valid
    valid: BoolArray  # (S, V)
    missing: int  # NaN on a present entity: always left out
    infinite: int  # +-inf on a present entity
    infinite_left_out: int  # under Pearson, the infinite values left out
    percentiles: FloatArray | None = None  # within-scenario mid-rank percentiles over ``valid``, when computed


def _feature_inputs(features: Mapping[str, FloatArray], mask: BoolArray, names: tuple[str, ...],
                    correlation: str) -> list[_FeatureInput]:
    inputs = []
    for name in names:
        values = features[name]
        nan = np.isnan(values) & mask
        inf = np.isinf(values) & mask
        valid = mask & ~np.isnan(values)
        if correlation == "pearson":
            valid = valid & ~np.isinf(values)
        inputs.append(_FeatureInput(values, valid, int(nan.sum()), int(inf.sum()),
                                    int(inf.sum()) if correlation == "pearson" else 0))
    return inputs


# --------------------------------------------------------------------------- the three estimators
def _centred_pair(attention: FloatArray, feature: _FeatureInput, correlation: str) -> tuple[FloatArray, FloatArray]:
    """Attention (S, H, V) and feature (S, V) on the correlation's scales, centred within scenario.

    ``spearman`` ranks both within the scenario; ``rank-feature`` keeps the attention mass and turns the feature
    into its within-scenario mid-rank percentile (``feature.percentiles``, when already computed); ``pearson`` keeps
    both.
    """
    valid = feature.valid
    a, x = attention, feature.values
    if correlation == "spearman":
        a = rank_within(a, valid[:, None, :])
        x = rank_within(x, valid)
    elif correlation == "rank-feature":
        x = percentile_within(x, valid) if feature.percentiles is None else feature.percentiles
    return centre_within(a, valid[:, None, :]), centre_within(x, valid)


def within_centred(dataset: HSIDataset, correlation: str) -> tuple[FloatArray, FloatArray]:
    """Within-scenario centred (and, for Spearman, ranked) values: attention (S, H, F, V), features (S, F, V).

    Entities not valid for a feature hold 0. These are the inputs of the ``within`` estimator that the
    permutation schemes shuffle.
    """
    correlation = check_option("correlation", correlation)
    inputs = _feature_inputs(dataset.features, dataset.mask, dataset.feature_names, correlation)
    pairs = [_centred_pair(dataset.attention, f, correlation) for f in inputs]
    return np.stack([a for a, _ in pairs], axis=2), np.stack([x for _, x in pairs], axis=1)


def _within_rows(
    attention: FloatArray, feature: _FeatureInput, correlation: str, slot_onehot: FloatArray | None,
    grouping: Grouping,
) -> dict[str, FloatArray]:
    valid = feature.valid
    a_c, x_c = _centred_pair(attention, feature, correlation)
    rows = {
        "cross": grouping.sum(np.einsum("shv,sv->sh", a_c, x_c)),
        "attention_ss": grouping.sum(np.einsum("shv,shv->sh", a_c, a_c)),
        "feature_ss": grouping.sum(np.einsum("sv,sv->s", x_c, x_c)),
    }
    if slot_onehot is not None:
        d_c = centre_within(np.moveaxis(slot_onehot, 2, 1), valid[:, None, :])  # (S, K, V)
        rows["attention_slot"] = grouping.sum(np.einsum("shv,skv->shk", a_c, d_c))
        rows["feature_slot"] = grouping.sum(np.einsum("sv,skv->sk", x_c, d_c))
        rows["slot_slot"] = grouping.sum(np.einsum("skv,slv->skl", d_c, d_c))
    return rows


def _pooled_rows(attention: FloatArray, feature: _FeatureInput, correlation: str,
                 grouping: Grouping) -> dict[str, FloatArray]:
    valid = feature.valid
    a = np.moveaxis(attention, 1, 0)  # (H, S, V)
    x = feature.values
    if correlation == "spearman":
        n_heads = a.shape[0]
        a = rank_within(a.reshape(n_heads, -1), valid.reshape(1, -1)).reshape(a.shape)
    if correlation in ("spearman", "rank-feature"):
        x = rank_within(x.reshape(-1), valid.reshape(-1)).reshape(x.shape)
    n_valid = max(int(valid.sum()), 1)
    # Shift by the overall means: r is shift-invariant and the raw sums stay well conditioned.
    a = np.where(valid, a - np.where(valid, a, 0.0).sum(axis=(1, 2), keepdims=True) / n_valid, 0.0)
    x = np.where(valid, x - np.where(valid, x, 0.0).sum() / n_valid, 0.0)
    return {
        "count": grouping.sum(valid.sum(axis=1).astype(float)),
        "attention_sum": grouping.sum(a.sum(axis=2).T),
        "feature_sum": grouping.sum(x.sum(axis=1)),
        "attention_sq": grouping.sum(np.einsum("hsv,hsv->sh", a, a)),
        "feature_sq": grouping.sum(np.einsum("sv,sv->s", x, x)),
        "cross": grouping.sum(np.einsum("hsv,sv->sh", a, x)),
    }


def _fisher_rows(attention: FloatArray, feature: _FeatureInput, correlation: str, clip: float,
                 grouping: Grouping) -> dict[str, FloatArray]:
    valid = feature.valid
    a_c, x_c = _centred_pair(attention, feature, correlation)
    saa = np.einsum("shv,shv->sh", a_c, a_c)
    sxx = np.einsum("sv,sv->s", x_c, x_c)[:, None]
    usable = (valid.sum(axis=1)[:, None] >= MIN_FISHER_ENTITIES) & (saa > 0) & (sxx > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(usable, np.einsum("shv,sv->sh", a_c, x_c) / np.sqrt(saa * sxx), 0.0)
    z = np.arctanh(np.clip(r, -clip, clip))
    return {"z_total": grouping.sum(np.where(usable, z, 0.0)), "z_count": grouping.sum(usable.astype(float)),
            "pairs": (usable * valid.sum(axis=1)[:, None]).sum(axis=0)}


class SumsReduction:
    """The per-group rows of one estimator, the pairs used and the values left out, chunk by chunk (an
    accumulator of :mod:`hsi_stats.chunks`: :func:`sums_reduction` makes it, :func:`estimate_with` finishes it)."""

    def __init__(self, n_groups: int, n_heads: int, names: tuple[str, ...], estimator: str, correlation: str,
                 fisher_clip: float, slot_values: NDArray[np.int64] | None) -> None:
        self.names, self.estimator, self.correlation = names, estimator, correlation
        self.fisher_clip, self.slot_values = fisher_clip, slot_values
        self.totals = GroupTotals(n_groups)
        self.n_used = np.zeros((n_heads, len(names)), dtype=np.int64)
        self.counts = np.zeros((3, len(names)), dtype=np.int64)  # missing, infinite, infinite left out

    def add(self, chunk: Chunk) -> None:
        grouping = chunk.grouping()
        slots = None if self.slot_values is None else slot_onehot(chunk, self.slot_values)
        for f, feature in enumerate(_feature_inputs(chunk.features, chunk.mask, self.names, self.correlation)):
            self.counts[:, f] += (feature.missing, feature.infinite, feature.infinite_left_out)
            if self.correlation == "rank-feature" and self.estimator != "pooled":  # shared with the joint model
                feature = replace(feature, percentiles=chunk.percentiles(self.names[f], feature.valid))
            if self.estimator == "within":
                rows = _within_rows(chunk.attention, feature, self.correlation, slots, grouping)
                present = feature.valid.sum(axis=1)
                self.n_used[:, f] += present[present >= 2].sum()
            elif self.estimator == "pooled":
                rows = _pooled_rows(chunk.attention, feature, self.correlation, grouping)
                self.n_used[:, f] += feature.valid.sum()
            else:
                rows = _fisher_rows(chunk.attention, feature, self.correlation, self.fisher_clip, grouping)
                self.n_used[:, f] += rows.pop("pairs").astype(np.int64)
            for key, value in rows.items():
                self.totals.add((key, f), grouping, value)

    def merge(self, other: SumsReduction) -> None:
        self.totals.merge(other.totals)
        self.n_used += other.n_used
        self.counts += other.counts


def sums_reduction(dataset: HSIDataset | ChunkSource, settings: AnalysisSettings,
                   slot_values: NDArray[np.int64] | None = None) -> SumsReduction:
    """An empty reduction of ``dataset`` to the per-group sums of the estimator of ``settings``, to be fed the
    chunks (alone, or beside other reductions in one pass); ``slot_values`` are the distinct slots
    (:func:`hsi_stats.chunks.slot_values`), needed with ``adjust="slot"``."""
    if settings.adjust == "slot" and slot_values is None:
        slot_values = chunk_slot_values(dataset)
    return SumsReduction(dataset.n_groups, dataset.n_heads, dataset.feature_names, settings.estimator,
                         settings.correlation, settings.fisher_clip,
                         slot_values if settings.adjust == "slot" else None)


def _reduce(dataset: HSIDataset | ChunkSource, reduction: SumsReduction) -> SumsReduction:
    """Feed every scenario to ``reduction``: chunk by chunk, but ``pooled`` (which ranks and centres over every pair
    at once) in one piece (the refusal for chunk sources is in :func:`estimate_with`)."""
    if reduction.estimator != "pooled":
        return accumulate(dataset, reduction)
    for chunk in scenario_chunks(dataset, values=dataset.n_scenarios * dataset.n_heads * dataset.n_slots):
        reduction.add(chunk)
    return reduction


def _group_sums(dataset: HSIDataset | ChunkSource,
                reduction: SumsReduction) -> tuple[GroupSums, NDArray[np.int64], pd.DataFrame]:
    """Per-group sums of a finished reduction of ``dataset``, pairs used (H, F) and left-out counts per feature.

    Rows of the sums follow the sorted group labels. ``within`` and ``fisher`` reduce the scenarios a chunk at a
    time (:mod:`hsi_stats.chunks`), so memory beyond the data stays that of one chunk; ``pooled`` centres and ranks
    over every pair at once, so it takes the data in one piece.
    """
    estimator, slot_values = reduction.estimator, reduction.slot_values
    totals, n_used, counts, names = reduction.totals, reduction.n_used, reduction.counts, dataset.feature_names

    def stack(key: str) -> FloatArray:
        # Per-feature rows are (G, ...) with the feature axis missing; put it after the head axis.
        arrays = [totals[(key, f)] for f in range(dataset.n_features)]
        return np.stack(arrays, axis=2 if key in _HEAD_KEYS else 1)

    sums: GroupSums
    if estimator == "within":
        slot_keys = ("attention_slot", "feature_slot", "slot_slot") if slot_values is not None else ()
        sums = CentredSums(stack("cross"), stack("attention_ss"), stack("feature_ss"),
                           *(stack(k) for k in slot_keys))
    elif estimator == "pooled":
        sums = PooledSums(*(stack(k) for k in ("count", "attention_sum", "feature_sum",
                                               "attention_sq", "feature_sq", "cross")))
    else:
        z_total, z_count = stack("z_total"), stack("z_count")
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_z = np.where(z_count > 0, z_total / np.where(z_count > 0, z_count, 1.0), 0.0)
        sums = FisherSums(mean_z, (z_count > 0).astype(float))

    left_out = pd.DataFrame({"feature": list(names), "missing": counts[0], "infinite": counts[1],
                             "infinite_left_out": counts[2]})
    return sums, n_used, left_out


# Row arrays whose second axis is the head axis (the feature axis is inserted after it).
_HEAD_KEYS = frozenset({"cross", "attention_ss", "attention_slot", "attention_sum", "attention_sq",
                        "z_total", "z_count"})


# --------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class Estimate:
    """Point estimates of rho[h, f] and of the HSI.

    Attributes
    ----------
    rho : ndarray (H, F)
        Correlation of head h's attention with feature f under the chosen estimator; NaN when undefined.
    hsi : ndarray (H,)
        :math:`\\mathrm{HSI}_h = \\max_f |\\rho_{hf}|` (NaN features ignored; NaN when all are).
    primary_feature, runner_up : tuple of str or None
        Argmax of ``|rho|`` per head and the second largest.
    head_names, feature_names : tuple of str
    n_used : ndarray of int (H, F)
        (scenario, entity) pairs that entered each correlation.
    left_out : DataFrame
        Per feature: ``missing`` (NaN, always left out), ``infinite`` and ``infinite_left_out`` (Pearson).
    estimator, correlation, adjust : str
    sums : GroupSums
        The per-group sums (what inference resamples).
    """

    rho: FloatArray
    hsi: FloatArray
    primary_feature: tuple[str | None, ...]
    runner_up: tuple[str | None, ...]
    head_names: tuple[str, ...]
    feature_names: tuple[str, ...]
    n_used: NDArray[np.int64]
    left_out: pd.DataFrame
    estimator: str
    correlation: str
    adjust: str
    sums: GroupSums

    def to_frame(self) -> pd.DataFrame:
        """One row per (head, feature): ``head, feature, rho, n_used, primary``."""
        n_heads, n_features = self.rho.shape
        return pd.DataFrame({
            "head": np.repeat(self.head_names, n_features),
            "feature": np.tile(self.feature_names, n_heads),
            "rho": self.rho.reshape(-1),
            "n_used": self.n_used.reshape(-1),
            "primary": [self.primary_feature[h] == f for h in range(n_heads) for f in self.feature_names],
        })

    def heads_frame(self) -> pd.DataFrame:
        """One row per head: ``head, hsi, primary_feature, primary_rho, runner_up, runner_up_rho``."""
        def rho_of(h: int, name: str | None) -> float:
            return float("nan") if name is None else float(self.rho[h, self.feature_names.index(name)])

        return pd.DataFrame({
            "head": list(self.head_names),
            "hsi": self.hsi,
            "primary_feature": list(self.primary_feature),
            "primary_rho": [rho_of(h, n) for h, n in enumerate(self.primary_feature)],
            "runner_up": list(self.runner_up),
            "runner_up_rho": [rho_of(h, n) for h, n in enumerate(self.runner_up)],
        })


def selectivity(dataset: HSIDataset | ChunkSource) -> FloatArray:
    r"""How concentrated each head's attention is over the valid entities, averaged over scenarios (H,).

    For scenario s with :math:`n \ge 2` valid entities and the head's attention renormalised over them,
    :math:`p`, the selectivity is :math:`1 - H(p)/\log n` (0 for uniform attention, 1 for all mass on one
    entity); scenarios with fewer than two valid entities or no attention mass are skipped. A head whose
    attention is uniform to within rounding can still rank-correlate with a feature; this guards against
    labelling it: a head below ``min_selectivity`` is never labelled (the validation rules).

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset
    >>> attention = np.array([[[0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]]])
    >>> selectivity(HSIDataset(attention, {"x": np.zeros((1, 4))})).round(6).tolist()
    [0.0, 1.0]
    """
    return selectivity_from(accumulate(dataset, SelectivityReduction(dataset.n_heads)))


def selectivity_from(reduction: SelectivityReduction) -> FloatArray:
    """:func:`selectivity` from a reduction already fed every scenario."""
    total, count = reduction.total, reduction.count
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class SelectivityReduction:
    """Sum of the per-scenario selectivity and the scenarios counted, per head."""

    def __init__(self, n_heads: int) -> None:
        self.total, self.count = np.zeros(n_heads), np.zeros(n_heads)

    def add(self, chunk: Chunk) -> None:
        per_scenario, usable = _scenario_selectivity(chunk.attention, chunk.mask)
        self.total += per_scenario.sum(axis=0)
        self.count += usable.sum(axis=0)

    def merge(self, other: SelectivityReduction) -> None:
        self.total += other.total
        self.count += other.count


def _scenario_selectivity(attention: FloatArray, mask: BoolArray) -> tuple[FloatArray, BoolArray]:
    """:math:`1 - H(p)/\\log n` per scenario and head (0 where not usable), and whether it is usable (s, H)."""
    mass = np.where(mask[:, None, :], np.abs(attention), 0.0)
    total = mass.sum(axis=2, keepdims=True)
    n_valid = mask.sum(axis=1)[:, None]
    usable = (n_valid >= 2) & (total[..., 0] > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(usable[..., None], mass / total, 0.0)
        entropy = -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(axis=2)
        return np.where(usable, 1.0 - entropy / np.log(np.maximum(n_valid, 2)), 0.0), usable


def hsi_from_rho(rho: FloatArray) -> FloatArray:
    """:math:`\\max_f |\\rho_{hf}|` along the last axis, ignoring NaN (NaN only when every feature is NaN)."""
    magnitude = np.abs(rho)
    all_nan = np.isnan(magnitude).all(axis=-1)
    return np.where(all_nan, np.nan, np.where(np.isnan(magnitude), -np.inf, magnitude).max(axis=-1))


def rho_strength(rho: FloatArray) -> FloatArray:
    """|rho| rounded to 12 decimals (-1 for NaN): the key that ranks features, strongest first.

    Two features that are exact complements (``is_ahead`` and ``is_behind`` when every entity is one or the other)
    have the same |rho| up to rounding, and rounding (which changes with the order of a sum) must not decide
    between them: equal keys go to the earlier feature (``argmax`` and a stable sort keep the order).

    Examples
    --------
    >>> rho_strength(np.array([0.5 + 1e-16, -0.5, np.nan])).argmax()
    np.int64(0)
    """
    return np.where(np.isnan(rho), -1.0, np.round(np.abs(rho), 12))


def _ranked_features(rho_row: FloatArray, names: tuple[str, ...]) -> tuple[str | None, str | None]:
    magnitude = rho_strength(rho_row)
    order = np.argsort(-magnitude, kind="stable")
    ranked = [names[i] for i in order if magnitude[i] >= 0]
    return (ranked[0] if ranked else None), (ranked[1] if len(ranked) > 1 else None)


def estimate(dataset: HSIDataset | ChunkSource, settings: AnalysisSettings | None = None, **options: Any) -> Estimate:
    """Estimate rho[h, f] for every head and feature, and the HSI of every head.

    Parameters
    ----------
    dataset : HSIDataset
    settings : AnalysisSettings, optional
        Where the estimation options are read from (the others are ignored); default ``AnalysisSettings()``.
    **options
        Estimation options overriding ``settings`` (with few entities per scenario the ``fisher`` estimate
        depends strongly on ``fisher_clip``, one reason it is not the default):

        {options}

    Returns
    -------
    Estimate

    Warns
    -----
    StepPoolingWarning
        When ``dataset`` holds several training steps: they are pooled here, as given (:func:`hsi_stats.analyze`
        analyses one step).

    Notes
    -----
    :math:`\\mathrm{HSI}_h = \\max_f |\\rho_{hf}|`. A feature (or head) with no variation inside any scenario
    has rho NaN and a :class:`~hsi_stats._validation.ConstantInputWarning`, as :func:`scipy.stats.pearsonr`.

    References
    ----------
    .. [1] Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation deduced from a small
       sample. Metron 1, 3-32.

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset, estimate
    >>> rng = np.random.default_rng(1)
    >>> distance = rng.random((50, 6))
    >>> attention = np.stack([-distance, rng.random((50, 6))], axis=1)
    >>> est = estimate(HSIDataset(attention, {"distance_to_ego": distance}))
    >>> est.rho.round(2).tolist()
    [[-0.93], [-0.02]]
    >>> est.primary_feature
    ('distance_to_ego', 'distance_to_ego')

    A head with all its attention on the nearest of 6 entities reaches :math:`-\\sqrt{3/7} = -0.65`, the
    largest a one-hot head can reach against a continuous feature (its focus, :mod:`hsi_stats.focus`, is 1):

    >>> nearest = (distance == distance.min(axis=1, keepdims=True)).astype(float)
    >>> float(estimate(HSIDataset(nearest[:, None, :], {"distance_to_ego": distance})).rho[0, 0].round(4))
    -0.6547
    """
    checked = AnalysisSettings.from_options(settings, options, allowed=ESTIMATION_OPTIONS, caller="estimate")
    if dataset.steps is not None and np.unique(dataset.steps).size > 1:
        warnings.warn(f"estimate pools the scenarios of {np.unique(dataset.steps).size} training steps into one "
                      "correlation, which describes none of the policies; select one step "
                      "(dataset.select(step_range=(s, s))), or use analyze (the last step by default) and "
                      "analyze_evolution.", StepPoolingWarning, stacklevel=2)
    return estimate_with(dataset, checked)


def estimate_with(dataset: HSIDataset | ChunkSource, settings: AnalysisSettings,
                  reduction: SumsReduction | None = None) -> Estimate:
    """:func:`estimate` for settings already checked (what :func:`hsi_stats.analyze` calls); ``reduction``, when
    given, is a :func:`sums_reduction` of ``dataset`` already fed every scenario (in a pass shared with other
    reductions)."""
    estimator, correlation = settings.estimator, settings.correlation
    adjust_name = "none" if settings.adjust is None else settings.adjust
    if estimator == "pooled" and isinstance(dataset, ChunkSource):
        raise OptionError("estimator='pooled' centres and ranks over every (scenario, entity) pair at once, which a "
                          "data set read shard by shard does not hold; use 'within' or 'fisher', or load the data "
                          "in memory (load_npz).")
    if reduction is None:
        reduction = _reduce(dataset, sums_reduction(dataset, settings))
    sums, n_used, left_out = _group_sums(dataset, reduction)
    rho = sums.rho()
    undefined = np.isnan(rho)
    if undefined.any():
        pairs = [f"{dataset.head_names[h]} x {dataset.feature_names[f]}" for h, f in np.argwhere(undefined)[:5]]
        warnings.warn(
            f"rho is NaN for {int(undefined.sum())} (head, feature) pair(s) (e.g. {', '.join(pairs)}): one of the "
            "variables has no variation inside any usable scenario (or none left after the slot adjustment).",
            ConstantInputWarning, stacklevel=3,
        )
    ranked = [_ranked_features(rho[h], dataset.feature_names) for h in range(dataset.n_heads)]
    return Estimate(
        rho=rho,
        hsi=hsi_from_rho(rho),
        primary_feature=tuple(r[0] for r in ranked),
        runner_up=tuple(r[1] for r in ranked),
        head_names=dataset.head_names,
        feature_names=dataset.feature_names,
        n_used=n_used,
        left_out=left_out,
        estimator=estimator,
        correlation=correlation,
        adjust=adjust_name,
        sums=sums,
    )


document_options(estimate, ESTIMATION_OPTIONS, indent="        ")
