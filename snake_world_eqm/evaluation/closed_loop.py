"""Closed-loop play: every game of an agent advances in lock-step, one batched step per tick.

A game ends by death (wall, self, reverse), a win, a stall (no apple for 2*H*W steps), a loop (a
deterministic agent revisits a board without eating in between: it would repeat forever), or the
step cap. Each ending is counted, so circling forever is visible rather than hidden in "steps".

Start boards are per-game seeds (every agent meets the same games); food respawns draw from one
generator seeded by `seed` in lock-step order, so a run is reproducible for a given agent and game
count, but the food after the first apple differs between agents (their games diverge anyway).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from snake_world_eqm.evaluation.agents import Agent
from snake_world_eqm.evaluation.metrics import snake_lengths

# Event codes of snake_world_eqm.game.Event (docs/ARCHITECTURE.md).
EAT, WALL, SELF, WIN, REVERSE = 1, 2, 3, 4, 5
DEATH_NAMES = {WALL: "wall", SELF: "self", REVERSE: "reverse"}
END_CAUSES = ("wall", "self", "reverse", "win", "stall", "loop", "cap")


def initial_boards(num_games: int, height: int, width: int, seed: int) -> np.ndarray:
    """(G, H, W) int8 start boards; game i uses seed `seed + i`, so every agent meets the same games."""
    from snake_world_eqm.game import encode_observation, new_game

    return np.stack([encode_observation(new_game(height, width, rng=seed + i)) for i in range(num_games)])


class _GameBook:
    """Per-game counters and the end cause of each game."""

    def __init__(self, boards: np.ndarray) -> None:
        count = boards.shape[0]
        self.apples = np.zeros(count, dtype=np.int64)
        self.steps = np.zeros(count, dtype=np.int64)
        self.since_food = np.zeros(count, dtype=np.int64)
        self.final_length = snake_lengths(boards)
        self.cause = np.array([""] * count, dtype=object)
        self.seen: list[set[bytes]] = [{board.tobytes()} for board in boards]

    def end(self, game: int, cause: str) -> None:
        self.cause[game] = cause


def play_games(agent: Agent, height: int, width: int, num_games: int = 100, seed: int = 0,
               max_steps: int = 1000, progress: bool = True) -> dict:
    """Play `num_games` seeded games in lock-step and summarise apples, fill, steps and end causes."""
    from snake_world_eqm.game import batched_step

    if num_games < 1 or max_steps < 1:
        raise ValueError(f"need at least one game and one step, got games={num_games}, max_steps={max_steps}")
    boards = initial_boards(num_games, height, width, seed)
    book = _GameBook(boards)
    stall_limit = 2 * height * width
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
    return summarise(book, height * width, max_steps)


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


def summarise(book: _GameBook, cells: int, max_steps: int) -> dict:
    causes = {cause: int((book.cause == cause).sum()) for cause in END_CAUSES}
    return {
        "games": int(book.apples.size),
        "mean_apples": float(book.apples.mean()),
        "median_apples": float(np.median(book.apples)),
        "max_apples": int(book.apples.max()),
        "mean_fill": float((book.final_length / cells).mean()),
        "mean_steps": float(book.steps.mean()),
        "wins": causes["win"],
        "deaths": causes["wall"] + causes["self"] + causes["reverse"],
        "end_causes": causes,
        "loops": causes["loop"],
        "stalls": causes["stall"],
        "capped": causes["cap"],
        "max_steps": max_steps,
        "apples_per_game": book.apples.tolist(),
    }
