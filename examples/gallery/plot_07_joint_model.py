"""
The joint model: telling collinear features apart
=================================================

A lead-vehicle head (attends vehicles ahead, and near ones) and a nearest-vehicle head: the marginal analysis
calls both "Proximity Head", since the vehicles ahead are also near. The joint model, a conditional logit of the
attention over the entities of each scenario, tells them apart.
"""

# %%
from hsi_stats import analyze
from hsi_stats.synthetic.conditional import LogitHead, logit_run

heads = [LogitHead("lead", {"is_ahead": 2.0, "distance_to_ego": -4.0}),  # true log odds ratios
         LogitHead("nearest", {"distance_to_ego": -4.0})]
result = analyze(logit_run(n_episodes=30, n_steps=20, heads=heads, rng=1).dataset, rng=0)
print(result.heads[["head", "label", "validated", "profile"]].to_string(index=False))

# %%
# Every coefficient (log scale), its interval, its attention odds ratio and its tests:
result.joint.round(2)

# %%
# The odds ratios with their intervals, per head:
from hsi_stats.report.figures import odds_ratio_plot

fig = odds_ratio_plot(result)
