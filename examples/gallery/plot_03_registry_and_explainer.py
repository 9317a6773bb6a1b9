"""
Validate labels, export the registry, explain attention
=======================================================

Export the head-function registry of an analysis and read it back at run time with
:class:`hsi_stats.Explainer`, which explains a step of attention with what was validated and nothing else.
"""

# %%
import json
import tempfile
from pathlib import Path

from hsi_stats import Explainer, analyze
from hsi_stats.synthetic import generate

data = generate(n_episodes=30, n_steps=10, rng=0).dataset
result = analyze(data, n_resamples=999, rng=1)
result.heads[["head", "label", "validated", "reasons"]]

# %%
# The registry keeps the original keys (``"0"``, ``"1"``, ... with ``name``, ``hsi``, ``correlation`` ...) and
# adds the evidence. Unvalidated labels are written as General Context Heads.
out = Path(tempfile.mkdtemp())
result.export_registry(out / "head_functions.json")
registry = json.loads((out / "head_functions.json").read_text())
entry = registry["0"]
print({key: entry[key] for key in ("name", "primary_feature", "hsi", "correlation", "validated", "p_adjusted")})
print(sorted(registry["_meta"]))

# %%
# One step: a line per validated head, then the heads that make no claim.
explainer = Explainer.from_registry(out / "head_functions.json")
step = explainer.explain(data.attention[0], {name: v[0] for name, v in data.features.items()}, data.mask[0])
print(step.text())

# %%
# A batch of steps at once; ``claims`` has one row per (scenario, claiming head).
batch = explainer.explain(data.attention, data.features, data.mask)
batch.claims.head()

# %%
# How often each label's target is the entity the head attends most:
batch.claims.groupby("label", observed=True)["consistent"].mean()
