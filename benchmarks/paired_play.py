"""Two agents' closed-loop play compared game by game (same seeds), with a bootstrap interval, as JSON.

    python benchmarks/paired_play.py --eval docs/results/eval_10x10.json --agent planner --against expert \
        --output docs/results/planner_vs_teacher_10x10.json

Both agents' `play` summaries in the evaluation JSON hold their games in the same order (seeds 1000.. for
each start kind in `start_lengths`), so the per-game difference removes the luck of each seed's food.
Reports the mean difference in apples per start kind and pooled, with its 95% percentile bootstrap
interval over games, and the wins of each.
"""

from __future__ import annotations

import argparse
import json
import sys


def paired_difference(play: dict, agent: str, against: str) -> dict:
    """Per start kind and pooled: mean apples of each, their per-game difference and its interval."""
    import numpy as np

    from snake_world_eqm.evaluation.closed_loop import bootstrap_mean_interval

    for name in (agent, against):
        if name not in play:
            raise SystemExit(f"no play summary for agent {name!r} (have: {', '.join(play)})")
    ours, theirs = play[agent], play[against]
    if ours.get("start_lengths") != theirs.get("start_lengths") or len(ours["apples_per_game"]) != len(
            theirs["apples_per_game"]):
        raise SystemExit(f"{agent} and {against} did not play the same games: start kinds "
                         f"{ours.get('start_lengths')} vs {theirs.get('start_lengths')}, "
                         f"{len(ours['apples_per_game'])} vs {len(theirs['apples_per_game'])} games")
    mine, other = np.asarray(ours["apples_per_game"], float), np.asarray(theirs["apples_per_game"], float)
    causes_mine, causes_other = np.asarray(ours["end_cause_per_game"]), np.asarray(theirs["end_cause_per_game"])
    kinds = ours["start_lengths"]
    per_kind = len(mine) // len(kinds)
    groups = {str(kind): slice(i * per_kind, (i + 1) * per_kind) for i, kind in enumerate(kinds)}
    groups["both"] = slice(0, len(mine))
    result = {}
    for name, rows in groups.items():
        difference = mine[rows] - other[rows]
        result[name] = {"games": int(difference.size), f"{agent}_mean_apples": float(mine[rows].mean()),
                        f"{against}_mean_apples": float(other[rows].mean()),
                        "mean_difference": float(difference.mean()),
                        "mean_difference_ci95": bootstrap_mean_interval(difference),
                        f"{agent}_wins": int((causes_mine[rows] == "win").sum()),
                        f"{against}_wins": int((causes_other[rows] == "win").sum())}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--eval", required=True, help="an evaluation JSON with a `play` section")
    parser.add_argument("--agent", required=True)
    parser.add_argument("--against", required=True)
    parser.add_argument("--output", default=None, help="also write the JSON here (with provenance)")
    args = parser.parse_args(argv)
    with open(args.eval) as handle:
        play = json.load(handle).get("play")
    if not play:
        raise SystemExit(f"{args.eval}: no `play` section")
    result = {"eval": args.eval, "agent": args.agent, "against": args.against,
              "by_start": paired_difference(play, args.agent, args.against)}
    from snake_world_eqm.provenance import with_provenance, write_json

    if args.output:
        write_json(args.output, result)
    print(json.dumps(with_provenance(result), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
