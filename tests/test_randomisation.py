"""``randomisation_test`` against brute force and against simulation.

- Sign-flip with exact enumeration (2**G <= n_resamples) equals, exactly, a loop over every sign vector
  (``itertools.product``) applied to per-group contributions computed here from the raw arrays with scipy's
  ``rankdata`` (``within``: sums of centred products; ``pooled``: products about the overall means; ``fisher``:
  group means of Fisher z): raw pair and head (HSI) p-values and the single-step and step-down max-T p-values.
- The within-group and within-scenario permutation schemes agree, within Monte-Carlo error, with a loop that
  permutes the present entities of every group (or scenario), rebuilds the dataset and calls ``estimate``.
- Under simulated nulls (independent data, and clustered data with a persistent exchangeable slot preference)
  the rate of p <= 0.05 is not above 5% (one-sided exact binomial test at the 1% level); the within-scenario
  scheme, which ignores clustering, is shown to be anti-conservative on the clustered null, so the simulation is
  able to catch a miscalibrated scheme.
- p-values do not depend on ``batch`` (exactly; the null HSI to rounding); same ``rng``, same numbers;
  ``scheme="auto"`` resolves as documented; bad arguments raise clear errors.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from hsi_stats import HSIDataset, estimate
from hsi_stats.inference.randomisation import PermutationInputs, randomisation_test

TIE = 100 * np.finfo(np.float64).eps
FISHER_CLIP = 0.999


# --------------------------------------------------------------------------- data
def _softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    shifted = np.where(mask, logits - np.where(mask, logits, -np.inf).max(axis=-1, keepdims=True), -np.inf)
    weights = np.exp(shifted)
    return np.where(mask, weights / weights.sum(axis=-1, keepdims=True), 0.0)


def _exact_case(seed: int = 4) -> dict:
    """9 groups of 1-3 scenarios, 5 slots with padding, 3 heads, 3 features (a few NaN), effects of 3 sizes."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(9), rng.integers(1, 4, size=9))
    rng.shuffle(groups)  # interleaved groups
    n_scen = groups.size
    mask = rng.random((n_scen, 5)) > 0.25
    mask[:, :2] = True
    x = rng.normal(size=(3, n_scen, 5))
    x[2][rng.random((n_scen, 5)) < 0.1] = np.nan
    logits = np.stack([1.5 * x[0], 0.4 * x[1], np.zeros_like(x[0])], axis=1) + rng.normal(size=(n_scen, 3, 5))
    return {"attention": _softmax(logits, mask[:, None, :]), "mask": mask, "groups": groups,
            "features": {f"f{i}": np.where(mask, x[i], 0.0) for i in range(3)}}


def _dataset(case: dict, features: dict | None = None) -> HSIDataset:
    return HSIDataset(case["attention"], case["features"] if features is None else features, mask=case["mask"],
                      groups=case["groups"])


# --------------------------------------------------------------------------- per-group contributions, by hand
def _transform(values: np.ndarray, correlation: str) -> np.ndarray:
    return stats.rankdata(values) if correlation == "spearman" else values


def _within_contributions(case: dict, correlation: str):
    """Per-group sums of centred products (G, H, F) and rho as a function of their signed total."""
    codes = np.unique(case["groups"], return_inverse=True)[1]
    names = list(case["features"])
    n_heads = case["attention"].shape[1]
    cross = np.zeros((codes.max() + 1, n_heads, len(names)))
    attention_ss = np.zeros((n_heads, len(names)))
    feature_ss = np.zeros(len(names))
    for s, g in enumerate(codes):
        for f, name in enumerate(names):
            x = case["features"][name][s]
            valid = case["mask"][s] & np.isfinite(x)
            if valid.sum() < 2:
                continue
            xc = _transform(x[valid], correlation)
            xc = xc - xc.mean() if np.ptp(xc) > 0 else np.zeros_like(xc)
            feature_ss[f] += xc @ xc
            for h in range(n_heads):
                ac = _transform(case["attention"][s, h][valid], correlation)
                ac = ac - ac.mean() if np.ptp(ac) > 0 else np.zeros_like(ac)
                cross[g, h, f] += ac @ xc
                attention_ss[h, f] += ac @ ac
    denominator = np.sqrt(attention_ss * feature_ss)
    return cross, lambda total: total / denominator


def _pooled_contributions(case: dict, correlation: str):
    """Per-group sums of products about the overall means (Pearson over all valid pairs)."""
    assert correlation == "pearson"
    codes = np.unique(case["groups"], return_inverse=True)[1]
    names = list(case["features"])
    n_heads = case["attention"].shape[1]
    cross = np.zeros((codes.max() + 1, n_heads, len(names)))
    denominator = np.zeros((n_heads, len(names)))
    for f, name in enumerate(names):
        x = case["features"][name]
        valid = case["mask"] & np.isfinite(x)
        x_mean = x[valid].mean()
        for h in range(n_heads):
            a = case["attention"][:, h, :]
            a_mean = a[valid].mean()
            for s, g in enumerate(codes):
                cross[g, h, f] += np.sum((a[s][valid[s]] - a_mean) * (x[s][valid[s]] - x_mean))
            denominator[h, f] = np.sqrt(np.sum((a[valid] - a_mean) ** 2) * np.sum((x[valid] - x_mean) ** 2))
    return cross, lambda total: total / denominator


def _fisher_contributions(case: dict, correlation: str):
    """Per-group mean Fisher z over usable scenarios (>= 3 valid entities, neither variable constant)."""
    codes = np.unique(case["groups"], return_inverse=True)[1]
    names = list(case["features"])
    n_heads = case["attention"].shape[1]
    z_lists = [[[[] for _ in names] for _ in range(n_heads)] for _ in range(codes.max() + 1)]
    for s, g in enumerate(codes):
        for f, name in enumerate(names):
            x = case["features"][name][s]
            valid = case["mask"][s] & np.isfinite(x)
            for h in range(n_heads):
                xr = _transform(x[valid], correlation)
                ar = _transform(case["attention"][s, h][valid], correlation)
                if valid.sum() >= 3 and np.ptp(xr) > 0 and np.ptp(ar) > 0:
                    r = np.corrcoef(ar, xr)[0, 1]
                    z_lists[g][h][f].append(np.arctanh(np.clip(r, -FISHER_CLIP, FISHER_CLIP)))
    mean_z = np.array([[[np.mean(z) if z else 0.0 for z in per_head] for per_head in per_group]
                       for per_group in z_lists])
    used = np.array([[[1.0 if z else 0.0 for z in per_head] for per_head in per_group] for per_group in z_lists])
    return mean_z, lambda total: np.tanh(total / used.sum(axis=0))


CONTRIBUTIONS = {
    "within-spearman": ("within", "spearman", _within_contributions),
    "within-pearson": ("within", "pearson", _within_contributions),
    "pooled-pearson": ("pooled", "pearson", _pooled_contributions),
    "fisher-spearman": ("fisher", "spearman", _fisher_contributions),
}


# --------------------------------------------------------------------------- p-values from the definitions
def _reaches(null: np.ndarray, observed: np.ndarray) -> np.ndarray:
    return null >= observed - TIE * np.abs(observed)


def _max_t_from_definition(observed: np.ndarray, null: np.ndarray, plus: int) -> tuple[np.ndarray, np.ndarray]:
    """Single-step and step-down (Westfall-Young) adjusted p-values with explicit loops; null is (n, m)."""
    n, m = null.shape
    single = np.array([(plus + sum(_reaches(null[b].max(), observed[j]) for b in range(n))) / (n + plus)
                       for j in range(m)])
    order = sorted(range(m), key=lambda j: -observed[j])
    step_down = np.empty(m)
    running = 0.0
    for position, j in enumerate(order):
        rest = order[position:]
        count = sum(_reaches(null[b, rest].max(), observed[j]) for b in range(n))
        running = max(running, (plus + count) / (n + plus))
        step_down[j] = running
    return single, step_down


def _enumerate_signs(contributions: np.ndarray, to_rho) -> np.ndarray:
    """rho (2**G, H, F) for every sign vector."""
    return np.array([to_rho(np.tensordot(np.array(signs, dtype=float), contributions, axes=1))
                     for signs in itertools.product((1.0, -1.0), repeat=contributions.shape[0])])


# --------------------------------------------------------------------------- exact sign-flip
@pytest.mark.parametrize("name", CONTRIBUTIONS)
def test_exact_sign_flip_equals_enumeration(name):
    estimator, correlation, contributions_of = CONTRIBUTIONS[name]
    case = _exact_case()
    contributions, to_rho = contributions_of(case, correlation)
    n_groups = contributions.shape[0]
    observed = to_rho(contributions.sum(axis=0))
    est = estimate(_dataset(case), estimator=estimator, correlation=correlation)
    np.testing.assert_allclose(est.rho, observed, atol=1e-12)  # the contributions describe the same rho

    result = randomisation_test(est.sums, scheme="sign-flip", n_resamples=2**n_groups + 5, rng=0)
    assert result.exact
    assert result.n_resamples == 2**n_groups
    null = _enumerate_signs(contributions, to_rho)
    pair_t, pair_null = np.abs(observed).reshape(-1), np.abs(null).reshape(null.shape[0], -1)
    head_t, head_null = np.abs(observed).max(axis=1), np.abs(null).max(axis=2)

    # on the raw scale: |rho| and HSI
    np.testing.assert_array_equal(result.pair_p.reshape(-1), _reaches(pair_null, pair_t).mean(axis=0))
    np.testing.assert_array_equal(result.head_p_raw, _reaches(head_null, head_t).mean(axis=0))
    pair_single, pair_step_down = _max_t_from_definition(pair_t, pair_null, plus=0)
    head_single, head_step_down = _max_t_from_definition(head_t, head_null, plus=0)
    np.testing.assert_array_equal(result.pair_p_raw_single_step.reshape(-1), pair_single)
    np.testing.assert_array_equal(result.pair_p_raw_step_down.reshape(-1), pair_step_down)
    np.testing.assert_array_equal(result.head_p_raw_single_step, head_single)
    np.testing.assert_array_equal(result.head_p_raw_step_down, head_step_down)
    # studentised: each |rho| divided by the root mean square of its null over the 2^G patterns
    spread = np.sqrt((null**2).mean(axis=0))  # (H, F)
    np.testing.assert_allclose(result.null_sd, spread, rtol=1e-12)
    z, z_null = np.abs(observed) / spread, np.abs(null) / spread
    pair_z, pair_z_null = z.reshape(-1), z_null.reshape(null.shape[0], -1)
    head_z, head_z_null = z.max(axis=1), z_null.max(axis=2)
    np.testing.assert_array_equal(result.head_p, _reaches(head_z_null, head_z).mean(axis=0))
    pair_single, pair_step_down = _max_t_from_definition(pair_z, pair_z_null, plus=0)
    head_single, head_step_down = _max_t_from_definition(head_z, head_z_null, plus=0)
    np.testing.assert_array_equal(result.pair_p_single_step.reshape(-1), pair_single)
    np.testing.assert_array_equal(result.pair_p_step_down.reshape(-1), pair_step_down)
    np.testing.assert_array_equal(result.head_p_single_step, head_single)
    np.testing.assert_array_equal(result.head_p_step_down, head_step_down)
    # The planted pair is detected and the head without effect is not (the data test something).
    assert result.pair_p[0, 0] <= 0.01 and result.head_p[2] > 0.05


def test_sign_flip_is_monte_carlo_when_patterns_do_not_fit():
    sums = estimate(_dataset(_exact_case())).sums
    result = randomisation_test(sums, scheme="sign-flip", n_resamples=2**9 - 1, rng=0)
    assert not result.exact and result.n_resamples == 2**9 - 1
    for p in (result.pair_p, result.head_p, result.pair_p_step_down, result.head_p_single_step):
        assert np.all((p >= 1 / 2**9) & (p <= 1))
        np.testing.assert_allclose(p * 2**9, np.round(p * 2**9), atol=1e-9)  # (1 + k) / (1 + B)


# --------------------------------------------------------------------------- permutation schemes vs brute force
def _clustered_case(rng: np.random.Generator, n_groups: int, per_group: int, n_slots: int = 5,
                    betas: tuple[float, ...] = (0.8, 0.25, 0.0), gamma: float = 1.5,
                    persistence: float = 1.0) -> dict:
    """Groups whose present entities (a fixed subset per group) keep their features and the head's slot
    preference across the group's scenarios; head h adds ``betas[h]`` x feature f0 to its logits."""
    groups = np.repeat(np.arange(n_groups), per_group)
    n_scen = groups.size
    present = np.zeros((n_groups, n_slots), bool)
    for g in range(n_groups):
        present[g, rng.choice(n_slots, size=rng.integers(3, n_slots + 1), replace=False)] = True
    mask = present[groups]
    persistent = rng.normal(size=(2, n_groups, n_slots))[:, groups]
    x = persistence * persistent + rng.normal(size=(2, n_scen, n_slots))
    preferred = rng.integers(0, n_slots, size=(n_groups, len(betas)))[groups]  # (S, H)
    slot_bonus = gamma * (np.arange(n_slots) == preferred[..., None])
    logits = np.array(betas)[None, :, None] * x[0][:, None, :] + slot_bonus + rng.normal(size=slot_bonus.shape)
    return {"attention": _softmax(logits, mask[:, None, :]), "mask": mask, "groups": groups,
            "features": {f"f{i}": np.where(mask, x[i], 0.0) for i in range(2)}}


def _brute_force_permutation(case: dict, scheme: str, n_resamples: int, seed: int):
    """Permute present entities per group or per scenario by hand: (1 + k)/(1 + B) for |rho|, HSI and the
    studentised HSI (each |rho| over the root mean square of its null), and the null HSI (B, H)."""
    rng = np.random.default_rng(seed)
    est = estimate(_dataset(case))
    pair_t, head_t = np.abs(est.rho), est.hsi
    pair_k, head_k = np.zeros(pair_t.shape), np.zeros(head_t.shape)
    null_hsi, null_rho = [], []
    groups, mask = case["groups"], case["mask"]
    for _ in range(n_resamples):
        shuffled = {name: values.copy() for name, values in case["features"].items()}
        units = np.unique(groups) if scheme == "within-group" else np.arange(groups.size)
        for unit in units:
            scenarios = np.flatnonzero(groups == unit) if scheme == "within-group" else [unit]
            slots = np.flatnonzero(mask[scenarios[0]])
            permuted = rng.permutation(slots)
            for s in scenarios:
                for name in shuffled:  # the same permutation for every feature: entities move, not values
                    shuffled[name][s, slots] = case["features"][name][s, permuted]
        rho = estimate(_dataset(case, shuffled)).rho
        pair_k += _reaches(np.abs(rho), pair_t)
        head_k += _reaches(np.abs(rho).max(axis=1), head_t)
        null_hsi.append(np.abs(rho).max(axis=1))
        null_rho.append(np.abs(rho))
    spread = np.sqrt((np.array(null_rho) ** 2).mean(axis=0))
    z_null = (np.array(null_rho) / spread).max(axis=2)
    z_k = _reaches(z_null, (pair_t / spread).max(axis=1)).sum(axis=0)
    return ((1 + pair_k) / (1 + n_resamples), (1 + head_k) / (1 + n_resamples), np.array(null_hsi),
            (1 + z_k) / (1 + n_resamples))


def _quantile_levels(null: np.ndarray, reference: np.ndarray, q: float) -> np.ndarray:
    """Level that the q-quantile of ``null`` (B, H) reaches in the ``reference`` null distribution, per head."""
    return (reference <= np.quantile(null, q, axis=0)).mean(axis=0)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["within-group", "within-scenario"])
def test_permutation_schemes_match_brute_force(scheme):
    case = _clustered_case(np.random.default_rng(12), n_groups=8, per_group=5, persistence=1.5)
    ds = _dataset(case)
    inputs = PermutationInputs.from_dataset(ds, "spearman")
    est = estimate(ds)
    n_brute, n_package = 800, 4000
    result = randomisation_test(est.sums, scheme=scheme, permutation_inputs=inputs, n_resamples=n_package, rng=1)
    assert result.scheme == scheme and not result.exact and result.n_resamples == n_package
    brute_pair, brute_head, brute_null, brute_studentised = _brute_force_permutation(case, scheme, n_brute, seed=2)
    for ours, theirs in ((result.pair_p, brute_pair), (result.head_p_raw, brute_head),
                         (result.head_p, brute_studentised)):
        p = (ours + theirs) / 2
        tol = 4 * np.sqrt(p * (1 - p) * (1 / n_brute + 1 / n_package)) + 1 / n_brute
        assert np.all(np.abs(ours - theirs) <= tol), (ours, theirs)
    # The null distributions agree too: the package's 90% quantile of the null HSI sits at level 0.9 of the
    # brute-force null, within four standard deviations of the two Monte-Carlo levels.
    level_tol = 4 * np.sqrt(0.9 * 0.1 * (1 / n_brute + 1 / n_package)) + 2 / n_brute
    assert np.all(np.abs(_quantile_levels(result.null_hsi, brute_null, 0.9) - 0.9) <= level_tol)
    # The data are clustered enough that the other scheme's null is clearly different (a swap would be caught).
    other = "within-scenario" if scheme == "within-group" else "within-group"
    swapped = randomisation_test(est.sums, scheme=other, permutation_inputs=inputs, n_resamples=n_package, rng=1)
    assert np.any(np.abs(_quantile_levels(swapped.null_hsi, brute_null, 0.9) - 0.9) > level_tol)


# --------------------------------------------------------------------------- calibration under the null
N_REPLICATES = 200
NULL_B = 199


def _iid_null(rng: np.random.Generator, n_groups: int) -> dict:
    return _clustered_case(rng, n_groups, per_group=3, betas=(0.0, 0.0), gamma=0.0, persistence=0.0)


def _clustered_null(rng: np.random.Generator, n_groups: int) -> dict:
    return _clustered_case(rng, n_groups, per_group=5, betas=(0.0, 0.0), gamma=1.5, persistence=1.5)


def _null_rates(make_case, scheme: str, n_groups: int, seed: int) -> dict[str, int]:
    """How often, over N_REPLICATES null datasets, p <= 0.05 for pair (h0, f0), head h0, and any pair (max-T)."""
    rng = np.random.default_rng(seed)
    hits = {"pair": 0, "head": 0, "family": 0}
    for _ in range(N_REPLICATES):
        ds = _dataset(make_case(rng, n_groups))
        inputs = None if scheme == "sign-flip" else PermutationInputs.from_dataset(ds, "spearman")
        result = randomisation_test(estimate(ds).sums, scheme=scheme, permutation_inputs=inputs,
                                    n_resamples=NULL_B, rng=rng)
        hits["pair"] += result.pair_p[0, 0] <= 0.05
        hits["head"] += result.head_p[0] <= 0.05
        hits["family"] += result.pair_p_step_down.min() <= 0.05
    return hits


@pytest.mark.slow
@pytest.mark.parametrize(("null", "scheme", "n_groups", "seed"), [
    ("iid", "sign-flip", 12, 1),
    ("iid", "within-scenario", 6, 2),
    ("clustered", "sign-flip", 12, 3),
    ("clustered", "within-group", 8, 4),
])
def test_false_positive_rate_is_at_most_nominal(null, scheme, n_groups, seed):
    make_case = {"iid": _iid_null, "clustered": _clustered_null}[null]
    hits = _null_rates(make_case, scheme, n_groups, seed=seed)
    for statistic, count in hits.items():
        test = stats.binomtest(int(count), N_REPLICATES, 0.05, alternative="greater")
        assert test.pvalue > 0.01, f"{statistic}: {count}/{N_REPLICATES} p-values <= 0.05"


@pytest.mark.slow
def test_within_scenario_scheme_is_anti_conservative_on_clustered_data():
    """The clustered null is demanding: a scheme that treats scenarios as independent fails it."""
    hits = _null_rates(_clustered_null, "within-scenario", 8, seed=99)
    assert stats.binomtest(int(hits["pair"]), N_REPLICATES, 0.05, alternative="greater").pvalue < 0.01


# --------------------------------------------------------------------------- reproducibility and arguments
_P_FIELDS = ("pair_p", "pair_p_single_step", "pair_p_step_down", "head_p", "head_p_single_step", "head_p_step_down",
            "pair_p_raw_single_step", "pair_p_raw_step_down", "head_p_raw", "head_p_raw_single_step",
            "head_p_raw_step_down", "null_sd")


@pytest.mark.parametrize("scheme", ["sign-flip", "within-group", "within-scenario"])
def test_results_do_not_depend_on_batch(scheme):
    case = _clustered_case(np.random.default_rng(3), n_groups=12, per_group=2)
    ds = _dataset(case)
    inputs = PermutationInputs.from_dataset(ds, "spearman")
    results = {batch: randomisation_test(estimate(ds).sums, scheme=scheme, permutation_inputs=inputs,
                                         n_resamples=50, rng=4, batch=batch) for batch in (1, 7, None)}
    for batch in (1, 7):
        for field in _P_FIELDS:
            np.testing.assert_array_equal(getattr(results[batch], field), getattr(results[None], field))
        np.testing.assert_array_equal(results[batch].null_hsi, results[None].null_hsi)


@pytest.mark.parametrize("scheme", ["sign-flip", "within-group"])
def test_same_rng_same_numbers(scheme):
    ds = _dataset(_clustered_case(np.random.default_rng(3), n_groups=12, per_group=2))
    inputs = PermutationInputs.from_dataset(ds, "spearman")
    sums = estimate(ds).sums

    def run(rng):
        return randomisation_test(sums, scheme=scheme, permutation_inputs=inputs, n_resamples=99, rng=rng)

    first, again, generator, other = run(8), run(8), run(np.random.default_rng(8)), run(9)
    for field in (*_P_FIELDS, "null_hsi"):
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
        np.testing.assert_array_equal(getattr(first, field), getattr(generator, field))
    assert not np.array_equal(first.null_hsi, other.null_hsi)


@pytest.mark.parametrize(("n_groups", "expected"), [(12, "sign-flip"), (13, "sign-flip"), (11, "within-group"),
                                                    (3, "within-group")])
def test_auto_scheme(n_groups, expected):
    ds = _dataset(_clustered_case(np.random.default_rng(5), n_groups=n_groups, per_group=2))
    inputs = PermutationInputs.from_dataset(ds, "spearman")
    result = randomisation_test(estimate(ds).sums, scheme="auto", permutation_inputs=inputs, n_resamples=20, rng=0)
    assert result.scheme == expected


def test_auto_scheme_without_permutation_inputs_below_twelve_groups_raises():
    ds = _dataset(_clustered_case(np.random.default_rng(5), n_groups=11, per_group=2))
    with pytest.raises(ValueError, match=r"within-group.*permutes entities.*sign-flip.*12 groups.*11"):
        randomisation_test(estimate(ds).sums, scheme="auto", n_resamples=20, rng=0)


@pytest.mark.parametrize("scheme", ["within-group", "within-scenario"])
def test_permutation_scheme_without_inputs_raises(scheme):
    ds = _dataset(_clustered_case(np.random.default_rng(5), n_groups=12, per_group=2))
    with pytest.raises(ValueError, match=f"`scheme='{scheme}'` permutes entities"):
        randomisation_test(estimate(ds).sums, scheme=scheme, n_resamples=20, rng=0)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"scheme": "bootstrap"}, "`scheme`.*'sign-flip'.*'bootstrap'"),
    ({"n_resamples": 0}, "`n_resamples`"),
    ({"batch": 0}, "`batch`"),
])
def test_invalid_arguments_raise(kwargs, match):
    ds = _dataset(_clustered_case(np.random.default_rng(5), n_groups=12, per_group=2))
    with pytest.raises(ValueError, match=match):
        randomisation_test(estimate(ds).sums, **{"n_resamples": 20, "rng": 0, **kwargs})


def test_fewer_than_two_groups_raises():
    ds = _dataset(_clustered_case(np.random.default_rng(5), n_groups=1, per_group=4))
    with pytest.raises(ValueError, match="at least 2 groups"):
        randomisation_test(estimate(ds).sums, scheme="sign-flip", n_resamples=20, rng=0)
