"""The rules of Snake, defined once: a single step and a new game.

The vocabulary (actions, events, the state) lives in `state.py` and is re-exported here. Everything else
in the package (the batched engine, the experts, the env) follows these rules; the batched engine is
tested against :func:`step`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snake_world_eqm.game.encoding import encode_observation, terminal_observation
from snake_world_eqm.game.state import (  # noqa: F401  (re-exported: the rules' vocabulary)
    ACTION_NAMES,
    DEATH_EVENTS,
    DELTAS,
    EVENT_NAMES,
    MAX_BOARD_SIZE,
    MIN_BOARD_SIZE,
    NUM_ACTIONS,
    REWARD_DEATH,
    REWARD_EAT,
    Action,
    Cell,
    Event,
    SnakeState,
    as_generator,
    check_action,
    check_board_size,
    check_rng,
)


@dataclass(frozen=True)
class StepResult:
    """The outcome of :func:`step`. ``state`` is None after a death."""

    state: SnakeState | None
    observation: np.ndarray
    reward: float
    event: Event
    terminated: bool


def empty_cells(height: int, width: int, occupied: set[Cell]) -> list[Cell]:
    """Free cells in row-major order (the order food placement draws from)."""
    return [(r, c) for r in range(height) for c in range(width) if (r, c) not in occupied]


def pick_uniform(cells: list[Cell], rng: np.random.Generator) -> Cell:
    """One cell uniformly at random, drawing exactly one ``rng.random()`` (the batched engine does the same)."""
    index = min(int(rng.random() * len(cells)), len(cells) - 1)
    return cells[index]


def step(state: SnakeState, action: int, rng: None | int | np.random.Generator = None) -> StepResult:
    """Advance one move. ``rng`` is only drawn from when the snake eats (to place the new food)."""
    if not isinstance(state, SnakeState):
        raise TypeError(f"state must be a SnakeState, got {type(state).__name__}")
    action = check_action(action)
    check_rng(rng)
    event = _death_event(state, action)
    if event is not None:
        return StepResult(None, terminal_observation(state.height, state.width), REWARD_DEATH, event, True)
    new_head = _moved(state.head, action)
    eats = new_head == state.food
    kept = state.body if eats else state.body[:-1]
    body = (new_head, *kept)
    if not eats:
        next_state = SnakeState(state.height, state.width, body, state.food)
        return StepResult(next_state, encode_observation(next_state), 0.0, Event.NONE, False)
    free = empty_cells(state.height, state.width, set(body))
    if not free:
        next_state = SnakeState(state.height, state.width, body, None)
        return StepResult(next_state, encode_observation(next_state), REWARD_EAT, Event.WIN, True)
    next_state = SnakeState(state.height, state.width, body, pick_uniform(free, as_generator(rng)))
    return StepResult(next_state, encode_observation(next_state), REWARD_EAT, Event.EAT, False)


def _moved(cell: Cell, action: int) -> Cell:
    dr, dc = DELTAS[action]
    return (cell[0] + dr, cell[1] + dc)


def _death_event(state: SnakeState, action: int) -> Event | None:
    """WALL, REVERSE or SELF if moving ``action`` kills the snake, else None."""
    new_head = _moved(state.head, action)
    if not state.in_bounds(new_head):
        return Event.WALL
    if state.length >= 2 and new_head == state.body[1]:
        return Event.REVERSE
    eats = new_head == state.food
    # The tail moves away in this step unless the snake grows.
    blocking = state.body if eats else state.body[:-1]
    if new_head in blocking:
        return Event.SELF
    return None


def new_game(
    height: int = 10,
    width: int = 10,
    rng: None | int | np.random.Generator = None,
    initial_length: int = 3,
) -> SnakeState:
    """A fresh game: a snake of ``initial_length`` at a random legal placement and food on a free cell."""
    check_board_size(height, width)
    if isinstance(initial_length, bool) or not isinstance(initial_length, (int, np.integer)):
        raise TypeError(f"initial_length must be an int, got {type(initial_length).__name__}")
    if initial_length < 1:
        raise ValueError(f"initial_length must be >= 1, got {initial_length}")
    if initial_length > height * width - 1:
        raise ValueError(
            f"a {height}x{width} board is too small for a snake of length {initial_length} "
            f"(it needs at least {initial_length + 1} cells, one for the food)"
        )
    rng = as_generator(rng)
    body = _random_walk_body(height, width, int(initial_length), rng)
    if body is None:
        body = _serpentine_body(height, width, int(initial_length), rng)
    food = pick_uniform(empty_cells(height, width, set(body)), rng)
    return SnakeState(height, width, tuple(body), food)


def _random_walk_body(height: int, width: int, length: int, rng: np.random.Generator, tries: int = 64) -> list[Cell] | None:
    """A self-avoiding random walk from a random head; None if every try got stuck (long snakes)."""
    for _ in range(tries):
        body = [(int(rng.integers(height)), int(rng.integers(width)))]
        while len(body) < length:
            r, c = body[-1]
            options = [
                (r + dr, c + dc)
                for dr, dc in DELTAS
                if 0 <= r + dr < height and 0 <= c + dc < width and (r + dr, c + dc) not in body
            ]
            if not options:
                break
            body.append(options[int(rng.integers(len(options)))])
        if len(body) == length:
            return body
    return None


def _serpentine_body(height: int, width: int, length: int, rng: np.random.Generator) -> list[Cell]:
    """A segment of the row-by-row zig-zag path; always fits when length < height * width."""
    path = [(r, c if r % 2 == 0 else width - 1 - c) for r in range(height) for c in range(width)]
    start = int(rng.integers(len(path) - length + 1))
    segment = path[start : start + length]
    return segment if rng.random() < 0.5 else segment[::-1]
