"""Display tables of a result, formatted once and shared by the HTML, PDF and LaTeX outputs.

Numbers are written by :mod:`hsi_stats.report.formatting`, so every output shows the same digits of the same
``HSIResult``. :func:`head_table` is the table of DESIGN 5; :func:`latex_table` renders it with booktabs rules.
"""

from __future__ import annotations

import pandas as pd

from ..registry import described_pair, judged_reasons
from ..results import HSIResult
from ..settings import CI_METHOD_NAMES, CORRECTION_NAMES
from .formatting import MISSING, format_interval, format_number, format_p

__all__ = [
    "HEAD_TABLE_COLUMNS",
    "format_interval",
    "format_number",
    "format_p",
    "head_table",
    "latex_table",
    "left_out_table",
]

HEAD_TABLE_COLUMNS = ("head", "label", "strength", "HSI [CI]", "primary feature", "rho [CI]", "focus [CI]",
                      "adjusted p", "stability", "validated", "reasons")


def head_table(result: HSIResult) -> pd.DataFrame:
    """One row per head, all cells strings: the head table of the report.

    The rho, focus, adjusted p and stability columns describe the feature of :func:`~hsi_stats.registry.described_pair`
    (the label's feature for a labelled head, else the primary feature), as the registry does.
    """
    rows = []
    for head in result.heads.to_dict(orient="records"):
        feature, pair, stability = described_pair(head, result.pairs, head["label"])
        nan = float("nan")
        rho, low, high, p_adj, focus, focus_low, focus_high = (pair.get(c, nan) for c in (
            "rho", "ci_low", "ci_high", "p_adjusted", "focus", "focus_ci_low", "focus_ci_high"))
        rows.append({
            "head": head["head"],
            "label": head["label"],
            "strength": head["strength"],
            "HSI [CI]": format_interval(head["hsi"], head["ci_low"], head["ci_high"]),
            "primary feature": head["primary_feature"] if isinstance(head["primary_feature"], str) else MISSING,
            "rho [CI]": f"{feature}: {format_interval(rho, low, high)}" if isinstance(feature, str) else MISSING,
            "focus [CI]": (f"{format_interval(focus, focus_low, focus_high, 2)} ({pair['focus_target']})"
                           if isinstance(feature, str) else MISSING),
            "adjusted p": format_p(p_adj),
            "stability": format_number(stability, 2),
            "validated": "yes" if head["validated"] else "no",
            "reasons": judged_reasons(head, feature) or "all rules passed",
        })
    return pd.DataFrame(rows, columns=list(HEAD_TABLE_COLUMNS))


def _left_out_reason(missing: int, infinite: int, infinite_left_out: int, ranked: bool) -> str:
    parts = []
    if missing:
        parts.append(f"{missing} missing (NaN)")
    if infinite:
        parts.append(f"{infinite} infinite, ranked as extremes" if ranked else
                     f"{infinite_left_out} infinite, left out (Pearson)")
    return "; ".join(parts) or "none"


def left_out_table(result: HSIResult) -> pd.DataFrame:
    """Per feature: values left out and why (DESIGN 3.4)."""
    frame = pd.DataFrame(result.data_summary["left_out"])
    ranked = result.settings.correlation != "pearson"  # the feature is ranked: +-inf is its most extreme value
    frame["why"] = [_left_out_reason(int(missing), int(infinite), int(left), ranked) for missing, infinite, left
                    in frame[["missing", "infinite", "infinite_left_out"]].itertuples(index=False)]
    return frame


def latex_table(result: HSIResult) -> str:
    """The head table as a booktabs LaTeX ``table`` (reasons omitted: they belong in the text)."""
    table = head_table(result).drop(columns=["reasons"])
    level = round(100 * result.settings.confidence_level)
    method = CI_METHOD_NAMES[result.settings.ci_method]
    correction = CORRECTION_NAMES[result.settings.correction]
    caption = (f"Head specialisation: HSI and rho with {level}\\% {method} cluster-bootstrap intervals; "
               f"{correction} adjusted p-values.")
    styler = table.style.hide(axis="index").format(escape="latex")
    styler = styler.format_index(escape="latex", axis="columns")
    return styler.to_latex(hrules=True, caption=caption, label="tab:hsi", position="htbp",
                           column_format="l" * len(table.columns))
