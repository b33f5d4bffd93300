"""The dream env (issue 36, item 1): Gymnasium's checker passes, 1,000 dream steps on a tiny random model run
without an exception (its predictions are illegal boards, which end episodes with their own reason), a stand-in
model that corrupts some predictions covers every end reason, and the vector env steps all games in one call."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import snake_world_eqm  # noqa: F401  (registers the ids)
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import DREAM_ENV_ID, FOOD, HEAD_UP, encode_observation, new_game
from snake_world_eqm.simulator import (
    END_REASONS,
    DreamSnakeEnv,
    DreamVectorEnv,
    draw_food_from_decoder,
    dream_step,
    illegal_reasons,
)


class CorruptingOracle(OracleWorldModel):
    """The true successor, but every few calls one of four corruptions: a second head, no food, two foods,
    a broken body. Covers every illegal reason with legal play (eat, death) in between."""

    def __init__(self, height, width, seed=0):
        super().__init__(height, width, seed)
        self.corrupt_rng = np.random.default_rng(seed + 1)

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        boards = out.next_board.numpy().copy()
        for board in boards:
            kind = self.corrupt_rng.integers(12)
            empty = np.argwhere(board == 0)
            if kind == 0 and len(empty):
                board[tuple(empty[0])] = HEAD_UP
            elif kind == 1:
                board[board == FOOD] = 0
            elif kind == 2 and len(empty):
                board[tuple(empty[0])] = FOOD
            elif kind == 3 and (board >= 7).sum() > 1:
                board[tuple(np.argwhere(board >= 7)[0])] = 0
        return SimpleNamespace(**{**vars(out), "next_board": torch.as_tensor(boards)})


def test_registered_and_checked_by_gymnasium(tiny):
    env = gym.make(DREAM_ENV_ID, model=tiny, height=6, width=6)
    real = gym.make("snake_world_eqm/Snake-v0", height=6, width=6)
    assert env.observation_space == real.observation_space and env.action_space == real.action_space
    check_env(env.unwrapped, skip_render_check=True)
    check_env(DreamSnakeEnv(model=OracleWorldModel(6, 6), height=6, width=6, render_mode="ansi"))


def test_thousand_steps_on_a_tiny_random_model(tiny):
    env = gym.make(DREAM_ENV_ID, model=tiny, height=6, width=6, max_steps=50)
    env.reset(seed=0)
    reasons = Counter()
    for _ in range(1000):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["reason"] in END_REASONS + ("",)
        if terminated or truncated:
            reasons[info["reason"] or "truncated"] += 1
            assert terminated == (info["reason"] != "")
            env.reset()
    assert sum(count for reason, count in reasons.items() if reason.startswith("illegal")) > 0


def test_every_end_reason_from_a_corrupting_model():
    # food="model": the stand-in's own (corrupted) food, which the default "decoder" food would redraw
    env = DreamSnakeEnv(model=CorruptingOracle(5, 5), height=5, width=5, max_steps=200, food="model")
    env.reset(seed=3)
    reasons, events = Counter(), Counter()
    for _ in range(1000):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        events[info["event"]] += 1
        assert reward == {"eat": 1.0, "win": 1.0, "death": -1.0}.get(info["event"], 0.0)
        if terminated or truncated:
            reasons[info["reason"]] += 1
            env.reset()
    assert {"death", "illegal:heads", "illegal:no_food", "illegal:foods", "illegal:body"} <= set(reasons)
    assert events["eat"] > 0


def test_oracle_dream_is_the_real_game():
    """With a perfect model, the dream's boards are the rules' boards for the same actions."""
    from snake_world_eqm.game.batched import batched_step

    board = encode_observation(new_game(6, 6, rng=1))[None]
    rng = np.random.default_rng(0)
    for action in [1, 1, 2, 2, 3, 3, 0]:
        step = dream_step(OracleWorldModel(6, 6), board, np.array([action]))
        real = batched_step(board, np.array([action]), rng)[0]
        assert np.array_equal(step.boards != FOOD, real != FOOD) or step.event[0] == "eat"  # food: drawn
        if step.terminated[0]:
            break
        board = step.boards


def test_vector_env_next_step_autoreset(tiny):
    envs = gym.make_vec(DREAM_ENV_ID, num_envs=3, vectorization_mode="vector_entry_point", model=tiny, height=6,
                        width=6)
    assert isinstance(envs.unwrapped, DreamVectorEnv)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (3, 6, 6) and obs.dtype == np.int8
    _, _, terminated, _, infos = envs.step(np.zeros(3, dtype=np.int64))
    assert terminated.all() and all(reason.startswith("illegal") for reason in infos["reason"])  # a random model
    obs, reward, terminated, _, infos = envs.step(np.zeros(3, dtype=np.int64))  # the autoreset step
    assert not terminated.any() and (reward == 0).all() and (infos["steps"] == 0).all()
    assert np.array_equal(illegal_reasons(obs), np.array(["", "", ""], dtype=object))


def test_decoder_food_draw_puts_one_food_on_an_empty_cell():
    board = encode_observation(new_game(5, 5, rng=0))
    boards = np.stack([board, board])
    boards[0][boards[0] == FOOD] = 0  # a draw without food
    logits = torch.zeros(2, 5, 5, 12)
    logits[..., FOOD] = torch.linspace(-3, 3, 25).reshape(5, 5)
    drawn = draw_food_from_decoder(logits, boards, np.array([0, 1]), torch.Generator().manual_seed(0))
    for row in drawn:
        assert (row == FOOD).sum() == 1 and illegal_reasons(row[None])[0] == ""


def test_an_eating_dream_step_draws_its_food_from_the_models_food_weights():
    """With food="decoder" (the dream env's default), where the snake grew the new food follows `food_log_weights`
    (the food head's belief), not the stand-in's own draw."""
    from tests.dream_helpers import ExactModel

    class FoodHeadModel(ExactModel):
        target = None

        def food_log_weights(self, latent, boards):
            weights = torch.full((len(boards), 5, 5), -30.0)
            weights[:, self.target[0], self.target[1]] = 0.0
            return weights

    board = encode_observation(new_game(5, 5, rng=0))
    food = tuple(np.argwhere(board == FOOD)[0])
    model = FoodHeadModel(5, 5)
    # walk toward the food with the rules until one step eats it
    for _ in range(20):
        action = _toward(board, food)
        free = np.argwhere(board == 0)
        model.target = tuple(free[-1])
        step = dream_step(model, board[None], np.array([action]), torch.Generator().manual_seed(0), food="decoder")
        if step.event[0] == "eat":
            assert tuple(np.argwhere(step.boards[0] == FOOD)[0]) == model.target
            return
        board = step.boards[0]
    raise AssertionError("no apple eaten in 20 moves toward it")


def _toward(board, target) -> int:
    from snake_world_eqm.game import HEAD_ALONE, HEAD_LEFT

    row, col = (int(v) for v in np.argwhere((board >= HEAD_ALONE) & (board <= HEAD_LEFT))[0])
    if target[0] != row:
        return 0 if target[0] < row else 2
    return 1 if target[1] > col else 3


def test_bad_options_are_refused(tiny):
    with pytest.raises(ValueError, match="food"):
        DreamSnakeEnv(model=tiny, height=6, width=6, food="guess")
    with pytest.raises(ValueError, match="model"):
        DreamSnakeEnv(height=6, width=6)
    with pytest.raises(ValueError, match="fixed"):
        DreamSnakeEnv(model=tiny, height=8, width=8)
    env = DreamSnakeEnv(model=tiny, height=6, width=6)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(7)


class FlakyGrowthModel(OracleWorldModel):
    """The true successor, except that one draw in three is replaced by the terminal board."""

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        boards = out.next_board.numpy().copy()
        boards[::3] = 0
        return SimpleNamespace(**{**vars(out), "next_board": torch.as_tensor(boards)})


def test_votes_keep_the_majority_snake():
    board = encode_observation(new_game(6, 6, rng=2))
    boards = np.repeat(board[None], 4, 0)
    actions = np.array([1, 1, 1, 1])
    single = dream_step(FlakyGrowthModel(6, 6), boards, actions)
    assert single.event[0] == "death"  # draw 0 of every batch is the corrupted one
    voted = dream_step(FlakyGrowthModel(6, 6), boards, actions, votes=3)
    assert (voted.event != "death").all() and voted.boards.shape == boards.shape
