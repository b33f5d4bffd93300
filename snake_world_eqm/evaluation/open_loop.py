"""Open-loop accuracy over whole games: real games replayed inside the model from their first board only.

`record_games` plays an agent in the real game (lock-step, batched rules) and keeps every board and action.
`replay_open_loop` then feeds the model only the first board of each game and the real actions, one
held-action sample per step, each step's input being the model's own previous prediction. After each apple
the predicted board's food is replaced by the real new food (*food-corrected*: where new food appears is random
and no model can guess it); before the first apple nothing is corrected (*free*). A game stays *exact* while
every predicted board equals the real one (on an eating step: equal with food masked); the first step where
it does not is the game's first error, classified as

    death   the real board is the terminal one and the prediction is not, or the other way round
    growth  the snake's length differs (grew when it should not, or did not grow)
    head    the head cell or its pointer differs (or the prediction has no single head)
    tail    the tail cell differs
    body    another snake cell differs
    food    only the food differs (a non-eating step moved, removed or added food)

While a game is exact its model input *is* the real board, so this is also one-step prediction along real
games, with the first miss ending the game's count: compounding error shows as the curve's fall.

Each step is a draw from EqM's noise (`init_scale=1`, the default). The origin start (`init_scale=0`, the EqM
agent's) is not used: on an eating step the successor is multimodal (the new food may be anywhere) and the
descent from the origin often lands on a latent the decoder reads as "no growth" (8 route-expert games on 10x10:
7 of 8 first errors were `growth`, none exact past step 300; from noise, 4 of 8 were still exact at 1,000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from snake_world_eqm.agents.base import Agent
from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.encoding import EMPTY, HEAD_ALONE, HEAD_LEFT, TAIL, mask_food
from snake_world_eqm.game.state import Event
from snake_world_eqm.simulator.core import voted_sample

ERROR_KINDS = ("death", "growth", "head", "tail", "body", "food")
EAT, WIN = int(Event.EAT), int(Event.WIN)
DEATHS = {int(Event.WALL), int(Event.SELF), int(Event.REVERSE)}
DEFAULT_GRID = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000)


@dataclass
class Trajectory:
    """One real game: boards (T+1, H, W) int8 from the first board on, actions (T,), events (T,)."""

    boards: np.ndarray
    actions: np.ndarray
    events: np.ndarray
    end: str  # death | win | stall | cap

    @property
    def steps(self) -> int:
        return int(self.actions.size)


def default_game_cap(height: int, width: int) -> int:
    """50 steps per cell: a game may run until the board is full (issue 36)."""
    return 50 * height * width


def record_games(agent: Agent, height: int, width: int, num_games: int, seed: int = 0,
                 max_steps: int | None = None, stall_limit: int | None = None, start_length: int = 3,
                 progress: bool = False) -> list[Trajectory]:
    """Play `num_games` real games (game i from seed + i) until death, a full board, `stall_limit` steps
    without an apple (default 2 x cells; a policy circling forever adds nothing new) or `max_steps`
    (default 50 x cells); keep every board, action and event."""
    cells = height * width
    max_steps = default_game_cap(height, width) if max_steps is None else max_steps
    stall_limit = 2 * cells if stall_limit is None else stall_limit
    boards = initial_boards(num_games, height, width, seed, start_length)
    history = [[board.copy()] for board in boards]
    actions = [[] for _ in range(num_games)]
    events = [[] for _ in range(num_games)]
    ends = ["cap"] * num_games
    since_food = np.zeros(num_games, dtype=np.int64)
    food_rng = np.random.default_rng(seed)
    active = np.arange(num_games)
    bar = tqdm(total=max_steps, desc=f"record {agent.name}", disable=not progress, leave=False)
    for _ in range(max_steps):
        if active.size == 0:
            break
        chosen = np.asarray(agent.act_batch(boards[active]), dtype=np.int64)
        next_boards, _, step_events, _ = batched_step(boards[active], chosen, food_rng)
        boards[active] = next_boards
        keep = np.ones(active.size, dtype=bool)
        for slot, game in enumerate(active):
            event = int(step_events[slot])
            history[game].append(next_boards[slot].copy())
            actions[game].append(int(chosen[slot]))
            events[game].append(event)
            since_food[game] = 0 if event in (EAT, WIN) else since_food[game] + 1
            end = ("death" if event in DEATHS else "win" if event == WIN
                   else "stall" if since_food[game] >= stall_limit else None)
            if end:
                ends[game], keep[slot] = end, False
        active = active[keep]
        bar.update(1)
    bar.close()
    return [Trajectory(np.stack(history[g]), np.asarray(actions[g], dtype=np.int64),
                       np.asarray(events[g], dtype=np.int8), ends[g]) for g in range(num_games)]


def _snake_cells(board: np.ndarray) -> np.ndarray:
    return board >= HEAD_ALONE


def classify_error(predicted: np.ndarray, real: np.ndarray) -> str:
    """The first-error class (ERROR_KINDS) of a predicted board against the real one (both food-masked
    where the step ate)."""
    pred_dead, real_dead = bool((predicted == EMPTY).all()), bool((real == EMPTY).all())
    if pred_dead != real_dead:
        return "death"
    if _snake_cells(predicted).sum() != _snake_cells(real).sum():
        return "growth"
    heads = lambda b: (b >= HEAD_ALONE) & (b <= HEAD_LEFT)  # noqa: E731
    if heads(predicted).sum() != 1 or not np.array_equal(np.where(heads(predicted), predicted, 0),
                                                         np.where(heads(real), real, 0)):
        return "head"
    if not np.array_equal(predicted == TAIL, real == TAIL):
        return "tail"
    if not np.array_equal(np.where(_snake_cells(predicted), predicted, 0), np.where(_snake_cells(real), real, 0)):
        return "body"
    return "food"


def replay_open_loop(model, games: list[Trajectory], init_scale: float = 1.0, seed: int = 0,
                     batch_size: int = 256, max_k: int | None = None, progress: bool = False,
                     votes: int = 1) -> list[dict]:
    """Replay each game's real actions inside the model from its first board (food-corrected; see the module).

    Returns one record per game: `steps` (its length), `first_error` (the 1-based step of the first wrong
    board, None if exact to its end or to `max_k`), `error_kind`, `length_at_error` (the real snake's length
    on the board the model stepped from), `apples_before_error`, `first_apple` (1-based step, None if none),
    `free_exact_to_first_apple`, `steps_by_length` / `errors_by_length` ({length: count} of replayed steps).
    `votes` > 1: each step keeps the majority snake of that many draws (`simulator.voted_sample`).
    """
    if not games:
        return []
    generator = torch.Generator().manual_seed(seed)
    count = len(games)
    limit = [g.steps if max_k is None else min(g.steps, max_k) for g in games]
    current = np.stack([g.boards[0] for g in games])
    first_error = [None] * count
    kinds = [None] * count
    steps_by_length = [dict() for _ in range(count)]
    errors_by_length = [dict() for _ in range(count)]
    alive = np.array([limit[i] > 0 for i in range(count)])
    bar = tqdm(total=max(limit, default=0), desc="open loop", disable=not progress, leave=False)
    for t in range(max(limit, default=0)):
        active = np.flatnonzero(alive & (np.asarray(limit) > t))
        if active.size == 0:
            break
        for start in range(0, active.size, batch_size):
            chunk = active[start:start + batch_size]
            actions = np.array([games[i].actions[t] for i in chunk])
            predicted, _ = voted_sample(model, current[chunk], actions, generator, init_scale, votes=votes)
            for slot, game in enumerate(chunk):
                real = games[game].boards[t + 1]
                length = int(_snake_cells(current[game]).sum())
                steps_by_length[game][length] = steps_by_length[game].get(length, 0) + 1
                ate = int(games[game].events[t]) == EAT
                pred = mask_food(predicted[slot]) if ate else predicted[slot]
                target = mask_food(real) if ate else real
                if np.array_equal(pred, target):
                    current[game] = real  # equal, or equal but for the food: the real new food is given
                else:
                    first_error[game], kinds[game] = t + 1, classify_error(pred, target)
                    errors_by_length[game][length] = 1
                    alive[game] = False
        bar.update(1)
    bar.close()
    records = []
    for i, game in enumerate(games):
        eats = np.flatnonzero((game.events == EAT) | (game.events == WIN))
        first_apple = int(eats[0]) + 1 if eats.size else None
        error = first_error[i]
        before = game.events[: limit[i] if error is None else error - 1]
        apples_before = int(((before == EAT) | (before == WIN)).sum())
        records.append({
            "steps": game.steps, "replayed": limit[i], "end": game.end, "first_error": error, "error_kind": kinds[i],
            "length_at_error": None if error is None else int(_snake_cells(game.boards[error - 1]).sum()),
            "apples_before_error": apples_before, "first_apple": first_apple,
            "free_exact_to_first_apple": None if first_apple is None else (error is None or error > first_apple),
            "steps_by_length": steps_by_length[i], "errors_by_length": errors_by_length[i],
        })
    return records


def exact_curve(records: list[dict], ks) -> dict:
    """Per k: `exact` = fraction of all games still exact after k steps (a game that ended before k without
    an error counts as exact: its whole game was reproduced), `exact_among_reaching` = the same among the games
    that last at least k steps, `reaching` = how many do."""
    ks = [int(k) for k in ks]
    first = np.array([r["first_error"] if r["first_error"] is not None else np.iinfo(np.int64).max for r in records])
    replayed = np.array([r["replayed"] for r in records])
    exact, among, reaching = [], [], []
    for k in ks:
        ok = first > k
        reach = replayed >= k
        exact.append(float(ok.mean()) if len(records) else None)
        reaching.append(int(reach.sum()))
        among.append(float(ok[reach].mean()) if reach.any() else None)
    return {"k": ks, "exact": exact, "exact_among_reaching": among, "reaching": reaching}


def summarise_open_loop(records: list[dict], grid=DEFAULT_GRID, length_buckets=(1, 10, 20, 30, 40, 50, 60, 70,
                                                                                  80, 90, 100, 150, 200, 300)) -> dict:
    """Curve at `grid` (up to the longest game), first-error kinds, the free first-apple figure, and the
    per-step error rate by snake length (errors / replayed steps in each length bucket)."""
    longest = max((r["replayed"] for r in records), default=0)
    ks = [k for k in grid if k <= longest] + ([longest] if longest and longest not in grid else [])
    kinds = {kind: sum(r["error_kind"] == kind for r in records) for kind in ERROR_KINDS}
    with_apple = [r for r in records if r["first_apple"] is not None]
    buckets = []
    for low, high in zip(length_buckets, list(length_buckets[1:]) + [10**9]):
        steps = sum(c for r in records for length, c in r["steps_by_length"].items() if low <= length < high)
        errors = sum(c for r in records for length, c in r["errors_by_length"].items() if low <= length < high)
        if steps:
            buckets.append({"lengths": [low, high - 1], "steps": steps, "errors": errors,
                            "error_rate_per_step": errors / steps})
    return {
        "games": len(records),
        "mean_game_steps": float(np.mean([r["steps"] for r in records])) if records else None,
        "game_ends": {end: sum(r["end"] == end for r in records) for end in ("death", "win", "stall", "cap")},
        "exact_to_end": sum(r["first_error"] is None for r in records),
        "curve": exact_curve(records, ks),
        "first_error_kinds": kinds,
        "free_exact_to_first_apple": (sum(bool(r["free_exact_to_first_apple"]) for r in with_apple) / len(with_apple)
                                      if with_apple else None),
        "games_with_an_apple": len(with_apple),
        "mean_apples_before_error": float(np.mean([r["apples_before_error"] for r in records])) if records else None,
        "error_rate_by_length": buckets,
    }


def full_curve(records: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """(k = 1..longest, fraction of games still exact after k steps) for a plot."""
    longest = max((r["replayed"] for r in records), default=0)
    ks = np.arange(1, longest + 1)
    first = np.array([r["first_error"] if r["first_error"] is not None else longest + 1 for r in records])
    return ks, (first[None, :] > ks[:, None]).mean(axis=1)
