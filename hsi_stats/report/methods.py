r"""The citable methods section: what was done, stated from the settings a result actually used.

Every sentence is built from ``HSIResult.settings``, ``data_summary`` and ``provenance`` (and the
``EvolutionResult`` when given), so changing a setting changes the text. A paragraph is a sequence of prose,
formulas (:class:`Math`: LaTeX and a plain-text reading) and citations (:class:`Cite`: BibTeX keys of
:mod:`~hsi_stats.report.bibliography`). It is rendered twice from that one source (:mod:`~hsi_stats.report.segments`):

- :attr:`MethodsText.markdown`: Markdown with LaTeX math (``$...$``, ``$$...$$``) and pandoc citations
  (``[@efron1987]``), for ``methods.md`` (``pandoc --citeproc --bibliography references.bib`` turns it into a
  paper's section);
- :attr:`MethodsText.paragraphs`: plain text with "(Author, year)" citations, for the HTML and PDF reports.

Symbols: :math:`h` a head, :math:`f` a feature, :math:`s` a scenario, :math:`v` an entity, :math:`g` a group
(episode) of :math:`G`; :math:`\rho_{hf}` the association of head h with feature f,
:math:`\mathrm{HSI}_h = \max_f |\rho_{hf}|`, :math:`B` bootstrap resamples, :math:`R` randomisations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ..ablation import AblationEffects, AblationEpisodes, ablation_results
from ..evolution import EvolutionResult
from ..inference.bootstrap import expanded_alpha
from ..labels import strength_bands_text
from ..results import HSIResult
from ..settings import STATSMODELS_METHODS, AnalysisSettings
from ..step_selection import StepSelection
from .segments import Cite, Math, MethodsText, Segment, cite, display_math, inline_math

__all__ = ["Cite", "Math", "MethodsText", "methods_text"]


_m, _display, _cite = inline_math, display_math, cite


# ------------------------------------------------------------------------------------------------ wording
_RHO = _m(r"\rho_{hf}", "rho_hf")
_HSI = _m(r"\mathrm{HSI}_h", "HSI_h")


def _data(result: HSIResult) -> list[Segment]:
    d, s = result.data_summary, result.settings
    infinite = ("+-inf feature values left out and counted" if s["correlation"] == "pearson"
                else "+-inf feature values ranked as the most extreme values")
    return [
        f"For each of {d['n_heads']} attention heads and {d['n_features']} entity features, the association "
        "between the attention a head puts on an entity and the entity's feature value, ", _m(r"\rho", "rho"),
        f", was estimated from {d['n_scenarios']} scenarios (one forward pass each) in {d['n_groups']} independent "
        f"groups (episodes), with {d['n_entities']} valid entities in all; NaN values left out per feature, "
        f"{infinite}. Let ",
        _m("a_{hsv}", "a_hsv"), " be the attention mass of head ", _m("h"), " on entity ", _m("v"),
        " in scenario ", _m("s"), " and ", _m("x_{fsv}", "x_fsv"), " the value of feature ", _m("f"), ", for the ",
        _m("n_s", "n_s"), " entities of scenario s valid for that feature. ",
    ]


def _rank_feature(pooled: bool) -> list[Segment]:
    where = "among all valid (scenario, entity) pairs" if pooled else "among the scenario's valid entities"
    n = _m("n") if pooled else _m("n_s")
    return ["The attention mass was kept as it is and the feature replaced by its mid-rank percentile ",
            _m(r"(r_{fsv} - \tfrac{1}{2})/" + n.latex, "(r_fsv - 1/2)/" + n.plain), ", ",
            _m("r_{fsv}", "r_fsv"), f" being its rank {where} (average ranks for ties"
            + (f", {n.plain} their number" if pooled else "") + "): the Pearson correlation of attention with "
            "this percentile is linear in attention and insensitive to the scale and tails of the feature. "]


def _spearman(pooled: bool) -> list[Segment]:
    where = "among all valid (scenario, entity) pairs" if pooled else "among the scenario's valid entities"
    return [f"Attention and feature were both replaced by their ranks {where} (average ranks for ties), giving a "
            "Spearman rank correlation. "]


def _pearson(pooled: bool) -> list[Segment]:
    return ["Attention and feature were used as they are (Pearson correlation). "]


#: The scale of each ``correlation``, given whether the estimator pools the pairs.
_CORRELATION_TEXT: dict[str, Callable[[bool], list[Segment]]] = {
    "rank-feature": _rank_feature, "spearman": _spearman, "pearson": _pearson}


def _within(settings: AnalysisSettings) -> list[Segment]:
    return [
        "With ", _m(r"\tilde a_{hsv} = a_{hsv} - \bar a_{hs}", "a~_hsv = a_hsv - mean_v a_hsv"), " and ",
        _m(r"\tilde x_{fsv} = x_{fsv} - \bar x_{fs}", "x~_fsv = x_fsv - mean_v x_fsv"),
        " centred over the valid entities of each scenario (on the scales above), ", _RHO,
        " is the within-scenario correlation",
        _display(r"\rho_{hf} = \frac{\sum_s \sum_v \tilde a_{hsv} \tilde x_{fsv}}"
                 r"{\sqrt{\sum_s \sum_v \tilde a_{hsv}^2 \, \sum_s \sum_v \tilde x_{fsv}^2}},",
                 " rho_hf = sum(a~ x~) / sqrt(sum(a~^2) sum(x~^2)) over scenarios and entities,"),
        " which compares only entities present at the same time and removes differences between scenarios "
        "such as traffic density.",
    ]


def _pooled(settings: AnalysisSettings) -> list[Segment]:
    return [
        _RHO, " is the correlation over all valid (scenario, entity) pairs, as in the original analysis,",
        _display(r"\rho_{hf} = \frac{\sum_{s,v} (a_{hsv} - \bar a_h)(x_{fsv} - \bar x_f)}"
                 r"{\sqrt{\sum_{s,v} (a_{hsv} - \bar a_h)^2 \, \sum_{s,v} (x_{fsv} - \bar x_f)^2}},",
                 " rho_hf = sum((a - mean a)(x - mean x)) / sqrt(sum((a - mean a)^2) sum((x - mean x)^2)),"),
        " with means over all valid pairs; it confounds differences between scenarios (e.g. traffic density) "
        "with the head's preferences.",
    ]


def _fisher(settings: AnalysisSettings) -> list[Segment]:
    return [
        "For each scenario with ", _m(r"n_s \ge 3", "n_s >= 3"), " valid entities and both variables varying, ",
        _m("r_{hfs}", "r_hfs"), " is the correlation across its entities, and",
        _display(r"\rho_{hf} = \tanh\Big(\frac{1}{G'} \sum_g \bar z_{hfg}\Big), \qquad "
                 r"\bar z_{hfg} = \operatorname{mean}_{s \in g} \operatorname{artanh}\big(\max(-c, \min(c, "
                 r"r_{hfs}))\big),",
                 " rho_hf = tanh(mean over groups of the mean over the group's scenarios of "
                 "artanh(r_hfs clipped to +-c)),"),
        "the mean Fisher z ", _cite("fisher1921"), " over the ", _m("G'"), " groups with such scenarios, with the "
        f"clip c = {settings.fisher_clip:g}. With 3-8 entities |r| = 1 is common, so the estimate depends strongly on "
        "this clip: it is reported for comparability, not recommended.",
    ]


#: How rho is estimated, for each ``estimator``.
_ESTIMATOR_TEXT: dict[str, Callable[[AnalysisSettings], list[Segment]]] = {
    "within": _within, "pooled": _pooled, "fisher": _fisher}


def _first(result: HSIResult) -> list[Segment]:
    slot = (" Slot preferences were removed before correlating (two-way fixed effects for scenario and "
            "observation slot), so that a preference for a slot ordered by distance is not read as a feature "
            "effect." if result.settings["adjust"] == "slot" else "")
    s = result.settings
    paragraph: list[Segment] = [*_data(result), *_CORRELATION_TEXT[s.correlation](s.estimator == "pooled"),
                                *_ESTIMATOR_TEXT[s.estimator](s), slot,
                                " The Head Specialization Index of head ", _m("h"), " is ",
                                _m(r"\mathrm{HSI}_h = \max_f |\rho_{hf}|", "HSI_h = max_f |rho_hf|"),
                                "; the feature attaining it is the head's primary feature."]
    described = StepSelection.from_dict(result.data_summary["step_selection"]).describe()
    if described:
        paragraph.append(f" {described[0].upper()}{described[1:]}.")
    return paragraph


def _bca(quantiles: Math) -> list[Segment]:
    """The BCa levels for the nominal tail probabilities ``quantiles``."""
    return [
        "the quantiles of the resampled values at ",
        _m(r"\Phi\big(\hat z_0 + (\hat z_0 + z_q) / (1 - \hat a (\hat z_0 + z_q))\big)",
           "Phi(z0 + (z0 + z_q) / (1 - a (z0 + z_q)))"),
        " for ", quantiles, ", where ", _m(r"z_q = \Phi^{-1}(q)", "z_q = Phi^-1(q)"), ", ",
        _m(r"\hat z_0", "z0"), " is ", _m(r"\Phi^{-1}", "Phi^-1"), " of the share of resampled values below the "
        "estimate (ties counted half) and the acceleration ",
        _m(r"\hat a = \sum_g d_g^3 / \big(6 (\sum_g d_g^2)^{3/2}\big)", "a = sum d_g^3 / (6 (sum d_g^2)^(3/2))"),
        " comes from the leave-one-group-out jackknife, ",
        _m(r"d_g = \bar\theta_{(\cdot)} - \theta_{(g)}", "d_g = mean jackknife estimate - estimate without group g"),
    ]


def _tails(half: float) -> Math:
    return _m(r"\alpha/2 = " + f"{half:g}", f"alpha/2 = {half:g}")


def _expanded(half: float, n_groups: int) -> list[Segment]:
    expanded = expanded_alpha(half, n_groups)
    return [
        "expanded percentile intervals ", _cite("hesterberg2015"), ": the ", _m(r"\alpha'", "alpha'"), " and ",
        _m(r"1 - \alpha'", "1 - alpha'"), " quantiles of the resampled values, with ",
        _m(r"\alpha' = \Phi\big(\sqrt{G/(G-1)}\, t_{G-1,\,\alpha/2}\big) = " + f"{expanded:.4f}",
           f"alpha' = Phi(sqrt(G/(G-1)) t_(G-1, alpha/2)) = {expanded:.4f}"),
        " in place of ", _tails(half), " (", _m(r"\Phi", "Phi"), " the standard normal distribution function, ",
        _m(r"t_{G-1,\,q}", "t_(G-1, q)"), " the q quantile of Student's t distribution with G - 1 degrees of "
        "freedom), which corrects the narrowness of a bootstrap over few groups",
    ]


def _hsi_interval(half: float, n_groups: int) -> list[Segment]:
    """The HSI's interval, whatever the interval method of rho: the projection of a simultaneous band."""
    expanded = expanded_alpha(half, n_groups)
    return [
        "The HSI, a maximum of absolute values, is not a smooth function of the correlations where features tie or "
        "every ", _RHO, " is 0, and no bootstrap interval of it covers a head without effect; its interval was the "
        "projection of a simultaneous band of the head's correlations onto ", _m(r"\max_f |\cdot|", "max_f |.|"),
        ": with ",
        _m(r"s_{hf}", "s_hf"), " the bootstrap standard error of ", _RHO, " and ", _m("c_h"), " the ",
        _m(r"1 - 2\alpha'", "1 - 2 alpha'"), " quantile of ",
        _m(r"\max_f |\rho^*_{hf} - \hat\rho_{hf}| / s_{hf}", "max_f |rho*_hf - rho_hf| / s_hf"),
        " over the resamples (", _m(r"\alpha' = \Phi\big(\sqrt{G/(G-1)}\, t_{G-1,\,\alpha/2}\big) = "
                                  + f"{expanded:.4f}",
                                  f"alpha' = Phi(sqrt(G/(G-1)) t_(G-1, alpha/2)) = {expanded:.4f}"), "),",
        _display(r"\Big[\max_f \max\big(0, |\hat\rho_{hf}| - c_h s_{hf}\big),\ \min\big(1, \max_f (|\hat\rho_{hf}| "
                 r"+ c_h s_{hf})\big)\Big],",
                 " [max_f max(0, |rho_hf| - c_h s_hf), min(1, max_f (|rho_hf| + c_h s_hf))],"),
        "which covers the true HSI whenever the band covers every true ", _RHO, " of the head, holds the estimate, "
        "and "
        "starts at 0 when no feature of the head is told apart from 0. ",
    ]


def _bca_interval(half: float, n_groups: int) -> list[Segment]:
    return ["bias-corrected and accelerated (BCa) intervals ", _cite("efron1987"), ": ",
            *_bca(_m(r"q = \alpha/2, 1 - \alpha/2", "q = alpha/2, 1 - alpha/2")), ", with ", _tails(half)]


def _percentile(half: float, n_groups: int) -> list[Segment]:
    return ["percentile intervals, the ", _tails(half), " and ", _m(r"1 - \alpha/2", "1 - alpha/2"),
            " quantiles of the resampled values, without bias correction"]


def _basic(half: float, n_groups: int) -> list[Segment]:
    return ["basic (reverse-percentile) intervals ",
            _m(r"[2\hat\theta - \hat\theta^*_{1-\alpha/2},\; 2\hat\theta - \hat\theta^*_{\alpha/2}]",
               "[2 theta - theta*_(1-alpha/2), 2 theta - theta*_(alpha/2)]"),
            ", ", _m(r"\hat\theta^*_q", "theta*_q"), " being the q quantile of the resampled values and ",
            _tails(half), ", without further bias correction"]


#: The bootstrap interval of each ``ci_method``, given the nominal tail probability and the number of groups.
_CI_TEXT: dict[str, Callable[[float, int], list[Segment]]] = {
    "expanded": _expanded, "bca": _bca_interval, "percentile": _percentile, "basic": _basic}

_SCHEME_TEXT: dict[str, list[Segment]] = {
    "sign-flip": [
        "a sign-flip randomisation test ", _cite("winkler2014"), ": the numerator of every ", _RHO,
        " is a sum of independent group contributions, symmetric about zero under this hypothesis, so each "
        "randomisation multiplied every group's contribution by an independent random sign ",
        _m(r"\epsilon_g \in \{-1, +1\}", "eps_g = -1 or +1"),
        ", the same for every head and feature of that group, and recomputed every ", _RHO, " and ", _HSI],
    "within-group": [
        "a permutation test ", _cite("winkler2014"), " that applied one random permutation of the entities present "
        "to every scenario of a group (entities exchangeable within each group)"],
    "within-scenario": [
        "a permutation test ", _cite("winkler2014"), " with an independent permutation of the entities present in "
        "each scenario (valid only if scenarios are independent)"],
}


def _statistics(correction: str) -> list[Segment]:
    """The statistics of the randomisation test: studentised, unless a raw max-T correction was chosen."""
    if correction in ("maxt-raw", "maxt-raw-single-step"):
        return [_m(r"T = |\rho_{hf}|", "|rho_hf|"), " per (head, feature) pair and ",
                _m(r"T = \mathrm{HSI}_h", "HSI_h"), " per head (whose p-value accounts for choosing the best "
                "feature); "]
    why: list[Segment] = (
        [", so that a feature whose null is wide (one that persists within episodes) does not set the maximum for the "
         "others in the max-T adjustment ", _cite("westfall1993"), "; "] if correction in ("maxt", "maxt-single-step")
        else ["; "])
    return [_m(r"T_{hf} = |\rho_{hf}| / s_{hf}", "T_hf = |rho_hf| / s_hf"), " per (head, feature) pair and ",
            _m(r"M_h = \max_f T_{hf}", "M_h = max_f T_hf"), " per head (a studentised HSI, whose p-value accounts "
            "for choosing the best feature), with ", _m(r"s_{hf}", "s_hf"), " the root mean square of ", _RHO,
            " over the randomisations: each statistic on the scale of its own null distribution", *why]


_MAX_T: list[Segment] = ["the adjusted p-value of test ", _m("i"), " is ",
                         _m(r"\tilde p_i = \big(1 + \#\{r : \max_j T^*_{rj} \ge T_i\}\big)/(1 + R)",
                            "p~_i = (1 + #{r : max_j T*_rj >= T_i}) / (1 + R)")]
_FWER_ANY = "; it controls the family-wise error rate under any dependence between tests"
#: The multiple-comparison procedure of each ``correction``.
_STEP_DOWN: list[Segment] = [
    "the step-down max-T procedure ", _cite("westfall1993"), " from the same randomisations: with the tests ordered "
    "by their statistics, ", *_MAX_T, " with the maximum taken over test ", _m("i"), " and the tests ranked below "
    "it, made monotone in that order", _FWER_ANY]
_SINGLE_STEP: list[Segment] = ["the single-step max-T procedure ", _cite("westfall1993"), " from the same "
                               "randomisations: ", *_MAX_T, ", the maximum taken over the family", _FWER_ANY]
_CORRECTION_TEXT: dict[str, list[Segment]] = {
    "maxt": _STEP_DOWN, "maxt-single-step": _SINGLE_STEP, "maxt-raw": _STEP_DOWN, "maxt-raw-single-step": _SINGLE_STEP,
    "holm": ["Holm's step-down procedure ", _cite("holm1979"), ", which controls the family-wise error rate"],
    "bonferroni": ["the Bonferroni correction, which controls the family-wise error rate"],
    "fdr_bh": ["the Benjamini-Hochberg procedure ", _cite("bh1995"), ", which controls the false discovery rate"],
    "fdr_by": ["the Benjamini-Yekutieli procedure ", _cite("by2001"), ", which controls the false discovery rate "
               "under dependence"],
    "sidak": ["the Sidak correction, which controls the family-wise error rate for independent tests"],
    "holm-sidak": ["the Holm-Sidak step-down procedure ", _cite("holm1979"), ", which controls the family-wise "
                   "error rate for independent tests"],
    "hommel": ["Hommel's procedure, which controls the family-wise error rate"],
    "none": ["no correction (raw p-values)"],
}


def _second(result: HSIResult) -> list[Segment]:
    s, d, test = result.settings, result.data_summary, result.test
    level = round(100 * s["confidence_level"])
    if test.exact:
        p_value: list[Segment] = [
            f"all {test.n_resamples} sign patterns were enumerated (an exact test) and ",
            _m(r"p = \#\{T^* \ge T\} / 2^G", "p = #{T* >= T} / 2^G"), ". "]
    else:
        p_value = [_m("R"), f" = {test.n_resamples} randomisations were drawn and ",
                   _m(r"p = (1 + e)/(1 + R)", "p = (1 + e) / (1 + R)"), ", ", _m("e"), " being the number of "
                   "randomised statistics that reach the observed one (up to a relative tolerance for floating-point "
                   "ties), which is never zero ", _cite("phipson2010"), ". "]
    n_pairs = d["n_heads"] * d["n_features"]
    return [
        "Uncertainty was assessed with the group (episode) as the unit of independence, since scenarios of one "
        f"episode are autocorrelated. {level}% confidence intervals for every ", _RHO, " and ", _HSI,
        " came from ", _m("B"), f" = {s['n_resamples']} cluster-bootstrap resamples of whole groups ",
        _cite("field2007"), ": each resample draws ", _m(f"G = {d['n_groups']}"), " groups with replacement and "
        "recomputes every estimate from the drawn groups' sums; the intervals were computed as ",
        *_CI_TEXT[s.ci_method]((1.0 - s.confidence_level) / 2.0, d["n_groups"]), " (for every ", _RHO, "). ",
        *_hsi_interval((1.0 - s.confidence_level) / 2.0, d["n_groups"]),
        "p-values for the null hypothesis that, within a scenario, a head's attention is unrelated to which entity "
        "has which feature value came from ", *_SCHEME_TEXT[s["scheme"]], ", with the statistics ",
        *_statistics(s.correction), *p_value,
        f"The p-values of the pairs were adjusted over the family of all {n_pairs} head x feature tests, and "
        f"those of the HSI separately over the family of the {d['n_heads']} head-level tests, with ",
        *_CORRECTION_TEXT[s.correction],
        " (statsmodels' multipletests)" if s.correction in STATSMODELS_METHODS else "",
        "; the tables show the former, for the label's feature, as \"label adj. p\" and the latter as \"HSI adj. p\".",
    ]


_SCALE_TEXT: dict[str, list[Segment]] = {
    "rank-feature": [
        "Because ", _RHO, " is linear in attention, a head with all its attention on the flagged entity of an "
        "indicator reaches ", _m(r"|\rho_{hf}| = 1", "|rho_hf| = 1"), "; against a continuous feature, a head with "
        "all its attention on the most extreme of ", _m("n"), " entities reaches at most ",
        _m(r"\sqrt{3/(n+1)}", "sqrt(3/(n+1))"), " (0.71 for ", _m("n = 5"),
        "), so for continuous features the focus says more about concentration than the band."],
    "spearman": [
        "Under Spearman, the within-scenario correlation with a binary feature that flags one entity among n cannot "
        "exceed ", _m(r"\sqrt{3/(n+1)}", "sqrt(3/(n+1))"), ", so bands for binary features understate the "
        "strength."],
    "pearson": ["Under Pearson, ", _RHO, " depends on the feature's scale: heavy-tailed features are dominated by "
                "their largest values."],
}


def _third(result: HSIResult) -> list[Segment]:
    s = result.settings
    level = round(100 * s["confidence_level"])
    strict = " and the bound of its confidence interval nearest zero" if s["strict"] else ""
    return [
        "A head received the head-function label of its strongest feature whose correlation has the sign the "
        "feature catalog expects (its label feature), and the label was validated only if ",
        _m(r"|\rho_{hf}|", "|rho|"), strict,
        f" reached {s['threshold']:g}, the adjusted p-value of the (head, label feature) pair was below "
        f"{s['alpha']:g}, the label feature was the strongest in at least {s['min_stability']:.0%} of bootstrap "
        "resamples (among all features when it is the primary feature, else among those of the expected sign), and "
        "the head's attention was selective: its selectivity",
        _display(r"\sigma_h = \frac{1}{|S_h|} \sum_{s \in S_h} \Big(1 - \frac{H(p_{hs})}{\log V_s}\Big), \qquad "
                 r"H(p) = -\sum_{v=1}^{V_s} p_v \log p_v,",
                 " sigma_h = mean over scenarios of 1 - H(p_hs) / log V_s, H(p) = -sum_v p_v log p_v,"),
        f"was at least {s['min_selectivity']:g}, where ", _m("p_{hs}", "p_hs"), " is the head's attention in "
        "scenario s renormalised over its ", _m("V_s", "V_s"), " valid entities, H is the Shannon entropy ",
        _cite("shannon1948"), " (so ", _m(r"\sigma_h", "sigma_h"), " is 0 for uniform attention and 1 for all "
        "attention on one entity) and ", _m("S_h", "S_h"), " are the scenarios with at least two valid entities and "
        f"some attention mass; every failed rule is reported. Strength bands: {strength_bands_text()}. ",
        *_SCALE_TEXT[s["correlation"]],
        " Beside ", _m(r"\rho", "rho"), ", the focus of a head on a feature measures the share of its attention on "
        "the feature's target entities T (the flagged entities of an indicator, the most extreme entity of any "
        "other feature, in the direction the catalog expects): with ", _m(r"u = |T|/n_s", "u = |T| / n_s"),
        " the share uniform attention would give them and ", _m(r"\pi = \sum_{v \in T} p_v", "pi = sum over T of p_v"),
        " the share the head gives them (its attention renormalised over the ", _m("n_s"), " entities valid for the "
        "feature), the scenario's excess share is ", _m(r"\phi_s = (\pi - u)/(1 - u)", "phi_s = (pi - u) / (1 - u)"),
        ", 0 for uniform attention and 1 for all attention on the targets, down to its floor ",
        _m(r"-u/(1 - u)", "-u / (1 - u)"), " for none on them. The focus is its mean ", _m(r"\bar\phi", "mean phi"),
        " over the scenarios, and where that is negative, ", _m(r"\bar\phi / \bar f", "mean phi / mean f"),
        " with ", _m(r"\bar f", "mean f"), " the mean of the scenarios' ", _m(r"u/(1 - u)", "u / (1 - u)"),
        ", so that -1 is no attention on the targets at all (a head unrelated to the feature has a focus of 0 in "
        f"expectation either way); its {level}% interval comes from the same bootstrap resamples, by the interval "
        "method of ", _RHO, ".",
    ]


def _joint(result: HSIResult) -> list[Segment]:
    """The joint model: the conditional logit, its fit, the features left out, its inference and the label rule."""
    fit = result.joint_model.fit if result.joint_model is not None else None
    assert fit is not None
    s, d = result.settings, result.data_summary
    left_out = [c.name for c in fit.aliasing.left_out if c.name in result.estimate.feature_names]
    firth = [head for head, method in zip(result.estimate.head_names, fit.method, strict=True) if method == "firth"]
    n_coefficients = len(result.joint) if result.joint is not None else 0
    correction: list[Segment] = (
        ["the step-down max-T procedure ", _cite("westfall1993"), " on the studentised coefficients, their joint "
         "null distribution from the same cluster-bootstrap resamples of the groups' scores (each resample moves "
         "the estimate by ", _m(r"I^{-1} \sum_g w_g s_g", "I^-1 sum_g w_g s_g"), "; a coefficient's observed "
         "statistic is the standard-normal quantile of its t test's p-value, and no adjusted p-value is below the raw "
         "one)"]
        if s.correction in ("maxt", "maxt-single-step") else _CORRECTION_TEXT[s.correction])
    return [
        "Which features drive each head's attention, holding the others fixed, was estimated by a conditional logit "
        "with fractional responses ", _cite("mcfadden1974", "mullahy2015"), ": with ",
        _m(r"\tilde a_{hsv}", "a_hsv"), " the attention of head h renormalised over the ", _m("n_s"),
        " entities of scenario s with every feature present (an entity with a missing feature is left out of its "
        "scenario's fit) and ", _m("z_{sv}", "z_sv"), " their covariates (each continuous feature's mid-rank "
        "percentile within the scenario, each indicator as 0/1"
        + (", and indicators of the observation slot" if s["adjust"] == "slot" else "") + "),",
        _display(r"p_{hsv} = \frac{\exp(\beta_h^\top z_{sv})}{\sum_{v'} \exp(\beta_h^\top z_{sv'})}, \qquad "
                 r"\hat\beta_h = \mathrm{arg\,max}_\beta \sum_s \sum_v \tilde a_{hsv} \log p_{hsv}(\beta),",
                 " p_hsv = exp(b_h' z_sv) / sum_v' exp(b_h' z_sv'), b_h maximising sum_s sum_v a_hsv log p_hsv,"),
        "the same estimate as a Poisson regression with scenario fixed effects ", _cite("baker1994"),
        "; scenario-level factors cancel, and ", _m(r"e^{\beta_{hf}}", "exp(b_hf)"), " is an attention odds ratio: "
        "per unit of percentile (the highest against the lowest value) for a continuous feature, flagged against "
        "not flagged for an indicator. Features nearly aliased within scenarios (a variance-inflation factor above "
        "10 ", _cite("kutner2005"), ") were left out, the one listed later in the catalog first"
        + (f" ({', '.join(left_out)})" if left_out else " (none)") + ". The estimate was found by Newton's method "
        "with step halving, in passes over the data from the fit on its first scenarios, stopping when no step "
        "exceeded 1e-6 of the largest coefficient; "
        + (f"{len(firth)} head(s) whose positive attention could not rule out an infinite estimate were fitted "
           f"with Firth's penalty ({', '.join(firth)}) " if firth else "where the entities given positive attention "
           "could not rule out an infinite estimate, Firth's penalty would have been used "),
        _cite("firth1993", "heinze2010"), ". Standard errors are the cluster jackknife (CV3) over the ",
        _m(f"G = {d['n_groups']}"), " groups ", _cite("mackinnon2023"), ", each group's removal taken as one Newton "
        "step from the estimate,",
        _display(r"\hat\beta_{(g)} = \hat\beta - (I - I_g)^{-1} s_g, \qquad \hat V = \frac{G-1}{G} \sum_g "
                 r"(\hat\beta_{(g)} - \bar\beta_{(\cdot)})(\hat\beta_{(g)} - \bar\beta_{(\cdot)})^\top,",
                 " b_(g) = b - (I - I_g)^-1 s_g, V = (G-1)/G sum_g (b_(g) - mean b_(.))(b_(g) - mean b_(.))',"),
        "with ", _m("s_g"), " and ", _m("I_g"), " group g's score and information; ",
        f"{round(100 * s['confidence_level'])}% intervals are ", _m(r"\hat\beta \pm t_{G-1} \hat{se}",
                                                                    "b +- t_(G-1) se"),
        f" and the two-sided t tests of no conditional effect were adjusted over the {n_coefficients} head x "
        "feature coefficients with ", *correction, ". A head's profile lists its features with an adjusted p-value "
        f"below {s['alpha']:g}, the largest odds ratio (in either direction) first; a label was validated only if "
        "its feature (or, when left out, the kept feature that explains it, with the sign of that relation) also had "
        "a conditional effect in the direction the catalog expects.",
    ]


def _evolution(evolution: EvolutionResult) -> list[Segment]:
    s = evolution.settings
    level = round(100 * s["confidence_level"])
    first, last = evolution.step_label(evolution.steps[0]), evolution.step_label(evolution.steps[-1])
    n = s["trend_resamples"]
    return [
        f"Each of the K = {len(evolution.steps)} training steps ({first} to {last}) was analysed in the same way on "
        "its own episodes. Change over training was measured per head on the feature it tracks over the run, ",
        _m(r"f_h = \mathrm{arg\,max}_f |\bar\rho_{hf}|", "f_h = argmax_f |mean_k rho_hfk|"), " with ",
        _m(r"\bar\rho_{hf} = K^{-1} \sum_k \rho_{hfk}", "mean_k rho_hfk = (1/K) sum_k rho_hfk"),
        ", by the least-squares slope of its ", _m(r"\rho_{hf_hk}", "rho_hf_hk"), " on the checkpoint index ",
        _m(r"k = 0, \dots, K - 1", "k = 0, ..., K - 1"), ", signed by the sign ",
        _m("o_h", "o_h"), " of that relation,",
        _display(r"S_h = o_h \sum_{k=0}^{K-1} c_k \, \rho_{hf_hk}, \qquad "
                 r"c_k = \frac{k - \bar k}{\sum_{k'} (k' - \bar k)^2},",
                 " S_h = o_h sum_k c_k rho_hf_hk with c_k = (k - mean k) / sum_k' (k' - mean k)^2,"),
        "positive when the relation strengthens; ", _m(r"\rho_{hfk}", "rho_hfk"), " comes from the episodes of "
        "checkpoint k. Under no change the episodes are exchangeable between checkpoints, so they were permuted "
        f"between them ({n} permutations, each checkpoint keeping its number of episodes, the tracked feature and "
        "its sign chosen again in each; ", _m(r"p = (1 + e)/(1 + R)", "p = (1 + e) / (1 + R)"), " for ",
        _m(r"|S_h|", "|S_h|"), " ", _cite("phipson2010"), "), and the p-values were adjusted over the heads with the "
        "step-down max-T procedure from the same permutations ", _cite("westfall1993"), f". The {level}% interval "
        "inverts the same test under a location shift, ", _m(r"S_h \pm q_h", "S_h +- q_h"), " with ", _m("q_h"),
        " the permuted ", _m(r"|S^*_h|", "|S*_h|"), " at which the p-value reaches ",
        _m(r"\alpha", "alpha"), ", so that the interval excludes 0 exactly when the test rejects. A label emerges "
        "at the first step from which it is validated, with the label it has at the last step, at every later step.",
    ]


def _ablation(given: Sequence[Any]) -> list[Segment]:
    """Removing heads: how, the open-loop measures and their intervals, the targeted comparison, the closed loop."""
    effects = next((item for item in given if isinstance(item, AblationEffects)), None)
    episodes = next((item for item in given if isinstance(item, AblationEpisodes)), None)
    mode = given[0].mode
    how = ("its output set to zero" if mode == "zero" else
           "its output replaced by its mean over reference inputs (every batch entry and query position)")
    paragraph: list[Segment] = [
        "Attention weights show where a head looks, not that the policy uses it ", _cite("jain2019"), "; whether "
        "it does was tested by removing heads ", _cite("michel2019", "voita2019"), ", each in turn with ", how,
        ", before the attention module's output projection ", _m(r"W^O", "W_O"), " (its columns of ",
        _m(r"W^O", "W_O"), " zeroed"]
    if mode == "mean":
        paragraph += [", and ", _m(r"W^O_{:,h} \bar o_h", "W_O[:, h] mean o_h"), " added to the bias"]
    paragraph.append(").")
    if effects is not None:
        level = round(100 * effects.confidence_level)
        paragraph += [
            " Open loop, on the same observations with and without the head, with ", _m("p_t"), " and ", _m("q_t"),
            " the action probabilities at step t, the share of steps whose most probable action changed, ",
            _m(r"\bar c = T^{-1} \sum_t [\mathrm{arg\,max} p_t \ne \mathrm{arg\,max} q_t]",
               "mean over t of [argmax p_t != argmax q_t]"), ", and the mean total-variation distance ",
            _m(r"T^{-1} \sum_t \tfrac12 \lVert p_t - q_t \rVert_1", "mean over t of (1/2) |p_t - q_t|_1"),
            f" were given {level}% Wilson score intervals ", _cite("wilson1927"), " over the "
            f"{effects.n_groups} episodes: the number of steps divided by the design effect of the episodes ",
            _cite("kish1965"), " (the cluster-robust variance of the ratio over its binomial variance), with t "
            "degrees of freedom from the episodes that carry the rarer outcome, so that a share of 0 or 1 gets "
            "the interval of no event in as many trials as there are episodes, not a point."]
        if effects.targeted is not None and len(effects.targeted):
            paragraph += [
                " For a head with a validated label, a step's target was salient when the label's target was "
                "present and stood out: for an indicator, some but not all valid vehicles flagged; for a continuous "
                "feature, the step's most extreme valid vehicle in the label's direction more extreme than in the "
                "median step. The share of changed actions in the salient steps minus that in the others was "
                f"bounded by the {level}% expanded percentile interval ", _cite("hesterberg2015"), " from "
                f"{effects.n_resamples} cluster-bootstrap resamples of the episodes ", _cite("field2007"),
                ", the median split recomputed in every resample (the steps weighted by their episode's "
                "multiplicity), or, where every resample gives the same difference, by Newcombe's hybrid of the two "
                "shares' intervals ", _cite("newcombe1998"), "; it was tested two-sided by the bootstrap, adjusted "
                "over the heads with Holm's procedure ", _cite("holm1979"), "."]
    if episodes is not None:
        level = round(100 * episodes.confidence_level)
        paragraph += [
            f" Closed loop, the intact policy and each ablated one drove the same E = {len(episodes.returns)} episodes "
            "(reset with the same seeds); the paired differences of return (the undiscounted sum of rewards) and of "
            "crash, ablated minus intact, were averaged over episodes and tested by flipping their signs (",
            _m(r"p = (1 + e)/(1 + B)", "p = (1 + e) / (1 + B)"), f" from B = {episodes.n_resamples} random sign "
            "patterns, or ", _m(r"p = e/2^E", "p = e / 2^E"), " over all ", _m("2^E"), " patterns when there are "
            "no more), adjusted over the heads with the step-down max-T procedure from the same "
            "patterns ", _cite("westfall1993"), f", with {level}% expanded percentile intervals from resampling "
            "the episodes."]
    return paragraph


def _software(result: HSIResult) -> list[Segment]:
    p = result.provenance
    versions = p["versions"]
    return [f"Analysis with hsi_stats {versions.get('hsi_stats', '?')} (numpy {versions.get('numpy', '?')}, "
            f"scipy {versions.get('scipy', '?')}, statsmodels {versions.get('statsmodels', '?')}), seed "
            f"{p['seed']}, data fingerprint {str(p['data_fingerprint'])[:16]}."]


def methods_text(result: HSIResult, evolution: EvolutionResult | None = None,
                 ablation: Any = None) -> MethodsText:
    r"""Build the methods section from the settings, data summary and provenance of ``result`` (and the evolution
    over training, when given).

    It states the estimator of :math:`\rho_{hf}` and :math:`\mathrm{HSI}_h = \max_f |\rho_{hf}|`, the cluster
    bootstrap and its interval (with the HSI's bias correction where the method has one), the randomisation
    test with its p-value :math:`(1 + e)/(1 + R)`, the correction of each family (pairs over all head x feature
    tests, HSI over the heads), the validation rules with their thresholds (the selectivity
    :math:`1 - H(p)/\log V` with H the Shannon entropy), the focus, the joint model (its fit, the features left
    out, its jackknife intervals and corrected tests, the profiles and the conditional label rule) and, with
    ``evolution``, the trend test, its interval and the emergence step, and with ``ablation`` (results of
    :mod:`hsi_stats.ablation`) how heads were removed and the effects tested; each procedure cites its reference.

    Examples
    --------
    >>> from hsi_stats import analyze
    >>> from hsi_stats.synthetic import generate
    >>> text = methods_text(analyze(generate(n_episodes=12, n_steps=5, rng=0).dataset, n_resamples=99, rng=4))
    >>> "99 cluster-bootstrap resamples" in text.paragraphs[1], "seed 4" in text.paragraphs[-1]
    (True, True)
    >>> "$B$ = 99 cluster-bootstrap resamples of whole groups [@field2007]" in text.markdown[1]
    True
    """
    paragraphs = [_first(result), _second(result), _third(result)]
    if result.joint_model is not None:
        paragraphs.append(_joint(result))
    if evolution is not None:
        paragraphs.append(_evolution(evolution))
    given = ablation_results(ablation)
    if given:
        paragraphs.append(_ablation(given))
    return MethodsText.from_segments([*paragraphs, _software(result)])
