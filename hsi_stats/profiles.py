"""What the joint model says of each head: its profile in words, and the conditional rule a label must pass.

A head's *profile* lists the features with a conditional effect (adjusted p < alpha in the joint model, the other
features held fixed), the strongest first, strength being the size of the log odds ratio: a continuous feature's
ratio compares its highest with its lowest value (per unit of within-scenario percentile), an indicator's the
flagged with the unflagged entities. Ratios are written as multipliers of the attention odds (``is_ahead ×37``,
``distance_to_ego ×0.005 (highest vs lowest)``), beyond 1000 or below 0.001 as ``×>1000`` and ``×<0.001``.

A label's *conditional rule*: the label's feature must also have a conditional effect in the catalog's direction
(adjusted p < alpha); otherwise the reason names what explains the marginal correlation ("distance_to_ego: no
effect once is_ahead, is_left are held fixed"). A label feature that the joint model left out as aliased is
judged on the kept feature that explains it, with the sign of that relation (``is_behind`` on ``is_ahead`` with
the sign turned). This module judges and words; it computes no statistic.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .catalog import FeatureMeaning
from .formatting import exp_or_inf, format_odds_ratio, format_p
from .joint.design import LeftOutColumn

__all__ = ["NO_PROFILE", "Conditional", "conditional_evidence", "conditional_failure", "profile_text",
           "significant_rows"]

#: The profile of a head with no conditional effect.
NO_PROFILE = "no conditional effect"


def significant_rows(rows: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """A head's joint rows with adjusted p < alpha, the strongest (largest |coef|) first."""
    chosen = rows[rows["p_adjusted"] < alpha]
    order = np.argsort(-np.abs(chosen["coef"].to_numpy(dtype=float)), kind="stable")
    return chosen.iloc[order]


def profile_text(rows: pd.DataFrame, alpha: float, left_out: Sequence[LeftOutColumn] = ()) -> str:
    """The profile of one head from its rows of :attr:`hsi_stats.HSIResult.joint`.

    A feature the joint model left out as a function of one kept feature (``is_behind`` of ``is_ahead``) is named
    beside it with the ratio that relation implies: ``is_ahead ×0.05 (is_behind ×21)``.

    Examples
    --------
    >>> rows = pd.DataFrame({"feature": ["distance_to_ego", "is_ahead", "ttc"], "coef": [-5.3, 3.6, 0.1],
    ...                      "odds_ratio": np.exp([-5.3, 3.6, 0.1]), "p_adjusted": [0.001, 0.001, 0.9],
    ...                      "scale": ["percentile", "indicator", "percentile"]})
    >>> profile_text(rows, 0.05)
    'distance_to_ego ×0.005 (highest vs lowest), is_ahead ×37'
    """
    chosen = significant_rows(rows, alpha)
    if chosen.empty:
        return NO_PROFILE
    parts = []
    for row in chosen.to_dict(orient="records"):
        text = f"{row['feature']} {format_odds_ratio(float(row['odds_ratio']))}"
        text += " (highest vs lowest)" if row["scale"] == "percentile" else ""
        aliases = [f"{c.name} {format_odds_ratio(exp_or_inf(c.proxy_sign * float(row['coef'])))}" for c in left_out
                   if c.reason == "aliased" and c.explained_by == (row["feature"],)]
        parts.append(text + (f" ({', '.join(aliases)})" if aliases else ""))
    return ", ".join(parts)


@dataclass(frozen=True)
class Conditional:
    """The joint model's evidence for one head's label feature.

    Attributes
    ----------
    feature : str
        The label's feature.
    judged_on : str or None
        The feature whose coefficient is judged: ``feature`` itself, or the kept feature that explains it when the
        joint model left it out (None when nothing does).
    sign : int
        +1, or -1 when judged on a feature related to it with the sign turned.
    coef, ci_low, ci_high, odds_ratio, p_adjusted : float
        Of ``judged_on`` in the head's joint model (NaN without one).
    held_fixed : tuple of str
        The other features with a conditional effect (what explains the marginal correlation when the label's
        feature has none), strongest first.
    """

    feature: str
    judged_on: str | None
    sign: int
    coef: float
    ci_low: float
    ci_high: float
    odds_ratio: float
    p_adjusted: float
    held_fixed: tuple[str, ...]

    @property
    def effect(self) -> float:
        """The conditional effect in the label feature's own direction (log odds scale)."""
        return self.sign * self.coef


def conditional_evidence(feature: str, rows: pd.DataFrame, left_out: Sequence[LeftOutColumn],
                         alpha: float) -> Conditional:
    """The joint evidence for ``feature`` from one head's joint ``rows`` and the columns the fit left out."""
    judged_on: str | None = feature
    sign = 1
    if feature not in set(rows["feature"]):
        column = next((c for c in left_out if c.name == feature), None)
        judged_on, sign = (column.proxy, column.proxy_sign) if column is not None else (None, 1)
    match = rows[rows["feature"] == judged_on]
    row = match.iloc[0] if len(match) else None
    held = tuple(str(f) for f in significant_rows(rows, alpha)["feature"] if f != judged_on)

    def number(key: str) -> float:
        return float("nan") if row is None else float(row[key])

    return Conditional(feature, judged_on if row is not None else None, sign, number("coef"), number("ci_low"),
                       number("ci_high"), number("odds_ratio"), number("p_adjusted"), held)


def conditional_failure(evidence: Conditional, meaning: FeatureMeaning, alpha: float) -> str | None:
    """The reason a label fails the conditional rule, or None when it passes."""
    feature = evidence.feature
    if evidence.judged_on is None:
        return f"{feature}: left out of the joint model, and no kept feature explains it"
    on = "" if evidence.judged_on == feature else (
        f" (judged on {evidence.judged_on}{', sign turned' if evidence.sign < 0 else ''}, which explains it)")
    held = ", ".join(evidence.held_fixed) or "the other features"
    p = evidence.p_adjusted
    if not p < alpha:
        shown = "undefined" if math.isnan(p) else format_p(p)
        return f"{feature}: no effect once {held} {'is' if len(evidence.held_fixed) == 1 else 'are'} held fixed " \
               f"(joint adjusted p = {shown}){on}"
    if not meaning.sign_matches(evidence.effect):
        ratio = format_odds_ratio(exp_or_inf(evidence.effect))
        return (f"{feature}: its effect is reversed ({ratio}) once {held} "
                f"{'is' if len(evidence.held_fixed) == 1 else 'are'} held fixed{on}")
    return None
