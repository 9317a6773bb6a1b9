"""The clustered Wilson interval written out independently of the package: loops over the episodes, scipy's t
quantile and statsmodels' Wilson interval (``proportion_confint(method="wilson")``) at the matching level."""

from __future__ import annotations

import math

from scipy import stats
from statsmodels.stats.proportion import proportion_confint


def clustered_wilson(successes: list[float], steps: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Rate, lower and upper bound for per-episode sums (episodes without steps left out)."""
    pairs = [(float(x), float(n)) for x, n in zip(successes, steps, strict=True) if n > 0]
    g = len(pairs)
    total = sum(n for _, n in pairs)
    rate = sum(x for x, _ in pairs) / total
    variance = g / (g - 1) * sum((x - rate * n) ** 2 for x, n in pairs) / total**2

    def spread_over(mass: list[float]) -> float:
        squares = sum(w * w for w in mass)
        return sum(mass) ** 2 / squares if squares > 0 else 0.0

    rarer = min(spread_over([x for x, _ in pairs]), spread_over([n - x for x, n in pairs]))
    if variance > 0 and 0 < rate < 1 and rarer > 0:
        m, freedom = rate * (1 - rate) / variance, max(1.0, min(g, rarer) - 1)
    else:
        m, freedom = float(g), float(g - 1)
    q = stats.t.ppf(0.5 + level / 2, freedom)
    low, high = proportion_confint(rate * m, m, alpha=2 * stats.norm.sf(q), method="wilson")
    return rate, max(0.0, min(low, rate)), min(1.0, max(high, rate))


def no_event_bound(n_episodes: int, level: float = 0.95) -> float:
    """The upper bound of a rate of 0 over ``n_episodes`` episodes: q^2 / (G + q^2), q from t with G - 1 df."""
    q = stats.t.ppf(0.5 + level / 2, n_episodes - 1)
    return q * q / (n_episodes + q * q) if math.isfinite(q) else 1.0
