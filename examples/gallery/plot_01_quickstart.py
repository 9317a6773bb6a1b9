"""
Quick start: analyse a run
==========================

Simulate a small driving run whose heads are known, analyse it with the defaults, and read the head table and
the figures the report is made of.
"""

# %%
# The data
# --------
# :func:`hsi_stats.synthetic.generate` simulates highway episodes and the attention of eight heads: h0–h3 track
# time-to-collision, distance, the left lane and the vehicles ahead; h4–h7 have no feature effect but prefer one
# slot for a whole episode. Each episode is a group: every interval and test resamples whole episodes.
from hsi_stats.synthetic import generate

run = generate(n_episodes=30, n_steps=10, rng=0)
ds = run.dataset
print(ds.n_scenarios, "scenarios,", ds.n_heads, "heads,", len(ds.feature_names), "features")
print(ds.feature_names)

# %%
# The analysis
# ------------
# :func:`hsi_stats.analyze` estimates every head × feature correlation, its cluster-bootstrap interval and its
# randomisation p-value corrected over the family (step-down max-T), fits the joint model and validates the labels.
# ``n_resamples=999`` keeps this example fast; the default is 9999.
import hsi_stats

result = hsi_stats.analyze(ds, n_resamples=999, rng=1)
print(result.summary())

# %%
# The tables behind the summary are pandas DataFrames: one row per head, and one row per (head, feature) pair.
result.heads[["head", "hsi", "ci_low", "ci_high", "hsi_p_adjusted", "label", "validated"]].round(3)

# %%
result.pairs.query("head == 'h0'").round(3)

# %%
# The simulation's truth beside what was found:
run.truth_frame()

# %%
# Figures
# -------
# Every figure of the report is a function of the result that takes ``ax=None`` and returns what it drew on.
# The HSI of each head with its interval and the 0.3/0.5/0.7 strength lines:
from hsi_stats.report.figures import focus_plot, hsi_bars, rho_heatmap

ax = hsi_bars(result)

# %%
# Every rho, with ``*`` where its adjusted p-value is below alpha:
ax = rho_heatmap(result)

# %%
# The focus of each head on its label feature's target: 0 for uniform attention, 1 for all of it on the target.
ax = focus_plot(result)
