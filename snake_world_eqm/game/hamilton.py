"""A fixed cycle through the board and the snake's order along it (the fill expert's safety net).

Every cell gets a *position* 0..M-1 along a closed route of adjacent cells. When H or W is
even the route is a Hamiltonian cycle (M = H*W): row 0 left to right, then rows 1..H-1 as a
zig-zag over columns 1..W-1, back up column 0 (transposed when only W is even).

An odd x odd board has no Hamiltonian cycle (the grid is bipartite with more cells of one
colour), so its route has M = H*W - 1 positions and one *twin* step: the corner (H-1, 0) and
the cell (H-2, 1) share a position. Both neighbour the cells before ((H-1, 1)) and after
((H-2, 0)) that position, so the route may go through either: two Hamiltonian cycles of the
board minus one cell, one missing each twin, and every cell, the corner included, reachable.

The snake is *in cycle order* when its positions, read from the tail to the head, climb
strictly within one lap: with d_i the forward distance along the route from segment i+1 to
segment i, the sum S of the d_i is at most M-1 (at most M-2 for a length-2 snake, whose step
along the route must not be into its own neck). In cycle order every cell after the head up
to the tail's position is free, so moving to the next position (the tail's, at worst, which
is vacated in the same step) keeps the order and never dies; any move to a cell whose
forward distance d from the head keeps S' = S + d - d_last (or S + d when eating) in range
keeps the order as well: these are the safe shortcuts.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from snake_world_eqm.game.encoding import BODY_LEFT, HEAD_UP, NUM_CELL_CLASSES
from snake_world_eqm.game.state import DELTAS, check_board_size


@cache
def cycle_route(height: int, width: int) -> tuple[tuple[int, int], ...]:
    """The route's cells in order (H*W cells; on odd x odd boards the twin step counts two)."""
    check_board_size(height, width)
    if height % 2 == 0:
        return tuple(_even_rows_cycle(height, width))
    if width % 2 == 0:
        return tuple((c, r) for r, c in _even_rows_cycle(width, height))
    return tuple(_odd_cycle(height, width))


def _even_rows_cycle(height: int, width: int) -> list[tuple[int, int]]:
    route = [(0, c) for c in range(width)]
    for r in range(1, height):
        columns = range(width - 1, 0, -1) if r % 2 else range(1, width)
        route.extend((r, c) for c in columns)
    route.extend((r, 0) for r in range(height - 1, 0, -1))
    return route


def _odd_cycle(height: int, width: int) -> list[tuple[int, int]]:
    """The even-rows cycle of rows 0..H-2, with detours into row H-1 in pairs of columns.

    Row H-2 is walked from column W-1 to 1; each pair (a, a-1) becomes (H-2, a), (H-1, a),
    (H-1, a-1), (H-2, a-1). The corner (H-1, 0) is listed right after (H-1, 1), as the twin
    of the following cell (H-2, 1).
    """
    last = height - 2
    route = [cell for cell in _even_rows_cycle(height - 1, width) if cell[0] != last]
    prefix_end = route.index((last - 1, width - 1)) + 1  # the upper rows come first
    bottom: list[tuple[int, int]] = []
    for a in range(width - 1, 1, -2):
        bottom += [(last, a), (height - 1, a), (height - 1, a - 1)]
        if a - 1 == 1:
            bottom.append((height - 1, 0))  # the twin of (last, 1)
        bottom.append((last, a - 1))
    bottom.append((last, 0))
    return route[:prefix_end] + bottom + route[prefix_end:]


# Symmetries of the board as maps of a (H, W) array; the last four need a square board.
_SYMMETRIES = (
    lambda a: a,
    lambda a: a[::-1, ::-1],
    lambda a: a[::-1, :],
    lambda a: a[:, ::-1],
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 3),
    lambda a: a.T,
    lambda a: a[::-1, ::-1].T,
)


def route_variants(height: int, width: int) -> int:
    """How many routes there are: the base route moved by each symmetry of the board, each walked
    both ways (16 on a square board, 8 otherwise)."""
    return 2 * (8 if height == width else 4)


@cache
def cycle_positions(height: int, width: int, variant: int = 0) -> tuple[np.ndarray, int]:
    """(position of each flat cell along route ``variant`` (H*W,) int64, number of positions M).

    Variant 2k + r is the base route moved by symmetry k and, for r = 1, walked backwards.
    """
    if not 0 <= variant < route_variants(height, width):
        raise ValueError(f"route variant {variant} out of range for a {height}x{width} board")
    base, size = _base_positions(height, width)
    moved = np.ascontiguousarray(_SYMMETRIES[variant // 2](base.reshape(height, width))).reshape(-1)
    position = (-moved) % size if variant % 2 else moved.copy()
    position.setflags(write=False)
    return position, size


@cache
def _base_positions(height: int, width: int) -> tuple[np.ndarray, int]:
    route = cycle_route(height, width)
    position = np.full(height * width, -1, dtype=np.int64)
    index = 0
    for r, c in route:
        if height % 2 and width % 2 and (r, c) == (height - 2, 1):
            index -= 1  # the twin: same position as the corner listed just before
        position[r * width + c] = index
        index += 1
    return position, index


@cache
def back_distance_table(height: int, width: int, variant: int = 0) -> np.ndarray:
    """(NUM_CELL_CLASSES, H*W): for a head/body code at a cell, the forward distance along the
    route from the segment it points to (toward the tail) to the cell itself; 0 elsewhere.

    Summed over a board this is S, the snake's span along the route, without tracing the body.
    """
    position, size = cycle_positions(height, width, variant)
    table = np.zeros((NUM_CELL_CLASSES, height * width), dtype=np.int64)
    rows, cols = np.divmod(np.arange(height * width), width)
    for code in range(HEAD_UP, BODY_LEFT + 1):
        dr, dc = DELTAS[(code - HEAD_UP) % 4]
        nr, nc = rows + dr, cols + dc
        inside = (nr >= 0) & (nr < height) & (nc >= 0) & (nc < width)
        target = np.clip(nr, 0, height - 1) * width + np.clip(nc, 0, width - 1)
        table[code] = np.where(inside, (position - position[target]) % size, 0)
    table.setflags(write=False)
    return table


@cache
def neighbour_table(height: int, width: int) -> np.ndarray:
    """(H*W, 4) the flat cell next to each cell in each direction; H*W where that is off the board."""
    cells = height * width
    rows, cols = np.divmod(np.arange(cells), width)
    table = np.empty((cells, 4), dtype=np.int64)
    for direction, (dr, dc) in enumerate(DELTAS):
        nr, nc = rows + dr, cols + dc
        inside = (nr >= 0) & (nr < height) & (nc >= 0) & (nc < width)
        table[:, direction] = np.where(inside, nr * width + nc, cells)
    table.setflags(write=False)
    return table
