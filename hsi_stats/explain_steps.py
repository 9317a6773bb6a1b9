"""Which training step an explanation is of: a registry describes the network of one step, read from its ``_meta``.

:func:`registry_step` reads the step a registry describes; :func:`choose_step` decides which scenarios of a batch
:meth:`hsi_stats.Explainer.explain` explains: those of the registry's own step by default (data without it are
refused, naming the steps they hold), another step only when asked for (then every claim carries a note), and
every scenario given when the registry names no single step (with a warning when they are of several).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._validation import HSIDataError, OptionError, OptionTypeError, RegistryStepWarning, is_int

__all__ = ["StepChoice", "choose_step", "registry_step", "registry_steps"]


def registry_step(registry: Mapping[str, Any]) -> int | None:
    """The training step whose network a registry describes, read from its ``_meta``; None when it does not say
    (a registry of data without steps, or of the original format) or when its analysis pooled several steps.

    The step is ``_meta.data_summary.step_selection.step`` (the step analysed), failing that the one step of
    ``_meta.data_summary.steps``.

    Examples
    --------
    >>> registry_step({"_meta": {"data_summary": {"steps": [1000000], "step_selection": {"step": 1000000,
    ...                                                                                  "pooled": False}}}})
    1000000
    >>> registry_step({"_meta": {"data_summary": {"steps": [100, 200], "step_selection": {"step": None,
    ...                                                                                  "pooled": True}}}})
    >>> registry_step({"0": {"name": "Safety Head"}}) is None  # the original format: no _meta
    True
    """
    meta = registry.get("_meta")
    summary = meta.get("data_summary") if isinstance(meta, Mapping) else None
    if not isinstance(summary, Mapping):
        return None
    selection = summary.get("step_selection")
    if isinstance(selection, Mapping):
        if selection.get("pooled"):
            return None
        if is_int(selection.get("step")):
            return int(selection["step"])
    steps = summary.get("steps")
    if isinstance(steps, Sequence) and len(steps) == 1 and is_int(steps[0]):
        return int(steps[0])
    return None


def registry_steps(registry: Mapping[str, Any]) -> tuple[int, ...]:
    """Every step a registry's analysis read (several when it pooled them), from ``_meta.data_summary.steps``."""
    meta = registry.get("_meta")
    summary = meta.get("data_summary") if isinstance(meta, Mapping) else None
    steps = summary.get("steps") if isinstance(summary, Mapping) else None
    if not isinstance(steps, Sequence) or isinstance(steps, str) or not all(is_int(s) for s in steps):
        return ()
    return tuple(int(s) for s in steps)


@dataclass(frozen=True)
class StepChoice:
    """Which scenarios of a batch are explained, by their training step, and what the explanation says of it."""

    keep: NDArray[np.bool_] | None  # None: every scenario given
    steps: NDArray[np.int64] | None  # the training step of each scenario kept (None: not given)
    heading: str | None  # one sentence for the text: which step is explained, and why
    note: str | None  # for every claim: the registry describes another step


def _span(steps: Sequence[int]) -> str:
    """``"100000"``, ``"100000 and 200000"`` or ``"100000 to 1000000"``.

    >>> _span([5]), _span([5, 9]), _span([1, 2, 3])
    ('5', '5 and 9', '1 to 3')
    """
    if len(steps) <= 2:
        return " and ".join(str(s) for s in steps)
    return f"{steps[0]} to {steps[-1]}"


def _steps_words(steps: Sequence[int]) -> str:
    """``"training step 5"``, ``"the 2 training steps 5 and 9"``, ``"the 10 training steps 1 to 10"``."""
    return f"training step {steps[0]}" if len(steps) == 1 else f"the {len(steps)} training steps {_span(steps)}"


def choose_step(described: int | None, pooled: Sequence[int], steps: ArrayLike | None, step: object = None,
                n_scenarios: int | None = None) -> StepChoice:
    """Which scenarios :meth:`Explainer.explain <hsi_stats.Explainer.explain>` explains, given their training
    ``steps`` and the ``step`` asked for, with a registry of step ``described`` (None: it names none; ``pooled``:
    the steps its analysis pooled, if any).

    The registry's own step (``described``) by default, refused with the steps available when ``steps`` lack it;
    ``step`` when asked for (then a note for every claim when the registry describes another step); everything
    given when the registry names no single step (a :class:`~hsi_stats._validation.RegistryStepWarning` when
    ``steps`` hold several) or when ``steps`` is None.
    """
    if step is not None and not is_int(step):
        raise OptionTypeError(f"The value for `step` must be None or an integer training step, but {step!r} was "
                              "passed.")
    if steps is None:
        if step is not None:
            raise OptionError(f"`step={step}` picks the scenarios of a training step, but no `steps` were passed "
                              "(the training step of each scenario).")
        return StepChoice(None, None, None, None)
    given = np.asarray(steps)
    if given.size and (given.dtype.kind not in "iu" or given.ndim > 1):
        raise OptionError(f"`steps` must be integer training steps, one per scenario (or one for all), but an "
                          f"array of dtype {given.dtype} and shape {given.shape} was passed.")
    if n_scenarios is not None:
        if given.ndim == 0:
            given = np.full(n_scenarios, given)
        if given.shape != (n_scenarios,):
            raise OptionError(f"`steps` must give the training step of each of the {n_scenarios} scenarios (or "
                              f"one for all), but {given.size} steps were passed.")
    given = given.astype(np.int64).reshape(-1)
    available = [int(s) for s in np.unique(given)]
    if step is not None:
        step = int(step)  # type: ignore[call-overload]  # an integer: checked above
        if step not in available:
            raise HSIDataError(f"`step` must be one of the training steps of the data {available}, but {step} "
                               f"was passed.")
        keep = given == step
        count = "" if keep.all() else f" ({int(keep.sum())} of {given.size} scenarios)"
        if described is None:
            heading = (f"Explained: training step {step}, as asked{count}; the registry does not say which step "
                       f"it describes.")
            return StepChoice(keep, given[keep], heading, None)
        if step == described:
            heading = f"Explained: training step {step}, as asked, the step the registry describes{count}."
            return StepChoice(keep, given[keep], heading, None)
        note = (f"the registry describes training step {described}, not step {step}: its labels and rates are "
                f"those of another network")
        heading = (f"Explained: training step {step}, as asked{count}; the registry describes training step "
                   f"{described}, another network: every claim notes it.")
        return StepChoice(keep, given[keep], heading, note)
    if described is None:
        says = (f"pools {_steps_words(pooled)}" if len(pooled) > 1 else
                "does not say which training step it describes")
        if len(available) > 1:
            warnings.warn(f"the registry {says}, and the data hold {_steps_words(available)}: every step is "
                          f"explained with the same labels; pass step= (--step N) to explain one.",
                          RegistryStepWarning, stacklevel=3)
        heading = f"Explained: every scenario given, of {_steps_words(available)}; the registry {says}."
        return StepChoice(None, given, heading, None)
    if described not in available:
        raise HSIDataError(f"the registry describes training step {described} (its _meta.data_summary), but the "
                           f"data hold the training steps {available}, not that one: pass step= (--step N) with "
                           f"one of them to explain it with the registry of another step, each claim saying so.")
    keep = given == described
    others = [s for s in available if s != described]
    heading = f"Explained: training step {described}, the step the registry describes"
    heading += (f", {int(keep.sum())} of the {given.size} scenarios given; those of the other "
                f"{_steps_words(others).removeprefix('the ')} only when asked for (step=, --step N)."
                if others else ".")
    return StepChoice(keep, given[keep], heading, None)
