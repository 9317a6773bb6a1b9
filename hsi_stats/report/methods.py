"""The citable methods paragraph: what was done, stated from the settings a result actually used.

Every sentence is built from ``HSIResult.settings``, ``data_summary`` and ``provenance``, so changing a setting
changes the text. The paragraph is returned as Markdown (for ``methods.md``) and as plain paragraphs (for the
HTML and PDF reports).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..evolution import EvolutionResult
from ..labels import strength_bands_text
from ..results import HSIResult
from ..step_selection import StepSelection

__all__ = ["REFERENCES", "MethodsText", "methods_text"]

REFERENCES = {
    "efron1987": "Efron, B. (1987). Better bootstrap confidence intervals. Journal of the American Statistical "
                 "Association 82(397), 171-185. doi:10.1080/01621459.1987.10478410",
    "hesterberg2015": "Hesterberg, T. C. (2015). What teachers should know about the bootstrap: resampling in the "
                      "undergraduate statistics curriculum. The American Statistician 69(4), 371-386. "
                      "doi:10.1080/00031305.2015.1089789",
    "westfall1993": "Westfall, P. H. and Young, S. S. (1993). Resampling-Based Multiple Testing: Examples and "
                    "Methods for p-Value Adjustment. Wiley.",
    "holm1979": "Holm, S. (1979). A simple sequentially rejective multiple test procedure. Scandinavian Journal "
                "of Statistics 6(2), 65-70.",
    "bh1995": "Benjamini, Y. and Hochberg, Y. (1995). Controlling the false discovery rate: a practical and "
              "powerful approach to multiple testing. Journal of the Royal Statistical Society B 57(1), 289-300. "
              "doi:10.1111/j.2517-6161.1995.tb02031.x",
    "phipson2010": "Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero: calculating "
                   "exact p-values when permutations are randomly drawn. Statistical Applications in Genetics "
                   "and Molecular Biology 9(1), Article 39. doi:10.2202/1544-6115.1585",
    "by2001": "Benjamini, Y. and Yekutieli, D. (2001). The control of the false discovery rate in multiple "
              "testing under dependency. Annals of Statistics 29(4), 1165-1188. doi:10.1214/aos/1013699998",
    "fisher1921": "Fisher, R. A. (1921). On the 'probable error' of a coefficient of correlation deduced from a "
                  "small sample. Metron 1, 3-32.",
}

_CITATIONS = {
    "efron1987": "Efron, 1987", "hesterberg2015": "Hesterberg, 2015", "westfall1993": "Westfall and Young, 1993",
    "holm1979": "Holm, 1979",
    "bh1995": "Benjamini and Hochberg, 1995", "phipson2010": "Phipson and Smyth, 2010",
    "by2001": "Benjamini and Yekutieli, 2001", "fisher1921": "Fisher, 1921",
}

_ESTIMATOR_TEXT = {
    "within": ("the within-scenario correlation: attention and feature were centred within each scenario over the "
               "entities present, and rho = sum(a~ x~) / sqrt(sum(a~^2) sum(x~^2)) pooled over scenarios, which "
               "compares only entities present at the same time and removes differences between scenarios such "
               "as traffic density"),
    "pooled": ("the pooled correlation over all valid (scenario, entity) pairs, as in the original analysis; it "
               "confounds differences between scenarios (e.g. traffic density) with the head's preferences"),
    "fisher": ("the mean Fisher z of per-scenario correlations (scenarios with at least 3 entities and both "
               "variables varying), averaged within each group and then over groups and back-transformed [fisher1921]"
               "; r was clipped to +-{clip} before the transform, and with 3-8 entities |r| = 1 is common, so "
               "the estimate depends strongly on this clip: it is reported for comparability, not recommended"),
}
_CORRELATION_TEXT = {
    "rank-feature": ("the Pearson correlation of the attention mass with the feature's mid-rank percentile "
                     "((rank - 0.5)/n, average ranks for ties, ranked {where}), which is linear in attention and "
                     "insensitive to the scale and tails of the feature ("),
    "spearman": "Spearman rank correlation (average ranks for ties, ranked {where}",
    "pearson": "Pearson correlation (",
}
_SCALE_TEXT = {
    "rank-feature": ("Because rho is linear in attention, a head with all its attention on the flagged entity of "
                     "an indicator reaches |rho| = 1; against a continuous feature, a head with all its attention "
                     "on the most extreme of n entities reaches at most sqrt(3/(n+1)) (0.71 for n = 5), so for "
                     "continuous features the focus says more about concentration than the band."),
    "spearman": ("Under Spearman, the within-scenario correlation with a binary feature that flags one entity "
                 "among n cannot exceed sqrt(3/(n+1)), so bands for binary features understate the strength."),
    "pearson": ("Under Pearson, rho depends on the feature's scale: heavy-tailed features are dominated by their "
                "largest values."),
}
_CI_TEXT = {
    "expanded": "expanded percentile intervals [hesterberg2015]: the percentiles at Phi(sqrt(G/(G-1)) t_{G-1}) "
                "instead of the nominal levels, which corrects the narrowness of a bootstrap over few groups",
    "bca": "bias-corrected and accelerated (BCa) intervals [efron1987], the acceleration estimated by a "
           "leave-one-group-out jackknife",
    "percentile": "percentile intervals",
    "basic": "basic (reverse-percentile) intervals",
}
_SCHEME_TEXT = {
    "sign-flip": "a sign-flip randomisation test: each group's contribution to the numerator of rho was "
                 "multiplied by an independent random sign, the same for every head and feature of that group",
    "within-group": "a permutation test that applied one random permutation of the entities present to every "
                    "scenario of a group",
    "within-scenario": "a permutation test with an independent permutation of the entities present in each "
                       "scenario (valid only if scenarios are independent)",
}
_CORRECTION_TEXT = {
    "maxt": ("the step-down max-T procedure [westfall1993], computed from the same randomisations, which "
             "controls the family-wise error rate under any dependence between tests"),
    "maxt-single-step": ("the single-step max-T procedure [westfall1993], computed from the same randomisations, "
                         "which controls the family-wise error rate under any dependence between tests"),
    "holm": "Holm's step-down procedure [holm1979], which controls the family-wise error rate",
    "bonferroni": "the Bonferroni correction, which controls the family-wise error rate",
    "fdr_bh": "the Benjamini-Hochberg procedure [bh1995], which controls the false discovery rate",
    "fdr_by": "the Benjamini-Yekutieli procedure [by2001], which controls the false discovery rate under "
              "dependence",
    "sidak": "the Sidak correction",
    "holm-sidak": "the Holm-Sidak step-down procedure [holm1979]",
    "hommel": "Hommel's procedure",
    "none": "no correction (raw p-values)",
}


@dataclass(frozen=True)
class MethodsText:
    """The methods section: paragraphs of plain text and the references they cite (key -> full reference)."""

    paragraphs: tuple[str, ...]
    references: dict[str, str]

    def to_markdown(self) -> str:
        """``methods.md``: a heading, the paragraphs and a numbered reference list."""
        lines = ["# Methods", "", *(p + "\n" for p in self.paragraphs), "## References", ""]
        lines += [f"{i}. {text}" for i, text in enumerate(self.references.values(), start=1)]
        return "\n".join(lines) + "\n"


def _cite(paragraphs: list[str]) -> MethodsText:
    """Replace citation keys ``[key]`` by "(Author, year)" and collect the references cited."""
    text = " ".join(paragraphs)
    cited = {key: ref for key, ref in REFERENCES.items() if f"[{key}]" in text}
    rendered = []
    for paragraph in paragraphs:
        for key in cited:
            paragraph = paragraph.replace(f"[{key}]", f"({_CITATIONS[key]})")
        rendered.append(paragraph)
    return MethodsText(tuple(rendered), cited)


def methods_text(result: HSIResult, evolution: EvolutionResult | None = None) -> MethodsText:
    """Build the methods section from the settings, data summary and provenance of ``result`` (and the evolution
    over training, when given).

    Examples
    --------
    >>> from hsi_stats import analyze
    >>> from hsi_stats.synthetic import generate
    >>> text = methods_text(analyze(generate(n_episodes=12, n_steps=5, rng=0).dataset, n_resamples=99, rng=4))
    >>> "99 cluster-bootstrap resamples" in text.paragraphs[1], "seed 4" in text.paragraphs[-1]
    (True, True)
    """
    s, d, p = result.settings, result.data_summary, result.provenance
    estimator = _ESTIMATOR_TEXT[s["estimator"]].format(clip=s["fisher_clip"])
    where = "over the pooled pairs" if s["estimator"] == "pooled" else "within each scenario"
    correlation = _CORRELATION_TEXT[s["correlation"]].format(where=where)
    infinite = ("+-inf feature values left out and counted" if s["correlation"] == "pearson"
                else "+-inf feature values ranked as the most extreme values")
    slot = (" Slot preferences were removed before correlating (two-way fixed effects for scenario and "
            "observation slot), so that a preference for a slot ordered by distance is not read as a feature "
            "effect." if s["adjust"] == "slot" else "")
    first = (f"For each of {d['n_heads']} attention heads and {d['n_features']} entity features, the association "
             f"between the attention a head puts on an entity and the entity's feature value, rho, was estimated "
             f"as {estimator}, using {correlation}; NaN values left out per feature, {infinite}).{slot} "
             f"The Head Specialization Index is HSI = max_f |rho_f|; the feature attaining it is the primary "
             f"feature. The data were {d['n_scenarios']} scenarios from {d['n_groups']} independent groups "
             f"(episodes), with {d['n_entities']} valid entities in all.")
    level = round(100 * s["confidence_level"])
    exact = result.test.exact
    second = (f"Uncertainty was assessed with the group (episode) as the unit of independence, since scenarios of "
              f"one episode are autocorrelated. {level}% confidence intervals for every rho and HSI came from "
              f"{s['n_resamples']} cluster-bootstrap resamples of whole groups, as {_CI_TEXT[s['ci_method']]}. "
              f"p-values for the null hypothesis that, within a scenario, a head's attention is unrelated to which "
              f"entity has which feature value came from {_SCHEME_TEXT[s['scheme']]}, with the statistics |rho| "
              f"per (head, feature) pair and HSI per head (whose p-value accounts for choosing the best feature); "
              + (f"all {result.test.n_resamples} sign patterns were enumerated (an exact test). " if exact else
                 f"{result.test.n_resamples} randomisations were drawn and p = (1 + k) / (1 + B), which is never "
                 "zero [phipson2010]. ")
              + f"p-values were adjusted over the family of all {d['n_heads'] * d['n_features']} head x feature "
              f"tests, and separately over the {d['n_heads']} head-level tests, with "
              f"{_CORRECTION_TEXT[s['correction']]}.")
    strict = " and the lower end of its confidence interval (in magnitude)" if s["strict"] else ""
    third = (f"A head received the head-function label of its strongest feature whose correlation has the sign "
             f"the feature catalog expects, and the label was validated only if |rho|{strict} reached "
             f"{s['threshold']:g}, the adjusted p-value was below {s['alpha']:g}, the feature was the strongest in "
             f"at least {s['min_stability']:.0%} of bootstrap resamples, and the head's attention was selective "
             f"(mean over scenarios of 1 - H(p)/log n at least {s['min_selectivity']:g}); every failed rule is "
             f"reported. Strength bands: {strength_bands_text()}. {_SCALE_TEXT[s['correlation']]} Beside rho, the "
             f"focus of a head on a feature is the share of its attention on the feature's target entity (the "
             f"flagged entities of an indicator, the most extreme entity of any other feature, in the direction the "
             f"catalog expects) in excess of uniform attention, divided by its largest possible value: 0 for "
             f"uniform attention, 1 for all attention on the target, -1 for none; it is averaged over scenarios "
             f"and its {level}% interval comes from the same bootstrap resamples.")
    versions = p["versions"]
    fourth = (f"Analysis with hsi_stats {versions.get('hsi_stats', '?')} (numpy {versions.get('numpy', '?')}, "
              f"scipy {versions.get('scipy', '?')}, statsmodels {versions.get('statsmodels', '?')}), seed "
              f"{p['seed']}, data fingerprint {str(p['data_fingerprint'])[:16]}.")
    described = StepSelection.from_dict(d["step_selection"]).describe()
    if described:
        first += f" {described[0].upper()}{described[1:]}."
    paragraphs = [first, second, third]
    if evolution is not None:
        paragraphs.append(_evolution_paragraph(evolution))
    return _cite([*paragraphs, fourth])


def _evolution_paragraph(evolution: EvolutionResult) -> str:
    """How the training steps were compared."""
    s = evolution.settings
    level = round(100 * s["confidence_level"])
    return (f"Each of the {len(evolution.steps)} training steps ({evolution.step_label(evolution.steps[0])} to "
            f"{evolution.step_label(evolution.steps[-1])}) was "
            f"analysed in the same way on its own episodes. Change over training was tested per head with the "
            f"least-squares slope of its HSI on the checkpoint index; under no change the episodes are exchangeable "
            f"between checkpoints, so they were permuted between them ({s['trend_resamples']} permutations, each "
            f"checkpoint keeping its number of episodes, p = (1 + k) / (1 + B) [phipson2010]), and the p-values were "
            f"adjusted over the heads with the step-down max-T procedure from the same permutations [westfall1993]. "
            f"The trend is reported as the change per checkpoint of the rho of the feature the head tracks over the "
            f"run (the largest mean rho over the steps in magnitude), with a {level}% percentile interval from "
            f"{s['trend_resamples']} resamples of each "
            f"checkpoint's episodes within that checkpoint. A label emerges at the first step from which it is "
            f"validated at every later step.")
