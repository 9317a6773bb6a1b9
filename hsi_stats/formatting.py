"""How numbers are written in every view of a result: summaries, report tables, captions, figure titles, LaTeX.

Rounding for display happens here and only here (never in the statistics, and the CSV tables keep every digit),
so that every view of one ``HSIResult`` shows the same digits. Nothing here reads a result: these are plain
functions of numbers.
"""

from __future__ import annotations

import math

__all__ = ["exp_or_inf", "format_interval", "format_number", "format_odds_ratio", "format_p", "format_percent",
           "format_percent_interval", "p_statement"]

MISSING = "–"
"""What a missing or undefined number is written as (an en dash)."""


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def format_number(value: float, digits: int = 3) -> str:
    """Fixed-point with ``digits`` decimals; an en dash for NaN or a missing value.

    Examples
    --------
    >>> format_number(0.12345), format_number(float("nan"))
    ('0.123', '–')
    """
    return MISSING if _missing(value) else f"{value:.{digits}f}"


def format_interval(estimate: float, low: float, high: float, digits: int = 3) -> str:
    """``estimate [low, high]``.

    Examples
    --------
    >>> format_interval(0.5, 0.41, 0.6)
    '0.500 [0.410, 0.600]'
    """
    return f"{format_number(estimate, digits)} [{format_number(low, digits)}, {format_number(high, digits)}]"


def format_percent(value: float, digits: int = 1) -> str:
    """A share as a percentage with ``digits`` decimals; an en dash for NaN.

    Examples
    --------
    >>> format_percent(0.6131), format_percent(0.0), format_percent(float("nan"))
    ('61.3%', '0.0%', '–')
    """
    return MISSING if _missing(value) else f"{100 * value:.{digits}f}%"


def format_percent_interval(estimate: float, low: float, high: float, digits: int = 1) -> str:
    """``estimate [low, high]`` of a share, in percent.

    Examples
    --------
    >>> format_percent_interval(0.4, 0.31, 0.5)
    '40.0% [31.0%, 50.0%]'
    """
    return (f"{format_percent(estimate, digits)} [{format_percent(low, digits)}, "
            f"{format_percent(high, digits)}]")


def format_p(value: float) -> str:
    """p-values: three decimals from 0.001 up, ``< 0.001`` below; an en dash for NaN.

    Examples
    --------
    >>> format_p(0.04321), format_p(0.001), format_p(0.0001)
    ('0.043', '0.001', '< 0.001')
    """
    if _missing(value):
        return MISSING
    return f"{value:.3f}" if value >= 0.001 else "< 0.001"


def p_statement(value: float, name: str = "p") -> str:
    """A p-value as a statement: ``p = 0.043``, or ``p < 0.001`` below 0.001 (the number as :func:`format_p`).

    Examples
    --------
    >>> p_statement(0.04321), p_statement(0.0001, "adj. p")
    ('p = 0.043', 'adj. p < 0.001')
    """
    text = format_p(value)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def exp_or_inf(value: float) -> float:
    """``exp(value)``, infinite beyond the range of a float rather than an error (an odds ratio from its log).

    Examples
    --------
    >>> exp_or_inf(0.0), exp_or_inf(1e4), exp_or_inf(-1e4)
    (1.0, inf, 0.0)
    """
    try:
        return math.exp(value)
    except OverflowError:
        return math.inf


def format_odds_ratio(value: float) -> str:
    """An odds ratio as a multiplier: two significant digits, ``>1000`` and ``<0.001`` beyond.

    Examples
    --------
    >>> [format_odds_ratio(v) for v in (980.4, 37.2, 1.83, 0.2901, 0.00514, 3e-5, 2e6, float("nan"))]
    ['×980', '×37', '×1.8', '×0.29', '×0.0051', '×<0.001', '×>1000', '–']
    """
    if value is None or not math.isfinite(value):
        return MISSING if value is None or math.isnan(value) else ("×>1000" if value > 0 else "×<0.001")
    if value > 1000:
        return "×>1000"
    if value < 0.001:
        return "×<0.001"
    if value >= 10:
        digits = 10 ** (math.floor(math.log10(value)) - 1)
        return f"×{round(value / digits) * digits:.0f}"
    return f"×{value:.2g}" if value < 1 else f"×{value:.1f}"
