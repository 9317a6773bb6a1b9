"""
Shards: the same numbers, one file at a time
============================================

A data set written as ``.npz`` shards and analysed with :func:`hsi_stats.scan` gives the numbers of the same data
held in memory, while only one shard is read at a time.
"""

# %%
import tempfile
from pathlib import Path

import numpy as np

import hsi_stats
from hsi_stats.synthetic import generate

ds = generate(n_episodes=30, n_steps=10, rng=0).dataset
folder = Path(tempfile.mkdtemp()) / "shards"
hsi_stats.write_shards(ds, folder, 100)  # 100 scenarios per shard: an episode may span two shards
print(sorted(p.name for p in folder.iterdir()))

# %%
sharded = hsi_stats.scan(folder)
print(type(sharded).__name__, sharded.n_scenarios, "scenarios in", len(sorted(folder.iterdir())), "shards")

in_memory = hsi_stats.analyze(ds, n_resamples=999, rng=1)
streamed = hsi_stats.analyze(sharded, n_resamples=999, rng=1)
difference = np.abs(in_memory.pairs["rho"].to_numpy() - streamed.pairs["rho"].to_numpy()).max()
print(f"largest difference of rho: {difference:.1e}")
print("same labels:", (in_memory.heads["label"] == streamed.heads["label"]).all())
