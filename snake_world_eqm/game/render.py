"""Text (ANSI) and RGB pictures of boards, for terminals, notebooks, GIFs and plots."""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.encoding import (
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    TAIL,
    check_observation_array,
    encode_observation,
    is_terminal_observation,
    trace_body,
)
from snake_world_eqm.game.state import SnakeState

_HEAD_GLYPHS = "@v<^>"  # HEAD_ALONE, then heads whose neck lies up/right/down/left (arrow = travel)
_RESET = "\x1b[0m"
_COLOURS = {"head": "\x1b[1;92m", "body": "\x1b[32m", "food": "\x1b[1;91m", "empty": "\x1b[90m"}

BACKGROUND = (24, 24, 32)
GRID = (40, 40, 52)
FOOD_COLOUR = (220, 50, 47)
HEAD_COLOUR = (120, 230, 80)
TAIL_COLOUR = (20, 110, 40)


def _as_board(board_or_state: SnakeState | np.ndarray) -> np.ndarray:
    if isinstance(board_or_state, SnakeState):
        return encode_observation(board_or_state)
    return check_observation_array(board_or_state)


def _glyph(code: int) -> tuple[str, str]:
    """The character and colour class of one cell code."""
    if code == EMPTY:
        return "·", "empty"
    if code == FOOD:
        return "*", "food"
    if code <= 6:
        return _HEAD_GLYPHS[code - 2], "head"
    return ("o" if code != TAIL else "."), "body"


def render_ansi(board_or_state: SnakeState | np.ndarray, color: bool = True) -> str:
    """A framed text picture; the head shows as an arrow pointing away from its neck.

    ``color=False`` gives plain text (for logs, tests and model cards).
    """
    board = _as_board(board_or_state)
    width = board.shape[1]
    lines = ["+" + "-" * (2 * width + 1) + "+"]
    for row in board:
        cells = []
        for code in row:
            char, kind = _glyph(int(code))
            cells.append(f"{_COLOURS[kind]}{char}{_RESET}" if color else char)
        lines.append("| " + " ".join(cells) + " |")
    lines.append(lines[0])
    if is_terminal_observation(board):
        lines.append("(terminal: the snake died)")
    return "\n".join(lines)


def render_rgb(board_or_state: SnakeState | np.ndarray, cell_size: int = 16) -> np.ndarray:
    """An (H*cell_size, W*cell_size, 3) uint8 picture; the body fades from head to tail.

    Food is drawn where it is and not required; the snake must be one legal chain (IllegalObservationError).
    """
    if isinstance(cell_size, bool) or not isinstance(cell_size, (int, np.integer)) or cell_size < 2:
        raise ValueError(f"cell_size must be an int >= 2, got {cell_size!r}")
    board = _as_board(board_or_state)
    height, width = board.shape
    colours = np.empty((height, width, 3), dtype=np.float64)
    colours[:] = BACKGROUND
    colours[board == FOOD] = FOOD_COLOUR
    if not is_terminal_observation(board):
        # Only the snake's order is needed, so a board without food (a predicted board after eating,
        # where the new food's place is random) still renders; a broken snake still raises.
        body = trace_body(board)
        for index, cell in enumerate(body):
            fade = index / max(1, len(body) - 1)
            colours[cell] = (1 - fade) * np.array(HEAD_COLOUR) + fade * np.array(TAIL_COLOUR)
    image = np.repeat(np.repeat(colours, cell_size, axis=0), cell_size, axis=1).astype(np.uint8)
    image[::cell_size, :] = GRID  # thin grid lines between cells
    image[:, ::cell_size] = GRID
    return image


# ---- any board, legal or not: a model's prediction may be illegal, and must still be shown


def paint_codes(board: np.ndarray, cell_size: int = 16) -> np.ndarray:
    """Paint any board by cell code (no legality needed): heads bright, body green, food red."""
    board = np.asarray(board)
    image = np.full(board.shape + (3,), (60, 170, 60), dtype=np.uint8)
    image[board == EMPTY] = BACKGROUND
    image[board == FOOD] = FOOD_COLOUR
    image[board == TAIL] = TAIL_COLOUR
    image[(board >= HEAD_ALONE) & (board <= HEAD_LEFT)] = HEAD_COLOUR
    return np.kron(image, np.ones((cell_size, cell_size, 1), dtype=np.uint8))


def render_rgb_any(board: np.ndarray, cell_size: int = 16) -> np.ndarray:
    """`render_rgb`, or `paint_codes` where the board is not a legal one (so the error is visible)."""
    try:
        return render_rgb(np.asarray(board).astype(np.int8), cell_size=cell_size)
    except ValueError:
        return paint_codes(board, cell_size)


def render_ansi_any(board: np.ndarray, color: bool = True) -> str:
    """`render_ansi`, or the raw cell codes with a note where the board is not a legal one."""
    try:
        return render_ansi(np.asarray(board).astype(np.int8), color=color)
    except ValueError:
        return "\n".join(" ".join(f"{int(c):2d}" for c in row) for row in np.asarray(board)) + "\n(illegal board)"


def render_for_mode(board: np.ndarray, render_mode: str | None, cell_size: int = 16):
    """What a Gymnasium env's `render()` returns for `render_mode`: framed text for "ansi", an RGB array for
    "rgb_array" (illegal predicted boards painted by code), None otherwise."""
    if render_mode == "ansi":
        return render_ansi_any(board, color=False)
    if render_mode == "rgb_array":
        return render_rgb_any(board, cell_size)
    return None
