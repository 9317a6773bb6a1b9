"""Closed-loop ablation in a real highway-env environment (``capture.highway.ablation_episodes``).

With a small ego-attention policy, the returns and crashes equal a paired roll-out loop written here (the same
seeds, the same ``act``, the head's weights zeroed by hand), exactly.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the torch extra (hsi_stats[torch]) is not installed")
gym = pytest.importorskip("gymnasium", reason="the highway extra (hsi_stats[highway]) is not installed")
highway = pytest.importorskip("hsi_stats.capture.highway", reason="the highway extra is not installed")
nn = torch.nn
SEED, N_EPISODES = 10, 3


class EgoAttention(nn.Module):
    """A small ego-attention policy on highway-env's kinematics: the ego row queries every row; 5 action scores."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Linear(5, 8)
        self.attention = nn.MultiheadAttention(8, 2, batch_first=True)
        self.scores = nn.Linear(8, 5)
        with torch.no_grad():
            self.scores.weight.mul_(20.0)  # decisive enough that removing a head changes actions
        self.eval()

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = self.embed(obs)
        attended, _ = self.attention(x[:, :1], x, x, need_weights=False)
        return self.scores(attended[:, 0])


def _act(model: EgoAttention):  # type: ignore[no-untyped-def]
    def act(obs: np.ndarray) -> int:
        with torch.no_grad():
            return int(model(torch.as_tensor(obs, dtype=torch.float32)[None]).argmax())
    return act


def _env():  # type: ignore[no-untyped-def]
    return gym.make("highway-fast-v0", render_mode=None, config={"duration": 15, "vehicles_count": 15})


def _by_hand(model: EgoAttention) -> tuple[list[float], list[bool]]:
    env, act = _env(), _act(model)
    returns, crashes = [], []
    for e in range(N_EPISODES):
        obs, _ = env.reset(seed=SEED + e)
        total, crashed, done = 0.0, False, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(act(obs))
            total += reward
            crashed = crashed or bool(info["crashed"])
            done = terminated or truncated
        returns.append(total)
        crashes.append(crashed)
    env.close()
    return returns, crashes


def test_closed_loop_episodes_equal_a_paired_roll_out_loop() -> None:
    model = EgoAttention()
    found = highway.ablation_episodes(_env(), _act(model), model, ["attention:h0", "attention:h1"], N_EPISODES,
                                      seed=SEED, n_resamples=999, rng=0)
    expected: dict[str, tuple[list[float], list[bool]]] = {"none": _by_hand(model)}
    for k in (0, 1):
        ablated = copy.deepcopy(model)
        with torch.no_grad():
            ablated.attention.out_proj.weight[:, 4 * k:4 * k + 4] = 0.0
        expected[f"attention:h{k}"] = _by_hand(ablated)
    assert list(found.returns.columns) == ["none", "attention:h0", "attention:h1"]
    assert list(found.returns.index) == [SEED + e for e in range(N_EPISODES)]
    for name, (returns, crashes) in expected.items():
        assert found.returns[name].tolist() == returns, name
        assert found.crashes[name].tolist() == crashes, name
    assert any(expected[f"attention:h{k}"][0] != expected["none"][0] for k in (0, 1))  # a head mattered
    table = found.table.set_index("head")
    for name in ("attention:h0", "attention:h1"):
        difference = np.array(expected[name][0]) - np.array(expected["none"][0])
        assert table.loc[name, "return_delta"] == pytest.approx(difference.mean(), rel=1e-12, abs=1e-12)
    _assert_model_intact(model)


def _assert_model_intact(model: EgoAttention) -> None:
    fresh = EgoAttention()
    for (name, tensor), (_, original) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert torch.equal(tensor, original), name
