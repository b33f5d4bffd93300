"""Reading batches of encoded boards (B, H, W): heads, necks, lengths, terminal boards, grid distances.

Pure numpy, no rules applied: the agents, the planner, the evaluation and the app all ask the same
questions of a board (where is the head, how long is the snake, how far is a cell), so they are answered
once here, on boards that may be the model's own (possibly illegal) predictions.
"""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.encoding import EMPTY, FOOD, HEAD_ALONE, HEAD_LEFT, HEAD_UP, TAIL


def as_boards(boards: np.ndarray, name: str = "boards") -> np.ndarray:
    """`boards` as an array of shape (B, H, W); a ValueError naming `name` otherwise."""
    array = np.asarray(boards)
    if array.ndim != 3:
        raise ValueError(f"{name} must have shape (B, H, W), got {array.shape}")
    return array


def snake_lengths(boards: np.ndarray) -> np.ndarray:
    """(B,) number of snake cells (head, body, tail) per board; 0 for the terminal board."""
    return (as_boards(boards) >= HEAD_ALONE).sum(axis=(1, 2))


def is_terminal(boards: np.ndarray) -> np.ndarray:
    """(B,) bool: the all-EMPTY board, the defined observation after a death."""
    return (as_boards(boards) == EMPTY).all(axis=(1, 2))


def head_counts(boards: np.ndarray) -> np.ndarray:
    """(B,) number of head cells: 1 on a readable board, anything else on a lost prediction."""
    boards = as_boards(boards)
    return ((boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)).sum(axis=(1, 2))


def neck_directions(boards: np.ndarray) -> np.ndarray:
    """(B,) the action that reverses into the neck, read from the head's pointer; -1 for a lone head.

    That move is death by the rules whatever a model says, so a planner need not spend a sample on it.
    """
    flat = np.asarray(boards).reshape(len(boards), -1)
    is_pointer_head = (flat >= HEAD_UP) & (flat <= HEAD_LEFT)
    codes = flat[np.arange(flat.shape[0]), is_pointer_head.argmax(axis=1)]
    return np.where(is_pointer_head.any(axis=1), codes - HEAD_UP, -1)


def shift_mask(mask: np.ndarray, d_row: int, d_col: int) -> np.ndarray:
    """Move a (B, H, W) mask by one cell without wrap-around (what falls off the edge is gone)."""
    out = np.zeros_like(mask)
    rows, cols = mask.shape[1], mask.shape[2]
    src_r = slice(max(0, -d_row), rows - max(0, d_row))
    dst_r = slice(max(0, d_row), rows - max(0, -d_row))
    src_c = slice(max(0, -d_col), cols - max(0, d_col))
    dst_c = slice(max(0, d_col), cols - max(0, -d_col))
    out[:, dst_r, dst_c] = mask[:, src_r, src_c]
    return out


def neighbours(mask: np.ndarray) -> np.ndarray:
    """(B, H, W) cells one move away from any cell of `mask` (the four directions, no wrap-around)."""
    return shift_mask(mask, -1, 0) | shift_mask(mask, 1, 0) | shift_mask(mask, 0, -1) | shift_mask(mask, 0, 1)


def grid_distances(sources: np.ndarray, passable: np.ndarray) -> np.ndarray:
    """(B, H, W) breadth-first steps from the `sources` cells through `passable` cells; -1 where unreachable."""
    distance = np.where(sources, 0, -1)
    visited, frontier = sources.copy(), sources.copy()
    for step in range(1, sources.shape[1] * sources.shape[2] + 1):
        frontier = neighbours(frontier) & passable & ~visited
        if not frontier.any():
            break
        distance[frontier] = step
        visited |= frontier
    return distance


def bfs_from_head(boards: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched breadth-first search from the head over cells the head may enter.

    Returns (distance (B, H, W) int, -1 where unreachable; has_head (B,) bool). The tail counts as free
    because it moves away in the step the head would reach it (apart from eating; a heuristic).
    """
    boards = as_boards(boards)
    head = (boards >= HEAD_ALONE) & (boards <= HEAD_LEFT)
    passable = (boards == EMPTY) | (boards == FOOD) | (boards == TAIL)
    return grid_distances(head, passable), head.any(axis=(1, 2))
