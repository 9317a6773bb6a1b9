"""Record the per-head attention of a trained ego-attention PPO policy in highway-env with hsi_stats.

    python record.py --model ppo_seed0.zip --episodes 40 --out seed0_40ep.npz

The policy drives greedily (``deterministic=True``) for ``--episodes`` episodes reset with seeds ``--seed``,
``--seed + 1``, ...; at every step :func:`hsi_stats.capture.highway.record_episodes` records the ego's attention
over observation rows 1..7 (one scenario per step, one group per episode, 4 heads, 7 vehicle slots) with the
driving features of the vehicles in those rows, and the data set is written with :func:`hsi_stats.write_npz`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch
from policy import make_env
from stable_baselines3 import PPO

import hsi_stats
from hsi_stats.capture.highway import record_episodes


def load_policy(path: Path) -> tuple[PPO, torch.nn.MultiheadAttention]:
    """The saved PPO model and the attention module its greedy action runs.

    SB3's ``MlpPolicy`` shares one features extractor between actor and critic by default
    (``share_features_extractor=True``); ``model.predict`` then runs it once per observation. The recorder hooks
    this extractor's ``nn.MultiheadAttention``; the check below makes sure no second extractor exists.
    """
    model = PPO.load(path, device="cpu")
    policy = model.policy
    if not policy.share_features_extractor or policy.pi_features_extractor is not policy.vf_features_extractor:
        raise RuntimeError("this script expects one features extractor shared by actor and critic")
    policy.set_training_mode(False)                     # eval mode (the attention has no dropout anyway)
    return model, policy.features_extractor.attention


def make_act(model: PPO) -> Any:
    """``act(obs) -> action``: the greedy action of the policy for one observation.

    ``model.predict`` adds a batch axis of one to an (8, 5) observation and runs the extractor once, under
    ``torch.no_grad()`` (``ActorCriticPolicy.predict`` -> ``get_distribution`` -> one ``extract_features``); the
    recorder checks at every step that the attention ran exactly once.
    """
    def act(obs: np.ndarray) -> int:
        action, _ = model.predict(obs, deterministic=True)
        return int(action)
    return act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model saved by train.py")
    parser.add_argument("--episodes", type=int, default=40, help="episodes to record (one group each)")
    parser.add_argument("--seed", type=int, default=1000, help="reset seed of the first episode")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="steps per episode at most (default: until the episode ends)")
    parser.add_argument("--out", type=Path, required=True, help="the .npz data set to write")
    args = parser.parse_args()

    torch.set_num_threads(1)
    model, module = load_policy(args.model)
    env = make_env()
    dataset = record_episodes(env, make_act(model), module, n_episodes=args.episodes, seed=args.seed,
                              step=int(model.num_timesteps), max_steps=args.max_steps, progress=True)
    env.close()

    args.out.parent.mkdir(parents=True, exist_ok=True)
    hsi_stats.write_npz(dataset, args.out)
    print(f"wrote {args.out}: {dataset}")


if __name__ == "__main__":
    main()
