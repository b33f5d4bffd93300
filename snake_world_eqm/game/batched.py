"""The rules of :mod:`snake_world_eqm.game.rules` over a batch of encoded boards at once.

Works directly on (B, H, W) int8 observations with array operations, no Python loop per
board. It makes exactly the transitions of :func:`~snake_world_eqm.game.rules.step`,
including the random numbers drawn for food (one ``rng.random()`` per board that eats and
does not win, in board order), so a batch of one reproduces the single-board engine.
"""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.encoding import (
    BODY_UP,
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    HEAD_UP,
    TAIL,
    IllegalObservationError,
    check_observation_array,
    encode_observation,
    validate_observation,
)
from snake_world_eqm.game.rules import new_game
from snake_world_eqm.game.state import (
    DELTA_COLS,
    DELTA_ROWS,
    NUM_ACTIONS,
    REWARD_DEATH,
    REWARD_EAT,
    Event,
    as_generator,
    check_board_size,
    check_rng,
)

_OPPOSITE = np.array([2, 3, 0, 1], dtype=np.int64)


def as_batch(obs: np.ndarray) -> np.ndarray:
    """Checked (B, H, W) int8 view or copy of a batch of boards."""
    obs = check_observation_array(obs, batched=True)
    return obs if obs.dtype == np.int8 else obs.astype(np.int8)


def _check_actions(actions: object, batch: int) -> np.ndarray:
    actions = np.asarray(actions)
    if actions.shape != (batch,):
        raise ValueError(f"actions must have shape ({batch},), got {actions.shape}")
    if actions.dtype == np.bool_ or not np.issubdtype(actions.dtype, np.integer):
        raise TypeError(f"actions must be integers, got dtype {actions.dtype}")
    if batch and (actions.min() < 0 or actions.max() >= NUM_ACTIONS):
        raise ValueError(f"actions must lie in 0..3, found {int(actions.min())}..{int(actions.max())}")
    return actions.astype(np.int64)


def find_heads(flat: np.ndarray) -> np.ndarray:
    """Flat index of each board's head (0 for a terminal board)."""
    return np.argmax((flat >= HEAD_ALONE) & (flat <= HEAD_LEFT), axis=1)


def legal_boards(obs: np.ndarray) -> np.ndarray:
    """(B,) bool: each board is legal (one snake whose pointer chain runs from its single head to its tail
    through every snake cell, one food unless the snake fills the board) or is the all-EMPTY terminal board.

    The vectorised twin of :func:`~snake_world_eqm.game.encoding.validate_observation` (which says *why* a
    board is illegal); it walks all chains at once, one cell per iteration.
    """
    obs = as_batch(obs)
    batch, height, width = obs.shape
    cells = height * width
    flat = obs.reshape(batch, cells).astype(np.int64)
    rows = np.arange(batch)
    snake = flat >= HEAD_ALONE
    length = snake.sum(axis=1)
    heads = (flat >= HEAD_ALONE) & (flat <= HEAD_LEFT)
    food = (flat == FOOD).sum(axis=1)
    terminal = length == 0
    shape_ok = (heads.sum(axis=1) == 1) & ((food == 1) | ((food == 0) & (length == cells)))
    cell = np.argmax(heads, axis=1)
    visited = np.ones(batch, dtype=np.int64)
    # A lone head ends the chain at once; every other chain must reach the (single) TAIL.
    ended = flat[rows, cell] == HEAD_ALONE
    walking = shape_ok & ~ended
    for _ in range(cells):
        if not walking.any():
            break
        index = np.flatnonzero(walking)
        direction = (flat[index, cell[index]] - HEAD_UP) % NUM_ACTIONS
        r, c = cell[index] // width + DELTA_ROWS[direction], cell[index] % width + DELTA_COLS[direction]
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        nxt = np.clip(r, 0, height - 1) * width + np.clip(c, 0, width - 1)
        code = flat[index, nxt]
        body = inside & (code >= BODY_UP)  # BODY_* or TAIL: heads and empty/food cells break the chain
        walking[index[~body]] = False
        cell[index[body]] = nxt[body]
        visited[index[body]] += 1
        at_tail = body & (code == TAIL)
        ended[index[at_tail]] = True
        walking[index[at_tail]] = False
    # A cycle never reaches the tail; a chain that reaches it visited distinct cells, so counting suffices.
    return terminal | (shape_ok & ended & (visited == length))


def checked_batched_step(
    obs: np.ndarray, actions: object, rng: None | int | np.random.Generator = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`batched_step` after checking that every board is legal (or terminal); raises on the first that is not."""
    boards = as_batch(obs)
    bad = np.flatnonzero(~legal_boards(boards))
    if bad.size:
        try:
            validate_observation(boards[bad[0]], allow_terminal=True)
        except IllegalObservationError as error:
            raise IllegalObservationError(f"board {int(bad[0])} of the batch is illegal: {error}") from None
        raise IllegalObservationError(f"board {int(bad[0])} of the batch is illegal")
    return batched_step(boards, actions, rng)


def batched_step(
    obs: np.ndarray, actions: object, rng: None | int | np.random.Generator = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step every board. Returns ``(next_obs (B,H,W) int8, reward (B,) f32, event (B,) int8, terminated (B,) bool)``.

    Deaths give the all-EMPTY board; a terminal board given as input stays terminal
    (event NONE, reward 0, terminated True).

    Unchecked for legality (the hot path of data generation): shapes, dtypes, cell codes and actions are
    checked, but an illegal board (two heads, a broken body) gives an unspecified result. Use
    :func:`checked_batched_step` (or :func:`legal_boards`) on boards that did not come from the engine.
    """
    obs = as_batch(obs)
    batch, height, width = obs.shape
    actions = _check_actions(actions, batch)
    check_rng(rng)
    flat = obs.reshape(batch, height * width).copy()
    rows = np.arange(batch)

    length = (flat >= HEAD_ALONE).sum(axis=1)
    terminal = length == 0
    head = find_heads(flat)
    head_code = flat[rows, head].astype(np.int64)
    new_r = head // width + DELTA_ROWS[actions]
    new_c = head % width + DELTA_COLS[actions]
    wall = (new_r < 0) | (new_r >= height) | (new_c < 0) | (new_c >= width)
    new_head = np.clip(new_r, 0, height - 1) * width + np.clip(new_c, 0, width - 1)
    target = flat[rows, new_head]
    # The neck lies in the direction the head's pointer names.
    reverse = ~wall & (head_code >= HEAD_UP) & (head_code - HEAD_UP == actions)
    # Moving into the tail is safe unless it is the neck (length 2, caught as REVERSE above).
    self_hit = ~wall & ~reverse & (target >= HEAD_ALONE) & (target != TAIL)
    dead = ~terminal & (wall | reverse | self_hit)
    eat = ~terminal & ~dead & (target == FOOD)

    event = np.full(batch, Event.NONE, dtype=np.int8)
    event[wall] = Event.WALL
    event[reverse] = Event.REVERSE
    event[self_hit] = Event.SELF
    event[terminal] = Event.NONE

    alive = np.flatnonzero(~terminal & ~dead)
    _move_snakes(flat, alive, head[alive], head_code[alive], new_head[alive], actions[alive],
                 length[alive], eat[alive], width)
    win = _place_food(flat, np.flatnonzero(eat), rng)
    event[eat] = Event.EAT
    event[win] = Event.WIN

    flat[dead] = EMPTY
    reward = np.zeros(batch, dtype=np.float32)
    reward[eat] = REWARD_EAT
    reward[dead] = REWARD_DEATH
    terminated = terminal | dead | win
    return flat.reshape(batch, height, width), reward, event, terminated


def _move_snakes(flat, boards, head, head_code, new_head, actions, length, eat, width) -> None:
    """Rewrite the (at most five) cells that change when live snakes move; edits ``flat`` in place."""
    new_length = length + eat
    moves_tail = ~eat & (length >= 2)
    tail = np.argmax(flat[boards] == TAIL, axis=1)
    # Order matters: clear the old tail first, because the new head may enter that cell.
    flat[boards[moves_tail], tail[moves_tail]] = EMPTY
    shrinks_body = moves_tail & (length >= 3)
    pred = _tail_predecessor(flat, boards[shrinks_body], tail[shrinks_body], width)
    flat[boards[shrinks_body], pred] = TAIL

    old_head = np.where(new_length >= 3, head_code - HEAD_UP + BODY_UP, TAIL)
    old_head = np.where(new_length == 1, EMPTY, old_head)
    flat[boards, head] = old_head
    flat[boards, new_head] = np.where(new_length == 1, HEAD_ALONE, HEAD_UP + _OPPOSITE[actions])


def _tail_predecessor(flat: np.ndarray, boards: np.ndarray, tail: np.ndarray, width: int) -> np.ndarray:
    """Flat index of the body cell that points at each tail (the new tail after a plain move)."""
    height = flat.shape[1] // width
    tail_r, tail_c = tail // width, tail % width
    pred = np.zeros_like(tail)
    for direction in range(NUM_ACTIONS):
        # A neighbour points at the tail with direction d when it lies at tail - DELTAS[d].
        r, c = tail_r - DELTA_ROWS[direction], tail_c - DELTA_COLS[direction]
        inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
        index = np.clip(r, 0, height - 1) * width + np.clip(c, 0, width - 1)
        points_here = inside & (flat[boards, index] == BODY_UP + direction)
        pred = np.where(points_here, index, pred)
    return pred


def _place_food(flat: np.ndarray, eaters: np.ndarray, rng) -> np.ndarray:
    """New food, uniform over empty cells, for boards that ate; returns a (B,) win mask."""
    win = np.zeros(flat.shape[0], dtype=bool)
    if eaters.size == 0:
        return win
    empty = flat[eaters] == EMPTY
    free = empty.sum(axis=1)
    win[eaters[free == 0]] = True
    placing = np.flatnonzero(free > 0)
    if placing.size:
        draws = as_generator(rng).random(placing.size)
        chosen = np.minimum((draws * free[placing]).astype(np.int64), free[placing] - 1)
        # The k-th empty cell (0-based) is where the running count of empty cells first exceeds k.
        cell = np.argmax(np.cumsum(empty[placing], axis=1) > chosen[:, None], axis=1)
        flat[eaters[placing], cell] = FOOD
    return win


def batched_successors(
    obs: np.ndarray, rng: None | int | np.random.Generator = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The successor of all four actions: ``(next (B,4,H,W), reward (B,4), event (B,4), terminated (B,4))``."""
    obs = as_batch(obs)
    batch, height, width = obs.shape
    repeated = np.repeat(obs, NUM_ACTIONS, axis=0)
    actions = np.tile(np.arange(NUM_ACTIONS), batch)
    nxt, reward, event, terminated = batched_step(repeated, actions, rng)
    return (
        nxt.reshape(batch, NUM_ACTIONS, height, width),
        reward.reshape(batch, NUM_ACTIONS),
        event.reshape(batch, NUM_ACTIONS),
        terminated.reshape(batch, NUM_ACTIONS),
    )


class BatchedSnakeGames:
    """``num_games`` independent games stepped together.

    ``step`` returns the true next boards (terminal boards included); with ``auto_reset``
    the finished games are then replaced by new ones in ``obs`` (new ``episode_ids``,
    ``episode_steps`` back to 0). ``reset_games(indices)`` restarts chosen games on demand.
    """

    def __init__(
        self,
        num_games: int,
        height: int = 10,
        width: int = 10,
        seed: None | int | np.random.Generator = None,
        initial_length: int = 3,
    ) -> None:
        if isinstance(num_games, bool) or not isinstance(num_games, (int, np.integer)) or num_games < 1:
            raise ValueError(f"num_games must be a positive int, got {num_games!r}")
        check_board_size(height, width)
        self.height, self.width, self.initial_length = height, width, initial_length
        self.rng = as_generator(seed)
        self.obs = np.zeros((num_games, height, width), dtype=np.int8)
        self.episode_ids = np.zeros(num_games, dtype=np.int64)
        self.episode_steps = np.zeros(num_games, dtype=np.int64)
        self._next_episode_id = 0
        self.reset_games(np.arange(num_games))

    @property
    def num_games(self) -> int:
        return self.obs.shape[0]

    def reset_games(self, indices: object) -> None:
        """Start new games (fresh episode ids) at ``indices``."""
        for index in np.asarray(indices, dtype=np.int64).reshape(-1):
            state = new_game(self.height, self.width, self.rng, self.initial_length)
            self.obs[index] = encode_observation(state)
            self.episode_ids[index] = self._next_episode_id
            self.episode_steps[index] = 0
            self._next_episode_id += 1

    def step(self, actions: object, auto_reset: bool = True):
        """Step all games; returns ``(next_obs, reward, event, terminated)`` as :func:`batched_step`."""
        next_obs, reward, event, terminated = batched_step(self.obs, actions, self.rng)
        self.obs = next_obs.copy()
        self.episode_steps += 1
        if auto_reset:
            self.reset_games(np.flatnonzero(terminated))
        return next_obs, reward, event, terminated
