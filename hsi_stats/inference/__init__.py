"""Inference on the per-group sums: cluster bootstrap, randomisation tests and multiple comparisons (DESIGN 4).

Every procedure resamples or randomises whole groups (episodes), the unit of independence. Resamples are stacked
on a leading axis and processed in batches; the numbers do not depend on the batch size. Nothing here imports
plotting.
"""

from .bootstrap import BootstrapResult, cluster_bootstrap
from .multitest import CORRECTIONS, adjust_pvalues
from .randomisation import SCHEMES, RandomisationResult, randomisation_test

__all__ = [
    "CORRECTIONS",
    "SCHEMES",
    "BootstrapResult",
    "RandomisationResult",
    "adjust_pvalues",
    "cluster_bootstrap",
    "randomisation_test",
]
