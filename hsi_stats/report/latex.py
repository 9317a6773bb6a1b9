"""LaTeX tables of a result for a paper: ``table.tex`` (one row per head), ``pairs.tex`` (every head x feature pair)
and ``joint.tex`` (the joint model: each head's profile, then every head x feature odds ratio).

Both are booktabs tables with siunitx ``S`` columns (numbers aligned on the decimal point, p-values such as
"< 0.001" aligned with the others) in a compact font, sized to fit the text width of a standard ``article``
(345 pt) even with 72 heads named ``other_traj/cross_attn_0:h0``: heads appear by their short names
(:func:`~hsi_stats.report.naming.short_head_names`) with the legend as a table note. The head table is a ``table``
float, or a ``longtable`` when it is too long for one page; the pair table is always a ``longtable`` with its header
repeated on every page. Each file's first line says which packages it needs.

Numbers are written by :mod:`hsi_stats.formatting`, so they show the digits every other view shows; an interval
``0.500 [0.410, 0.600]`` is three aligned columns whose separators (``[``, ``,``, ``]``) are set by the column
format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..catalog import GENERAL_CONTEXT
from ..formatting import MISSING, exp_or_inf, format_number, format_odds_ratio, format_p
from ..results import HSIResult, hsi_interval_note
from ..settings import CI_METHOD_NAMES, CORRECTION_NAMES
from .naming import name_legend, short_head_names

__all__ = ["LATEX_PACKAGES", "MAX_FLOAT_ROWS", "head_latex", "joint_latex", "latex_escape", "pairs_latex"]

#: The packages ``table.tex`` and ``pairs.tex`` need in the preamble (siunitx loads array).
LATEX_PACKAGES = ("booktabs", "siunitx", "longtable")
#: Heads up to this many go in a ``table`` float; more make a ``longtable`` that can break across pages.
MAX_FLOAT_ROWS = 30

_HEADER = "% Needs \\usepackage{" + ",".join(LATEX_PACKAGES) + "} in the preamble.\n"
_SIZE = "\\footnotesize\\setlength{\\tabcolsep}{2.5pt}"
_NOTE = "{\\footnotesize\\raggedright\\noindent "  # a table note, closed by "\\par}"
_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}",
            ">": r"\textgreater{}", "–": "--", "×": r"$\times$"}


def latex_escape(text: object) -> str:
    r"""``text`` with LaTeX's special characters escaped, for names and labels in text cells.

    Examples
    --------
    >>> print(latex_escape("other_traj/cross_attn_0:h0 & 50% #1"))
    other\_traj/cross\_attn\_0:h0 \& 50\% \#1
    """
    return "".join(_SPECIAL.get(character, character) for character in str(text))


# ------------------------------------------------------------------------------------------------ columns
@dataclass(frozen=True)
class _Column:
    """A column of a LaTeX table: its header, its column format and its cells (LaTeX, one per row).

    An interval occupies three LaTeX columns (``width`` 3): its cells hold ``estimate & low & high``.
    """

    header: str
    spec: str
    cells: tuple[str, ...]
    width: int = 1


def _number_spec(texts: Sequence[str], digits: int) -> str:
    """An S column for the formatted numbers ``texts``: room for a minus sign or a "<" only when one occurs."""
    sign = "-" if any(t.startswith("-") for t in texts) else ""
    comparator = "<" if any(t.startswith("<") for t in texts) else ""
    return f"S[table-format={comparator}{sign}1.{digits}]"


def _cell(text: str) -> str:
    """A cell of an S column: the formatted number, or the en dash as braced text."""
    return "{--}" if text == MISSING else text


def _text_column(header: str, values: Sequence[object], spec: str = "l") -> _Column:
    return _Column(header, spec, tuple("--" if v is None else latex_escape(v) for v in values))


def _number_column(header: str, texts: Sequence[str], digits: int = 3) -> _Column:
    """Formatted numbers (:mod:`hsi_stats.formatting`) aligned on the decimal point; the header is braced."""
    return _Column(f"{{{header}}}", _number_spec(texts, digits), tuple(map(_cell, texts)))


_GAP = "@{\\hspace{2\\tabcolsep}}"  # the space between two columns, after an interval's last column
_AFTER_INTERVAL = "@{]\\hspace{2\\tabcolsep}}"


def _interval_column(header: str, triples: Sequence[tuple[float, float, float]], digits: int) -> _Column:
    """``estimate [low, high]`` as three aligned S columns; the brackets and comma come from ``@{}``."""
    texts = [[format_number(v, digits) for v in triple] for triple in triples]
    specs = [_number_spec([row[i] for row in texts], digits) for i in range(3)]
    cells = tuple(f"\\multicolumn{{3}}{{c{_GAP}}}{{--}}" if all(t == MISSING for t in row) else
                  " & ".join(map(_cell, row)) for row in texts)
    return _Column(f"\\multicolumn{{3}}{{c{_GAP}}}{{{header}}}",
                   f"{specs[0]}@{{\\ [}}{specs[1]}@{{,\\ }}{specs[2]}{_AFTER_INTERVAL}", cells, width=3)


def _stacked(text: str, width: str = "2.8em") -> str:
    """A header that wraps onto lines of ``width`` (centred), so that it is no wider than the numbers below it."""
    return f"\\parbox[b]{{{width}}}{{\\centering {text}}}"


def _column_format(columns: Sequence[_Column]) -> str:
    return "@{}" + "".join(column.spec for column in columns) + "@{}"


def _row(cells: Sequence[str]) -> str:
    return " & ".join(cells) + " \\\\"


def _rows(columns: Sequence[_Column]) -> list[str]:
    return [_row(cells) for cells in zip(*(column.cells for column in columns), strict=True)]


# ------------------------------------------------------------------------------------------------ notes
def _legend(names: Sequence[str]) -> str:
    """The table note mapping short head names back to the full ones ("" when the names are kept).

    Layer-wise names (``L3.H2``) are explained once per layer; any other shortening once per head.
    """
    legend = name_legend(names)
    if legend is None:
        return ""
    pairs = list(zip(legend["short name"], legend["head"], strict=True))
    if all(short.startswith("L") and ".H" in short for short, _ in pairs):
        layers: dict[str, str] = {}
        for short, full in pairs:
            layers.setdefault(short.split(".H")[0], full.rsplit(":h", 1)[0])
        listed = "; ".join(f"{short} = {_breakable(full)}" for short, full in layers.items())
        return f"Heads: L$\\ell$.H$k$ is head $k$ of layer L$\\ell$: {listed}."
    return "Heads: " + "; ".join(f"{short} = {_breakable(full)}" for short, full in pairs) + "."


def _breakable(name: str) -> str:
    """A name escaped for LaTeX that may break after a slash (long module paths)."""
    return latex_escape(name).replace("/", "/\\allowbreak{}")


def _intervals_text(result: HSIResult, hsi: bool) -> str:
    s, d = result.settings, result.data_summary
    level = round(100 * s["confidence_level"])
    method = CI_METHOD_NAMES[s["ci_method"]]
    bias = (" (for rho; the HSI's interval projects the simultaneous band of the head's rhos onto the largest "
            "$|\\rho|$)") if hsi else ""
    return (f"{level}\\,\\% {method} cluster-bootstrap intervals{bias}, from {s['n_resamples']} resamples of the "
            f"{d['n_groups']} groups (episodes)")


def _test_text(result: HSIResult) -> str:
    test = result.test
    return (f"{result.settings['scheme']} randomisation test "
            + (f"(all {test.n_resamples} sign patterns)" if test.exact else f"({test.n_resamples} randomisations)"))


# ------------------------------------------------------------------------------------------------ tables
def _grouped_by_head(records: Sequence[Mapping[Any, Any]], columns: Sequence[_Column]) -> list[str]:
    """The rows of ``columns`` (one per record), each head's run of rows after a row with its full name."""
    n_columns = sum(column.width for column in columns)
    rows: list[str] = []
    previous = None
    for record, row in zip(records, _rows(columns), strict=True):
        if record["head"] != previous:
            rows += ["\\addlinespace"] if rows else []
            rows.append(f"\\multicolumn{{{n_columns}}}{{@{{}}l}}{{head {_breakable(record['head'])}}} \\\\*")
        previous = record["head"]
        rows.append(row)
    return rows


def _float_or_long(columns: Sequence[_Column], rows: list[str], caption: str, label: str, note: str,
                   long: bool) -> str:
    """A booktabs table in a float (centred) or, when ``long``, a longtable with its header on every page."""
    head = ["\\toprule", _row([column.header for column in columns]), "\\midrule"]
    note_par = f"\\par\\smallskip\n{_NOTE}{note}\\par}}\n" if note else ""
    if not long:
        return (_HEADER + "\\begin{table}[htbp]\n\\centering\n"
                f"\\caption{{{caption}}}\n\\label{{{label}}}\n\\smallskip\n{{{_SIZE}\n"
                f"\\begin{{tabular}}{{{_column_format(columns)}}}\n" + "\n".join([*head, *rows, "\\bottomrule"])
                + "\n\\end{tabular}\\par}\n" + note_par + "\\end{table}\n")
    n_columns = sum(column.width for column in columns)
    continued = f"\\multicolumn{{{n_columns}}}{{@{{}}l}}{{\\tablename~\\thetable{{}} (continued)}} \\\\"
    return (_HEADER + f"{{{_SIZE}\n\\begin{{longtable}}{{{_column_format(columns)}}}\n"
            f"\\caption{{{caption}}}\\label{{{label}}} \\\\\n" + "\n".join(head) + "\n\\endfirsthead\n"
            + "\n".join([continued, *head]) + "\n\\endhead\n\\bottomrule\n\\endfoot\n"
            + "\n".join(rows) + "\n\\end{longtable}\\par}\n" + (f"{_NOTE}{note}\\par}}\n" if note else ""))


def _interval_note(result: HSIResult) -> str:
    """:func:`~hsi_stats.results.hsi_interval_note` in LaTeX, after a space."""
    note = hsi_interval_note(result.heads, result.settings.confidence_level)
    return " " + latex_escape(note).replace("|rho|", "$|\\rho|$")


def head_latex(result: HSIResult) -> str:
    """``table.tex``: one row per head with its label, HSI and interval, and the label feature's test.

    Columns: head (short name), label (marked with a dagger when it reaches the threshold but fails another
    validation rule), HSI [CI], HSI adj. p (the HSI's test, ``hsi_p_adjusted``, adjusted over the heads), label
    feature, its rho and label adj. p (the pair's test, ``label_p_adjusted``, adjusted over every head x feature
    pair). The rho interval, the focus and every other pair are in ``pairs.tex`` (:func:`pairs_latex`); the reasons
    of each verdict belong in the text.
    """
    heads = result.heads.to_dict(orient="records")
    short = short_head_names([head["head"] for head in heads])
    labelled = [isinstance(head["label_feature"], str) for head in heads]
    unvalidated = [head["label"] != GENERAL_CONTEXT and not head["validated"] for head in heads]
    columns = [
        _text_column("head", [short[head["head"]] for head in heads]),
        _Column("label", ">{\\raggedright\\arraybackslash}p{8.9em}",
                tuple(latex_escape(head["label"]) + ("$^\\dagger$" if flag else "")
                      for head, flag in zip(heads, unvalidated, strict=True))),
        _interval_column("HSI [CI]", [(h["hsi"], h["ci_low"], h["ci_high"]) for h in heads], 3),
        _number_column(_stacked("HSI adj. p"), [format_p(head["hsi_p_adjusted"]) for head in heads]),
        _text_column("label feature", [h["label_feature"] if ok else None for h, ok in zip(heads, labelled,
                                                                                             strict=True)]),
        _number_column("$\\rho$", [format_number(h["label_rho"]) if ok else MISSING
                                   for h, ok in zip(heads, labelled, strict=True)]),
        _number_column(_stacked("label adj. p"), [format_p(h["label_p_adjusted"]) if ok else MISSING
                                                  for h, ok in zip(heads, labelled, strict=True)]),
    ]
    correction = CORRECTION_NAMES[result.settings["correction"]]
    dagger = (" $^\\dagger$Label reaching the threshold that fails another validation rule (not validated); "
              "every other label except General Context Head is validated." if any(unvalidated) else
              " Every label except General Context Head is validated.")
    caption = (f"Head specialisation: HSI with {_intervals_text(result, hsi=True)}. HSI adj.\\ p: "
               f"{_test_text(result)} of the HSI, {correction} adjusted over the {len(heads)} heads. Label feature: "
               f"the strongest feature of the sign the catalog expects, with its $\\rho$ and label adj.\\ p, its "
               f"pair's test {correction} adjusted over all {len(result.pairs)} head $\\times$ feature pairs."
               f"{dagger}{_interval_note(result)}")
    return _float_or_long(columns, _rows(columns), caption, "tab:hsi", _legend([h["head"] for h in heads]),
                          long=len(heads) > MAX_FLOAT_ROWS)


def pairs_latex(result: HSIResult) -> str:
    """``pairs.tex``: every head x feature pair, as a longtable with its header repeated on every page.

    Each head's rows follow a row with its full name. Columns: feature, rho [CI], p (raw), adj. p (adjusted over
    all pairs) and, when the result has it, the focus [CI] with its target entities.
    """
    pairs = result.pairs.to_dict(orient="records")
    has_focus = "focus" in result.pairs.columns and bool(pd.notna(result.pairs["focus"]).any())
    columns = [
        _text_column("feature", [pair["feature"] for pair in pairs]),
        _interval_column("$\\rho$ [CI]", [(p["rho"], p["ci_low"], p["ci_high"]) for p in pairs], 3),
        _number_column("p", [format_p(pair["p_value"]) for pair in pairs]),
        _number_column("adj. p", [format_p(pair["p_adjusted"]) for pair in pairs]),
    ]
    if has_focus:
        columns += [
            _interval_column("focus [CI]", [(p["focus"], p["focus_ci_low"], p["focus_ci_high"]) for p in pairs], 2),
            _text_column("target", [p.get("focus_target") if isinstance(p.get("focus_target"), str) else None
                                    for p in pairs]),
        ]
    rows = _grouped_by_head(pairs, columns)
    correction = CORRECTION_NAMES[result.settings["correction"]]
    focus = (" Focus: share of the head's attention on the feature's target entities (lowest or highest value, or "
             "flagged) in excess of uniform attention, divided by its largest possible value, with its interval."
             if has_focus else "")
    caption = (f"Every head $\\times$ feature pair: $\\rho$ with {_intervals_text(result, hsi=False)}; p: "
               f"{_test_text(result)} of $|\\rho|$; adj.\\ p: {correction} adjusted over all {len(pairs)} "
               f"pairs.{focus}")
    return _float_or_long(columns, rows, caption, "tab:hsi-pairs", "", long=True)


def _ratio(value: float) -> str:
    """An odds ratio in a table cell: :func:`~hsi_stats.formatting.format_odds_ratio` without its sign."""
    return latex_escape(format_odds_ratio(value).removeprefix("×"))


def joint_latex(result: HSIResult) -> str:
    """``joint.tex``: the joint model, as two longtables: each head's profile, and every head x kept feature.

    The first table has one row per head: its label (with a dagger when it is not validated) and its profile,
    wrapped in a paragraph column. The second has, per head and feature, the odds ratio with its interval and the
    raw and adjusted p-values. Empty (a comment) when the result has no joint model.
    """
    if result.joint is None:
        return "% The analysis was run without the joint model (joint=False).\n"
    heads = result.heads.to_dict(orient="records")
    short = short_head_names([head["head"] for head in heads])
    level = round(100 * result.settings["confidence_level"])
    alpha = result.settings["alpha"]
    correction = CORRECTION_NAMES[result.settings["correction"]]
    profile_columns = [
        _text_column("head", [short[head["head"]] for head in heads]),
        _Column("label", ">{\\raggedright\\arraybackslash}p{8.9em}",
                tuple(latex_escape(head["label"]) + ("" if head["validated"] or head["label"] == GENERAL_CONTEXT
                                                     else "$^\\dagger$") for head in heads)),
        _Column("profile", ">{\\raggedright\\arraybackslash}p{21em}",
                tuple(latex_escape(head["profile"]) for head in heads)),
    ]
    profiles = _float_or_long(
        profile_columns, _rows(profile_columns),
        f"Head profiles (joint model): the features with a conditional effect on the head's attention (adjusted "
        f"p < {alpha:g}, {correction}), every other feature held fixed, strongest first, as attention odds ratios: "
        "highest against lowest value of a continuous feature, flagged against not flagged for an indicator. "
        "$^\\dagger$Label not validated.", "tab:hsi-profiles", _legend([h["head"] for h in heads]), long=True)
    rows_frame = result.joint.to_dict(orient="records")
    pair_columns = [
        _text_column("feature", [row["feature"] for row in rows_frame]),
        _Column("{odds ratio}", "r", tuple(_ratio(exp_or_inf(row["coef"])) for row in rows_frame)),
        _Column(f"{{{level}\\,\\% CI}}", "l", tuple(f"[{_ratio(exp_or_inf(row['ci_low']))}, "
                                                    f"{_ratio(exp_or_inf(row['ci_high']))}]" for row in rows_frame)),
        _number_column("p", [format_p(row["p_value"]) for row in rows_frame]),
        _number_column("adj. p", [format_p(row["p_adjusted"]) for row in rows_frame]),
    ]
    rows = _grouped_by_head(rows_frame, pair_columns)
    left_out = [c.name for c in result.joint_model.fit.aliasing.left_out] if result.joint_model else []
    coefficients = _float_or_long(
        pair_columns, rows,
        f"Joint model of every head: attention odds ratios with {level}\\,\\% intervals (cluster jackknife over the "
        f"{result.data_summary['n_groups']} groups, $t$ reference); p: $t$ test of no conditional effect; adj.\\ p: "
        f"{correction} over all {len(rows_frame)} head $\\times$ feature coefficients."
        + (f" Left out as aliased or constant: {latex_escape(', '.join(left_out))}." if left_out else ""),
        "tab:hsi-joint", "", long=True)
    return profiles + "\n" + coefficients.removeprefix(_HEADER)
