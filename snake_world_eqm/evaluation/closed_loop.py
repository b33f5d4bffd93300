"""Closed-loop play: every game of an agent advances in lock-step, one batched step per tick.

A game ends by death (wall, self, reverse), a win, a stall (no apple for `stall_limit` steps, 2*H*W
by default), a loop (a deterministic agent revisits a board without eating in between: it would
repeat forever), or the step cap (20*H*W by default: enough to fill the board, 2,000 on 10x10). Each
ending is counted, so circling forever is visible rather than hidden in "steps".

Games start from the usual three-cell snake or from a one-cell snake (`start_length=1`, where
reversing is legal); `play_both_starts` runs both on the same seeds and reports each and the pool.

Start boards are per-game seeds (every agent meets the same games); food respawns draw from one
generator seeded by `seed` in lock-step order, so a run is reproducible for a given agent and game
count, but the food after the first apple differs between agents (their games diverge anyway).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from tqdm.auto import tqdm

from snake_world_eqm.agents.base import Agent
from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.encoding import encode_observation
from snake_world_eqm.game.geometry import snake_lengths
from snake_world_eqm.game.rules import new_game
from snake_world_eqm.game.state import Event

EAT, WALL, SELF, WIN, REVERSE = (int(e) for e in (Event.EAT, Event.WALL, Event.SELF, Event.WIN, Event.REVERSE))
DEATH_NAMES = {WALL: "wall", SELF: "self", REVERSE: "reverse"}
END_CAUSES = ("wall", "self", "reverse", "win", "stall", "loop", "cap")


START_LENGTHS = (3, 1)  # the usual start and the one-cell start (reversal legal), both reported
BOOTSTRAP_RESAMPLES = 2000


def default_max_steps(height: int, width: int) -> int:
    """A cap high enough to fill the board: 20 steps per cell (2,000 on 10x10)."""
    return 20 * height * width


def initial_boards(num_games: int, height: int, width: int, seed: int, start_length: int = 3) -> np.ndarray:
    """(G, H, W) int8 start boards; game i uses seed `seed + i`, so every agent meets the same games."""
    return np.stack([encode_observation(new_game(height, width, rng=seed + i, initial_length=start_length))
                     for i in range(num_games)])


class _GameBook:
    """Per-game counters and the end cause of each game."""

    def __init__(self, boards: np.ndarray) -> None:
        count = boards.shape[0]
        self.start_length = snake_lengths(boards)
        self.apples = np.zeros(count, dtype=np.int64)
        self.steps = np.zeros(count, dtype=np.int64)
        self.since_food = np.zeros(count, dtype=np.int64)
        self.final_length = snake_lengths(boards)
        self.cause = np.array([""] * count, dtype=object)
        self.seen: list[set[bytes]] = [{board.tobytes()} for board in boards]

    def end(self, game: int, cause: str) -> None:
        self.cause[game] = cause


def play_games(agent: Agent, height: int, width: int, num_games: int = 100, seed: int = 0,
               max_steps: int | None = None, progress: bool = True, start_length: int = 3,
               stall_limit: int | None = None) -> dict:
    """Play `num_games` seeded games in lock-step and summarise apples, fill, steps and end causes.

    `max_steps` defaults to `default_max_steps` (20 x cells), `stall_limit` (steps without an apple) to
    2 x cells.
    """
    max_steps = default_max_steps(height, width) if max_steps is None else max_steps
    stall_limit = 2 * height * width if stall_limit is None else stall_limit
    if num_games < 1 or max_steps < 1 or stall_limit < 1:
        raise ValueError(f"need at least one game, one step and a positive stall limit, got games={num_games}, "
                         f"max_steps={max_steps}, stall_limit={stall_limit}")
    boards = initial_boards(num_games, height, width, seed, start_length)
    book = _GameBook(boards)
    food_rng = np.random.default_rng(seed)
    active = np.arange(num_games)
    bar = tqdm(total=max_steps, desc=f"play {agent.name}", disable=not progress, leave=False)
    for _ in range(max_steps):
        if active.size == 0:
            break
        actions = np.asarray(agent.act_batch(boards[active]), dtype=np.int64)
        next_boards, _, events, _ = batched_step(boards[active], actions, food_rng)
        boards[active] = next_boards
        finished = _record_step(book, active, np.asarray(next_boards), np.asarray(events), stall_limit,
                                agent.deterministic)
        active = active[~finished]
        bar.update(1)
        bar.set_postfix(active=int(active.size), apples=int(book.apples.sum()))
    bar.close()
    for game in active:
        book.end(int(game), "cap")
    summary = summarise(book, height * width, max_steps)
    summary.update(start_length=int(start_length), stall_limit=int(stall_limit), seeds=[seed, seed + num_games - 1])
    return summary


def play_both_starts(agent: Agent, height: int, width: int, num_games: int = 100, seed: int = 0,
                     max_steps: int | None = None, progress: bool = True,
                     start_lengths: tuple[int, ...] = START_LENGTHS) -> dict:
    """`play_games` from each start length on the same seeds: the pooled summary, plus each start kind
    under `by_start` ({"3": ..., "1": ...})."""
    runs = {str(length): play_games(agent, height, width, num_games, seed, max_steps, progress, start_length=length)
            for length in start_lengths}
    pooled = pool_summaries(list(runs.values()), height * width)
    pooled["by_start"] = runs
    return pooled


def pool_summaries(summaries: list[dict], cells: int) -> dict:
    """One summary over the games of several runs (same cap), recomputed from the per-game records."""
    def joined(key: str, dtype=None) -> np.ndarray:
        return np.concatenate([np.asarray(s[key], dtype=dtype) for s in summaries])

    records = SimpleNamespace(apples=joined("apples_per_game"), steps=joined("steps_per_game"),
                              final_length=joined("final_length_per_game"),
                              cause=joined("end_cause_per_game", object))
    pooled = summarise(records, cells, summaries[0]["max_steps"])
    pooled["start_lengths"] = [s.get("start_length") for s in summaries]
    return pooled


def bootstrap_mean_interval(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                            level: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of the mean (seeded, so a report is reproducible)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2
    return [float(np.quantile(means, tail)), float(np.quantile(means, 1.0 - tail))]


def _record_step(book: _GameBook, active: np.ndarray, next_boards: np.ndarray, events: np.ndarray,
                 stall_limit: int, deterministic: bool) -> np.ndarray:
    """Update the book for one tick; returns which of the active games ended."""
    finished = np.zeros(active.size, dtype=bool)
    for slot, game in enumerate(active):
        event = int(events[slot])
        book.steps[game] += 1
        if event in DEATH_NAMES:
            book.end(game, DEATH_NAMES[event])
            finished[slot] = True
            continue
        if event in (EAT, WIN):
            book.apples[game] += 1
            book.since_food[game] = 0
            book.seen[game] = set()
        else:
            book.since_food[game] += 1
        book.final_length[game] = int(snake_lengths(next_boards[slot : slot + 1])[0])
        key = next_boards[slot].tobytes()
        if event == WIN:
            book.end(game, "win")
        elif book.since_food[game] >= stall_limit:
            book.end(game, "stall")
        elif deterministic and key in book.seen[game]:
            book.end(game, "loop")
        else:
            book.seen[game].add(key)
            continue
        finished[slot] = True
    return finished


def summarise(book: _GameBook | SimpleNamespace, cells: int, max_steps: int) -> dict:
    """Summary of per-game records (`apples`, `steps`, `final_length`, `cause` arrays)."""
    causes = {cause: int((book.cause == cause).sum()) for cause in END_CAUSES}
    total_apples = int(book.apples.sum())
    return {
        "games": int(book.apples.size),
        "mean_apples": float(book.apples.mean()),
        "mean_apples_ci95": bootstrap_mean_interval(book.apples),
        "median_apples": float(np.median(book.apples)),
        "max_apples": int(book.apples.max()),
        "mean_fill": float((book.final_length / cells).mean()),
        "mean_steps": float(book.steps.mean()),
        "steps_per_apple": float(book.steps.sum() / total_apples) if total_apples else None,
        "wins": causes["win"],
        "deaths": causes["wall"] + causes["self"] + causes["reverse"],
        "end_causes": causes,
        "loops": causes["loop"],
        "stalls": causes["stall"],
        "capped": causes["cap"],
        "max_steps": max_steps,
        "apples_per_game": book.apples.tolist(),
        "steps_per_game": book.steps.tolist(),
        "final_length_per_game": np.asarray(book.final_length).tolist(),
        "end_cause_per_game": [str(cause) for cause in book.cause],
    }
