"""Cost of the model-predictive planner per decision, at batch 1 and batched, printed as JSON.

    python benchmarks/planner.py [--model PATH] [--steps 200] [--batch 32] [--threads 1] [--dead-ends 0]
                                 [--only-dead-ends]

Each setting plays real games (closed loop: the planner reuses its plan while the model's next board was
right, so isolated boards would overstate the cost) and reports the planner's own counters: field
evaluations (boards x sampler steps) and milliseconds per decision, searches per decision, samples per
decision. `--gate always` timings show what the risk gate saves. `--dead-ends N` also runs N dead-end
boards (built as in tests/agents/test_planning.py, at the model's board size) for 40 steps with this model.
Numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch


def measure(model, games: int, steps: int, start_length: int, **knobs) -> dict:
    from snake_world_eqm.agents import PlannerAgent
    from snake_world_eqm.evaluation.closed_loop import play_games

    agent = PlannerAgent(model, **knobs)
    height, width = model.config.board_height, model.config.board_width
    started = time.perf_counter()
    summary = play_games(agent, height, width, games, seed=1000, max_steps=steps, progress=False,
                         start_length=start_length)
    stats = agent.stats.as_dict()
    return {"games": games, "steps_cap": steps, "start_length": start_length, "knobs": knobs,
            "wall_seconds": round(time.perf_counter() - started, 2), "mean_apples": summary["mean_apples"],
            **{key: round(value, 3) if isinstance(value, float) else value for key, value in stats.items()}}


def dead_end_survival(model, count: int, steps: int = 40) -> dict:
    from snake_world_eqm.agents import PlannerAgent
    from snake_world_eqm.evaluation.dead_ends import dead_end_boards, survives

    size = model.config.board_height
    boards = dead_end_boards(count, size=size, seed=11, steps=steps)
    agent = PlannerAgent(model)
    started = time.perf_counter()
    survived = survives(boards, agent.act_batch, steps, np.random.default_rng(0))
    return {"boards": int(len(boards)), "steps": steps, "survival_rate": float(survived.mean()),
            "seconds": round(time.perf_counter() - started, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=None, help="model folder (default: the shipped 10x10 checkpoint)")
    parser.add_argument("--steps", type=int, default=200, help="moves per game")
    parser.add_argument("--batch", type=int, default=32, help="games played in lock-step for the batched number")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dead-ends", type=int, default=0)
    parser.add_argument("--only-dead-ends", action="store_true", help="skip the play timings")
    parser.add_argument("--output", default=None, help="also write the JSON (with provenance) to this file")
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    from snake_world_eqm import SnakeWorldEqM
    from snake_world_eqm.shipped import PRETRAINED_10X10

    model = SnakeWorldEqM.from_pretrained(args.model or PRETRAINED_10X10).eval()
    result = {"model": str(args.model or "shipped snake-eqm-10x10"), "threads": args.threads}
    if not args.only_dead_ends:
        result.update(batch_1=measure(model, 1, args.steps, 3), batched=measure(model, args.batch, args.steps, 3),
                      batched_gate_always=measure(model, args.batch, max(args.steps // 4, 1), 3, gate="always"))
    if args.dead_ends:
        result["dead_ends"] = dead_end_survival(model, args.dead_ends)
    from snake_world_eqm.provenance import with_provenance, write_json

    result = with_provenance(result)
    if args.output:
        write_json(args.output, result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
