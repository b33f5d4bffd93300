"""The rules of Snake, defined once: actions, events, the state and a single step.

Everything else in the package (the batched engine, the encoding, the experts, the env)
follows these rules; the batched engine is tested against :func:`step`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Action(IntEnum):
    """Absolute moves (as in Jumanji's Snake)."""

    UP = 0
    RIGHT = 1
    DOWN = 2
    LEFT = 3


ACTION_NAMES = ("up", "right", "down", "left")
DELTAS = ((-1, 0), (0, 1), (1, 0), (0, -1))
NUM_ACTIONS = 4


class Event(IntEnum):
    """What a step did."""

    NONE = 0
    EAT = 1
    WALL = 2
    SELF = 3
    WIN = 4
    REVERSE = 5


EVENT_NAMES = ("none", "eat", "wall", "self", "win", "reverse")
DEATH_EVENTS = frozenset({Event.WALL, Event.SELF, Event.REVERSE})
MIN_BOARD_SIZE, MAX_BOARD_SIZE = 4, 32
REWARD_EAT = 1.0  # also paid for the winning bite
REWARD_DEATH = -1.0

Cell = tuple[int, int]


def as_generator(rng: None | int | np.random.Generator) -> np.random.Generator:
    """Turn ``None``, a seed or a Generator into a Generator (a Generator is used as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def check_rng(rng: object) -> None:
    """Raise TypeError unless ``rng`` is None, an int seed or a numpy Generator (checked before it is needed)."""
    if rng is None or isinstance(rng, np.random.Generator):
        return
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return
    raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {type(rng).__name__}")


def check_board_size(height: int, width: int) -> None:
    """Raise unless ``height`` and ``width`` are ints in [MIN_BOARD_SIZE, MAX_BOARD_SIZE]."""
    for name, value in (("height", height), ("width", width)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"board {name} must be an int, got {type(value).__name__}")
        if not MIN_BOARD_SIZE <= value <= MAX_BOARD_SIZE:
            raise ValueError(
                f"board {name} {value} outside the supported range {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}"
            )


def check_action(action: int) -> int:
    """Return ``action`` as a plain int, or raise if it is not one of the four moves."""
    if isinstance(action, bool) or not isinstance(action, (int, np.integer)):
        raise TypeError(f"action must be an int in 0..3, got {type(action).__name__}")
    if not 0 <= int(action) < NUM_ACTIONS:
        raise ValueError(f"action {action} is not one of 0 up, 1 right, 2 down, 3 left")
    return int(action)


def _as_cell(cell: object) -> Cell:
    row, col = cell  # a pair, or TypeError/ValueError
    for value in (row, col):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{value!r} in {tuple(cell)!r} is not an integer")
    return int(row), int(col)


@dataclass(frozen=True)
class SnakeState:
    """A legal Snake position. ``body`` is head first; ``food`` is None only on a full board.

    The state validates itself on construction, so an illegal state cannot exist.
    """

    height: int
    width: int
    body: tuple[Cell, ...]
    food: Cell | None

    def __post_init__(self) -> None:
        # Normalise numpy ints and lists so equality and hashing behave; 1.7 must not silently become 1.
        try:
            body = tuple(_as_cell(cell) for cell in self.body)
            food = None if self.food is None else _as_cell(self.food)
        except (TypeError, ValueError) as error:
            raise ValueError(f"body and food must be (row, col) pairs of ints: {error}") from None
        object.__setattr__(self, "body", body)
        object.__setattr__(self, "food", food)
        self.validate()

    @property
    def head(self) -> Cell:
        return self.body[0]

    @property
    def length(self) -> int:
        return len(self.body)

    @property
    def num_cells(self) -> int:
        return self.height * self.width

    def in_bounds(self, cell: Cell) -> bool:
        return 0 <= cell[0] < self.height and 0 <= cell[1] < self.width

    def validate(self) -> None:
        """Raise ValueError naming the first problem found; return None for a legal state."""
        check_board_size(self.height, self.width)
        if not self.body:
            raise ValueError("the snake body is empty")
        self._validate_body()
        self._validate_food()

    def _validate_body(self) -> None:
        seen: set[Cell] = set()
        for index, cell in enumerate(self.body):
            if not self.in_bounds(cell):
                raise ValueError(f"body cell {index} {cell} is off the {self.height}x{self.width} board")
            if cell in seen:
                raise ValueError(f"body cell {index} {cell} overlaps another body cell")
            seen.add(cell)
            if index and abs(cell[0] - self.body[index - 1][0]) + abs(cell[1] - self.body[index - 1][1]) != 1:
                raise ValueError(f"broken body: cells {index - 1} {self.body[index - 1]} and {index} {cell} are not adjacent")

    def _validate_food(self) -> None:
        if self.food is None:
            if self.length < self.num_cells:
                raise ValueError("food missing on a board that is not full")
            return
        if not self.in_bounds(self.food):
            raise ValueError(f"food {self.food} is off the {self.height}x{self.width} board")
        if self.food in self.body:
            raise ValueError(f"food {self.food} lies on the snake")


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
    # Imported here because the encoding module imports this one.
    from snake_world_eqm.game.encoding import encode_observation, terminal_observation

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
