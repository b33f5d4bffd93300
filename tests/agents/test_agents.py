"""Agents: one interface, batched calls; the board helpers the planner uses (planner: test_planning.py)."""


import numpy as np
import pytest

from snake_world_eqm.agents import EqMAgent, ExpertAgent, PlannerAgent, RandomAgent
from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import (
    BODY_RIGHT,
    DEATH_EVENTS,
    EMPTY,
    FOOD,
    HEAD_RIGHT,
    TAIL,
    batched_step,
    new_game,
)
from snake_world_eqm.game.geometry import bfs_from_head


def _random_boards(count: int, size: int = 6, seed: int = 0, warmup: int = 12) -> np.ndarray:
    """Boards from random play (restarting dead games), so snakes point in every direction."""
    rng = np.random.default_rng(seed)
    boards = initial_boards(count, size, size, seed)
    for _ in range(warmup):
        candidate, _, event, _ = batched_step(boards, rng.integers(0, 4, size=count), rng)
        alive = ~np.isin(event, [int(e) for e in DEATH_EVENTS])
        boards[alive] = candidate[alive]
    return boards


def test_every_agent_answers_one_action_per_board():
    boards = _random_boards(5)
    oracle = OracleWorldModel(6, 6)
    for agent in (RandomAgent(0), ExpertAgent(), PlannerAgent(oracle, horizon=2)):
        actions = agent.act_batch(boards)
        assert actions.shape == (5,) and actions.dtype == np.int64
        assert set(actions.tolist()) <= {0, 1, 2, 3}
        assert agent.act(new_game(6, 6, rng=3)) in (0, 1, 2, 3)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        RandomAgent().act_batch(np.zeros((6, 6)))


def test_eqm_agent_from_the_origin_is_deterministic_and_noise_votes_need_noise():
    from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig

    config = SnakeWorldEqMConfig(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2,
                                 cnn_channels=8, cnn_layers=1, latent_dim=8, latent_hidden_dim=16,
                                 decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=2)
    model = SnakeWorldEqM(config)
    boards = _random_boards(16)
    plain = EqMAgent(model, seed=0)
    assert plain.deterministic and plain.init_scale == 0
    np.testing.assert_array_equal(plain.act_batch(boards), EqMAgent(model, seed=7).act_batch(boards))
    noisy = EqMAgent(model, seed=0, init_scale=1.0)
    assert not noisy.deterministic  # a repeated board proves no loop for it
    assert noisy.act_batch(boards).shape == (16,)
    with pytest.raises(ValueError, match="identical samples"):
        EqMAgent(model, votes=4)
    assert EqMAgent(model, votes=4, init_scale=1.0).act_batch(boards).shape == (16,)


def _row_board() -> np.ndarray:
    board = np.full((4, 4), EMPTY, dtype=np.int8)
    board[0, 0], board[0, 1], board[0, 2] = HEAD_RIGHT, BODY_RIGHT, TAIL  # head (0,0), tail (0,2)
    board[3, 3] = FOOD
    return board


def test_bfs_distances_on_a_hand_board():
    distance, has_head = bfs_from_head(_row_board()[None])
    assert has_head.tolist() == [True]
    assert distance[0, 0, 0] == 0 and distance[0, 3, 3] == 6 and distance[0, 0, 1] == -1
    assert distance[0, 0, 2] == 4  # the tail cell is reachable around the body: (1,0)(1,1)(1,2)(0,2)
    walled = _row_board()
    walled[1, :] = BODY_RIGHT  # not a legal board, but it cuts the head off from food and tail
    distance, _ = bfs_from_head(walled[None])
    assert distance[0, 3, 3] == -1 and distance[0, 0, 2] == -1
