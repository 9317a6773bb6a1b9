r"""Where planted heads of known strength land in the strength bands, for every estimator and correlation.

Run with ``nox -s bands`` (or ``python benchmarks/bands.py --seed 20251201``). Writes
``benchmarks/results/bands.json`` (every number, the settings and the provenance) and
``benchmarks/results/bands.md`` (the tables of the docs) and prints the Markdown. Takes a few seconds.

Why
---
The interpretation guide reads ``|rho|`` (and the HSI) in bands: above 0.7 strong, 0.5-0.7 moderate, 0.3-0.5 weak,
below that general (:data:`hsi_stats.labels.STRENGTH_BANDS`). A band is only as meaningful as the scale of rho: a
head that puts a share ``m`` of its attention on one entity should land in the same band whether that entity is
flagged by an indicator or is the one with the lowest time to collision. This study plants heads whose strength
is known and shows where each estimator (``within``, ``pooled``, ``fisher``) and each correlation (``spearman``,
``pearson``, ``rank-feature``) puts them, beside the focus of :mod:`hsi_stats.focus` (the share on the target in
excess of uniform), which measures ``m`` directly.

What is simulated
-----------------
``--episodes`` x ``--scenarios`` scenarios (default 40 x 30), grouped in episodes (the groups matter to ``fisher``
only; scenarios are independent). Each scenario has ``n`` vehicles, ``n`` uniform on 3..8, in 8 slots. Features:

``ttc``
    distance / closing speed: distance lognormal (median 30, log-sd 0.6), closing speed lognormal (median 3,
    log-sd 0.8); 30% of the vehicles recede (TTC ``+inf``), at least one per scenario approaches. Heavy-tailed
    (log-sd of TTC about 1). Target: the lowest TTC.
``distance``, ``closing_speed``
    the two factors of ``ttc`` (closing speed negative for receding vehicles): distractors of ``ttc``.
``indicator``
    exactly one flagged vehicle per scenario: the nearest one with probability 1/2, otherwise one drawn
    uniformly, so that ``distance`` (and through it ``ttc``) is a distractor of the indicator too. Target: the
    flagged vehicle.
``indicator_1_2``
    one or two flagged vehicles (probability 1/2 each): the first drawn like ``indicator`` (independently), the
    second uniformly among the others. Target: the flagged vehicles.

Planted heads, for each target feature (``indicator``, ``indicator_1_2``, ``ttc``) and each mass
``m`` in 0.2, 0.3, ..., 1.0: a share ``m`` of the attention on the target (split equally between two flagged
vehicles), the rest ``1 - m`` over the other vehicles either exactly uniformly (``uniform``) or by a flat
Dirichlet draw (``dirichlet``; one draw per target feature shared by every ``m``, so that rows differ by ``m``
only). A ``dirichlet`` head is what real attention looks like (never exactly tied); a ``uniform`` head shows what
exact ties do to ranks. Besides: ``ttc_proportional``, attention proportional to 1 / (TTC rank within the scenario,
1 = lowest; receding vehicles share their average rank), graded rather than one-hot; and ``noise``, flat Dirichlet
attention, unrelated to any feature. With ``m <= 1/n`` a planted head does not prefer its target: at ``m = 0.2``
it looks away from it in the scenarios with 3 or 4 vehicles (with 5 vehicles and a uniform rest its attention is
flat and rho is undefined there).

What is measured
----------------
For each head and each estimator x correlation, :func:`hsi_stats.estimate` on the whole data set and on the
scenarios with each ``n`` separately: rho of the planted feature, its band, the primary feature (argmax ``|rho|``
over the five features) and whether it is the planted one. The focus of every (head, feature), in the direction a
head attending the target would show (``+`` for the indicators and ``closing_speed``, ``-`` for ``ttc`` and
``distance``), from :func:`hsi_stats.focus.focus_sums`. The theoretical caps of rho for one-hot attention (see
:func:`spearman_one_hot_cap` and :func:`rank_feature_one_hot_cap`) are computed for each ``n`` and for the realised
mix of ``n``.

How to read ``bands.md``
------------------------
Rows are heads (``m``, then the proportional and the noise head), columns estimator x correlation; a cell is the
signed rho of the planted feature and its band, followed by ``[-> name]`` when another feature has the larger
``|rho|`` (the estimator would name the wrong feature). TTC heads have a negative rho (they attend the lowest
value). The focus column is the share of attention on the target in excess of uniform: it is the same for both
feature types at the same ``m``, which is what a band should be. The caps table sets the theoretical values beside
the estimates that meet them, per ``n``; the closing lines say, per correlation, from which ``m`` each feature type
reaches each band and where it stops.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from _provenance import environment
from numpy.typing import NDArray
from scipy.stats import rankdata

from hsi_stats import HSIDataset, estimate
from hsi_stats.focus import focus_sums
from hsi_stats.labels import STRENGTH_BANDS, strength_band, strength_bands_text
from hsi_stats.settings import CORRELATIONS, ESTIMATORS

RESULTS = Path(__file__).resolve().parent / "results"
SLOTS = 8
N_RANGE = (3, 8)
MASSES = tuple(round(0.1 * k, 1) for k in range(2, 11))
RESTS = ("dirichlet", "uniform")
RECEDING_SHARE = 0.3
NEAREST_FLAGGED = 0.5
DIRICHLET_ALPHA = 1.0
#: The features a head can be planted on, and the feature type each stands for in the tables.
TARGETS = {"indicator": "indicator (one flagged)", "indicator_1_2": "indicator (1-2 flagged)",
           "ttc": "TTC (lowest)"}
#: The sign of rho (and the focus direction) of a head attending each feature's target.
DIRECTIONS = {"indicator": 1, "indicator_1_2": 1, "ttc": -1, "distance": -1, "closing_speed": 1}
FEATURES = tuple(DIRECTIONS)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]


# --------------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    """Everything that determines the numbers (recorded in the JSON)."""

    seed: int
    episodes: int
    scenarios: int


def parse_args(argv: list[str] | None = None) -> tuple[Settings, Path]:
    """Command-line options: the settings and the output folder."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=20251201, help="master seed (SeedSequence entropy)")
    parser.add_argument("--episodes", type=int, default=40, help="episodes (groups)")
    parser.add_argument("--scenarios", type=int, default=30, help="scenarios per episode")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of bands.json / bands.md")
    args = parser.parse_args(argv)
    for name in ("episodes", "scenarios"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be a positive integer, but {getattr(args, name)} was passed.")
    return Settings(args.seed, args.episodes, args.scenarios), args.out


# --------------------------------------------------------------------------------------------------- the world
@dataclass(frozen=True)
class World:
    """Simulated scenarios: vehicle counts, validity, episodes, feature values and each target feature's targets."""

    n: NDArray[np.int64]  # (S,)
    mask: BoolArray  # (S, V)
    groups: NDArray[np.int64]  # (S,)
    features: dict[str, FloatArray]  # (S, V) each, NaN on empty slots
    targets: dict[str, BoolArray]  # (S, V) each, for the features of TARGETS


def _random_valid_slot(rng: np.random.Generator, allowed: BoolArray) -> NDArray[np.int64]:
    """One slot per scenario drawn uniformly among the ``allowed`` ones (every row must allow one)."""
    keys = np.where(allowed, rng.random(allowed.shape), -1.0)
    return keys.argmax(axis=1)


def _flag(rng: np.random.Generator, distance: FloatArray, mask: BoolArray) -> NDArray[np.int64]:
    """The flagged slot: the nearest vehicle with probability ``NEAREST_FLAGGED``, otherwise a uniform draw."""
    nearest = np.where(mask, distance, np.inf).argmin(axis=1)
    uniform = _random_valid_slot(rng, mask)
    return np.where(rng.random(mask.shape[0]) < NEAREST_FLAGGED, nearest, uniform)


def simulate_world(rng: np.random.Generator, settings: Settings) -> World:
    """Draw the scenarios of the module docstring."""
    n_scenarios = settings.episodes * settings.scenarios
    shape = (n_scenarios, SLOTS)
    rows = np.arange(n_scenarios)
    n = rng.integers(N_RANGE[0], N_RANGE[1] + 1, size=n_scenarios)
    mask = np.arange(SLOTS)[None, :] < n[:, None]

    distance = rng.lognormal(np.log(30.0), 0.6, shape)
    speed = rng.lognormal(np.log(3.0), 0.8, shape)
    receding = rng.random(shape) < RECEDING_SHARE
    # One approaching vehicle in every scenario, so that the lowest TTC (the target) is defined.
    approaching = _random_valid_slot(rng, mask)
    none_approach = ~(mask & ~receding).any(axis=1)
    receding[rows[none_approach], approaching[none_approach]] = False
    closing_speed = np.where(receding, -speed, speed)
    ttc = np.where(receding, np.inf, distance / speed)

    indicator = np.zeros(shape)
    indicator[rows, _flag(rng, distance, mask)] = 1.0
    indicator_1_2 = np.zeros(shape)
    first = _flag(rng, distance, mask)
    indicator_1_2[rows, first] = 1.0
    second = _random_valid_slot(rng, mask & (indicator_1_2 == 0.0))
    two = rng.random(n_scenarios) < 0.5
    indicator_1_2[rows[two], second[two]] = 1.0

    values = {"indicator": indicator, "indicator_1_2": indicator_1_2, "ttc": ttc, "distance": distance,
              "closing_speed": closing_speed}
    features = {name: np.where(mask, values[name], np.nan) for name in FEATURES}
    lowest = np.where(mask, ttc, np.inf).min(axis=1, keepdims=True)
    targets = {"indicator": mask & (indicator == 1.0), "indicator_1_2": mask & (indicator_1_2 == 1.0),
               "ttc": mask & (ttc == lowest)}
    return World(n, mask, np.repeat(np.arange(settings.episodes), settings.scenarios), features, targets)


# --------------------------------------------------------------------------------------------------- the heads
@dataclass(frozen=True)
class Head:
    """A planted head: its feature (None for noise), kind (mass, proportional, noise), mass and rest."""

    name: str
    feature: str | None
    kind: str
    mass: float | None = None
    rest: str | None = None


def _normalise(weights: FloatArray) -> FloatArray:
    return weights / weights.sum(axis=-1, keepdims=True)


def mass_attention(targets: BoolArray, mask: BoolArray, mass: float, rest: FloatArray) -> FloatArray:
    """Share ``mass`` split equally over the targets, ``1 - mass`` over the other valid slots by ``rest`` weights."""
    others = mask & ~targets
    k = targets.sum(axis=1, keepdims=True)
    return np.where(targets, mass / k, 0.0) + (1.0 - mass) * _normalise(np.where(others, rest, 0.0))


def plant_heads(rng: np.random.Generator, world: World) -> tuple[list[Head], FloatArray]:
    """The heads of the module docstring and their attention (S, H, V), zero on empty slots."""
    heads: list[Head] = []
    attention: list[FloatArray] = []
    for feature in TARGETS:
        # One Dirichlet draw per feature, shared by every mass: rows of a table differ by the mass only.
        rests = {"dirichlet": rng.gamma(DIRICHLET_ALPHA, size=world.mask.shape),
                 "uniform": np.ones(world.mask.shape)}
        for rest in RESTS:
            for mass in MASSES:
                heads.append(Head(f"{feature}_m{mass:.1f}_{rest}", feature, "mass", mass, rest))
                attention.append(mass_attention(world.targets[feature], world.mask, mass, rests[rest]))
    ttc_rank = rankdata(world.features["ttc"], axis=1, nan_policy="omit")
    heads.append(Head("ttc_proportional", "ttc", "proportional"))
    attention.append(_normalise(np.where(world.mask, 1.0 / np.where(world.mask, ttc_rank, 1.0), 0.0)))
    heads.append(Head("noise", None, "noise"))
    attention.append(_normalise(np.where(world.mask, rng.gamma(1.0, size=world.mask.shape), 0.0)))
    return heads, np.stack(attention, axis=1)


# --------------------------------------------------------------------------------------------------- caps
def spearman_one_hot_cap(n: NDArray[np.int64]) -> float:
    r"""Within-estimator Spearman rho of a one-hot variable against any untied variable whose extreme it marks.

    For one scenario of ``n`` entities it is :math:`\sqrt{3/(n+1)}` (the one-hot variable's ranks take two values);
    pooled over scenarios the within estimator gives
    :math:`\sqrt{3 \sum n(n-1) / \sum n(n-1)(n+1)}`. It caps a head whose target gets the most attention against
    a one-flag indicator when the other entities' attention is untied, and a head with all its mass on the lowest
    TTC (the others tied at 0).
    """
    n = np.asarray(n, dtype=float)
    return float(np.sqrt(3.0 * np.sum(n * (n - 1)) / np.sum(n * (n - 1) * (n + 1))))


def rank_feature_one_hot_cap(n: NDArray[np.int64]) -> float:
    r"""Within-estimator rank-feature rho of all the attention on the extreme of an untied continuous feature.

    Per scenario the same :math:`\sqrt{3/(n+1)}`; pooled,
    :math:`\sum \frac{n-1}{2n} / \sqrt{\sum \frac{n-1}{n} \sum \frac{n^2-1}{12 n}}` (the percentile's spread does
    not grow with ``n`` as ranks do). Ties (receding vehicles at ``+inf``) shrink the feature's spread and raise it
    slightly.
    """
    n = np.asarray(n, dtype=float)
    return float(np.sum((n - 1) / (2 * n)) / np.sqrt(np.sum((n - 1) / n) * np.sum((n**2 - 1) / (12 * n))))


def caps(n: NDArray[np.int64]) -> dict[str, Any]:
    """The theoretical values of rho for one-hot attention, per ``n`` and for the realised mix of ``n``."""
    per_n = {str(k): {"sqrt(3/(n+1))": float(np.sqrt(3 / (k + 1))), "3/(n+1)": 3 / (k + 1),
                      "1/(n-1)": 1 / (k - 1)} for k in range(N_RANGE[0], N_RANGE[1] + 1)}
    return {
        "per_n": per_n,
        "mix": {"spearman_one_hot": spearman_one_hot_cap(n), "rank_feature_one_hot": rank_feature_one_hot_cap(n)},
        "meaning": {
            "sqrt(3/(n+1))": "spearman: one-flag indicator against attention with the target on top and the others "
                             "untied; spearman and rank-feature: all attention on the lowest TTC (untied TTC)",
            "3/(n+1)": "spearman: expected rho of the target on top and the others' attention in random order "
                       "against an untied feature (TTC)",
            "1/(n-1)": "pearson: one-hot attention on the minimum of a raw feature dominated by one huge value",
        },
    }


# --------------------------------------------------------------------------------------------------- analysis
def _subset_dataset(world: World, attention: FloatArray, heads: list[Head], rows: BoolArray) -> HSIDataset:
    return HSIDataset(attention[rows], {name: values[rows] for name, values in world.features.items()},
                      mask=world.mask[rows], groups=world.groups[rows], head_names=[h.name for h in heads])


def analyse(dataset: HSIDataset, heads: list[Head], *, full: bool) -> dict[str, Any]:
    """Per estimator x correlation, the planted feature's rho, band and primary feature of every head, and the focus.

    Lists follow the order of ``heads`` (and of ``FEATURES``); None where a head has no planted feature or a value is
    undefined. With ``full``, also rho and focus of every (head, feature).
    """
    directions = np.array([[DIRECTIONS[f] for f in dataset.feature_names]] * dataset.n_heads)
    focus = focus_sums(dataset, directions).focus()
    planted = [dataset.feature_names.index(h.feature) if h.feature else None for h in heads]

    def of_planted(matrix: FloatArray) -> list[float | None]:
        return [None if f is None else _number(matrix[i, f]) for i, f in enumerate(planted)]

    out: dict[str, Any] = {"scenarios": dataset.n_scenarios, "planted_focus": of_planted(focus)}
    if full:
        out["focus"] = _matrix(focus)
    out["estimates"] = {}
    for estimator in ESTIMATORS:
        out["estimates"][estimator] = {}
        for correlation in CORRELATIONS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                est = estimate(dataset, estimator=estimator, correlation=correlation)
            rho = of_planted(est.rho)
            result = {
                "planted_rho": rho,
                "planted_band": [None if f is None else strength_band(est.rho[i, f]) for i, f in enumerate(planted)],
                "primary_feature": list(est.primary_feature),
                "primary_is_planted": [None if h.feature is None else p == h.feature
                                       for h, p in zip(heads, est.primary_feature, strict=True)],
                "warnings": [str(w.message) for w in caught],
            }
            if full:
                result["rho"] = _matrix(est.rho)
            out["estimates"][estimator][correlation] = result
    return out


def _number(value: float) -> float | None:
    """A float for JSON, None for NaN."""
    return None if np.isnan(value) else float(value)


def _matrix(matrix: FloatArray) -> list[list[float | None]]:
    return [[_number(v) for v in row] for row in matrix]


def _within_rank_correlation(x: FloatArray, y: FloatArray, mask: BoolArray) -> float:
    """Spearman correlation of two features after centring their within-scenario ranks (the within estimator)."""
    rx, ry = (rankdata(np.where(mask, v, np.nan), axis=1, nan_policy="omit") for v in (x, y))
    rx, ry = (np.where(mask, r - np.nanmean(r, axis=1, keepdims=True), 0.0) for r in (rx, ry))
    return float(np.sum(rx * ry) / np.sqrt(np.sum(rx * rx) * np.sum(ry * ry)))


def describe_world(world: World) -> dict[str, Any]:
    """Realised sizes, receding share and the within-scenario Spearman correlation of each target and distractor."""
    valid = world.mask
    counts = {str(k): int((world.n == k).sum()) for k in range(N_RANGE[0], N_RANGE[1] + 1)}
    links = {f"{a} ~ {b}": _within_rank_correlation(world.features[a], world.features[b], valid)
             for a, b in (("ttc", "distance"), ("ttc", "closing_speed"), ("indicator", "distance"),
                          ("indicator", "ttc"), ("indicator_1_2", "distance"), ("indicator", "indicator_1_2"))}
    return {"scenarios": int(world.n.size), "entities": int(valid.sum()), "scenarios_per_n": counts,
            "receding_share": float(np.isinf(world.features["ttc"][valid]).mean()),
            "two_flagged_share": float((world.targets["indicator_1_2"].sum(axis=1) == 2).mean()),
            "within_spearman_between_features": links}


# --------------------------------------------------------------------------------------------------- markdown
def _cell(result: dict[str, Any], index: int, head: Head, feature: str) -> str:
    """``rho (band)`` of ``feature``, with the winning feature when it is another (not for the noise head)."""
    rho = result["rho"][index][FEATURES.index(feature)]
    if rho is None:
        return "undefined"
    text = f"{rho:.2f} ({strength_band(rho)})"
    primary = result["primary_feature"][index]
    if head.feature is not None and primary != feature:
        text += f" [-> {primary}]"
    return text


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _rows(heads: list[Head], rest: str) -> list[tuple[str, dict[str, int]]]:
    """Table rows: each mass (the index of the head of that mass and rest, by feature), then proportional, noise."""
    by_key = {(h.feature, h.mass, h.rest): i for i, h in enumerate(heads)}
    rows = [(f"m = {mass:.1f}", {f: by_key[(f, mass, rest)] for f in TARGETS}) for mass in MASSES]
    special = {h.kind: i for i, h in enumerate(heads) if h.kind != "mass"}
    rows.append(("proportional to 1 / TTC rank", {"ttc": special["proportional"]}))
    rows.append(("noise (Dirichlet)", dict.fromkeys(TARGETS, special["noise"])))
    return rows


def estimator_table(run: dict[str, Any], heads: list[Head], blocks: list[tuple[str, str, bool]], rest: str) -> str:
    """One Markdown table of the heads with the given rest: per ``(feature, estimator, with_focus)`` block, a column
    per correlation (and the focus)."""
    several = len({estimator for _, estimator, _ in blocks}) > 1
    header = ["head"]
    for feature, estimator, with_focus in blocks:
        prefix = TARGETS[feature].split(" (")[0] + ": " + (f"{estimator} " if several else "")
        header += [prefix + c for c in CORRELATIONS] + ([prefix + "focus"] if with_focus else [])
    rows = []
    for label, by_feature in _rows(heads, rest):
        row = [label]
        for feature, estimator, with_focus in blocks:
            index = by_feature.get(feature)
            if index is None:
                row += ["—"] * (len(CORRELATIONS) + with_focus)
                continue
            head = heads[index]
            row += [_cell(run["estimates"][estimator][c], index, head, feature) for c in CORRELATIONS]
            if with_focus:
                value = run["focus"][index][FEATURES.index(feature)]
                row.append("undefined" if value is None else f"{value:.2f}")
        rows.append(row)
    return _table(header, rows)


def _mass_heads(heads: list[Head], feature: str) -> list[int]:
    """Indices of the planted heads of ``feature`` with a Dirichlet rest, by increasing mass."""
    return [i for i, h in enumerate(heads) if h.feature == feature and h.kind == "mass" and h.rest == "dirichlet"]


def _reach(result: dict[str, Any], heads: list[Head], feature: str) -> str:
    """In words: the smallest m at which the planted feature's |rho| reaches each band, and the largest |rho|."""
    magnitude = {heads[i].mass: abs(result["planted_rho"][i]) for i in _mass_heads(heads, feature)
                 if result["planted_rho"][i] is not None}
    parts = []
    for band in reversed(STRENGTH_BANDS):
        reached = [m for m in MASSES if m in magnitude and band.contains(magnitude[m])]
        parts.append(f"{band.name} from m = {reached[0]:.1f}" if reached else f"never {band.name}")
    below_one = max(v for m, v in magnitude.items() if m < 1.0)
    return (f"{', '.join(parts)} (largest |rho| below m = 1: {below_one:.2f}, at m = 1: "
            f"{magnitude.get(1.0, float('nan')):.2f})")


def _named(result: dict[str, Any], heads: list[Head], feature: str) -> str:
    """In words: the masses at which another feature has the larger |rho|."""
    wrong = [i for i in _mass_heads(heads, feature) if not result["primary_is_planted"][i]]
    if not wrong:
        return "names the planted feature at every m"
    names = sorted({result["primary_feature"][i] for i in wrong})
    return f"names {', '.join(names)} at m = {', '.join(f'{heads[i].mass:.1f}' for i in wrong)}"


def _over_n(key: str, results: dict[str, Any]) -> str:
    per_n = results["caps"]["per_n"]
    low, high = str(N_RANGE[0]), str(N_RANGE[1])
    return f"{per_n[low][key]:.2f} (n = {low}) … {per_n[high][key]:.2f} (n = {high})"


def saturation_lines(results: dict[str, Any], heads: list[Head]) -> list[str]:
    """A line per correlation: how far each feature type's heads climb (within, Dirichlet rest) and the caps; one
    for the focus."""
    run = results["runs"]["all"]
    mix = results["caps"]["mix"]
    root, third, inverse = (_over_n(k, results) for k in ("sqrt(3/(n+1))", "3/(n+1)", "1/(n-1)"))
    caps_text = {
        "spearman": (f"Caps: a one-flag indicator against attention with the target on top and the others untied "
                     f"gives sqrt(3/(n+1)) = {root}, {mix['spearman_one_hot']:.2f} over this mix of n (k flagged: "
                     f"sqrt(3k(n-k)/(n²-1))); 1 only when the other entities' attention ties exactly (m = 1, or an "
                     f"exactly uniform rest). All the mass on the lowest TTC gives sqrt(3/(n+1)) too; the target on "
                     f"top with the others in random order, 3/(n+1) = {third} on average."),
        "pearson": (f"No cap for an indicator: attention taking two values aligned with the flag gives 1 for any "
                    f"m > 1/n (the uniform-rest table). Against raw heavy-tailed TTC (+inf left out), all the mass on "
                    f"the minimum gives (mean - min) / (sd sqrt(n-1)), down to 1/(n-1) = {inverse} when one value "
                    f"dominates."),
        "rank-feature": (f"For an indicator it equals pearson (the mid-rank percentile of a 0/1 feature is the "
                         f"feature / 2 plus a constant, whatever n): no cap. Against a continuous feature, all the "
                         f"mass on its extreme gives sqrt(3/(n+1)) = {root}, {mix['rank_feature_one_hot']:.2f} over "
                         f"this mix of n (ties at +inf raise it slightly): a one-hot head cannot be strong, a graded "
                         f"head (proportional) can."),
    }
    lines = []
    for correlation in CORRELATIONS:
        result = run["estimates"]["within"][correlation]
        types = "; ".join(f"{TARGETS[f]}: {_reach(result, heads, f)}, {_named(result, heads, f)}"
                          for f in ("indicator", "ttc"))
        lines.append(f"- **{correlation}** — {types}. {caps_text[correlation]}")
    focus = {f: [run["planted_focus"][i] for i in _mass_heads(heads, f)] for f in ("indicator", "ttc")}
    same = np.allclose(focus["indicator"], focus["ttc"])
    noise = next(i for i, h in enumerate(heads) if h.kind == "noise")
    noise_focus = ", ".join(f"{run['focus'][noise][FEATURES.index(f)]:.2f} ({f})" for f in ("indicator", "ttc"))
    lines.append(f"- **focus** — {'the same' if same else 'not the same'} for both feature types at every m (the mean "
                 f"of (m - 1/n)/(1 - 1/n), negative where m < 1/n). A noise head's focus is {noise_focus}: the "
                 f"focus is linear in the attention share, so attention unrelated to the feature scores 0 on average.")
    return lines


def caps_table(results: dict[str, Any], heads: list[Head]) -> str:
    """Per n: the theoretical values beside the within estimates that meet them."""
    index = {(h.feature, h.mass, h.rest): i for i, h in enumerate(heads)}
    observed = [("spearman", index[("indicator", 0.9, "dirichlet")]),
                ("rank-feature", index[("ttc", 1.0, "dirichlet")]),
                ("spearman", index[("ttc", 0.9, "dirichlet")]),
                ("pearson", index[("ttc", 1.0, "dirichlet")])]
    header = ["n", "scenarios", "sqrt(3/(n+1))", "spearman, indicator, m = 0.9", "rank-feature, TTC, m = 1.0",
              "3/(n+1)", "spearman, TTC, m = 0.9", "pearson, TTC, m = 1.0"]
    rows = []
    mix = results["caps"]["mix"]
    for key in [*results["caps"]["per_n"], "all"]:
        run = results["runs"][key if key == "all" else f"n={key}"]
        rho = [run["estimates"]["within"][c]["planted_rho"][i] for c, i in observed]
        text = ["undefined" if v is None else f"{v:.2f}" for v in rho]
        if key == "all":
            label = f"{N_RANGE[0]}–{N_RANGE[1]}"
            theory = [f"{mix['spearman_one_hot']:.2f} (spearman), {mix['rank_feature_one_hot']:.2f} (rank-feature)",
                      "—"]
        else:
            label, per_n = key, results["caps"]["per_n"][key]
            theory = [f"{per_n['sqrt(3/(n+1))']:.2f}", f"{per_n['3/(n+1)']:.2f}"]
        rows.append([label, str(run["scenarios"]), theory[0], *text[:2], theory[1], *text[2:]])
    return _table(header, rows)


def markdown(results: dict[str, Any], heads: list[Head]) -> str:
    """bands.md: the within table, the other estimators, the variants, the caps by n and a line per correlation."""
    run = results["runs"]["all"]
    settings, world = results["settings"], results["world"]
    both = ("indicator", "ttc")
    main = estimator_table(run, heads, [(f, "within", True) for f in both], "dirichlet")
    others = "\n\n".join(estimator_table(run, heads, [(f, e, False) for e in ("pooled", "fisher")], "dirichlet")
                         for f in both)
    variants = "\n\n".join([estimator_table(run, heads, [(f, "within", False) for f in both], "uniform"),
                             estimator_table(run, heads, [("indicator_1_2", "within", True)], "dirichlet")])
    intro = (f"{world['scenarios']} scenarios ({settings['episodes']} episodes x {settings['scenarios']}) of "
             f"n = {N_RANGE[0]}–{N_RANGE[1]} vehicles (uniform), seed {settings['seed']}. A planted head puts a share "
             f"m of its attention on the target (the flagged vehicle, or the lowest TTC; {world['receding_share']:.0%} "
             f"of the vehicles recede, TTC = +inf) and the rest on the others by a flat Dirichlet draw; distractors: "
             f"distance and closing speed (TTC = distance / closing speed; the flagged vehicle is the nearest one "
             f"half the time). Cells: signed rho of the planted feature and its band ({strength_bands_text()}, "
             f"else general); `[-> f]`: feature f has the larger |rho|, so it would be named. Focus: the share on the "
             f"target in excess of uniform (0 uniform, 1 all on it). Method and every number: `benchmarks/bands.py`, "
             f"`benchmarks/results/bands.json`.")
    return "\n\n".join([
        "### Where planted heads land in the strength bands",
        intro,
        "**`within` estimator** (the default):",
        main,
        "**`pooled` and `fisher` estimators** (indicator, then TTC):",
        others,
        "**Variants** (`within`): the rest of the attention exactly uniform (ties), then one or two flagged vehicles "
        "(the share m split between them):",
        variants,
        "**Caps by number of vehicles** (`within`; the m = 0.9 indicator head has the target on top and the others "
        "untied, the m = 1.0 TTC head is one-hot):",
        caps_table(results, heads),
        "**Where each correlation saturates** (`within`, Dirichlet rest):",
        "\n".join(saturation_lines(results, heads)),
    ]) + "\n"


# --------------------------------------------------------------------------------------------------- outputs
def json_text(value: Any, level: int = 0) -> str:
    """JSON with one key per line and every list of scalars (a row of a matrix) on one line; floats to 6 decimals."""
    pad = " " * (level + 1)
    if isinstance(value, dict) and value:
        items = [f"{pad}{json.dumps(key)}: {json_text(item, level + 1)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * level + "}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        return "[\n" + ",\n".join(pad + json_text(item, level + 1) for item in value) + "\n" + " " * level + "]"
    if isinstance(value, list):
        return "[" + ", ".join(json_text(item, level) for item in value) + "]"
    if isinstance(value, float):
        return json.dumps(round(value, 6))
    return json.dumps(value)


def run_study(settings: Settings) -> tuple[dict[str, Any], list[Head]]:
    """Simulate, plant, estimate on all scenarios and on each n: everything the outputs need."""
    world_seed, head_seed = np.random.SeedSequence(settings.seed).spawn(2)
    world = simulate_world(np.random.default_rng(world_seed), settings)
    heads, attention = plant_heads(np.random.default_rng(head_seed), world)
    runs = {"all": analyse(_subset_dataset(world, attention, heads, np.ones(world.n.size, dtype=bool)), heads,
                           full=True)}
    for k in range(N_RANGE[0], N_RANGE[1] + 1):
        runs[f"n={k}"] = analyse(_subset_dataset(world, attention, heads, world.n == k), heads, full=False)
    results = {
        "settings": asdict(settings),
        "world": describe_world(world),
        "features": list(FEATURES),
        "heads": [asdict(h) for h in heads],
        "caps": caps(world.n),
        "runs": runs,
    }
    return results, heads


def main(argv: list[str] | None = None) -> int:
    """Run the study, write bands.json and bands.md, print the Markdown."""
    settings, out = parse_args(argv)
    started = {**environment(), "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    start = time.perf_counter()
    results, heads = run_study(settings)
    table = markdown(results, heads)
    record = {
        "description": "Where planted heads of known strength land in the strength bands; see benchmarks/bands.py.",
        "layout": "runs: 'all' scenarios, then those with each n. Lists follow 'heads' (rows) and 'features' "
                  "(columns of 'rho' and 'focus', given for 'all' only); planted_*: the head's planted feature, "
                  "null for the noise head or where undefined. Floats rounded to 6 decimals.",
        "settings": {**results.pop("settings"), "n_range": list(N_RANGE), "slots": SLOTS, "masses": list(MASSES),
                     "rests": list(RESTS), "dirichlet_alpha": DIRICHLET_ALPHA, "receding_share": RECEDING_SHARE,
                     "nearest_flagged": NEAREST_FLAGGED, "estimators": list(ESTIMATORS),
                     "correlations": list(CORRELATIONS), "directions": DIRECTIONS, "bands": strength_bands_text(),
                     "seeding": "SeedSequence(seed).spawn(2): [scenarios and features, planted attention]"},
        "environment": started,
        "elapsed_seconds": time.perf_counter() - start,
        **results,
        "markdown": table,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "bands.json").write_text(json_text(record) + "\n")
    (out / "bands.md").write_text(table)
    print(table)
    print(f"elapsed: {record['elapsed_seconds']:.1f} s; wrote {out / 'bands.json'} and bands.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
