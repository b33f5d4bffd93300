"""Food is drawn, not guessed (issue 36, item 3): after an apple, where does a held-action draw put the new food?

For real eating transitions (board, action), `draws` held-action successors are drawn from the model's noise
(:func:`~snake_world_eqm.simulator.dream_step`, so the `food` option of the dream is what is measured). Per draw:
is the snake right (food masked), does the board hold exactly one food cell, and is it on an empty cell of the
true successor. Per position: the total-variation distance between the drawn food cells (the valid draws) and
uniform over the empty cells, beside the same distance for a uniform sampler given the same number of draws
(what a perfect sampler scores with that many draws). A position with no valid draw scores TV 1.
"""

from __future__ import annotations

import numpy as np
import torch

from snake_world_eqm.game.encoding import EMPTY, FOOD, mask_food
from snake_world_eqm.game.state import Event
from snake_world_eqm.simulator.core import dream_step


def eating_positions(trajectories, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Up to `count` (board, action, real successor) triples of eating steps (not wins) from recorded games
    (`evaluation.open_loop.Trajectory`), drawn at random without replacement."""
    triples = [(g.boards[t], g.actions[t], g.boards[t + 1]) for g in trajectories
               for t in np.flatnonzero(g.events == int(Event.EAT))]
    rng = np.random.default_rng(seed)
    chosen = rng.permutation(len(triples))[:count]
    boards, actions, successors = zip(*[triples[i] for i in chosen]) if len(chosen) else ((), (), ())
    return np.asarray(boards), np.asarray(actions, dtype=np.int64), np.asarray(successors)


def total_variation(cells: np.ndarray, support: int) -> float:
    """TV between the empirical distribution of `cells` (indices 0..support-1) and uniform over `support`."""
    if cells.size == 0:
        return 1.0
    counts = np.bincount(cells, minlength=support) / cells.size
    return 0.5 * float(np.abs(counts - 1.0 / support).sum())


def measure_food_draws(model, boards: np.ndarray, actions: np.ndarray, successors: np.ndarray, draws: int = 200,
                       init_scale: float = 1.0, food: str = "model", seed: int = 0,
                       food_temperature: float = 1.0, num_steps: int | None = None, votes: int = 1) -> dict:
    """Draw `draws` successors of each eating (board, action) and score where the food went (see the module)."""
    generator = torch.Generator().manual_seed(seed)
    uniform_rng = np.random.default_rng(seed)
    per_position = []
    for board, action, real in zip(boards, actions, successors):
        step = dream_step(model, np.repeat(board[None], draws, 0), np.full(draws, action), generator,
                          init_scale=init_scale, food=food, num_steps=num_steps, food_temperature=food_temperature,
                          votes=votes)
        predicted = step.boards
        snake_right = (mask_food(predicted) == mask_food(real)[None]).all(axis=(1, 2))
        empty = (mask_food(real) == EMPTY).reshape(-1)  # the cells new food may take
        foods = (predicted == FOOD).reshape(draws, -1)
        one_food = foods.sum(axis=1) == 1
        on_empty = one_food & (foods & empty[None]).any(axis=1)
        valid = snake_right & on_empty
        empty_index = np.cumsum(empty) - 1  # cell -> index among the empty cells
        drawn = empty_index[foods[valid].argmax(axis=1)]
        support = int(empty.sum())
        per_position.append({
            "draws": draws, "empty_cells": support, "snake_right": int(snake_right.sum()),
            "no_food": int((foods.sum(axis=1) == 0).sum()), "one_food": int(one_food.sum()),
            "two_or_more_foods": int((foods.sum(axis=1) >= 2).sum()), "valid": int(valid.sum()),
            "distinct_cells": int(np.unique(drawn).size),
            "tv": total_variation(drawn, support),
            "tv_uniform_same_draws": total_variation(uniform_rng.integers(0, support, size=int(valid.sum())), support)
            if valid.any() else 1.0,
            "tv_uniform_all_draws": total_variation(uniform_rng.integers(0, support, size=draws), support),
        })
    total = draws * len(per_position)
    summed = {key: sum(p[key] for p in per_position) for key in ("snake_right", "no_food", "one_food",
                                                                   "two_or_more_foods", "valid")}
    return {
        "positions": len(per_position), "draws_per_position": draws, "init_scale": init_scale, "food": food,
        "food_temperature": (str(food_temperature) if food == "decoder" else None), "num_steps": num_steps,
        "votes": votes,
        "fraction_snake_right": summed["snake_right"] / total if total else None,
        "fraction_one_food_on_empty_cell_and_snake_right": summed["valid"] / total if total else None,
        "fraction_no_food": summed["no_food"] / total if total else None,
        "fraction_two_or_more_foods": summed["two_or_more_foods"] / total if total else None,
        "mean_distinct_cells": float(np.mean([p["distinct_cells"] for p in per_position])) if per_position else None,
        "mean_empty_cells": float(np.mean([p["empty_cells"] for p in per_position])) if per_position else None,
        "mean_tv": float(np.mean([p["tv"] for p in per_position])) if per_position else None,
        "mean_tv_uniform_same_draws": float(np.mean([p["tv_uniform_same_draws"] for p in per_position]))
        if per_position else None,
        "mean_tv_uniform_all_draws": float(np.mean([p["tv_uniform_all_draws"] for p in per_position]))
        if per_position else None,
        "per_position": per_position,
    }
