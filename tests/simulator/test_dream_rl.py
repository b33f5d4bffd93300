"""RL plumbing (issue 36, item 4): one-hot observations, `SnakeGames` (real or dreamed, one model call per step for
all games, same-step autoreset with the end reason in the infos), the stable-baselines3 VecEnv adapter and a tiny
PPO run through it (only where the `rl` extra is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import EMPTY, NUM_CELL_CLASSES
from snake_world_eqm.game.env import SnakeEnv
from snake_world_eqm.game.expert import expert_actions
from snake_world_eqm.simulator import END_REASONS, DreamSnakeEnv, illegal_reasons
from snake_world_eqm.simulator.rl import OneHotBoards, PolicyAgent, SnakeGames, one_hot_boards, sb3_vec_env
from tests.simulator.conftest import TINY


def counting(model):
    """Count the model's sample() calls (a stand-in's own counter, or a wrapper on the real model)."""
    calls = {"n": 0}
    original = model.sample

    def sample(*args, **kwargs):
        calls["n"] += 1
        return original(*args, **kwargs)

    model.sample = sample
    return calls


def start_board(board) -> bool:
    return illegal_reasons(board[None])[0] == "" and (board >= 2).sum() == 3  # a legal three-cell start


def test_one_hot_wrapper_spaces_and_values():
    env = OneHotBoards(SnakeEnv(6, 5))
    assert env.observation_space.shape == (6 * 5 * NUM_CELL_CLASSES,) and env.observation_space.dtype == np.float32
    obs, _ = env.reset(seed=3)
    raw = env.unwrapped._board
    assert env.observation_space.contains(obs)
    cells = obs.reshape(6, 5, NUM_CELL_CLASSES)
    assert (cells.sum(axis=-1) == 1).all() and np.array_equal(cells.argmax(axis=-1), raw)
    obs, *_ = env.step(int(expert_actions(raw[None])[0]))
    assert np.array_equal(obs.reshape(6, 5, -1).argmax(-1), env.unwrapped._board)
    dream = OneHotBoards(DreamSnakeEnv(model=OracleWorldModel(6, 6), height=6, width=6))
    assert dream.observation_space.contains(dream.reset(seed=0)[0])
    batch = one_hot_boards(np.stack([raw, np.zeros_like(raw)]))
    assert batch.shape == (2, 6 * 5 * NUM_CELL_CLASSES) and (batch[1].reshape(30, -1)[:, EMPTY] == 1).all()
    with pytest.raises(ValueError, match="cell codes"):
        one_hot_boards(np.full((2, 2), NUM_CELL_CLASSES))


def test_dream_games_take_one_model_call_per_step_and_autoreset(tiny):
    games = SnakeGames(6, 6, 6, world="dream", model=tiny, seed=0, food="decoder")
    calls = counting(tiny)
    rng = np.random.default_rng(0)
    for step in range(1, 6):
        boards, reward, dones, infos = games.step(rng.integers(0, 4, size=6))
        assert calls["n"] == step  # six games, one model call
        # an untrained model's predictions are illegal boards: every game ends, with its reason, and restarts
        assert dones.all() and (reward == 0).all()
        assert all(info["reason"].startswith("illegal:") and info["reason"] in END_REASONS for info in infos)
        assert all(illegal_reasons(info["terminal_board"][None])[0] == info["reason"] for info in infos)
        assert all(start_board(board) for board in boards) and (games.steps == 0).all()


def test_oracle_dream_games_play_the_rules_and_restart_dead_games():
    oracle = OracleWorldModel(6, 6)
    games = SnakeGames(4, 6, 6, world="dream", model=oracle, seed=1, food="model")
    real = SnakeGames(4, 6, 6, world="real", seed=1)
    assert np.array_equal(games.boards, real.boards)  # same seed, same starts
    ended = []
    for step in range(1, 9):
        _, reward, dones, infos = games.step(np.zeros(4, dtype=np.int64))  # straight up: into the wall
        assert oracle.sample_calls == step
        for row in np.flatnonzero(dones):
            info = infos[row]
            assert info["reason"] == "death" and reward[row] == -1 and not info["truncated"]
            assert (info["terminal_board"] == EMPTY).all() and start_board(games.boards[row])
            ended.append(row)
    assert sorted(set(ended)) == [0, 1, 2, 3]  # every game ran into the top wall and was restarted


def test_real_games_end_reasons_truncations_and_events():
    games = SnakeGames(3, 6, 6, world="real", seed=2, max_steps=3, stall_limit=2)
    steps, since, seen = np.zeros(3), np.zeros(3), set()
    for _ in range(8):
        _, reward, dones, infos = games.step(expert_actions(games.boards).astype(np.int64))  # never dies here
        steps, since = steps + 1, np.where(reward > 0, 0, since + 1)
        for row, info in enumerate(infos):
            assert info["event"] in ("none", "eat") and reward[row] == (info["event"] == "eat")
            expected = "stall" if since[row] >= 2 else "cap" if steps[row] >= 3 else ""
            assert info["reason"] == expected and dones[row] == (expected != "")
            if dones[row]:
                assert info["truncated"] and start_board(games.boards[row]) and games.steps[row] == 0
                steps[row] = since[row] = 0
                seen.add(expected)
    assert "stall" in seen
    wall = SnakeGames(1, 6, 6, world="real", seed=0)
    for _ in range(6):
        _, reward, dones, infos = wall.step([0])  # straight up
        if dones[0]:
            break
    assert dones[0] and reward[0] == -1 and infos[0]["reason"] == "death"
    assert infos[0]["event"] in ("wall", "reverse") and (infos[0]["terminal_board"] == EMPTY).all()


def test_bad_options_are_refused(tiny):
    with pytest.raises(ValueError, match="world"):
        SnakeGames(2, world="imagined")
    with pytest.raises(ValueError, match="needs model"):
        SnakeGames(2, world="dream")
    with pytest.raises(ValueError, match="fixed to 6x6"):
        SnakeGames(2, 8, 8, world="dream", model=SnakeWorldEqM(SnakeWorldEqMConfig(**TINY, fixed_board_size=True)))
    with pytest.raises(ValueError, match="actions"):
        SnakeGames(2, world="real").step([0, 4])


def test_sb3_adapter_reports_terminal_observations_and_seeds():
    pytest.importorskip("stable_baselines3")
    from stable_baselines3.common.vec_env import VecEnv

    env = sb3_vec_env(SnakeGames(3, 6, 6, world="real", seed=0))
    assert isinstance(env, VecEnv) and env.observation_space.shape == (6 * 6 * NUM_CELL_CLASSES,)
    env.seed(7)
    obs = env.reset()
    assert np.array_equal(obs, one_hot_boards(SnakeGames(3, 6, 6, world="real", seed=7).boards))
    for _ in range(6):
        env.step_async(np.zeros(3, dtype=np.int64))
        obs, rewards, dones, infos = env.step_wait()
        assert obs.shape == (3, 6 * 6 * NUM_CELL_CLASSES) and env.observation_space.contains(obs[0])
        for row in np.flatnonzero(dones):
            terminal = infos[row]["terminal_observation"].reshape(6, 6, -1)
            assert (terminal[..., EMPTY] == 1).all() and infos[row]["TimeLimit.truncated"] is False
            assert start_board(obs[row].reshape(6, 6, -1).argmax(-1))
    assert env.env_is_wrapped(object) == [False] * 3 and env.get_attr("num_envs", [0, 2]) == [3, 3]


def test_tiny_ppo_learns_through_the_dream_adapter(tiny):
    pytest.importorskip("stable_baselines3")
    from stable_baselines3 import PPO

    games = SnakeGames(4, 6, 6, world="dream", model=tiny, seed=0, food="decoder")
    calls = counting(tiny)
    ppo = PPO("MlpPolicy", sb3_vec_env(games), n_steps=64, batch_size=64, n_epochs=1, seed=0, device="cpu")
    ppo.learn(256)
    assert ppo.num_timesteps == 256 and calls["n"] == 256 // 4  # one model call per step of all four games
    actions = PolicyAgent(ppo).act_batch(games.boards)
    assert actions.shape == (4,) and actions.dtype == np.int64 and ((0 <= actions) & (actions < 4)).all()
