"""Train an ego-attention PPO policy in highway-fast-v0 with stable-baselines3.

    python train.py --seed 0 --steps 40000 --out ppo_seed0.zip

Progress (episode return and length averaged over the last episodes, throughput) is printed every rollout by
SB3 (``verbose=1``); the wall-clock training time is printed at the end and written next to the model as
``<out>.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from policy import ENV_CONFIG, ENV_ID, make_env, policy_kwargs
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor

#: PPO's hyper-parameters: those of highway-env's own SB3 PPO example (gamma 0.8: short horizon, the reward is
#: dense), with one environment and rollouts of 512 steps (about 13 episodes of 40 steps).
HYPERPARAMETERS = dict(
    n_steps=512,
    batch_size=64,
    n_epochs=10,
    learning_rate=5e-4,
    gamma=0.8,
    gae_lambda=0.95,
    clip_range=0.2,
    ent_coef=0.0,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0, help="seed of PPO (weights, sampling) and of the env resets")
    parser.add_argument("--steps", type=int, default=40_000, help="environment steps to train for")
    parser.add_argument("--out", type=Path, required=True, help="where to save the model (a .zip)")
    parser.add_argument("--gamma", type=float, default=HYPERPARAMETERS["gamma"],
                        help="discount factor (default %(default)s)")
    args = parser.parse_args()
    hyperparameters = {**HYPERPARAMETERS, "gamma": args.gamma}

    # Small networks on 2 CPU cores: one intra-op thread is as fast and leaves a core to the simulator.
    torch.set_num_threads(1)

    env = Monitor(make_env())        # Monitor: episode returns/lengths for SB3's progress log
    model = PPO("MlpPolicy", env, policy_kwargs=policy_kwargs(), seed=args.seed, device="cpu", verbose=1,
                **hyperparameters)
    print(model.policy, flush=True)

    start = time.perf_counter()
    model.learn(total_timesteps=args.steps, progress_bar=False)
    seconds = time.perf_counter() - start

    args.out.parent.mkdir(parents=True, exist_ok=True)
    model.save(args.out)
    info = dict(seed=args.seed, steps=int(model.num_timesteps), requested_steps=args.steps,
                train_seconds=round(seconds, 1), env_id=ENV_ID, env_config=ENV_CONFIG, ppo=hyperparameters)
    args.out.with_suffix(".json").write_text(json.dumps(info, indent=2))
    print(f"trained seed {args.seed} for {model.num_timesteps} steps in {seconds:.0f} s "
          f"({model.num_timesteps / seconds:.1f} steps/s); saved {args.out}", flush=True)
    env.close()


if __name__ == "__main__":
    main()
