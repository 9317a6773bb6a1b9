r"""Randomisation tests of "no association" for every (head, feature) pair and every head.

Null hypothesis for (h, f): within a scenario, the head's attention is unrelated to which entity has which
feature value. The statistics are studentised by the spread of their own null distribution (Westfall and Young
1993, section 2.6): with :math:`s_{hf}` the standard deviation of :math:`\rho_{hf}` over the randomisations (the
root mean square: the null is centred at 0),
:math:`T_{hf} = |\rho_{hf}| / s_{hf}` per pair (two-sided) and :math:`M_h = \max_f T_{hf}` per head (the
studentised HSI; its p-value pays for choosing the best feature). Studentising changes no pair's own p-value, but
the max-T adjustments compare like with like: a feature that persists within episodes has a wide null spread of
rho, and on the raw scale it would set the maximum for every other test (a modest effect on a feature that varies
from scenario to scenario survived the raw step-down max-T in 7% of data sets where its raw p was below 0.05 in
93%). The raw statistics :math:`|\rho_{hf}|` and :math:`\mathrm{HSI}_h = \max_f |\rho_{hf}|` are tested too
(corrections ``maxt-raw`` and ``maxt-raw-single-step``). A test whose null has no spread gets the statistic 0
(p = 1). Schemes:

``sign-flip``
    each group's contribution to the numerator of rho is multiplied by a random sign, the same for every
    (h, f) of that group; valid when group contributions are independent and symmetric under the null. All
    :math:`2^G` sign patterns are enumerated when they fit in ``n_resamples`` (an exact test).
``within-group``
    one random permutation of the entities is applied to every scenario of a group (an entity keeps its
    permuted identity across the group's scenarios); ``within`` estimator only.
``within-scenario``
    an independent permutation per scenario; valid only when scenarios are independent; ``within`` only.
``auto``
    ``sign-flip`` with at least 12 groups, else ``within-group``.

Permutations act on the entities present in a scenario (padding stays padding). p-values follow scipy:
:math:`p = (1 + \#\{T^* \ge T - \epsilon\}) / (1 + B)` for Monte-Carlo tests and :math:`\#\{T^* \ge T - \epsilon\}
/ 2^G` under exact enumeration, with :math:`\epsilon` a relative tolerance of 100 machine epsilons for ties.

References
----------
.. [1] Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero. Stat. Appl. Genet.
   Mol. Biol. 9(1). https://doi.org/10.2202/1544-6115.1585
.. [2] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from .._validation import HSIDataError, OptionError, normalize_rng
from ..data import HSIDataset
from ..estimators import hsi_from_rho, within_centred
from ..group_sums import GroupSums, rowwise_product
from ..settings import MIN_SIGN_FLIP_GROUPS, PERMUTATION_SCHEMES, AnalysisSettings, check_option
from .resampling import ExceedanceCounter, batch_sizes, check_batch

__all__ = ["MIN_SIGN_FLIP_GROUPS", "PermutationInputs", "RandomisationResult", "randomisation_test",
           "resolve_scheme", "sign_patterns"]

PERMUTATION_BATCH_ELEMENTS = 20_000_000
FloatArray = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class RandomisationResult:
    """p-values of the randomisation test, raw and max-T adjusted, for pairs and for heads.

    Attributes
    ----------
    scheme : str
        The scheme used (``auto`` resolved).
    n_resamples : int
        Randomisations evaluated (``2**G`` when exact).
    exact : bool
        True when every sign pattern was enumerated.
    pair_p, pair_p_single_step, pair_p_step_down : ndarray (H, F)
        Unadjusted p-value of each pair, and its studentised max-T adjustments over the family of all pairs.
    head_p, head_p_single_step, head_p_step_down : ndarray (H,)
        The same for the studentised HSI :math:`M_h` over the family of heads.
    pair_p_raw_single_step, pair_p_raw_step_down : ndarray (H, F)
        Max-T adjustments of :math:`|\\rho_{hf}|` on its raw scale.
    head_p_raw, head_p_raw_single_step, head_p_raw_step_down : ndarray (H,)
        p-value and max-T adjustments of :math:`\\mathrm{HSI}_h` on its raw scale.
    null_sd : ndarray (H, F)
        :math:`s_{hf}`, the standard deviation of each rho over the randomisations.
    null_hsi : ndarray (B, H)
        Null distribution of each head's HSI (for figures).
    null_head : ndarray (B, H)
        Null distribution of each head's studentised HSI :math:`M_h`.
    """

    scheme: str
    n_resamples: int
    exact: bool
    pair_p: FloatArray
    pair_p_single_step: FloatArray
    pair_p_step_down: FloatArray
    head_p: FloatArray
    head_p_single_step: FloatArray
    head_p_step_down: FloatArray
    pair_p_raw_single_step: FloatArray
    pair_p_raw_step_down: FloatArray
    head_p_raw: FloatArray
    head_p_raw_single_step: FloatArray
    head_p_raw_step_down: FloatArray
    null_sd: FloatArray
    null_hsi: FloatArray
    null_head: FloatArray

    def head_statistic(self, rho: FloatArray) -> FloatArray:
        """The studentised HSI :math:`M_h = \\max_f |\\rho_{hf}| / s_{hf}` of estimates ``rho`` (..., H, F)."""
        return _studentised_max(np.abs(rho), self.null_sd)


@dataclass(frozen=True, eq=False)
class PermutationInputs:
    """What the permutation schemes shuffle: centred values of the ``within`` estimator and the groups."""

    attention: FloatArray  # (S, H, F, V) centred within scenario
    features: FloatArray  # (S, F, V) centred within scenario
    present: NDArray[np.bool_]  # (S, V)
    group_codes: NDArray[np.intp]  # (S,)
    denominator: FloatArray  # (H, F): sqrt(sum a~^2 sum x~^2) of the data

    @classmethod
    def from_dataset(cls, dataset: HSIDataset, correlation: str) -> PermutationInputs:
        attention, features = within_centred(dataset, correlation)
        denominator = np.sqrt(np.einsum("shfv,shfv->hf", attention, attention)
                              * np.einsum("sfv,sfv->f", features, features))
        return cls(attention, features, dataset.mask, dataset.group_codes, denominator)

    def rho(self, permutations: NDArray[np.intp]) -> FloatArray:
        """rho for each permutation (b, S, V) of the feature entities, denominators held fixed: (b, H, F)."""
        n_scen, n_heads, n_features, n_slots = self.attention.shape
        rho = np.empty((permutations.shape[0], n_heads, n_features))
        for f in range(n_features):
            shuffled = np.take_along_axis(self.features[None, :, f, :], permutations, axis=2)
            a = self.attention[:, :, f, :].transpose(0, 2, 1).reshape(n_scen * n_slots, n_heads)
            rho[:, :, f] = rowwise_product(shuffled.reshape(permutations.shape[0], -1), a)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.clip(rho / self.denominator, -1.0, 1.0)

    def batch_limit(self) -> int:
        """Permutations per batch that keep the (batch, S, V) index arrays near 160 MB."""
        return max(1, PERMUTATION_BATCH_ELEMENTS // self.present.size)

    def permutations(self, keys: FloatArray) -> NDArray[np.intp]:
        """Permutations (b, S, V) that reorder each scenario's present entities by ``keys`` (b, S, V).

        Present entity positions, in increasing order, receive the present positions sorted by key; padding
        maps to itself.
        """
        n_slots = self.present.shape[1]
        positions = np.where(self.present, np.arange(n_slots), n_slots + np.arange(n_slots))
        present_order = np.argsort(positions, axis=1, kind="stable")  # present positions first, ascending
        shuffled_order = np.argsort(np.where(self.present, keys, 2.0 + np.arange(n_slots)), axis=2,
                                    kind="stable")
        permutations = np.empty(keys.shape, dtype=np.intp)
        target = np.broadcast_to(present_order, keys.shape)
        np.put_along_axis(permutations, target, shuffled_order, axis=2)
        return permutations


def sign_patterns(n_groups: int, batch: int) -> Iterator[FloatArray]:
    """All 2**G sign patterns, in batches (the first pattern is the identity)."""
    total = 2**n_groups
    bits = np.arange(n_groups)
    for start in range(0, total, batch):
        codes = np.arange(start, min(start + batch, total))
        yield (1.0 - 2.0 * ((codes[:, None] >> bits) & 1)).astype(np.float64)


def resolve_scheme(scheme: str, n_groups: int, *, permutable: bool) -> str:
    """The scheme a test of ``n_groups`` groups uses: ``auto`` resolved, availability checked, nothing computed.

    ``auto`` is ``sign-flip`` with at least :data:`MIN_SIGN_FLIP_GROUPS` groups (enough sign patterns for a
    p-value below 0.001), else ``within-group``. The permutation schemes need ``permutable`` data: the ``within``
    estimator without adjustment (:attr:`hsi_stats.settings.AnalysisSettings.permutable`).

    Examples
    --------
    >>> resolve_scheme("auto", 40, permutable=True), resolve_scheme("auto", 8, permutable=True)
    ('sign-flip', 'within-group')
    """
    if scheme == "auto":
        scheme = "sign-flip" if n_groups >= MIN_SIGN_FLIP_GROUPS else "within-group"
    if scheme in PERMUTATION_SCHEMES and not permutable:
        raise OptionError(f"`scheme={scheme!r}` permutes entities and is available for estimator='within' without "
                          "adjustment only; use scheme='sign-flip' (it needs at least "
                          f"{MIN_SIGN_FLIP_GROUPS} groups to be used by default; the data have {n_groups}).")
    return scheme


def randomisation_test(
    sums: GroupSums,
    *,
    scheme: str | None = None,
    permutation_inputs: PermutationInputs | None = None,
    n_resamples: int | None = None,
    rng: object = None,
    batch: int | None = None,
    progress: bool = False,
) -> RandomisationResult:
    """Randomisation p-values for every (head, feature) pair and every head, raw and max-T adjusted.

    Parameters
    ----------
    sums : GroupSums
        Per-group sums of the estimator (``Estimate.sums``); the sign-flip scheme needs nothing else.
    scheme : {"auto", "sign-flip", "within-group", "within-scenario"}, optional
        Default: :attr:`AnalysisSettings.scheme <hsi_stats.settings.AnalysisSettings>`; see :func:`resolve_scheme`.
    permutation_inputs : PermutationInputs, optional
        Needed by the permutation schemes (``PermutationInputs.from_dataset``).
    n_resamples : int, optional
        Default: :attr:`AnalysisSettings.n_resamples <hsi_stats.settings.AnalysisSettings>`.
    rng : seed or Generator, optional
    batch : int, optional
        Randomisations per batch (memory only: results do not depend on it).
    progress : bool, default False

    Returns
    -------
    RandomisationResult

    Examples
    --------
    >>> import numpy as np
    >>> from hsi_stats import HSIDataset, estimate
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((40, 5))
    >>> ds = HSIDataset(np.stack([x + rng.random((40, 5)), rng.random((40, 5))], axis=1), {"x": x},
    ...                 groups=np.arange(40) // 2)
    >>> test = randomisation_test(estimate(ds).sums, n_resamples=999, rng=0)
    >>> test.scheme, bool(test.pair_p[0, 0] <= 0.001), bool(test.pair_p[1, 0] > 0.05)
    ('sign-flip', True, True)
    """
    defaults = AnalysisSettings()
    n_resamples = check_option("n_resamples", defaults.n_resamples if n_resamples is None else n_resamples)
    scheme = check_option("scheme", defaults.scheme if scheme is None else scheme)
    _check_groups(sums.n_groups)
    resolved = resolve_scheme(scheme, sums.n_groups, permutable=permutation_inputs is not None)
    return run_randomisation_test(sums, resolved, permutation_inputs, n_resamples, normalize_rng(rng),
                                  check_batch(batch, sums.n_groups), progress)


def _check_groups(n_groups: int) -> None:
    if n_groups < 2:
        raise HSIDataError(f"a randomisation test needs at least 2 groups, but the data have {n_groups}.")


def run_randomisation_test(sums: GroupSums, scheme: str, permutation_inputs: PermutationInputs | None,
                           n_resamples: int, rng: np.random.Generator, batch: int,
                           progress: bool) -> RandomisationResult:
    """:func:`randomisation_test` for arguments already checked and a scheme already resolved."""
    _check_groups(sums.n_groups)
    n_groups = sums.n_groups
    if permutation_inputs is not None and scheme != "sign-flip":
        batch = min(batch, permutation_inputs.batch_limit())
    rho_hat = sums.rho()
    exact = scheme == "sign-flip" and 2**n_groups <= n_resamples
    null = np.concatenate([np.abs(rho) for rho in tqdm(
        _null_rho(sums, scheme, permutation_inputs, n_resamples, exact, rng, batch),
        total=-(-(2**n_groups if exact else n_resamples) // batch), desc=f"{scheme} test", unit="batch",
        disable=not progress)])  # |rho*| (B, H, F): the spread of each test's null sets its scale
    spread = _null_spread(null, rho_hat)
    observed = np.abs(rho_hat)
    null_hsi, null_head = hsi_from_rho(null), _studentised_max(null, spread)
    counters = {"pair": ExceedanceCounter(_studentised(observed, spread)),
                "head": ExceedanceCounter(_studentised_max(observed, spread)),
                "pair raw": ExceedanceCounter(observed), "head raw": ExceedanceCounter(hsi_from_rho(rho_hat))}
    for start in range(0, null.shape[0], batch):  # in batches: the counters keep counts, not resamples
        chunk = null[start:start + batch]
        counters["pair"].update(_studentised(chunk, spread))
        counters["head"].update(null_head[start:start + batch])
        counters["pair raw"].update(chunk)
        counters["head raw"].update(null_hsi[start:start + batch])
    pair, head, pair_raw, head_raw = (counter.p_values(exact=exact) for counter in counters.values())
    shape = rho_hat.shape
    return RandomisationResult(
        scheme, counters["pair"].n, exact, pair[0].reshape(shape), pair[1].reshape(shape), pair[2].reshape(shape),
        head[0], head[1], head[2], pair_raw[1].reshape(shape), pair_raw[2].reshape(shape), head_raw[0], head_raw[1],
        head_raw[2], spread, null_hsi, null_head)


def _null_spread(null: FloatArray, rho: FloatArray) -> FloatArray:
    """:math:`s_{hf}`: the root mean square of rho over the randomisations, from ``|rho*|`` (B, H, F) -> (H, F)
    (the standard deviation of a null centred at 0, as every scheme's is); NaN where rho is NaN."""
    finite = np.isfinite(null)
    count = finite.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = np.sqrt((np.where(finite, null, 0.0) ** 2).sum(axis=0) / count)
    return np.where(np.isfinite(rho) & (count > 0), spread, np.nan)


def _studentised(magnitude: FloatArray, spread: FloatArray) -> FloatArray:
    """:math:`|\\rho| / s`, 0 where the null has no spread."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(spread > 0, magnitude / np.where(spread > 0, spread, 1.0), np.where(np.isnan(spread),
                                                                                          np.nan, 0.0))


def _studentised_max(magnitude: FloatArray, spread: FloatArray) -> FloatArray:
    """:math:`\\max_f |\\rho_{hf}| / s_{hf}` over the finite features, (..., H, F) -> (..., H)."""
    return hsi_from_rho(_studentised(magnitude, spread))


def _null_rho(sums: GroupSums, scheme: str, inputs: PermutationInputs | None, n_resamples: int, exact: bool,
              rng: np.random.Generator, batch: int) -> Iterator[FloatArray]:
    """Batches (b, H, F) of rho under the null."""
    if scheme == "sign-flip":
        rows = sums.flip_rows()
        flat = rows.reshape(rows.shape[0], -1)
        patterns = (sign_patterns(sums.n_groups, batch) if exact else
                    (np.where(rng.random((size, sums.n_groups)) < 0.5, -1.0, 1.0)
                     for size in batch_sizes(n_resamples, batch)))
        for signs in patterns:
            yield sums.rho_from_flip_total(rowwise_product(signs, flat).reshape((signs.shape[0], *rows.shape[1:])))
        return
    assert inputs is not None
    n_scen, n_slots = inputs.present.shape
    n_groups = int(inputs.group_codes.max()) + 1
    for size in batch_sizes(n_resamples, batch):
        if scheme == "within-group":
            keys = rng.random((size, n_groups, n_slots))[:, inputs.group_codes, :]
        else:
            keys = rng.random((size, n_scen, n_slots))
        yield inputs.rho(inputs.permutations(keys))
