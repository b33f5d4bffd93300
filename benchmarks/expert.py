"""Expert quality and speed: seeded games per board size and start, printed as JSON.

    python benchmarks/expert.py                                   # fill expert, 200 games, 10x10 8x8 16x16 12x9
    python benchmarks/expert.py --kind astar --sizes 10x10 --games 50
    python benchmarks/expert.py --sizes 16x16 --games 40 --starts 3   # a smaller, faster run

For each board size ("10x10", ...) and start (a three-cell and a one-cell snake, on the same
seeds): wins, mean and minimum board fill (snake length / cells at the end), deaths by cause
(wall, self, reverse), stalls (no food for ``--stall-limit`` steps), games cut at the cap
(``--max-steps``, default 50 x cells), mean steps to a win; beside them the same games played by
``--baseline`` (default: the plain Hamiltonian cycle, ``cycle``), whose mean steps to a win is the
yardstick for the shortcuts. Then the decision rate on boards drawn from the expert's own games:
the batched path (1 and 2 threads) and the single-board path (one state at a time), by wall
clock and by this process's CPU time (the fair measure on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from snake_world_eqm.game import Event, batched_step, decode_observation, encode_observation, new_game
from snake_world_eqm.game.expert import EXPERT_KINDS, expert_actions
from snake_world_eqm.provenance import with_provenance

DEATHS = ("wall", "self", "reverse")
END_CAUSES = ("win", *DEATHS, "stall", "cap")


def parse_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"board size must look like 10x10, got {text!r}") from None
    return height, width


def play(kind: str, height: int, width: int, games: int, start_length: int, max_steps: int, stall_limit: int, seed: int):
    """Play ``games`` seeded games in lock step; returns the summary and a sample of visited boards."""
    obs = np.stack([encode_observation(new_game(height, width, seed * 100_003 + game, start_length)) for game in range(games)])
    rng = np.random.default_rng(seed)
    length = np.full(games, start_length)
    since_food = np.zeros(games, dtype=np.int64)
    steps = np.zeros(games, dtype=np.int64)
    cause = np.full(games, "", dtype=object)
    seen: list[np.ndarray] = []
    decisions, cpu_seconds = 0, 0.0
    for _ in range(max_steps):
        live = np.flatnonzero(cause == "")
        if not live.size:
            break
        seen.append(obs[live[:: max(1, live.size // 8)]])
        started = time.process_time()
        actions = expert_actions(obs[live], kind)
        cpu_seconds += time.process_time() - started
        decisions += live.size
        nxt, _, event, _ = batched_step(obs[live], actions, rng)
        obs[live] = nxt
        steps[live] += 1
        ate = (event == Event.EAT) | (event == Event.WIN)
        length[live[ate]] += 1
        since_food[live] = np.where(ate, 0, since_food[live] + 1)
        for code, name in ((Event.WIN, "win"), (Event.WALL, "wall"), (Event.SELF, "self"), (Event.REVERSE, "reverse")):
            cause[live[event == code]] = name
        stalled = live[(cause[live] == "") & (since_food[live] >= stall_limit)]
        cause[stalled] = "stall"
    cause[cause == ""] = "cap"
    fill = length / (height * width)
    won = cause == "win"
    summary = {
        "games": games,
        "wins": int(won.sum()),
        "win_rate": float(won.mean()),
        "deaths": int(np.isin(cause, DEATHS).sum()),
        "end_causes": {name: int((cause == name).sum()) for name in END_CAUSES},
        "mean_fill": float(fill.mean()),
        "min_fill": float(fill.min()),
        "mean_steps_to_win": float(steps[won].mean()) if won.any() else None,
        "mean_steps": float(steps.mean()),
        "play_decisions_per_cpu_s": decisions / cpu_seconds if cpu_seconds else None,
    }
    return summary, np.concatenate(seen)


def _best_rate(decide, boards, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` decisions per second, by wall clock and by this process's CPU time."""
    wall, cpu = [], []
    for _ in range(repeats):
        started_wall, started_cpu = time.perf_counter(), time.process_time()
        decide(boards)
        wall.append(time.perf_counter() - started_wall)
        cpu.append(time.process_time() - started_cpu)
    return len(boards) / min(wall), len(boards) / max(min(cpu), 1e-9)


def throughput(kind: str, boards: np.ndarray, batch: int, single: int, seed: int, repeats: int = 3) -> dict:
    """Decisions per second of the batched path (batches of ``batch``) and of the single-board path."""
    rng = np.random.default_rng(seed)
    sample = boards[rng.integers(0, len(boards), size=batch)]
    expert_actions(sample[:64], kind)  # warm up
    result: dict = {"batch_size": batch, "boards_mean_length": float((sample >= 2).sum(axis=(1, 2)).mean())}
    for threads in (1, 2):
        wall, cpu = _best_rate(lambda b, t=threads: expert_actions(b, kind, num_threads=t), sample, repeats)
        result[f"batched_{threads}_thread_decisions_per_s"] = round(wall)
        result[f"batched_{threads}_thread_decisions_per_cpu_s"] = round(cpu)
    states = [decode_observation(board) for board in sample[:single]]
    one = lambda group: [expert_actions(encode_observation(state)[None], kind) for state in group]  # noqa: E731
    wall, cpu = _best_rate(one, states, 2)
    result["single_board_decisions_per_s"] = round(wall)
    result["single_board_decisions_per_cpu_s"] = round(cpu)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", choices=EXPERT_KINDS, default="fill")
    parser.add_argument("--baseline", choices=(*EXPERT_KINDS, "none"), default="cycle", help="expert played on the same games for comparison")
    parser.add_argument("--sizes", type=parse_size, nargs="+", default=[(10, 10), (8, 8), (16, 16), (12, 9)])
    parser.add_argument("--starts", type=int, nargs="+", default=[3, 1], help="start lengths of the snake")
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--max-steps", type=int, default=None, help="game cap (default 50 x cells)")
    parser.add_argument("--stall-limit", type=int, default=None, help="steps without food that end a game (default 4 x cells)")
    parser.add_argument("--throughput-batch", type=int, default=4096)
    parser.add_argument("--single-decisions", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report: dict = {
        "expert": args.kind, "baseline": args.baseline, "games": args.games, "seed": args.seed,
        "cpu_count": os.cpu_count(), "load_average_1min": os.getloadavg()[0],
    }
    for height, width in args.sizes:
        cells = height * width
        max_steps, stall_limit = args.max_steps or 50 * cells, args.stall_limit or 4 * cells
        entry: dict = {"max_steps": max_steps, "stall_limit": stall_limit}
        boards = []
        for start in args.starts:
            started = time.perf_counter()
            summary, seen = play(args.kind, height, width, args.games, start, max_steps, stall_limit, args.seed)
            summary["wall_seconds"] = round(time.perf_counter() - started, 1)
            boards.append(seen)
            if args.baseline != "none":
                base, _ = play(args.baseline, height, width, args.games, start, max_steps, stall_limit, args.seed)
                summary["baseline"] = {name: base[name] for name in ("wins", "deaths", "mean_fill", "mean_steps_to_win")}
            entry[f"start_{start}"] = summary
        entry["throughput"] = throughput(args.kind, np.concatenate(boards), args.throughput_batch, args.single_decisions, args.seed)
        report[f"{height}x{width}"] = entry
        print(json.dumps({f"{height}x{width}": entry}), file=sys.stderr, flush=True)  # progress, one line per size
    print(json.dumps(with_provenance(report), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
