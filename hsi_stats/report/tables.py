"""Display tables of a result, formatted once and shared by the HTML, PDF and LaTeX outputs.

Numbers are written by :mod:`hsi_stats.formatting`, so every output shows the same digits of the same
``HSIResult``. :func:`head_table` is the report's head table, one row per head (the LaTeX tables for a paper are in
:mod:`hsi_stats.report.latex`).
"""

from __future__ import annotations

import pandas as pd

from ..formatting import MISSING, format_interval, format_number, format_p
from ..results import HSIResult

__all__ = [
    "HEAD_COLUMN_KINDS",
    "HEAD_TABLE_COLUMNS",
    "format_interval",
    "format_number",
    "format_p",
    "head_table",
    "left_out_table",
]

HEAD_TABLE_COLUMNS = ("head", "label", "strength", "HSI [CI]", "HSI adj. p", "primary feature", "label feature",
                      "rho [CI]", "focus [CI]", "label adj. p", "label stability", "validated", "profile", "reasons")

#: The kind of each head-table column that is not plain text: numbers (aligned), the label, the reasons.
HEAD_COLUMN_KINDS = {"HSI [CI]": "num", "HSI adj. p": "num", "rho [CI]": "num", "focus [CI]": "num",
                     "label adj. p": "num", "label stability": "num", "label": "label", "profile": "profile",
                     "reasons": "reasons"}


def head_table(result: HSIResult) -> pd.DataFrame:
    """One row per head, all cells strings: the head table of the report.

    Two tests, two columns: ``HSI adj. p`` is the test of the head's HSI (adjusted over the heads, the
    ``hsi_p_adjusted`` column of :attr:`~hsi_stats.results.HSIResult.heads`), ``label adj. p`` the test of the
    label feature's pair (adjusted over every head x feature pair, ``label_p_adjusted``). The rho, focus,
    adjusted p and stability after ``label feature`` describe that feature, the one the label is judged on (for a
    General Context Head, the candidate that failed, which the reasons judge). ``profile`` is the joint model's
    (the features with a conditional effect, strongest first); without the joint model the column is left out.
    """
    rows = []
    for head in result.heads.to_dict(orient="records"):
        labelled = isinstance(head["label_feature"], str)

        def shown(text: str, labelled: bool = labelled) -> str:
            return text if labelled else MISSING

        rows.append({
            "head": head["head"],
            "label": head["label"],
            "strength": head["strength"],
            "HSI [CI]": format_interval(head["hsi"], head["ci_low"], head["ci_high"]),
            "HSI adj. p": format_p(head["hsi_p_adjusted"]),
            "primary feature": head["primary_feature"] if isinstance(head["primary_feature"], str) else MISSING,
            "label feature": shown(str(head["label_feature"])),
            "rho [CI]": shown(format_interval(head["label_rho"], head["label_ci_low"], head["label_ci_high"])),
            "focus [CI]": shown(format_interval(head["label_focus"], head["label_focus_ci_low"],
                                                head["label_focus_ci_high"], 2) + f" ({head['label_focus_target']})"),
            "label adj. p": shown(format_p(head["label_p_adjusted"])),
            "label stability": shown(format_number(head["label_stability"], 2)),
            "validated": "yes" if head["validated"] else "no",
            "profile": head.get("profile") if isinstance(head.get("profile"), str) else MISSING,
            "reasons": head["reasons"] or "all rules passed",
        })
    columns = [c for c in HEAD_TABLE_COLUMNS if c != "profile" or result.joint is not None]
    return pd.DataFrame(rows, columns=list(HEAD_TABLE_COLUMNS))[columns]


def _left_out_reason(missing: int, infinite: int, infinite_left_out: int, ranked: bool) -> str:
    parts = []
    if missing:
        parts.append(f"{missing} missing (NaN)")
    if infinite:
        parts.append(f"{infinite} infinite, ranked as extremes" if ranked else
                     f"{infinite_left_out} infinite, left out (Pearson)")
    return "; ".join(parts) or "none"


def left_out_table(result: HSIResult) -> pd.DataFrame:
    """Per feature: values left out and why.

    NaN is left out for that feature; +-inf is ranked as the most extreme value under ``rank-feature`` and
    ``spearman`` and left out (and counted) under ``pearson``.
    """
    frame = pd.DataFrame(result.data_summary["left_out"])
    ranked = result.settings.correlation != "pearson"  # the feature is ranked: +-inf is its most extreme value
    frame["why"] = [_left_out_reason(int(missing), int(infinite), int(left), ranked) for missing, infinite, left
                    in frame[["missing", "infinite", "infinite_left_out"]].itertuples(index=False)]
    return frame
