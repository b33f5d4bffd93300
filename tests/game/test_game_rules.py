"""Rules, batched engine and symmetries against a deliberately naive second implementation."""

from __future__ import annotations

import numpy as np
import pytest
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
from tests.game_helpers import random_state, state_next_to_food

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


# --- Argument checks and seeded reproducibility, one behaviour per test (each catches a mutant of rules.py).


def test_as_generator_uses_a_generator_as_is_seeds_ints_and_refuses_the_rest():
    from snake_world_eqm.game.rules import as_generator

    generator = np.random.default_rng(5)
    assert as_generator(generator) is generator
    assert isinstance(as_generator(None), np.random.Generator)
    for seed in (3, np.int64(3)):
        assert as_generator(seed).random() == np.random.default_rng(3).random()
    for bad in (True, 1.5, "3"):
        with pytest.raises(TypeError, match=f"^rng must be None, an int seed or a numpy Generator, got {type(bad).__name__}$"):
            as_generator(bad)


def test_step_checks_the_rng_before_moving():
    state = SnakeState(5, 5, ((2, 2), (2, 3)), (0, 0))
    for good in (None, 3, np.int32(3), np.random.default_rng(0)):
        assert step(state, 0, good).event == Event.NONE
    for bad in (True, 2.0):
        with pytest.raises(TypeError, match=f"^rng must be None, an int seed or a numpy Generator, got {type(bad).__name__}$"):
            step(state, 0, bad)


@pytest.mark.parametrize(
    ("height", "width", "error", "message"),
    [
        (True, 5, TypeError, "^board height must be an int, got bool$"),
        (5, 5.0, TypeError, "^board width must be an int, got float$"),
        (3, 5, ValueError, "^board height 3 outside the supported range 4..32$"),
        (5, 33, ValueError, "^board width 33 outside the supported range 4..32$"),
    ],
)
def test_board_sizes_are_checked_by_name(height, width, error, message):
    from snake_world_eqm.game.rules import check_board_size

    with pytest.raises(error, match=message):
        check_board_size(height, width)


def test_the_extreme_board_sizes_are_accepted():
    from snake_world_eqm.game.rules import check_board_size

    for size in (4, 32, np.int64(32)):
        check_board_size(size, size)


def test_actions_are_checked_by_name_and_returned_as_plain_ints():
    from snake_world_eqm.game.rules import check_action

    assert [check_action(a) for a in (0, np.int64(3))] == [0, 3] and type(check_action(np.int64(3))) is int
    with pytest.raises(TypeError, match="^action must be an int in 0..3, got bool$"):
        check_action(True)
    for bad in (-1, 4):
        with pytest.raises(ValueError, match=f"^action {bad} is not one of 0 up, 1 right, 2 down, 3 left$"):
            check_action(bad)


@pytest.mark.parametrize(
    ("body", "food", "message"),
    [
        (((0, 0), (-1, 0)), (4, 4), r"^body cell 1 \(-1, 0\) is off the 5x5 board$"),
        (((0, 0), (0, -1)), (4, 4), r"^body cell 1 \(0, -1\) is off the 5x5 board$"),
        (((4, 4), (5, 4)), (0, 0), r"^body cell 1 \(5, 4\) is off the 5x5 board$"),
        (((4, 4), (4, 5)), (0, 0), r"^body cell 1 \(4, 5\) is off the 5x5 board$"),
        (((0, 0), (0, 1), (0, 0)), (4, 4), r"^body cell 2 \(0, 0\) overlaps another body cell$"),
        (((0, 0), (1, 1)), (4, 4), r"^broken body: cells 0 \(0, 0\) and 1 \(1, 1\) are not adjacent$"),
        (((0, 0),), (0, 5), r"^food \(0, 5\) is off the 5x5 board$"),
        (((0, 0),), (-1, 0), r"^food \(-1, 0\) is off the 5x5 board$"),
        (((0, 0), (0, 1)), (0, 1), r"^food \(0, 1\) lies on the snake$"),
        ((), (0, 1), "^the snake body is empty$"),
        (((0, 0),), None, "^food missing on a board that is not full$"),
    ],
)
def test_illegal_states_are_named_exactly(body, food, message):
    with pytest.raises(ValueError, match=message):
        SnakeState(5, 5, body, food)


def test_state_properties_and_bounds():
    state = SnakeState(4, 6, ((3, 5), (3, 4)), (0, 0))
    assert state.head == (3, 5) and state.length == 2 and state.num_cells == 24
    assert state.in_bounds((0, 0)) and state.in_bounds((3, 5))
    assert not any(state.in_bounds(cell) for cell in ((-1, 0), (0, -1), (4, 0), (0, 6)))


def test_non_pairs_are_refused_as_pairs_of_ints():
    with pytest.raises(ValueError, match=r"^body and food must be \(row, col\) pairs of ints: "):
        SnakeState(5, 5, ((0, 0, 0),), (4, 4))
    with pytest.raises(ValueError, match=r"^body and food must be \(row, col\) pairs of ints: 1.5 in \(1.5, 0\) is not an integer$"):
        SnakeState(5, 5, ((0, 0),), (1.5, 0))


def test_empty_cells_are_listed_row_major():
    from snake_world_eqm.game.rules import empty_cells

    assert empty_cells(4, 4, {(0, 1), (2, 2)})[:5] == [(0, 0), (0, 2), (0, 3), (1, 0), (1, 1)]
    assert len(empty_cells(4, 5, {(0, 1), (2, 2)})) == 18


def test_pick_uniform_draws_one_number_and_takes_its_cell():
    from snake_world_eqm.game.rules import pick_uniform

    cells = [(0, c) for c in range(7)]
    for seed in range(20):
        rng, reference = np.random.default_rng(seed), np.random.default_rng(seed)
        assert pick_uniform(cells, rng) == cells[int(reference.random() * 7)]
        assert rng.random() == reference.random()  # exactly one draw was taken


class _Last(np.random.Generator):
    """A generator whose random() returns the largest double below 1 (the edge case of pick_uniform)."""

    def __init__(self):
        super().__init__(np.random.PCG64(0))

    def random(self, *args, **kwargs):
        return np.nextafter(1.0, 0.0)


def test_pick_uniform_never_runs_off_the_end():
    from snake_world_eqm.game.rules import pick_uniform

    assert pick_uniform([(0, 0), (0, 1), (0, 2)], _Last()) == (0, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"initial_length": True}, TypeError, "^initial_length must be an int, got bool$"),
        ({"initial_length": 2.0}, TypeError, "^initial_length must be an int, got float$"),
        ({"initial_length": 0}, ValueError, "^initial_length must be >= 1, got 0$"),
        ({"initial_length": 16}, ValueError,
         r"^a 4x4 board is too small for a snake of length 16 \(it needs at least 17 cells, one for the food\)$"),
    ],
)
def test_new_game_names_a_bad_length(kwargs, error, message):
    with pytest.raises(error, match=message):
        new_game(4, 4, 0, **kwargs)


def test_new_game_is_reproducible_across_versions():
    # Pinned so that a seeded dataset build gives the same games after a refactor.
    assert [(s.body, s.food) for s in (new_game(5, 5, seed) for seed in range(3))] == [
        (((4, 3), (4, 4), (3, 4)), (0, 0)),
        (((2, 2), (2, 1), (2, 0)), (0, 3)),
        (((4, 1), (3, 1), (2, 1)), (3, 4)),
    ]
    assert new_game(5, 5, 0, initial_length=1).length == 1


def test_a_random_walk_body_is_a_self_avoiding_chain_or_none_after_its_tries():
    from snake_world_eqm.game.rules import _random_walk_body

    assert _random_walk_body(5, 5, 3, np.random.default_rng(0), tries=0) is None
    for seed in range(10):
        body = _random_walk_body(5, 5, 8, np.random.default_rng(seed))
        free = next(cell for cell in np.ndindex(5, 5) if cell not in body)
        assert len(body) == 8 and SnakeState(5, 5, tuple(body), free).length == 8  # adjacent, no overlap


def test_long_snakes_fall_back_to_a_zigzag_segment_of_the_full_length():
    from snake_world_eqm.game.rules import _serpentine_body

    path = [(r, c if r % 2 == 0 else 4 - c) for r in range(4) for c in range(5)]
    starts, orientations = set(), set()
    for seed in range(40):
        body = _serpentine_body(4, 5, 6, np.random.default_rng(seed))
        indices = [path.index(cell) for cell in body]
        forward = indices == list(range(indices[0], indices[0] + 6))
        assert forward or indices == list(range(indices[0], indices[0] - 6, -1))
        starts.add(min(indices))
        orientations.add(forward)
    assert starts == set(range(15)) and orientations == {True, False}
    # Pinned draws (the start, then the orientation), for reproducible seeded games.
    assert _serpentine_body(4, 5, 6, np.random.default_rng(1)) == [(2, 2), (2, 1), (2, 0), (1, 0), (1, 1), (1, 2)]
    for seed in range(10):  # a 4x4 snake of 15 always gets its full length
        assert new_game(4, 4, seed, initial_length=15).length == 15


def test_step_names_what_it_got_instead_of_a_state():
    with pytest.raises(TypeError, match="^state must be a SnakeState, got ndarray$"):
        step(encode_observation(new_game(5, 5, 0)), 0, 0)


def test_new_game_defaults_to_a_ten_by_ten_board():
    state = new_game(rng=0)
    assert (state.height, state.width, state.length) == (10, 10, 3)


def test_a_snake_too_long_for_random_walks_is_a_zigzag_segment():
    # 63 cells on 8x8: self-avoiding random walks get stuck, so new_game falls back to the zig-zag path.
    path = [(r, c if r % 2 == 0 else 7 - c) for r in range(8) for c in range(8)]
    for seed in range(3):
        state = new_game(8, 8, seed, initial_length=63)
        indices = [path.index(cell) for cell in state.body]
        assert state.length == 63 and sorted(indices) == list(range(min(indices), min(indices) + 63))
        assert indices in (sorted(indices), sorted(indices)[::-1])


def test_random_walks_reach_every_row_and_column_and_retry_when_stuck():
    cells = set()
    for seed in range(30):
        cells.update(new_game(4, 4, seed, initial_length=6).body[1:])
    assert {r for r, _ in cells} == {0, 1, 2, 3} and {c for _, c in cells} == {0, 1, 2, 3}
    # Pinned: with seed 5 the first walk of 12 cells on 4x4 gets stuck and the second one succeeds.
    assert new_game(4, 4, 5, initial_length=12).body == (
        (3, 0), (2, 0), (1, 0), (1, 1), (1, 2), (0, 2), (0, 3), (1, 3), (2, 3), (3, 3), (3, 2), (2, 2),
    )


def test_lists_and_numpy_ints_are_stored_as_tuples_of_plain_ints():
    state = SnakeState(5, 5, [[np.int64(0), 0], [0, 1]], [np.int8(4), 4])
    assert state.body == ((0, 0), (0, 1)) and state.food == (4, 4)
    assert type(state.body[0][0]) is int and type(state.food[0]) is int
    assert hash(state) == hash(SnakeState(5, 5, ((0, 0), (0, 1)), (4, 4)))
