"""Observation encoding: one int8 code per cell; the body order is kept as per-cell pointers.

Each snake cell except the tail stores the direction of the next segment toward the tail, so
an observation determines the state (and therefore the successor) exactly. The codes are
fixed by docs/ARCHITECTURE.md.
"""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.state import (
    DELTAS,
    MAX_BOARD_SIZE,
    MIN_BOARD_SIZE,
    Cell,
    SnakeState,
    check_board_size,
)

EMPTY = 0
FOOD = 1
HEAD_ALONE = 2
HEAD_UP, HEAD_RIGHT, HEAD_DOWN, HEAD_LEFT = 3, 4, 5, 6
BODY_UP, BODY_RIGHT, BODY_DOWN, BODY_LEFT = 7, 8, 9, 10
TAIL = 11
NUM_CELL_CLASSES = 12

CELL_NAMES = (
    "empty", "food", "head_alone", "head_up", "head_right", "head_down", "head_left",
    "body_up", "body_right", "body_down", "body_left", "tail",
)
_DIRECTION_OF_DELTA = {delta: direction for direction, delta in enumerate(DELTAS)}


class IllegalObservationError(ValueError):
    """An observation that is no legal Snake board; the message names the problem."""


def is_head_code(code: int) -> bool:
    return HEAD_ALONE <= code <= HEAD_LEFT


def encode_observation(state: SnakeState) -> np.ndarray:
    """The (H, W) int8 board of ``state``."""
    if not isinstance(state, SnakeState):
        raise TypeError(f"encode_observation expects a SnakeState, got {type(state).__name__}")
    board = np.zeros((state.height, state.width), dtype=np.int8)
    if state.food is not None:
        board[state.food] = FOOD
    body = state.body
    if len(body) == 1:
        board[body[0]] = HEAD_ALONE
        return board
    for index, cell in enumerate(body[:-1]):
        nxt = body[index + 1]
        direction = _DIRECTION_OF_DELTA[(nxt[0] - cell[0], nxt[1] - cell[1])]
        board[cell] = (HEAD_UP if index == 0 else BODY_UP) + direction
    board[body[-1]] = TAIL
    return board


def terminal_observation(height: int, width: int) -> np.ndarray:
    """The all-EMPTY board that follows a death."""
    check_board_size(height, width)
    return np.zeros((height, width), dtype=np.int8)


def is_terminal_observation(obs):
    """True where a board (..., H, W) is all EMPTY; a plain bool for a single board."""
    flat = obs.reshape(*obs.shape[:-2], -1)
    result = (flat == EMPTY).all(-1)
    return bool(result) if obs.ndim == 2 else result


def mask_food(boards):
    """A copy of ``boards`` (numpy or torch) with FOOD replaced by EMPTY."""
    return boards * (boards != FOOD)


def check_observation_array(obs: object, batched: bool = False) -> np.ndarray:
    """Shape, dtype and value checks shared by the single and batched paths; returns a numpy array."""
    if hasattr(obs, "detach") and hasattr(obs, "cpu"):  # a torch tensor
        obs = obs.detach().cpu().numpy()
    if not isinstance(obs, np.ndarray):
        raise TypeError(f"an observation must be a numpy array, got {type(obs).__name__}")
    if obs.dtype == np.bool_ or not np.issubdtype(obs.dtype, np.integer):
        raise IllegalObservationError(f"an observation must have an integer dtype (int8), got {obs.dtype}")
    expected = 3 if batched else 2
    if obs.ndim != expected:
        what = "(B, H, W)" if batched else "(H, W)"
        raise IllegalObservationError(f"an observation must have shape {what}, got {obs.shape}")
    height, width = obs.shape[-2:]
    if not (MIN_BOARD_SIZE <= height <= MAX_BOARD_SIZE and MIN_BOARD_SIZE <= width <= MAX_BOARD_SIZE):
        raise IllegalObservationError(
            f"board size {height}x{width} outside the supported range {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}"
        )
    if obs.size and (obs.min() < 0 or obs.max() >= NUM_CELL_CLASSES):
        raise IllegalObservationError(
            f"cell values must lie in 0..{NUM_CELL_CLASSES - 1}, found {int(obs.min())}..{int(obs.max())}"
        )
    return obs


def validate_observation(obs: np.ndarray, allow_terminal: bool = False) -> None:
    """Raise IllegalObservationError naming the problem unless ``obs`` is a legal board.

    The all-EMPTY terminal board is accepted only with ``allow_terminal=True``.
    """
    obs = check_observation_array(obs)
    if allow_terminal and is_terminal_observation(obs):
        return
    _decode_checked(obs)


def decode_observation(obs: np.ndarray) -> SnakeState:
    """The SnakeState of a legal board (raises IllegalObservationError otherwise)."""
    return _decode_checked(check_observation_array(obs))


def _decode_checked(obs: np.ndarray) -> SnakeState:
    height, width = obs.shape
    if is_terminal_observation(obs):
        raise IllegalObservationError("the all-EMPTY terminal board has no snake (no state to decode)")
    body = trace_body(obs)
    foods = [tuple(int(v) for v in cell) for cell in np.argwhere(obs == FOOD)]
    if len(foods) > 1:
        raise IllegalObservationError(f"{len(foods)} foods on the board at {foods}; at most one allowed")
    if not foods and len(body) < height * width:
        raise IllegalObservationError("food missing on a board that is not full")
    return SnakeState(int(height), int(width), tuple(body), foods[0] if foods else None)


def trace_body(obs: np.ndarray) -> list[Cell]:
    """Follow the pointers from the single head to the tail, checking every link."""
    heads = [tuple(int(v) for v in cell) for cell in np.argwhere((obs >= HEAD_ALONE) & (obs <= HEAD_LEFT))]
    if not heads:
        raise IllegalObservationError("no head on a non-terminal board")
    if len(heads) > 1:
        raise IllegalObservationError(f"{len(heads)} heads at {heads}; exactly one allowed")
    tails = int((obs == TAIL).sum())
    if tails > 1:
        raise IllegalObservationError(f"{tails} tails on the board; at most one allowed")
    body = _follow_pointers(obs, heads[0])
    snake_cells = int((obs >= HEAD_ALONE).sum())
    if snake_cells != len(body):
        raise IllegalObservationError(
            f"{snake_cells - len(body)} snake cells are not on the chain from the head to the tail "
            "(disconnected body)"
        )
    return body


def _follow_pointers(obs: np.ndarray, head: Cell) -> list[Cell]:
    height, width = obs.shape
    body = [head]
    seen = {head}
    cell = head
    while True:
        code = int(obs[cell])
        if code == HEAD_ALONE or code == TAIL:
            return body
        direction = (code - HEAD_UP) % 4
        nxt = (cell[0] + DELTAS[direction][0], cell[1] + DELTAS[direction][1])
        if not (0 <= nxt[0] < height and 0 <= nxt[1] < width):
            raise IllegalObservationError(f"pointer off board: cell {cell} points to {nxt}")
        next_code = int(obs[nxt])
        if is_head_code(next_code):
            raise IllegalObservationError(f"cycle in the body: cell {cell} points back to the head {nxt}")
        if next_code in (EMPTY, FOOD):
            what = CELL_NAMES[next_code]
            raise IllegalObservationError(f"broken chain: cell {cell} points to {nxt}, which is {what}")
        if nxt in seen:
            raise IllegalObservationError(f"cycle in the body: cell {cell} points back to {nxt}")
        body.append(nxt)
        seen.add(nxt)
        cell = nxt
