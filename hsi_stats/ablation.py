r"""Does the policy use the head? The effect of removing heads on its actions, with inference by episode.

Attention weights say where a head looks, not that the policy uses what it sees (Jain and Wallace 2019); the heads
that carry a model are those whose removal changes what it does (Michel et al. 2019; Voita et al. 2019).

Open loop (:func:`ablation_effects`): the policy's action probabilities on the same observations with and without a
head (or a named set of heads), paired step by step. For step t with intact probabilities :math:`p_t` and ablated
:math:`q_t` over the A actions,

- ``changed``: :math:`c_t = [\arg\max p_t \ne \arg\max q_t]`, whether the most probable action changes;
- ``tv``: :math:`\mathrm{TV}_t = \tfrac12 \sum_a |p_{ta} - q_{ta}|`, the total-variation distance;

each averaged over the steps, with the clustered Wilson interval of a rate and of a bounded mean
(:func:`hsi_stats.inference.rates.clustered_rate_interval`), which stays open at 0: a head whose removal changed no
action in G episodes gets :math:`[0, q^2/(G + q^2)]`, not [0, 0].

Tied to the labels: for a head whose label validated, is removing it felt more where its label says it works? Its
target is *salient* in a step when the label's target is present and stands out there: for an indicator, some but
not all valid entities are flagged (unflagged, for a label whose catalog sign is negative); for a continuous
feature, the step's most extreme valid entity in the label's direction is more extreme than in the median step (the
nearest vehicle nearer than the median step's nearest, the lowest TTC below the median step's lowest TTC): a split
of the steps with at least two valid entities into halves. The comparison is the share of changed actions in the
salient steps minus that in the others, with its interval from resampling episodes (the median split recomputed in
every resample: :func:`hsi_stats.inference.episodes.split_share_intervals`) and a two-sided bootstrap test,
adjusted over the heads (Holm). Where every resample gives the same difference (no changed action anywhere, say),
the interval is Newcombe's (1998) hybrid of the two shares' clustered Wilson intervals instead,
:math:`[d - \sqrt{(p_1 - l_1)^2 + (u_2 - p_2)^2},\ d + \sqrt{(u_1 - p_1)^2 + (p_2 - l_2)^2}]`.

Closed loop (:func:`episode_effects`, run by :func:`hsi_stats.capture.highway.ablation_episodes`): the returns and
crashes of episodes with and without a head, paired by their seed; the mean paired difference with its interval and
a sign-flip test, adjusted over the heads (step-down max-T from the same sign patterns).

This module computes from arrays; removing heads from a PyTorch model is :func:`hsi_stats.capture.ablate`, imported
only when :func:`ablation_effects` runs a model.

References
----------
.. [1] Jain, S. and Wallace, B. C. (2019). Attention is not explanation. NAACL-HLT, 3543-3556.
   https://doi.org/10.18653/v1/N19-1357
.. [2] Michel, P., Levy, O. and Neubig, G. (2019). Are sixteen heads really better than one? NeurIPS 32.
.. [3] Voita, E., Talbot, D., Moiseev, F., Sennrich, R. and Titov, I. (2019). Analyzing multi-head self-attention:
   specialized heads do the heavy lifting, the rest can be pruned. ACL, 5797-5808. https://doi.org/10.18653/v1/P19-1580
.. [4] Newcombe, R. G. (1998). Interval estimation for the difference between independent proportions: comparison
   of eleven methods. Statistics in Medicine 17(8), 873-890.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ._validation import HSIDataError, OptionError, normalize_rng
from .agreement import LabelTarget
from .focus import target_entities
from .inference.episodes import paired_sign_flip, split_share_intervals
from .inference.multitest import adjust_pvalues
from .inference.rates import clustered_rate_interval
from .settings import AnalysisSettings, check_option

__all__ = ["ABLATION_COLUMNS", "EPISODE_COLUMNS", "TARGETED_COLUMNS", "AblationEffects", "AblationEpisodes",
           "ablation_effects", "ablation_results", "action_effects", "episode_effects", "salience_scores",
           "salient_steps"]

FloatArray = NDArray[np.float64]
#: Columns of :attr:`AblationEffects.table`.
ABLATION_COLUMNS = ("head", "changed", "changed_ci_low", "changed_ci_high", "tv", "tv_ci_low", "tv_ci_high")
#: Columns of :attr:`AblationEffects.targeted`.
TARGETED_COLUMNS = ("head", "label", "target", "salient_steps", "changed_salient", "changed_other", "difference",
                    "ci_low", "ci_high", "p_value", "p_adjusted")
#: Columns of :attr:`AblationEpisodes.table`.
EPISODE_COLUMNS = ("head", "return_mean", "crash_rate", "return_delta", "return_delta_ci_low", "return_delta_ci_high",
                   "crash_delta", "crash_delta_ci_low", "crash_delta_ci_high", "return_p_value", "return_p_adjusted",
                   "crash_p_value", "crash_p_adjusted")


def _ratio(numerator: FloatArray, denominator: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1.0), np.nan)


def action_effects(intact: ArrayLike, ablated: ArrayLike) -> tuple[NDArray[np.bool_], FloatArray]:
    """Per step, whether the most probable action changes and the total-variation distance, from the action
    probabilities (B, A) of the intact and the ablated policy (ties go to the first action, as ``argmax``).

    Examples
    --------
    >>> changed, tv = action_effects([[0.7, 0.3], [0.5, 0.5]], [[0.4, 0.6], [0.5, 0.5]])
    >>> changed.tolist(), tv.round(2).tolist()
    ([True, False], [0.3, 0.0])
    """
    p, q = np.asarray(intact, dtype=float), np.asarray(ablated, dtype=float)
    return p.argmax(axis=1) != q.argmax(axis=1), 0.5 * np.abs(p - q).sum(axis=1)


def _probabilities(values: Any, n: int | None, condition: str) -> FloatArray:
    array = np.asarray(values.detach().cpu().numpy() if hasattr(values, "detach") else values, dtype=float)
    if array.ndim != 2 or (n is not None and array.shape[0] != n):
        raise HSIDataError(f"`predict` must return action probabilities (B, A) for the {n or 'B'} observations, but "
                           f"it returned shape {array.shape} ({condition}).")
    if not np.isfinite(array).all() or (array < 0).any() or not np.allclose(array.sum(axis=1), 1.0, atol=1e-4):
        raise HSIDataError(f"`predict` must return action probabilities (non-negative, each row summing to 1), but "
                           f"its rows sum to {array.sum(axis=1).min():.4g}..{array.sum(axis=1).max():.4g} "
                           f"({condition}).")
    return array


@dataclass(frozen=True, eq=False)
class AblationEffects:
    """What removing each head (and each named set of heads) does to the policy's actions, open loop.

    Attributes
    ----------
    table : DataFrame
        One row per head in head order, then per named set (:data:`ABLATION_COLUMNS`): ``changed`` the share of
        observations whose most probable action changes, ``tv`` the mean total-variation distance between the two
        action distributions, each with its clustered Wilson interval over the episodes.
    targeted : DataFrame or None
        With the labels (``result=`` or ``registry=`` and the observations' ``features``): per head whose label
        validated, the share of changed actions where its label's target is salient and elsewhere, their
        difference with its interval, p-value and Holm-adjusted p-value (:data:`TARGETED_COLUMNS`); empty, with
        a warning, when no head removed has a validated label.
    changed, tv : mapping of str to ndarray (B,)
        Per condition, the per-step values.
    conditions : mapping of str to tuple of str
        Per condition, the heads it removed (as :func:`hsi_stats.capture.ablate` names them).
    mode : str
    confidence_level : float
    n_resamples : int
        Bootstrap resamples of the targeted comparison.
    n_groups : int
        Episodes among the observations (the unit of the intervals).
    """

    table: pd.DataFrame
    targeted: pd.DataFrame | None
    changed: Mapping[str, NDArray[np.bool_]]
    tv: Mapping[str, FloatArray]
    conditions: Mapping[str, tuple[str, ...]]
    mode: str
    confidence_level: float
    n_resamples: int
    n_groups: int

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


def _conditions(model: Any, heads: Sequence[str | int] | None, sets: Mapping[str, Sequence[str | int]] | None,
                options: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Condition name -> the heads it removes (named as the recorder names them): every head (or ``heads``)
    alone, then the named ``sets``."""
    from .capture.ablation import ablate, attention_modules

    if heads is None:
        modules = attention_modules(model, options.get("projection"), options.get("names"))
        heads = [f"{name}:h{k}" for name, module in modules.items()
                 for k in range(_n_heads(module, options.get("projection")))]
    conditions: dict[str, tuple[str, ...]] = {}
    for head in heads:
        named = ablate(model, [head], **options).heads
        conditions[named[0]] = named
    for name, members in (sets or {}).items():
        if name in conditions:
            raise OptionError(f"The names of `sets` must differ from the heads', but {name!r} is a head.")
        conditions[str(name)] = ablate(model, list(members), **options).heads
    return conditions


def _n_heads(module: Any, projection: Any) -> int:
    from torch import nn

    return int(module.num_heads) if isinstance(module, nn.MultiheadAttention) else int(projection(module)[2])


def ablation_effects(predict: Callable[[Any], Any], observations: Any, model: Any, *, groups: ArrayLike,
                     heads: Sequence[str | int] | None = None, sets: Mapping[str, Sequence[str | int]] | None = None,
                     mode: str = "zero", reference: Any = None, result: Any = None,
                     registry: str | Mapping[str, Any] | None = None,
                     features: Mapping[str, ArrayLike] | None = None, mask: ArrayLike | None = None,
                     n_resamples: int | None = None, confidence_level: float | None = None, rng: object = None,
                     batch: int | None = None, names: Sequence[str] | None = None, projection: Any = None,
                     head_outputs: Any = None) -> AblationEffects:
    """The effect of removing each head of ``model`` on ``predict``'s actions, paired on the same observations.

    Parameters
    ----------
    predict : callable
        ``predict(observations) -> (B, A)`` action probabilities of a discrete action space; it runs ``model`` and
        is called once on all the observations per condition (the intact policy, then each head removed).
    observations : any
        What ``predict`` takes: B observations.
    model : torch.nn.Module
        The model ``predict`` runs (its heads are removed in place by :func:`hsi_stats.capture.ablate` and put back
        after each condition).
    groups : array_like (B,)
        The episode of each observation: the unit the intervals resample.
    heads : sequence of head names or indices, optional
        The heads removed one at a time; every head of every attention module by default.
    sets : mapping of str to sequences of heads, optional
        Named sets of heads removed together, reported after the single heads.
    mode : {"zero", "mean"}, default "zero"
        How a head is removed (:func:`hsi_stats.capture.ablate`); ``"mean"`` replaces its output by its mean over
        ``reference`` (observations ``predict`` takes; the ``observations`` themselves by default).
    result, registry : optional
        The analysis whose validated labels the targeted comparison uses: an :class:`~hsi_stats.HSIResult` or a
        registry (``head_functions.json`` or its mapping); with ``features`` (name -> (B, V)) and ``mask`` (B, V)
        of the observations' entities.
    n_resamples, confidence_level : optional
        Resamples of the episodes (the targeted comparison) and the level of the intervals; defaults from
        :class:`~hsi_stats.AnalysisSettings`.
    rng : seed or Generator, optional
    batch : int, optional
        Resamples per batch (memory only).
    names, projection, head_outputs : optional
        Passed to :func:`hsi_stats.capture.ablate` (custom attention modules).

    Returns
    -------
    AblationEffects
    """
    from .capture.ablation import ablate

    defaults = AnalysisSettings()
    resamples = check_option("n_resamples", defaults.n_resamples if n_resamples is None else n_resamples)
    level = check_option("confidence_level", defaults.confidence_level if confidence_level is None else
                         confidence_level)
    generator = normalize_rng(rng)
    options = {"names": names, "projection": projection, "head_outputs": head_outputs}
    conditions = _conditions(model, heads, sets, options)
    intact = _probabilities(predict(observations), None, "intact policy")
    codes = _group_codes(groups, intact.shape[0])
    reference_inputs = observations if reference is None else reference
    changed: dict[str, NDArray[np.bool_]] = {}
    tv: dict[str, FloatArray] = {}
    for name, members in conditions.items():
        with ablate(model, list(members), mode, (lambda: predict(reference_inputs)) if mode == "mean" else None,
                    **options):
            ablated = _probabilities(predict(observations), intact.shape[0], f"without {name}")
        changed[name], tv[name] = action_effects(intact, ablated)
    table = _effects_table(changed, tv, codes, level)
    targeted = None
    if result is not None or registry is not None:
        if features is None:
            raise OptionError("the targeted comparison needs `features` (name -> (B, V)) of the observations' "
                              "entities, with `result` or `registry`.")
        targets = label_targets(result=result, registry=registry)
        targeted = _targeted(changed, targets, features, mask, codes, resamples, level, generator, batch)
    return AblationEffects(table, targeted, changed, tv, conditions, mode, level, resamples, int(codes.max()) + 1)


def _group_codes(groups: ArrayLike, n: int) -> NDArray[np.intp]:
    labels = np.asarray(groups)
    if labels.shape != (n,):
        raise HSIDataError(f"`groups` must label the {n} observations (shape ({n},)), but it has shape "
                           f"{labels.shape}.")
    codes = np.unique(labels, return_inverse=True)[1].reshape(-1)
    if codes.max(initial=0) < 1:
        raise HSIDataError("the intervals resample episodes: `groups` must hold at least 2 episodes, but it has 1.")
    return codes


def _per_group(values: FloatArray, codes: NDArray[np.intp]) -> FloatArray:
    """Per-group sums (G, ...) of per-step values (B, ...)."""
    out = np.zeros((int(codes.max()) + 1, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


def _effects_table(changed: Mapping[str, NDArray[np.bool_]], tv: Mapping[str, FloatArray], codes: NDArray[np.intp],
                   level: float) -> pd.DataFrame:
    names = list(changed)
    steps = _per_group(np.ones((codes.size, len(names))), codes)
    found = {"changed": clustered_rate_interval(_per_group(np.stack([changed[n] for n in names], axis=1)
                                                           .astype(float), codes), steps, confidence_level=level),
             "tv": clustered_rate_interval(_per_group(np.clip(np.stack([tv[n] for n in names], axis=1), 0.0, 1.0),
                                                      codes), steps, confidence_level=level)}
    return pd.DataFrame({"head": names, **{f"{measure}{suffix}": values[k] for measure, values in found.items()
                                           for k, suffix in enumerate(("", "_ci_low", "_ci_high"))}})


def label_targets(*, result: Any = None, registry: str | Mapping[str, Any] | None = None) -> dict[str, LabelTarget]:
    """Head name -> the target of its validated label, from an :class:`~hsi_stats.HSIResult` or a registry."""
    if result is not None:
        found = {}
        for h, head in enumerate(result.heads.to_dict(orient="records")):
            words = head.get("label_focus_target")
            if head["validated"] and isinstance(words, str) and isinstance(head.get("label_feature"), str):
                found[str(head["head"])] = LabelTarget(h, str(head["label_feature"]),
                                                       1 if words in ("flagged", "highest") else -1,
                                                       words in ("flagged", "not flagged"))
        return found
    from .explain import load_registry

    if registry is None:
        raise OptionError("label_targets needs `result` or `registry`.")
    entries = load_registry(registry)
    found = {}
    for key, entry in entries.items():
        block = entry.get("agreement") if isinstance(entry, Mapping) else None
        if str(key).isdigit() and entry.get("validated") and isinstance(block, Mapping) and "feature" in block:
            found[str(entry.get("head", f"h{key}"))] = LabelTarget(int(key), str(block["feature"]),
                                                                   int(block["direction"]), bool(block["indicator"]))
    return found


def salience_scores(target: LabelTarget, features: Mapping[str, ArrayLike],
                    mask: ArrayLike | None) -> tuple[FloatArray, bool]:
    """How much a label's target stands out in each step (B,), and whether the scores are split at their median.

    For a continuous feature, the most extreme valid entity's value in the label's direction (``-value`` for a
    label on low values), split at the median over the steps; for an indicator, 1 where some but not all valid
    entities are targets, split at 0. A step without the target (fewer than two valid entities, or no target, or
    all) scores ``-inf``.
    """
    values = np.asarray(features[target.feature], dtype=float)
    valid = np.ones(values.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if values.shape != valid.shape or values.ndim != 2:
        raise HSIDataError(f"`features[{target.feature!r}]` and `mask` must have the same shape (B, V), but they have "
                           f"{values.shape} and {valid.shape}.")
    valid = valid & ~np.isnan(values)
    chosen = target_entities(values, valid, target.indicator, target.direction)
    k, n = chosen.sum(axis=1), valid.sum(axis=1)
    present = (n >= 2) & (k > 0) & (k < n)
    if target.indicator:
        return np.where(present, 1.0, -np.inf), False
    extreme = np.where(valid, values * target.direction, -np.inf).max(axis=1)
    return np.where(present, extreme, -np.inf), True


def salient_steps(target: LabelTarget, features: Mapping[str, ArrayLike], mask: ArrayLike | None) -> NDArray[np.bool_]:
    """Steps (B,) in which a label's target is present and stands out (see the module's documentation).

    Examples
    --------
    >>> ttc = np.array([[1.0, 5.0, 5.0], [5.0, 5.0, 4.0], [2.0, 5.0, 5.0], [0.5, 3.0, 6.0]])
    >>> salient_steps(LabelTarget(0, "ttc", -1, False), {"ttc": ttc}, None).tolist()  # lowest TTCs 1, 4, 2, 0.5
    [True, False, False, True]
    >>> salient_steps(LabelTarget(0, "is_left", 1, True), {"is_left": np.array([[0.0, 1.0], [0.0, 0.0]])},
    ...               None).tolist()
    [True, False]
    """
    scores, thresholded = salience_scores(target, features, mask)
    finite = scores[np.isfinite(scores)]
    threshold = (np.median(finite) if finite.size else np.inf) if thresholded else 0.0
    return scores > threshold


def _targeted(changed: Mapping[str, NDArray[np.bool_]], targets: Mapping[str, LabelTarget],
              features: Mapping[str, ArrayLike], mask: ArrayLike | None, codes: NDArray[np.intp], n_resamples: int,
              level: float, rng: np.random.Generator, batch: int | None) -> pd.DataFrame:
    names = [name for name in changed if name in targets]
    if not names:
        warnings.warn(f"no head removed has a validated label, so the targeted comparison is empty: the heads removed "
                      f"are {list(changed)[:8]}, the validated ones {list(targets)[:8]} (names as the recorder gives "
                      "them).", UserWarning, stacklevel=3)
        return pd.DataFrame({column: [] for column in TARGETED_COLUMNS})
    scored = [salience_scores(targets[name], features, mask) for name in names]
    scores = np.stack([score for score, _ in scored], axis=1)  # (B, m)
    hits = np.stack([changed[name] for name in names], axis=1).astype(float)
    estimate, low, high, replicates = split_share_intervals(hits, scores, [split for _, split in scored], codes,
                                                            n_resamples=n_resamples, confidence_level=level,
                                                            rng=rng, batch=batch)
    low, high = _open_degenerate(hits, [salient_steps(targets[name], features, mask) for name in names], codes,
                                 estimate, low, high, level)
    difference = replicates[:, 2]
    below = (1 + (difference <= 0).sum(axis=0)) / (1 + difference.shape[0])
    above = (1 + (difference >= 0).sum(axis=0)) / (1 + difference.shape[0])
    p = np.where(np.isnan(estimate[2]), np.nan, np.minimum(1.0, 2 * np.minimum(below, above)))
    salient = [salient_steps(targets[name], features, mask).sum() for name in names]
    return pd.DataFrame({
        "head": names, "label": [targets[n].feature for n in names], "target": [targets[n].words for n in names],
        "salient_steps": salient, "changed_salient": estimate[0], "changed_other": estimate[1],
        "difference": estimate[2], "ci_low": low[2], "ci_high": high[2], "p_value": p,
        "p_adjusted": adjust_pvalues(p, "holm"),
    })


def _open_degenerate(hits: FloatArray, salient: Sequence[NDArray[np.bool_]], codes: NDArray[np.intp],
                     estimate: FloatArray, low: FloatArray, high: FloatArray,
                     level: float) -> tuple[FloatArray, FloatArray]:
    """The difference's bounds, with Newcombe's hybrid interval where the bootstrap's collapsed to a point."""
    low, high = low.copy(), high.copy()
    for j, where in enumerate(salient):
        if not (np.isfinite(low[2, j]) and low[2, j] == high[2, j]):
            continue
        limits = [clustered_rate_interval(_per_group(hits[:, j] * side, codes), _per_group(side.astype(float), codes),
                                          confidence_level=level) for side in (where, ~where)]
        (p1, l1, u1), (p2, l2, u2) = ([float(v) for v in found] for found in limits)
        low[2, j] = estimate[2, j] - np.hypot(p1 - l1, u2 - p2)
        high[2, j] = estimate[2, j] + np.hypot(u1 - p1, p2 - l2)
    return low, high


@dataclass(frozen=True, eq=False)
class AblationEpisodes:
    """Closed-loop episodes with and without each head, paired by seed.

    Attributes
    ----------
    table : DataFrame
        One row per condition, the intact policy (``"none"``) first (:data:`EPISODE_COLUMNS`): mean return and
        crash rate; the paired differences (ablated minus intact) of return and crash with their intervals,
        sign-flip p-values and step-down max-T adjusted p-values over the heads.
    returns, crashes : DataFrame
        Per episode (rows, by reset seed) and condition (columns): the undiscounted return, and whether it crashed.
    mode : str
        How the heads were removed.
    confidence_level : float
    n_resamples : int
        Sign patterns of the tests (all ``2**E`` of them when they are fewer) and bootstrap resamples.
    """

    table: pd.DataFrame
    returns: pd.DataFrame
    crashes: pd.DataFrame
    mode: str = "zero"
    confidence_level: float = 0.95
    n_resamples: int = 0

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()


def episode_effects(returns: pd.DataFrame, crashes: pd.DataFrame, *, n_resamples: int | None = None,
                    confidence_level: float | None = None, rng: object = None,
                    mode: str = "zero") -> AblationEpisodes:
    """The closed-loop table from per-episode returns and crashes (rows: episodes; columns: ``"none"`` for the
    intact policy, then each condition), paired by row; ``mode`` records how the heads were removed."""
    defaults = AnalysisSettings()
    resamples = check_option("n_resamples", defaults.n_resamples if n_resamples is None else n_resamples)
    level = check_option("confidence_level", defaults.confidence_level if confidence_level is None else
                         confidence_level)
    if "none" not in returns.columns or list(returns.columns) != list(crashes.columns) or len(returns) < 2:
        raise HSIDataError("`returns` and `crashes` must have the same columns, 'none' (the intact policy) among "
                           f"them, and at least 2 episodes, but they have {list(returns.columns)}, "
                           f"{list(crashes.columns)} and {len(returns)} rows.")
    generator = normalize_rng(rng)
    ablated = [c for c in returns.columns if c != "none"]
    base_return, base_crash = returns["none"].to_numpy(float), crashes["none"].to_numpy(float)
    tested = {"return": paired_sign_flip(returns[ablated].to_numpy(float) - base_return[:, None],
                                         n_resamples=resamples, confidence_level=level, rng=generator),
              "crash": paired_sign_flip(crashes[ablated].to_numpy(float) - base_crash[:, None],
                                        n_resamples=resamples, confidence_level=level, rng=generator)}
    rows = [{"head": "none", "return_mean": float(base_return.mean()), "crash_rate": float(base_crash.mean())}]
    for i, name in enumerate(ablated):
        row: dict[str, Any] = {"head": name, "return_mean": float(returns[name].mean()),
                               "crash_rate": float(crashes[name].astype(float).mean())}
        for key, found in tested.items():
            row.update({f"{key}_delta": found.mean[i], f"{key}_delta_ci_low": found.ci_low[i],
                        f"{key}_delta_ci_high": found.ci_high[i], f"{key}_p_value": found.p_value[i],
                        f"{key}_p_adjusted": found.p_adjusted[i]})
        rows.append(row)
    table = pd.DataFrame(rows).reindex(columns=list(EPISODE_COLUMNS))
    return AblationEpisodes(table, returns, crashes.astype(bool), mode, level, resamples)


def ablation_results(ablation: Any) -> list[AblationEffects | AblationEpisodes]:
    """The ablation results given to an export or a report (one result, a sequence of them, or None) as a list,
    checked; at most one of each kind."""
    if ablation is None:
        return []
    given = [ablation] if isinstance(ablation, (AblationEffects, AblationEpisodes)) else list(ablation)
    wrong = [type(item).__name__ for item in given if not isinstance(item, (AblationEffects, AblationEpisodes))]
    if wrong:
        raise TypeError(f"The value for `ablation` must hold AblationEffects or AblationEpisodes, but {wrong} "
                        "were passed.")
    for kind in (AblationEffects, AblationEpisodes):
        if sum(isinstance(item, kind) for item in given) > 1:
            raise OptionError(f"The value for `ablation` must hold at most one {kind.__name__}, but it holds more.")
    return given
