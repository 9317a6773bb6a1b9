"""Properties of the resampling procedures, checked by Hypothesis on small random datasets.

- Results do not depend on ``batch``, exactly; the same ``rng`` gives the same numbers, exactly.
- p-values lie in [1/(B+1), 1] and have the form (1+k)/(1+B) (Monte-Carlo) or in [1/2**G, 1] (exact); adjusted
  p-values are at least the raw ones.
- Percentile and basic intervals are ordered and percentile endpoints lie within the replicates. A percentile
  interval need not contain the estimate: rho of the ``within`` estimator is a ratio of sums, and
  :func:`test_percentile_interval_can_exclude_a_ratio_estimate` builds data where every resample is at least
  the estimate. It must contain it when rho is a mean of per-group values (equal per-group denominators), which
  is asserted on such data.
- Permuting the entities of each scenario (attention, features and mask together) changes no interval and no
  sign-flip p-value for the same ``rng``.
"""

from __future__ import annotations

import warnings

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hsi_stats import HSIDataset, estimate
from hsi_stats._validation import ConstantInputWarning
from hsi_stats.inference.bootstrap import cluster_bootstrap
from hsi_stats.inference.randomisation import PermutationInputs, randomisation_test

COMBOS = [{"estimator": e, "correlation": c} for e in ("within", "pooled", "fisher") for c in ("spearman", "pearson")]
N_RESAMPLES = 48
BOOT_FIELDS = ("rho_low", "rho_high", "hsi_low", "hsi_high", "rho_se", "hsi_se", "rho_distribution")
P_FIELDS = ("pair_p", "pair_p_single_step", "pair_p_step_down", "head_p", "head_p_single_step", "head_p_step_down",
            "pair_p_raw_single_step", "pair_p_raw_step_down", "head_p_raw", "head_p_raw_single_step",
            "head_p_raw_step_down")
property_settings = settings(max_examples=30)


@st.composite
def cases(draw: st.DrawFn, *, full: bool = False) -> tuple[HSIDataset, dict]:
    """A small dataset (2-6 groups, 1-3 scenarios each, 3-5 slots, >= 3 present) and estimator options.

    ``full``: every slot present and the same number of scenarios in every group.
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n_groups, per_group = draw(st.integers(2, 6)), draw(st.integers(1, 3))
    n_slots, n_heads, n_features = draw(st.integers(3, 5)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sizes = np.full(n_groups, per_group) if full else rng.integers(1, per_group + 1, size=n_groups)
    groups = np.repeat(np.arange(n_groups), sizes)
    rng.shuffle(groups)
    n_scen = groups.size
    mask = np.ones((n_scen, n_slots), bool) if full else rng.random((n_scen, n_slots)) > 0.3
    mask[:, :3] = True
    latent = rng.normal(size=(n_scen, n_slots))
    features = {f"f{i}": latent * rng.normal() + rng.normal(size=latent.shape) for i in range(n_features)}
    logits = rng.normal(size=(n_heads, 1, 1)) * latent + rng.normal(size=(n_heads, n_scen, n_slots))
    attention = np.exp(np.moveaxis(logits, 0, 1))
    options = {"estimator": "within", "correlation": "spearman"} if full else draw(st.sampled_from(COMBOS))
    return HSIDataset(np.where(mask[:, None, :], attention, 0.0), features, mask=mask, groups=groups), options


def _estimate(ds: HSIDataset, options: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConstantInputWarning)
        return estimate(ds, **options)


def _boot(sums, method: str, rng=0, batch=None):
    return cluster_bootstrap(sums, n_resamples=N_RESAMPLES, method=method, rng=rng, batch=batch)


def _test(sums, rng=0, batch=None, scheme="sign-flip", inputs=None):
    return randomisation_test(sums, scheme=scheme, permutation_inputs=inputs, n_resamples=N_RESAMPLES, rng=rng,
                              batch=batch)


def _equal(a, b, fields, exact: bool = True) -> None:
    for field in fields:
        if exact:
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field), err_msg=field)
        else:
            np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=1e-12, atol=1e-14, err_msg=field)


# --------------------------------------------------------------------------- batch and rng
@property_settings
@given(case=cases(), method=st.sampled_from(["bca", "percentile", "basic"]))
def test_bootstrap_does_not_depend_on_batch(case, method):
    ds, options = case
    sums = _estimate(ds, options).sums
    reference = _boot(sums, method)
    for batch in (1, 2, 5):
        result = _boot(sums, method, batch=batch)
        _equal(result, reference, ("argmax_share",))
        _equal(result, reference, BOOT_FIELDS)


@property_settings
@given(case=cases(), scheme=st.sampled_from(["sign-flip", "within-group", "within-scenario"]))
def test_randomisation_does_not_depend_on_batch(case, scheme):
    ds, options = case
    if scheme != "sign-flip":  # permutation schemes are defined for the unadjusted within estimator
        options = {"estimator": "within", "correlation": options["correlation"]}
    inputs = PermutationInputs.from_dataset(ds, options["correlation"]) if scheme != "sign-flip" else None
    sums = _estimate(ds, options).sums
    reference = _test(sums, scheme=scheme, inputs=inputs)
    for batch in (1, 2, 5):
        result = _test(sums, batch=batch, scheme=scheme, inputs=inputs)
        _equal(result, reference, P_FIELDS)
        _equal(result, reference, ("null_hsi",))


@property_settings
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_same_rng_same_numbers(case, seed):
    ds, options = case
    sums = _estimate(ds, options).sums
    _equal(_boot(sums, "bca", rng=seed), _boot(sums, "bca", rng=np.random.default_rng(seed)),
           (*BOOT_FIELDS, "argmax_share"))
    _equal(_test(sums, rng=seed), _test(sums, rng=np.random.default_rng(seed)), (*P_FIELDS, "null_hsi"))


# --------------------------------------------------------------------------- p-values
@property_settings
@given(case=cases(), n_resamples=st.sampled_from([9, 19, 99]))
def test_p_values_are_bounded(case, n_resamples):
    ds, options = case
    sums = _estimate(ds, options).sums
    result = randomisation_test(sums, scheme="sign-flip", n_resamples=n_resamples, rng=0)
    n_groups = sums.n_groups
    assert result.exact == (2**n_groups <= n_resamples)
    defined = ~np.isnan(sums.rho())
    for raw, single, step_down, mask in ((result.pair_p, result.pair_p_single_step, result.pair_p_step_down,
                                          defined),
                                         (result.head_p, result.head_p_single_step, result.head_p_step_down,
                                          defined.any(axis=-1))):
        for p in (raw, single, step_down):
            assert np.all(np.isnan(p) == ~mask)
            p = p[mask]
            assert np.all(p <= 1)
            if result.exact:
                assert result.n_resamples == 2**n_groups
                assert np.all(p >= 1 / 2**n_groups)
                np.testing.assert_allclose(p * 2**n_groups, np.round(p * 2**n_groups), atol=1e-9)
            else:
                assert np.all(p >= 1 / (n_resamples + 1))
                np.testing.assert_allclose(p * (n_resamples + 1), np.round(p * (n_resamples + 1)), atol=1e-9)
        assert np.all(single[mask] >= raw[mask]) and np.all(step_down[mask] >= raw[mask])
        assert np.all(step_down[mask] <= single[mask])


# --------------------------------------------------------------------------- intervals
@property_settings
@given(case=cases())
def test_percentile_and_basic_intervals_are_ordered(case):
    ds, options = case
    est = _estimate(ds, options)
    percentile, basic = _boot(est.sums, "percentile"), _boot(est.sums, "basic")
    replicates = percentile.rho_distribution
    defined = ~np.isnan(est.rho)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices of undefined rho
        low_bound, high_bound = np.nanmin(replicates, axis=0), np.nanmax(replicates, axis=0)
    for result in (percentile, basic):
        assert np.all(result.rho_low[defined] <= result.rho_high[defined])
        assert np.all(result.hsi_low <= result.hsi_high)
    assert np.all(low_bound[defined] <= percentile.rho_low[defined])
    assert np.all(percentile.rho_high[defined] <= high_bound[defined])
    assert np.all((percentile.rho_low[defined] >= -1) & (percentile.rho_high[defined] <= 1))


@property_settings
@given(case=cases(full=True))
def test_percentile_interval_contains_a_mean_like_estimate(case):
    # Every slot present, distinct values and the same number of scenarios per group: with Spearman every group
    # has the same sums of squares, so rho is the mean of per-group values and a replicate is a bootstrap mean.
    ds, options = case
    est = _estimate(ds, options)
    boot = _boot(est.sums, "percentile")
    np.testing.assert_allclose(est.sums.attention_ss, est.sums.attention_ss[:1].repeat(est.sums.n_groups, 0))
    tol = 1e-12
    assert np.all(boot.rho_low <= est.rho + tol) and np.all(est.rho <= boot.rho_high + tol)


def test_percentile_interval_can_exclude_a_ratio_estimate():
    """rho = sum c / sqrt(sum a sum x) over 2m groups, half with (a, x) = (s^2, 1/s^2) and half with (1/s^2, s^2).

    A resample with k groups of the first kind has sum a sum x = G^2 + k (G - k) (s^4 + s^-4 - 2), largest at
    k = G/2: every resample's rho is at least the estimate, with equality only when k = G/2, which has
    probability ~ sqrt(2 / (pi G)) (1.8% for G = 2000). So the 2.5% percentile lies above the estimate.
    """
    n_groups, scale, r = 2000, 3.0, 0.3
    x = np.array([-1.5, -0.5, 0.5, 1.5]) / np.sqrt(5)
    e = np.array([1.0, -1.0, -1.0, 1.0]) / 2
    y = r * x + np.sqrt(1 - r**2) * e  # unit vectors with correlation r, both centred
    s = np.where(np.arange(n_groups) % 2 == 0, scale, 1 / scale)[:, None]
    ds = HSIDataset((s * y)[:, None, :], {"x": x / s}, groups=np.arange(n_groups))
    est = estimate(ds, correlation="pearson")
    boot = cluster_bootstrap(est.sums, n_resamples=4000, method="percentile", rng=0)
    assert np.all(boot.rho_distribution >= est.rho * (1 - 1e-12))
    assert boot.rho_low[0, 0] > est.rho[0, 0]


# --------------------------------------------------------------------------- entity order
@property_settings
@given(case=cases(), seed=st.integers(0, 2**32 - 1))
def test_permuting_entities_within_scenarios_changes_nothing(case, seed):
    ds, options = case
    rng = np.random.default_rng(seed)
    order = np.argsort(rng.random(ds.mask.shape), axis=1)
    permuted = HSIDataset(np.take_along_axis(ds.attention, order[:, None, :], axis=2),
                          {name: np.take_along_axis(values, order, axis=1) for name, values in ds.features.items()},
                          mask=np.take_along_axis(ds.mask, order, axis=1), groups=ds.groups)
    before, after = _estimate(ds, options).sums, _estimate(permuted, options).sums
    for method in ("percentile", "basic", "bca"):
        _equal(_boot(after, method), _boot(before, method), BOOT_FIELDS, exact=False)
    _equal(_test(after), _test(before), P_FIELDS)
