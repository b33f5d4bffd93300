"""BatchedSnakeGames, argument checking, and the symmetry helpers on numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snake_world_eqm.game import (
    NUM_SYMMETRIES,
    BatchedSnakeGames,
    Event,
    SnakeState,
    batched_step,
    batched_successors,
    checked_batched_step,
    decode_observation,
    encode_observation,
    inverse_symmetry,
    new_game,
    step,
    transform_action,
    transform_board,
)
from snake_world_eqm.game.batched import as_batch
from tests.game_helpers import random_state


def test_games_reset_when_done_and_keep_terminal_boards_in_the_returned_step():
    games = BatchedSnakeGames(3, 4, 4, seed=0)
    games.obs[0] = encode_observation(SnakeState(4, 4, ((0, 0), (1, 0), (2, 0)), (3, 3)))
    # Boards 1 and 2 move up safely, so exactly one game ends.
    games.obs[1] = encode_observation(SnakeState(4, 4, ((2, 1), (3, 1)), (0, 3)))
    games.obs[2] = encode_observation(SnakeState(4, 4, ((1, 3), (2, 3), (3, 3)), (0, 0)))
    first_ids = games.episode_ids.copy()
    nxt, reward, event, terminated = games.step(np.array([0, 0, 0]))  # board 0 runs into the wall
    assert event[0] == Event.WALL and terminated[0] and reward[0] == -1.0 and not nxt[0].any()
    assert games.obs[0].any()  # replaced by a new game
    decode_observation(games.obs[0])
    assert games.episode_ids[0] == first_ids.max() + 1 and games.episode_steps[0] == 0
    assert not terminated[1:].any() and event[1:].tolist() == [Event.NONE, Event.NONE]
    assert games.episode_steps[1:].tolist() == [1, 1]  # the other games go on
    assert games.episode_ids[1:].tolist() == first_ids[1:].tolist()


def test_games_are_seeded_and_can_keep_finished_boards():
    a, b = BatchedSnakeGames(5, 6, 6, seed=3), BatchedSnakeGames(5, 6, 6, seed=3)
    assert np.array_equal(a.obs, b.obs)
    for _ in range(5):
        actions = np.random.default_rng(0).integers(0, 4, 5)
        assert np.array_equal(a.step(actions, auto_reset=False)[0], b.step(actions, auto_reset=False)[0])
    dead = ~a.obs.any(axis=(1, 2))
    a.reset_games(np.flatnonzero(dead))
    assert a.obs.any(axis=(1, 2)).all()


@pytest.mark.parametrize(
    ("actions", "error", "match"),
    [
        (np.array([0, 4]), ValueError, "0..3"),
        (np.array([0]), ValueError, "shape"),
        (np.array([0.0, 1.0]), TypeError, "integers"),
    ],
)
def test_batched_step_rejects_bad_actions(actions, error, match):
    boards = np.stack([encode_observation(new_game(5, 5, seed)) for seed in range(2)])
    with pytest.raises(error, match=match):
        batched_step(boards, actions, 0)


def test_batched_step_rejects_bad_boards_and_step_rejects_bad_arguments():
    with pytest.raises(ValueError, match="shape"):
        batched_step(np.zeros((5, 5), dtype=np.int8), [0], 0)
    with pytest.raises(ValueError, match="dtype"):
        batched_step(np.zeros((1, 5, 5), dtype=np.float32), [0], 0)
    state = new_game(5, 5, 0)
    with pytest.raises(ValueError, match="action"):
        step(state, 7, 0)
    with pytest.raises(TypeError, match="SnakeState"):
        step(encode_observation(state), 0, 0)
    with pytest.raises(TypeError, match="rng"):
        step(state, 0, "seed")


def test_symmetries_on_numpy_and_torch_agree_and_invert():
    rng = np.random.default_rng(0)
    boards = np.stack([encode_observation(random_state(rng, 6, 6)) for _ in range(10)])
    actions = rng.integers(0, 4, 10)
    seen = set()
    for k in range(NUM_SYMMETRIES):
        moved = transform_board(boards, k)
        seen.add(moved.tobytes())
        assert torch.equal(transform_board(torch.as_tensor(boards).long(), k), torch.as_tensor(moved).long())
        assert np.array_equal(transform_board(moved, inverse_symmetry(k)), boards)
        moved_actions = transform_action(actions, k)
        assert torch.equal(transform_action(torch.as_tensor(actions), k), torch.as_tensor(moved_actions))
        assert np.array_equal(transform_action(moved_actions, inverse_symmetry(k)), actions)
        assert [transform_action(int(a), k) for a in actions] == moved_actions.tolist()
        for board in moved:
            decode_observation(board)  # pointers remapped consistently: still legal
    assert len(seen) == NUM_SYMMETRIES  # all eight are different maps


def test_rotation_turns_actions_counter_clockwise_and_flip_swaps_left_right():
    assert [transform_action(a, 1) for a in range(4)] == [3, 0, 1, 2]  # up→left, right→up, ...
    assert [transform_action(a, 4) for a in range(4)] == [0, 3, 2, 1]


def test_symmetry_argument_errors():
    board = encode_observation(new_game(5, 5, 0))
    with pytest.raises(ValueError, match="0..7"):
        transform_board(board, 8)
    with pytest.raises(ValueError, match="square"):
        transform_board(np.zeros((4, 6), dtype=np.int8), 1)
    with pytest.raises(TypeError):
        transform_action(1, 1.5)


# --- Output types, argument checks and the game bookkeeping (each catches a mutant of batched.py).


def test_outputs_have_the_documented_dtypes_and_wider_int_boards_are_accepted():
    rng = np.random.default_rng(1)
    boards = np.stack([encode_observation(random_state(rng, 5, 6)) for _ in range(6)])
    nxt, reward, event, terminated = batched_step(boards.astype(np.int64), np.arange(6) % 4, 0)
    assert (nxt.dtype, reward.dtype, event.dtype, terminated.dtype) == (np.int8, np.float32, np.int8, np.bool_)
    for got, want in zip((nxt, reward, event, terminated), batched_step(boards, np.arange(6) % 4, 0)):
        assert np.array_equal(got, want)
    # int8 boards, the data generator's hot path, are used in place; wider ones are converted.
    assert as_batch(boards) is boards and as_batch(boards.astype(np.int64)).dtype == np.int8


def test_boolean_actions_and_an_empty_batch():
    boards = np.stack([encode_observation(new_game(5, 5, seed)) for seed in range(2)])
    with pytest.raises(TypeError, match=r"^actions must be integers, got dtype bool$"):
        batched_step(boards, np.array([True, False]), 0)
    with pytest.raises(ValueError, match=r"^actions must lie in 0..3, found -1..1$"):
        batched_step(boards, np.array([-1, 1]), 0)
    with pytest.raises(ValueError, match=r"^actions must have shape \(2,\), got \(3,\)$"):
        batched_step(boards, np.array([0, 1, 2]), 0)
    nxt, reward, event, terminated = batched_step(np.zeros((0, 5, 5), dtype=np.int8), np.zeros(0, dtype=np.int64), 0)
    assert nxt.shape == (0, 5, 5) and reward.shape == event.shape == terminated.shape == (0,)


@pytest.mark.parametrize("num_games", [0, True, 2.0, -1])
def test_the_number_of_games_must_be_a_positive_int(num_games):
    with pytest.raises(ValueError, match=rf"^num_games must be a positive int, got {num_games!r}$"):
        BatchedSnakeGames(num_games, 5, 5, seed=0)


def test_games_use_the_requested_size_length_and_generator_and_number_episodes_in_order():
    rng = np.random.default_rng(4)
    games = BatchedSnakeGames(np.int64(3), 5, 7, seed=rng, initial_length=4)
    assert games.rng is rng and games.num_games == 3 and games.obs.shape == (3, 5, 7)
    assert [decode_observation(board).length for board in games.obs] == [4, 4, 4]
    assert games.episode_ids.tolist() == [0, 1, 2] and games.episode_steps.tolist() == [0, 0, 0]
    games.reset_games([2, 0])
    assert games.episode_ids.tolist() == [4, 1, 3]
    with pytest.raises(ValueError, match="height"):
        BatchedSnakeGames(2, 3, 5)


def test_the_returned_boards_are_not_the_games_own_storage():
    games = BatchedSnakeGames(2, 5, 5, seed=0)
    nxt, *_ = games.step(np.array([0, 0]), auto_reset=False)
    kept = games.obs.copy()
    nxt[:] = 0  # editing the result leaves the games alone
    assert kept.any() and np.array_equal(games.obs, kept)


def test_stepping_leaves_the_input_boards_untouched_and_a_single_game_counts_its_steps():
    rng = np.random.default_rng(2)
    boards = np.stack([encode_observation(random_state(rng, 6, 6)) for _ in range(8)])
    before = boards.copy()
    batched_step(boards, np.arange(8) % 4, 0)
    assert np.array_equal(boards, before)
    game = BatchedSnakeGames(1, 6, 6, seed=0)
    for _ in range(2):  # two plain moves (no eating, no death): the episode goes on and counts them
        game.step(np.array([_plain_move(game.obs[0])]))
    assert game.episode_steps.tolist() == [2] and game.episode_ids.tolist() == [0]


def _plain_move(board: np.ndarray) -> int:
    return next(a for a in range(4) if step(decode_observation(board), a, 0).event == Event.NONE)


def _boards_that_can_eat(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Random 7x7 boards with an apple next to the head, and for each the action that eats it (no win)."""
    rng = np.random.default_rng(5)
    boards = np.stack([encode_observation(random_state(rng, 7, 7)) for _ in range(30 * count)])
    eats = batched_successors(boards, 0)[2] == Event.EAT
    chosen = np.flatnonzero(eats.any(axis=1))[:count]
    assert len(chosen) == count
    return boards[chosen], eats[chosen].argmax(axis=1)


def test_a_seed_fixes_where_the_new_apples_land_in_every_entry_point():
    boards, actions = _boards_that_can_eat(8)
    stepped = batched_step(boards, actions, 11)
    assert (stepped[2] == Event.EAT).all()
    for got, want in zip(checked_batched_step(boards, actions, rng=11), stepped):
        assert np.array_equal(got, want)
    # All four successors draw as batched_step does over the boards repeated four times, in order.
    repeated = batched_step(np.repeat(boards, 4, axis=0), np.tile(np.arange(4), len(boards)), 11)
    for got, want in zip(batched_successors(boards, 11), repeated):
        assert np.array_equal(got.reshape(want.shape), want)


def test_games_with_the_same_seed_play_the_same_apples_and_new_games():
    a, b = BatchedSnakeGames(6, 4, 4, seed=3), BatchedSnakeGames(6, 4, 4, seed=3)
    moves, eaten = np.random.default_rng(0), 0
    for _ in range(60):
        actions = moves.integers(0, 4, 6)
        event = a.step(actions)[2]
        b.step(actions)
        eaten += int((event == Event.EAT).sum())
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.episode_ids, b.episode_ids)
    assert eaten > 10  # apples were placed by the games' generator, not only new games


def test_a_bad_rng_is_refused_even_when_no_board_needs_it():
    boards = np.stack([encode_observation(SnakeState(5, 5, ((2, 2), (2, 3)), (0, 0)))])
    with pytest.raises(TypeError, match="rng must be None, an int seed or a numpy Generator, got str"):
        batched_step(boards, np.array([2]), "seed")  # a plain move down: no apple to place


def test_games_default_to_ten_by_ten_boards_snakes_of_three_and_integer_counters():
    games = BatchedSnakeGames(2, seed=0)
    assert games.obs.shape == (2, 10, 10) and [decode_observation(b).length for b in games.obs] == [3, 3]
    assert games.episode_ids.dtype == games.episode_steps.dtype == np.int64  # dataset columns are int64
    games.reset_games(1)  # one index, not a list
    assert games.episode_ids.tolist() == [0, 2]
