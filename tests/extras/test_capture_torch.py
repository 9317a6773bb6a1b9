"""Recording a real PyTorch model: a tiny attention layer built here whose head 0 provably attends to the nearest
entity and whose head 1 is uniform, recorded through ``nn.MultiheadAttention`` and ``nn.TransformerEncoderLayer``
(eval mode, ``torch.no_grad()``); ``analyze`` must validate head 0 on the distance and not head 1, and recording
must change no output of the model and restore every setting.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_attention import E, V, assert_proximity_head_and_uniform_head, projections, scenarios, tokens

torch = pytest.importorskip("torch", reason="the torch extra (hsi_stats[torch]) is not installed")
nn = torch.nn
from hsi_stats.capture import TorchAttentionRecorder  # noqa: E402  (needs torch)
from hsi_stats.capture.torch_recorder import RecordingWarning  # noqa: E402


def _set_weights(attention: nn.MultiheadAttention) -> None:
    """The tiny layer's projections (tests/tiny_attention.py) in PyTorch's packed in_proj_weight (3E, E)."""
    packed = [torch.from_numpy(matrix.reshape(E, E).T.copy()) for matrix in projections().values()]
    with torch.no_grad():
        attention.in_proj_weight.copy_(torch.cat(packed))
        attention.in_proj_bias.zero_()


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return scenarios()


def _mha() -> nn.MultiheadAttention:
    attention = nn.MultiheadAttention(E, num_heads=2, batch_first=True).eval()
    _set_weights(attention)
    return attention


def _encoder_layer() -> nn.TransformerEncoderLayer:
    layer = nn.TransformerEncoderLayer(d_model=E, nhead=2, dim_feedforward=8, batch_first=True, dropout=0.1).eval()
    _set_weights(layer.self_attn)
    return layer


def _check_labels(data: dict[str, np.ndarray], recorder: TorchAttentionRecorder) -> None:
    dataset = recorder.to_dataset({k: data[k] for k in ("distance_to_ego", "ttc")}, groups=data["groups"],
                                  query=0, entities=slice(1, None))  # the ego's attention over the entities
    assert_proximity_head_and_uniform_head(dataset, data)


def test_a_multihead_attention_module_is_recorded_per_head(data: dict[str, np.ndarray]) -> None:
    attention = _mha()
    x = torch.from_numpy(tokens(data["distance_to_ego"]))
    with torch.no_grad():
        plain_out, plain_mean = attention(x, x, x)  # the defaults: weights averaged over heads
        none_out, none_weights = attention(x, x, x, need_weights=False)
        with TorchAttentionRecorder(attention) as recorder:
            for batch in torch.split(x, 100):  # one record per call, batches concatenated
                attention(batch, batch, batch, need_weights=False)
        with TorchAttentionRecorder(attention) as asked:
            out, mean = attention(x, x, x)
            positional_out, positional_none = attention(x, x, x, None, False)
    assert recorder.n_calls == 6 and asked.n_calls == 2 and recorder.head_names == ("module:h0", "module:h1")
    # what the caller asked for, as without the recorder: the head average, or no weights
    torch.testing.assert_close(out, plain_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mean, plain_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(positional_out, none_out, rtol=1e-5, atol=1e-6)
    assert none_weights is None and positional_none is None
    _check_labels(data, recorder)


def test_an_encoder_layer_in_eval_mode_under_no_grad_is_recorded(data: dict[str, np.ndarray]) -> None:
    layer = _encoder_layer()
    x = torch.from_numpy(tokens(data["distance_to_ego"]))
    for fastpath in (True, False):
        torch.backends.mha.set_fastpath_enabled(fastpath)
        with torch.no_grad():
            expected = layer(x)
            with TorchAttentionRecorder(layer) as recorder:
                assert not torch.backends.mha.get_fastpath_enabled()  # off while recording
                got = layer(x)
        assert torch.backends.mha.get_fastpath_enabled() is fastpath  # restored
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)  # the model's output is unchanged
        assert not layer.training and not layer.self_attn._forward_hooks and not layer.self_attn._forward_pre_hooks
        assert recorder.head_names == ("self_attn:h0", "self_attn:h1") and recorder.n_calls == 1
    torch.backends.mha.set_fastpath_enabled(True)
    _check_labels(data, recorder)


def test_a_custom_attention_module_is_read_by_the_function_given() -> None:
    class EgoAttention(nn.Module):  # heads-last weights, as some driving encoders return them
        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            scores = torch.stack([-x[..., 1], torch.zeros_like(x[..., 1])], dim=-1)  # (B, K, 2 heads)
            weights = torch.softmax(scores * 50, dim=1)[:, None]  # (B, q=1, K, H)
            return x.mean(dim=1), weights

    model = nn.Sequential()
    model.add_module("ego", EgoAttention())
    x = torch.from_numpy(tokens(np.random.default_rng(1).uniform(0.1, 1.0, (10, V))))
    with TorchAttentionRecorder(model, names=["ego"], weights=lambda m, a, k, out: out[1],
                                layout="b q k h") as recorder:
        model(x)
    attention = recorder.attention(query=0, entities=slice(1, None))
    assert attention.shape == (10, 2, V) and (attention[:, 0].argmax(axis=1) == (-x[:, 1:, 1]).argmax(dim=1).numpy()
                                              ).all()


def test_recording_refuses_and_warns_with_the_reason() -> None:
    from hsi_stats._validation import HSIDataError, OptionError

    with pytest.raises(OptionError, match=r"holds no nn\.MultiheadAttention"):
        TorchAttentionRecorder(nn.Linear(2, 2))
    with pytest.raises(OptionError, match=r"`names` must name submodules of the module, but \['nope'\]"):
        TorchAttentionRecorder(_encoder_layer(), names=["nope"])
    with pytest.raises(OptionError, match=r"\['linear1'\] are not nn.MultiheadAttention: pass `weights`"):
        TorchAttentionRecorder(_encoder_layer(), names=["linear1"])
    layer = _encoder_layer().train()
    with pytest.warns(RecordingWarning, match=r"training mode with dropout 0\.1"), TorchAttentionRecorder(layer):
        pass
    attention = _mha()
    x = torch.from_numpy(tokens(np.random.default_rng(2).uniform(0.1, 1.0, (4, V))))
    everything_masked = torch.ones(4, 1 + V, dtype=torch.bool)
    with torch.no_grad(), TorchAttentionRecorder(attention) as recorder:
        attention(x, x, x, key_padding_mask=everything_masked)
    with pytest.raises(HSIDataError, match="a query whose keys are all masked comes back NaN"):
        recorder.to_dataset({"d": np.ones((4, V + 1))})
