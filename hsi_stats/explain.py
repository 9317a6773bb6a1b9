"""Explaining a policy's attention step by step, only with what was validated: the registry at work.

:class:`Explainer` reads ``head_functions.json`` (:meth:`hsi_stats.HSIResult.export_registry`) and, for one step of
attention (H, V) or a batch (B, H, V), says for each head whose label was validated which entity it attends most
and with what share of its attention, how concentrated that is against the head's own distribution in the analysis
data (a percentile of its ``concentration_percentiles``), and, given the step's features, whether that entity is
the one the label predicts (the lowest TTC for a Safety Head, a flagged entity for an indicator) with the head's
agreement rate in the analysis data beside it; with the joint model, also whether it is the entity the head's joint
model predicts (the highest fitted attention from the effects of its profile), with that prediction's own
agreement rate. Heads without a validated label (General Context Heads among them)
make no claim. A registry without the evidence (the notebook's original format) is refused unless
``allow_unvalidated=True``, and then every claim says it is unvalidated.

A registry describes the network of one training step (its ``_meta.data_summary``, :func:`registry_step`). Given
the training step of each scenario (``steps=``), :meth:`Explainer.explain` explains the scenarios of that step
only, and refuses data that lack it; another step is explained when asked for (``step=``), and then every claim
notes that the registry describes another network. A registry that names no single step explains every step it is
given, with a :class:`~hsi_stats._validation.RegistryStepWarning` when there are several.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from ._validation import HSIDataError, OptionError
from .agreement import PERCENTILES, target_words, top_entities
from .catalog import GENERAL_CONTEXT
from .explain_steps import choose_step, registry_step, registry_steps
from .focus import is_indicator, target_entities
from .joint.design import fitted_targets

FloatArray = NDArray[np.float64]

__all__ = ["CLAIM_COLUMNS", "Explainer", "Explanation", "claim_text", "example_explanations", "load_registry",
           "registry_step"]

#: The columns of :attr:`Explanation.claims` (``scenario`` first for a batch).
CLAIM_COLUMNS = ("head", "head_name", "label", "validated", "entity", "entity_name", "share", "focus_percentile",
                 "feature", "target", "value", "consistent", "agreement", "agreement_ci_low", "agreement_ci_high",
                 "chance", "profile", "joint_entity", "joint_entity_name", "joint_tied", "joint_consistent",
                 "joint_agreement",
                 "joint_agreement_ci_low", "joint_agreement_ci_high", "joint_chance", "step", "note")


@dataclass(frozen=True)
class _Claimant:
    """A head that makes claims: its label, the target its label predicts and the evidence from the analysis."""

    index: int
    name: str
    label: str
    validated: bool
    feature: str | None
    direction: int
    indicator: bool | None  # None: told by the step's values (a registry without the evidence)
    agreement: tuple[float, float, float, float] | None  # rate, ci low, ci high, chance
    percentiles: NDArray[np.float64] | None
    joint: tuple[tuple[str, float, bool], ...] | None = None  # the joint model: (feature, coefficient, indicator)
    joint_agreement: tuple[float, float, float, float] | None = None
    profile: str | None = None


def load_registry(registry: str | os.PathLike[str] | Mapping[str, Any]) -> Mapping[str, Any]:
    """A registry from its ``head_functions.json`` path, or the mapping itself; a clear error if it cannot be read."""
    if isinstance(registry, Mapping):
        return registry
    path = Path(registry)
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise HSIDataError(f"`registry` must be a head_functions.json file, but {str(path)!r} cannot be read as "
                           f"JSON ({exc}).") from None
    if not isinstance(loaded, Mapping):
        raise HSIDataError(f"{path}: a registry is a JSON object of heads, but it holds a {type(loaded).__name__}.")
    return loaded


def _rates(agreement: object) -> tuple[float, float, float, float] | None:
    """(rate, ci low, ci high, chance) of a registry ``agreement`` block, None without one."""
    if not isinstance(agreement, Mapping):
        return None
    ci = agreement.get("ci") or [None, None]
    numbers = [agreement.get("rate"), ci[0], ci[1], agreement.get("chance")]
    return tuple(np.nan if v is None else float(v) for v in numbers)  # type: ignore[return-value]


def _joint(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The joint model of a registry entry: the coefficients of its profile (the effects it predicts from), its
    agreement and profile (empty without one, or without an effect)."""
    block = entry.get("joint")
    if not isinstance(block, Mapping) or not block.get("coefficients"):
        return {}
    rows = [row for row in block["coefficients"] if row.get("in_profile")]
    if not rows or any(row.get("coef") is None for row in rows):
        return {}
    return {"joint": tuple((str(row["feature"]), float(row["coef"]), row.get("scale") == "indicator") for row in rows),
            "joint_agreement": _rates(block.get("agreement")), "profile": block.get("profile")}


def _claimant(index: int, entry: Mapping[str, Any], allow_unvalidated: bool) -> _Claimant | None:
    label = str(entry.get("name", GENERAL_CONTEXT))
    validated = bool(entry.get("validated", False))
    if label == GENERAL_CONTEXT or not (validated or allow_unvalidated):
        return None
    agreement = entry.get("agreement")
    if isinstance(agreement, Mapping):
        return _Claimant(index, str(entry.get("head", f"h{index}")), label, validated, str(agreement["feature"]),
                         int(agreement["direction"]), bool(agreement["indicator"]), _rates(agreement),
                         np.asarray(entry["concentration_percentiles"], dtype=float)
                         if entry.get("concentration_percentiles") else None, **_joint(entry))
    feature = entry.get("primary_feature")
    direction = -1 if entry.get("correlation_sign") == "negative" else 1
    return _Claimant(index, str(entry.get("head", f"h{index}")), label, validated,
                     None if feature is None else str(feature), direction, None, None, None)


class Explainer:
    """Run-time explanations of attention from a head-function registry.

    Build it with :meth:`from_registry`; :meth:`explain` one step (H, V) or a batch (B, H, V).

    Examples
    --------
    >>> from hsi_stats import analyze
    >>> from hsi_stats.synthetic import generate
    >>> data = generate(n_episodes=30, n_steps=10, rng=0).dataset
    >>> explainer = Explainer.from_registry(analyze(data, n_resamples=499, rng=1).registry())
    >>> explainer.heads  # the validated heads; h4..h7 make no claim
    ('h0', 'h1', 'h2', 'h3')
    >>> step = explainer.explain(data.attention[0], {k: v[0] for k, v in data.features.items()}, data.mask[0])
    >>> columns = ["head_name", "label", "entity", "share", "consistent", "joint_consistent"]
    >>> print(step.claims[columns].round(2).to_string(index=False))
    head_name             label  entity  share  consistent  joint_consistent
           h0       Safety Head       0   0.63        True              True
           h1    Proximity Head       3   0.39       False             False
           h2    Left Lane Head       0   0.36        <NA>              <NA>
           h3 Traffic Flow Head       6   0.37        True              True
    >>> print(step.text().splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    h0 (Safety Head): attends entity 0 with 63% of its attention, more concentrated than 18% of the analysis
    scenarios; its ttc is 1.52: as its label predicts (the entity with the lowest ttc). In the analysis data its top
    entity was the entity with the lowest ttc in 87% [60%, 97%] of scenarios (chance 19%). Its joint model (ttc
    ×0.0028 (highest vs lowest)) predicts this entity; in the analysis data its top entity was the predicted one in
    87% [60%, 97%] of scenarios (chance 19%).
    """

    def __init__(self, claimants: Sequence[_Claimant], n_heads: int, silent: Sequence[str], *,
                 step: int | None = None, pooled_steps: Sequence[int] = ()) -> None:
        self._claimants = tuple(claimants)
        self.n_heads = n_heads
        self.silent = tuple(silent)  # heads that make no claim, by name
        #: The training step whose network the registry describes (:func:`registry_step`); None when it does not say.
        self.step = step
        self._registry_steps = tuple(pooled_steps)
        # fixed per claim, computed once: which heads, which claims are judged on a feature, in which direction
        self._heads = np.array([c.index for c in self._claimants], dtype=np.intp)
        self._features = tuple(dict.fromkeys(c.feature for c in self._claimants if c.feature is not None))
        self._joint_features = tuple(dict.fromkeys(f for c in self._claimants for f, _, _ in (c.joint or ())))
        self._judged = [i for i, c in enumerate(self._claimants) if c.feature is not None]
        self._direction = np.array([self._claimants[i].direction for i in self._judged], dtype=float)[None, :, None]
        self._words: list[str | None] = [None if c.feature is None or c.indicator is None else
                                         target_words(c.feature, c.direction, c.indicator) for c in self._claimants]

    @classmethod
    def from_registry(cls, registry: str | os.PathLike[str] | Mapping[str, Any], *,
                      allow_unvalidated: bool = False) -> Explainer:
        """An explainer of the heads of ``registry`` (a ``head_functions.json`` path or its mapping).

        A registry without validation evidence (the original format: no ``validated`` key) is refused unless
        ``allow_unvalidated``; then every labelled head claims, and every claim says it is unvalidated. The training
        step the registry describes is read from its ``_meta`` (:attr:`step`, :func:`registry_step`).
        """
        loaded = load_registry(registry)
        entries = {int(key): value for key, value in loaded.items() if str(key).isdigit()}
        if not entries or any(not isinstance(entry, Mapping) for entry in entries.values()):
            raise HSIDataError("`registry` must hold head entries under the keys '0', '1', ... (as export_registry "
                               f"writes them), but it has the keys {sorted(map(str, loaded))[:10]}.")
        original = [str(h) for h, entry in sorted(entries.items()) if "validated" not in entry]
        if original and not allow_unvalidated:
            raise HSIDataError(f"the registry has no validation evidence for heads {original} (the original format: "
                               f"no `validated` key): its labels were never tested. Export it again with "
                               f"hsi_stats (HSIResult.export_registry), or pass allow_unvalidated=True to explain "
                               f"with labels marked unvalidated.")
        claimants, silent = [], []
        for h, entry in sorted(entries.items()):
            found = _claimant(h, entry, allow_unvalidated)
            if found is None:
                silent.append(str(entry.get("head", f"h{h}")))
            else:
                claimants.append(found)
        return cls(claimants, max(entries) + 1, silent, step=registry_step(loaded),
                   pooled_steps=registry_steps(loaded))

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads that make claims."""
        return tuple(claimant.name for claimant in self._claimants)

    @property
    def features(self) -> tuple[str, ...]:
        """The features the claims are checked against."""
        return self._features

    @property
    def joint_features(self) -> tuple[str, ...]:
        """The features the heads' joint models predict from (a claim's joint prediction needs all of its head's)."""
        return self._joint_features

    def check_data(self, head_names: Sequence[str], feature_names: Sequence[str]) -> None:
        """Refuse data whose heads (by index) or features do not include those of the claims, naming them."""
        lacking = [c.name for c in self._claimants if c.index >= len(head_names) or head_names[c.index] != c.name]
        if lacking:
            raise HSIDataError(f"the registry names heads {lacking} that the data lacks at their index (the data's "
                               f"heads: {list(head_names)[:12]}{' ...' if len(head_names) > 12 else ''}).")
        missing = [name for name in dict.fromkeys([*self.features, *self.joint_features]) if name not in feature_names]
        if missing:
            raise HSIDataError(f"the registry's labels and joint models use features {missing} that the data lacks "
                               f"(its features: {list(feature_names)}).")

    def explain(self, attention: ArrayLike, features: Mapping[str, ArrayLike] | None = None,
                mask: ArrayLike | None = None, entity_names: Sequence[str] | None = None, *,
                scenarios: ArrayLike | None = None, steps: ArrayLike | None = None,
                step: int | None = None) -> Explanation:
        """The claims of one step, attention (H, V), or of a batch (B, H, V).

        Parameters
        ----------
        attention : array_like, shape (H, V) or (B, H, V)
            The attention of one scenario (one step of a policy at run time) or of a batch of them.
        features : mapping of str to array_like, optional
            Name -> (V,) or (B, V). They let each claim say whether the attended entity is its label's target,
            and, when they hold every feature of the head's joint model (:attr:`joint_features`), whether it is
            among the entities the joint model predicts (``joint_entity``, ``joint_tied``, ``joint_consistent``).
        mask : array_like of bool, shape (V,) or (B, V), optional
            The entities present (all by default).
        entity_names : sequence of str, optional
            The names of the V entities in the text (``entity {v}`` by default).
        scenarios : array_like, shape (B,), optional
            Labels of the scenarios of a batch (their position by default; kept when ``steps`` selects some).
        steps : int or array_like of int, shape (B,), optional
            The training step (checkpoint) whose network produced each scenario's attention, one number for all.
            With them, only the scenarios of the registry's own step (:attr:`step`) are explained, and data
            without that step are refused with the steps they hold; without them, what is given is explained as
            it is.
        step : int, optional
            Explain the scenarios of this training step (one of ``steps``) instead. When the registry describes
            another step, every claim carries a ``note`` saying so: its labels and agreement rates are those of
            another network.

        Returns
        -------
        Explanation
            Its claims (a table built when first read), :meth:`~Explanation.text` and, when ``steps`` were
            given, :attr:`~Explanation.heading`: which step was explained and why.

        Raises
        ------
        HSIDataError
            On attention, features or a mask of the wrong shape, data without the registry's step, or a ``step``
            the data lack (the message names the steps they hold).
        OptionError
            On ``step`` without ``steps``, or labels or steps that do not match the batch.

        Warns
        -----
        RegistryStepWarning
            When the registry names no single training step and ``steps`` hold several, none asked for: every step
            is explained with the same registry.

        Notes
        -----
        Every head is handled at once (numpy over scenarios and heads); the claims table is built when first
        read.
        """
        values = np.asarray(attention, dtype=np.float64)
        batch = values.ndim == 3
        if values.ndim not in (2, 3):
            raise HSIDataError(f"`attention` must have shape (H, V) for one step or (B, H, V) for a batch, but it "
                               f"has shape {values.shape}.")
        values = values if batch else values[None]
        n_steps, n_heads, n_entities = values.shape
        if n_heads < self.n_heads:
            raise HSIDataError(f"the registry describes {self.n_heads} heads (heads {list(self.heads)} make claims), "
                               f"but `attention` has {n_heads}.")
        valid = self._per_step(mask, "mask", n_steps, n_entities, bool)
        names = self._entity_names(entity_names, n_entities)
        labels = np.arange(n_steps) if scenarios is None else np.asarray(scenarios).reshape(-1)
        if labels.shape != (n_steps,):
            raise OptionError(f"`scenarios` must label the {n_steps} steps, but {labels.size} labels were passed.")
        choice = choose_step(self.step, self._registry_steps, steps, step, n_steps)
        if choice.keep is not None and not choice.keep.all():
            keep = choice.keep
            if features is not None:
                features = {name: self._per_step(features[name], f"features[{name!r}]", n_steps, n_entities,
                                                 float)[keep]
                            for name in dict.fromkeys([*self.features, *self.joint_features]) if name in features}
            values, valid, labels = values[keep], valid[keep], labels[keep]
            n_steps = values.shape[0]
        top, share, _ = top_entities(values[:, self._heads, :], valid)  # (B, C) each
        percentile = np.full(share.shape, np.nan)
        for c, claimant in enumerate(self._claimants):
            if claimant.percentiles is not None and claimant.percentiles.size:
                percentile[:, c] = np.interp(share[:, c], claimant.percentiles, PERCENTILES)
        value, consistent, targets = self._checked(features, valid, top, n_steps, n_entities)
        joint = self._joint_checked(features, valid, top, n_steps, n_entities)
        return Explanation(self._claimants, self.silent, batch, labels, names, top, share, percentile, value,
                           consistent, targets, joint, steps=choice.steps, heading=choice.heading, note=choice.note)

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _per_step(value: ArrayLike | None, field: str, n_steps: int, n_entities: int, dtype: type) -> NDArray[Any]:
        if value is None:
            return np.ones((n_steps, n_entities), dtype=bool)
        array: NDArray[Any] = np.asarray(value, dtype=dtype)
        if array.shape == (n_entities,):
            array = array.reshape(1, n_entities) if n_steps == 1 else np.broadcast_to(array, (n_steps, n_entities))
        if array.shape != (n_steps, n_entities):
            raise HSIDataError(f"`{field}` must have shape (V,) = ({n_entities},) or (B, V) = ({n_steps}, "
                               f"{n_entities}), but it has shape {array.shape}.")
        return array

    @staticmethod
    def _entity_names(entity_names: Sequence[str] | None, n_entities: int) -> NDArray[np.str_]:
        if entity_names is None:
            return np.array([f"entity {v}" for v in range(n_entities)])
        names = np.asarray(entity_names, dtype=str)
        if names.shape != (n_entities,):
            raise OptionError(f"`entity_names` must name the {n_entities} entities, but {names.size} names were "
                              f"passed.")
        return names

    def _joint_checked(self, features: Mapping[str, ArrayLike] | None, valid: NDArray[np.bool_],
                       top: NDArray[np.intp], n_steps: int, n_entities: int) -> dict[str, NDArray[Any]]:
        """Per (step, claim): ``entity``, the first entity the head's joint model predicts (-1 without one);
        ``tied``, how many it predicts alike; ``consistent``, whether the attended entity is among them (1 or 0; NaN
        where every entity is predicted, or without the joint model or its features)."""
        entity = np.full(top.shape, -1, dtype=np.intp)
        tied = np.zeros(top.shape, dtype=np.intp)
        consistent = np.full(top.shape, np.nan)
        found = {"entity": entity, "tied": tied, "consistent": consistent}
        if features is None:
            return found
        for c, claimant in enumerate(self._claimants):
            if claimant.joint is None or any(name not in features for name, _, _ in claimant.joint):
                continue  # a joint prediction needs every feature of the head's joint model
            given = {name: self._per_step(features[name], f"features[{name!r}]", n_steps, n_entities, float)
                     for name, _, _ in claimant.joint}
            predicted, usable = fitted_targets(given, valid, claimant.joint)
            k, n = predicted.sum(axis=1), usable.sum(axis=1)
            entity[:, c] = np.where(k > 0, predicted.argmax(axis=1), -1)
            tied[:, c] = k
            hit = predicted[np.arange(n_steps), top[:, c]]
            consistent[:, c] = np.where((k == 0) | (k == n), np.nan, hit)
        return found

    def _checked(self, features: Mapping[str, ArrayLike] | None, valid: NDArray[np.bool_], top: NDArray[np.intp],
                 n_steps: int, n_entities: int) -> tuple[FloatArray, FloatArray, list[str | None]]:
        """Per (step, claim): the attended entity's value of the label's feature and whether it is a target (1 or
        0; NaN where the step has no target or every entity is one, or without features); per claim, the target
        in words."""
        shape = top.shape
        value, consistent = np.full(shape, np.nan), np.full(shape, np.nan)
        words = list(self._words)
        judged = self._judged
        if features is None or not judged:
            return value, consistent, words
        missing = [name for name in self.features if name not in features]
        if missing:
            raise HSIDataError(f"`features` must hold the features the validated labels are judged on, but "
                               f"{missing} are missing (given: {sorted(features)}).")
        given = {name: self._per_step(features[name], f"features[{name!r}]", n_steps, n_entities, float)
                 for name in self.features}
        chosen = np.stack([given[str(self._claimants[c].feature)] for c in judged], axis=1)  # (B, C', V)
        usable = valid[:, None, :] & ~np.isnan(chosen)
        indicator = np.array([self._claimants[c].indicator if self._claimants[c].indicator is not None else
                              is_indicator(chosen[:, i], usable[:, i]) for i, c in enumerate(judged)], dtype=bool)
        direction = self._direction
        for i, c in enumerate(judged):
            if words[c] is None:  # a registry without the evidence: the step's values tell an indicator
                words[c] = target_words(str(self._claimants[c].feature), int(direction[0, i, 0]), bool(indicator[i]))
        targets = target_entities(chosen, usable, indicator[None, :, None], direction)  # every claim at once
        k, n = targets.sum(axis=2), usable.sum(axis=2)
        steps, claims = np.arange(n_steps)[:, None], np.arange(len(judged))[None, :]
        at = top[:, judged]
        consistent[:, judged] = np.where((k == 0) | (k == n), np.nan, targets[steps, claims, at])
        value[:, judged] = chosen[steps, claims, at]
        return value, consistent, words


class Explanation:
    """The claims of an :meth:`Explainer.explain` call: :attr:`claims` (a DataFrame) and :meth:`text`.

    Computed arrays are kept per (step, claiming head); the table is built when first read.
    """

    def __init__(self, claimants: Sequence[_Claimant], silent: Sequence[str], batch: bool,
                 scenarios: NDArray[Any], entity_names: NDArray[np.str_], top: NDArray[np.intp], share: FloatArray,
                 percentile: FloatArray, value: FloatArray, consistent: FloatArray,
                 targets: Sequence[str | None], joint: Mapping[str, NDArray[Any]], *,
                 steps: NDArray[np.int64] | None = None, heading: str | None = None, note: str | None = None) -> None:
        self._claimants = tuple(claimants)
        self.silent = tuple(silent)
        #: Which training step was explained and why (None when no ``steps`` were given).
        self.heading = heading
        #: The note every claim carries (the registry describes another step), or None.
        self.note = note
        self._steps = steps
        self._batch = batch
        self._scenarios, self._entity_names = scenarios, entity_names
        self._top, self._share, self._percentile = top, share, percentile
        self._value, self._consistent, self._targets = value, consistent, list(targets)
        self._joint = dict(joint)

    @property
    def arrays(self) -> dict[str, NDArray[Any]]:
        """The claims as numpy arrays (B, C), C the claiming heads in :attr:`Explainer.heads` order, for run-time
        loops that cannot pay for a DataFrame: ``entity``, ``share``, ``focus_percentile``, ``value`` and
        ``consistent`` (1, 0, or NaN where the step has no single target); with the joint model, ``joint_entity``
        (the first entity it predicts, -1 without one), ``joint_tied`` (how many it predicts alike) and
        ``joint_consistent``."""
        return {"entity": self._top, "share": self._share, "focus_percentile": self._percentile,
                "value": self._value, "consistent": self._consistent,
                **{f"joint_{key}": value for key, value in self._joint.items()}}

    @cached_property
    def claims(self) -> pd.DataFrame:
        """One row per (scenario, claiming head): the columns of :data:`CLAIM_COLUMNS`, ``scenario`` first in a
        batch; rows by scenario, then head."""
        n_steps, n_claims = self._top.shape
        per_claim = np.tile(np.arange(n_claims), n_steps)

        def of_claims(items: Sequence[Any]) -> Any:  # one value per claim, repeated for every step
            unique, codes = np.unique(np.array(items, dtype=object).astype(str), return_inverse=True)
            column = pd.Categorical.from_codes(codes[per_claim], categories=list(unique))  # type: ignore[call-overload]
            return column if None not in items else pd.Series(np.array(items, dtype=object)[per_claim])

        agreement = np.array([c.agreement or (np.nan,) * 4 for c in self._claimants], dtype=float).reshape(-1, 4)
        joint = np.array([c.joint_agreement or (np.nan,) * 4 for c in self._claimants], dtype=float).reshape(-1, 4)
        consistent = self._consistent.reshape(-1)
        joint_consistent = self._joint["consistent"].reshape(-1)
        joint_entity = self._joint["entity"].reshape(-1)
        frame = pd.DataFrame({
            "scenario": np.repeat(self._scenarios, n_claims),
            "head": np.array([c.index for c in self._claimants], dtype=np.intp)[per_claim],
            "head_name": of_claims([c.name for c in self._claimants]),
            "label": of_claims([c.label for c in self._claimants]),
            "validated": np.array([c.validated for c in self._claimants], dtype=bool)[per_claim],
            "entity": self._top.reshape(-1),
            "entity_name": pd.Categorical.from_codes(self._top.reshape(-1), categories=pd.Index(
                self._entity_names).unique()) if len(set(self._entity_names)) == len(self._entity_names) else
            self._entity_names[self._top.reshape(-1)],
            "share": self._share.reshape(-1), "focus_percentile": self._percentile.reshape(-1),
            "feature": of_claims([c.feature for c in self._claimants]), "target": of_claims(self._targets),
            "value": self._value.reshape(-1),
            "consistent": pd.array(list(np.where(np.isnan(consistent), None, consistent == 1)),  # type: ignore[call-overload]
                                   dtype="boolean"),
            "agreement": agreement[per_claim, 0], "agreement_ci_low": agreement[per_claim, 1],
            "agreement_ci_high": agreement[per_claim, 2], "chance": agreement[per_claim, 3],
            "profile": of_claims([c.profile for c in self._claimants]),
            "joint_entity": joint_entity,
            "joint_entity_name": np.where(joint_entity >= 0, self._entity_names[np.maximum(joint_entity, 0)], None),
            "joint_tied": self._joint["tied"].reshape(-1),
            "joint_consistent": pd.array(list(np.where(np.isnan(joint_consistent), None,  # type: ignore[call-overload]
                                                       joint_consistent == 1)), dtype="boolean"),
            "joint_agreement": joint[per_claim, 0], "joint_agreement_ci_low": joint[per_claim, 1],
            "joint_agreement_ci_high": joint[per_claim, 2], "joint_chance": joint[per_claim, 3],
            "step": pd.array(np.repeat(self._steps, n_claims) if self._steps is not None else
                             [None] * (n_steps * n_claims), dtype="Int64"),
            "note": pd.Series([self.note] * (n_steps * n_claims), dtype=object),
        })
        return frame if self._batch else frame.drop(columns="scenario")

    def text(self) -> str:
        """The claims in words, scenario by scenario, after the :attr:`heading` (which training step, when known);
        then the heads that make no claim."""
        lines: list[str] = [] if self.heading is None else [self.heading]
        frame = self.claims if self._batch else self.claims.assign(scenario=0)
        for scenario, rows in frame.groupby("scenario", sort=False):
            if self._batch:
                lines.append(f"scenario {scenario}:")
            lines.extend(("  " if self._batch else "") + claim_text({str(k): v for k, v in row.items()})
                         for row in rows.to_dict(orient="records"))
        if self.silent:
            lines.append(f"no claim (no validated label): {', '.join(self.silent)}")
        return "\n".join(lines)


def _percent(value: float) -> str:
    """A share in percent: whole numbers, one decimal where rounding would show 0% or 100% for a value that is not.

    >>> _percent(0.874), _percent(0.9991), _percent(1.0), _percent(float("nan"))
    ('87%', '99.9%', '100%', 'n/a')
    """
    if value is None or np.isnan(value):
        return "n/a"
    shown = f"{100 * value:.0f}"
    if shown in ("0", "100") and value not in (0.0, 1.0):
        shown = f"{100 * value:.1f}"
    return f"{shown}%"


def _target_phrase(target: str) -> str:
    """``"lowest ttc"`` -> ``"the entity with the lowest ttc"``; ``"flagged by is_left"`` -> ``"an entity flagged
    by is_left"``."""
    return f"an entity {target}" if " by " in target else f"the entity with the {target}"


def claim_text(row: Mapping[str, Any]) -> str:
    """One claim in words."""
    head = f"{row['head_name']} ({row['label']}{'' if row['validated'] else ', label NOT validated'})"
    said = f"{head}: attends {row['entity_name']} with {_percent(row['share'])} of its attention"
    if not np.isnan(row["focus_percentile"]):
        said += f", more concentrated than {row['focus_percentile']:.0f}% of the analysis scenarios"
    target = row["target"]
    if isinstance(target, str) and not np.isnan(row["value"]):
        verdict = ("no single target in this step" if pd.isna(row["consistent"]) else
                   "as its label predicts" if row["consistent"] else "not what its label predicts")
        said += f"; its {row['feature']} is {row['value']:.3g}: {verdict} ({_target_phrase(target)})"
    if not np.isnan(row["agreement"]):
        said += (f". In the analysis data its top entity was {_target_phrase(str(target))} in "
                 f"{_percent(row['agreement'])} [{_percent(row['agreement_ci_low'])}, "
                 f"{_percent(row['agreement_ci_high'])}] of scenarios (chance {_percent(row['chance'])})")
    if row.get("joint_entity", -1) >= 0:
        found, tied = row["joint_consistent"], int(row["joint_tied"])
        model = f". Its joint model ({row['profile']})"
        if pd.isna(found):
            said += f"{model} predicts every entity alike here"
        elif found:
            said += f"{model} predicts this entity" + (f" (one of {tied} it predicts alike)" if tied > 1 else "")
        else:
            others = f" and {tied - 1} more" if tied > 1 else ""
            said += f"{model} predicts {row['joint_entity_name']}{others}, not this one"
        if not np.isnan(row["joint_agreement"]):
            said += (f"; in the analysis data its top entity was the predicted one in "
                     f"{_percent(row['joint_agreement'])} [{_percent(row['joint_agreement_ci_low'])}, "
                     f"{_percent(row['joint_agreement_ci_high'])}] of scenarios (chance "
                     f"{_percent(row['joint_chance'])})")
    said += "."
    note = row.get("note")
    if isinstance(note, str) and note:
        said += f" [Note: {note}.]"
    return said


#: Scenarios of a sharded data set the examples are drawn from (the figures' sample).
EXAMPLE_SAMPLE = 100_000


def example_explanations(result: Any) -> pd.DataFrame:
    """For each validated head of ``result`` (an :class:`~hsi_stats.HSIResult`), two scenarios of its data
    explained with its registry: the most typical (its top entity is its label's target, with the largest share of
    its attention) and the least typical (the largest share on an entity that is not the target; failing that,
    the target with the smallest share). Columns ``head, example, scenario, group, text``.
    """
    explainer = Explainer.from_registry(result.registry())
    columns = ["head", "example", "scenario", "group", "text"]
    if not explainer.heads:
        return pd.DataFrame(columns=columns)
    data = result.dataset if hasattr(result.dataset, "attention") else result.dataset.sample(EXAMPLE_SAMPLE)
    claims = explainer.explain(data.attention, data.features, data.mask).claims
    rows = []
    for _, found in claims.groupby("head", sort=True, observed=True):
        hits = found[found["consistent"].fillna(False).to_numpy(dtype=bool)]
        misses = found[(~found["consistent"].fillna(True)).to_numpy(dtype=bool)]
        typical = hits.iloc[int(np.argmax(hits["share"].to_numpy()))] if len(hits) else None
        atypical = (misses.iloc[int(np.argmax(misses["share"].to_numpy()))] if len(misses) else
                    hits.iloc[int(np.argmin(hits["share"].to_numpy()))] if len(hits) > 1 else None)
        for example, row in (("most typical", typical), ("least typical", atypical)):
            if row is not None:
                scenario = int(row["scenario"])
                rows.append((str(row["head_name"]), example, scenario, str(data.groups[scenario]),
                             claim_text({str(k): v for k, v in row.to_dict().items()})))
    return pd.DataFrame(rows, columns=columns)
