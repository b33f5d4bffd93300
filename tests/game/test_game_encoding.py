"""Encoding: lossless round trip, and every kind of illegal board or state rejected by name."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snake_world_eqm.game import (
    BODY_DOWN,
    BODY_LEFT,
    BODY_RIGHT,
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_RIGHT,
    TAIL,
    IllegalObservationError,
    SnakeState,
    decode_observation,
    encode_observation,
    is_terminal_observation,
    mask_food,
    terminal_observation,
    validate_observation,
)
from tests.game_helpers import random_state


@settings(max_examples=300, deadline=None)
@given(st.integers(4, 32), st.integers(4, 32), st.integers(0, 2**32 - 1))
def test_round_trip_is_lossless(height, width, seed):
    state = random_state(np.random.default_rng(seed), height, width)
    board = encode_observation(state)
    assert board.dtype == np.int8 and board.shape == (height, width)
    assert decode_observation(board) == state
    validate_observation(board)
    # The board alone fixes the body order: re-encoding gives the same board.
    assert np.array_equal(encode_observation(decode_observation(board)), board)


def board_with_snake() -> np.ndarray:
    """A legal 5x5 board: head (1,1) → (1,2) → (1,3) → tail (2,3); food at (4,4)."""
    board = np.zeros((5, 5), dtype=np.int8)
    board[1, 1], board[1, 2], board[1, 3], board[2, 3] = HEAD_RIGHT, BODY_RIGHT, BODY_DOWN, TAIL
    board[4, 4] = FOOD
    return board


def test_reference_board_is_legal():
    state = decode_observation(board_with_snake())
    assert state.body == ((1, 1), (1, 2), (1, 3), (2, 3)) and state.food == (4, 4)


def edit(changes: dict) -> np.ndarray:
    board = board_with_snake()
    for cell, code in changes.items():
        board[cell] = code
    return board


ILLEGAL_BOARDS = {
    "heads": edit({(3, 0): HEAD_ALONE}),                      # two heads
    "no head": edit({(1, 1): EMPTY}),                         # body without a head
    "broken chain": edit({(1, 2): EMPTY}),                    # head points at an empty cell
    "off board": edit({(1, 3): BODY_RIGHT, (1, 4): BODY_RIGHT, (2, 3): EMPTY}),
    "cycle": edit({(2, 3): BODY_LEFT, (2, 2): 7}),            # (2,2) points up to (1,2): a loop
    "foods": edit({(0, 0): FOOD}),                            # two foods
    "food missing": edit({(4, 4): EMPTY}),
    "tails": edit({(3, 3): TAIL}),                            # two tails
    # A closed loop of body cells beside a complete snake.
    "not on the chain": edit({(3, 0): BODY_DOWN, (4, 0): BODY_RIGHT, (4, 1): 7, (3, 1): BODY_LEFT}),
    "values": edit({(0, 0): 12}),
}


@pytest.mark.parametrize("problem", sorted(ILLEGAL_BOARDS))
def test_illegal_boards_are_rejected_by_name(problem):
    with pytest.raises(IllegalObservationError, match=problem):
        decode_observation(ILLEGAL_BOARDS[problem])
    with pytest.raises(ValueError, match=problem):
        validate_observation(ILLEGAL_BOARDS[problem])


def test_head_pointing_back_at_itself_is_a_cycle():
    board = np.zeros((4, 4), dtype=np.int8)
    board[0, 0], board[0, 1], board[1, 1], board[1, 0] = HEAD_RIGHT, BODY_DOWN, BODY_LEFT, 7  # (1,0) up → head
    board[3, 3] = FOOD
    with pytest.raises(IllegalObservationError, match="cycle"):
        decode_observation(board)


@pytest.mark.parametrize(
    ("board", "problem"),
    [
        (board_with_snake().astype(np.float32), "dtype"),
        (board_with_snake().astype(bool), "dtype"),
        (board_with_snake()[None], "shape"),
        (board_with_snake()[0], "shape"),
        (np.zeros((3, 5), dtype=np.int8), "range"),
        (np.zeros((33, 8), dtype=np.int8), "range"),
        (edit({(0, 0): -1}), "values"),
    ],
)
def test_wrong_dtype_shape_size_and_values(board, problem):
    with pytest.raises(ValueError, match=problem):
        decode_observation(board)


def test_non_array_is_a_type_error():
    with pytest.raises(TypeError, match="numpy array"):
        decode_observation([[0] * 5] * 5)


def test_terminal_board():
    board = terminal_observation(6, 7)
    assert is_terminal_observation(board) is True and board.dtype == np.int8  # a plain bool for one board
    assert is_terminal_observation(board_with_snake()) is False
    validate_observation(board, allow_terminal=True)
    with pytest.raises(IllegalObservationError, match=r"^the all-EMPTY terminal board has no snake"):
        decode_observation(board)
    batch = np.stack([board, board_with_snake()[:5, :5].repeat(2, 0)[:6].repeat(2, 1)[:, :7]])
    assert is_terminal_observation(batch).tolist() == [True, False]


def test_mask_food_numpy_and_torch():
    import torch

    board = board_with_snake()
    masked = mask_food(board)
    assert (masked != FOOD).all() and masked[4, 4] == EMPTY and masked[1, 1] == HEAD_RIGHT
    assert board[4, 4] == FOOD  # the input is not modified
    assert torch.equal(mask_food(torch.as_tensor(board).long()), torch.as_tensor(masked).long())


ILLEGAL_STATES = {
    "overlaps": ((0, 0), (0, 1), (0, 0)),
    "not adjacent": ((0, 0), (0, 2)),
    "off the": ((0, 0), (-1, 0)),
}


@pytest.mark.parametrize("problem", sorted(ILLEGAL_STATES))
def test_illegal_states_are_rejected(problem):
    with pytest.raises(ValueError, match=problem):
        SnakeState(5, 5, ILLEGAL_STATES[problem], (4, 4))


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"food": (0, 1)}, "on the snake"),
        ({"food": None}, "food missing"),
        ({"food": (5, 0)}, "off the"),
        ({"height": 3}, "range"),
        ({"width": 40}, "range"),
        ({"body": ()}, "empty"),
    ],
)
def test_illegal_state_fields(kwargs, problem):
    fields = {"height": 5, "width": 5, "body": ((0, 0), (0, 1)), "food": (4, 4), **kwargs}
    with pytest.raises(ValueError, match=problem):
        SnakeState(**fields)


def test_full_board_needs_no_food():
    body = tuple((r, c if r % 2 == 0 else 3 - c) for r in range(4) for c in range(4))
    state = SnakeState(4, 4, body, None)
    assert decode_observation(encode_observation(state)) == state


def test_head_codes_are_exactly_the_five_head_classes():
    from snake_world_eqm.game.encoding import CELL_NAMES, is_head_code

    assert [name for code, name in enumerate(CELL_NAMES) if is_head_code(code)] == [
        "head_alone", "head_up", "head_right", "head_down", "head_left",
    ]


@pytest.mark.parametrize("head", range(4))
def test_a_body_cell_pointing_back_at_the_head_is_named_as_such(head):
    # A 2x2 loop of snake cells around (1..2, 1..2) whose last body cell points back at the head,
    # for each head direction (so every head code is met as a pointer target).
    loop = [(1, 1), (1, 2), (2, 2), (2, 1)]
    start = loop[head:] + loop[:head]
    board = np.zeros((5, 5), dtype=np.int8)
    deltas = {(-1, 0): 0, (0, 1): 1, (1, 0): 2, (0, -1): 3}
    for index, cell in enumerate(start):
        nxt = start[(index + 1) % 4]
        direction = deltas[(nxt[0] - cell[0], nxt[1] - cell[1])]
        board[cell] = (3 if index == 0 else 7) + direction
    board[4, 4] = FOOD
    with pytest.raises(IllegalObservationError, match=r"cycle in the body: cell .* points back to the head"):
        decode_observation(board)


@pytest.mark.parametrize(("cell", "code", "outside"), [((4, 2), BODY_DOWN, "(5, 2)"), ((2, 4), BODY_RIGHT, "(2, 5)")])
def test_a_pointer_off_the_bottom_or_right_edge_is_refused(cell, code, outside):
    # Head (3, 2) → (4, 2) at the bottom edge (or (2, 3) → (2, 4) at the right edge), whose pointer leaves the board.
    board = np.zeros((5, 5), dtype=np.int8)
    board[0, 0] = FOOD
    if cell == (4, 2):
        board[3, 2] = 5  # HEAD_DOWN
    else:
        board[2, 3] = HEAD_RIGHT
    board[cell] = code
    with pytest.raises(IllegalObservationError, match=rf"pointer off board: cell {re.escape(str(cell))} points to "
                                                      rf"{re.escape(outside)}"):
        decode_observation(board)


def test_messages_name_the_broken_link_and_count_the_stray_cells():
    with pytest.raises(IllegalObservationError, match=r"points to \(1, 2\), which is empty"):
        decode_observation(ILLEGAL_BOARDS["broken chain"])
    food_next = edit({(1, 2): FOOD, (4, 4): EMPTY})
    with pytest.raises(IllegalObservationError, match=r"points to \(1, 2\), which is food"):
        decode_observation(food_next)
    with pytest.raises(IllegalObservationError, match=r"^4 snake cells are not on the chain .*\(disconnected body\)$"):
        decode_observation(ILLEGAL_BOARDS["not on the chain"])
    with pytest.raises(IllegalObservationError, match="^no head on a non-terminal board$"):
        decode_observation(ILLEGAL_BOARDS["no head"])


def test_the_terminal_board_is_legal_only_when_allowed_and_allowing_it_checks_the_rest():
    with pytest.raises(IllegalObservationError, match="terminal"):
        validate_observation(terminal_observation(5, 5))
    for problem, board in ILLEGAL_BOARDS.items():
        with pytest.raises(IllegalObservationError, match=problem):
            validate_observation(board, allow_terminal=True)


def test_encoding_something_else_than_a_state_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="^encode_observation expects a SnakeState, got ndarray$"):
        encode_observation(board_with_snake())


def test_a_torch_board_is_decoded_like_its_numpy_twin():
    import torch

    assert decode_observation(torch.as_tensor(board_with_snake())) == decode_observation(board_with_snake())


def test_the_batched_check_wants_three_dims_and_messages_name_the_expected_shape_and_range():
    from snake_world_eqm.game.encoding import check_observation_array

    batch = np.stack([board_with_snake()] * 2)
    assert check_observation_array(batch, batched=True) is batch
    with pytest.raises(IllegalObservationError, match=r"shape \(B, H, W\), got \(5, 5\)"):
        check_observation_array(board_with_snake(), batched=True)
    with pytest.raises(IllegalObservationError, match=r"shape \(H, W\), got \(2, 5, 5\)"):
        check_observation_array(batch)
    with pytest.raises(IllegalObservationError, match=r"outside the supported range 4..32"):
        check_observation_array(np.zeros((2, 3, 5), dtype=np.int8), batched=True)
    with pytest.raises(IllegalObservationError, match=r"cell values must lie in 0..11, found 0..12"):
        decode_observation(ILLEGAL_BOARDS["values"])
    with pytest.raises(TypeError, match="numpy array, got list"):
        decode_observation([[0] * 5] * 5)
    with pytest.raises(IllegalObservationError, match="^food missing on a board that is not full$"):
        decode_observation(ILLEGAL_BOARDS["food missing"])
