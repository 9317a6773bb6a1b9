"""Inference on the per-group sums: cluster bootstrap, randomisation tests and multiple comparisons.

Every procedure resamples or randomises whole groups (episodes), the unit of independence. Resamples are stacked
on a leading axis and processed in batches; the numbers do not depend on the batch size. The scheme of the test is
resolved (:func:`resolve_scheme`) before any array is built, and the correction is applied in one place
(:func:`family_adjusted`). Nothing here imports plotting.
"""

from .bootstrap import BootstrapResult, cluster_bootstrap
from .multitest import adjust_pvalues, family_adjusted
from .randomisation import RandomisationResult, randomisation_test, resolve_scheme

__all__ = [
    "BootstrapResult",
    "RandomisationResult",
    "adjust_pvalues",
    "cluster_bootstrap",
    "family_adjusted",
    "randomisation_test",
    "resolve_scheme",
]
