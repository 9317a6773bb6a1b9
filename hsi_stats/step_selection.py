"""Which training step an analysis is of: one policy at a time, never several pooled without being asked.

A data set may hold scenarios of several training steps (checkpoints). Scenarios of different networks answer
different questions, so :func:`hsi_stats.analyze` analyses one step: the last one (the policy as trained) unless
``step=`` names another; ``pool_steps=True`` pools every step, on request only, and the result says so. The
evolution over training (:func:`hsi_stats.analyze_evolution`) is where the steps are compared. This module only
selects scenarios: it computes no statistic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from ._validation import HSIDataError, OptionTypeError, is_int
from .chunks import ChunkSource
from .data import HSIDataset, step_label

__all__ = ["StepSelection", "select_step"]


@dataclass(frozen=True)
class StepSelection:
    """What was analysed: ``step`` (None when pooled or when the data have no steps), the ``available`` steps and
    whether they were ``pooled``; ``chosen`` says whether the step was asked for (else it is the last one);
    ``names`` are the data set's :attr:`~hsi_stats.data.HSIDataset.step_names`."""

    step: int | None
    available: tuple[int, ...]
    pooled: bool
    chosen: bool
    names: Mapping[int, str] = field(default_factory=lambda: MappingProxyType({}))

    def label(self, step: int) -> str:
        """How ``step`` is shown: its name (e.g. ``"final"``), else its number."""
        return step_label(step, self.names)

    def describe(self) -> str | None:
        """One sentence for summaries and reports; None when the data hold at most one step."""
        count = len(self.available)
        if count <= 1:
            return None
        if self.pooled:
            return (f"the scenarios of all {count} training steps ({self.span()}) "
                    "were pooled, as asked (pool_steps); a correlation pooled over different networks describes "
                    "none of them")
        which = "asked for" if self.chosen else "the last one, the policy as trained"
        shown = "?" if self.step is None else self.label(self.step)
        return (f"the analysis is of training step {shown} ({which}) among {count} steps "
                f"({self.span()}); the others are in the evolution over training")

    def span(self) -> str:
        """The first and the last of the available steps, as shown: ``"100000 to final"``."""
        return f"{self.label(self.available[0])} to {self.label(self.available[-1])}"

    def as_dict(self) -> dict[str, Any]:
        """Plain values (JSON): the names keyed by the step as text."""
        return {"step": self.step, "available": list(self.available), "pooled": self.pooled, "chosen": self.chosen,
                "step_names": {str(step): name for step, name in self.names.items()}}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> StepSelection:
        """The selection :meth:`as_dict` wrote."""
        return cls(values["step"], tuple(values["available"]), values["pooled"], values["chosen"],
                   MappingProxyType({int(step): name for step, name in values.get("step_names", {}).items()}))


def select_step(dataset: HSIDataset | ChunkSource, *, step: object = None,
                pool_steps: object = False) -> tuple[HSIDataset | ChunkSource, StepSelection]:
    """The scenarios of one training step (the last by default), or all of them when ``pool_steps``.

    Examples
    --------
    >>> import numpy as np
    >>> ds = HSIDataset(np.ones((4, 1, 2)), {"x": np.arange(8.0).reshape(4, 2)}, steps=[10, 10, 20, 20])
    >>> chosen, selection = select_step(ds)
    >>> chosen.n_scenarios, selection.step, selection.describe().split(" (")[0]
    (2, 20, 'the analysis is of training step 20')
    """
    if not isinstance(pool_steps, (bool, np.bool_)):
        raise OptionTypeError(f"The value for `pool_steps` must be True or False, but {pool_steps!r} was passed.")
    if step is not None and not is_int(step):
        raise OptionTypeError(f"The value for `step` must be None or an integer training step, but {step!r} was "
                              "passed.")
    if dataset.steps is None:
        if step is not None:
            raise HSIDataError(f"`step={step}` needs a dataset with `steps`, but this one has none.")
        return dataset, StepSelection(None, (), False, False)
    names = MappingProxyType(dict(dataset.step_names))
    available = tuple(int(s) for s in np.unique(dataset.steps))
    if pool_steps:
        if step is not None:
            raise OptionTypeError(f"`step` and `pool_steps` exclude each other, but step={step!r} and "
                                  "pool_steps=True were passed.")
        return dataset, StepSelection(None, available, len(available) > 1, False, names)
    if step is not None and int(step) not in available:  # type: ignore[call-overload]
        raise HSIDataError(f"`step` must be one of the dataset's training steps {list(available)}, but {step!r} "
                           "was passed.")
    chosen = available[-1] if step is None else int(step)  # type: ignore[call-overload]
    subset = dataset if len(available) == 1 else dataset.select(scenarios=dataset.steps == chosen)
    return subset, StepSelection(chosen, available, False, step is not None, names)
