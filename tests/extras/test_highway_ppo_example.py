"""The ego-attention PPO example (``examples/highway_ppo``) runs: a short training, a short recording, an analysis,
and the ablation of every head, open and closed loop, into a report.

The scripts are run as a reader runs them, each in its own process from its folder's files: ``train.py`` for
1,024 steps (two rollouts), ``record.py`` for two episodes of at most eight steps with the recorder checking at
every step that the policy's attention ran once on the observation it acted on. The data set it writes holds the
policy's four heads over seven observed vehicles and goes through :func:`hsi_stats.analyze`, joint model included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from hsi_stats import analyze, load_npz

pytest.importorskip("stable_baselines3", reason="the example needs stable-baselines3 (installed by the test extra)")
pytest.importorskip("highway_env", reason="the example needs highway-env (installed by the test extra)")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "highway_ppo"


@pytest.mark.slow  # a training run of about 20 s
def test_the_example_trains_records_and_is_analysed(tmp_path: Path) -> None:
    model, data = tmp_path / "ppo.zip", tmp_path / "episodes.npz"
    for script, arguments in (("train.py", ["--seed", "0", "--steps", "1024", "--out", str(model)]),
                              ("record.py", ["--model", str(model), "--episodes", "2", "--max-steps", "8",
                                             "--out", str(data)])):
        run = subprocess.run([sys.executable, str(EXAMPLE / script), *arguments], cwd=EXAMPLE, capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
    dataset = load_npz(data)
    assert (dataset.n_heads, dataset.n_slots, dataset.n_groups) == (4, 7, 2)
    assert set(dataset.steps.tolist()) == {1024}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two episodes: too few for the inference to reach alpha, on purpose
        result = analyze(dataset, n_resamples=99, rng=0)
    assert list(result.heads["head"]) == [f"module:h{k}" for k in range(4)]
    assert result.joint is not None and set(result.joint["head"]) == set(result.heads["head"])
    report = tmp_path / "ablation"
    run = subprocess.run([sys.executable, str(EXAMPLE / "ablate.py"), "--model", str(model), "--episodes", "2",
                          "--closed-episodes", "2", "--max-steps", "6", "--out", str(report)], cwd=EXAMPLE,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    registry = json.loads((report / "head_functions.json").read_text())
    for h in range(4):  # every head removed, open and closed loop
        block = registry[str(h)]["ablation"]
        assert block["open_loop"]["n_episodes"] == 2 and block["closed_loop"]["n_episodes"] == 2
    assert "What removing each head does" in (report / "report.html").read_text()
