"""Food is drawn, not guessed (issue 36, item 3): where held-action draws from noise put the new food, as JSON.

    python benchmarks/food_draws.py --model snake_world_eqm/checkpoints/snake-eqm-10x10 --sizes 10x10 \
        --output docs/results/food_draws_10x10.json

Eating positions come from route-expert games (seeded); each is drawn `--draws` times per food mode
(snake_world_eqm.evaluation.food_draws). Modes: `model` (the decoder's argmax, as trained), `decoder:T` (the new
food drawn from the decoder's FOOD probabilities at temperature T; `inf` is uniform over the cells the model
leaves empty, i.e. the rules' prior, not the model's belief); a `@K` suffix keeps the majority snake of K draws.
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
    parser.add_argument("--sizes", nargs="+", default=["10x10"])
    parser.add_argument("--positions", type=int, default=20)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--modes", nargs="+", default=["model", "decoder:1", "decoder:3", "decoder:10", "decoder:inf"])
    parser.add_argument("--games", type=int, default=4, help="route-expert games the positions are taken from")
    parser.add_argument("--seed", type=int, default=3700)
    parser.add_argument("--init-scale", type=float, default=1.0,
                        help="start of each held-action descent: 1 is EqM's noise, 0 the origin (as the dream's default)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args(argv)

    import torch

    from snake_world_eqm.agents import make_agent
    from snake_world_eqm.evaluation.food_draws import eating_positions, measure_food_draws
    from snake_world_eqm.evaluation.open_loop import record_games
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import write_json

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = load_model(args.model).eval()
    result = {"model": args.model, "positions": args.positions, "draws": args.draws, "seed": args.seed,
              "init_scale": args.init_scale, "load_before": os.getloadavg(), "sizes": []}
    for size in args.sizes:
        height, width = (int(v) for v in size.lower().split("x"))
        games = record_games(make_agent("expert-route"), height, width, args.games, seed=args.seed)
        boards, actions, successors = eating_positions(games, args.positions, seed=args.seed)
        entry = {"size": size, "modes": {}}
        for mode in args.modes:
            spec, _, votes = mode.partition("@")
            food, _, temperature = spec.partition(":")
            started = time.perf_counter()
            measured = measure_food_draws(model, boards, actions, successors, draws=args.draws, food=food,
                                          seed=args.seed, init_scale=args.init_scale, food_temperature=float(temperature or 1.0),
                                          votes=int(votes or 1))
            measured["seconds"] = round(time.perf_counter() - started, 1)
            measured["tv_ratio_to_uniform_same_draws"] = (measured["mean_tv"] / measured["mean_tv_uniform_same_draws"]
                                                          if measured["mean_tv_uniform_same_draws"] else None)
            measured["tv_ratio_to_uniform_all_draws"] = measured["mean_tv"] / measured["mean_tv_uniform_all_draws"]
            entry["modes"][mode] = measured
            print(size, mode, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in measured.items()
                               if k.startswith(("fraction", "mean", "tv_ratio"))}, flush=True)
        result["sizes"].append(entry)
    result["load_after"] = os.getloadavg()
    write_json(args.output, result, command=["python", "benchmarks/food_draws.py", *(argv or sys.argv[1:])])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
