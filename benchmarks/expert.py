"""Expert quality and speed: seeded games per board size, printed as JSON.

    python benchmarks/expert.py                       # A* expert, 200 games on 10x10, 8x8, 16x16
    python benchmarks/expert.py --kind heuristic --games 50

For each board size ("10x10", ...): mean apples, mean board fill (snake length / cells at
the end), wins, and how games ended (wall, self, reverse, stall = no food for
``--stall-limit`` steps, cap = ``--max-steps`` reached). Then throughput on 10x10: the
batched path on batches of boards drawn from the expert's own games, and the single-board
path (``astar_action`` / ``heuristic_action``, one state at a time) measured in the same run,
and the engine's ``batched_step`` / ``batched_successors`` on the same boards.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from snake_world_eqm.game import (
    Event,
    batched_step,
    batched_successors,
    decode_observation,
    encode_observation,
    new_game,
)
from snake_world_eqm.game.expert import astar_action, expert_actions, heuristic_action
from snake_world_eqm.provenance import with_provenance

END_CAUSES = ("win", "wall", "self", "reverse", "stall", "cap")


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"board size must look like 10x10, got {text!r}") from None
    return height, width


def play(kind: str, height: int, width: int, games: int, max_steps: int, stall_limit: int, seed: int):
    """Play ``games`` seeded games in lock step; returns the summary and a sample of visited boards."""
    obs = np.stack([encode_observation(new_game(height, width, seed * 100_003 + game)) for game in range(games)])
    rng = np.random.default_rng(seed)
    length = np.full(games, 3)
    apples = np.zeros(games, dtype=np.int64)
    since_food = np.zeros(games, dtype=np.int64)
    steps = np.zeros(games, dtype=np.int64)
    cause = np.full(games, "", dtype=object)
    seen: list[np.ndarray] = []
    decisions, expert_seconds = 0, 0.0
    for _ in range(max_steps):
        live = np.flatnonzero(cause == "")
        if not live.size:
            break
        seen.append(obs[live[:: max(1, live.size // 16)]])
        started = time.perf_counter()
        actions = expert_actions(obs[live], kind)
        expert_seconds += time.perf_counter() - started
        decisions += live.size
        nxt, _, event, _ = batched_step(obs[live], actions, rng)
        obs[live] = nxt
        steps[live] += 1
        ate = (event == Event.EAT) | (event == Event.WIN)
        apples[live[ate]] += 1
        length[live[ate]] += 1
        since_food[live] = np.where(ate, 0, since_food[live] + 1)
        for code, name in ((Event.WIN, "win"), (Event.WALL, "wall"), (Event.SELF, "self"), (Event.REVERSE, "reverse")):
            cause[live[event == code]] = name
        stalled = live[(cause[live] == "") & (since_food[live] >= stall_limit)]
        cause[stalled] = "stall"
    cause[cause == ""] = "cap"
    fill = length / (height * width)
    summary = {
        "games": games,
        "mean_apples": float(apples.mean()),
        "mean_fill": float(fill.mean()),
        "median_fill": float(np.median(fill)),
        "min_fill": float(fill.min()),
        "wins": int((cause == "win").sum()),
        "end_causes": {name: int((cause == name).sum()) for name in END_CAUSES},
        "mean_steps": float(steps.mean()),
        "play_decisions_per_s": decisions / expert_seconds if expert_seconds else None,
    }
    return summary, np.concatenate(seen)


def _best_rate(decide, boards: np.ndarray, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` decisions per second, by wall clock and by this process's CPU time."""
    wall, cpu = [], []
    for _ in range(repeats):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        decide(boards)
        wall.append(time.perf_counter() - started_wall)
        cpu.append(time.process_time() - started_cpu)
    return len(boards) / min(wall), len(boards) / min(cpu)


def throughput(kind: str, boards: np.ndarray, batch: int, single: int, seed: int, repeats: int = 5) -> dict:
    """Decisions per second of the batched path (batches of ``batch``) and of the single-board path.

    Wall-clock rates suffer when other processes share the cores, so the CPU-time rates and
    the load average are printed beside them.
    """
    rng = np.random.default_rng(seed)
    sample = boards[rng.integers(0, len(boards), size=batch)]
    expert_actions(sample[:64], kind)  # warm up
    result: dict = {"batch_size": batch, "load_average_1min": os.getloadavg()[0], "cpu_count": os.cpu_count()}
    for threads in (1, 2):
        wall, cpu = _best_rate(lambda b, t=threads: expert_actions(b, kind, num_threads=t), sample, repeats)
        result[f"batched_{threads}_thread_decisions_per_s"] = wall
        result[f"batched_{threads}_thread_decisions_per_cpu_s"] = cpu
    actions = expert_actions(sample, kind)
    result["batched_step_boards_per_s"] = _best_rate(lambda b: batched_step(b, actions, rng), sample, repeats)[0]
    result["batched_successors_boards_per_s"] = _best_rate(lambda b: batched_successors(b, rng), sample, repeats)[0]
    states = [decode_observation(board) for board in sample[:single]]
    one = astar_action if kind == "astar" else heuristic_action
    wall, cpu = _best_rate(lambda group: [one(state) for state in group], states, 2)
    result["single_board_decisions_per_s"] = wall
    result["single_board_decisions_per_cpu_s"] = cpu
    result["batched_over_single"] = result["batched_1_thread_decisions_per_s"] / wall
    result["boards_mean_length"] = float((sample >= 2).sum(axis=(1, 2)).mean())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=("astar", "heuristic"), default="astar")
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[(10, 10), (8, 8), (16, 16)])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=2000)
    parser.add_argument("--stall-limit", type=int, default=None, help="steps without food that end a game (default 4*cells)")
    parser.add_argument("--throughput-batch", type=int, default=4096)
    parser.add_argument("--single-decisions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report: dict = {"expert": args.kind, "max_steps": args.max_steps, "seed": args.seed}
    for height, width in args.sizes:
        stall_limit = args.stall_limit or 4 * height * width
        started = time.perf_counter()
        summary, boards = play(args.kind, height, width, args.games, args.max_steps, stall_limit, args.seed)
        summary["stall_limit"] = stall_limit
        summary["wall_seconds"] = time.perf_counter() - started
        if (height, width) == (10, 10):
            summary["throughput"] = throughput(args.kind, boards, args.throughput_batch, args.single_decisions, args.seed)
        report[f"{height}x{width}"] = summary
    print(json.dumps(with_provenance(report), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
