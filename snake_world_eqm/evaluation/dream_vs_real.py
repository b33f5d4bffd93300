"""Dream vs real (issue 36, item 4): an agent plays the same starts in the real game and inside the model.

Both worlds run the same lock-step loop with the same endings: a death, a win, a stall (no apple for
`stall_limit` steps, 2 x cells by default), the step cap, and in the dream also an illegal predicted board
(`illegal:<what>`, see :mod:`snake_world_eqm.simulator.core`). The real game's food comes from a generator
seeded by `seed`; the dream's new food is whatever the model draws (its `food` option). Apples in the dream are
read from the predicted boards (the snake grew by one).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from snake_world_eqm.agents.base import Agent
from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.state import Event
from snake_world_eqm.simulator.core import dream_step

_DEATHS = {int(Event.WALL): "death", int(Event.SELF): "death", int(Event.REVERSE): "death"}


def _play(agent: Agent, boards: np.ndarray, max_steps: int, stall_limit: int, step_fn) -> dict:
    count = boards.shape[0]
    boards = boards.copy()
    apples = np.zeros(count, dtype=np.int64)
    steps = np.zeros(count, dtype=np.int64)
    since = np.zeros(count, dtype=np.int64)
    ends = np.array(["cap"] * count, dtype=object)
    active = np.arange(count)
    for _ in range(max_steps):
        if active.size == 0:
            break
        actions = np.asarray(agent.act_batch(boards[active]), dtype=np.int64)
        next_boards, ate, end = step_fn(boards[active], actions)
        boards[active] = next_boards
        steps[active] += 1
        apples[active] += ate
        since[active] = np.where(ate, 0, since[active] + 1)
        end = np.where((end == "") & (since[active] >= stall_limit), "stall", end)
        for slot in np.flatnonzero(end != ""):
            ends[active[slot]] = end[slot]
        active = active[end == ""]
    return {"apples_per_game": apples.tolist(), "steps_per_game": steps.tolist(),
            "end_per_game": [str(e) for e in ends], "mean_apples": float(apples.mean()),
            "mean_steps": float(steps.mean()), "mean_final_length": None,
            "ends": dict(Counter(str(e) for e in ends))}


def play_real(agent: Agent, height: int, width: int, num_games: int, seed: int, max_steps: int,
              stall_limit: int | None = None, start_length: int = 3) -> dict:
    """The agent's games in the real game (the rules engine)."""
    rng = np.random.default_rng(seed)
    start = initial_boards(num_games, height, width, seed, start_length)

    def step(boards, actions):
        next_boards, _, events, _ = batched_step(boards, actions, rng)
        ate = (events == int(Event.EAT)) | (events == int(Event.WIN))
        end = np.array([_DEATHS.get(int(e), "win" if int(e) == int(Event.WIN) else "") for e in events], dtype=object)
        return next_boards, ate, end

    result = _play(agent, start, max_steps, 2 * height * width if stall_limit is None else stall_limit, step)
    result["mean_final_length"] = float(start_length + np.mean(result["apples_per_game"]))
    return result


def play_dream(agent: Agent, model, height: int, width: int, num_games: int, seed: int, max_steps: int,
               stall_limit: int | None = None, start_length: int = 3, init_scale: float = 0.0, food: str = "decoder",
               food_temperature: float = 1.0, votes: int = 1) -> dict:
    """The agent's games inside the model, from the same start boards as `play_real`."""
    generator = torch.Generator().manual_seed(seed)
    start = initial_boards(num_games, height, width, seed, start_length)

    def step(boards, actions):
        result = dream_step(model, boards, actions, generator, init_scale=init_scale, food=food,
                            food_temperature=food_temperature, votes=votes)
        ate = (result.event == "eat") | (result.event == "win")
        return result.boards, ate, result.reason

    result = _play(agent, start, max_steps, 2 * height * width if stall_limit is None else stall_limit, step)
    result["mean_final_length"] = float(start_length + np.mean(result["apples_per_game"]))
    return result
