"""Experts that label the dataset, all batched: a board-filling expert, an A* expert, a heuristic one.

Boards are handled many at a time. Each board's free cells are kept as one bit mask per
row (uint8/16/32 for W <= 8/16/32), so a breadth-first search step over a whole batch is a
handful of array shifts on a (B, H) array instead of a Python loop per board.

Fill expert (``kind="fill"``, the default for datasets), per board:

1. While the snake covers less than GREEDY_PHASE_FILL of the board: the A* expert's path to the
   food (below), if its virtual snake reaches its tail even with the tail held back one more move.
2. Else, if the snake is *in cycle order* on one of the routes of hamilton.py (a Hamiltonian
   cycle moved by the board's symmetries, both directions; on odd x odd boards, where no
   Hamiltonian cycle exists, a cycle whose one "twin" position holds two cells, so every cell is
   still on it): the order-keeping move that goes furthest along the route without passing the
   food. In cycle order some move always keeps the order, and the snake cannot die: every cell
   ahead of the head up to the tail's position is free. The shortcut never passes the food, so
   the distance to it shrinks every move: no loops.
3. Else (a learner's state, a crooked start, the end of the A* phase): a move into cycle order
   on some route; else one after which following a route is safe for every segment (each is
   vacated before the head gets there; the body then drains into cycle order); else the A*
   expert's move if its tail search calls it safe, else any move it calls safe.

A* expert (``kind="astar"``), per board:

1. Shortest path to the food by a *time-aware* breadth-first search: a body segment counts
   as an obstacle only until the tail has moved past it (segment i of a length-L snake is
   free from step L - i on). With unit steps, breadth-first search finds a path as short as
   A*'s, and it runs over the whole batch at once without a priority queue.
2. Take that path only if a virtual snake that has followed it and eaten can still catch up
   with its own tail: a second time-aware search from the food must enter a cell of the
   virtual body after that cell has been vacated. From such a cell the snake can chase its
   tail forever, so the check is sound (it ignores food eaten later).
3. Otherwise follow the tail along the longest safe route: among moves after which the same
   time-aware search still catches the tail, take the one farthest (breadth-first distance
   through free cells) from the tail. Moves onto the food are not taken here, since eating
   stops the tail.
4. Otherwise the move that keeps the most free cells reachable; a move into certain death
   is made only when every move is one, and then into the body rather than a wall or the neck.

The heuristic expert (``kind="heuristic"``) moves greedily toward the food among moves that
are not certain death, preferring cells with more free neighbours and avoiding dead ends.
``kind="cycle"`` is the plain Hamiltonian cycle (step 2 without shortcuts), a yardstick.
``kind="route"`` is the fill expert on one fixed route (the base route of hamilton.py, no symmetry
or direction to choose) and without the A* phase: steps 2 and 3 only. It eats a little less than
fill, but its move is a function of positions along one known route, which a learner can imitate
(the choice among 16 routes and the A* phase's tail search are what learners got wrong).
All are deterministic functions of the board.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial

import numpy as np

from snake_world_eqm.game.batched import as_batch, find_heads
from snake_world_eqm.game.encoding import (
    BODY_LEFT,
    BODY_UP,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    HEAD_UP,
    NUM_CELL_CLASSES,
    TAIL,
    encode_observation,
)
from snake_world_eqm.game.hamilton import (
    back_distance_table,
    cycle_positions,
    neighbour_table,
    route_variants,
)
from snake_world_eqm.game.state import (  # noqa: F401  (EXPERT_KINDS re-exported)
    DELTA_COLS,
    DELTA_ROWS,
    DELTAS,
    EXPERT_KINDS,
    NUM_ACTIONS,
    SnakeState,
)

# Keep the layers of one search below this many bytes by splitting large batches.
_LAYER_BYTES_BUDGET = 64 * 2**20


def expert_actions(obs: np.ndarray, kind: str = "astar", num_threads: int = 1) -> np.ndarray:
    """The expert's action (B,) int64 for each board of ``obs`` (B, H, W); 0 for terminal boards.

    ``num_threads`` > 1 splits a large batch across threads (numpy releases the GIL inside its
    array loops); the decisions do not depend on it.
    """
    if kind not in EXPERT_KINDS:
        raise ValueError(f"unknown expert kind {kind!r}; choose one of {EXPERT_KINDS}")
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive int, got {num_threads!r}")
    obs = as_batch(obs)
    batch, height, width = obs.shape
    # Bound the memory of one search's recorded layers by splitting large batches.
    chunk = max(1, _LAYER_BYTES_BUDGET // (4 * height * (height * width + 1)))
    if num_threads > 1 and batch >= 256 * num_threads:
        chunk = min(chunk, -(-batch // num_threads))
    parts = [obs[start : start + chunk] for start in range(0, batch, chunk)]
    decide = partial(_decide, kind=kind)
    if num_threads > 1 and len(parts) > 1:
        with ThreadPoolExecutor(num_threads) as pool:
            chosen = list(pool.map(decide, parts))
    else:
        chosen = [decide(part) for part in parts]
    return np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)


def _decide(obs: np.ndarray, kind: str) -> np.ndarray:
    actions = np.zeros(obs.shape[0], dtype=np.int64)
    live = np.flatnonzero((obs >= HEAD_ALONE).any(axis=(1, 2)))
    if live.size:
        if kind in ("fill", "cycle", "route"):
            actions[live] = _fill(obs[live], shortcuts=kind != "cycle", greedy=kind == "fill",
                                  one_route=kind == "route")
        else:
            boards = _Boards(obs[live])
            actions[live] = _astar(boards) if kind == "astar" else _heuristic(boards)
    return actions


def astar_action(state: SnakeState) -> int:
    """The A* expert's action for one state (the same decision as the batched path)."""
    if not isinstance(state, SnakeState):
        raise TypeError(f"astar_action expects a SnakeState, got {type(state).__name__}")
    return int(expert_actions(encode_observation(state)[None], "astar")[0])


def fill_action(state: SnakeState) -> int:
    """The fill expert's action for one state."""
    if not isinstance(state, SnakeState):
        raise TypeError(f"fill_action expects a SnakeState, got {type(state).__name__}")
    return int(expert_actions(encode_observation(state)[None], "fill")[0])


def heuristic_action(state: SnakeState) -> int:
    """The heuristic expert's action for one state."""
    if not isinstance(state, SnakeState):
        raise TypeError(f"heuristic_action expects a SnakeState, got {type(state).__name__}")
    return int(expert_actions(encode_observation(state)[None], "heuristic")[0])


_ARANGE = np.arange(1 << 16)


def _arange(n: int) -> np.ndarray:
    """np.arange(n), sliced from a cached array (it is asked for in every search step)."""
    global _ARANGE
    cached = _ARANGE  # one read of the global, so concurrent callers stay consistent
    if n > cached.size:
        cached = _ARANGE = np.arange(2 * n)
    return cached[:n]


class _Boards:
    """A parsed batch of live boards: body order, bit masks and the head's neighbours."""

    def __init__(self, obs: np.ndarray) -> None:
        self.batch, self.height, self.width = obs.shape
        self.num_cells = self.height * self.width
        self.rows = np.arange(self.batch)
        flat = obs.reshape(self.batch, self.num_cells)
        self.length = (flat >= HEAD_ALONE).sum(axis=1)
        self.head = find_heads(flat)
        self.has_food = (flat == FOOD).any(axis=1)
        self.food = np.argmax(flat == FOOD, axis=1)
        self.body = self._trace_bodies(flat)
        self.tail = self.body[self.rows, self.length - 1]
        # The narrowest unsigned word that holds a row: the searches are memory bound.
        self.word = np.uint8 if self.width <= 8 else np.uint16 if self.width <= 16 else np.uint32
        self.bit = (1 << np.arange(self.width)).astype(self.word)
        self.row_mask = self.word((1 << self.width) - 1)
        # Flat cell -> (row, bit); index -1 (no cell) maps to the extra last entry, bit 0.
        self.row_of = np.append(np.arange(self.num_cells) // self.width, 0)
        self.bit_of = np.append(self.bit[np.arange(self.num_cells) % self.width], self.word(0))
        # The trail: body from the tail to the head (trail[k] is vacated at step k + 1), -1 padded.
        steps = np.arange(self.body.shape[1])[None, :]
        self.trail = np.where(steps < self.length[:, None],
                              _take_rows(self.body, self.rows, np.maximum(self.length[:, None] - 1 - steps, 0)), -1)
        self.body_bits = self.pack(flat >= HEAD_ALONE)
        self.free_bits = ~self.body_bits & self.row_mask  # empty and food cells
        self._neighbours()

    def _trace_bodies(self, flat: np.ndarray) -> np.ndarray:
        """(B, max length) flat cell of each segment, head first; padded with the tail."""
        # Each cell's successor along the body (itself for a tail, an empty cell or food),
        # so that following the chain is one gather per segment.
        offset_of_code = np.zeros(NUM_CELL_CLASSES, dtype=np.int64)
        for code in range(HEAD_UP, BODY_LEFT + 1):
            direction = (code - HEAD_UP) % 4
            offset_of_code[code] = DELTA_ROWS[direction] * self.width + DELTA_COLS[direction]
        # Indices into the whole batch flattened, so that each step is a cheap 1-D take.
        base = self.rows * self.num_cells
        successor = (np.arange(flat.size) + offset_of_code[flat].ravel()).astype(np.int64)
        columns = [self.head + base]
        for _ in range(1, int(self.length.max())):
            columns.append(successor.take(columns[-1]))
        return np.stack(columns, axis=1) - base[:, None]

    def _neighbours(self) -> None:
        """Cells next to the head and whether moving there is not certain death."""
        r, c = self.head // self.width, self.head % self.width
        nr, nc = r[:, None] + DELTA_ROWS[None], c[:, None] + DELTA_COLS[None]
        inside = (nr >= 0) & (nr < self.height) & (nc >= 0) & (nc < self.width)
        self.nb_r = np.clip(nr, 0, self.height - 1)
        self.nb_c = np.clip(nc, 0, self.width - 1)
        self.nb = self.nb_r * self.width + self.nb_c
        self.nb_is_food = inside & self.has_food[:, None] & (self.nb == self.food[:, None])
        free = self.test(self.free_bits, self.nb_r, self.nb_c)
        # The tail cell is free to enter when not eating, except as the neck of a length-2 snake.
        into_tail = (self.nb == self.tail[:, None]) & (self.length[:, None] >= 3)
        self.nb_legal = inside & (free | into_tail)

    def pack(self, cells: np.ndarray) -> np.ndarray:
        """(B, H*W) bool → (B, H) row bit masks (bit c of row r is cell (r, c))."""
        grid = cells.reshape(-1, self.height, self.width)
        packed = np.packbits(grid, axis=-1, bitorder="little")
        size = np.dtype(self.word).itemsize
        padded = np.zeros(grid.shape[:2] + (size,), dtype=np.uint8)
        padded[..., : packed.shape[-1]] = packed
        return padded.view(f"<u{size}")[..., 0].astype(self.word)

    def cell_bit(self, cell: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return cell // self.width, self.bit[cell % self.width]

    @staticmethod
    def test(bits: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
        """Whether cell (r, c) is set, for index arrays r, c of shape (B, ...)."""
        rows = _arange(bits.shape[0]).reshape((-1,) + (1,) * (r.ndim - 1))
        return ((bits[rows, r] >> c.astype(bits.dtype)) & 1).astype(bool)

    def dilate(self, bits: np.ndarray) -> np.ndarray:
        """The cells next to any set cell (4-neighbourhood), staying on the board."""
        out = ((bits << 1) | (bits >> 1)) & self.row_mask
        out[:, 1:] |= bits[:, :-1]
        out[:, :-1] |= bits[:, 1:]
        return out


def _timed_search(
    boards: _Boards,
    start: np.ndarray,
    passable: np.ndarray,
    release: np.ndarray,
    target: np.ndarray,
    record: bool = False,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Breadth-first search from ``start`` in which obstacles disappear over time.

    ``passable`` (B, H) bits are the cells free at time 0; ``release[b, t - 1]`` is the flat
    cell that becomes free at step t (-1: none). Returns the step at which the search first
    enters a ``target`` cell (0: never) and, if ``record``, the frontier of every step.
    """
    hit_time = np.zeros(boards.batch, dtype=np.int64)
    layers: list[np.ndarray] = []
    active = np.arange(boards.batch)
    release_row, release_bit = boards.row_of[release], boards.bit_of[release]
    start_r, start_bit = boards.cell_bit(start)
    frontier = np.zeros((boards.batch, boards.height), dtype=boards.word)
    frontier[boards.rows, start_r] = start_bit
    # Cells that are free now and not yet visited; a visit or a release flips a cell's bit.
    unvisited = passable & ~frontier
    step = 0
    while active.size:
        step += 1
        if step <= release.shape[1]:
            unvisited[_arange(active.size), release_row[active, step - 1]] |= release_bit[active, step - 1]
        nxt = boards.dilate(frontier) & unvisited
        unvisited ^= nxt
        if record:
            layer = np.zeros((boards.batch, boards.height), dtype=boards.word)
            layer[active] = nxt
            layers.append(layer)
        hit = (nxt & target).any(axis=1)
        hit_time[active[hit]] = step
        keep = ~hit & nxt.any(axis=1)
        if not keep.all():
            active, nxt, unvisited, target = active[keep], nxt[keep], unvisited[keep], target[keep]
        frontier = nxt
    return hit_time, layers


def _take_rows(array: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """``array[rows[:, None], columns]`` for a C-contiguous 2-D array, as one 1-D take (faster)."""
    return np.ascontiguousarray(array).reshape(-1).take(rows[:, None] * array.shape[1] + columns)


def _with_spare_column(schedule: np.ndarray) -> np.ndarray:
    """The schedule with one more (empty, -1) step, so that step 2 always exists."""
    out = np.full((schedule.shape[0], schedule.shape[1] + 1), -1, dtype=np.int64)
    out[:, :-1] = schedule
    return out


def _delayed(schedule: np.ndarray, delay: int) -> np.ndarray:
    """The release schedule ``delay`` moves later."""
    if not delay:
        return schedule
    return np.concatenate([np.full((schedule.shape[0], delay), -1, dtype=schedule.dtype), schedule], axis=1)


def _length_two_waits(schedule: np.ndarray, length: np.ndarray) -> np.ndarray:
    """A length-2 snake may not enter its neck at step 1 (a reversal): free it one step later."""
    pair = np.flatnonzero(length == 2)
    if pair.size:
        schedule[pair, 1] = schedule[pair, 0]
        schedule[pair, 0] = -1
    return schedule


def food_distances(obs: np.ndarray) -> np.ndarray:
    """(B,) moves the head needs to reach the food when body segments free up as the tail
    moves on (the A* expert's first search); 0 where the food is out of reach or absent."""
    obs = as_batch(obs)
    distance = np.zeros(obs.shape[0], dtype=np.int64)
    live = np.flatnonzero((obs >= HEAD_ALONE).any(axis=(1, 2)))
    if live.size:
        distance[live] = _food_search(_Boards(obs[live]))[0]
    return distance


def _food_search(boards: _Boards) -> tuple[np.ndarray, list[np.ndarray]]:
    # Segment L - t (the trail's entry t - 1) is vacated at step t; the head never needs to be.
    steps = np.arange(boards.trail.shape[1])[None, :]
    schedule = np.where(steps < boards.length[:, None] - 1, boards.trail, -1)
    schedule = _length_two_waits(_with_spare_column(schedule), boards.length)
    target = np.zeros((boards.batch, boards.height), dtype=boards.word)
    target[boards.rows, boards.row_of[boards.food]] = np.where(boards.has_food, boards.bit_of[boards.food], 0)
    return _timed_search(boards, boards.head, boards.free_bits, schedule, target, record=True)


def _astar(boards: _Boards) -> np.ndarray:
    actions = np.full(boards.batch, -1, dtype=np.int64)
    distance, layers = _food_search(boards)
    found = np.flatnonzero(distance > 0)
    if found.size:
        path, virtual_bits = _backtrack(boards, layers, distance, found)
        safe = _eaten_snake_is_safe(boards, found, path, distance[found], virtual_bits)
        actions[found[safe]] = _direction(boards, boards.head[found[safe]], path[safe, 0])
    undecided = np.flatnonzero(actions < 0)
    if undecided.size:
        actions[undecided] = _follow_tail(boards, undecided)
    undecided = np.flatnonzero(actions < 0)
    if undecided.size:
        actions[undecided] = _most_room(boards, undecided)
    return actions


def _backtrack(
    boards: _Boards, layers: list[np.ndarray], distance: np.ndarray, found: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Shortest paths p_1..p_D (p_D the food) for boards ``found``, as (F, max D) flat cells.

    Also returns the bits of the body after following the path and eating: the path's last
    L + 1 cells and the segments the tail has not yet passed.
    """
    height, width = boards.height, boards.width
    offsets = np.array([-width, 1, width, -1], dtype=np.int64)
    # Longest paths first, so the boards still being traced at each step are a prefix.
    order = np.argsort(-distance[found], kind="stable")
    boards_sorted, dist = found[order], distance[found][order]
    length, trail = boards.length[boards_sorted], boards.trail[boards_sorted]
    count, rows = found.size, _arange(found.size)
    path = np.zeros((count, int(dist.max())), dtype=np.int64)
    path[rows, dist - 1] = boards.food[boards_sorted]
    kept = boards.body_bits[boards_sorted].copy()
    added = np.zeros_like(kept)
    added[rows, boards.row_of[path[rows, dist - 1]]] |= boards.bit_of[path[rows, dist - 1]]
    for index in range(int(dist.max()) - 1, 0, -1):
        count = int(np.searchsorted(-dist, -index, side="left"))  # boards with dist > index
        rows = _arange(count)
        cell = path[:count, index]
        step = cell + offsets[_predecessor_direction(layers[index - 1], boards_sorted[:count], cell, height, width)]
        path[:count, index - 1] = step
        # p_index stays in the grown body when index >= D - L; trail[index - 1] has been vacated.
        in_body = index >= dist[:count] - length[:count]
        added[rows, boards.row_of[step]] |= np.where(in_body, boards.bit_of[step], 0).astype(boards.word)
        if index - 1 < trail.shape[1]:  # beyond the trail's width nothing is left to vacate
            gone = trail[:count, index - 1]
            kept[rows, boards.row_of[gone]] &= ~boards.bit_of[gone]
    unsorted_path, unsorted_bits = np.empty_like(path), np.empty_like(kept)
    unsorted_path[order], unsorted_bits[order] = path, kept | added
    return unsorted_path, unsorted_bits


def _predecessor_direction(
    layer: np.ndarray, board: np.ndarray, cell: np.ndarray, height: int, width: int
) -> np.ndarray:
    """Direction from ``cell`` to a neighbour in ``layer`` (first of up, right, down, left).

    Reads the rows above, at and below the cell with 1-D takes and tests single bits.
    """
    r, c = cell // width, cell % width
    flat = layer.reshape(-1)  # layers are created contiguous
    start = board * height
    middle = flat.take(start + r)
    above = np.where(r > 0, flat.take(start + np.maximum(r - 1, 0)), 0)
    below = np.where(r < height - 1, flat.take(start + np.minimum(r + 1, height - 1)), 0)
    shift = c.astype(layer.dtype)
    up = (above >> shift) & 1
    right = (middle >> (shift + 1)) & 1  # bit W is never set, so the right edge reads 0
    down = (below >> shift) & 1
    return np.where(up > 0, 0, np.where(right > 0, 1, np.where(down > 0, 2, 3)))


def _eaten_snake_is_safe(
    boards: _Boards, found: np.ndarray, path: np.ndarray, dist: np.ndarray, virtual_bits: np.ndarray, delay: int = 0
) -> np.ndarray:
    """Whether the snake, after following ``path`` and eating, can still reach its own tail.

    The grown body (length L + 1) is vacated in the order trail ++ path from entry D - 1 on;
    ``delay`` more moves before the tail starts (as if that many more apples were eaten at once).
    """
    length = boards.length[found]
    steps = np.arange(int(length.max()))[None, :]
    entry = dist[:, None] - 1 + steps
    from_trail = entry < length[:, None]
    trail = boards.trail[found]
    cells = np.where(
        from_trail,
        _take_rows(trail, _arange(found.size), np.minimum(entry, trail.shape[1] - 1)),
        _take_rows(path, _arange(found.size), np.clip(entry - length[:, None], 0, path.shape[1] - 1)),
    )
    schedule = np.where(steps < length[:, None], cells, -1)
    schedule = _delayed(_length_two_waits(_with_spare_column(schedule), length + 1), delay)
    sub = _Subset(boards, found)
    passable = ~virtual_bits & sub.row_mask
    hit, _ = _timed_search(sub, boards.food[found], passable, schedule, virtual_bits)
    return hit > 0


def _safe_moves(boards: _Boards, index: np.ndarray) -> np.ndarray:
    """(U, 4) whether each legal, non-eating move keeps the tail reachable (time-aware)."""
    legal = boards.nb_legal[index] & ~boards.nb_is_food[index]
    safe = np.zeros((index.size, NUM_ACTIONS), dtype=bool)
    rows, moves = np.nonzero(legal)
    if not rows.size:
        return safe
    board = index[rows]
    cell = boards.nb[board, moves]
    length = boards.length[board]
    # After the move the body is [cell, b_0 .. b_{L-2}]: the old tail is free, the new head is not.
    bits = boards.body_bits[board].copy()
    tail = boards.tail[board]
    sub_rows = _arange(rows.size)
    bits[sub_rows, boards.row_of[tail]] &= ~boards.bit_of[tail]
    bits[sub_rows, boards.row_of[cell]] |= boards.bit_of[cell]
    schedule = _with_spare_column(boards.trail[board, 1:])
    schedule = _length_two_waits(schedule, length)
    sub = _Subset(boards, board)
    hit, _ = _timed_search(sub, cell, ~bits & sub.row_mask, schedule, bits)
    safe[rows, moves] = hit > 0
    return safe


class _Subset(_Boards):
    """The geometry of a _Boards restricted to some boards (only what the searches need)."""

    def __init__(self, boards: _Boards, index: np.ndarray) -> None:  # noqa: D107 - no parsing again
        self.batch, self.height, self.width = index.size, boards.height, boards.width
        self.num_cells, self.rows = boards.num_cells, np.arange(index.size)
        self.bit, self.row_mask, self.word = boards.bit, boards.row_mask, boards.word
        self.row_of, self.bit_of = boards.row_of, boards.bit_of


def _direction(boards: _Boards, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The action that moves from ``source`` to the adjacent ``target`` (flat cells)."""
    diff = target - source
    return np.select([diff == -boards.width, diff == 1, diff == boards.width], [0, 1, 2], 3).astype(np.int64)


def _follow_tail(boards: _Boards, index: np.ndarray) -> np.ndarray:
    """Moves toward the tail by the longest route (farthest safe neighbour); -1 where none is safe."""
    sub = _Subset(boards, index)
    candidates = _safe_moves(boards, index)
    tail = boards.tail[index]
    distance = np.where(boards.nb[index] == tail[:, None], 0, -1)
    pending = candidates & (distance < 0)
    tail_r, tail_bit = sub.cell_bit(tail)
    frontier = np.zeros((index.size, boards.height), dtype=boards.word)
    frontier[sub.rows, tail_r] = tail_bit
    visited = frontier.copy()
    passable = boards.free_bits[index]
    nb_r, nb_c = boards.nb_r[index], boards.nb_c[index]
    step = 0
    while pending.any() and frontier.any():
        step += 1
        frontier = sub.dilate(frontier) & passable & ~visited
        visited |= frontier
        reached = pending & _Boards.test(frontier, nb_r, nb_c)
        distance[reached] = step
        pending &= ~reached
    # A safe move the static search did not reach still beats no safe move at all.
    distance = np.where(candidates, np.maximum(distance, 0), -1)
    best = np.argmax(distance, axis=1)
    return np.where(distance.max(axis=1) >= 0, best, -1)


def _most_room(boards: _Boards, index: np.ndarray) -> np.ndarray:
    """The legal move with the most free cells reachable after it.

    If every move is death, one into the body rather than the wall or the neck.
    """
    rooms = np.zeros((index.size, NUM_ACTIONS), dtype=np.int64)
    sub = _Subset(boards, index)
    passable = boards.free_bits[index] | _tail_bits(boards, index)
    for direction in range(NUM_ACTIONS):
        legal = boards.nb_legal[index, direction]
        start = boards.nb[index, direction]
        rooms[:, direction] = np.where(legal, _flood_size(sub, start, passable), -1)
    best = np.argmax(rooms, axis=1)
    return np.where(rooms.max(axis=1) >= 0, best, _least_bad(boards, index))


def _least_bad(boards: _Boards, index: np.ndarray) -> np.ndarray:
    """A move that stays on the board and is not a reversal (one always exists on a 4x4+ board)."""
    r, c = boards.head[index] // boards.width, boards.head[index] % boards.width
    nr, nc = r[:, None] + DELTA_ROWS[None], c[:, None] + DELTA_COLS[None]
    inside = (nr >= 0) & (nr < boards.height) & (nc >= 0) & (nc < boards.width)
    neck = boards.body[index, np.minimum(1, boards.length[index] - 1)]
    not_neck = (boards.nb[index] != neck[:, None]) | (boards.length[index, None] < 2)
    return np.argmax(inside & not_neck, axis=1).astype(np.int64)


def _tail_bits(boards: _Boards, index: np.ndarray) -> np.ndarray:
    tail_r, tail_bit = boards.cell_bit(boards.tail[index])
    bits = np.zeros((index.size, boards.height), dtype=boards.word)
    bits[np.arange(index.size), tail_r] = np.where(boards.length[index] >= 3, tail_bit, 0)
    return bits


def _flood_size(sub: _Boards, start: np.ndarray, passable: np.ndarray) -> np.ndarray:
    start_r, start_bit = sub.cell_bit(start)
    region = np.zeros_like(passable)
    region[sub.rows, start_r] = start_bit
    while True:
        grown = region | (sub.dilate(region) & passable)
        if np.array_equal(grown, region):
            return np.bitwise_count(region).sum(axis=1).astype(np.int64)
        region = grown


def _heuristic(boards: _Boards) -> np.ndarray:
    """Greedy toward the food among non-fatal moves; prefers cells with more free neighbours."""
    nb_r, nb_c = boards.nb_r, boards.nb_c
    passable = boards.free_bits | _tail_bits(boards, boards.rows)
    exits = np.zeros((boards.batch, NUM_ACTIONS), dtype=np.int64)
    for direction in range(NUM_ACTIONS):
        r, c = nb_r + DELTA_ROWS[direction], nb_c + DELTA_COLS[direction]
        inside = (r >= 0) & (r < boards.height) & (c >= 0) & (c < boards.width)
        r, c = np.clip(r, 0, boards.height - 1), np.clip(c, 0, boards.width - 1)
        exits += inside & _Boards.test(passable, r, c) & ((r * boards.width + c) != boards.head[:, None])
    food_r, food_c = boards.food // boards.width, boards.food % boards.width
    distance = np.abs(nb_r - food_r[:, None]) + np.abs(nb_c - food_c[:, None])
    # Lexicographic score: legal first, then not a dead end (unless it is the food), then closer, then roomier.
    alive = boards.nb_legal & ((exits > 0) | boards.nb_is_food)
    score = boards.nb_legal * 10_000 + alive * 1_000 - distance * 10 + exits
    best = np.argmax(score, axis=1).astype(np.int64)
    return np.where(boards.nb_legal.any(axis=1), best, _least_bad(boards, boards.rows))


# ----------------------------------------------------------------------------------------------
# The fill expert: A* while the snake is short, then shortcuts along a fixed route in cycle order.

# While the snake covers less than this share of the board, the A* path (when its virtual snake is
# safe) beats the route's shortcuts (10x10, 40 games: 2,279 mean steps to a win with no A* phase,
# ~2,020-2,130 with 0.3-0.4); longer A* phases leave coiled snakes that may not get back into cycle
# order (0.5: 2 deaths in 40 games on 10x10, a stall in 40 on 12x9; 0.7: 23 stalls in 40).
GREEDY_PHASE_FILL = 0.3
# The A* checks ignore apples eaten later; new food in a corridor then killed snakes in the A*
# phase (2 of 200 games on 12x9). Holding the virtual tail back this many moves leaves room for it.
SAFETY_MARGIN = 1


def _fill(obs: np.ndarray, shortcuts: bool = True, greedy: bool = True, one_route: bool = False) -> np.ndarray:
    """The fill expert (``shortcuts``, ``greedy``), the route expert (``one_route``, no ``greedy``) or
    the plain cycle on live boards.

    A short snake takes the A* path when it is safe (``greedy``); a snake in cycle order on one of the
    routes (the first such, in a fixed order; only the base route with ``one_route``) takes that
    route's best order-keeping move; the rest are steered back into order (see _restore_order).
    """
    height, width = obs.shape[1:]
    variants = 1 if one_route else route_variants(height, width)
    actions = np.full(obs.shape[0], -1, dtype=np.int64)
    snakes = _Snakes(obs)
    if shortcuts and greedy:
        short = np.flatnonzero(snakes.length < GREEDY_PHASE_FILL * height * width)
        if short.size:
            actions[short] = _greedy_path_move(_Boards(obs[short]))
    pending = np.flatnonzero(actions < 0)
    part = snakes.subset(pending)
    for variant in range(variants):
        if not pending.size:
            break
        order = _CycleOrder(part, variant)
        chosen = order.shortcut() if shortcuts else order.follow()
        actions[pending] = chosen
        keep = chosen < 0
        pending, part = pending[keep], part.subset(np.flatnonzero(keep))
    if pending.size:
        actions[pending] = _restore_order(obs[pending], part, variants)
    return actions


class _Snakes:
    """What the route computations need from each board, read from the cell codes once (no tracing)."""

    _PER_BOARD = ("flat", "length", "head", "tail", "food", "has_food", "nb", "legal", "eats", "new_length",
                  "before_tail", "before_tail_code")

    def __init__(self, obs: np.ndarray) -> None:
        batch, self.height, self.width = obs.shape
        self.num_cells = cells = self.height * self.width
        self.flat = flat = obs.reshape(batch, cells)
        rows = _arange(batch)
        snake = flat >= HEAD_ALONE
        self.length = np.count_nonzero(snake, axis=1)
        self.head = np.argmax(snake & (flat <= HEAD_LEFT), axis=1)
        self.tail = np.where(self.length >= 2, np.argmax(flat == TAIL, axis=1), self.head)
        is_food = flat == FOOD
        self.food = np.argmax(is_food, axis=1)
        self.has_food = is_food[rows, self.food]
        # Neighbour tables carry one extra "off the board" cell, read as EMPTY's opposite: a wall.
        neighbours = neighbour_table(self.height, self.width)
        padded = np.concatenate([flat, np.full((batch, 1), -1, dtype=flat.dtype)], axis=1)
        self.nb = neighbours[self.head]
        code = _take_rows(padded, rows, self.nb)
        inside = self.nb < cells
        into_tail = (self.nb == self.tail[:, None]) & (self.length[:, None] >= 3)
        self.legal = inside & (((code >= 0) & (code <= FOOD)) | into_tail)
        self.eats = code == FOOD
        self.new_length = self.length[:, None] + self.eats
        # The segment before the tail is the tail's neighbour that points back at it.
        around = neighbours[self.tail]
        around_code = _take_rows(padded, rows, around).astype(np.int64)
        back = (np.arange(NUM_ACTIONS)[None] + 2) % 4
        points = (around_code == HEAD_UP + back) | (around_code == BODY_UP + back)
        which = np.argmax(points, axis=1)
        found = points[rows, which] & (self.length >= 2)
        self.before_tail = np.where(found, around[rows, which], 0)
        self.before_tail_code = np.where(found, around_code[rows, which], 0)

    def subset(self, index: np.ndarray) -> _Snakes:
        part = object.__new__(_Snakes)
        part.height, part.width, part.num_cells = self.height, self.width, self.num_cells
        for name in self._PER_BOARD:
            setattr(part, name, getattr(self, name)[index])
        return part


@cache
def _cell_major(height: int, width: int, variant: int) -> np.ndarray:
    return np.ascontiguousarray(back_distance_table(height, width, variant).T).reshape(-1)


class _CycleOrder:
    """Each board's span along one route (see hamilton.py) and, per move, whether the snake is in
    cycle order after it."""

    def __init__(self, snakes: _Snakes, variant: int = 0) -> None:
        height, width, cells = snakes.height, snakes.width, snakes.num_cells
        self.num_cells = cells
        self.position, self.size = position, size = cycle_positions(height, width, variant)
        self.length, self.head, self.food, self.eats = snakes.length, snakes.head, snakes.food, snakes.eats
        self.legal, self.new_length = snakes.legal, snakes.new_length
        table = back_distance_table(height, width, variant)
        # One gather per cell: the table is read cell-major so that int8 codes index it directly.
        self.span = _cell_major(height, width, variant).take(_arange(cells) * NUM_CELL_CLASSES + snakes.flat).sum(axis=1)
        last = table[snakes.before_tail_code, snakes.before_tail]  # 0 for a one-cell snake
        head_position = position[self.head]
        self.step = (np.append(position, 0)[snakes.nb] - head_position[:, None]) % size
        self.food_distance = np.where(snakes.has_food, (position[self.food] - head_position) % size, 0)
        after_plain = np.where(self.length[:, None] == 1, 0, self.span[:, None] + self.step - last[:, None])
        self.new_span = np.where(self.eats, self.span[:, None] + self.step, after_plain)
        won = self.eats & (self.new_length == cells)
        self.keeps_order = self.legal & ((self.new_span <= self._limit(self.new_length)) | won)
        self.in_order = self.span <= self._limit(self.length)

    def _limit(self, length: np.ndarray) -> np.ndarray:
        # A length-2 snake whose next position is its tail's would step into its neck.
        return np.where(length == 2, self.size - 2, self.size - 1)

    def preference(self, allowed: np.ndarray) -> np.ndarray:
        """Among ``allowed`` moves, the longest step along the route that stops short of the food, or
        the food; all allowed moves count when none does. (Stopping short, not at the food's position:
        on an odd x odd board the food's twin shares it, and stepping there would pass the food.)"""
        short = allowed & ((self.step < self.food_distance[:, None]) | self.eats)
        within = np.where(short.any(axis=1)[:, None], short, allowed)
        # Catching up with the tail (no position left between head and tail) is the last choice: a
        # head that hugs its tail on an odd x odd board could never eat food on the tail's twin.
        tight = ~self.eats & (self.new_span >= self.size - 1)
        return np.where(within, 2 * self.step + self.eats - tight * (4 * self.size), -4 * self.size - 1)

    def shortcut(self) -> np.ndarray:
        """The best order-keeping move for boards in cycle order; -1 for the others."""
        ready = self.in_order & self.keeps_order.any(axis=1)
        return np.where(ready, np.argmax(self.preference(self.keeps_order), axis=1), -1)

    def follow(self) -> np.ndarray:
        """The next position along the route (the food first on the twin step) for boards in
        cycle order; -1 for the others."""
        ready = self.in_order & self.keeps_order.any(axis=1)
        score = np.where(self.keeps_order, -4 * self.step + self.eats, np.iinfo(np.int64).min // 2)
        return np.where(ready, np.argmax(score, axis=1), -1)


def _greedy_path_move(boards: _Boards) -> np.ndarray:
    """The first move of the A* expert's shortest path to the food where the snake that follows it
    and eats can still reach its tail, and the snake right after the move can too, both with the
    tail held back SAFETY_MARGIN more moves; -1 elsewhere."""
    actions = np.full(boards.batch, -1, dtype=np.int64)
    distance, layers = _food_search(boards)
    found = np.flatnonzero(distance > 0)
    if found.size:
        path, virtual_bits = _backtrack(boards, layers, distance, found)
        safe = _eaten_snake_is_safe(boards, found, path, distance[found], virtual_bits, delay=SAFETY_MARGIN)
        actions[found[safe]] = _direction(boards, boards.head[found[safe]], path[safe, 0])
    chosen = np.flatnonzero(actions >= 0)
    if chosen.size:
        wanted = np.zeros((boards.batch, NUM_ACTIONS), dtype=bool)
        wanted[chosen, actions[chosen]] = True
        still_safe = _post_move_safe(boards, wanted, delay=SAFETY_MARGIN)[chosen, actions[chosen]]
        actions[chosen[~still_safe]] = -1
    return actions


def _restore_order(obs: np.ndarray, snakes: _Snakes, variants: int) -> np.ndarray:
    """Boards in cycle order on no route (a learner's states, a crooked start, the end of the A* phase).

    The first ``variants`` routes are tried in their fixed order; on the first that offers one, a move into cycle order
    (best route preference), else a move after which following the route is safe (eating first, then
    the shortest step: the body then drains into cycle order within L moves, see _route_slack).
    Both are safe by construction. Boards with neither get, among the moves the tail search calls
    safe, preferably one that stays safe with the tail held back SAFETY_MARGIN moves, and the A*
    expert's move first; with none, the A* expert's own fallback.
    """
    boards = _Boards(obs)
    moves = np.full(boards.batch, -1, dtype=np.int64)
    pending, part = boards.rows, snakes
    for variant in range(variants):
        if not pending.size:
            break
        order = _CycleOrder(part, variant)
        keeps_route = _route_slack(boards.body[pending], boards.length[pending], boards.nb[pending], order)
        size = order.size
        into_order = order.preference(order.keeps_order) + 10 * size  # 6M..12M where allowed
        route = order.eats * 2 * size - order.step + 3 * size  # 2M..5M
        score = np.select([order.keeps_order, keeps_route], [into_order, route], -1)
        best = np.argmax(score, axis=1)
        found = score[_arange(pending.size), best] >= 0
        moves[pending[found]] = best[found]
        pending, part = pending[~found], part.subset(np.flatnonzero(~found))
    if pending.size:
        rest = _Boards(obs[pending])
        fallback = _astar(rest)
        safe = _post_move_safe(rest) & rest.nb_legal
        roomy = _post_move_safe(rest, safe, delay=SAFETY_MARGIN)
        score = np.where(safe, 1 + 2 * roomy + (np.arange(NUM_ACTIONS)[None] == fallback[:, None]), 0)
        moves[pending] = np.where(safe.any(axis=1), np.argmax(score, axis=1), fallback)
    return moves


def _route_slack(body: np.ndarray, length: np.ndarray, nb: np.ndarray, order: _CycleOrder) -> np.ndarray:
    """(B, 4) whether, after each move, the head could follow the route from there on without meeting
    a segment before the tail has vacated it (the snake in cycle order is the special case).

    Segment i (0 = head) lies k_i positions ahead of the head along the route and is vacated after
    L - i moves; its slack is k_i - (L - i). A move of d positions costs every segment d - 1 of slack
    (d when eating, which delays the tail by one move); a segment the move jumps past gains a lap (M).
    Eating the food met on the way costs the segments after it one more. Snakes shorter than 3 are
    left to the exact cycle-order test.
    """
    position, size = order.position, order.size
    along = position[body]
    ahead = (along - along[:, :1]) % size
    index = np.arange(along.shape[1])[None, :]
    length = length[:, None]
    slack = ahead - (length - index)
    step = order.step[:, :, None]
    eats = order.eats[:, :, None]
    # Non-eating moves drop the tail (segment L - 1); eating moves keep it.
    counted = (index[:, None, :] >= 1) & (index[:, None, :] <= length[:, :, None] - 2 + eats)
    passed = ahead[:, None, :] < step  # a lap ahead after the move
    after = slack[:, None, :] - step + 1 - eats + passed * size
    # Eating the food on the way delays the tail by one more move for every segment met after it.
    food_ahead = (position[order.food][:, None] - np.append(position, 0)[nb]) % size  # (B, 4)
    after_food = ~passed & ~eats & (ahead[:, None, :] - step > food_ahead[:, :, None])
    segments_ok = np.where(counted, after >= after_food, True).all(axis=2)
    old_head_ok = order.step <= size - length + 1 - order.eats
    return order.legal & segments_ok & old_head_ok & (order.new_length >= 3)


def _post_move_safe(boards: _Boards, moves: np.ndarray | None = None, delay: int = 0) -> np.ndarray:
    """(B, 4) whether each legal move (of ``moves``, a (B, 4) mask, if given), eating or not, leaves a
    snake that can still reach its tail (the A* expert's time-aware search, from the new head), with
    the tail held back ``delay`` more moves (room for apples eaten on the way)."""
    safe = np.zeros((boards.batch, NUM_ACTIONS), dtype=bool)
    rows, moves = np.nonzero(boards.nb_legal if moves is None else boards.nb_legal & moves)
    if not rows.size:
        return safe
    cell = boards.nb[rows, moves]
    eats = boards.nb_is_food[rows, moves]
    length = boards.length[rows]
    new_length = length + eats
    # After the move the body is [cell, b_0 .. b_{L-2}], or [cell, b_0 .. b_{L-1}] when eating.
    bits = boards.body_bits[rows].copy()
    sub_rows = _arange(rows.size)
    tail = boards.tail[rows]
    moved = ~eats
    bits[sub_rows[moved], boards.row_of[tail[moved]]] &= ~boards.bit_of[tail[moved]]
    bits[sub_rows, boards.row_of[cell]] |= boards.bit_of[cell]
    trail = boards.trail[rows]
    shifted = np.full_like(trail, -1)
    shifted[:, :-1] = trail[:, 1:]
    schedule = np.where(eats[:, None], trail, shifted)
    schedule = _delayed(_length_two_waits(_with_spare_column(schedule), new_length), delay)
    sub = _Subset(boards, rows)
    hit, _ = _timed_search(sub, cell, ~bits & sub.row_mask, schedule, bits)
    # A one-cell snake has no tail to chase, and always a free neighbour on a board of 16+ cells.
    safe[rows, moves] = (hit > 0) | (new_length == 1)
    return safe


def tail_reachable_after(obs: np.ndarray) -> np.ndarray:
    """(B, 4) bool: whether each move is legal and leaves a snake that can reach its own tail
    (the virtual-snake check the experts use; it ignores food eaten later). False for terminal boards."""
    obs = as_batch(obs)
    result = np.zeros((obs.shape[0], NUM_ACTIONS), dtype=bool)
    live = np.flatnonzero((obs >= HEAD_ALONE).any(axis=(1, 2)))
    if live.size:
        result[live] = _post_move_safe(_Boards(obs[live]))
    return result
