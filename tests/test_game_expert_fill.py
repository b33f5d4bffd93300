"""The fill expert and its route: every board size, odd x odd, non-square, one-cell starts, arbitrary
legal boards (a learner's states), determinism, and a dataset built with it that validates."""

from __future__ import annotations

import numpy as np
import pytest
from game_helpers import random_state
from hypothesis import given, settings
from hypothesis import strategies as st

from snake_world_eqm.game import DELTAS, Event, batched_step, decode_observation, encode_observation, new_game
from snake_world_eqm.game.expert import (
    EXPERT_KINDS,
    _CycleOrder,
    _Snakes,
    expert_actions,
    fill_action,
    tail_reachable_after,
)
from snake_world_eqm.game.hamilton import cycle_positions, route_variants


def route_cells(height: int, width: int, variant: int) -> list[list[tuple[int, int]]]:
    position, size = cycle_positions(height, width, variant)
    cells: list[list[tuple[int, int]]] = [[] for _ in range(size)]
    for cell, index in enumerate(position.tolist()):
        cells[index].append(divmod(cell, width))
    return cells


def assert_closed_route(height: int, width: int, variant: int) -> None:
    cells = route_cells(height, width, variant)
    twins = [group for group in cells if len(group) == 2]
    assert all(1 <= len(group) <= 2 for group in cells)
    # Odd x odd boards have no Hamiltonian cycle: one position holds two (non-adjacent) twin cells.
    assert len(twins) == (height % 2) * (width % 2)
    for index, group in enumerate(cells):
        for a in group:
            for b in cells[(index + 1) % len(cells)]:
                assert abs(a[0] - b[0]) + abs(a[1] - b[1]) == 1, (height, width, variant, index, a, b)


def test_the_route_is_a_closed_walk_over_every_cell_on_every_board_size():
    for height in range(4, 33):
        for width in range(4, 33):
            position, size = cycle_positions(height, width)
            assert size == height * width - (height % 2) * (width % 2)
            assert sorted(set(position.tolist())) == list(range(size))
    for height, width in ((4, 4), (5, 5), (6, 9), (7, 5), (9, 9), (8, 12)):
        for variant in range(route_variants(height, width)):
            assert_closed_route(height, width, variant)


def traced_span(state, height: int, width: int, variant: int) -> int:
    position, size = cycle_positions(height, width, variant)
    along = [position[r * width + c] for r, c in state.body]
    return int(sum((along[i] - along[i + 1]) % size for i in range(len(along) - 1)))


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 9), st.integers(4, 9), st.integers(0, 2**32 - 1))
def test_span_read_from_the_cell_codes_matches_the_traced_body(height, width, seed):
    rng = np.random.default_rng(seed)
    states = [random_state(rng, height, width) for _ in range(8)]
    boards = np.stack([encode_observation(s) for s in states])
    variant = int(rng.integers(route_variants(height, width)))
    order = _CycleOrder(_Snakes(boards), variant)
    assert order.span.tolist() == [traced_span(s, height, width, variant) for s in states]


# ----------------------------------------------------------------------------------------------
# The virtual-snake check, written plainly, and the property the expert must keep.


def body_after(state, action: int):
    """(body after the move, head first, or None if the move is death) - eating keeps the tail."""
    head = (state.head[0] + DELTAS[action][0], state.head[1] + DELTAS[action][1])
    if not (0 <= head[0] < state.height and 0 <= head[1] < state.width):
        return None
    eats = head == state.food
    kept = list(state.body if eats else state.body[:-1])
    if head in kept or (len(state.body) >= 2 and head == state.body[1]):
        return None
    return [head, *kept]


def naive_tail_search(body, height: int, width: int) -> bool:
    """Breadth-first over (cell, time), cells visited once: segment i of a length-L body is vacated
    after L - i moves (a length-2 snake's neck after 2); reaching a vacated segment is safe."""
    length = len(body)
    if length == 1:
        return True
    free_from = {cell: length - i for i, cell in enumerate(body) if i}
    if length == 2:
        free_from[body[1]] = 2
    frontier, seen = [body[0]], {body[0]}
    for time in range(1, height * width + length + 1):
        nxt = []
        for r, c in frontier:
            for dr, dc in DELTAS:
                cell = (r + dr, c + dc)
                if not (0 <= cell[0] < height and 0 <= cell[1] < width) or cell in seen or cell == body[0]:
                    continue
                if cell in free_from:
                    if free_from[cell] <= time:
                        return True
                    continue
                seen.add(cell)
                nxt.append(cell)
        frontier = nxt
        if not frontier:
            return False
    return False


def naive_route_follow(body, food, height: int, width: int, variant: int) -> bool:
    """A virtual snake follows the route from ``body`` for a full body length and one more move
    (eating the food if it meets it), never entering a cell its body still holds."""
    position, size = cycle_positions(height, width, variant)
    cells = route_cells(height, width, variant)
    body = list(body)
    if len(body) < 3:
        return False  # left to the exact cycle-order test, as the expert does
    for _ in range(len(body) + 2):
        head = body[0]
        options = cells[(position[head[0] * width + head[1]] + 1) % size]
        free = [cell for cell in options if cell not in body[:-1]]
        if not free:
            return False
        cell = food if food in free else free[0]
        body = [cell, *body] if cell == food else [cell, *body[:-1]]
        if cell == food:
            food = None
    return True


def safe_after(state, action: int) -> bool:
    body = body_after(state, action)
    if body is None:
        return False
    if naive_tail_search(body, state.height, state.width):
        return True
    return any(naive_route_follow(body, state.food, state.height, state.width, v) for v in range(route_variants(state.height, state.width)))


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 7), st.integers(4, 7), st.integers(0, 2**32 - 1))
def test_the_fill_move_is_never_into_a_lost_position_when_a_safe_one_exists(height, width, seed):
    rng = np.random.default_rng(seed)
    states = [s for s in (random_state(rng, height, width) for _ in range(10)) if s.food is not None]
    if not states:
        return
    actions = expert_actions(np.stack([encode_observation(s) for s in states]), "fill")
    for state, action in zip(states, actions.tolist()):
        safe = [safe_after(state, a) for a in range(4)]
        if any(safe):
            assert safe[action], (state, action, safe)


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 8), st.integers(4, 8), st.integers(0, 2**32 - 1))
def test_the_batched_tail_check_matches_the_plain_search(height, width, seed):
    rng = np.random.default_rng(seed)
    states = [s for s in (random_state(rng, height, width) for _ in range(8)) if s.food is not None]
    if not states:
        return
    batched = tail_reachable_after(np.stack([encode_observation(s) for s in states]))
    for state, row in zip(states, batched.tolist()):
        expected = []
        for action in range(4):
            body = body_after(state, action)
            expected.append(body is not None and naive_tail_search(body, height, width))
        assert row == expected, state


# ----------------------------------------------------------------------------------------------
# Play


def play_to_the_end(height: int, width: int, starts: list[tuple[int, int]], kind: str = "fill"):
    """Games from (seed, start length) pairs in lock step, cap 50 x cells; returns the events that ended them."""
    obs = np.stack([encode_observation(new_game(height, width, seed, length)) for seed, length in starts])
    rng = np.random.default_rng(0)
    ended = np.full(len(starts), -1)
    for _ in range(50 * height * width):
        live = np.flatnonzero(ended < 0)
        if not live.size:
            break
        nxt, _, event, terminated = batched_step(obs[live], expert_actions(obs[live], kind), rng)
        obs[live] = nxt
        ended[live[terminated]] = event[terminated]
    return ended


@pytest.mark.parametrize(("height", "width"), [(5, 5), (4, 6), (5, 7)])
def test_fill_wins_every_game_on_odd_and_non_square_boards_from_both_starts(height, width):
    ended = play_to_the_end(height, width, [(seed, length) for seed in range(2) for length in (1, 3)])
    assert (ended == Event.WIN).all(), ended


def test_the_plain_cycle_wins_too():
    assert (play_to_the_end(5, 5, [(0, 1), (1, 3)], kind="cycle") == Event.WIN).all()


@pytest.mark.parametrize(("height", "width"), [(5, 5), (4, 6)])
def test_the_route_expert_wins_and_keeps_to_the_base_route(height, width):
    assert (play_to_the_end(height, width, [(0, 1), (1, 3), (2, 3)], kind="route") == Event.WIN).all()
    # From a one-cell start the snake is in order on the base route and every move keeps it there, so
    # the route expert never consults the other routes (fill's choice among them is what learners miss).
    obs = encode_observation(new_game(height, width, 0, 1))[None]
    rng = np.random.default_rng(0)
    for _ in range(50 * height * width):
        assert _CycleOrder(_Snakes(obs), 0).in_order[0]
        obs, _, event, terminated = batched_step(obs, expert_actions(obs, "route"), rng)
        if terminated[0]:
            break
    assert event[0] == Event.WIN


def test_fill_is_deterministic_and_the_single_board_path_agrees():
    rng = np.random.default_rng(4)
    states = [s for s in (random_state(rng, 7, 9) for _ in range(40)) if s.food is not None]
    boards = np.stack([encode_observation(s) for s in states])
    actions = expert_actions(boards, "fill")
    assert np.array_equal(expert_actions(boards[::-1], "fill"), actions[::-1])
    assert np.array_equal(expert_actions(boards, "fill", num_threads=2), actions)
    assert [fill_action(s) for s in states[:10]] == actions[:10].tolist()
    assert actions.dtype == np.int64 and set(actions.tolist()) <= {0, 1, 2, 3}


def test_kinds_are_listed_once_for_the_data_layer():
    from snake_world_eqm.data.generate import DEFAULT_EXPERT
    from snake_world_eqm.data.generate import EXPERT_KINDS as DATA_KINDS
    from snake_world_eqm.evaluation.cli import EXPERT_KINDS as CLI_KINDS

    assert DATA_KINDS == EXPERT_KINDS == CLI_KINDS and DEFAULT_EXPERT == "fill"


def test_a_one_cell_snake_takes_a_legal_move_toward_the_food():
    from snake_world_eqm.game import SnakeState, step

    state = SnakeState(6, 6, ((2, 2),), (2, 4))
    assert step(state, fill_action(state), 0).event not in (Event.WALL, Event.SELF, Event.REVERSE)
    assert decode_observation(encode_observation(state)) == state


def test_a_dataset_built_with_the_fill_expert_validates(tmp_path, monkeypatch, capsys):
    from dataset_builder.__main__ import main

    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path / "cache")
    output = tmp_path / "fill"
    args = ["--num-samples", "600", "--height", "6", "--width", "6", "--seed", "2", "--rows-per-chunk", "300",
            "--parallel-games", "6", "--no-progress", "--expert", "fill", "--output", str(output)]
    assert main(args) == 0
    assert "`fill`" in (output / "README.md").read_text()
    assert main(["validate", str(output), "--no-progress"]) == 0
    assert "0 violations in 600 rows" in capsys.readouterr().out
