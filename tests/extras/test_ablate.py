"""Removing heads from real PyTorch modules (``hsi_stats.capture.ablate``).

- Under ``mode="zero"`` the output equals a forward pass computed here by hand, in float64, with the head's output
  left out (``nn.MultiheadAttention`` with either ``batch_first``, with padding; ``nn.TransformerEncoderLayer`` on
  and off its fast path; a custom attention module through ``projection``); under ``mode="mean"`` the head's output
  is replaced by its mean over every batch entry and query position of the reference calls.
- The module is restored bit for bit (every tensor, in the same storage; hooks; the fast-path flag) after a normal
  exit and after an exception, also nested with ``TorchAttentionRecorder`` in either order.
- Bad arguments get one clear error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra (hsi_stats[torch]) is not installed")
nn = torch.nn
from hsi_stats._validation import OptionError  # noqa: E402
from hsi_stats.capture import TorchAttentionRecorder, ablate  # noqa: E402

E, H = 8, 4
TOLERANCE = 1e-6


def _mha(batch_first: bool, seed: int = 0) -> nn.MultiheadAttention:
    torch.manual_seed(seed)
    module = nn.MultiheadAttention(E, H, batch_first=batch_first).eval()
    with torch.no_grad():  # a bias that is not zero, so that "zero" visibly keeps it
        module.out_proj.bias.normal_()
        module.in_proj_bias.normal_()
    return module


def _inputs(batch_first: bool, seed: int = 1, batch: int = 5, length: int = 7) -> torch.Tensor:
    torch.manual_seed(seed)
    x = torch.randn(batch, length, E)
    return x if batch_first else x.transpose(0, 1).contiguous()


def _heads_by_hand(module: nn.MultiheadAttention, x: torch.Tensor, padding: torch.Tensor | None = None
                   ) -> torch.Tensor:
    """Each head's output (B, L, H, d) of self-attention on ``x``, in float64, from the module's weights."""
    if not module.batch_first:
        x = x.transpose(0, 1)
    x = x.double()
    weight, bias = module.in_proj_weight.double(), module.in_proj_bias.double()
    q, k, v = (x @ weight[i * E:(i + 1) * E].T + bias[i * E:(i + 1) * E] for i in range(3))
    b, length, d = x.shape[0], x.shape[1], E // H
    q, k, v = (t.reshape(b, length, H, d).transpose(1, 2) for t in (q, k, v))  # (B, H, L, d)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d)
    if padding is not None:
        scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v).transpose(1, 2)  # (B, L, H, d)


def _output_by_hand(module: nn.MultiheadAttention, heads: torch.Tensor, removed: dict[int, torch.Tensor | None]
                    ) -> torch.Tensor:
    """The module's output from the heads' outputs, head k replaced by ``removed[k]`` (None: zero)."""
    heads = heads.clone()
    for k, mean in removed.items():
        heads[:, :, k] = 0.0 if mean is None else mean
    out = heads.reshape(*heads.shape[:2], E) @ module.out_proj.weight.double().T + module.out_proj.bias.double()
    return out if module.batch_first else out.transpose(0, 1)


def _snapshot(model: nn.Module) -> dict[str, object]:
    tensors = model.state_dict(keep_vars=True).items()
    return {"tensors": {name: (t.detach().clone(), t.data_ptr()) for name, t in tensors},
            "grad": {name: p.requires_grad for name, p in model.named_parameters()},
            "hooks": {name: (dict(m._forward_hooks), dict(m._forward_pre_hooks), dict(m._forward_hooks_with_kwargs))
                      for name, m in model.named_modules()},
            "fastpath": torch.backends.mha.get_fastpath_enabled()}


def _assert_restored(model: nn.Module, before: dict[str, object]) -> None:
    after = _snapshot(model)
    assert after["tensors"].keys() == before["tensors"].keys()
    for name, (tensor, pointer) in before["tensors"].items():
        now, now_pointer = after["tensors"][name]
        assert torch.equal(now, tensor) and now_pointer == pointer, name  # same bits, same storage
    assert after["grad"] == before["grad"] and after["hooks"] == before["hooks"]
    assert after["fastpath"] == before["fastpath"]


# ------------------------------------------------------------------------------------------------ zero
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("removed", [[1], [0, 3], [0, 1, 2, 3]])
def test_zero_ablation_equals_the_forward_pass_without_the_heads(batch_first: bool, removed: list[int]) -> None:
    module = _mha(batch_first)
    x = _inputs(batch_first)
    padding = torch.zeros(5, 7, dtype=torch.bool)
    padding[:2, 5:] = True  # the last keys of two sequences are padding
    with torch.no_grad(), ablate(module, removed):
        out, _ = module(x, x, x, key_padding_mask=padding, need_weights=False)
    expected = _output_by_hand(module, _heads_by_hand(module, x, padding), dict.fromkeys(removed))
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=TOLERANCE)
    intact = _output_by_hand(module, _heads_by_hand(module, x, padding), {})
    assert (out.double() - intact).abs().max() > 0.05  # removing the heads changed the output


def test_names_as_the_recorder_gives_them_address_the_same_heads() -> None:
    model = nn.Sequential(nn.Identity(), _mha(True))
    x = _inputs(True)
    with TorchAttentionRecorder(model) as recorder:
        with torch.no_grad():
            model[1](x, x, x)
    assert recorder.head_names[2] == "1:h2"
    with torch.no_grad(), ablate(model, ["1:h2"]) as removed:
        out = model[1](x, x, x)[0]
    assert removed.heads == ("1:h2",)
    expected = _output_by_hand(model[1], _heads_by_hand(model[1], x), {2: None})
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=TOLERANCE)


def _encoder_layer_by_hand(layer: nn.TransformerEncoderLayer, x: torch.Tensor, attention: torch.Tensor
                           ) -> torch.Tensor:
    """Post-norm encoder layer from its attention block's output: norm2(y + ff(y)), y = norm1(x + attention)."""
    x = x.double()

    def norm(z: torch.Tensor, n: nn.LayerNorm) -> torch.Tensor:
        return torch.nn.functional.layer_norm(z, (E,), n.weight.double(), n.bias.double(), n.eps)

    y = norm(x + attention, layer.norm1)
    hidden = torch.relu(y @ layer.linear1.weight.double().T + layer.linear1.bias.double())
    return norm(y + hidden @ layer.linear2.weight.double().T + layer.linear2.bias.double(), layer.norm2)


def _attention_by_hand(layer: nn.TransformerEncoderLayer, x: torch.Tensor,
                       removed: dict[int, torch.Tensor | None]) -> torch.Tensor:
    return _output_by_hand(layer.self_attn, _heads_by_hand(layer.self_attn, x), removed)


@pytest.mark.parametrize("fastpath", [True, False])
def test_an_encoder_layer_on_and_off_its_fast_path(fastpath: bool) -> None:
    torch.manual_seed(3)
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, batch_first=True, dropout=0.1).eval()
    x = _inputs(True)
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fastpath)
    try:
        before = _snapshot(layer)
        with torch.no_grad():
            with ablate(layer, ["self_attn:h1"]):
                out = layer(x)
            intact = layer(x)
        _assert_restored(layer, before)
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
    for found, removed in ((out, {1: None}), (intact, {})):
        expected = _encoder_layer_by_hand(layer, x, _attention_by_hand(layer, x, removed))
        torch.testing.assert_close(found.double(), expected, rtol=0, atol=TOLERANCE)


class CustomAttention(nn.Module):
    """Self-attention written out, its output projection ``mix`` and the heads' outputs of the last call kept."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(4)
        self.query, self.key, self.value = (nn.Linear(E, E) for _ in range(3))
        self.mix = nn.Linear(E, E)
        self.last_heads: torch.Tensor | None = None

    def heads(self, x: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape[0], x.shape[1], E // H
        q, k, v = (f(x).reshape(b, length, H, d).transpose(1, 2) for f in (self.query, self.key, self.value))
        return (torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), dim=-1) @ v).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.last_heads = self.heads(x)
        return self.mix(self.last_heads.reshape(*x.shape[:2], E))


class WithCustom(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = CustomAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def _projection(module: CustomAttention) -> tuple[torch.Tensor, torch.Tensor, int]:
    return module.mix.weight, module.mix.bias, H


def _custom_by_hand(model: WithCustom, x: torch.Tensor, removed: dict[int, torch.Tensor | None]) -> torch.Tensor:
    with torch.no_grad():
        heads = model.block.heads(x).double()
    for k, mean in removed.items():
        heads[:, :, k] = 0.0 if mean is None else mean
    return heads.reshape(*x.shape[:2], E) @ model.block.mix.weight.double().T + model.block.mix.bias.double()


def test_a_custom_module_through_its_projection() -> None:
    model, x = WithCustom().eval(), _inputs(True)
    before = _snapshot(model)
    with torch.no_grad(), ablate(model, ["block:h0", "block:h3"], names=["block"], projection=_projection):
        out = model(x)
    _assert_restored(model, before)
    torch.testing.assert_close(out.double(), _custom_by_hand(model, x, {0: None, 3: None}), rtol=0, atol=TOLERANCE)


# ------------------------------------------------------------------------------------------------ mean
@pytest.mark.parametrize("batch_first", [True, False])
def test_mean_ablation_replaces_the_head_by_its_mean_over_batch_and_queries(batch_first: bool) -> None:
    module = _mha(batch_first)
    x, reference = _inputs(batch_first), _inputs(batch_first, seed=9, batch=11, length=6)
    mean = _heads_by_hand(module, reference)[:, :, 2].reshape(-1, E // H).mean(dim=0)  # over batch and queries
    with torch.no_grad(), ablate(module, [2], "mean", lambda: module(reference, reference, reference)):
        out = module(x, x, x)[0]
    expected = _output_by_hand(module, _heads_by_hand(module, x), {2: mean})
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=TOLERANCE)


def test_mean_ablation_of_a_custom_module_reads_its_head_outputs() -> None:
    model, x, reference = WithCustom().eval(), _inputs(True), _inputs(True, seed=5, batch=3)
    with torch.no_grad():
        mean = model.block.heads(reference)[:, :, 1].reshape(-1, E // H).double().mean(dim=0)
    with torch.no_grad(), ablate(model, ["block:h1"], "mean", lambda: model(reference), names=["block"],
                                 projection=_projection,
                                 head_outputs=lambda module, args, kwargs, output: module.last_heads):
        out = model(x)
    torch.testing.assert_close(out.double(), _custom_by_hand(model, x, {1: mean}), rtol=0, atol=TOLERANCE)


# ------------------------------------------------------------------------------------------------ restoring
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_the_module_is_restored_bit_for_bit_after_an_exception(mode: str) -> None:
    module, x = _mha(True), _inputs(True)
    module.register_forward_hook(lambda m, a, o: None)  # a hook of the caller's, which must stay
    before = _snapshot(module)
    with torch.no_grad():
        expected = module(x, x, x)[0]
    with pytest.raises(RuntimeError, match="inside"), torch.no_grad():
        with ablate(module, [0, 2], mode, lambda: module(x, x, x)):
            assert not torch.equal(module(x, x, x)[0], expected)
            raise RuntimeError("inside the block")
    _assert_restored(module, before)
    with torch.no_grad():
        assert torch.equal(module(x, x, x)[0], expected)


@pytest.mark.parametrize("recorder_outside", [True, False])
@pytest.mark.parametrize("fastpath", [True, False])
def test_nested_with_the_recorder_the_fast_path_flag_is_restored(recorder_outside: bool, fastpath: bool) -> None:
    torch.manual_seed(6)
    layer = nn.TransformerEncoderLayer(E, H, dim_feedforward=16, batch_first=True).eval()
    x = _inputs(True)
    previous = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fastpath)
    try:
        before = _snapshot(layer)
        removal = ablate(layer, ["self_attn:h3"], "mean", lambda: layer(x))
        with torch.no_grad():
            if recorder_outside:
                with TorchAttentionRecorder(layer) as recorder:
                    with removal:
                        assert not torch.backends.mha.get_fastpath_enabled()
                        out = layer(x)  # the encoder layer asks for no weights: it gets none back
                assert recorder.n_calls == 2  # the reference call and the ablated one
            else:
                with removal:
                    assert torch.backends.mha.get_fastpath_enabled() == fastpath
                    with TorchAttentionRecorder(layer) as recorder:
                        out = layer(x)
                    assert torch.backends.mha.get_fastpath_enabled() == fastpath
                assert recorder.n_calls == 1
        _assert_restored(layer, before)
    finally:
        torch.backends.mha.set_fastpath_enabled(previous)
    mean = _heads_by_hand(layer.self_attn, x)[:, :, 3].reshape(-1, E // H).mean(dim=0)
    expected = _encoder_layer_by_hand(layer, x, _attention_by_hand(layer, x, {3: mean}))
    torch.testing.assert_close(out.double(), expected, rtol=0, atol=TOLERANCE)


def test_an_ablation_is_entered_once_at_a_time() -> None:
    module = _mha(True)
    removal = ablate(module, [0])
    with removal, pytest.raises(OptionError, match="already in effect"):
        removal.__enter__()
    with removal:  # usable again after its exit
        assert float(module.out_proj.weight.detach()[:, :2].abs().sum()) == 0.0


# ------------------------------------------------------------------------------------------------ errors
def test_bad_arguments_get_one_clear_error() -> None:
    module = _mha(True)
    before = _snapshot(module)
    two = nn.ModuleDict({"a": _mha(True), "b": _mha(True)})
    cases = [
        (lambda: ablate(module, ["module:h4"]), r"head 'module:h4' is not a head of the model; its heads are "
                                                r"\['module:h0..h3'\]"),
        (lambda: ablate(module, [7]), "is not a head of the model"),
        (lambda: ablate(module, ["h1"]), "must hold head names such as 'module:h0' or indices"),
        (lambda: ablate(module, []), "must name at least one head"),
        (lambda: ablate(two, [0]), "a head given by index needs a model with one attention module"),
        (lambda: ablate(module, [0], "drop"), "mode"),
        (lambda: ablate(module, [0], "mean"), "mode='mean' needs `reference`"),
        (lambda: ablate(np.zeros(3), [0]), "must be a torch.nn.Module, but ndarray"),  # type: ignore[arg-type]
        (lambda: ablate(nn.Linear(2, 2), [0]), "holds no nn.MultiheadAttention"),
        (lambda: ablate(WithCustom(), ["block:h0"], names=["block"]), "pass `projection`"),
        (lambda: ablate(module, [0], names=["nothing"]), "`names` must name submodules"),
    ]
    for make, message in cases:
        with pytest.raises(OptionError, match=message):
            make()
    without_bias = nn.MultiheadAttention(E, H, bias=False, batch_first=True)
    x = _inputs(True)
    with pytest.raises(OptionError, match="has none; use mode='zero'"), torch.no_grad():
        with ablate(without_bias, [0], "mean", lambda: without_bias(x, x, x)):
            pass
    with pytest.raises(OptionError, match="were not called while it ran"):
        with ablate(module, [0], "mean", lambda: None):
            pass
    _assert_restored(module, before)  # nothing was changed by the failed entries
