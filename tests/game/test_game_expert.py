"""Experts: deterministic, batched == single board, never a fatal move when a safe one exists, and good play."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snake_world_eqm.game import (
    DEATH_EVENTS,
    DELTAS,
    Event,
    SnakeState,
    batched_step,
    encode_observation,
    new_game,
    step,
    terminal_observation,
)
from snake_world_eqm.game.expert import (
    EXPERT_KINDS,
    astar_action,
    expert_actions,
    fill_action,
    food_distances,
    heuristic_action,
)
from tests.game_helpers import random_state


def random_boards(seed: int, count: int, height: int, width: int) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    states = [random_state(rng, height, width) for _ in range(count)]
    states = [s for s in states if s.food is not None]  # full boards are over already
    return states, np.stack([encode_observation(s) for s in states])


def expert_play_boards(height: int, width: int, games: int, steps: int, seed: int) -> np.ndarray:
    """Boards the A* expert itself visits (long snakes, tight spaces)."""
    obs = np.stack([encode_observation(new_game(height, width, seed + g)) for g in range(games)])
    rng = np.random.default_rng(seed)
    seen = []
    for _ in range(steps):
        live = (obs >= 2).any(axis=(1, 2))
        if not live.any():
            break
        seen.append(obs[live])
        obs[live] = batched_step(obs[live], expert_actions(obs[live]), rng)[0]
    return np.concatenate(seen)


@pytest.mark.parametrize("kind", EXPERT_KINDS)
@pytest.mark.parametrize(("height", "width"), [(4, 4), (7, 5), (10, 10), (6, 17)])
def test_no_fatal_move_when_a_safe_one_exists(kind, height, width):
    states, boards = random_boards(height * 100 + width, 150, height, width)
    actions = expert_actions(boards, kind)
    for state, action in zip(states, actions):
        outcomes = [step(state, a, 0).event for a in range(4)]
        if any(event not in DEATH_EVENTS for event in outcomes):
            assert outcomes[action] not in DEATH_EVENTS, (state, action, outcomes)
        else:  # certain death: at least not into the wall or the neck
            assert outcomes[action] == Event.SELF


@pytest.mark.parametrize("kind", ["astar", "heuristic"])
def test_batched_equals_single_board_and_is_deterministic(kind):
    states, boards = random_boards(7, 60, 8, 8)
    one = astar_action if kind == "astar" else heuristic_action
    batched = expert_actions(boards, kind)
    assert batched.dtype == np.int64 and batched.shape == (len(states),)
    assert [one(s) for s in states] == batched.tolist()
    assert np.array_equal(expert_actions(boards[::-1], kind), batched[::-1])


def test_astar_on_its_own_games_matches_single_board_path():
    boards = expert_play_boards(6, 6, 4, 150, seed=11)[::7]
    from snake_world_eqm.game import decode_observation

    assert [astar_action(decode_observation(b)) for b in boards] == expert_actions(boards).tolist()


def test_terminal_boards_get_action_zero_and_bad_kind_is_rejected():
    boards = np.stack([terminal_observation(5, 5), encode_observation(new_game(5, 5, 0))])
    assert expert_actions(boards)[0] == 0
    with pytest.raises(ValueError, match="unknown expert kind"):
        expert_actions(boards, "greedy")
    for bad in (0, -2, True, 2.0, "2"):  # a positive int, not a bool that happens to be one
        with pytest.raises(ValueError, match=rf"^num_threads must be a positive int, got {re.escape(repr(bad))}$"):
            expert_actions(boards, num_threads=bad)
    for single_board in (astar_action, fill_action, heuristic_action):  # the error names what came instead
        with pytest.raises(TypeError, match=rf"^{single_board.__name__} expects a SnakeState, got ndarray$"):
            single_board(boards[1])


@pytest.mark.parametrize("kind", EXPERT_KINDS)
def test_a_batch_of_one_cell_snakes_gets_legal_moves_toward_the_food(kind):
    # Games started at length 1 (a dataset option): a batch in which no snake has a neck yet. Every kind
    # moves legally; the food-seeking ones close in on the apple (no body in the way: Manhattan distance).
    states = [new_game(5, 6, seed, 1) for seed in range(24)]
    actions = expert_actions(np.stack([encode_observation(s) for s in states]), kind)
    for state, action in zip(states, actions.tolist()):
        after = step(state, action, 0)
        assert after.event not in DEATH_EVENTS, (state, action)
        if kind in ("astar", "fill", "heuristic"):
            head = after.state.head if after.event != Event.EAT else state.food
            assert (abs(head[0] - state.food[0]) + abs(head[1] - state.food[1])
                    == abs(state.head[0] - state.food[0]) + abs(state.head[1] - state.food[1]) - 1), (state, action)


def test_astar_takes_the_shortest_path_when_it_is_safe():
    from snake_world_eqm.game import SnakeState

    state = SnakeState(8, 8, ((4, 4), (4, 3), (4, 2)), (4, 7))  # food straight ahead
    assert astar_action(state) == 1
    state = SnakeState(8, 8, ((4, 4), (4, 3), (4, 2)), (1, 4))  # food straight up
    assert astar_action(state) == 0


def test_astar_refuses_food_that_would_trap_it():
    from snake_world_eqm.game import SnakeState

    # Columns 0-1 are a pocket walled by the body in column 2; the food lies at its far end.
    # Going in (7 moves) would leave the snake there while its body in column 2 still stands.
    body = ((0, 2), (1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (5, 3), (5, 4), (5, 5), (4, 5), (4, 4), (4, 3),
            (3, 3), (3, 4), (3, 5), (2, 5))
    state = SnakeState(6, 6, body, (5, 0))
    assert astar_action(state) == 1  # into the open side, toward the tail
    assert step(state, astar_action(state), 0).event not in DEATH_EVENTS


def play(height: int, width: int, games: int, max_steps: int, kind: str = "astar"):
    obs = np.stack([encode_observation(new_game(height, width, 1000 + g)) for g in range(games)])
    rng = np.random.default_rng(0)
    events = []
    for _ in range(max_steps):
        live = (obs >= 2).any(axis=(1, 2)) & ~((obs >= 2).all(axis=(1, 2)))
        if not live.any():
            break
        nxt, _, event, _ = batched_step(obs[live], expert_actions(obs[live], kind), rng)
        obs[live] = nxt
        events.extend(event.tolist())
    lengths = np.array([(o >= 2).sum() if (o >= 2).any() else -1 for o in obs])
    return events, lengths


def test_astar_plays_well_on_a_small_board():
    events, lengths = play(6, 6, 12, 600)
    assert Event.WALL not in events and Event.REVERSE not in events
    # Dead snakes have length -1 here; count their fill as the best case is not claimed.
    assert (lengths > 0).mean() >= 0.75
    assert lengths[lengths > 0].mean() / 36 >= 0.8


def test_heuristic_expert_eats():
    events, _ = play(8, 8, 8, 150, "heuristic")
    assert events.count(Event.EAT) >= 8 * 5


def naive_food_distance(state) -> int:
    """Breadth-first search over (cell, time) written plainly: segment i of a length-L body is
    an obstacle until step L - i (a length-2 snake's neck until step 2); cells are never revisited."""
    length = len(state.body)
    free_from = {cell: length - i for i, cell in enumerate(state.body)}
    if length == 2:
        free_from[state.body[1]] = 2
    frontier, seen = [state.head], {state.head}
    for time in range(1, state.height * state.width + 1):
        nxt = []
        for r, c in frontier:
            for dr, dc in ((-1, 0), (0, 1), (1, 0), (0, -1)):
                cell = (r + dr, c + dc)
                if not (0 <= cell[0] < state.height and 0 <= cell[1] < state.width) or cell in seen:
                    continue
                if free_from.get(cell, 0) > time:
                    continue
                if cell == state.food:
                    return time
                seen.add(cell)
                nxt.append(cell)
        frontier = nxt
    return 0


@settings(max_examples=200, deadline=None)
@given(st.integers(4, 12), st.integers(4, 20), st.integers(0, 2**32 - 1))
def test_batched_time_aware_search_matches_a_naive_one(height, width, seed):
    states, boards = random_boards(seed, 6, height, width)
    if not states:
        return
    expected = [naive_food_distance(s) for s in states]
    assert food_distances(boards).tolist() == expected


@pytest.mark.parametrize("kind", ["astar", "fill"])
@pytest.mark.parametrize(("height", "width"), [(5, 5), (6, 9), (9, 6)])
def test_a_snake_of_one_or_two_cells_takes_a_shortest_path_to_the_food(kind, height, width):
    # Eating leaves a snake of at most three cells, which can always reach its tail: the path is safe.
    rng = np.random.default_rng(height * 10 + width)
    states = []
    for _ in range(120):
        head = (int(rng.integers(height)), int(rng.integers(width)))
        options = [(head[0] + dr, head[1] + dc) for dr, dc in DELTAS
                   if 0 <= head[0] + dr < height and 0 <= head[1] + dc < width]
        body = (head,) if rng.random() < 0.5 else (head, options[int(rng.integers(len(options)))])
        free = [(r, c) for r in range(height) for c in range(width) if (r, c) not in body]
        states.append(SnakeState(height, width, body, free[int(rng.integers(len(free)))]))
    # The neck in a corner and the apple on its other side: of the two shortest ways round, one is a reversal.
    for corner in ((0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1)):
        beside = [(corner[0] + dr, corner[1] + dc) for dr, dc in DELTAS
                  if 0 <= corner[0] + dr < height and 0 <= corner[1] + dc < width]
        for head, food in (beside, beside[::-1]):
            states.append(SnakeState(height, width, (head, corner), food))
    actions = expert_actions(np.stack([encode_observation(s) for s in states]), kind)
    for state, action in zip(states, actions.tolist()):
        distance = naive_food_distance(state)
        after = step(state, action, 0)
        if distance == 1:
            assert after.event == Event.EAT, (state, action)
        else:
            assert after.event == Event.NONE and naive_food_distance(after.state) == distance - 1, (state, action)


def naive_heuristic_action(state) -> int:
    """The heuristic expert written plainly: among the four moves, legal first, then one that is not a dead
    end (unless it eats), then nearer the food (Manhattan), then more free neighbours; the first on ties."""
    height, width, body = state.height, state.width, state.body
    enterable = set((r, c) for r in range(height) for c in range(width)) - set(body)
    if len(body) >= 3:
        enterable.add(body[-1])  # the tail moves on (unless the snake eats)

    def key(action):
        cell = (body[0][0] + DELTAS[action][0], body[0][1] + DELTAS[action][1])
        if cell not in enterable:
            return (0, 0, 0, 0)
        exits = sum((cell[0] + dr, cell[1] + dc) in enterable and (cell[0] + dr, cell[1] + dc) != body[0]
                    for dr, dc in DELTAS)
        distance = abs(cell[0] - state.food[0]) + abs(cell[1] - state.food[1])
        return (1, int(exits > 0 or cell == state.food), -distance, exits)

    keys = [key(action) for action in range(4)]
    return keys.index(max(keys))


@pytest.mark.parametrize(("height", "width"), [(5, 5), (6, 9), (9, 4)])
def test_the_heuristic_expert_matches_its_plain_definition(height, width):
    states, boards = random_boards(height * 31 + width, 80, height, width)
    expected = [naive_heuristic_action(s) for s in states]
    legal_somewhere = [any(step(s, a, 0).event not in DEATH_EVENTS for a in range(4)) for s in states]
    got = expert_actions(boards, "heuristic").tolist()
    # Where every move is death the expert falls back to a move that is not into the wall or the neck.
    assert [g for g, ok in zip(got, legal_somewhere) if ok] == [e for e, ok in zip(expected, legal_somewhere) if ok]


def test_a_full_board_has_no_food_distance():
    path = [(r, c if r % 2 == 0 else 3 - c) for r in range(4) for c in range(4)]  # a snake that fills a 4x4 board
    full = encode_observation(SnakeState(4, 4, tuple(reversed(path)), None))
    assert food_distances(full[None]).tolist() == [0]


def test_the_entry_points_keep_their_documented_types_on_any_batch(monkeypatch):
    import snake_world_eqm.game.expert as expert
    from snake_world_eqm.game.expert import tail_reachable_after

    _, boards = random_boards(3, 6, 5, 5)
    assert food_distances(boards).dtype == np.int64 and tail_reachable_after(boards).dtype == np.bool_
    empty = np.zeros((0, 5, 5), dtype=np.int8)
    for kind in EXPERT_KINDS:
        assert expert_actions(empty, kind).dtype == np.int64 and expert_actions(empty, kind).shape == (0,)
    # The cached index range grows for a batch bigger than it (a search step asks for one per board).
    monkeypatch.setattr(expert, "_ARANGE", np.arange(8))  # a small cache (not one grown by earlier tests)
    assert np.array_equal(expert._arange(20), np.arange(20)) and np.array_equal(expert._arange(5), np.arange(5))
