"""A policy trained only in the dream (issue 36, item 4): stable-baselines3's PPO trained for the same number of
steps in the real game and inside the world model, both then played in the REAL game on the same starts, as JSON.

    python benchmarks/dream_ppo.py --model snake_world_eqm/checkpoints/snake-eqm-multisize --size 6x6 \
        --steps 307200 --output docs/results/dream_ppo_6x6.json

Needs the `rl` extra (stable-baselines3). PPO is sb3's own with its defaults (MlpPolicy, 64x64) except the rollout:
`--envs` games x `--n-steps` per update (16 x 128 = sb3's default 2,048 transitions per update, gathered from 16
games at once so that the dream takes one model call per step for all of them; snake_world_eqm.simulator.rl).
Observations are one-hot cells. Training games end at a death, a win, an illegal dreamed board, `--stall`
steps without an apple (default 2 x cells) or `--train-cap` steps. The dream's food is `--food` (default
"decoder": new food drawn from the decoder's probabilities; as trained the model rarely draws any).

Evaluation: each policy plays `--games` real games from the same starts (seeds `--eval-seed` + i), capped at
`--max-steps` (default 20 x cells), with the evaluation's stall rule (2 x cells without an apple), greedy
(sb3's `deterministic=True`) and sampled; and the same games inside the model (the gap between a policy's
dream apples and its real apples is what it exploits in the model).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _summary(result: dict, interval) -> dict:
    apples = result["apples_per_game"]
    return {"mean_apples": result["mean_apples"], "mean_apples_ci95": interval(apples),
            "deaths": result["ends"].get("death", 0), "ends": result["ends"], "mean_steps": result["mean_steps"],
            "mean_final_length": result["mean_final_length"], "apples_per_game": apples,
            "end_per_game": result["end_per_game"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="snake_world_eqm/checkpoints/snake-eqm-multisize")
    parser.add_argument("--size", default="6x6")
    parser.add_argument("--steps", type=int, default=20480, help="env steps of each training")
    parser.add_argument("--worlds", nargs="+", default=["real", "dream"], choices=["real", "dream"])
    parser.add_argument("--envs", type=int, default=16)
    parser.add_argument("--n-steps", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--food", default="decoder", choices=["decoder", "model"])
    parser.add_argument("--init-scale", type=float, default=0.0,
                        help="start of each dream draw: 0 the origin (the dream env's default), 1 EqM's noise "
                             "(the setting of results before stop 27)")
    parser.add_argument("--stall", type=int, default=None, help="training: steps without an apple (2 x cells)")
    parser.add_argument("--train-cap", type=int, default=None, help="training: steps per game (20 x cells)")
    parser.add_argument("--games", type=int, default=50)
    parser.add_argument("--eval-seed", type=int, default=5000)
    parser.add_argument("--max-steps", type=int, default=None, help="evaluation cap (20 x cells)")
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    from snake_world_eqm.evaluation.closed_loop import bootstrap_mean_interval
    from snake_world_eqm.evaluation.dream_vs_real import play_dream, play_real
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import with_provenance, write_json
    from snake_world_eqm.simulator.rl import PolicyAgent, SnakeGames, sb3_vec_env

    class Episodes(BaseCallback):
        """End reasons and apples of the training games, from the adapter's infos."""

        def __init__(self):
            super().__init__()
            self.reasons, self.apples = Counter(), []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "terminal_board" in info:
                    self.reasons[info["reason"]] += 1
                    self.apples.append(info["apples"])
            return True

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    height, width = (int(v) for v in args.size.lower().split("x"))
    cells = height * width
    stall, train_cap = args.stall or 2 * cells, args.train_cap or 20 * cells
    max_steps = args.max_steps or 20 * cells
    model = load_model(args.model).eval()
    result = {"model": args.model, "size": args.size, "steps": args.steps, "envs": args.envs,
              "n_steps": args.n_steps, "seed": args.seed, "food": args.food, "init_scale": args.init_scale,
              "train_stall": stall,
              "train_cap": train_cap, "eval_games": args.games, "eval_seed": args.eval_seed,
              "eval_max_steps": max_steps, "eval_stall": 2 * cells, "algorithm": "stable_baselines3.PPO",
              "policy": "MlpPolicy", "observation": "one-hot cells", "worlds": {}}
    policies = {}
    for world in args.worlds:
        games = SnakeGames(args.envs, height, width, world=world, model=model if world == "dream" else None,
                           seed=args.seed, max_steps=train_cap, stall_limit=stall, food=args.food,
                           init_scale=args.init_scale)
        ppo = PPO("MlpPolicy", sb3_vec_env(games), n_steps=args.n_steps, seed=args.seed, device="cpu", verbose=0)
        episodes = Episodes()
        load_before = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        ppo.learn(args.steps, callback=episodes)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        last = episodes.apples[-200:]
        result["worlds"][world] = {"train": {
            "steps": int(ppo.num_timesteps), "wall_seconds": round(wall, 1), "cpu_seconds": round(cpu, 1),
            "steps_per_cpu_second": round(ppo.num_timesteps / cpu, 1), "load_before": load_before,
            "load_after": os.getloadavg(), "episodes": len(episodes.apples), "ends": dict(episodes.reasons),
            "mean_apples_last_200_episodes": float(np.mean(last)) if last else None}}
        policies[world] = ppo
        print(world, json.dumps(result["worlds"][world]["train"]), flush=True)

    for world, ppo in policies.items():
        entry = result["worlds"][world]
        for mode, deterministic in (("greedy", True), ("sampled", False)):
            torch.manual_seed(args.eval_seed)  # sb3 samples actions from torch's global generator
            real = play_real(PolicyAgent(ppo, deterministic), height, width, args.games, args.eval_seed, max_steps)
            torch.manual_seed(args.eval_seed)
            dream = play_dream(PolicyAgent(ppo, deterministic), model, height, width, args.games, args.eval_seed,
                               max_steps, food=args.food, init_scale=args.init_scale)
            entry[f"real_{mode}"] = _summary(real, bootstrap_mean_interval)
            entry[f"dream_{mode}"] = _summary(dream, bootstrap_mean_interval)
        print(world, {key: (value["mean_apples"], value["ends"]) for key, value in entry.items() if key != "train"},
              flush=True)
    if {"real", "dream"} <= policies.keys():
        for mode in ("greedy", "sampled"):
            difference = (np.array(result["worlds"]["real"][f"real_{mode}"]["apples_per_game"])
                          - np.array(result["worlds"]["dream"][f"real_{mode}"]["apples_per_game"]))
            result[f"real_minus_dream_trained_{mode}"] = {"mean": float(difference.mean()),
                                                          "ci95": bootstrap_mean_interval(difference)}
    result["load_after"] = os.getloadavg()
    command = ["python", "benchmarks/dream_ppo.py", *(argv if argv is not None else sys.argv[1:])]
    if args.output:
        write_json(args.output, result, command=command)
    print(json.dumps(with_provenance(result, command=command), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
