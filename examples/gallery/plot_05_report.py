"""
Write and read a report
=======================

:func:`hsi_stats.write_report` writes the HTML and PDF report with the citable files beside it. This example
writes the HTML document (``formats=("html",)``; the default writes the PDF too) and shows what the files hold.
"""

# %%
import tempfile
from pathlib import Path

import hsi_stats
from hsi_stats.synthetic import generate

result = hsi_stats.analyze(generate(n_episodes=24, n_steps=10, rng=0).dataset, n_resamples=999, rng=1)
out = Path(tempfile.mkdtemp()) / "report"
hsi_stats.write_report(result, out, formats=("html",))
print(sorted(p.name for p in out.iterdir()))

# %%
# ``methods.md`` states what was done, with the settings of this analysis and pandoc citations:
print((out / "methods.md").read_text()[:1500], "...")

# %%
# ``table.tex``, the head table for a paper (booktabs and siunitx):
print((out / "table.tex").read_text())

# %%
# The forest plot of every rho with its interval, as the report draws it:
from hsi_stats.report.figures import forest_plot

ax = forest_plot(result, heads=["h0", "h1", "h4"])
