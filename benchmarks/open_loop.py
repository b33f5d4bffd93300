"""Open-loop accuracy over whole games (issue 36, item 2), as JSON + a plot.

    python benchmarks/open_loop.py --model snake_world_eqm/checkpoints/snake-eqm-10x10 --sizes 10x10 \
        --agents expert-route:30 eqm:10 planner:3 --output docs/results/open_loop_10x10.json

Real games are played by each agent (the EqM agent and the planner are the measured model's own), then replayed
inside the model from their first board only with the real actions, food-corrected after each apple
(snake_world_eqm.evaluation.open_loop). Per size and agent: the fraction of games still exact after k steps,
the first-error kinds, the free (uncorrected) first-apple figure and the per-step error rate by snake length.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="checkpoint folder or repo id")
    parser.add_argument("--sizes", nargs="+", default=["10x10"], help="board sizes HxW")
    parser.add_argument("--agents", nargs="+", default=["expert-route:30", "eqm:10", "planner:3"],
                        help="NAME:GAMES (names as make_agent takes them)")
    parser.add_argument("--seed", type=int, default=3600, help="game i of every agent starts from seed + i")
    parser.add_argument("--init-scale", type=float, default=1.0, help="noise scale of each replay draw")
    parser.add_argument("--votes", type=int, nargs="+", default=[1],
                        help="keep the majority snake of this many draws per step; several values replay the same "
                             "recorded games once per value (before/after on the same games)")
    parser.add_argument("--max-k", type=int, default=None, help="replay at most this many steps per game")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", required=True, help="JSON path; the plot goes beside it (.png)")
    return parser.parse_args(argv)


def plot(result: dict, curves: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (ks, fractions) in curves.items():
        ax.plot(ks, fractions, label=label)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k (steps replayed inside the model from the first board)")
    ax.set_ylabel("games still exact after k steps")
    ax.set_title(f"Open loop, food-corrected: {Path(result['model']).name}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch

    from snake_world_eqm.agents import make_agent
    from snake_world_eqm.evaluation.open_loop import (
        full_curve,
        record_games,
        replay_open_loop,
        summarise_open_loop,
    )
    from snake_world_eqm.pretrained import load_model
    from snake_world_eqm.provenance import write_json

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    model = load_model(args.model).eval()
    result = {"model": str(args.model), "init_scale": args.init_scale, "seed": args.seed, "max_k": args.max_k,
              "torch_threads": args.threads, "load_before": os.getloadavg(), "runs": []}
    curves = {}
    for size in args.sizes:
        height, width = (int(v) for v in size.lower().split("x"))
        for spec in args.agents:
            name, _, games = spec.partition(":")
            agent = make_agent(name, model, seed=args.seed)
            started, cpu = time.perf_counter(), time.process_time()
            trajectories = record_games(agent, height, width, int(games or 10), seed=args.seed)
            record_seconds = time.perf_counter() - started
            for votes in args.votes:
                replay_start, cpu = time.perf_counter(), time.process_time()
                records = replay_open_loop(model, trajectories, init_scale=args.init_scale, seed=args.seed,
                                           max_k=args.max_k, votes=votes)
                run = {"size": size, "agent": name, "votes": votes, **summarise_open_loop(records),
                       "record_seconds": round(record_seconds, 1),
                       "replay_seconds": round(time.perf_counter() - replay_start, 1),
                       "replay_cpu_seconds": round(time.process_time() - cpu, 1), "load_after": os.getloadavg(),
                       "per_game": [{k: v for k, v in r.items() if not k.endswith("by_length")} for r in records]}
                result["runs"].append(run)
                label = f"{size} {name} ({len(records)} games)" + (f" votes {votes}" if len(args.votes) > 1 else "")
                curves[label] = full_curve(records)
                c = run["curve"]
                print(f"{label}: mean steps {run['mean_game_steps']:.0f} exact@k "
                      + " ".join(f"{k}:{e:.2f}" for k, e in zip(c["k"], c["exact"]))
                      + f" kinds {run['first_error_kinds']} ({run['replay_seconds']}s replay)", flush=True)
    output = Path(args.output)
    write_json(output, result, command=["python", "benchmarks/open_loop.py", *(argv or sys.argv[1:])])
    plot(result, {k: (np.asarray(v[0]), np.asarray(v[1])) for k, v in curves.items()}, output.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
