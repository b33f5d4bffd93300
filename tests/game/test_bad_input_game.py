"""Bad input to the game (issue 15, item 11): non-integers are refused rather than truncated, and illegal
boards are caught by the checked engine entry point and by the vectorised legality check."""

from __future__ import annotations

import numpy as np
import pytest

from snake_world_eqm.game import (
    BODY_UP,
    EMPTY,
    FOOD,
    HEAD_UP,
    IllegalObservationError,
    SnakeEnv,
    SnakeState,
    batched_step,
    checked_batched_step,
    encode_observation,
    legal_boards,
    terminal_observation,
    validate_observation,
)
from tests.game_helpers import random_state


@pytest.mark.parametrize("action", [2.5, 1.0, True, "1", None, np.float64(1.0)])
def test_env_step_refuses_non_integer_actions(action):
    env = SnakeEnv(6, 6)
    env.reset(seed=0)
    before = env.state
    with pytest.raises(TypeError, match="action"):
        env.step(action)
    assert env.state == before  # nothing moved


@pytest.mark.parametrize("action", [np.int64(1), np.array(1), 1])
def test_env_step_accepts_integer_actions(action):
    env = SnakeEnv(6, 6)
    env.reset(seed=0)
    env.step(action)


@pytest.mark.parametrize(
    ("body", "food"),
    [(((1.7, 1.2),), (3, 3)), (((1, 1), (1, 2.0)), (3, 3)), (((1, 1),), (0.5, 2)), (((True, 1),), (3, 3))],
)
def test_snake_state_refuses_non_integer_cells(body, food):
    with pytest.raises(ValueError, match="ints"):
        SnakeState(6, 6, body, food)


def test_snake_state_accepts_numpy_integers():
    state = SnakeState(6, 6, ((np.int64(1), np.int32(2)),), (np.int8(3), 3))
    assert state.body == ((1, 2),) and state.food == (3, 3)


def _disconnected(board: np.ndarray) -> np.ndarray:
    """The board with one BODY cell on an empty cell that no chain reaches."""
    bad = board.copy()
    row, col = np.argwhere(bad == EMPTY)[0]
    bad[row, col] = BODY_UP
    return bad


def test_checked_batched_step_refuses_illegal_boards_and_says_which():
    boards = np.stack([encode_observation(new) for new in (SnakeState(6, 6, ((2, 2), (2, 3)), (5, 5)),) * 3])
    boards[2] = _disconnected(boards[2])
    with pytest.raises(IllegalObservationError, match="board 2"):
        checked_batched_step(boards, np.zeros(3, dtype=np.int64))
    two_heads = boards[0].copy()
    two_heads[0, 0] = HEAD_UP
    with pytest.raises(IllegalObservationError, match="board 0"):
        checked_batched_step(two_heads[None], np.zeros(1, dtype=np.int64))


def test_checked_batched_step_equals_batched_step_on_legal_boards():
    rng = np.random.default_rng(0)
    boards = np.stack([encode_observation(random_state(rng, 6, 6)) for _ in range(32)] + [terminal_observation(6, 6)])
    actions = rng.integers(0, 4, len(boards))
    for got, want in zip(checked_batched_step(boards, actions, rng=1), batched_step(boards, actions, rng=1)):
        assert np.array_equal(got, want)


def test_batched_step_documents_that_it_is_unchecked():
    assert "Unchecked for legality" in batched_step.__doc__ and "checked_batched_step" in batched_step.__doc__


def test_legal_boards_agrees_with_validate_observation_on_random_corruptions():
    rng = np.random.default_rng(7)
    boards = []
    for _ in range(1500):
        height, width = (int(v) for v in rng.integers(4, 9, 2))
        board = encode_observation(random_state(rng, height, width))
        for _ in range(int(rng.integers(0, 3))):  # 0 to 2 random cell edits
            board[rng.integers(height), rng.integers(width)] = rng.integers(0, 12)
        boards.append(board)
    verdicts = {True: 0, False: 0}
    for board in boards:
        try:
            validate_observation(board, allow_terminal=True)
            expected = True
        except IllegalObservationError:
            expected = False
        assert bool(legal_boards(board[None])[0]) == expected, board
        verdicts[expected] += 1
    assert min(verdicts.values()) > 100  # both kinds were really exercised


def test_legal_boards_full_board_without_food_and_terminal_board():
    from tests.game_helpers import serpentine_body

    full = encode_observation(SnakeState(4, 4, tuple(serpentine_body(4, 4, 16)), None))
    assert legal_boards(np.stack([full, terminal_observation(4, 4)])).tolist() == [True, True]
    no_food = encode_observation(SnakeState(4, 4, ((0, 0),), (3, 3)))
    no_food[3, 3] = EMPTY
    two_food = encode_observation(SnakeState(4, 4, ((0, 0),), (3, 3)))
    two_food[2, 2] = FOOD
    assert legal_boards(np.stack([no_food, two_food])).tolist() == [False, False]
