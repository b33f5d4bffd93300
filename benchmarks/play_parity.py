"""Per-game apples of the shipped 10x10 EqM agent and planner on fixed seeds, as JSON: run it before and after
a change that should not change play (a refactor), and compare the two outputs game by game.

    python benchmarks/play_parity.py --games 4 --max-steps 600 --output before.json
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--games", type=int, default=4, help="games per start kind (3-cell and 1-cell starts)")
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--output", default=None, help="also write the JSON here (with provenance)")
    args = parser.parse_args(argv)

    import torch

    from snake_world_eqm.agents import make_agent
    from snake_world_eqm.evaluation.closed_loop import play_both_starts
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import with_provenance, write_json
    from snake_world_eqm.shipped import PRETRAINED_10X10

    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    model = load_model(PRETRAINED_10X10)
    result = {"games_per_start": args.games, "max_steps": args.max_steps, "seed": args.seed}
    for name in ("eqm", "planner"):
        summary = play_both_starts(make_agent(name, model), 10, 10, num_games=args.games, seed=args.seed,
                                   max_steps=args.max_steps, progress=False)
        result[name] = {"apples_per_game": [int(a) for a in summary["apples_per_game"]],
                        "end_cause_per_game": list(summary["end_cause_per_game"]),
                        "mean_apples": summary["mean_apples"]}
    if args.output:
        write_json(args.output, result)
    print(json.dumps(with_provenance(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
