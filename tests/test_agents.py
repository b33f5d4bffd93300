"""Agents and the planner: one interface, batched calls, and lookahead that avoids predicted deaths."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from snake_world_eqm.evaluation.agents import (
    ExpertAgent,
    PlannerAgent,
    RandomAgent,
    bfs_from_head,
    board_heuristic,
)
from snake_world_eqm.evaluation.closed_loop import initial_boards, play_games
from snake_world_eqm.evaluation.metrics import is_terminal
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import (
    BODY_RIGHT,
    DEATH_EVENTS,
    EMPTY,
    FOOD,
    HEAD_RIGHT,
    TAIL,
    batched_step,
    batched_successors,
    new_game,
)


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
    for agent in (RandomAgent(0), ExpertAgent(), PlannerAgent(oracle, depth=1)):
        actions = agent.act_batch(boards)
        assert actions.shape == (5,) and actions.dtype == np.int64
        assert set(actions.tolist()) <= {0, 1, 2, 3}
        assert agent.act(new_game(6, 6, rng=3)) in (0, 1, 2, 3)
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        RandomAgent().act_batch(np.zeros((6, 6)))


def test_planner_never_steps_into_a_predicted_death_when_a_safe_move_exists():
    boards = _random_boards(40, seed=1)
    planner = PlannerAgent(OracleWorldModel(6, 6), depth=1)
    chosen = planner.act_batch(boards)
    _, _, events, _ = batched_successors(boards)
    deadly = np.isin(events, [int(e) for e in DEATH_EVENTS])
    has_safe = ~deadly.all(axis=1)
    assert has_safe.sum() > 30
    assert not deadly[np.arange(40), chosen][has_safe].any()


def test_planner_makes_one_sample_call_per_depth_level():
    oracle = OracleWorldModel(6, 6)
    planner = PlannerAgent(oracle, depth=3)
    planner.act_batch(_random_boards(8, seed=2))
    assert oracle.sample_calls == 1 + 3  # the root prior, then one call per level over all live nodes


class AllDeathModel(torch.nn.Module):
    """Predicts death for every action and prefers action 2: the prior must break the tie."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def sample(self, obs, action=None, generator=None, **kwargs):
        batch = obs.shape[0]
        logits = torch.tensor([[0.0, 0.5, 2.0, 0.1]]).repeat(batch, 1)
        return SimpleNamespace(next_board=torch.zeros_like(obs), action_logits=logits, action=logits.argmax(-1))


def test_planner_prior_breaks_ties_when_every_action_is_predicted_fatal():
    planner = PlannerAgent(AllDeathModel(), depth=2)
    assert planner.act_batch(_random_boards(4)).tolist() == [2, 2, 2, 2]


def _row_board() -> np.ndarray:
    board = np.full((4, 4), EMPTY, dtype=np.int8)
    board[0, 0], board[0, 1], board[0, 2] = HEAD_RIGHT, BODY_RIGHT, TAIL  # head (0,0), tail (0,2)
    board[3, 3] = FOOD
    return board


def test_bfs_distances_and_heuristic_on_a_hand_board():
    distance, has_head = bfs_from_head(_row_board()[None])
    assert has_head.tolist() == [True]
    assert distance[0, 0, 0] == 0 and distance[0, 3, 3] == 6 and distance[0, 0, 1] == -1
    assert distance[0, 0, 2] == 4  # the tail cell is reachable around the body: (1,0)(1,1)(1,2)(0,2)
    value = board_heuristic(_row_board()[None], food_weight=0.5, trap_penalty=-5.0)
    assert value[0] == pytest.approx(0.5 * (1 - 6 / 16))
    walled = _row_board()
    walled[1, :] = BODY_RIGHT  # not a legal board, but it cuts the head off from food and tail
    assert board_heuristic(walled[None], 0.5, -5.0)[0] == pytest.approx(-5.0)


def test_planner_with_a_perfect_model_outplays_random():
    oracle_planner = PlannerAgent(OracleWorldModel(6, 6, seed=1), depth=2)
    planned = play_games(oracle_planner, 6, 6, num_games=6, seed=10, max_steps=150, progress=False)
    random = play_games(RandomAgent(0), 6, 6, num_games=6, seed=10, max_steps=150, progress=False)
    assert planned["end_causes"]["wall"] == 0 and planned["end_causes"]["reverse"] == 0
    assert planned["mean_apples"] > random["mean_apples"] + 2


def test_skip_reverse_fills_the_neck_move_with_death_and_saves_samples():
    boards = _random_boards(10, seed=4)
    from snake_world_eqm.evaluation.agents import neck_directions

    necks = neck_directions(boards)
    _, _, events, _ = batched_successors(boards)
    assert (events[np.arange(10), necks] == 5).all()  # Event.REVERSE: the rules agree with the pointer
    asked_all = PlannerAgent(OracleWorldModel(6, 6), depth=1, skip_reverse=False)
    asked_three = PlannerAgent(OracleWorldModel(6, 6), depth=1, skip_reverse=True)
    assert asked_all.act_batch(boards).tolist() == asked_three.act_batch(boards).tolist()
    assert asked_all.field_calls == 10 + 40 and asked_three.field_calls == 10 + 30


class SuicidalPolicyOracle(OracleWorldModel):
    """A perfect what-if model whose own (free) action always reverses into the neck."""

    def sample(self, obs, action=None, **kwargs):
        from snake_world_eqm.evaluation.agents import neck_directions

        if action is None:
            action = torch.as_tensor(neck_directions(np.asarray(obs.cpu())))
            out = super().sample(obs, action=action, **kwargs)
            return SimpleNamespace(**{**vars(out), "action": action})
        return super().sample(obs, action=action, **kwargs)


def test_guarded_planner_overrides_a_fatal_policy_and_searches_only_there():
    boards = _random_boards(12, seed=6)
    guarded = PlannerAgent(SuicidalPolicyOracle(6, 6), depth=1, guard="trap")
    chosen = guarded.act_batch(boards)
    _, _, events, _ = batched_successors(boards)
    assert not np.isin(events[np.arange(12), chosen], [int(e) for e in DEATH_EVENTS]).any()
    assert guarded.searched_boards == 12  # every board was risky, so every board was searched
    trusting = PlannerAgent(OracleWorldModel(6, 6), depth=1, guard="trap")
    expert_moves = ExpertAgent().act_batch(boards)
    after_expert = batched_step(boards, expert_moves, 0)[0]
    risky = is_terminal(after_expert) | (board_heuristic(after_expert, 0.0, -1.0) < 0)
    chosen = trusting.act_batch(boards)
    assert trusting.searched_boards == risky.sum() < 12
    assert (chosen[~risky] == expert_moves[~risky]).all()  # a safe policy move is kept as is
