"""Open-loop replay (snake_world_eqm.evaluation.open_loop) in detail: how each recorded game ends, the first error's
step, kind and context for a model that errs where the test says, and the curve and summary numbers read off
hand-made records."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from snake_world_eqm.agents import make_agent
from snake_world_eqm.agents.base import Agent
from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.evaluation.open_loop import (
    ERROR_KINDS,
    Trajectory,
    classify_error,
    default_game_cap,
    exact_curve,
    full_curve,
    record_games,
    replay_open_loop,
    summarise_open_loop,
)
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import (
    BODY_DOWN,
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_LEFT,
    TAIL,
    Event,
    SnakeState,
    encode_observation,
)

EAT, WIN = int(Event.EAT), int(Event.WIN)


class Scripted(Agent):
    """Plays `actions[t]` in every game at step t."""

    name = "scripted"

    def __init__(self, actions):
        self.actions, self.t = list(actions), 0

    def act_batch(self, obs):
        action = self.actions[self.t % len(self.actions)]
        self.t += 1
        return np.full(len(obs), action, dtype=np.int64)


def circling_seed(height, width):
    """A seed whose lone head can circle the 2x2 block right and below it without meeting the food."""
    for seed in range(100):
        board = initial_boards(1, height, width, seed, start_length=1)[0]
        row, col = (int(v) for v in np.argwhere(board == HEAD_ALONE)[0])
        block = board[row:row + 2, col:col + 2]
        if row + 1 < height and col + 1 < width and not (block == FOOD).any():
            return seed
    raise AssertionError("no circling seed")


@pytest.fixture(scope="module")
def games():
    return record_games(make_agent("expert-route"), 5, 5, num_games=3, seed=0)


# --- record_games ------------------------------------------------------------------------------------------------


def test_default_cap_is_fifty_steps_a_cell():
    assert default_game_cap(4, 5) == 1000 and default_game_cap(10, 10) == 5000


def test_a_game_without_apples_ends_as_a_stall_after_stall_limit_steps():
    seed = circling_seed(4, 5)
    circle = [1, 2, 3, 0]  # right, down, left, up
    (game,) = record_games(Scripted(circle), 4, 5, num_games=1, seed=seed, start_length=1, stall_limit=7)
    assert game.end == "stall" and game.steps == 7 and game.actions.tolist() == (circle * 2)[:7]
    assert np.array_equal(game.boards[0], initial_boards(1, 4, 5, seed, start_length=1)[0])
    assert np.array_equal(game.boards[4], game.boards[0]) and (game.events == 0).all()
    (default,) = record_games(Scripted(circle), 4, 5, num_games=1, seed=seed, start_length=1)
    assert default.end == "stall" and default.steps == 2 * 4 * 5
    (capped,) = record_games(Scripted(circle), 4, 5, num_games=1, seed=seed, start_length=1, max_steps=5)
    assert capped.end == "cap" and capped.steps == 5 and capped.boards.shape == (6, 4, 5)
    (nothing,) = record_games(Scripted(circle), 4, 5, num_games=1, seed=seed, start_length=1, max_steps=0)
    assert nothing.end == "cap" and nothing.boards.shape == (1, 4, 5)
    assert nothing.actions.shape == (0,) and nothing.actions.dtype == np.int64 and nothing.events.dtype == np.int8


def test_the_stall_count_starts_again_after_each_apple():
    """A lone head circling a 2x2 block with the food in it eats, then circles on: the game stalls exactly
    `stall_limit` steps after its last apple."""
    circle = [1, 2, 3, 0]
    for seed in range(200):
        board = initial_boards(1, 4, 5, seed, start_length=1)[0]
        row, col = (int(v) for v in np.argwhere(board == HEAD_ALONE)[0])
        if row + 1 < 4 and col + 1 < 5 and (board[row:row + 2, col:col + 2] == FOOD).any():
            (game,) = record_games(Scripted(circle), 4, 5, num_games=1, seed=seed, start_length=1, stall_limit=6)
            if game.end == "stall":
                break
    else:
        raise AssertionError("no seed whose circling snake eats and then stalls")
    last_apple = int(np.flatnonzero(game.events == EAT)[-1]) + 1
    assert game.steps - last_apple == 6 and (game.events[last_apple:] == 0).all()


def test_games_end_at_death_and_win_with_their_event_last():
    games = record_games(Scripted([0]), 6, 6, num_games=4, seed=3)  # always up: the wall (or the neck) kills
    for index, game in enumerate(games):
        assert game.end == "death" and game.events[-1] in (int(Event.WALL), int(Event.REVERSE))
        assert (game.events[:-1] == 0).all() and game.boards.shape == (game.steps + 1, 6, 6)
        assert np.array_equal(game.boards[0], initial_boards(1, 6, 6, 3 + index)[0])  # game i from seed + i
        assert (game.boards[-1] == EMPTY).all() and game.events.dtype == np.int8 and game.actions.dtype == np.int64
    assert len({game.steps for game in games}) > 1  # games of different lengths, each kept whole
    won = record_games(make_agent("expert-route"), 4, 4, num_games=2, seed=0)
    for game in won:
        assert game.end == "win" and game.events[-1] == WIN and (game.boards[-1] >= HEAD_ALONE).all()


def test_recording_is_repeatable_and_follows_the_start_length():
    first = record_games(make_agent("expert-route"), 5, 5, num_games=2, seed=4, start_length=2, max_steps=40)
    again = record_games(make_agent("expert-route"), 5, 5, num_games=2, seed=4, start_length=2, max_steps=40)
    for one, other in zip(first, again):
        assert np.array_equal(one.boards, other.boards) and (one.boards[0] >= HEAD_ALONE).sum() == 2
    assert any((g.events == EAT).any() for g in first)  # the food draws were repeated too
    default = record_games(make_agent("expert-route"), 5, 5, num_games=1, max_steps=40)
    zero = record_games(make_agent("expert-route"), 5, 5, num_games=1, seed=0, max_steps=40)
    assert np.array_equal(default[0].boards, zero[0].boards)  # seed 0 by default


def test_progress_bars_only_when_asked(capsys, games):
    record_games(make_agent("expert-route"), 4, 4, num_games=1, seed=0, max_steps=3)
    replay_open_loop(OracleWorldModel(5, 5), games, max_k=2)
    assert capsys.readouterr().err == ""
    record_games(Scripted([0]), 4, 4, num_games=1, seed=0, max_steps=3, progress=True)
    replay_open_loop(OracleWorldModel(5, 5), games, max_k=2, progress=True)
    err = capsys.readouterr().err
    assert "\rrecord scripted:   0%" in err and "| 0/3 [" in err  # the bar counts steps up to the cap
    assert "\ropen loop:   0%" in err and "| 0/2 [" in err
    assert "\n" not in err  # each bar is cleared once done: nothing is left on the terminal


# --- classify_error ----------------------------------------------------------------------------------------------


def five(body, food):
    return encode_observation(SnakeState(5, 5, tuple(body), food))


def test_each_first_error_kind():
    real = five(((2, 1), (2, 2), (2, 3), (3, 3)), (0, 0))  # head pointing right... toward its neck
    dead = np.zeros_like(real)
    assert classify_error(dead, real) == "death" and classify_error(real, dead) == "death"
    grown = real.copy()
    grown[4, 3] = TAIL
    assert classify_error(grown, real) == "growth"
    moved_head = five(((1, 2), (2, 2), (2, 3), (3, 3)), (0, 0))
    assert classify_error(moved_head, real) == "head"
    turned_head = real.copy()
    turned_head[2, 1] = HEAD_LEFT  # same cell, another pointer
    assert classify_error(turned_head, real) == "head"
    two_heads = real.copy()
    two_heads[2, 2] = HEAD_LEFT  # the neck read as a second head: same length
    assert classify_error(two_heads, real) == "head"
    moved_tail = real.copy()
    moved_tail[3, 3], moved_tail[4, 4] = EMPTY, TAIL
    assert classify_error(moved_tail, real) == "tail"
    bent = real.copy()
    bent[2, 2] = BODY_DOWN
    assert classify_error(bent, real) == "body"
    moved_food = real.copy()
    moved_food[0, 0], moved_food[4, 4] = EMPTY, FOOD
    assert classify_error(moved_food, real) == "food"


def test_every_head_code_is_a_head():
    """A lone head (HEAD_ALONE) and a head pointing left (HEAD_LEFT) are heads: only the food differs."""
    for real in (five(((2, 2),), (0, 0)), five(((2, 2), (2, 1), (2, 0)), (0, 0))):
        assert ((real == HEAD_ALONE) | (real == HEAD_LEFT)).any()
        moved_food = real.copy()
        moved_food[0, 0], moved_food[4, 4] = EMPTY, FOOD
        assert classify_error(moved_food, real) == "food"


# --- replay_open_loop --------------------------------------------------------------------------------------------


class TrapModel(OracleWorldModel):
    """The rules' successor, except from the boards in `traps` (board bytes -> a function of the true successor);
    records the options of each call."""

    def __init__(self, height, width, traps=None):
        super().__init__(height, width)
        self.traps, self.calls = dict(traps or {}), []

    def sample(self, obs, action=None, generator=None, init_scale=1.0, **kwargs):
        self.calls.append(dict(rows=len(obs), generator=generator, init_scale=init_scale))
        out = super().sample(obs, action=action, generator=generator, init_scale=init_scale, **kwargs)
        boards = out.next_board.numpy().copy()
        for row, board in enumerate(obs.cpu().numpy().astype(np.int8)):
            trap = self.traps.get(board.tobytes())
            if trap is not None:
                boards[row] = trap(boards[row])
        out.next_board = torch.as_tensor(boards)
        return out


def kill(board):
    return np.zeros_like(board)


def move_food(board):
    board = board.copy()
    board[board == FOOD] = EMPTY
    board[tuple(np.argwhere(board == EMPTY)[-1])] = FOOD
    return board


def lengths(board):
    return int((board >= HEAD_ALONE).sum())


def traps_for(games):
    """Game 0 errs (death) on its first apple; game 1 errs (food) on its first non-eating step after its first
    apple; game 2 is reproduced to its end."""
    first_apple_0 = int(np.flatnonzero(games[0].events == EAT)[0]) + 1
    apple_1 = int(np.flatnonzero(games[1].events == EAT)[0]) + 1
    step_1 = next(t for t in range(apple_1 + 1, games[1].steps + 1) if games[1].events[t - 1] == 0)
    traps = {games[0].boards[first_apple_0 - 1].tobytes(): kill, games[1].boards[step_1 - 1].tobytes(): move_food}
    return traps, first_apple_0, step_1


def test_the_first_error_its_kind_and_its_context(games):
    traps, error_0, error_1 = traps_for(games)
    model = TrapModel(5, 5, traps)
    records = replay_open_loop(model, games, init_scale=0.5, seed=9)
    assert [r["first_error"] for r in records] == [error_0, error_1, None]
    assert [r["error_kind"] for r in records] == ["death", "food", None]
    for record, game in zip(records, games):
        assert record["steps"] == record["replayed"] == game.steps and record["end"] == game.end == "win"
        assert record["first_apple"] == int(np.flatnonzero(game.events == EAT)[0]) + 1
    assert [r["free_exact_to_first_apple"] for r in records] == [False, True, True]
    assert [r["length_at_error"] for r in records] == [lengths(games[0].boards[error_0 - 1]),
                                                       lengths(games[1].boards[error_1 - 1]), None]
    eats = lambda game, upto: int(((game.events[:upto] == EAT) | (game.events[:upto] == WIN)).sum())  # noqa: E731
    assert [r["apples_before_error"] for r in records] == [0, eats(games[1], error_1 - 1), eats(games[2], None)]
    assert records[2]["apples_before_error"] == 22  # 21 apples and the winning one
    for record, game, stop in zip(records, games, (error_0, error_1, games[2].steps)):
        assert record["steps_by_length"] == dict(Counter(lengths(board) for board in game.boards[:stop]))
    assert records[0]["errors_by_length"] == {3: 1}
    assert records[1]["errors_by_length"] == {lengths(games[1].boards[error_1 - 1]): 1}
    assert records[2]["errors_by_length"] == {}
    assert {call["init_scale"] for call in model.calls} == {0.5}
    assert {call["generator"].initial_seed() for call in model.calls} == {9}
    assert len({id(call["generator"]) for call in model.calls}) == 1  # one generator for the whole replay


def test_the_defaults():
    game = Trajectory(np.repeat(initial_boards(1, 5, 5, 0), 2, axis=0), np.array([0]), np.array([0], np.int8), "cap")
    model = TrapModel(5, 5)
    replay_open_loop(model, [game] * 257, max_k=1)
    assert [call["rows"] for call in model.calls] == [256, 1]  # 256 games a model call
    assert model.calls[0]["init_scale"] == 1.0 and model.calls[0]["generator"].initial_seed() == 0


def test_batches_and_votes_do_not_change_the_records(games):
    traps, _, _ = traps_for(games)
    whole = replay_open_loop(TrapModel(5, 5, traps), games)
    model = TrapModel(5, 5, traps)
    assert replay_open_loop(model, games, batch_size=2) == whole
    assert max(call["rows"] for call in model.calls) == 2 and model.calls[0]["rows"] == 2
    assert model.calls[1]["rows"] == 1  # the rest of the first step's games
    voted = TrapModel(5, 5, traps)
    assert replay_open_loop(voted, games, votes=3) == whole
    assert voted.calls[0]["rows"] == 9


def test_max_k_replays_only_the_first_steps(games):
    traps, error_0, _ = traps_for(games)
    k = error_0 - 1  # game 0's error lies just past the window
    records = replay_open_loop(TrapModel(5, 5, traps), games, max_k=k)
    assert [r["replayed"] for r in records] == [k] * 3 and [r["first_error"] for r in records] == [None] * 3
    assert [r["steps"] for r in records] == [g.steps for g in games]
    for record, game in zip(records, games):
        assert sum(record["steps_by_length"].values()) == k
        assert record["apples_before_error"] == int((game.events[:k] == EAT).sum())
    assert records[0]["free_exact_to_first_apple"] is True  # exact through the window
    none = replay_open_loop(TrapModel(5, 5, traps), games, max_k=0)
    assert [r["replayed"] for r in none] == [0] * 3 and all(r["steps_by_length"] == {} for r in none)


def test_a_game_without_apples_and_a_game_without_steps():
    seed = circling_seed(4, 5)
    (stall,) = record_games(Scripted([1, 2, 3, 0]), 4, 5, num_games=1, seed=seed, start_length=1, stall_limit=6)
    empty = Trajectory(stall.boards[:1], np.zeros(0, np.int64), np.zeros(0, np.int8), "cap")
    died = Trajectory(stall.boards[:2], stall.actions[:1], stall.events[:1], "stall")
    model = TrapModel(4, 5, {stall.boards[0].tobytes(): kill})
    records = replay_open_loop(model, [stall, empty, died])
    assert [r["first_error"] for r in records] == [1, None, 1]
    assert [r["first_apple"] for r in records] == [None, None, None]
    assert [r["free_exact_to_first_apple"] for r in records] == [None, None, None]
    assert records[1]["replayed"] == 0 and records[1]["steps_by_length"] == {} and records[0]["length_at_error"] == 1
    assert records[0]["steps_by_length"] == {1: 1}


# --- exact_curve, full_curve, summarise_open_loop ----------------------------------------------------------------


def record(first_error, replayed, steps=None, end="win", kind=None, first_apple=None, free=None, apples=0,
           by_length=None, errors=None):
    return {"steps": replayed if steps is None else steps, "replayed": replayed, "end": end,
            "first_error": first_error, "error_kind": kind, "length_at_error": None, "apples_before_error": apples,
            "first_apple": first_apple, "free_exact_to_first_apple": free, "steps_by_length": by_length or {},
            "errors_by_length": errors or {}}


RECORDS = [
    record(2, 10, kind="head", first_apple=1, free=True, apples=1, by_length={3: 2}, errors={3: 1}),
    record(None, 3, end="death", first_apple=2, free=True, apples=1, by_length={3: 2, 4: 1}),
    record(None, 10, steps=12, end="cap", by_length={3: 6, 12: 4}),
    record(5, 5, end="stall", kind="growth", first_apple=5, free=False, by_length={9: 4, 10: 1}, errors={10: 1}),
]


def test_exact_curve_counts_games_still_exact_and_those_that_reach_k():
    curve = exact_curve(RECORDS, [np.int64(1), 2, 3, 5.0, 10, 11])
    assert curve["k"] == [1, 2, 3, 5, 10, 11] and all(type(k) is int for k in curve["k"])
    assert curve["exact"] == [1.0, 0.75, 0.75, 0.5, 0.5, 0.5]
    assert curve["reaching"] == [4, 4, 4, 3, 2, 0]
    assert curve["exact_among_reaching"] == [1.0, 0.75, 0.75, 1 / 3, 0.5, None]
    assert exact_curve([], [1]) == {"k": [1], "exact": [None], "exact_among_reaching": [None], "reaching": [0]}


def test_full_curve_steps_through_every_k():
    ks, fractions = full_curve(RECORDS)
    assert ks.tolist() == list(range(1, 11))
    assert fractions.tolist() == [1.0, 0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
    ks, fractions = full_curve([])
    assert ks.size == 0 and fractions.size == 0


def test_summary_of_hand_made_records():
    summary = summarise_open_loop(RECORDS, grid=(1, 2, 5, 20), length_buckets=(1, 4, 10, 12))
    assert summary["games"] == 4 and summary["mean_game_steps"] == 7.5
    assert summary["game_ends"] == {"death": 1, "win": 1, "stall": 1, "cap": 1}
    assert summary["exact_to_end"] == 2
    assert summary["curve"]["k"] == [1, 2, 5, 10]  # the grid up to the longest replay, then the longest
    assert summary["curve"]["exact"] == [1.0, 0.75, 0.5, 0.5]
    assert summary["first_error_kinds"] == {kind: int(kind in ("head", "growth")) for kind in ERROR_KINDS}
    assert summary["free_exact_to_first_apple"] == 2 / 3 and summary["games_with_an_apple"] == 3
    assert summary["mean_apples_before_error"] == 0.5
    assert summary["error_rate_by_length"] == [
        {"lengths": [1, 3], "steps": 10, "errors": 1, "error_rate_per_step": 0.1},
        {"lengths": [4, 9], "steps": 5, "errors": 0, "error_rate_per_step": 0.0},
        {"lengths": [10, 11], "steps": 1, "errors": 1, "error_rate_per_step": 1.0},
        {"lengths": [12, 10**9 - 1], "steps": 4, "errors": 0, "error_rate_per_step": 0.0},
    ]
    on_grid = summarise_open_loop(RECORDS, grid=(1, 10, 20))
    assert on_grid["curve"]["k"] == [1, 10]  # the longest is on the grid: not added twice
    default = summarise_open_loop(RECORDS)
    assert default["curve"]["k"] == [1, 2, 5, 10] and default["error_rate_by_length"][0]["lengths"] == [1, 9]
    assert default["error_rate_by_length"][1] == {"lengths": [10, 19], "steps": 5, "errors": 1,
                                                  "error_rate_per_step": 0.2}


def test_summary_of_no_games():
    summary = summarise_open_loop([])
    assert summary["games"] == 0 and summary["mean_game_steps"] is None and summary["exact_to_end"] == 0
    assert summary["curve"]["k"] == [] and summary["free_exact_to_first_apple"] is None
    assert summary["games_with_an_apple"] == 0 and summary["mean_apples_before_error"] is None
    assert summary["error_rate_by_length"] == [] and summary["game_ends"] == dict.fromkeys(
        ("death", "win", "stall", "cap"), 0)
    assert summary["first_error_kinds"] == dict.fromkeys(ERROR_KINDS, 0)


def test_replaying_no_games_gives_no_records_without_asking_the_model():
    model = TrapModel(5, 5)
    assert replay_open_loop(model, []) == [] and model.calls == []
    assert summarise_open_loop(replay_open_loop(model, []))["games"] == 0
