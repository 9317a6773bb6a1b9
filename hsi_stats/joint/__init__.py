"""The joint model: which features drive each head's attention, holding the others fixed.

Attention over entities is a softmax, so its natural regression is the conditional (multinomial) logit with
fractional responses: for head h the attention :math:`a_{sv}` on entity v of scenario s (renormalised over the
entities of the fit) is modelled as :math:`p_{sv} = \\exp(\\beta^\\top z_{sv}) / \\sum_{v'} \\exp(\\beta^\\top
z_{sv'})`, and :math:`\\beta` maximises :math:`\\sum_s \\sum_v a_{sv} \\log p_{sv}` (McFadden 1974; fractional
responses: Mullahy 2015; the same estimate as a Poisson regression with scenario fixed effects, Baker 1994).
Scenario-level factors cancel, as in the ``within`` estimator, and :math:`e^{\\beta_f}` is an attention odds
ratio: per unit of within-scenario percentile for a continuous feature (the most against the least extreme of n
entities is :math:`e^{\\beta_f (n-1)/n}`), flagged against unflagged for an indicator.

:mod:`~hsi_stats.joint.design` builds the covariates and decides which features the fit can tell apart,
:mod:`~hsi_stats.joint.passes` sums what a Newton step needs in one pass over the data, and
:mod:`~hsi_stats.joint.fit` iterates. Inference is :mod:`hsi_stats.inference.joint`.

References
----------
.. [1] McFadden, D. (1974). Conditional logit analysis of qualitative choice behavior. In P. Zarembka (ed.),
   Frontiers in Econometrics, 105-142. Academic Press.
.. [2] Mullahy, J. (2015). Multivariate fractional regression estimation of econometric share models. Journal of
   Econometric Methods 4(1), 71-100. https://doi.org/10.1515/jem-2012-0006
.. [3] Baker, S. G. (1994). The multinomial-Poisson transformation. The Statistician 43(4), 495-504.
   https://doi.org/10.2307/2348134
"""

from .design import MAX_VIF, Aliasing, LeftOutColumn, choose_columns
from .fit import JointFit, fit_joint

__all__ = ["MAX_VIF", "Aliasing", "JointFit", "LeftOutColumn", "choose_columns", "fit_joint"]
