"""An independent implementation of the joint model, for the tests: it shares no code with ``hsi_stats``.

Everything is a plain loop over scenarios: percentiles from :func:`scipy.stats.rankdata`, indicators as 0/1,
aliased columns left out by the variance-inflation factors of :mod:`statsmodels`, and a damped Newton method (step
halving) on the fractional multinomial log-likelihood, optionally with Firth's penalty (its gradient from the third
central moments, written out per entity). The cluster jackknife repeats the one-step leave-one-group-out shift from
this loop's own per-group scores and informations.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata
from statsmodels.stats.outliers_influence import variance_inflation_factor


def reference_design(features: Mapping[str, np.ndarray], mask: np.ndarray, names: Sequence[str],
                     indicators: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Covariates (S, V, K): percentiles of continuous features among the entities with no NaN, indicators 0/1."""
    n_scenarios, n_slots = mask.shape
    valid = mask.copy()
    for name in names:
        valid &= ~np.isnan(features[name])
    z = np.zeros((n_scenarios, n_slots, len(names)))
    for s in range(n_scenarios):
        chosen = np.flatnonzero(valid[s])
        for k, name in enumerate(names):
            values = features[name][s, chosen]
            if name in indicators:
                z[s, chosen, k] = values
            elif chosen.size:
                z[s, chosen, k] = (rankdata(values) - 0.5) / chosen.size
    return z, valid


def reference_columns(z: np.ndarray, valid: np.ndarray, priority: Sequence[int], max_vif: float = 10.0) -> list[int]:
    """The columns kept: no within-scenario variation left out, then the last-listed column whose VIF exceeds
    ``max_vif``, one at a time (statsmodels' VIF on the within-scenario centred rows)."""
    rows = []
    for s in range(z.shape[0]):
        chosen = z[s, valid[s]]
        if chosen.shape[0] >= 2:
            rows.append(chosen - chosen.mean(axis=0))
    centred = np.concatenate(rows)
    spread = (centred**2).sum(axis=0)
    kept = [k for k in priority if spread[k] > 1e-12 * spread.max()]
    while len(kept) > 1:
        with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
            warnings.simplefilter("ignore")
            vif = [variance_inflation_factor(centred[:, kept], i) for i in range(len(kept))]
        offenders = [k for k, value in zip(kept, vif, strict=True) if not value <= max_vif]
        if not offenders:
            break
        kept.remove(offenders[-1])
    return sorted(kept)


@dataclass
class ReferenceFit:
    coef: np.ndarray
    scores: dict[object, np.ndarray]
    informations: dict[object, np.ndarray]
    information: np.ndarray
    iterations: int


def _evaluate(attention: np.ndarray, z: np.ndarray, valid: np.ndarray, groups: np.ndarray, beta: np.ndarray,
              firth: bool) -> tuple[float, np.ndarray, np.ndarray, np.ndarray, dict, dict, dict]:
    k = z.shape[2]
    loglik, score, information, third = 0.0, np.zeros(k), np.zeros((k, k)), np.zeros((k, k, k))
    scores: dict[object, np.ndarray] = {}
    informations: dict[object, np.ndarray] = {}
    counted: dict[object, float] = {}
    for s in range(z.shape[0]):
        chosen = np.flatnonzero(valid[s])
        mass = np.abs(attention[s, chosen])
        if chosen.size < 2 or mass.sum() == 0:
            continue
        shares = mass / mass.sum()
        rows = z[s, chosen]
        utility = rows @ beta
        p = np.exp(utility - utility.max())
        p /= p.sum()
        loglik += float(shares @ np.log(p))
        g = rows.T @ (shares - p)
        centred = rows - p @ rows
        info = np.zeros((k, k))
        for v in range(chosen.size):
            info += p[v] * np.outer(centred[v], centred[v])
            if firth:
                third += p[v] * np.einsum("j,k,l->jkl", centred[v], centred[v], centred[v])
        score += g
        information += info
        key = groups[s]
        scores[key] = scores.get(key, np.zeros(k)) + g
        informations[key] = informations.get(key, np.zeros((k, k))) + info
        counted[key] = counted.get(key, 0.0) + 1.0
    return loglik, score, information, third, scores, informations, counted


def reference_fit(attention: np.ndarray, z: np.ndarray, valid: np.ndarray, groups: np.ndarray, *,
                  firth: bool = False, tolerance: float = 1e-13, max_iterations: int = 500) -> ReferenceFit:
    """The (penalised) fractional conditional logit of one head by damped Newton, looping over scenarios."""
    beta = np.zeros(z.shape[2])

    def objective(found: tuple) -> tuple[float, np.ndarray]:
        loglik, score, information, third = found[:4]
        if not firth:
            return loglik, score
        inverse = np.linalg.inv(information)
        penalty = 0.5 * np.array([np.sum(inverse * third[j]) for j in range(len(beta))])
        return loglik + 0.5 * np.linalg.slogdet(information)[1], score + penalty

    found = _evaluate(attention, z, valid, groups, beta, firth)
    value, gradient = objective(found)
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        step = np.linalg.solve(found[2], gradient)
        length = 1.0
        while True:
            trial = _evaluate(attention, z, valid, groups, beta + length * step, firth)
            trial_value, trial_gradient = objective(trial)
            if trial_value >= value - 1e-14 * abs(value) or length < 1e-12:
                break
            length /= 2
        beta = beta + length * step
        found, value, gradient = trial, trial_value, trial_gradient
        if np.abs(length * step).max() < tolerance * max(1.0, np.abs(beta).max()):
            break
    scores = dict(found[4])
    if firth:  # the penalty's gradient shared out over the groups by their scenarios
        total = sum(found[6].values())
        penalty = gradient - found[1]
        scores = {key: value + penalty * found[6][key] / total for key, value in scores.items()}
    return ReferenceFit(beta, scores, dict(found[5]), found[2], iterations)


def reference_jackknife_se(fit: ReferenceFit) -> np.ndarray:
    """CV3 standard errors: one Newton step from the estimate without each group, (G - 1)/G times their spread."""
    keys = sorted(fit.scores, key=str)
    shifts = np.array([-np.linalg.solve(fit.information - fit.informations[key], fit.scores[key]) for key in keys])
    centred = shifts - shifts.mean(axis=0)
    n = len(keys)
    return np.sqrt(np.diag((n - 1) / n * centred.T @ centred))
