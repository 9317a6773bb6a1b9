r"""Inference for the joint model by episode: jackknife standard errors, t intervals, tests and their corrections.

Standard errors. Episodes are the independent units, so each coefficient's variance is the cluster jackknife
(CV3) over them: with :math:`s_g` episode g's estimating function at the estimate and :math:`I_g` its information,
the fit without episode g is, one Newton step from the estimate, :math:`\hat\beta_{(g)} = \hat\beta -
(I - I_g)^{-1} s_g`, and

.. math::
    \hat V = \frac{G-1}{G} \sum_g (\hat\beta_{(g)} - \bar\beta_{(\cdot)})
              (\hat\beta_{(g)} - \bar\beta_{(\cdot)})^\top

over the G episodes the head's fit counts. Intervals are :math:`\hat\beta_j \pm t_{G-1, 1-\alpha/2}\,\hat{se}_j`
and the test of :math:`\beta_j = 0` is two-sided on :math:`t_{G-1}`, so that a test rejects exactly when its
interval excludes 0. The jackknife with :math:`t_{G-1}` is what MacKinnon, Nielsen and Webb (2023) recommend with
few clusters; in the calibration study (``nox -s joint``) it covered better than the cluster-robust sandwich with
:math:`t_{G-1}`, a cluster bootstrap of the scores, and the one-step (linearised) cluster bootstrap, near-separated
heads included.

Corrections. Over the family of every head x kept feature, ``maxt`` is the step-down max-T procedure (Westfall
and Young 1993) on the studentised coefficients, its joint null distribution from the cluster bootstrap of the
scores: each resample (the episodes drawn with replacement, the same resamples as the bootstrap of rho) moves the
estimate by :math:`I^{-1} \sum_g w_g s_g`; each coefficient's deviations are divided by their standard deviation
over the resamples, and a coefficient's observed statistic is the standard-normal quantile of its t test's
p-value (:math:`\Phi^{-1}(1 - p_j/2)`), so that the family shares one scale. Adjusted p-values are never below the
raw ones. The coefficients' statistics are studentised whichever max-T correction is chosen (``maxt-raw`` and
``maxt-raw-single-step`` concern the scale of |rho|); ``*-single-step`` takes the single-step adjustment. The
statsmodels corrections adjust the raw p-values.

References
----------
.. [1] MacKinnon, J. G., Nielsen, M. Ø. and Webb, M. D. (2023). Cluster-robust inference: a guide to empirical
   practice. Journal of Econometrics 232(2), 272-299. https://doi.org/10.1016/j.jeconom.2022.04.001
.. [2] Bell, R. M. and McCaffrey, D. F. (2002). Bias reduction in standard errors for linear regression with
   multi-stage samples. Survey Methodology 28(2), 169-181.
.. [3] Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing. Wiley.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.special import ndtri
from scipy.stats import t as student_t

from ..group_sums import rowwise_product
from ..joint.design import INDICATOR_SCALE
from ..joint.fit import JointFit
from ..settings import MAXT_CORRECTIONS
from .multitest import adjust_pvalues
from .resampling import ExceedanceCounter

__all__ = ["JOINT_COLUMNS", "JointInference", "ScoreBootstrap", "jackknife_covariance", "joint_inference"]

FloatArray = NDArray[np.float64]

#: Columns of :attr:`hsi_stats.HSIResult.joint`, in order.
JOINT_COLUMNS = ("head", "feature", "coef", "ci_low", "ci_high", "odds_ratio", "p_value", "p_adjusted", "se",
                 "scale", "fit")


class ScoreBootstrap:
    """The joint estimate's deviations :math:`I^{-1} \\sum_g w_g s_g` under each resample's group weights.

    Fed the same batches of weights (b, G) as the bootstrap of rho (:meth:`add`); :attr:`deviations` is
    (B, H, k) once every batch went through.
    """

    def __init__(self, fit: JointFit) -> None:
        self.fit = fit
        n_groups, n_heads, k = fit.scores.shape
        self._flat = fit.scores.reshape(n_groups, -1)
        information = np.where(np.isfinite(fit.information), fit.information, 0.0)
        self._inverse = np.stack([np.linalg.pinv(m, hermitian=True) for m in information]) if n_heads else \
            np.zeros((0, k, k))
        self._parts: list[FloatArray] = []

    def add(self, weights: FloatArray) -> None:
        totals = rowwise_product(weights, self._flat).reshape(weights.shape[0], *self.fit.scores.shape[1:])
        self._parts.append(np.einsum("hkl,bhl->bhk", self._inverse, totals))

    @property
    def deviations(self) -> FloatArray:
        shape = (0, *self.fit.scores.shape[1:])
        return np.concatenate(self._parts) if self._parts else np.zeros(shape)


def jackknife_covariance(scores: FloatArray, group_information: FloatArray, information: FloatArray,
                         used: FloatArray) -> tuple[FloatArray, int]:
    """CV3 covariance (k, k) of one head from its groups' estimating functions (G, k) and informations (G, k, k),
    and the number of groups it counts (those with a scenario ``used``)."""
    counted = used > 0
    n_groups = int(counted.sum())
    k = information.shape[0]
    if n_groups < 2 or not np.isfinite(information).all():
        return np.full((k, k), np.nan), n_groups
    without = information[None] - group_information[counted]
    try:
        shifts = -np.linalg.solve(without, scores[counted][..., None])[..., 0]
    except np.linalg.LinAlgError:  # an episode that carries all the information on some direction
        shifts = -np.stack([np.linalg.lstsq(m, s, rcond=None)[0] for m, s in zip(without, scores[counted],
                                                                                      strict=True)])
    centred = shifts - shifts.mean(axis=0)
    return (n_groups - 1) / n_groups * centred.T @ centred, n_groups


@dataclass(frozen=True, eq=False)
class JointInference:
    """The joint model of every head with its inference.

    Attributes
    ----------
    table : DataFrame
        One row per head x kept feature (:data:`JOINT_COLUMNS`): the coefficient on the log odds scale (per unit
        of percentile for a continuous feature, flagged against unflagged for an indicator), its interval, the
        odds ratio :math:`e^{\\beta}`, the raw and adjusted p-values, the standard error, the feature's ``scale``
        (``percentile`` or ``indicator``) and the ``fit`` (``mle`` or ``firth``).
    fit : JointFit
        The fit (columns kept and left out, passes, per-group terms).
    degrees_of_freedom : ndarray (H,)
        G - 1 per head.
    confidence_level : float
    correction : str
    """

    table: pd.DataFrame
    fit: JointFit
    degrees_of_freedom: NDArray[np.int64]
    confidence_level: float
    correction: str

    @property
    def notes(self) -> tuple[str, ...]:
        return self.fit.notes

    def rows(self, head: str) -> pd.DataFrame:
        """The rows of one head."""
        return self.table[self.table["head"] == head]


def joint_inference(fit: JointFit, head_names: Sequence[str], indicators: Sequence[bool], *,
                    confidence_level: float, correction: str, deviations: FloatArray | None) -> JointInference:
    """Intervals, tests and corrected tests of every head x kept feature.

    ``indicators`` says per feature (the data's order) whether it is an indicator; ``deviations`` are the
    :class:`ScoreBootstrap` deviations (B, H, k) for the max-T corrections.
    """
    kept = list(fit.kept)
    features = [i for i, column in enumerate(kept) if column < fit.n_features]
    n_heads = len(head_names)
    se = np.full((n_heads, len(kept)), np.nan)
    df = np.zeros(n_heads, dtype=np.int64)
    for h in range(n_heads):
        covariance, n_groups = jackknife_covariance(fit.scores[:, h], fit.group_information[:, h],
                                                    fit.information[h], fit.used[:, h])
        se[h] = np.sqrt(np.diag(covariance))
        df[h] = max(n_groups - 1, 0)
    coef = fit.coef[:, kept]
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = coef / se
        dof = np.where(df > 0, df, np.nan)[:, None]
        p = 2.0 * student_t.sf(np.abs(statistic), dof)
        quantile = student_t.ppf(0.5 + confidence_level / 2.0, dof)
    family = (slice(None), features)
    p_family = p[family]
    adjusted = _adjusted(p_family, correction, None if deviations is None else deviations[:, :, features])
    scale = np.array([INDICATOR_SCALE if indicators[kept[i]] else 1.0 for i in features])
    shown, shown_se = coef[family] * scale, se[family] * scale
    half = quantile * shown_se
    table = pd.DataFrame({
        "head": np.repeat(list(head_names), len(features)),
        "feature": np.tile([fit.columns[kept[i]] for i in features], n_heads),
        "coef": shown.reshape(-1), "ci_low": (shown - half).reshape(-1), "ci_high": (shown + half).reshape(-1),
        "odds_ratio": np.exp(shown).reshape(-1), "p_value": p_family.reshape(-1), "p_adjusted": adjusted.reshape(-1),
        "se": shown_se.reshape(-1),
        "scale": np.tile(["indicator" if indicators[kept[i]] else "percentile" for i in features], n_heads),
        "fit": np.repeat(list(fit.method), len(features)),
    })
    return JointInference(table.loc[:, list(JOINT_COLUMNS)], fit, df, confidence_level, correction)


def _adjusted(p: FloatArray, correction: str, deviations: FloatArray | None) -> FloatArray:
    """Adjusted p-values (H, k) over the family of every head x feature."""
    if correction not in MAXT_CORRECTIONS:
        return adjust_pvalues(p, correction)
    if deviations is None or deviations.shape[0] == 0:
        raise ValueError("the max-T corrections of the joint model need the bootstrap deviations")
    with np.errstate(divide="ignore", invalid="ignore"):
        spread = deviations.std(axis=0, ddof=1)
        null = np.abs(deviations / spread)
        # the standard-normal statistic with the t test's p-value (finite where p underflows to 0)
        observed = np.minimum(-ndtri(p / 2.0), 1e300)
    counter = ExceedanceCounter(observed)
    counter.update(np.where(np.isfinite(null), null, np.nan))
    _, single_step, step_down = counter.p_values(exact=False)
    chosen = (step_down if correction in ("maxt", "maxt-raw") else single_step).reshape(p.shape)
    return np.where(np.isnan(p), np.nan, np.maximum(chosen, p))
