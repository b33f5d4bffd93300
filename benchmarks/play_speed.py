"""Seconds per lock-step tick of each agent over a batch of mid-game boards, printed as JSON.

    python benchmarks/play_speed.py [--model PATH] [--games 100] [--ticks 5] [--planner-horizon 16 ...]

Isolated boards overstate the planner's cost (in play it reuses its plan; see benchmarks/planner.py).
Closed-loop play costs about ticks x seconds_per_tick for the agent; with the default 1000-step cap
this bounds the play part of `snake-eqm evaluate`. Without --model a random-init cpu_small model
is timed (same cost as a trained one of that config). Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from snake_world_eqm.provenance import with_provenance


def midgame_boards(count: int, size: int, seed: int, ticks: int = 60) -> np.ndarray:
    """Boards after `ticks` expert moves from seeded starts (longer snakes than a fresh game)."""
    from snake_world_eqm.evaluation.closed_loop import initial_boards
    from snake_world_eqm.game import batched_step, expert_actions

    rng = np.random.default_rng(seed)
    boards = initial_boards(count, size, size, seed)
    for _ in range(ticks):
        candidate, _, _, terminated = batched_step(boards, expert_actions(boards), rng)
        boards[~terminated] = candidate[~terminated]
    return boards


def main(argv: list[str] | None = None) -> int:
    from snake_world_eqm.agents.flags import add_planner_arguments
    from snake_world_eqm.agents.planner import planner_options_from_args

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None)
    parser.add_argument("--board-size", type=int, default=10)
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--ticks", type=int, default=5)
    add_planner_arguments(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    planner_options = planner_options_from_args(args)
    torch.set_flush_denormal(True)  # as the evaluate CLI does: subnormals slow CPU convs
    from snake_world_eqm.agents import BaselineAgent, EqMAgent, ExpertAgent, PlannerAgent
    from snake_world_eqm.configuration_snake_world_eqm import SnakePolicyBaselineConfig, SnakeWorldEqMConfig
    from snake_world_eqm.modeling_snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM

    if args.model:
        model = SnakeWorldEqM.from_pretrained(args.model).eval()
    else:
        config = SnakeWorldEqMConfig.cpu_small(board_height=args.board_size, board_width=args.board_size)
        model = SnakeWorldEqM(config).eval()
    size = model.config.board_height
    baseline = SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(model.config)).eval()
    boards = midgame_boards(args.games, size, seed=0)
    agents = {"expert": ExpertAgent(), "baseline": BaselineAgent(baseline), "eqm": EqMAgent(model),
              "planner": PlannerAgent(model, **planner_options)}
    result = {"games": args.games, "board_size": size, "ticks": args.ticks, "torch_threads": torch.get_num_threads(),
              "planner_options": planner_options, "seconds_per_tick": {}}
    for name, agent in agents.items():
        agent.act_batch(boards[:2])  # warm-up
        started = time.perf_counter()
        for _ in range(args.ticks):
            agent.act_batch(boards)
        result["seconds_per_tick"][name] = round((time.perf_counter() - started) / args.ticks, 4)
    result["seconds_per_1000_ticks"] = {k: round(v * 1000, 1) for k, v in result["seconds_per_tick"].items()}
    print(json.dumps(with_provenance(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
