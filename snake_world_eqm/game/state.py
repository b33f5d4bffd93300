"""The vocabulary of Snake, defined once: actions, events, board-size bounds, the state and its checks.

Everything above it (the encoding, the rules, the batched engine, the experts, the data and the model)
reads these names from here, so a constant such as ``NUM_ACTIONS`` has one home.
"""

from __future__ import annotations

import re
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
# The same moves as arrays, for batched code: row and column steps of each action.
DELTA_ROWS = np.array([d[0] for d in DELTAS], dtype=np.int64)
DELTA_COLS = np.array([d[1] for d in DELTAS], dtype=np.int64)


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
# The rules-based players (`game.expert`): the teachers a dataset is labelled by.
EXPERT_KINDS = ("fill", "astar", "heuristic", "cycle", "route")
# The dataset builder's default: the teacher both shipped models learned from, and the one a learner imitates
# best (docs/results/teachers_10x10.json: route students 49-74 apples, fill 27-32, A* 31); it also builds
# 2.2x as many rows per CPU-second as `fill` (benchmarks/dataset.py). `fill` plays better itself.
DEFAULT_EXPERT = "route"
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


def as_cell(cell: object) -> Cell:
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
            body = tuple(as_cell(cell) for cell in self.body)
            food = None if self.food is None else as_cell(self.food)
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


# ---- board sizes as text ("10x10", "8x12"): the names of a multi-size dataset's configs and of CLI arguments

_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_board_size(text: str) -> tuple[int, int]:
    """"HxW" -> (H, W); ValueError naming the problem for anything else or a side outside 4..32."""
    match = _SIZE_PATTERN.match(str(text))
    if match is None:
        raise ValueError(f"board size {text!r} is not of the form HxW (e.g. 10x10 or 8x12)")
    height, width = int(match.group(1)), int(match.group(2))
    for name, side in (("height", height), ("width", width)):
        if not MIN_BOARD_SIZE <= side <= MAX_BOARD_SIZE:
            raise ValueError(f"board size {text!r}: {name} {side} is outside {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}")
    return height, width


def size_name(height: int, width: int) -> str:
    """(H, W) -> "HxW", the config name of that size in a multi-size dataset."""
    return f"{int(height)}x{int(width)}"


def sort_sizes(names) -> list[str]:
    """Size names by cell count, then height: 6x6 < 8x8 < 8x12 < 10x10."""
    return sorted(set(names), key=lambda name: (lambda h, w: (h * w, h, w))(*parse_board_size(name)))
