"""The dead-end suite: positions where walking straight to the food dies within a few moves, yet a way out
exists (the A* expert survives). A planner that looks ahead should survive them; a greedy one does not.
`benchmarks/planner.py --dead-ends N` scores a model's planner on them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.encoding import EMPTY, FOOD, HEAD_ALONE, HEAD_LEFT, TAIL, encode_observation
from snake_world_eqm.game.expert import expert_actions
from snake_world_eqm.game.geometry import grid_distances
from snake_world_eqm.game.positions import random_position
from snake_world_eqm.game.state import DEATH_EVENTS, DELTAS

DEATHS = [int(event) for event in DEATH_EVENTS]


def greedy_actions(boards: np.ndarray) -> np.ndarray:
    """The move toward the food along a shortest path through free cells, safe or not (the food-greedy
    policy that walks into dead ends); any move that does not hit a wall or the body when none leads there."""
    boards = np.asarray(boards)
    count, height, width = boards.shape
    free = (boards == EMPTY) | (boards == FOOD) | (boards == TAIL)
    distance = grid_distances(boards == FOOD, free)
    head = ((boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)).reshape(count, -1).argmax(axis=1)
    rows, cols, index = head // width, head % width, np.arange(count)
    scores = np.full((count, 4), -np.inf)
    for action, (d_row, d_col) in enumerate(DELTAS):
        r, c = rows + d_row, cols + d_col
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        r, c = np.clip(r, 0, height - 1), np.clip(c, 0, width - 1)
        reach = distance[index, r, c]
        scores[:, action] = np.where(inside & free[index, r, c], np.where(reach >= 0, -reach, -1000.0), -np.inf)
    return scores.argmax(axis=1).astype(np.int64)


def dead_end_boards(count: int, size: int = 8, seed: int = 0, steps: int = 40) -> np.ndarray:
    """Legal boards where walking the shortest path to the food dies within `steps` moves, yet the A*
    expert survives `steps` moves from them (so a way out exists)."""
    rng = np.random.default_rng(seed)
    found = []
    while sum(len(part) for part in found) < count:
        candidates = []
        while len(candidates) < 400:
            state = random_position(rng, size, size)
            if state.food is not None and 6 <= len(state.body) <= size * size // 2:
                candidates.append(encode_observation(state))
        boards = np.stack(candidates)
        greedy_dies = ~survives(boards, greedy_actions, steps, rng)
        expert_lives = survives(boards, lambda b: expert_actions(b), steps, rng)
        found.append(boards[greedy_dies & expert_lives])
    return np.concatenate(found)[:count]


def survives(boards: np.ndarray, policy: Callable[[np.ndarray], np.ndarray], steps: int, rng) -> np.ndarray:
    """(N,) whether `policy` plays each board `steps` moves without dying (a win or the cap counts as alive)."""
    current, alive = boards.copy(), np.ones(len(boards), dtype=bool)
    for _ in range(steps):
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        nxt, _, events, terminated = batched_step(current[rows], policy(current[rows]), rng)
        alive[rows[np.isin(events, DEATHS)]] = False
        keep = ~np.asarray(terminated)
        current[rows[keep]] = nxt[keep]
    return alive
