"""
Runs over training
==================

Five checkpoints of a run whose planted heads specialise between steps 200,000 and 400,000:
:func:`hsi_stats.analyze_evolution` analyses every step, tests one trend per head and finds when each label
emerges.
"""

# %%
import hsi_stats
from hsi_stats.synthetic import generate

run = generate(n_episodes=16, n_steps=8, checkpoints=(100_000, 200_000, 300_000, 400_000, 500_000),
               specialise=(200_000, 400_000), rng=0)
evolution = hsi_stats.analyze_evolution(run.dataset, n_resamples=499, trend_resamples=499, rng=1)
print(evolution.summary())

# %%
# One row per head: the trend, its interval (the inverted test: it excludes 0 exactly when p < alpha), and the
# step from which the label stays validated.
evolution.trends.round(3)

# %%
# HSI with its interval at every step, per head:
from hsi_stats.report.figures import evolution_plot

ax = evolution_plot(evolution.per_step, threshold=0.3)
