"""Rules, batched engine and symmetries against a deliberately naive second implementation."""

from __future__ import annotations

import numpy as np
import pytest
from game_helpers import random_state, state_next_to_food
from hypothesis import given, settings
from hypothesis import strategies as st

from snake_world_eqm.game import (
    EMPTY,
    FOOD,
    NUM_SYMMETRIES,
    Event,
    SnakeState,
    batched_step,
    batched_successors,
    decode_observation,
    encode_observation,
    mask_food,
    new_game,
    step,
    terminal_observation,
    transform_action,
    transform_board,
)

SIZES = st.integers(4, 9)
SEEDS = st.integers(0, 2**32 - 1)


def naive_outcome(body: list, food, height: int, width: int, action: int):
    """The rules written the obvious way: move, then look for trouble. Returns (event name, new body)."""
    moves = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}
    head = (body[0][0] + moves[action][0], body[0][1] + moves[action][1])
    if head[0] < 0 or head[1] < 0 or head[0] >= height or head[1] >= width:
        return "wall", None
    if len(body) > 1 and head == body[1]:
        return "reverse", None
    grew = head == food
    new_body = [head] + (body if grew else body[:-1])
    if len(set(new_body)) != len(new_body):
        return "self", None
    if grew:
        return ("win" if len(new_body) == height * width else "eat"), new_body
    return "none", new_body


@settings(max_examples=300, deadline=None)
@given(SIZES, SIZES, SEEDS, st.integers(0, 3))
def test_step_matches_naive_rules(height, width, seed, action):
    rng = np.random.default_rng(seed)
    state = random_state(rng, height, width)
    if rng.random() < 0.3:  # make eating (and winning) common
        state, action = state_next_to_food(rng, height, width)
    expected_event, expected_body = naive_outcome(list(state.body), state.food, height, width, action)
    result = step(state, action, rng)
    assert result.event.name.lower() == expected_event
    assert result.terminated == (expected_event in ("wall", "reverse", "self", "win"))
    assert result.reward == {"eat": 1.0, "win": 1.0, "none": 0.0}.get(expected_event, -1.0)
    if expected_body is None:
        assert result.state is None
        assert np.array_equal(result.observation, terminal_observation(height, width))
        return
    assert list(result.state.body) == expected_body
    if expected_event == "eat":
        assert result.state.food not in expected_body
    elif expected_event == "win":
        assert result.state.food is None
    else:
        assert result.state.food == state.food
    assert np.array_equal(result.observation, encode_observation(result.state))


@settings(max_examples=150, deadline=None)
@given(SIZES, SIZES, SEEDS)
def test_batched_step_equals_step(height, width, seed):
    rng = np.random.default_rng(seed)
    states = [random_state(rng, height, width) for _ in range(12)]
    actions = rng.integers(0, 4, size=len(states))
    boards = np.stack([encode_observation(s) for s in states])
    nxt, reward, event, terminated = batched_step(boards, actions, np.random.default_rng(seed))
    for index, (state, action) in enumerate(zip(states, actions)):
        single = step(state, int(action), np.random.default_rng(seed))
        assert event[index] == single.event
        assert reward[index] == single.reward
        assert terminated[index] == single.terminated
        if single.event == Event.EAT:  # food placement draws differ across a batch; the rest must not
            assert np.array_equal(mask_food(nxt[index]), mask_food(single.observation))
        else:
            assert np.array_equal(nxt[index], single.observation)


@settings(max_examples=100, deadline=None)
@given(SIZES, SIZES, SEEDS)
def test_batch_of_one_reproduces_step_including_food(height, width, seed):
    state, action = state_next_to_food(np.random.default_rng(seed), height, width)
    single = step(state, action, np.random.default_rng(seed + 1))
    nxt, _, event, _ = batched_step(encode_observation(state)[None], [action], np.random.default_rng(seed + 1))
    assert event[0] == single.event
    assert np.array_equal(nxt[0], single.observation)


def test_food_respawn_is_uniform_over_empty_cells():
    # 4x4 board, snake of 12 about to eat: 3 empty cells remain for the new food.
    body = ((0, 1), (0, 2), (0, 3), (1, 3), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3), (3, 3))
    state = SnakeState(4, 4, body, (0, 0))
    boards = np.repeat(encode_observation(state)[None], 6000, axis=0)
    nxt, _, event, _ = batched_step(boards, np.full(6000, 3), np.random.default_rng(0))
    assert (event == Event.EAT).all()
    counts = [(nxt[:, r, c] == FOOD).sum() for r, c in ((3, 0), (3, 1), (3, 2))]
    assert sum(counts) == 6000
    # Expected 2000 each; 5 standard deviations is about 180.
    assert all(abs(count - 2000) < 180 for count in counts), counts


def test_terminal_board_stays_terminal():
    boards = np.zeros((3, 5, 6), dtype=np.int8)
    nxt, reward, event, terminated = batched_step(boards, [0, 1, 2], 0)
    assert not nxt.any() and terminated.all() and (event == Event.NONE).all() and not reward.any()


def test_batched_successors_match_single_steps():
    rng = np.random.default_rng(3)
    states = [random_state(rng, 7, 7) for _ in range(20)]
    boards = np.stack([encode_observation(s) for s in states])
    nxt, reward, event, terminated = batched_successors(boards, rng)
    assert nxt.shape == (20, 4, 7, 7) and reward.shape == event.shape == terminated.shape == (20, 4)
    for index, state in enumerate(states):
        for action in range(4):
            single = step(state, action, rng)
            assert event[index, action] == single.event
            assert np.array_equal(mask_food(nxt[index, action]), mask_food(single.observation))


def test_win_gives_full_board_and_reward():
    body = ((0, 1), (0, 2), (0, 3), (1, 3), (1, 2), (1, 1), (1, 0), (2, 0), (2, 1), (2, 2), (2, 3),
            (3, 3), (3, 2), (3, 1), (3, 0))
    result = step(SnakeState(4, 4, body, (0, 0)), 3, 0)
    assert result.event == Event.WIN and result.terminated and result.reward == 1.0
    assert result.state.food is None and (result.observation != EMPTY).all()
    assert decode_observation(result.observation) == result.state


@pytest.mark.parametrize("seed", range(5))
def test_new_game_is_legal_and_seeded(seed):
    assert new_game(10, 10, seed) == new_game(10, 10, seed)
    state = new_game(6, 8, np.random.default_rng(seed), initial_length=5)
    assert state.length == 5 and state.food is not None
    assert decode_observation(encode_observation(state)) == state


def test_new_game_long_snake_uses_whole_board():
    state = new_game(4, 4, 0, initial_length=15)
    assert state.length == 15 and state.food is not None


@pytest.mark.parametrize("kwargs", [{"initial_length": 16}, {"initial_length": 0}, {"height": 3}, {"width": 33}])
def test_new_game_rejects_bad_sizes(kwargs):
    args = {"height": 4, "width": 4, "rng": 0, **kwargs}
    with pytest.raises(ValueError):
        new_game(**args)


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 9), SEEDS, st.integers(0, 3))
def test_symmetry_commutes_with_step(size, seed, action):
    rng = np.random.default_rng(seed)
    state = random_state(rng, size, size)
    board = encode_observation(state)
    successor = step(state, action, np.random.default_rng(seed)).observation
    for k in range(NUM_SYMMETRIES):
        moved_board = transform_board(board, k)
        moved = step(decode_observation(moved_board), transform_action(action, k), np.random.default_rng(seed))
        # Food respawn lands on different cells after a transform, so compare without it when eating.
        if moved.event == Event.EAT:
            assert np.array_equal(mask_food(transform_board(successor, k)), mask_food(moved.observation))
        else:
            assert np.array_equal(transform_board(successor, k), moved.observation)
