"""Where the EqM agent's descent starts: the origin against EqM's noise, measured two ways, as JSON.

    python benchmarks/init_scale.py --dataset runs/dagger_route/round-3/data --output docs/results/init_scale_10x10.json

1. Held-out states: how often each start leaves the teacher's move (the dataset's `action` column) on the
   rows of one split, and how often its move loses the game at once (`terminated_per_action`).
2. Closed loop: seeded games (not the evaluation seeds 1000..: default 2000..) from both start kinds, same
   protocol as `snake-eqm evaluate`, for each init scale.

init_scale 0 starts every descent at the origin (the noise's mean); 1 is EqM's N(0, I) start; `votesK`
averages the action blocks of K draws from noise (init_scale 1).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def held_out(model, dataset: str, split: str, scales: list[float], votes: list[int], max_rows: int) -> dict:
    import numpy as np

    from snake_world_eqm.agents import EqMAgent
    from snake_world_eqm.data.loading import load_snake_dataset

    rows = load_snake_dataset(dataset)[split].with_format("numpy")
    rows = rows.select(range(min(max_rows, len(rows))))[:]
    boards, teacher, fatal = rows["state"].astype(np.int8), rows["action"], rows["terminated_per_action"]
    long_snake = (boards >= 2).sum(axis=(1, 2)) >= 30  # the late game, where imitation broke before
    agents = {f"init_scale={scale:g}": EqMAgent(model, init_scale=scale) for scale in scales}
    agents.update({f"votes{k}": EqMAgent(model, votes=k, init_scale=1.0) for k in votes})
    result = {"dataset": dataset, "split": split, "rows": int(len(boards)), "rows_snake_30_plus": int(long_snake.sum())}
    for name, agent in agents.items():
        started = time.process_time()
        actions = np.concatenate([agent.act_batch(boards[i:i + 1024]) for i in range(0, len(boards), 1024)])
        leaves = actions != teacher
        result[name] = {
            "leaves_teacher": round(float(leaves.mean()), 5),
            "leaves_teacher_snake_30_plus": round(float(leaves[long_snake].mean()), 5) if long_snake.any() else None,
            "fatal_moves": int(fatal[np.arange(len(actions)), actions].sum()),
            "cpu_seconds": round(time.process_time() - started, 1),
        }
        print(name, result[name], flush=True)
    return result


def closed_loop(model, scales: list[float], games: int, seed: int) -> dict:
    from snake_world_eqm.agents import EqMAgent
    from snake_world_eqm.evaluation.closed_loop import play_both_starts

    result = {"games_per_start": games, "seeds": [seed, seed + games - 1]}
    keep = ("mean_apples", "mean_apples_ci95", "wins", "deaths", "stalls", "loops", "capped")
    for scale in scales:
        summary = play_both_starts(EqMAgent(model, init_scale=scale), model.config.board_height,
                                   model.config.board_width, games, seed, progress=False)
        result[f"init_scale={scale:g}"] = {key: summary[key] for key in keep}
        print(scale, result[f"init_scale={scale:g}"], flush=True)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or repo id (default: the shipped 10x10 checkpoint)")
    parser.add_argument("--dataset", required=True, help="dataset whose `action` column is the teacher's move")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-rows", type=int, default=20_000)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0])
    parser.add_argument("--votes", type=int, nargs="*", default=[4])
    parser.add_argument("--games", type=int, default=50, help="closed-loop games per start kind (0: skip)")
    parser.add_argument("--play-seed", type=int, default=2000)
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    import torch

    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import write_json
    from snake_world_eqm.shipped import PRETRAINED_10X10

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = load_model(args.model or PRETRAINED_10X10)
    result = {"model": str(args.model or "shipped snake-eqm-10x10"),
              "held_out": held_out(model, args.dataset, args.split, args.scales, args.votes, args.max_rows)}
    if args.games:
        result["closed_loop"] = closed_loop(model, args.scales, args.games, args.play_seed)
    write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
