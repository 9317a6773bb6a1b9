"""Closed-loop ablation: paired episodes with and without each head (``capture.highway.ablation_episodes``) and
their tests (``ablation.episode_effects``, ``inference.episodes.paired_sign_flip``).

- In a real highway-env environment, with a small ego-attention policy, the returns and crashes equal a paired
  roll-out loop written here (the same seeds, the same ``act``, the head's weights zeroed by hand), exactly.
- The sign-flip p-values equal an enumeration of every sign pattern written here, and the step-down max-T
  adjustment equals Westfall and Young's algorithm written as a loop; random patterns agree within Monte-Carlo
  error. Under a true null the adjusted tests reject at most at the nominal rate (simulation).
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pandas as pd
import pytest

from hsi_stats._validation import HSIDataError
from hsi_stats.ablation import EPISODE_COLUMNS, episode_effects
from hsi_stats.inference.episodes import paired_sign_flip


# ------------------------------------------------------------------------------------------------ the tests
def _exact_by_enumeration(d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw and step-down max-T p-values over all 2^E sign patterns, as loops."""
    n_episodes, m = d.shape
    observed = np.abs(d.mean(axis=0))
    patterns = [np.array(signs) for signs in itertools.product([1.0, -1.0], repeat=n_episodes)]
    null = np.array([[abs(float(signs @ d[:, j])) / n_episodes for j in range(m)] for signs in patterns])
    reach = null >= observed - 1e-9 * np.abs(observed)
    raw = reach.mean(axis=0)
    order = list(np.argsort(-observed, kind="stable"))
    adjusted = np.zeros(m)
    running = 0.0
    for position, j in enumerate(order):  # Westfall and Young: the maximum over the hypotheses not yet rejected
        rest = order[position:]
        p = float(np.mean([null[b, rest].max() >= observed[j] - 1e-9 * abs(observed[j])
                           for b in range(len(patterns))]))
        running = max(running, p)
        adjusted[j] = running
    return raw, adjusted


def test_exact_sign_flip_p_values_equal_an_enumeration() -> None:
    rng = np.random.default_rng(0)
    d = np.column_stack([rng.integers(-3, 6, 9), rng.integers(-4, 5, 9), rng.integers(-1, 2, 9), np.zeros(9)])
    found = paired_sign_flip(d.astype(float), n_resamples=9999, confidence_level=0.95, rng=np.random.default_rng(1))
    raw, adjusted = _exact_by_enumeration(d.astype(float))
    assert found.exact and found.n_resamples == 2**9
    np.testing.assert_allclose(found.p_value, raw, rtol=0, atol=1e-15)
    np.testing.assert_allclose(found.p_adjusted, adjusted, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(found.mean, d.mean(axis=0))
    assert found.p_value[3] == 1.0 and found.ci_low[3] == found.ci_high[3] == 0.0


def test_random_sign_patterns_agree_with_the_enumeration() -> None:
    rng = np.random.default_rng(2)
    d = np.column_stack([rng.normal(0.8, 2.0, 14), rng.normal(0.0, 1.0, 14)])
    raw, adjusted = _exact_by_enumeration(d)
    found = paired_sign_flip(d, n_resamples=9999, confidence_level=0.95, rng=np.random.default_rng(3))
    assert not found.exact
    error = 4 * np.sqrt(raw * (1 - raw) / 9999) + 2 / 10000  # four standard errors, and the +1 of (1 + k)/(1 + B)
    assert np.all(np.abs(found.p_value - raw) <= error)
    assert np.all(np.abs(found.p_adjusted - adjusted) <= 4 * np.sqrt(adjusted * (1 - adjusted) / 9999) + 2 / 10000)


def test_under_a_true_null_the_adjusted_tests_keep_their_error_rate() -> None:
    rng = np.random.default_rng(4)
    rejections = 0
    n_runs = 400
    for _ in range(n_runs):  # three heads with no effect, returns heavy-tailed, differences symmetric
        d = rng.standard_t(3, (20, 3)) * np.array([1.0, 3.0, 0.5])
        found = paired_sign_flip(d, n_resamples=499, confidence_level=0.95, rng=rng)
        rejections += bool((found.p_adjusted < 0.05).any())
    # family-wise error rate 0.05: at most 0.05 + 3 standard errors (0.033) over 400 runs
    assert rejections / n_runs <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_runs)


def test_episode_effects_tables_the_paired_differences() -> None:
    rng = np.random.default_rng(5)
    returns = pd.DataFrame({"none": rng.normal(20, 4, 12), "a:h0": rng.normal(15, 4, 12),
                            "a:h1": rng.normal(20, 4, 12)})
    crashes = pd.DataFrame({"none": rng.random(12) < 0.2, "a:h0": rng.random(12) < 0.6, "a:h1": rng.random(12) < 0.2})
    found = episode_effects(returns, crashes, n_resamples=999, rng=6, mode="mean")
    table = found.table.set_index("head")
    assert list(found.table.columns) == list(EPISODE_COLUMNS) and list(table.index) == ["none", "a:h0", "a:h1"]
    assert table.loc["none", "return_mean"] == returns["none"].mean() and np.isnan(table.loc["none", "return_delta"])
    for head in ("a:h0", "a:h1"):
        assert table.loc[head, "return_delta"] == pytest.approx((returns[head] - returns["none"]).mean(), rel=1e-12)
        assert table.loc[head, "crash_delta"] == pytest.approx(
            (crashes[head].astype(float) - crashes["none"].astype(float)).mean(), rel=1e-12)
        assert table.loc[head, "crash_rate"] == crashes[head].mean()
    assert found.mode == "mean" and found.n_resamples == 999 and found.confidence_level == 0.95
    with pytest.raises(HSIDataError, match="'none' \\(the intact policy\\) among them"):
        episode_effects(returns.drop(columns="none"), crashes.drop(columns="none"))
    with pytest.raises(HSIDataError, match="at least 2 episodes"):
        episode_effects(returns.iloc[:1], crashes.iloc[:1])


# ------------------------------------------------------------------------------------------------ highway-env
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
