"""Does the trained policy use its heads? Ablate each head of an ego-attention PPO policy, open and closed loop.

    python ablate.py --model ppo_seed0.zip --episodes 40 --closed-episodes 40 --out ablation_seed0

1. The policy drives greedily for ``--episodes`` episodes (seeds ``--seed``, ``--seed + 1``, ...) while
   :func:`hsi_stats.capture.highway.record_episodes` records its attention; the observations it acted on are kept.
2. :func:`hsi_stats.analyze` labels the heads.
3. Open loop (:func:`hsi_stats.ablation_effects`): the action probabilities on those observations with each head's
   output removed (``--mode zero``, or replaced by its mean over them with ``--mode mean``), against the intact
   policy: the share of greedy actions that change and the total-variation distance, with intervals from
   resampling episodes, and for each validated head the comparison where its label's target is salient.
4. Closed loop (:func:`hsi_stats.capture.highway.ablation_episodes`): ``--closed-episodes`` episodes (seeds from
   ``--closed-seed``) driven by the intact policy and by each ablated one, paired by seed: the change of the
   return and of the crash rate, with sign-flip tests adjusted over the heads.
5. The report, the tables and the registry with every head's ``ablation`` block go to ``--out``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from policy import make_env
from record import load_policy, make_act

import hsi_stats
from hsi_stats.capture.highway import ablation_episodes, record_episodes
from hsi_stats.report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a model saved by train.py")
    parser.add_argument("--episodes", type=int, default=40, help="recorded episodes (open loop)")
    parser.add_argument("--seed", type=int, default=1000, help="reset seed of the first recorded episode")
    parser.add_argument("--closed-episodes", type=int, default=40, help="episodes per condition (closed loop)")
    parser.add_argument("--closed-seed", type=int, default=2000, help="reset seed of the first closed-loop episode")
    parser.add_argument("--mode", choices=("zero", "mean"), default="zero", help="how a head is removed")
    parser.add_argument("--max-steps", type=int, default=None, help="steps per episode at most")
    parser.add_argument("--out", type=Path, required=True, help="the report folder to write")
    args = parser.parse_args()

    torch.set_num_threads(1)
    model, module = load_policy(args.model)
    greedy, seen = make_act(model), []

    def act(obs: np.ndarray) -> int:
        seen.append(np.asarray(obs, dtype=np.float32))
        return greedy(obs)

    def predict(observations: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            distribution = model.policy.get_distribution(torch.as_tensor(observations))
            return distribution.distribution.probs.numpy()

    env = make_env()
    dataset = record_episodes(env, act, module, n_episodes=args.episodes, seed=args.seed,
                              step=int(model.num_timesteps), max_steps=args.max_steps, progress=True)
    result = hsi_stats.analyze(dataset, rng=0)
    print(result.summary())
    observations = np.stack(seen)  # one per recorded step, in the data set's order
    effects = hsi_stats.ablation_effects(predict, observations, module, groups=dataset.groups, mode=args.mode,
                                         result=result, features=dataset.features, mask=dataset.mask, rng=1)
    heads = [str(head) for head in result.heads["head"]]
    episodes = ablation_episodes(env, greedy, module, heads, args.closed_episodes, seed=args.closed_seed,
                                 mode=args.mode, max_steps=args.max_steps, rng=2, progress=True)
    env.close()
    with np.printoptions(precision=3, suppress=True):
        print(effects.table.to_string(index=False))
        if effects.targeted is not None:
            print(effects.targeted.to_string(index=False))
        print(episodes.table.to_string(index=False))
    files = write_report(result, args.out, ablation=[effects, episodes])
    print(f"wrote {len(files)} files to {args.out}")


if __name__ == "__main__":
    main()
