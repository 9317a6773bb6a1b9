"""Recording attention from a live model: per-entity attention from any framework's weights, PyTorch hooks, and
highway-env driving features.

- :func:`entity_attention` (numpy only): raw weights of any layout -> (scenarios, heads, entities).
- :class:`TorchAttentionRecorder` (extra ``hsi_stats[torch]``): hooks every ``nn.MultiheadAttention`` of a module
  (or custom attention modules) and builds an :class:`~hsi_stats.HSIDataset`.
- :func:`ablate` (extra ``hsi_stats[torch]``): removes heads from a PyTorch model in place while a block runs and
  restores them exactly (what :func:`hsi_stats.ablation_effects` measures the policy's actions with).
- :mod:`hsi_stats.capture.highway` (extra ``hsi_stats[highway]``): episodes of a highway-env policy recorded with
  the driving features of the vehicles observed, and closed-loop episodes with heads removed.

Importing this package imports neither torch nor highway-env: each is imported when its piece is used.
"""

from __future__ import annotations

from typing import Any

from .entities import entity_attention

__all__ = ["TorchAttentionRecorder", "ablate", "entity_attention"]


def __getattr__(name: str) -> Any:
    if name == "TorchAttentionRecorder":
        from .torch_recorder import TorchAttentionRecorder

        return TorchAttentionRecorder
    if name == "ablate":
        from .ablation import ablate

        return ablate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
