r"""Fitting the joint model of every head: damped Newton in passes over the data, from a close start.

The estimate maximises :math:`\ell(\beta) = \sum_s \sum_v a_{sv} \log p_{sv}(\beta)`, which is concave, by Newton's
method: from :math:`\beta_t` the step is :math:`\Delta_t = I(\beta_t)^{-1} g(\beta_t)` (:mod:`hsi_stats.joint.passes`),
halved as long as the log-likelihood at the new point falls below the old one (a line search; an undamped Newton
method diverges on heads with nearly all their attention on a few entities). The rule to stop is
:math:`\max_k |\Delta_{t,k}| \le 10^{-6} \max(1, \max_k |\beta_{t,k}|)`, and the estimate is then
:math:`\beta_t + \Delta_t` (Newton converges quadratically: its error is of the order of
:math:`|\Delta_t|^2`); the per-episode scores, kept for the inference, are moved to it to first order
(:math:`s_g \leftarrow s_g - I_g \Delta_t`, so that they sum to zero).

Every evaluation is one pass over the data. To keep the passes few, the fit starts from the estimate on the first
:data:`SAMPLE_SCENARIOS` scenarios (held in memory and fitted to convergence there; the same scenarios whether the
data are in memory or in shards; itself started from the first :data:`FIRST_SCENARIOS`), and its first pass over
the whole data is fused with the other reductions of the analysis; two more passes usually follow.

Existence and Firth's penalty. The unpenalised estimate exists whenever the within-scenario cross-products of the
covariates over each scenario's *support* (the entities the head gives positive attention) have full rank: a
direction along which the log-likelihood could keep rising must leave every supported entity's utility tied, and
full rank leaves none. Heads that fail this (attention exactly 0 on some entities in a pattern the features could
separate, as in hand-built one-hot heads) are fitted with Firth's penalty :math:`\tfrac12 \log\det I(\beta)`
(Firth 1993; for the conditional logit Heinze and Puhr 2010), which keeps every coefficient finite; its gradient is
:math:`g + A`, :math:`A_j = \tfrac12 \operatorname{tr}(I^{-1} \partial I / \partial \beta_j)`, from the third central
moments of the pass.

This module decides steps, columns and penalties; the sums come from :class:`~hsi_stats.joint.passes.JointPass`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import eigh

from .._validation import ConvergenceWarning
from ..chunks import Accumulator, ChunkSource, Fused, accumulate
from ..data import HSIDataset
from .design import Aliasing, choose_columns, slot_column_names
from .passes import DesignCache, JointPass

__all__ = ["FIRTH_EIGENVALUE", "MAX_PASSES", "SAMPLE_SCENARIOS", "TOLERANCE", "JointFit", "fit_joint"]

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Scenarios of the start's fit (the first ones of the data); that fit starts from one on the first
#: :data:`FIRST_SCENARIOS`, which starts from zero.
SAMPLE_SCENARIOS = 2**14
FIRST_SCENARIOS = 2**11
#: Relative size of the last Newton step at which the fit stops.
TOLERANCE = 1e-6
#: Passes over the data (and iterations on the start's sample) at most.
MAX_PASSES = 30
MAX_SAMPLE_ITERATIONS = 200
#: The support's cross-products are singular when their smallest eigenvalue, relative to those of all entities,
#: is below this: such heads get Firth's penalty.
FIRTH_EIGENVALUE = 1e-8


@dataclass(frozen=True, eq=False)
class JointFit:
    """The fitted joint model of every head, with what its inference needs.

    Attributes
    ----------
    columns : tuple of str
        The design's columns: the features in the data's order, then slot indicators (``adjust="slot"``).
    n_features : int
        How many of ``columns`` are features.
    aliasing : Aliasing
        The columns kept and left out.
    coef : ndarray (H, K)
        Coefficients on the percentile scale (NaN on columns left out).
    information : ndarray (H, k, k)
        Information at the estimate, on the kept columns (``aliasing.kept``).
    scores, group_information : ndarray (G, H, k), (G, H, k, k)
        Each group's estimating function at the estimate (its score, plus its share of Firth's penalty) and its
        information, on the kept columns.
    used : ndarray (G, H)
        Scenarios of each group counted in each head's fit.
    method : tuple of str
        Per head: ``"mle"``, ``"firth"``, or ``"none"`` when no scenario counts.
    converged : ndarray of bool (H,)
    passes : int
        Passes over the whole data (the first one shared with the other reductions of the analysis).
    sample_scenarios : int
        Scenarios of the start's fit (0 when the data are that small: then the whole data are iterated).
    zeros : ndarray of int (H,)
        Valid entities given exactly zero attention.
    left_out_entities, entities : int
        Entities left out for NaN features, and entities in the fit.
    """

    columns: tuple[str, ...]
    n_features: int
    aliasing: Aliasing
    coef: FloatArray
    information: FloatArray
    scores: FloatArray
    group_information: FloatArray
    used: FloatArray
    method: tuple[str, ...]
    converged: BoolArray
    passes: int
    sample_scenarios: int
    zeros: NDArray[np.int64]
    left_out_entities: int
    entities: int
    notes: tuple[str, ...] = field(default=())

    @property
    def kept(self) -> tuple[int, ...]:
        return self.aliasing.kept


# ----------------------------------------------------------------------------------------------- Newton
@dataclass
class _Newton:
    """The state of every head's damped Newton iteration (coefficients on all K columns, kept ones updated)."""

    coef: FloatArray
    cols: NDArray[np.intp]
    firth: BoolArray
    groups: bool  # whether the fit ends with per-group sums (the inference needs them; a start does not)
    active: BoolArray = field(init=False)
    per_group: BoolArray = field(init=False)
    base: FloatArray = field(init=False)
    base_objective: FloatArray = field(init=False)
    step: FloatArray = field(init=False)
    length: FloatArray = field(init=False)
    last_size: FloatArray = field(init=False)
    final: list[dict[str, FloatArray] | None] = field(init=False)

    def __post_init__(self) -> None:
        n_heads = self.coef.shape[0]
        self.active = np.ones(n_heads, dtype=bool)
        self.per_group = np.zeros(n_heads, dtype=bool)
        self.base = self.coef.copy()
        self.base_objective = np.full(n_heads, -np.inf)
        self.step = np.zeros_like(self.coef)
        self.length = np.ones(n_heads)
        self.last_size = np.full(n_heads, np.nan)
        self.final = [None] * n_heads

    def absorb(self, found: JointPass) -> None:
        """Update the heads a pass evaluated from its sums."""
        per_group_index = {int(h): j for j, h in enumerate(found.heads[found.per_group])}
        for i, h in enumerate(int(h) for h in found.heads):
            if not self.active[h]:
                continue
            if self.firth[h] and (found.third is None or not found.firth[i]):
                continue  # evaluated without the penalty's terms: evaluated again at the same point
            self._absorb_head(h, found, i, per_group_index.get(h))

    def _absorb_head(self, h: int, found: JointPass, i: int, j: int | None) -> None:
        cols = self.cols
        information = found.information[i][np.ix_(cols, cols)]
        gradient = found.score[i, cols]
        objective = float(found.loglik[i])
        penalty_gradient = np.zeros(cols.size)
        if self.firth[h]:
            assert found.third is not None
            inverse = np.linalg.pinv(information, hermitian=True)
            penalty_gradient = 0.5 * np.einsum("jkl,kl->j", found.third[i][np.ix_(cols, cols, cols)], inverse)
            gradient = gradient + penalty_gradient
            objective += 0.5 * np.linalg.slogdet(information)[1]
        if objective < self.base_objective[h] - 1e-12 * abs(self.base_objective[h]) and self.length[h] > 1e-10:
            self.length[h] /= 2  # the last step went too far: halve it
            self.coef[h, cols] = self.base[h, cols] + self.length[h] * self.step[h, cols]
            self.per_group[h] = False
            return
        delta = _solve(information, gradient)
        scale = max(1.0, float(np.abs(self.coef[h, cols]).max(initial=0.0)))
        size = float(np.abs(delta).max(initial=0.0)) / scale
        if size <= TOLERANCE:
            if self.groups and j is None:  # converged, but the pass did not sum per group: once more, with them
                self.per_group[h] = True
                self.coef[h, cols] += delta
                return
            if j is not None:
                self.final[h] = self._final(found, j, delta, penalty_gradient, information)
            self.coef[h, cols] += delta
            self.active[h] = False
            return
        # Newton converges quadratically: the next step is about c |delta|^2, c estimated from the last two
        growth = size / self.last_size[h] ** 2 if np.isfinite(self.last_size[h]) and self.last_size[h] > 0 else 1.0
        self.last_size[h] = size
        self.base[h, cols], self.base_objective[h] = self.coef[h, cols], objective
        self.step[h, cols], self.length[h] = delta, 1.0
        self.coef[h, cols] += delta
        self.per_group[h] = self.groups and min(growth, 1.0) * size**2 <= TOLERANCE

    def _final(self, found: JointPass, j: int, delta: FloatArray, penalty_gradient: FloatArray,
               information: FloatArray) -> dict[str, FloatArray]:
        """Per-group estimating functions and informations on the kept columns, moved to the estimate."""
        cols = self.cols
        scores = found.group_totals["score"][:, j][:, cols]
        group_information = found.group_totals["information"][:, j][:, cols][:, :, cols]
        used = found.group_totals["used"][:, j]
        if penalty_gradient.any():  # Firth's penalty: its gradient shared out over the groups by their scenarios
            scores = scores + np.outer(used / max(float(used.sum()), 1.0), penalty_gradient)
        scores = scores - np.einsum("gkl,l->gk", group_information, delta)
        return {"scores": scores, "information": information, "group_information": group_information, "used": used}


def _solve(information: FloatArray, gradient: FloatArray) -> FloatArray:
    """:math:`I^{-1} g`, by least squares when ``I`` is singular."""
    try:
        solved = np.linalg.solve(information, gradient)
    except np.linalg.LinAlgError:
        solved = np.linalg.lstsq(information, gradient, rcond=None)[0]
    return np.asarray(solved, dtype=np.float64)


def _support_singular(found: JointPass, cols: NDArray[np.intp]) -> BoolArray:
    """Per head of the first pass: whether the cross-products over its support are singular on the kept columns
    (then the unpenalised estimate may not exist)."""
    if cols.size == 0:
        return np.zeros(len(found.heads), dtype=bool)
    cross = found.cross[np.ix_(cols, cols)]
    singular = np.zeros(len(found.heads), dtype=bool)
    for i in range(len(found.heads)):
        support = cross - found.deficit[i][np.ix_(cols, cols)]
        eigen = eigh(support, cross, eigvals_only=True)  # those of C^-1 E: 1 where the support is everything
        singular[i] = float(eigen.min()) < FIRTH_EIGENVALUE
    return singular


# ----------------------------------------------------------------------------------------------- the fit
@dataclass(frozen=True)
class _Plan:
    """What every pass of one fit shares."""

    dataset: HSIDataset | ChunkSource
    columns: tuple[str, ...]
    slot_values: NDArray[np.int64] | None
    cache: DesignCache | None

    def run(self, heads: Sequence[int] | NDArray[np.intp], coef: FloatArray, firth: BoolArray, per_group: BoolArray, *,
            first: bool = False, extras: Sequence[Accumulator] = ()) -> JointPass:
        found = JointPass(n_groups=self.dataset.n_groups, names=self.dataset.feature_names,
                          slot_values=self.slot_values, heads=heads, coef=coef, firth=firth, per_group=per_group,
                          first=first, cache=self.cache)
        accumulate(self.dataset, Fused([found, *extras]) if extras else found)
        return found


def fit_joint(dataset: HSIDataset | ChunkSource, *, priority: Sequence[int], slot_values: NDArray[np.int64] | None,
              extras: Sequence[Accumulator] = (), groups: bool = True) -> JointFit:
    """Fit the joint model of every head of ``dataset``; its first pass also feeds ``extras`` (other reductions).

    ``priority`` orders the design's columns (the features in the data's order, then the slots) from the first to
    keep to the first to leave out when they are aliased. ``groups=False`` skips the per-group sums (a start).
    """
    names = dataset.feature_names
    plan = _Plan(dataset, (*names, *(() if slot_values is None else slot_column_names(slot_values.tolist()))),
                 slot_values, DesignCache() if isinstance(dataset, HSIDataset) else None)
    n_heads, n_columns = dataset.n_heads, len(plan.columns)
    heads = np.arange(n_heads)
    coef = np.zeros((n_heads, n_columns))
    firth = np.zeros(n_heads, dtype=bool)
    sample_size = next((size for size in (SAMPLE_SCENARIOS, FIRST_SCENARIOS) if dataset.n_scenarios > size), 0)
    if sample_size:  # start from the fit on the first scenarios, in memory
        sample = (dataset.sample(sample_size) if isinstance(dataset, ChunkSource) else
                  dataset.select(scenarios=np.arange(sample_size)))
        start = fit_joint(sample, priority=priority, slot_values=slot_values, groups=False)
        coef, firth = np.nan_to_num(start.coef), np.array([m == "firth" for m in start.method])
    first = plan.run(heads, coef, firth, np.zeros(n_heads, dtype=bool), first=True, extras=extras)
    passes = 1
    aliasing = choose_columns(first.cross, plan.columns, priority)
    cols = np.asarray(aliasing.kept, dtype=np.intp)
    kept = np.isin(np.arange(n_columns), cols)
    if np.any(coef[:, ~kept] != 0):  # the start used a column left out here: evaluate again without it
        coef = np.where(kept, coef, 0.0)
        first, passes = plan.run(heads, coef, firth, np.zeros(n_heads, dtype=bool), first=True), passes + 1
    newton = _Newton(coef.copy(), cols, _support_singular(first, cols), groups)
    newton.absorb(first)
    limit = MAX_SAMPLE_ITERATIONS if dataset.n_scenarios <= SAMPLE_SCENARIOS else MAX_PASSES
    while newton.active.any() and passes < limit:
        chosen = np.flatnonzero(newton.active)
        newton.absorb(plan.run(chosen, newton.coef[chosen], newton.firth[chosen], newton.per_group[chosen]))
        passes += 1
    return _result(dataset, plan.columns, aliasing, newton, first, passes, sample_size)


def _result(dataset: HSIDataset | ChunkSource, columns: tuple[str, ...], aliasing: Aliasing, newton: _Newton,
            first: JointPass, passes: int, sample_size: int) -> JointFit:
    """The fit's result; a head that did not converge is named in a warning (not for a start: the fit on the whole
    data goes on from it)."""
    n_groups, n_heads, k = dataset.n_groups, dataset.n_heads, len(aliasing.kept)
    kept = list(aliasing.kept)
    coef = np.full((n_heads, len(columns)), np.nan)
    information = np.full((n_heads, k, k), np.nan)
    scores = np.zeros((n_groups, n_heads, k))
    group_information = np.zeros((n_groups, n_heads, k, k))
    used = np.zeros((n_groups, n_heads))
    method, unconverged = [], []
    for h in range(n_heads):
        if first.used[h] == 0:
            method.append("none")
            continue
        coef[h, kept] = newton.coef[h, kept]
        method.append("firth" if newton.firth[h] else "mle")
        final = newton.final[h]
        if newton.active[h]:
            unconverged.append(dataset.head_names[h])
        elif final is not None:
            information[h] = final["information"]
            scores[:, h], group_information[:, h], used[:, h] = (final["scores"], final["group_information"],
                                                                 final["used"])
    notes = [column.describe() for column in aliasing.left_out]
    if unconverged and newton.groups:
        warnings.warn(f"the joint model of heads {unconverged} did not converge in {passes} passes; their "
                      "intervals and tests are left undefined.", ConvergenceWarning, stacklevel=3)
    if unconverged:
        notes.append(f"The joint model of heads {', '.join(unconverged)} did not converge in {passes} passes.")
    return JointFit(columns=columns, n_features=len(dataset.feature_names), aliasing=aliasing, coef=coef,
                    information=information, scores=scores, group_information=group_information, used=used,
                    method=tuple(method), converged=~newton.active, passes=passes, sample_scenarios=sample_size,
                    zeros=first.zeros.copy(), left_out_entities=first.left_out, entities=first.entities,
                    notes=tuple(notes))
