"""Open-loop replay, food draws and dream-vs-real (issue 36, items 2-4) on the simulator-backed oracle (a perfect
model: every game stays exact, every food draw is one uniform food cell) and on a tiny random model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.agents import make_agent
from snake_world_eqm.evaluation.dream_vs_real import play_dream, play_real
from snake_world_eqm.evaluation.food_draws import eating_positions, measure_food_draws, total_variation
from snake_world_eqm.evaluation.open_loop import (
    ERROR_KINDS,
    classify_error,
    exact_curve,
    full_curve,
    record_games,
    replay_open_loop,
    summarise_open_loop,
)
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import EMPTY, FOOD, batched_step, encode_observation, new_game

TINY = dict(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2, latent_dim=8, eqm_hidden_dim=16,
            eqm_num_layers=1, decoder_channels=8, decoder_layers=1, eqm_sampling_steps=3)


@pytest.fixture(scope="module")
def games():
    return record_games(make_agent("expert-route"), 5, 5, num_games=3, seed=0)


def test_recorded_games_follow_the_rules(games):
    for game in games:
        assert game.boards.shape == (game.steps + 1, 5, 5) and game.end in ("death", "win", "stall", "cap")
        rng = np.random.default_rng(0)
        nxt, _, events, _ = batched_step(game.boards[:-1], game.actions, rng)
        eat = events == 1
        assert np.array_equal(events, game.events)
        assert np.array_equal(nxt[~eat], game.boards[1:][~eat])


def test_a_perfect_model_stays_exact_to_the_end(games):
    records = replay_open_loop(OracleWorldModel(5, 5), games)
    assert all(r["first_error"] is None for r in records)
    summary = summarise_open_loop(records)
    assert summary["exact_to_end"] == 3 and set(summary["curve"]["exact"]) == {1.0}
    assert summary["free_exact_to_first_apple"] == 1.0
    ks, fractions = full_curve(records)
    assert len(ks) == max(g.steps for g in games) and (fractions == 1.0).all()


def test_a_random_model_fails_at_once_and_names_the_error(games):
    torch.manual_seed(0)
    records = replay_open_loop(SnakeWorldEqM(SnakeWorldEqMConfig(**{**TINY, "board_height": 5, "board_width": 5})),
                               games, max_k=20)
    assert all(r["first_error"] == 1 and r["error_kind"] in ERROR_KINDS for r in records)
    curve = exact_curve(records, [1, 2])
    assert curve["exact"] == [0.0, 0.0] and curve["reaching"] == [3, 3]


def test_first_error_kinds():
    board = encode_observation(new_game(6, 6, rng=0))
    real = batched_step(board[None], make_agent("expert").act_batch(board[None]), 0)[0][0]
    dead = np.zeros_like(real)
    assert classify_error(dead, real) == "death"
    moved_food = real.copy()
    food = tuple(np.argwhere(real == FOOD)[0])
    moved_food[food] = EMPTY
    moved_food[tuple(np.argwhere(real == EMPTY)[0])] = FOOD
    assert classify_error(moved_food, real) == "food"
    stayed = board.copy()  # the head did not move but the length is the same
    assert classify_error(stayed, real) in ("head", "tail")
    grown = real.copy()
    grown[tuple(np.argwhere(real == EMPTY)[0])] = 9
    assert classify_error(grown, real) == "growth"


def test_food_draws_of_a_perfect_model_are_uniform(games):
    boards, actions, successors = eating_positions(games, 3, seed=0)
    result = measure_food_draws(OracleWorldModel(5, 5), boards, actions, successors, draws=50)
    assert result["fraction_one_food_on_empty_cell_and_snake_right"] == 1.0
    assert result["mean_tv"] < 0.5 and result["positions"] == 3
    assert total_variation(np.array([], dtype=np.int64), 4) == 1.0
    assert total_variation(np.array([0, 1, 2, 3]), 4) == 0.0


def test_dream_vs_real_with_a_perfect_model_matches_until_food():
    agent = make_agent("expert-route")
    real = play_real(agent, 5, 5, num_games=2, seed=1, max_steps=30)
    # food="model": the oracle draws its own food and has no decoder to draw it from
    dream = play_dream(agent, OracleWorldModel(5, 5), 5, 5, num_games=2, seed=1, max_steps=30, food="model")
    assert real["steps_per_game"] == [30, 30] and dream["steps_per_game"] == [30, 30]
    assert min(dream["apples_per_game"]) > 0 and set(dream["end_per_game"]) == {"cap"}
    random = play_dream(make_agent("random", seed=0), OracleWorldModel(5, 5), 5, 5, num_games=2, seed=1,
                        max_steps=200, food="model")
    assert set(random["end_per_game"]) <= {"death", "stall", "win"}
