"""Recording the per-head attention of a PyTorch model with forward hooks (optional extra ``hsi_stats[torch]``).

What people get wrong when they log attention from PyTorch, and what :class:`TorchAttentionRecorder` does about it:

- ``nn.MultiheadAttention`` averages the heads unless ``average_attn_weights=False``, and returns no weights with
  ``need_weights=False`` (as ``nn.TransformerEncoderLayer`` calls it). The recorder asks every hooked module for
  per-head weights and hands the caller what it asked for (no weights, or the head average), so the model's
  outputs are those it computes without the recorder.
- In eval mode under ``torch.no_grad()`` the fast paths of ``nn.TransformerEncoderLayer`` and
  ``nn.MultiheadAttention`` may skip ``self_attn.forward``, so hooks never fire. The recorder turns the fast path
  off (``torch.backends.mha.set_fastpath_enabled(False)``) while it records and restores the setting after.
- In training mode the weights are those after dropout: the recorder warns.
- A query whose keys are all masked comes back NaN: :meth:`TorchAttentionRecorder.to_dataset` says so.

References
----------
PyTorch documentation, ``torch.nn.MultiheadAttention`` and ``torch.nn.TransformerEncoderLayer`` (fast path).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._validation import HSIDataError, OptionError
from ..data import HSIDataset
from .entities import Index, entity_attention

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("recording a PyTorch model needs the optional extra: pip install 'hsi_stats[torch]'") from exc

__all__ = ["RecordingWarning", "TorchAttentionRecorder"]

#: Positions of ``need_weights`` and ``average_attn_weights`` in ``nn.MultiheadAttention.forward``'s arguments.
_NEED_WEIGHTS, _AVERAGE = 4, 6
#: The layout of ``nn.MultiheadAttention``'s per-head weights.
MHA_LAYOUT = "b h q k"

#: A custom module's weights from its call: ``weights(module, args, kwargs, output)``.
WeightsFn = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], Any]


class RecordingWarning(UserWarning):
    """The weights recorded may not be what the model uses at inference (for example, after dropout)."""


def _numpy(weights: Any, name: str) -> NDArray[Any]:
    if isinstance(weights, torch.Tensor):
        return weights.detach().to("cpu", torch.float32 if weights.dtype in (torch.bfloat16, torch.float16)
                                   else weights.dtype).numpy().copy()
    array = np.array(weights)
    if array.dtype.kind not in "fiu":
        raise HSIDataError(f"the attention weights of {name!r} must be numeric, but they are {type(weights).__name__} "
                           f"of dtype {array.dtype}.")
    return array


class TorchAttentionRecorder:
    """A context manager that records the per-head attention weights of a PyTorch model, one array per call.

    Parameters
    ----------
    module : torch.nn.Module
        The model. Every ``nn.MultiheadAttention`` in it is hooked, or only the submodules ``names``.
    names : sequence of str, optional
        Submodules to hook, by their name in ``module.named_modules()``; in that order their heads are concatenated.
    weights : callable, optional
        For custom attention modules (any ``nn.Module`` among ``names``): ``weights(module, args, kwargs, output)``
        returns the module's weights for that call, laid out as ``layout``. ``nn.MultiheadAttention`` modules
        are always read directly.
    layout : str, default "b h q k"
        The axes of what ``weights`` returns (see :func:`~hsi_stats.capture.entity_attention`).

    Attributes
    ----------
    records : dict of str to list of ndarray
        Per hooked module, the weights of each call, on the CPU, in the module's layout with a batch axis.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> layer = nn.TransformerEncoderLayer(d_model=8, nhead=2, batch_first=True).eval()
    >>> x = torch.randn(5, 4, 8)              # 5 scenarios, 4 tokens: an ego token and 3 vehicles
    >>> with torch.no_grad(), TorchAttentionRecorder(layer) as recorder:
    ...     y = layer(x)
    >>> recorder.head_names
    ('self_attn:h0', 'self_attn:h1')
    >>> recorder.attention(query=0, entities=slice(1, None)).shape    # the ego's attention over the vehicles
    (5, 2, 3)
    """

    def __init__(self, module: nn.Module, *, names: Sequence[str] | None = None, weights: WeightsFn | None = None,
                 layout: str = MHA_LAYOUT) -> None:
        if not isinstance(module, nn.Module):
            raise OptionError(f"The value for `module` must be a torch.nn.Module, but {type(module).__name__} was "
                              f"passed.")
        found = dict(module.named_modules())
        if names is None:
            if weights is not None:
                raise OptionError("`weights` reads custom attention modules, which must be named in `names`.")
            chosen = [name for name, sub in found.items() if isinstance(sub, nn.MultiheadAttention)]
            if not chosen:
                raise OptionError(f"{type(module).__name__} holds no nn.MultiheadAttention; name its attention "
                                  f"modules in `names` and pass `weights` to read them.")
        else:
            chosen = list(names)
            missing = [name for name in chosen if name not in found]
            if missing:
                raise OptionError(f"`names` must name submodules of the module, but {missing} are not among them "
                                  f"(some names: {list(found)[:12]}).")
            custom = [name for name in chosen if not isinstance(found[name], nn.MultiheadAttention)]
            if custom and weights is None:
                raise OptionError(f"{custom} are not nn.MultiheadAttention: pass `weights` (a function of the "
                                  f"module, its args, kwargs and output) that returns their weights.")
        self._module = module
        self._targets = {name: found[name] for name in chosen}
        self._weights = weights
        self._layout = layout
        self.records: dict[str, list[NDArray[Any]]] = {name: [] for name in chosen}
        self._handles: list[Any] = []
        self._asked: dict[str, list[tuple[bool, bool]]] = {}
        self._fastpath: bool | None = None

    # ------------------------------------------------------------------ hooks
    def _layout_of(self, name: str) -> str:
        return MHA_LAYOUT if isinstance(self._targets[name], nn.MultiheadAttention) else self._layout

    def _force_per_head(self, name: str) -> Callable[..., Any]:
        def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            given, kwargs = list(args), dict(kwargs)
            asked = []
            for position, key, forced, default in ((_NEED_WEIGHTS, "need_weights", True, True),
                                                   (_AVERAGE, "average_attn_weights", False, True)):
                if len(given) > position:
                    asked.append(bool(given[position]))
                    given[position] = forced
                else:
                    asked.append(bool(kwargs.get(key, default)))
                    kwargs[key] = forced
            self._asked[name].append((asked[0], asked[1]))
            return tuple(given), kwargs
        return pre_hook

    def _record_mha(self, name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            need_weights, average = self._asked[name].pop()
            attn_output, per_head = output
            array = _numpy(per_head, name)
            self.records[name].append(array if array.ndim == 4 else array[None])  # unbatched: (heads, q, k)
            if not need_weights:
                return attn_output, None
            return (attn_output, per_head.mean(dim=-3)) if average else output
        return hook

    def _record_custom(self, name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> None:
            assert self._weights is not None
            array = _numpy(self._weights(module, args, kwargs, output), name)
            self.records[name].append(array if "b" in self._layout.split() else array[None])
        return hook

    def __enter__(self) -> TorchAttentionRecorder:
        if self._handles:
            raise OptionError("this recorder is already recording; a recorder is entered once at a time.")
        self._fastpath = bool(torch.backends.mha.get_fastpath_enabled())
        torch.backends.mha.set_fastpath_enabled(False)
        for name, sub in self._targets.items():
            if isinstance(sub, nn.MultiheadAttention):
                self._asked[name] = []
                self._handles.append(sub.register_forward_pre_hook(self._force_per_head(name), with_kwargs=True))
                self._handles.append(sub.register_forward_hook(self._record_mha(name), with_kwargs=True))
                if sub.training and sub.dropout > 0:
                    warnings.warn(f"{name!r} is in training mode with dropout {sub.dropout}: the weights recorded "
                                  f"are after dropout; call model.eval() to record the weights the policy uses.",
                                  RecordingWarning, stacklevel=2)
            else:
                self._handles.append(sub.register_forward_hook(self._record_custom(name), with_kwargs=True))
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._asked.clear()
        if self._fastpath is not None:
            torch.backends.mha.set_fastpath_enabled(self._fastpath)

    # ------------------------------------------------------------------ what was recorded
    @property
    def n_calls(self) -> int:
        """Calls recorded (of the first hooked module)."""
        return len(next(iter(self.records.values())))

    def clear(self) -> None:
        """Forget every call recorded so far."""
        for calls in self.records.values():
            calls.clear()

    def _per_module(self, query: Index, entities: Index, tokens_per_entity: int, token_order: str,
                    reduce: str) -> dict[str, NDArray[np.float64]]:
        counts = {name: len(calls) for name, calls in self.records.items()}
        if len(set(counts.values())) != 1 or not next(iter(counts.values())):
            raise HSIDataError(f"every hooked module must have recorded the same number of calls (at least one), "
                               f"but they recorded {counts}.")
        return {name: np.concatenate([entity_attention(call, self._layout_of(name), query=query, entities=entities,
                                                       tokens_per_entity=tokens_per_entity, token_order=token_order,
                                                       reduce=reduce) for call in calls])
                for name, calls in self.records.items()}

    @property
    def head_names(self) -> tuple[str, ...]:
        """``"{module}:h{k}"`` for every head recorded, modules in hook order."""
        return tuple(f"{name or 'module'}:h{h}" for name, calls in self.records.items() if calls
                     for h in range(calls[0].shape[self._layout_of(name).split().index("h")]))

    def attention(self, *, query: Index = 0, entities: Index = None, tokens_per_entity: int = 1,
                  token_order: str = "entity-major", reduce: str = "sum") -> NDArray[np.float64]:
        """Per-entity attention (N, H, V) of every call (batches concatenated) and hooked module (heads
        concatenated), by :func:`~hsi_stats.capture.entity_attention` with these options."""
        per_module = self._per_module(query, entities, tokens_per_entity, token_order, reduce)
        shapes = {name: array.shape for name, array in per_module.items()}
        if len({(shape[0], shape[2]) for shape in shapes.values()}) != 1:
            raise HSIDataError(f"the hooked modules must give the same scenarios and entities, but their "
                               f"attention has shapes (N, H, V) {shapes}; record one module at a time.")
        return np.concatenate(list(per_module.values()), axis=1)

    def to_dataset(self, features: Mapping[str, ArrayLike], mask: ArrayLike | None = None,
                   groups: ArrayLike | None = None, steps: ArrayLike | None = None, *, query: Index = 0,
                   entities: Index = None, tokens_per_entity: int = 1, token_order: str = "entity-major",
                   reduce: str = "sum", notes: Sequence[str] = ()) -> HSIDataset:
        """An :class:`~hsi_stats.HSIDataset` of what was recorded: :meth:`attention` with these options and the
        features (name -> (N, V)) of the same entities; ``mask``, ``groups`` and ``steps`` as
        :class:`~hsi_stats.HSIDataset` takes them. Heads are named ``"{module}:h{k}"``."""
        attention = self.attention(query=query, entities=entities, tokens_per_entity=tokens_per_entity,
                                   token_order=token_order, reduce=reduce)
        valid = np.ones(attention.shape[::2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if valid.shape == attention.shape[::2]:
            bad = ~np.isfinite(attention) & valid[:, None, :]
            scenarios = np.flatnonzero(bad.any(axis=(1, 2)))
            if scenarios.size:
                raise HSIDataError(f"the recorded attention is NaN on a valid entity in {scenarios.size} scenarios "
                                   f"(the first: {scenarios[0]}): a query whose keys are all masked comes back NaN; "
                                   f"pick another query, or mark those entities invalid in `mask`.")
        return HSIDataset(np.where(np.isfinite(attention), attention, 0.0), features, mask=mask, groups=groups,
                          steps=steps, head_names=self.head_names, notes=notes, copy=False)
