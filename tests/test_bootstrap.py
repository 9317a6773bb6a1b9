"""``cluster_bootstrap`` against independent computations.

- Replicates: for a given resample, ``sums.rho(counts)`` equals ``estimate`` on a dataset rebuilt by concatenating
  the drawn groups (duplicates relabelled as distinct groups), to rounding.
- Percentile intervals, standard errors and the primary-feature stability agree with a brute-force cluster
  bootstrap (a Python loop that rebuilds the dataset and calls ``estimate`` for every resample) within
  Monte-Carlo error.
- BCa and basic intervals agree with ``scipy.stats.bootstrap`` applied to the per-group rows with a closed-form
  statistic written here, within Monte-Carlo error.
- The HSI's interval is the projection of the simultaneous band of the head's rhos, as a loop over resamples and
  features computes it from the same replicates; it holds its estimate and starts at 0 for a head without effect.
- ``bootstrap_weights`` are multinomial counts whose stream does not depend on the batch split; results do not
  depend on ``batch`` (to rounding: see the test); the same ``rng`` gives the same numbers; bad arguments raise
  clear errors.

Monte-Carlo tolerances are stated in probability space: an interval endpoint is mapped through the empirical
CDF of the reference replicates, and the level it hits must match the nominal level within four standard
deviations of the two Monte-Carlo estimates involved (details in :func:`_quantile_level_tolerance`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from hsi_stats import HSIDataset, estimate
from hsi_stats.inference.bootstrap import bootstrap_weights, cluster_bootstrap

N_GROUPS, PER_GROUP, N_SLOTS = 15, 4, 5
B_BRUTE = 2000
B_PACKAGE = 20000
B_SCIPY = 20000
LEVEL = 0.95
ALPHA = (1 - LEVEL) / 2
CONFIGS = {
    "within-spearman": {"estimator": "within", "correlation": "spearman"},
    "pooled-pearson": {"estimator": "pooled", "correlation": "pearson"},
    "fisher-spearman": {"estimator": "fisher", "correlation": "spearman"},
}


# --------------------------------------------------------------------------- data
def _softmax(logits: np.ndarray, mask: np.ndarray) -> np.ndarray:
    shifted = np.where(mask, logits - np.where(mask, logits, -np.inf).max(axis=-1, keepdims=True), -np.inf)
    weights = np.exp(shifted)
    return weights / weights.sum(axis=-1, keepdims=True)


def _raw_data(seed: int = 20240611) -> dict[str, np.ndarray]:
    """15 groups x 4 scenarios x 5 slots, 2 heads, 2 features, some padding (>= 3 present).

    Head 0 follows feature x0 with a slope that varies strongly between groups, so that resampling groups and
    resampling scenarios give clearly different distributions; head 1 is weakly related to both features.
    """
    rng = np.random.default_rng(seed)
    n_scen = N_GROUPS * PER_GROUP
    groups = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    mask = rng.random((n_scen, N_SLOTS)) > 0.2
    mask[:, :3] = True
    x0 = rng.normal(size=(n_scen, N_SLOTS))
    x1 = 0.5 * x0 + rng.normal(size=(n_scen, N_SLOTS))
    slope = rng.normal(0.6, 1.5, size=N_GROUPS)[groups][:, None]
    logits = np.stack([slope * x0 + 0.5 * rng.normal(size=x0.shape),
                       0.25 * x1 + 0.15 * x0 + rng.normal(size=x0.shape)], axis=1)
    attention = _softmax(logits, mask[:, None, :])
    attention = np.where(mask[:, None, :], attention, 0.0)
    return {"attention": attention, "x0": np.where(mask, x0, 0.0), "x1": np.where(mask, x1, 0.0),
            "mask": mask, "groups": groups}


def _dataset(raw: dict[str, np.ndarray], rows: np.ndarray | None = None,
             groups: np.ndarray | None = None) -> HSIDataset:
    rows = np.arange(raw["groups"].size) if rows is None else rows
    return HSIDataset(raw["attention"][rows], {"x0": raw["x0"][rows], "x1": raw["x1"][rows]},
                      mask=raw["mask"][rows], groups=raw["groups"][rows] if groups is None else groups)


def _resampled_dataset(raw: dict[str, np.ndarray], drawn: np.ndarray) -> HSIDataset:
    """The drawn groups' scenarios concatenated, each draw a new group (so duplicates are distinct groups)."""
    members = [np.flatnonzero(raw["groups"] == g) for g in drawn]
    rows = np.concatenate(members)
    new_groups = np.repeat(np.arange(len(drawn)), [m.size for m in members])
    return _dataset(raw, rows, new_groups)


def _brute_force_bootstrap(raw: dict[str, np.ndarray], n_resamples: int, seed: int) -> dict[str, np.ndarray]:
    """Replicates (B, H, F) of rho for every configuration, one explicit resample at a time."""
    rng = np.random.default_rng(seed)
    n_groups = np.unique(raw["groups"]).size
    replicates = {name: [] for name in CONFIGS}
    for _ in range(n_resamples):
        resampled = _resampled_dataset(raw, rng.integers(0, n_groups, size=n_groups))
        for name, options in CONFIGS.items():
            replicates[name].append(estimate(resampled, **options).rho)
    return {name: np.array(values) for name, values in replicates.items()}


# --------------------------------------------------------------------------- tolerances
def _ecdf(sample: np.ndarray, value: float) -> float:
    """Share of ``sample`` at or below ``value``."""
    return float(np.mean(sample <= value))


def _quantile_level_tolerance(p: float, n_a: int, n_b: int, z0_share: float | None = None) -> float:
    """Four standard deviations of the difference between two Monte-Carlo estimates of a quantile level.

    An endpoint that is the p-quantile of ``n`` replicates hits level p of the true bootstrap distribution
    up to a standard deviation sqrt(p(1-p)/n). For BCa the level itself is estimated: alpha_1 depends on
    z0 = Phi^-1(q), q the share of replicates below the estimate, whose standard deviation sqrt(q(1-q)/n)
    propagates (delta method, d alpha_1 / d z0 ~ 2 phi(Phi^-1(p)) for small acceleration) as
    2 phi(Phi^-1(p)) / phi(z0) sqrt(q(1-q)/n). The two runs are independent, so variances add; 2/min(n) covers
    the discreteness of an empirical CDF.
    """
    variance = p * (1 - p) * (1 / n_a + 1 / n_b)
    if z0_share is not None:
        slope = 2 * stats.norm.pdf(stats.norm.ppf(p)) / stats.norm.pdf(stats.norm.ppf(z0_share))
        variance += slope**2 * z0_share * (1 - z0_share) * (1 / n_a + 1 / n_b)
    return 4 * math.sqrt(variance) + 2 / min(n_a, n_b)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def raw() -> dict[str, np.ndarray]:
    return _raw_data()


@pytest.fixture(scope="module")
def brute_force(raw) -> dict[str, np.ndarray]:
    return _brute_force_bootstrap(raw, B_BRUTE, seed=7)


@pytest.fixture(scope="module")
def package_percentile(raw):
    ds = _dataset(raw)
    return {name: (estimate(ds, **options),
                   cluster_bootstrap(estimate(ds, **options).sums, n_resamples=B_PACKAGE, method="percentile",
                                     confidence_level=LEVEL, rng=11))
            for name, options in CONFIGS.items()}


# --------------------------------------------------------------------------- replicates, exactly
@pytest.mark.parametrize("name", CONFIGS)
def test_weighted_sums_equal_estimate_on_the_resampled_dataset(raw, name):
    options = CONFIGS[name]
    sums = estimate(_dataset(raw), **options).sums
    rng = np.random.default_rng(3)
    for _ in range(25):
        drawn = rng.integers(0, N_GROUPS, size=N_GROUPS)
        counts = np.bincount(drawn, minlength=N_GROUPS).astype(float)
        expected = estimate(_resampled_dataset(raw, drawn), **options).rho
        np.testing.assert_allclose(sums.rho(counts[None])[0], expected, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------- percentile vs brute force
@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_percentile_interval_matches_brute_force_cluster_bootstrap(name, brute_force, package_percentile):
    replicates = brute_force[name]  # (B, H, F)
    _, boot = package_percentile[name]
    brute_low, brute_high = np.percentile(replicates, [100 * ALPHA, 100 * (1 - ALPHA)], axis=0)
    tol = _quantile_level_tolerance(ALPHA, B_BRUTE, B_PACKAGE)
    for h in range(2):
        for f in range(2):
            sample = replicates[:, h, f]
            # Both endpoints sit at the nominal levels of the brute-force distribution.
            assert abs(_ecdf(sample, boot.rho_low[h, f]) - ALPHA) <= tol, (h, f, boot.rho_low[h, f], brute_low[h, f])
            assert abs(_ecdf(sample, boot.rho_high[h, f]) - (1 - ALPHA)) <= tol, (
                h, f, boot.rho_high[h, f], brute_high[h, f])


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_standard_error_matches_brute_force(name, brute_force, package_percentile):
    # The relative standard deviation of a standard-deviation estimate from n replicates is about 1/sqrt(2n)
    # (near-normal replicates); four of them for the two independent runs.
    tol = 4 * math.sqrt(1 / (2 * B_BRUTE) + 1 / (2 * B_PACKAGE))
    _, boot = package_percentile[name]
    brute_se = brute_force[name].std(axis=0, ddof=1)
    np.testing.assert_allclose(boot.rho_se, brute_se, rtol=tol)
    np.testing.assert_allclose(boot.hsi_se, np.abs(brute_force[name]).max(axis=2).std(axis=0, ddof=1), rtol=tol)


@pytest.mark.slow
@pytest.mark.parametrize("name", CONFIGS)
def test_stability_matches_brute_force(name, brute_force, package_percentile):
    est, boot = package_percentile[name]
    stability = boot.stability(est.rho)
    for h in range(2):
        primary = est.feature_names.index(est.primary_feature[h])
        share = float(np.mean(np.abs(brute_force[name][:, h, :]).argmax(axis=1) == primary))
        tol = 4 * math.sqrt(share * (1 - share) * (1 / B_BRUTE + 1 / B_PACKAGE)) + 2 / B_BRUTE
        assert abs(stability[h] - share) <= tol, (h, stability[h], share)
    np.testing.assert_allclose(boot.argmax_share.sum(axis=1), 1.0)


@pytest.mark.slow
def test_the_data_distinguish_group_from_scenario_resampling(raw, brute_force):
    """Guard of the tests above: resampling scenarios instead of groups would give a clearly narrower spread."""
    rng = np.random.default_rng(5)
    ds = _dataset(raw)
    per_scenario = estimate(ds.with_groups(np.arange(ds.n_scenarios))).sums
    counts = bootstrap_weights(rng, 4000, per_scenario.n_groups)
    narrow = per_scenario.rho(counts)[:, 0, 0].std(ddof=1)
    wide = brute_force["within-spearman"][:, 0, 0].std(ddof=1)
    assert narrow < 0.75 * wide


# --------------------------------------------------------------------------- BCa and basic vs scipy
def _closed_form_statistic(name: str, n_features: int):
    """rho of one (head, feature) pair or the HSI of a head from per-group rows, summed over the last axis."""
    def within(cross, attention_ss, feature_ss):
        return cross.sum(axis=-1) / np.sqrt(attention_ss.sum(axis=-1) * feature_ss.sum(axis=-1))

    def pooled(count, attention_sum, feature_sum, attention_sq, feature_sq, cross):
        n, sa, sx = count.sum(axis=-1), attention_sum.sum(axis=-1), feature_sum.sum(axis=-1)
        covariance = cross.sum(axis=-1) - sa * sx / n
        return covariance / np.sqrt((attention_sq.sum(axis=-1) - sa**2 / n) * (feature_sq.sum(axis=-1) - sx**2 / n))

    def fisher(mean_z, used):
        return np.tanh(mean_z.sum(axis=-1) / used.sum(axis=-1))

    pair = {"within-spearman": within, "pooled-pearson": pooled, "fisher-spearman": fisher}[name]
    n_args = {"within-spearman": 3, "pooled-pearson": 6, "fisher-spearman": 2}[name]

    def hsi(*samples, axis=-1):
        per_feature = [pair(*samples[i * n_args:(i + 1) * n_args]) for i in range(n_features)]
        return np.max(np.abs(np.stack(per_feature)), axis=0)

    return (lambda *samples, axis=-1: pair(*samples)), hsi


def _group_rows(sums, name: str, h: int, f: int) -> list[np.ndarray]:
    """The per-group rows (G,) that one (head, feature) rho is a function of."""
    if name == "within-spearman":
        return [sums.cross[:, h, f], sums.attention_ss[:, h, f], sums.feature_ss[:, f]]
    if name == "pooled-pearson":
        return [sums.count[:, f], sums.attention_sum[:, h, f], sums.feature_sum[:, f], sums.attention_sq[:, h, f],
                sums.feature_sq[:, f], sums.cross[:, h, f]]
    return [sums.mean_z[:, h, f], sums.used[:, h, f]]


def _scipy_interval(samples: list[np.ndarray], statistic, method: str, seed: int):
    return stats.bootstrap(tuple(samples), statistic, paired=True, vectorized=True, n_resamples=B_SCIPY,
                           confidence_level=LEVEL, method=method, rng=np.random.default_rng(seed))


@pytest.fixture(scope="module")
def package_by_method(raw):
    ds = _dataset(raw)
    return {(name, method): (estimate(ds, **options),
                             cluster_bootstrap(estimate(ds, **options).sums, n_resamples=B_PACKAGE, method=method,
                                               confidence_level=LEVEL, rng=23))
            for name, options in CONFIGS.items() for method in ("bca", "basic")}


def _assert_same_level(method: str, estimate_value: float, ours: tuple[float, float], theirs, seed: str) -> None:
    """Map both intervals' endpoints to levels of scipy's bootstrap distribution and compare them."""
    distribution = theirs.bootstrap_distribution
    theirs_ci = (theirs.confidence_interval.low, theirs.confidence_interval.high)
    if method == "basic":  # an endpoint 2 theta - q maps back to the replicate quantile q
        ours = tuple(2 * estimate_value - v for v in ours)
        theirs_ci = tuple(2 * estimate_value - v for v in theirs_ci)
    share_below = (np.mean(distribution < estimate_value) + np.mean(distribution <= estimate_value)) / 2
    for our_end, their_end in zip(ours, theirs_ci, strict=True):
        their_level = _ecdf(distribution, their_end)
        z0_share = share_below if method == "bca" else None
        tol = _quantile_level_tolerance(min(their_level, 1 - their_level), B_PACKAGE, B_SCIPY, z0_share)
        assert abs(_ecdf(distribution, our_end) - their_level) <= tol, (seed, our_end, their_end)


@pytest.mark.parametrize("method", ["bca", "basic"])
@pytest.mark.parametrize("name", CONFIGS)
def test_interval_matches_scipy_bootstrap(name, method, package_by_method):
    est, boot = package_by_method[name, method]
    pair_statistic, hsi_statistic = _closed_form_statistic(name, n_features=2)
    for h in range(2):
        for f in range(2):
            samples = _group_rows(est.sums, name, h, f)
            np.testing.assert_allclose(pair_statistic(*samples), est.rho[h, f], rtol=1e-10)
            theirs = _scipy_interval(samples, pair_statistic, method, seed=100 + 2 * h + f)
            _assert_same_level(method, est.rho[h, f], (boot.rho_low[h, f], boot.rho_high[h, f]), theirs, f"{h},{f}")
        samples = [row for f in range(2) for row in _group_rows(est.sums, name, h, f)]
        np.testing.assert_allclose(hsi_statistic(*samples), est.hsi[h], rtol=1e-10)


# --------------------------------------------------------------------------- the HSI's interval
def _projection_by_loop(rho: np.ndarray, replicates: np.ndarray, level: float, n_groups: int) -> list[list[float]]:
    """The projection of the simultaneous band of each head's rhos onto max |rho|, written out per head."""
    tail = 2 * stats.norm.cdf(math.sqrt(n_groups / (n_groups - 1))
                                    * stats.t.ppf((1 - level) / 2, n_groups - 1))
    bounds = []
    for h in range(rho.shape[0]):
        features = [f for f in range(rho.shape[1]) if np.isfinite(rho[h, f])]
        se = {f: float(np.std(replicates[:, h, f], ddof=1)) for f in features}
        worst = [max(abs(replicates[b, h, f] - rho[h, f]) / se[f] if se[f] > 0 else 0.0 for f in features)
                 for b in range(replicates.shape[0])]
        c = float(np.quantile(worst, 1 - tail, method="higher"))
        bands = [(rho[h, f] - c * se[f], rho[h, f] + c * se[f]) for f in features]
        low = max(0.0 if lo <= 0 <= hi else min(abs(lo), abs(hi)) for lo, hi in bands)  # distance of a band from 0
        high = min(1.0, max(max(abs(lo), abs(hi)) for lo, hi in bands))
        bounds.append([low, high])
    return bounds


@pytest.mark.parametrize("name", CONFIGS)
def test_the_hsi_interval_is_the_projection_of_the_simultaneous_band(name, package_percentile) -> None:
    est, boot = package_percentile[name]
    expected = _projection_by_loop(est.rho, boot.rho_distribution, boot.confidence_level, N_GROUPS)
    np.testing.assert_allclose(np.column_stack([boot.hsi_low, boot.hsi_high]), expected, rtol=1e-12, atol=1e-15)
    assert np.all((boot.hsi_low <= est.hsi) & (est.hsi <= boot.hsi_high))


def test_a_head_whose_features_are_all_near_zero_gets_an_interval_from_zero() -> None:
    rng = np.random.default_rng(3)
    x = rng.random((400, 6))
    ds = HSIDataset(rng.random((400, 1, 6)), {"x": x, "y": rng.random((400, 6))}, groups=np.arange(400) // 10)
    est = estimate(ds)
    boot = cluster_bootstrap(est.sums, n_resamples=999, rng=0)
    assert boot.hsi_low[0] == 0.0 and est.hsi[0] <= boot.hsi_high[0]


# --------------------------------------------------------------------------- weights
def test_bootstrap_weights_are_multinomial_counts():
    n_groups, n_resamples = 12, 20000
    weights = bootstrap_weights(np.random.default_rng(0), n_resamples, n_groups)
    assert weights.shape == (n_resamples, n_groups)
    np.testing.assert_array_equal(weights.sum(axis=1), n_groups)
    assert np.all(weights == np.round(weights)) and weights.min() >= 0
    # Each count is Binomial(G, 1/G): mean 1, variance 1 - 1/G; P(count = 0) = (1 - 1/G)^G.
    mean_tol = 4 * math.sqrt((1 - 1 / n_groups) / n_resamples)
    np.testing.assert_allclose(weights.mean(axis=0), 1.0, atol=mean_tol)
    p_zero = (1 - 1 / n_groups) ** n_groups
    zero_tol = 4 * math.sqrt(p_zero * (1 - p_zero) / n_resamples)
    np.testing.assert_allclose((weights == 0).mean(axis=0), p_zero, atol=zero_tol)
    # Groups are exchangeable: every group is drawn equally often overall (chi-square, 0.1% level).
    totals = weights.sum(axis=0)
    assert stats.chisquare(totals).pvalue > 0.001


def test_bootstrap_weights_do_not_depend_on_the_batch_split():
    whole = bootstrap_weights(np.random.default_rng(42), 25, 7)
    rng = np.random.default_rng(42)
    parts = [bootstrap_weights(rng, size, 7) for size in (1, 10, 3, 11)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


# --------------------------------------------------------------------------- reproducibility
_RESULT_FIELDS = ("rho_low", "rho_high", "hsi_low", "hsi_high", "rho_se", "hsi_se", "argmax_share",
                  "rho_distribution")


def _assert_identical(a, b) -> None:
    for field in _RESULT_FIELDS:
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)


@pytest.mark.parametrize("method", ["bca", "percentile", "basic"])
@pytest.mark.parametrize("name", CONFIGS)
def test_results_do_not_depend_on_batch(raw, name, method):
    sums = estimate(_dataset(raw), **CONFIGS[name]).sums
    results = {batch: cluster_bootstrap(sums, n_resamples=60, method=method, rng=9, batch=batch)
               for batch in (1, 7, 13, None)}
    # The resamples are the same whatever the batch and each replicate is summed in a fixed order: identical.
    for batch in (1, 7, 13):
        np.testing.assert_array_equal(results[batch].argmax_share, results[None].argmax_share)
        for field in _RESULT_FIELDS:
            np.testing.assert_array_equal(getattr(results[batch], field), getattr(results[None], field),
                                          err_msg=field)


def test_same_rng_same_numbers(raw):
    sums = estimate(_dataset(raw)).sums
    first = cluster_bootstrap(sums, n_resamples=200, rng=5)
    _assert_identical(first, cluster_bootstrap(sums, n_resamples=200, rng=5))
    _assert_identical(first, cluster_bootstrap(sums, n_resamples=200, rng=np.random.default_rng(5)))
    other = cluster_bootstrap(sums, n_resamples=200, rng=6)
    assert not np.array_equal(first.rho_distribution, other.rho_distribution)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"method": "studentized"}, "`method`.*'bca'.*'studentized'"),
    ({"confidence_level": 0}, "`confidence_level`"),
    ({"confidence_level": 1.5}, "`confidence_level`"),
    ({"confidence_level": 1}, "`confidence_level`"),
    ({"n_resamples": 0}, "`n_resamples`"),
    ({"n_resamples": 2.5}, "`n_resamples`"),
    ({"batch": 0}, "`batch`"),
])
def test_invalid_arguments_raise(raw, kwargs, match):
    sums = estimate(_dataset(raw)).sums
    with pytest.raises(ValueError, match=match):
        cluster_bootstrap(sums, **{"n_resamples": 10, "rng": 0, **kwargs})


def test_fewer_than_two_groups_raises(raw):
    one_group = _dataset(raw).with_groups(np.zeros(N_GROUPS * PER_GROUP, dtype=int))
    with pytest.raises(ValueError, match="at least 2 groups"):
        cluster_bootstrap(estimate(one_group).sums, n_resamples=10, rng=0)


# --------------------------------------------------------------------------- stability
def _dominant_feature_dataset(copy: str) -> HSIDataset:
    """Head 0 follows a latent z; features ``a`` and ``b`` are (z, noise), (z, z) or two noisy copies of z."""
    rng = np.random.default_rng(17)
    n_scen = 80
    z = rng.normal(size=(n_scen, 6))
    a, b = {"noise": (z, rng.normal(size=z.shape)), "exact": (z, z.copy()),
            "noisy": (z + 0.7 * rng.normal(size=z.shape), z + 0.7 * rng.normal(size=z.shape))}[copy]
    attention = _softmax(2.0 * z + 0.5 * rng.normal(size=z.shape), np.ones(z.shape, bool))[:, None, :]
    return HSIDataset(attention, {"a": a, "b": b}, groups=np.arange(n_scen) // 4)


def _pearson(ds: HSIDataset):
    # Pearson, not Spearman: within-scenario ranks of two different features tie exactly now and then.
    return estimate(ds, correlation="pearson")


def test_stability_is_one_for_a_dominant_feature():
    est = _pearson(_dominant_feature_dataset("noise"))
    boot = cluster_bootstrap(est.sums, n_resamples=2000, rng=1)
    assert est.primary_feature == ("a",)
    assert boot.stability(est.rho)[0] == 1.0


@pytest.mark.parametrize("copy", ["exact", "noisy"])
def test_stability_splits_between_copies_only(copy):
    # With an exact copy the replicates tie exactly and argmax picks one of them; which one is a convention,
    # so only assert that the whole share stays on the two copies and that stability is that of the primary.
    est = _pearson(_dominant_feature_dataset(copy))
    boot = cluster_bootstrap(est.sums, n_resamples=2000, rng=1)
    np.testing.assert_allclose(boot.argmax_share[0].sum(), 1.0)
    primary = est.feature_names.index(est.primary_feature[0])
    assert boot.stability(est.rho)[0] == boot.argmax_share[0, primary]
    magnitude = np.abs(boot.rho_distribution[:, 0, :])
    expected = np.mean(magnitude[:, primary] >= magnitude[:, 1 - primary])
    if copy == "noisy":  # no ties: the share is the plain frequency of the primary being the larger one
        assert boot.argmax_share[0, primary] == pytest.approx(expected, abs=1e-12)
        assert 0 < boot.argmax_share[0, 1 - primary] < 1


def test_expanded_percentile_interval_matches_its_definition(raw):
    """Hesterberg's expanded interval: plain percentiles of the same replicates at Phi(sqrt(G/(G-1)) t_{G-1})."""
    from scipy.stats import norm
    from scipy.stats import t as student_t

    sums = estimate(_dataset(raw)).sums
    result = cluster_bootstrap(sums, n_resamples=500, method="expanded", confidence_level=0.9, rng=3)
    n_groups = sums.n_groups
    tail = norm.cdf(np.sqrt(n_groups / (n_groups - 1)) * student_t.ppf(0.05, n_groups - 1))
    assert tail < 0.05
    replicates = result.rho_distribution
    np.testing.assert_allclose(result.rho_low, np.percentile(replicates, 100 * tail, axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.rho_high, np.percentile(replicates, 100 * (1 - tail), axis=0), rtol=0,
                               atol=1e-12)
    plain = cluster_bootstrap(sums, n_resamples=500, method="percentile", confidence_level=0.9, rng=3)
    assert np.all(result.rho_high - result.rho_low >= plain.rho_high - plain.rho_low)
