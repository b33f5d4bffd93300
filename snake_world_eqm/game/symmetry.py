"""The 8 symmetries of a square board (the dihedral group), on boards and on actions.

k = 0 is the identity, k = 1..3 rotate by 90° counter-clockwise k times, k = 4..7 flip
left-right first and then rotate by k - 4. Boards carry direction pointers, so the cell
codes are remapped along with the cells.
"""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.encoding import BODY_UP, HEAD_UP, NUM_CELL_CLASSES

NUM_SYMMETRIES = 8


def _rotate_direction(direction: int) -> int:
    # A counter-clockwise quarter turn sends right to up, up to left, left to down.
    return (direction + 3) % 4


def _flip_direction(direction: int) -> int:
    # A left-right mirror swaps right and left.
    return (4 - direction) % 4


def _direction_map(k: int) -> list[int]:
    mapping = []
    for direction in range(4):
        if k >= 4:
            direction = _flip_direction(direction)
        for _ in range(k % 4):
            direction = _rotate_direction(direction)
        mapping.append(direction)
    return mapping


def _code_table(k: int) -> np.ndarray:
    table = np.arange(NUM_CELL_CLASSES, dtype=np.int64)
    for direction, image in enumerate(_direction_map(k)):
        table[HEAD_UP + direction] = HEAD_UP + image
        table[BODY_UP + direction] = BODY_UP + image
    return table


_ACTION_TABLES = np.array([_direction_map(k) for k in range(NUM_SYMMETRIES)], dtype=np.int64)
_CODE_TABLES = np.stack([_code_table(k) for k in range(NUM_SYMMETRIES)])


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"symmetry index must be an int, got {type(k).__name__}")
    if not 0 <= k < NUM_SYMMETRIES:
        raise ValueError(f"symmetry index {k} outside 0..{NUM_SYMMETRIES - 1}")
    return int(k)


def _is_torch(x: object) -> bool:
    return hasattr(x, "detach") and hasattr(x, "device")


def transform_board(boards, k: int):
    """Apply symmetry ``k`` to boards (..., H, W), numpy or torch; square boards only."""
    k = _check_k(k)
    if boards.ndim < 2:
        raise ValueError(f"boards must have shape (..., H, W), got {tuple(boards.shape)}")
    if boards.shape[-1] != boards.shape[-2]:
        raise ValueError(f"symmetries need a square board, got {boards.shape[-2]}x{boards.shape[-1]}")
    if _is_torch(boards):
        return _transform_torch(boards, k)
    boards = np.asarray(boards)
    out = np.flip(boards, axis=-1) if k >= 4 else boards
    out = np.rot90(out, k % 4, axes=(-2, -1))
    return _CODE_TABLES[k][out].astype(boards.dtype)


def _transform_torch(boards, k: int):
    import torch

    out = torch.flip(boards, dims=(-1,)) if k >= 4 else boards
    out = torch.rot90(out, k % 4, dims=(-2, -1))
    table = torch.as_tensor(_CODE_TABLES[k], device=boards.device)
    return table[out.long()].to(boards.dtype)


def transform_action(actions, k: int):
    """Apply symmetry ``k`` to actions: an int, a numpy array or a torch tensor."""
    k = _check_k(k)
    if _is_torch(actions):
        import torch

        table = torch.as_tensor(_ACTION_TABLES[k], device=actions.device)
        return table[actions.long()].to(actions.dtype)
    if isinstance(actions, (int, np.integer)) and not isinstance(actions, bool):
        if not 0 <= actions < 4:
            raise ValueError(f"action {actions} outside 0..3")
        return int(_ACTION_TABLES[k][actions])
    actions = np.asarray(actions)
    return _ACTION_TABLES[k][actions].astype(actions.dtype)


def inverse_symmetry(k: int) -> int:
    """The index j with transform(transform(x, k), j) == x."""
    k = _check_k(k)
    if k >= 4:
        return k  # reflections are their own inverse
    return (4 - k) % 4
