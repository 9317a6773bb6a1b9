"""Removing attention heads from a PyTorch model in place, and putting them back exactly (extra ``hsi_stats[torch]``).

A head's contribution to an attention module's output is its output :math:`o_h` (its attention-weighted values)
times its columns of the output projection, :math:`W_{:, h} o_h`. :class:`ablate` removes heads from the module the
caller's policy already runs, so that ``predict``/``act`` need no change:

``mode="zero"``
    the head's output is removed: its columns of ``out_proj.weight`` are set to zero in place (under
    ``torch.no_grad()``; the bias stays). ``nn.MultiheadAttention`` applies the output projection with its
    weight directly (``F.linear``, or the fused kernel of the fast path of ``nn.TransformerEncoderLayer``), so
    hooks on ``out_proj`` would never fire; changing the weight works on every path.
``mode="mean"``
    the head's output is replaced by its mean :math:`\\bar o_h` over reference inputs: its columns are set to zero
    and :math:`W_{:, h} \\bar o_h` is added to the bias. The mean is over every batch entry and every query
    position of every call of the module while ``reference()`` runs (padded keys get no attention and so do not
    enter; the module does not know padded *queries*, which count like the others). Inside a
:class:`~hsi_stats.capture.TorchAttentionRecorder`, the calls ``reference()`` makes are recorded like any other:
enter a mean ablation before the recording.

On exit every tensor changed is copied back from a copy taken on entry, also after an exception: the module is
restored bit for bit. Heads are named as :class:`~hsi_stats.capture.TorchAttentionRecorder` names them
(``"{module}:h{k}"``, the module's name in ``model.named_modules()``, ``module`` for the model itself), or given by
index when the model has one attention module. Custom attention modules are named with a function ``projection``
that returns the output projection's weight (out, H * d, input columns head-major), its bias (or None) and the
number of heads, and for ``mode="mean"`` a function ``head_outputs(module, args, kwargs, output)`` that returns
the heads' outputs (..., H, d) of a call.

References
----------
Michel, P., Levy, O. and Neubig, G. (2019). Are sixteen heads really better than one? NeurIPS 32.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from .._validation import OptionError, check_choice

try:
    import torch
    from torch import nn
    from torch.nn import functional
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError("ablating a PyTorch model needs the optional extra: pip install 'hsi_stats[torch]'") from exc

__all__ = ["ABLATION_MODES", "ablate", "attention_modules", "head_columns"]

ABLATION_MODES = ("zero", "mean")
#: ``projection(module) -> (weight, bias or None, n_heads)`` of a custom attention module.
ProjectionFn = Callable[[Any], tuple[Any, Any, int]]
#: ``head_outputs(module, args, kwargs, output) -> (..., H, d)`` of a custom attention module's call.
HeadOutputsFn = Callable[[Any, tuple[Any, ...], dict[str, Any], Any], Any]
#: Positions of ``need_weights`` and ``average_attn_weights`` in ``nn.MultiheadAttention.forward``'s arguments.
_NEED_WEIGHTS, _AVERAGE = 4, 6


def attention_modules(model: nn.Module, projection: ProjectionFn | None = None,
                      names: Sequence[str] | None = None) -> dict[str, nn.Module]:
    """The attention modules of ``model`` by display name (``"module"`` for the model itself): every
    ``nn.MultiheadAttention``, or the submodules ``names`` (custom ones need ``projection``)."""
    found = dict(model.named_modules())
    if names is None:
        chosen = [name for name, sub in found.items() if isinstance(sub, nn.MultiheadAttention)]
    else:
        missing = [name for name in names if name not in found]
        if missing:
            raise OptionError(f"`names` must name submodules of the model, but {missing} are not among them (some "
                              f"names: {list(found)[:12]}).")
        chosen = list(names)
        custom = [name for name in chosen if not isinstance(found[name], nn.MultiheadAttention)]
        if custom and projection is None:
            raise OptionError(f"{custom} are not nn.MultiheadAttention: pass `projection` (module -> output "
                              "projection weight, bias, number of heads) to ablate their heads.")
    if not chosen:
        raise OptionError(f"{type(model).__name__} holds no nn.MultiheadAttention; name its attention modules in "
                          "`names` and pass `projection`.")
    return {name or "module": found[name] for name in chosen}


def _projection(module: nn.Module, projection: ProjectionFn | None) -> tuple[Any, Any, int]:
    if isinstance(module, nn.MultiheadAttention):
        return module.out_proj.weight, module.out_proj.bias, int(module.num_heads)
    assert projection is not None
    weight, bias, n_heads = projection(module)
    return weight, bias, int(n_heads)


def head_columns(weight: Any, n_heads: int, head: int) -> slice:
    """The input columns of an output projection ``weight`` (out, H * d) that carry head ``head``."""
    width = int(weight.shape[1]) // n_heads
    return slice(head * width, (head + 1) * width)


def _resolve(modules: Mapping[str, nn.Module], heads: Sequence[str | int] | str | int,
             projection: ProjectionFn | None) -> dict[str, list[int]]:
    """Module display name -> the head indices to remove, from recorder names or indices."""
    chosen = [heads] if isinstance(heads, (str, int)) else list(heads)
    if not chosen:
        raise OptionError("The value for `heads` must name at least one head, but none was passed.")
    sizes = {name: _projection(module, projection)[2] for name, module in modules.items()}
    found: dict[str, list[int]] = {}
    for head in chosen:
        if isinstance(head, (int,)) and not isinstance(head, bool):
            if len(modules) != 1:
                raise OptionError(f"a head given by index needs a model with one attention module, but it has "
                                  f"{list(modules)}: name heads as '{next(iter(modules))}:h0'.")
            name, index = next(iter(modules)), int(head)
        elif isinstance(head, str) and ":h" in head and head.rsplit(":h", 1)[1].isdigit():
            name, index = head.rsplit(":h", 1)[0], int(head.rsplit(":h", 1)[1])
        else:
            raise OptionError(f"The value for `heads` must hold head names such as '{next(iter(modules))}:h0' or "
                              f"indices, but {head!r} was passed.")
        if name not in sizes or not 0 <= index < sizes[name]:
            listed = [f"{n}:h0..h{size - 1}" for n, size in sizes.items()]
            raise OptionError(f"head {head!r} is not a head of the model; its heads are {listed}.")
        if index not in found.setdefault(name, []):
            found[name].append(index)
    return found


def _per_head_outputs(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any],
                      weights: Any) -> Any:
    """The heads' outputs (..., H, d) of one call of an ``nn.MultiheadAttention``: per-head attention times the
    heads' projected values, as the module computes them."""
    value = args[2] if len(args) > 2 else kwargs["value"]
    if module.bias_v is not None or module.add_zero_attn:
        raise OptionError("mode='mean' reads the heads' values, which `bias_v` and `add_zero_attn` change; ablate "
                          "this module with mode='zero'.")
    embed, n_heads = module.embed_dim, module.num_heads
    if module._qkv_same_embed_dim:
        weight = module.in_proj_weight[2 * embed:]
    else:
        weight = module.v_proj_weight
    bias = None if module.in_proj_bias is None else module.in_proj_bias[2 * embed:]
    if value.dim() == 2:  # unbatched (S, E)
        value = value.unsqueeze(0 if module.batch_first else 1)
    if not module.batch_first:
        value = value.transpose(0, 1)  # (B, S, E)
    projected = functional.linear(value, weight, bias)  # (B, S, E)
    per_head = projected.reshape(*projected.shape[:2], n_heads, embed // n_heads).transpose(1, 2)  # (B, H, S, d)
    attention = weights if weights.dim() == 4 else weights.unsqueeze(0)  # (B, H, Q, S)
    return torch.matmul(attention, per_head).transpose(1, 2)  # (B, Q, H, d)


@dataclass
class _MeanRecorder:
    """Sums of every head's output over the calls of the modules while the reference runs."""

    modules: Mapping[str, nn.Module]
    head_outputs: HeadOutputsFn | None
    totals: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    asked: dict[str, list[tuple[bool, bool]]] = field(default_factory=dict)

    def pre_hook(self, name: str) -> Callable[..., Any]:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            given, kwargs = list(args), dict(kwargs)
            asked = []
            for position, key, forced in ((_NEED_WEIGHTS, "need_weights", True),
                                          (_AVERAGE, "average_attn_weights", False)):
                if len(given) > position:
                    asked.append(bool(given[position]))
                    given[position] = forced
                else:
                    asked.append(bool(kwargs.get(key, True)))
                    kwargs[key] = forced
            self.asked.setdefault(name, []).append((asked[0], asked[1]))
            return tuple(given), kwargs
        return hook

    def hook(self, name: str) -> Callable[..., Any]:
        def record(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
            if isinstance(module, nn.MultiheadAttention):
                need_weights, average = self.asked[name].pop()
                attn_output, weights = output
                outputs = _per_head_outputs(module, args, kwargs, weights)
                returned: Any = ((attn_output, None) if not need_weights else
                                 (attn_output, weights.mean(dim=-3)) if average else output)
            else:
                assert self.head_outputs is not None
                outputs, returned = self.head_outputs(module, args, kwargs, output), None
            flat = outputs.detach().reshape(-1, *outputs.shape[-2:]).to(torch.float64)  # (N, H, d)
            self.totals[name] = self.totals.get(name, 0) + flat.sum(dim=0)
            self.counts[name] = self.counts.get(name, 0) + int(flat.shape[0])
            return returned
        return record

    def means(self, reference: Callable[[], Any]) -> dict[str, Any]:
        """Each module's mean head outputs (H, d) over the calls ``reference()`` makes."""
        handles = []
        fastpath = bool(torch.backends.mha.get_fastpath_enabled())
        torch.backends.mha.set_fastpath_enabled(False)  # the fast path skips forward, and with it the hooks
        try:
            for name, module in self.modules.items():
                if isinstance(module, nn.MultiheadAttention):  # first to see the caller's arguments, last to
                    # hand the output back in the caller's form (inside a TorchAttentionRecorder too)
                    handles.append(module.register_forward_pre_hook(self.pre_hook(name), with_kwargs=True,
                                                                    prepend=True))
                elif self.head_outputs is None:
                    raise OptionError(f"mode='mean' on the custom module {name!r} needs `head_outputs` (module, "
                                      "args, kwargs, output -> the heads' outputs (..., H, d)).")
                handles.append(module.register_forward_hook(self.hook(name), with_kwargs=True))
            with torch.no_grad():
                reference()
        finally:
            for handle in handles:
                handle.remove()
            torch.backends.mha.set_fastpath_enabled(fastpath)
        missing = [name for name in self.modules if not self.counts.get(name)]
        if missing:
            raise OptionError(f"`reference` must run the model, but the attention modules {missing} were not called "
                              "while it ran.")
        return {name: self.totals[name] / self.counts[name] for name in self.modules}


class ablate:  # a context manager used like a function: `with ablate(model, heads): ...`
    """Remove ``heads`` from ``model``'s attention in place while the block runs; restore them exactly after.

    Parameters
    ----------
    model : torch.nn.Module
        The model (or one attention module) the caller's policy runs.
    heads : head name, index or sequence of them
        ``"{module}:h{k}"`` as :class:`~hsi_stats.capture.TorchAttentionRecorder` names them, or indices when the
        model has one attention module.
    mode : {"zero", "mean"}, default "zero"
        Remove the heads' outputs, or replace them by their means over ``reference``.
    reference : callable, optional
        For ``mode="mean"``: run with no argument, it runs the model on the reference inputs (for example
        ``lambda: policy(reference_observations)``); the heads' outputs are averaged over every batch entry and
        query position of those calls.
    names : sequence of str, optional
        The attention modules, by name in ``model.named_modules()``; every ``nn.MultiheadAttention`` by default.
    projection, head_outputs : callable, optional
        For custom attention modules: see the module's documentation.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> attention = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    >>> x = torch.randn(3, 5, 8)
    >>> before = attention(x, x, x)[0]
    >>> with ablate(attention, [1]):
    ...     without = attention(x, x, x)[0]
    >>> bool(torch.equal(attention(x, x, x)[0], before)), bool(torch.equal(without, before))
    (True, False)
    """

    def __init__(self, model: nn.Module, heads: Sequence[str | int] | str | int, mode: str = "zero",
                 reference: Callable[[], Any] | None = None, *, names: Sequence[str] | None = None,
                 projection: ProjectionFn | None = None, head_outputs: HeadOutputsFn | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise OptionError(f"The value for `model` must be a torch.nn.Module, but {type(model).__name__} was "
                              "passed.")
        self.mode = check_choice("mode", mode, ABLATION_MODES)
        if self.mode == "mean" and not callable(reference):
            raise OptionError("mode='mean' needs `reference`: a function of no argument that runs the model on the "
                              f"reference inputs, but {type(reference).__name__} was passed.")
        self._modules = attention_modules(model, projection, names)
        self._heads = _resolve(self._modules, heads, projection)
        self._projection, self._head_outputs, self._reference = projection, head_outputs, reference
        self._saved: list[tuple[Any, Any]] = []

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads removed, by name."""
        return tuple(f"{name}:h{k}" for name, indices in self._heads.items() for k in indices)

    def __enter__(self) -> ablate:
        if self._saved:
            raise OptionError("this ablation is already in effect; enter it once at a time.")
        chosen = {name: self._modules[name] for name in self._heads}
        means = (_MeanRecorder(chosen, self._head_outputs).means(self._reference)  # type: ignore[arg-type]
                 if self.mode == "mean" else {})
        with torch.no_grad():
            for name, indices in self._heads.items():
                weight, bias, n_heads = _projection(self._modules[name], self._projection)
                if self.mode == "mean" and bias is None:
                    raise OptionError(f"mode='mean' adds the heads' mean output to the bias of {name!r}'s output "
                                      "projection, which has none; use mode='zero'.")
                self._saved += [(weight, weight.detach().clone())]
                if self.mode == "mean":
                    self._saved += [(bias, bias.detach().clone())]
                for k in indices:
                    columns = head_columns(weight, n_heads, k)
                    if self.mode == "mean":
                        mean = means[name][k].to(weight.dtype)
                        bias.add_(weight[:, columns] @ mean)
                    weight[:, columns] = 0
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        with torch.no_grad():
            for tensor, original in reversed(self._saved):
                tensor.copy_(original)
        self._saved.clear()
