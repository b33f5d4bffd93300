"""Closed-loop play of the planner on the evaluation seeds from one start kind, written as JSON with provenance.

    python benchmarks/planner_play.py --games 100 --start-length 3 --output docs/results/play_planner_start3.json

Same protocol as `snake-eqm evaluate` (seeds 1000.., cap 20 x cells, stall limit 2 x cells), one start kind
per process so the two kinds can run side by side. Seed ranges can run as separate chunks and be pooled:

    python benchmarks/planner_play.py --pool A.json B.json --output docs/results/play_planner_start3.json
 Records the play summary (mean apples with its 95%
bootstrap interval, wins, deaths, stalls, loops, caps), the planner's knobs and cost counters (field
evaluations and milliseconds per decision), and the wall and CPU time of the whole run.
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model folder or repo id (default: the shipped 10x10 checkpoint)")
    parser.add_argument("--games", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1000, help="game i uses seed SEED + i")
    parser.add_argument("--start-length", type=int, default=3, choices=(1, 3))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None, help="step cap (default: 20 x cells)")
    parser.add_argument("--output", required=True, help="JSON file to write")
    parser.add_argument("--pool", nargs="+", default=None, metavar="JSON",
                        help="instead of playing, pool these runs (same start kind and cap) into one summary")
    args = parser.parse_args(argv)
    if args.pool:
        return pool(args.pool, args.output)

    import torch

    from snake_world_eqm.agents import PlannerAgent
    from snake_world_eqm.evaluation.closed_loop import play_games
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import write_json
    from snake_world_eqm.shipped import PRETRAINED_10X10

    torch.set_flush_denormal(True)
    torch.set_num_threads(args.threads)
    model = load_model(args.model or PRETRAINED_10X10)
    agent = PlannerAgent(model)
    started, started_cpu = time.perf_counter(), time.process_time()
    summary = play_games(agent, model.config.board_height, model.config.board_width, args.games, args.seed,
                         max_steps=args.max_steps, start_length=args.start_length, progress=False)
    summary.update(model=str(args.model or "shipped snake-eqm-10x10"), threads=args.threads,
                   board_cells=model.config.board_height * model.config.board_width,
                   wall_seconds=round(time.perf_counter() - started, 1),
                   cpu_seconds=round(time.process_time() - started_cpu, 1),
                   planner_config=vars(agent.config), cost=agent.stats.as_dict())
    write_json(args.output, summary)
    print(f"{args.output}: mean apples {summary['mean_apples']:.2f} {summary['mean_apples_ci95']}, "
          f"wins {summary['wins']}, deaths {summary['deaths']}, stalls {summary['stalls']}, "
          f"loops {summary['loops']}, caps {summary['capped']}")
    return 0


def pool(paths: list[str], output: str) -> int:
    """One summary over chunks of games (recomputed from their per-game records), their costs added up."""
    import json

    from snake_world_eqm.evaluation.closed_loop import pool_summaries
    from snake_world_eqm.provenance import write_json

    parts = [json.loads(open(path).read()) for path in paths]
    kinds = {(part["start_length"], part["max_steps"]) for part in parts}
    if len(kinds) != 1:
        raise SystemExit(f"--pool: runs differ in start length or cap: {sorted(kinds)}")
    summary = pool_summaries(parts, parts[0]["board_cells"] if "board_cells" in parts[0] else 100)
    decisions = sum(part["cost"]["decisions"] for part in parts)
    totals = {key: sum(part["cost"][key] for part in parts)
              for key in ("decisions", "searches", "field_evaluations", "seconds", "cpu_seconds")}
    summary.update(start_length=parts[0]["start_length"], seeds=[part["seeds"] for part in parts],
                   planner_config=parts[0]["planner_config"],
                   wall_seconds=round(sum(part["wall_seconds"] for part in parts), 1),
                   cpu_seconds=round(sum(part["cpu_seconds"] for part in parts), 1),
                   cost={**totals, "field_evaluations_per_decision": totals["field_evaluations"] / decisions,
                         "ms_per_decision": 1000 * totals["seconds"] / decisions,
                         "cpu_ms_per_decision": 1000 * totals["cpu_seconds"] / decisions,
                         "search_rate": totals["searches"] / decisions},
                   parts={path: part["provenance"] for path, part in zip(paths, parts)})
    write_json(output, summary)
    print(f"{output}: {summary['games']} games, mean apples {summary['mean_apples']:.2f} {summary['mean_apples_ci95']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
