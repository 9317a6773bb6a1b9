"""``estimate`` against an independent brute force written from the estimators' definitions.

The brute force below loops over scenarios, heads and features in plain Python and calls scipy for
every correlation and rank; it imports nothing from hsi_stats but the entry points it checks. The
data mix padding (masked entries holding garbage), ties, +-inf and NaN features, empty and tiny
scenarios, and groups of unequal size whose scenarios are interleaved.
"""

from __future__ import annotations

import itertools
import math
import re
import warnings
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from hsi_stats import HSIDataset, estimate
from hsi_stats._validation import ConstantInputWarning
from hsi_stats.settings import CORRELATIONS

ATOL = 1e-10
N_SLOTS = 6
# Two single-scenario groups; the first always has 2 entities, so `fisher` must skip that group.
GROUP_SIZES = (1, 4, 2, 7, 3, 5, 1)
FEATURES = ("distance_to_ego", "lane", "ttc", "is_ahead")
ATTENTION_GARBAGE = (np.nan, np.inf, -np.inf, 1e6, -7.0)
FEATURE_GARBAGE = (np.nan, np.inf, -np.inf, 1e6, -7.0, 0.0)


# --------------------------------------------------------------------------- random data
@dataclass(frozen=True)
class Case:
    """The raw arrays a dataset was built from (the brute force reads these, never the dataset)."""

    attention: np.ndarray  # (S, H, V)
    features: dict[str, np.ndarray]  # name -> (S, V)
    mask: np.ndarray  # (S, V)
    groups: np.ndarray  # (S,)
    slots: np.ndarray | None  # (S, V)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.attention.shape

    def dataset(self) -> HSIDataset:
        return HSIDataset(self.attention, self.features, mask=self.mask, groups=self.groups,
                          slots=self.slots)


def _with_garbage(values: np.ndarray, mask: np.ndarray, garbage: tuple[float, ...],
                  rng: np.random.Generator) -> np.ndarray:
    """``values`` with every masked-out entry replaced by a random garbage value."""
    out = values.copy()
    padded = np.broadcast_to(~mask, out.shape)
    out[padded] = rng.choice(garbage, size=int(padded.sum()))
    return out


def _non_finite(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sprinkle +inf (15%), -inf (5%) and NaN (10%) into ``values``."""
    draw = rng.random(values.shape)
    out = values.copy()
    out[draw < 0.15] = np.inf
    out[(draw >= 0.15) & (draw < 0.2)] = -np.inf
    out[(draw >= 0.2) & (draw < 0.3)] = np.nan
    return out


def make_case(seed: int, *, with_slots: bool = False) -> Case:
    rng = np.random.default_rng(seed)
    group_of = np.repeat(np.arange(len(GROUP_SIZES)), GROUP_SIZES)
    rng.shuffle(group_of)
    n_scen = group_of.size
    present = rng.integers(0, N_SLOTS + 1, size=n_scen)
    present[group_of == 0] = 2
    present[np.flatnonzero(group_of != 0)[:2]] = (0, 1)
    mask = np.array([rng.permutation(np.arange(N_SLOTS) < n) for n in present])

    distance = rng.gamma(2.0, 10.0, size=(n_scen, N_SLOTS))
    features = {
        "distance_to_ego": distance,
        "lane": rng.integers(-1, 2, size=(n_scen, N_SLOTS)).astype(float),
        "ttc": _non_finite(rng.exponential(3.0, size=(n_scen, N_SLOTS)), rng),
        "is_ahead": (rng.random((n_scen, N_SLOTS)) < 0.3).astype(float),
    }
    attention = np.stack([
        rng.random((n_scen, N_SLOTS)),
        rng.integers(0, 3, size=(n_scen, N_SLOTS)).astype(float),
        -distance / 40.0 + rng.normal(0.0, 0.3, size=(n_scen, N_SLOTS)),
    ], axis=1)
    slots = rng.integers(0, N_SLOTS + 2, size=(n_scen, N_SLOTS)) * 10 if with_slots else None
    return Case(
        attention=_with_garbage(attention, mask[:, None, :], ATTENTION_GARBAGE, rng),
        features={k: _with_garbage(v, mask, FEATURE_GARBAGE, rng) for k, v in features.items()},
        mask=mask,
        groups=np.array([f"episode-{g}" for g in group_of]),
        slots=slots,
    )


# --------------------------------------------------------------------------- brute force (the definitions)
def _is_constant(values) -> bool:
    return len(values) == 0 or min(values) == max(values)


def _ratio(cross: float, ss_a: float, ss_x: float) -> float:
    return cross / math.sqrt(ss_a * ss_x) if ss_a > 0 and ss_x > 0 else math.nan


def valid_entities(case: Case, s: int, h: int, name: str, correlation: str):
    """Raw (attention, feature, slot) of the entities of scenario ``s`` valid for ``name``."""
    a, x, slot = [], [], []
    for v in range(case.shape[2]):
        value = case.features[name][s, v]
        if not case.mask[s, v] or math.isnan(value):
            continue
        if correlation == "pearson" and math.isinf(value):
            continue
        a.append(case.attention[s, h, v])
        x.append(value)
        slot.append(v if case.slots is None else case.slots[s, v])
    return np.array(a), np.array(x), slot


def scenario_values(case: Case, s: int, h: int, name: str, correlation: str):
    """Like :func:`valid_entities`, with values ranked within the scenario under Spearman, and the feature as its
    mid-rank percentile (rank - 0.5) / n under rank-feature."""
    a, x, slot = valid_entities(case, s, h, name, correlation)
    if correlation == "spearman" and len(a):
        a, x = stats.rankdata(a, method="average"), stats.rankdata(x, method="average")
    if correlation == "rank-feature" and len(a):
        x = (stats.rankdata(x, method="average") - 0.5) / len(x)
    return a, x, slot


def _centred(values: np.ndarray) -> np.ndarray:
    if _is_constant(values):
        return np.zeros(len(values))
    return values - values.mean()


def brute_pooled(case: Case, h: int, name: str, correlation: str) -> tuple[float, int]:
    a, x = [], []
    for s in range(case.shape[0]):
        sa, sx, _ = valid_entities(case, s, h, name, correlation)
        a.extend(sa)
        x.extend(sx)
    if _is_constant(a) or _is_constant(x):
        return math.nan, len(a)
    if correlation == "rank-feature":
        return float(stats.pearsonr(a, stats.rankdata(x, method="average")).statistic), len(a)
    correlate = stats.pearsonr if correlation == "pearson" else stats.spearmanr
    return float(correlate(a, x).statistic), len(a)


def brute_within(case: Case, h: int, name: str, correlation: str) -> tuple[float, int]:
    cross = ss_a = ss_x = 0.0
    n_used = 0
    for s in range(case.shape[0]):
        a, x, _ = scenario_values(case, s, h, name, correlation)
        if len(a) < 2:
            continue
        n_used += len(a)
        a_c, x_c = _centred(a), _centred(x)
        cross += float(np.sum(a_c * x_c))
        ss_a += float(np.sum(a_c**2))
        ss_x += float(np.sum(x_c**2))
    return _ratio(cross, ss_a, ss_x), n_used


def _residuals(design: np.ndarray, y: np.ndarray) -> np.ndarray:
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return y - design @ coef


def brute_within_slot(case: Case, h: int, name: str, correlation: str) -> tuple[float, int]:
    """Residuals of OLS on scenario + slot dummies over every valid pair, then correlated."""
    rows = []  # (scenario, slot, attention, feature)
    n_used = 0
    for s in range(case.shape[0]):
        a, x, slot = scenario_values(case, s, h, name, correlation)
        rows.extend(zip([s] * len(a), slot, a, x, strict=True))
        n_used += len(a) if len(a) >= 2 else 0
    scenarios = sorted({r[0] for r in rows})
    slots = sorted({r[1] for r in rows})
    design = np.zeros((len(rows), len(scenarios) + len(slots)))
    for i, (s, slot, _, _) in enumerate(rows):
        design[i, scenarios.index(s)] = 1.0
        design[i, len(scenarios) + slots.index(slot)] = 1.0
    res_a = _residuals(design, np.array([r[2] for r in rows]))
    res_x = _residuals(design, np.array([r[3] for r in rows]))
    return _ratio(float(res_a @ res_x), float(res_a @ res_a), float(res_x @ res_x)), n_used


def brute_fisher(case: Case, h: int, name: str, correlation: str, clip: float) -> tuple[float, int]:
    z_by_group = defaultdict(list)
    n_used = 0
    for s in range(case.shape[0]):
        a, x, _ = scenario_values(case, s, h, name, correlation)
        if len(a) < 3 or _is_constant(a) or _is_constant(x):
            continue
        n_used += len(a)
        r = stats.pearsonr(a, x).statistic
        z_by_group[case.groups[s]].append(math.atanh(min(max(r, -clip), clip)))
    if not z_by_group:
        return math.nan, n_used
    group_means = [sum(z) / len(z) for z in z_by_group.values()]
    return math.tanh(sum(group_means) / len(group_means)), n_used


def brute_estimate(case: Case, correlation: str, estimator: str = "within",
                   adjust: str | None = None,
                   fisher_clip: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """rho (H, F) and n_used (H, F) by brute force."""
    n_heads = case.shape[1]
    rho = np.full((n_heads, len(FEATURES)), np.nan)
    n_used = np.zeros((n_heads, len(FEATURES)), dtype=int)
    for h in range(n_heads):
        for f, name in enumerate(FEATURES):
            if estimator == "pooled":
                result = brute_pooled(case, h, name, correlation)
            elif estimator == "fisher":
                result = brute_fisher(case, h, name, correlation, fisher_clip)
            elif adjust == "slot":
                result = brute_within_slot(case, h, name, correlation)
            else:
                result = brute_within(case, h, name, correlation)
            rho[h, f], n_used[h, f] = result
    return rho, n_used


def brute_ranking(rho_row: np.ndarray) -> tuple[float, str | None, str | None]:
    """HSI, primary feature and runner-up of one head (asserting no floating-point near-tie)."""
    ranked = sorted(((abs(r), name) for r, name in zip(rho_row, FEATURES, strict=True)
                     if not math.isnan(r)), reverse=True)
    for (first, _), (second, _) in itertools.pairwise(ranked):
        assert first - second > 1e-8, "test data must not hold near-ties in |rho|"
    names = [name for _, name in ranked] + [None, None]
    hsi = ranked[0][0] if ranked else math.nan
    return hsi, names[0], names[1]


# --------------------------------------------------------------------------- agreement
CONFIGS = [
    pytest.param({"estimator": "pooled"}, False, id="pooled"),
    pytest.param({"estimator": "within"}, False, id="within"),
    pytest.param({"estimator": "within", "adjust": "slot"}, False, id="within-slot-columns"),
    pytest.param({"estimator": "within", "adjust": "slot"}, True, id="within-slot-given"),
    pytest.param({"estimator": "fisher", "fisher_clip": 0.999}, False, id="fisher-0.999"),
    pytest.param({"estimator": "fisher", "fisher_clip": 0.9}, False, id="fisher-0.9"),
]
SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("correlation", ["spearman", "pearson", "rank-feature"])
@pytest.mark.parametrize(("options", "with_slots"), CONFIGS)
def test_estimate_matches_brute_force(options, with_slots, correlation, seed):
    case = make_case(seed, with_slots=with_slots)
    expected_rho, expected_used = brute_estimate(case, correlation, **options)
    assert not np.isnan(expected_rho).any()  # NaN handling has tests of its own

    est = estimate(case.dataset(), correlation=correlation, **options)

    np.testing.assert_allclose(est.rho, expected_rho, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(est.n_used, expected_used)
    for h, row in enumerate(expected_rho):
        hsi, primary, runner_up = brute_ranking(row)
        assert est.hsi[h] == pytest.approx(hsi, abs=ATOL)
        assert (est.primary_feature[h], est.runner_up[h]) == (primary, runner_up)


def test_fisher_clip_changes_the_estimate():
    """The two clip values of the agreement test really lead to different numbers on these data."""
    case = make_case(0)
    loose = estimate(case.dataset(), estimator="fisher", fisher_clip=0.999).rho
    tight = estimate(case.dataset(), estimator="fisher", fisher_clip=0.9).rho
    assert np.abs(loose - tight).max() > 0.01
    assert np.abs(tight).max() <= 0.9 + ATOL


def brute_left_out(case: Case, correlation: str) -> dict[str, tuple[int, int, int]]:
    counts = {}
    for name in FEATURES:
        missing = infinite = 0
        for s, v in zip(*np.nonzero(case.mask), strict=True):
            missing += math.isnan(case.features[name][s, v])
            infinite += math.isinf(case.features[name][s, v])
        counts[name] = (missing, infinite, infinite if correlation == "pearson" else 0)
    return counts


@pytest.mark.parametrize("estimator", ["within", "pooled", "fisher"])
@pytest.mark.parametrize("correlation", ["spearman", "pearson", "rank-feature"])
def test_left_out_counts_nan_and_inf_on_present_entities(estimator, correlation):
    case = make_case(1)
    left_out = estimate(case.dataset(), estimator=estimator, correlation=correlation).left_out
    expected = brute_left_out(case, correlation)
    assert expected["ttc"][0] > 0 and expected["ttc"][1] > 0  # the data do exercise both rules
    assert list(left_out["feature"]) == list(FEATURES)
    for row in left_out.itertuples():
        assert (row.missing, row.infinite, row.infinite_left_out) == expected[row.feature]


def test_defaults_are_within_rank_feature_and_options_ignore_case():
    case = make_case(2)
    expected, _ = brute_estimate(case, "rank-feature")
    np.testing.assert_allclose(estimate(case.dataset()).rho, expected, rtol=0, atol=ATOL)
    shouted = estimate(case.dataset(), estimator="WITHIN", correlation="Rank-Feature", adjust="None")
    np.testing.assert_allclose(shouted.rho, expected, rtol=0, atol=ATOL)
    spearman, _ = brute_estimate(case, "spearman")
    np.testing.assert_allclose(estimate(case.dataset(), correlation="SPEARMAN").rho, spearman, rtol=0, atol=ATOL)


def test_frames_report_the_estimates():
    case = make_case(0)
    expected_rho, expected_used = brute_estimate(case, "rank-feature")
    est = estimate(case.dataset())
    pairs = est.to_frame()
    assert list(pairs.columns) == ["head", "feature", "rho", "n_used", "primary"]
    heads = est.heads_frame()
    for row in pairs.itertuples():
        h, f = int(row.head[1:]), FEATURES.index(row.feature)
        assert row.rho == pytest.approx(expected_rho[h, f], abs=ATOL)
        assert row.n_used == expected_used[h, f]
        assert row.primary == (brute_ranking(expected_rho[h])[1] == row.feature)
    for h, row in enumerate(heads.itertuples()):
        hsi, primary, runner_up = brute_ranking(expected_rho[h])
        assert (row.head, row.primary_feature, row.runner_up) == (f"h{h}", primary, runner_up)
        assert row.hsi == pytest.approx(hsi, abs=ATOL)
        assert abs(row.primary_rho) == pytest.approx(hsi, abs=ATOL)
        runner_up_rho = expected_rho[h, FEATURES.index(runner_up)]
        assert row.runner_up_rho == pytest.approx(runner_up_rho, abs=ATOL)


# --------------------------------------------------------------------------- undefined correlations
def _with_feature(case: Case, name: str, values: np.ndarray) -> HSIDataset:
    features = dict(case.features)
    features[name] = values
    return HSIDataset(case.attention, features, mask=case.mask, groups=case.groups,
                      slots=case.slots)


def _scenario_constant(case: Case) -> np.ndarray:
    """A feature that differs between scenarios but never within one (garbage on padding)."""
    levels = np.arange(case.shape[0], dtype=float)[:, None] * np.ones(case.shape[2])
    return np.where(case.mask, levels, np.nan)


NAN_CONFIGS = [
    pytest.param({"estimator": "within"}, _scenario_constant, id="within"),
    pytest.param({"estimator": "within", "adjust": "slot"}, _scenario_constant, id="within-slot"),
    pytest.param({"estimator": "fisher"}, _scenario_constant, id="fisher"),
    pytest.param({"estimator": "pooled"}, lambda case: np.full(case.shape[::2], 0.1), id="pooled"),
]


@pytest.mark.parametrize("correlation", ["spearman", "pearson", "rank-feature"])
@pytest.mark.parametrize(("options", "constant_feature"), NAN_CONFIGS)
def test_feature_without_variation_gives_nan_and_a_warning(options, constant_feature, correlation):
    case = make_case(0)
    dataset = _with_feature(case, "lane", constant_feature(case))
    with pytest.warns(ConstantInputWarning, match="lane"):
        est = estimate(dataset, correlation=correlation, **options)
    lane = FEATURES.index("lane")
    assert np.isnan(est.rho[:, lane]).all()
    assert not np.isnan(np.delete(est.rho, lane, axis=1)).any()
    expected_hsi = np.abs(np.delete(est.rho, lane, axis=1)).max(axis=1)
    np.testing.assert_array_equal(est.hsi, expected_hsi)
    assert "lane" not in est.primary_feature + est.runner_up


@pytest.mark.parametrize("estimator", ["within", "pooled", "fisher"])
def test_head_without_variation_has_no_hsi(estimator):
    case = make_case(0)
    attention = case.attention.copy()
    attention[:, 1, :] = np.where(case.mask, 0.25, attention[:, 1, :])
    dataset = HSIDataset(attention, case.features, mask=case.mask, groups=case.groups)
    with pytest.warns(ConstantInputWarning, match="h1 x distance_to_ego"):
        est = estimate(dataset, estimator=estimator)
    assert np.isnan(est.rho[1]).all() and np.isnan(est.hsi[1])
    assert (est.primary_feature[1], est.runner_up[1]) == (None, None)
    assert not np.isnan(est.hsi[[0, 2]]).any()


# --------------------------------------------------------------------------- option validation
def _choices(param: str, choices: tuple[str, ...], passed: str) -> str:
    listed = ", ".join(repr(c) for c in choices)
    return re.escape(f"`{param}` must be one of {{{listed}}}, but {passed!r} was passed")


CLIP = r"`fisher_clip` must lie in \(0, 1\), but "


@pytest.mark.parametrize(("options", "pattern"), [
    ({"estimator": "median"}, _choices("estimator", ("within", "pooled", "fisher"), "median")),
    ({"estimator": None}, _choices("estimator", ("within", "pooled", "fisher"), None)),
    ({"correlation": "kendall"}, _choices("correlation", CORRELATIONS, "kendall")),
    ({"adjust": "scenario"}, _choices("adjust", ("none", "slot"), "scenario")),
    ({"estimator": "pooled", "adjust": "slot"}, r"`adjust='slot'`.*'within'.*'pooled'"),
    ({"estimator": "fisher", "adjust": "slot"}, r"`adjust='slot'`.*'within'.*'fisher'"),
    ({"estimator": "fisher", "fisher_clip": 1.0}, CLIP + "1.0"),
    ({"estimator": "fisher", "fisher_clip": 0}, CLIP + "0 "),
    ({"estimator": "fisher", "fisher_clip": -0.5}, CLIP + "-0.5"),
    ({"estimator": "fisher", "fisher_clip": math.nan}, CLIP + "nan"),
])
def test_invalid_options_raise_naming_the_parameter(options, pattern):
    with pytest.raises(ValueError, match=pattern):
        estimate(make_case(0).dataset(), **options)


def test_estimate_never_warns_on_well_posed_data():
    """Garbage on padding and non-finite features must not leak numpy warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for estimator in ("within", "pooled", "fisher"):
            estimate(make_case(1).dataset(), estimator=estimator, correlation="pearson")
