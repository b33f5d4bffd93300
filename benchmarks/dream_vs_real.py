"""Dream vs real on one board size (issue 36, item 4), as JSON: each agent plays the same starts in the real game
and inside the model (snake_world_eqm.evaluation.dream_vs_real); apples, ends and steps side by side.

    python benchmarks/dream_vs_real.py --model snake_world_eqm/checkpoints/snake-eqm-10x10 --games 8 \
        --max-steps 1000 --output docs/results/dream_vs_real_10x10.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--size", default="10x10")
    parser.add_argument("--agents", nargs="+", default=["expert-route", "eqm", "planner", "random"])
    parser.add_argument("--games", type=int, default=8)
    parser.add_argument("--max-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=3800)
    parser.add_argument("--dreams", nargs="+", default=["model", "decoder:1"], help="food modes of the dream: model | decoder:T, with @K for K-draw snake votes")
    parser.add_argument("--init-scale", type=float, default=0.0,
                        help="start of each dream draw: 0 the origin (the dream env's default), 1 EqM's noise "
                             "(the setting of results before stop 27)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    import torch

    from snake_world_eqm.agents import make_agent
    from snake_world_eqm.evaluation.dream_vs_real import play_dream, play_real
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import write_json

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = load_model(args.model).eval()
    height, width = (int(v) for v in args.size.lower().split("x"))
    result = {"model": args.model, "size": args.size, "games": args.games, "max_steps": args.max_steps,
              "seed": args.seed, "init_scale": args.init_scale, "load_before": os.getloadavg(), "agents": {}}
    for name in args.agents:
        entry = {}
        started = time.perf_counter()
        entry["real"] = play_real(make_agent(name, model, seed=args.seed), height, width, args.games, args.seed,
                                  args.max_steps)
        entry["real"]["seconds"] = round(time.perf_counter() - started, 1)
        for dream in args.dreams:
            spec, _, votes = dream.partition("@")
            food, _, temperature = spec.partition(":")
            started = time.perf_counter()
            entry[f"dream:{dream}"] = play_dream(make_agent(name, model, seed=args.seed), model, height, width,
                                                 args.games, args.seed, args.max_steps, food=food,
                                                 init_scale=args.init_scale,
                                                 food_temperature=float(temperature or 1.0),
                                                 votes=int(votes or 1))
            entry[f"dream:{dream}"]["seconds"] = round(time.perf_counter() - started, 1)
        result["agents"][name] = entry
        print(name, {world: (w["mean_apples"], w["mean_steps"], w["ends"]) for world, w in entry.items()}, flush=True)
    result["load_after"] = os.getloadavg()
    write_json(args.output, result, command=["python", "benchmarks/dream_vs_real.py", *(argv or sys.argv[1:])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
