"""Reinforcement learning in the real game or inside the world model, through stable-baselines3 (the ``rl`` extra).

Only the plumbing is here; the learning algorithm is the RL library's own.

- `one_hot_boards` / `OneHotBoards`: the (H, W) cell codes as a flat float32 one-hot vector (12 per cell). An MLP
  policy reads a code as a magnitude (HEAD_LEFT = 6 is not "more" than FOOD = 1); one-hot removes that order.
- `SnakeGames`: ``num_envs`` games of one board size stepped together, either by the rules (``world="real"``,
  :func:`~snake_world_eqm.game.batched.batched_step`) or inside the model (``world="dream"``,
  :func:`~snake_world_eqm.simulator.core.dream_step`: **one** model call per step for all games). Same-step
  autoreset, the convention of stable-baselines3's VecEnv: a finished game's final board goes into its info
  (``terminal_observation``) and the returned board is already the next game's first one.
- `sb3_vec_env(games)`: `SnakeGames` as a ``stable_baselines3`` VecEnv (imported only here, on demand).
- `PolicyAgent`: a trained policy (anything with sb3's ``predict``) as an :class:`~snake_world_eqm.agents.base.Agent`,
  so the evaluation's real and dream play loops can run it.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces

from snake_world_eqm.agents.base import Agent, check_obs, model_device
from snake_world_eqm.game.batched import batched_step
from snake_world_eqm.game.encoding import HEAD_ALONE, NUM_CELL_CLASSES, encode_observation
from snake_world_eqm.game.rules import new_game
from snake_world_eqm.game.state import DEATH_EVENTS, EVENT_NAMES, NUM_ACTIONS, Event, check_board_size
from snake_world_eqm.simulator.core import FOOD_MODES, check_model_size, dream_step

RL_WORLDS = ("real", "dream")
# Why a game ended: the dream's END_REASONS ("death", "win", "illegal:<what>"), or a truncation.
TRUNCATIONS = ("stall", "cap")
_REAL_DEATHS = np.array([int(event) for event in DEATH_EVENTS])
_CODES = np.eye(NUM_CELL_CLASSES, dtype=np.float32)


def one_hot_boards(boards: np.ndarray) -> np.ndarray:
    """(..., H, W) cell codes -> (..., H * W * 12) float32, 1 at each cell's code."""
    boards = np.asarray(boards)
    if boards.ndim < 2:
        raise ValueError(f"boards must have shape (..., H, W), got {boards.shape}")
    codes = boards.astype(np.int64)
    if codes.size and (codes.min() < 0 or codes.max() >= NUM_CELL_CLASSES):
        raise ValueError(f"cell codes must lie in 0..{NUM_CELL_CLASSES - 1}")
    return _CODES[codes].reshape(*boards.shape[:-2], -1)


def one_hot_space(height: int, width: int) -> spaces.Box:
    return spaces.Box(0.0, 1.0, shape=(height * width * NUM_CELL_CLASSES,), dtype=np.float32)


class OneHotBoards(gym.ObservationWrapper):
    """A Snake env (``Snake-v0`` or ``SnakeDream-v0``) observed as a flat one-hot float32 vector."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        height, width = env.observation_space.shape
        self.observation_space = one_hot_space(height, width)

    def observation(self, observation):
        return one_hot_boards(observation)


class SnakeGames:
    """``num_envs`` Snake games stepped together, real or dreamed, with same-step autoreset.

    ``step(actions)`` returns ``(boards, rewards, dones, infos)``: the (N, H, W) boards after the step, where a
    finished game already shows its next game's first board; ``infos`` is a list of N dicts with ``event``
    (real: none / eat / wall / self / reverse / win; dream: none / eat / death / win / illegal), ``reason``
    ("" while the game goes on, else one of the dream's END_REASONS, or "stall" / "cap"), ``steps``, ``apples``
    and ``length``; a finished game's dict also holds ``terminal_board`` (its last board) and ``truncated``.

    Rewards are the game's (+1 apple or win, -1 death, 0 otherwise); an illegal dreamed board ends the game with
    reward 0. ``stall_limit`` truncates a game after that many steps without an apple (reason "stall"),
    ``max_steps`` after that many steps (reason "cap"). New games come from `new_game` with a generator seeded
    by ``seed`` (the real food is drawn from it too), the model's noise from a ``torch.Generator`` seeded apart,
    so a real and a dreamed `SnakeGames` with the same seed start from the same first boards.
    """

    def __init__(self, num_envs: int, height: int = 6, width: int = 6, world: str = "real", model=None,
                 seed: int | None = None, initial_length: int = 3, max_steps: int | None = None,
                 stall_limit: int | None = None, food: str = "decoder", init_scale: float = 0.0,
                 num_steps: int | None = None, food_temperature: float = 1.0, votes: int = 1) -> None:
        check_board_size(height, width)
        if isinstance(num_envs, bool) or not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        if world not in RL_WORLDS:
            raise ValueError(f"world must be one of {RL_WORLDS}, got {world!r}")
        if world == "dream":
            if model is None:
                raise ValueError('world="dream" needs model=<a world model>')
            check_model_size(model, height, width)
            if hasattr(model, "eval"):
                model.eval()
        if food not in FOOD_MODES:
            raise ValueError(f"food must be one of {FOOD_MODES}, got {food!r}")
        for name, value in (("max_steps", max_steps), ("stall_limit", stall_limit)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be positive or None, got {value}")
        self.num_envs, self.height, self.width, self.world, self.model = int(num_envs), height, width, world, model
        self.initial_length, self.max_steps, self.stall_limit = initial_length, max_steps, stall_limit
        self.food, self.init_scale, self.num_steps = food, float(init_scale), num_steps
        self.food_temperature, self.votes = float(food_temperature), int(votes)
        self.boards = np.zeros((self.num_envs, height, width), dtype=np.int8)
        self.steps = np.zeros(self.num_envs, dtype=np.int64)
        self.apples = np.zeros(self.num_envs, dtype=np.int64)
        self.since_apple = np.zeros(self.num_envs, dtype=np.int64)
        self.returns = np.zeros(self.num_envs, dtype=np.float64)
        self.seed(seed)

    def seed(self, seed: int | None = None) -> None:
        """Reseed and start every game anew."""
        games, noise = np.random.SeedSequence(seed).spawn(2)
        self.rng = np.random.default_rng(games)
        self.generator = torch.Generator(device=model_device(self.model)) if self.world == "dream" else None
        if self.generator is not None:
            self.generator.manual_seed(int(noise.generate_state(1, np.uint64)[0] >> np.uint64(2)))
        self.new_games(np.arange(self.num_envs))

    def new_games(self, rows: np.ndarray) -> None:
        for row in np.asarray(rows, dtype=np.int64).reshape(-1):
            self.boards[row] = encode_observation(new_game(self.height, self.width, self.rng, self.initial_length))
        self.steps[rows] = self.apples[rows] = self.since_apple[rows] = 0
        self.returns[rows] = 0.0

    def step(self, actions) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(f"actions must lie in 0..{NUM_ACTIONS - 1}")
        if self.world == "real":
            after, reward, events, terminated = batched_step(self.boards, actions, self.rng)
            reward = np.asarray(reward, dtype=np.float32)
            event = np.array([EVENT_NAMES[int(e)] for e in events], dtype=object)
            reason = np.full(self.num_envs, "", dtype=object)
            reason[np.isin(events, _REAL_DEATHS)] = "death"
            reason[events == int(Event.WIN)] = "win"
            ate = reward > 0
        else:
            result = dream_step(self.model, self.boards, actions, self.generator, self.init_scale, self.food,
                                self.num_steps, self.food_temperature, self.votes)
            after, reward, terminated = result.boards, result.reward, result.terminated
            event, reason = result.event, result.reason.copy()
            ate = (event == "eat") | (event == "win")
        self.steps += 1
        self.apples += ate
        self.since_apple = np.where(ate, 0, self.since_apple + 1)
        self.returns += reward
        truncated = np.zeros(self.num_envs, dtype=bool)
        if self.stall_limit is not None:
            truncated |= ~terminated & (self.since_apple >= self.stall_limit)
            reason[truncated] = "stall"
        if self.max_steps is not None:
            capped = ~terminated & ~truncated & (self.steps >= self.max_steps)
            reason[capped] = "cap"
            truncated |= capped
        lengths = (after >= HEAD_ALONE).sum(axis=(1, 2))
        infos = [{"event": str(event[i]), "reason": str(reason[i]), "steps": int(self.steps[i]),
                  "apples": int(self.apples[i]), "length": int(lengths[i])} for i in range(self.num_envs)]
        dones = terminated | truncated
        for row in np.flatnonzero(dones):
            infos[row].update(terminal_board=after[row].copy(), truncated=bool(truncated[row]),
                              episode_return=float(self.returns[row]))
        self.boards = np.array(after, dtype=np.int8, copy=True)
        self.new_games(np.flatnonzero(dones))
        return self.boards.copy(), np.asarray(reward, dtype=np.float32), dones, infos


@cache
def _vec_env_class():
    try:
        from stable_baselines3.common.vec_env import VecEnv
    except ImportError as error:  # the optional extra
        raise ImportError("sb3_vec_env needs stable-baselines3: pip install 'snake-world-eqm[rl]'") from error

    class SnakeVecEnv(VecEnv):
        """`SnakeGames` as a stable-baselines3 VecEnv: one-hot observations; a finished game's info holds
        ``terminal_observation`` (one-hot) and ``TimeLimit.truncated`` (a stall or the cap), as sb3 expects."""

        render_mode = None

        def __init__(self, games: SnakeGames) -> None:
            self.games = games
            super().__init__(games.num_envs, one_hot_space(games.height, games.width),
                             spaces.Discrete(NUM_ACTIONS))
            self._actions: np.ndarray | None = None

        def reset(self):
            if self._seeds[0] is not None:  # set by VecEnv.seed (the algorithm's seed)
                self.games.seed(self._seeds[0])
            else:
                self.games.new_games(np.arange(self.num_envs))
            self._reset_seeds()
            self._reset_options()
            self.reset_infos = [{} for _ in range(self.num_envs)]
            return one_hot_boards(self.games.boards)

        def step_async(self, actions: np.ndarray) -> None:
            self._actions = np.asarray(actions)

        def step_wait(self):
            boards, rewards, dones, infos = self.games.step(self._actions)
            for info in infos:
                if "terminal_board" in info:
                    info["terminal_observation"] = one_hot_boards(info["terminal_board"])
                    info["TimeLimit.truncated"] = info["truncated"]
            return one_hot_boards(boards), rewards, dones, infos

        def close(self) -> None:
            pass

        def get_attr(self, attr_name: str, indices=None) -> list[Any]:
            return [getattr(self, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name: str, value: Any, indices=None) -> None:
            setattr(self, attr_name, value)

        def env_method(self, method_name: str, *method_args, indices=None, **method_kwargs) -> list[Any]:
            method = getattr(self.games, method_name)
            return [method(*method_args, **method_kwargs) for _ in self._get_indices(indices)]

        def env_is_wrapped(self, wrapper_class, indices=None) -> list[bool]:
            return [False] * len(self._get_indices(indices))

    return SnakeVecEnv


def sb3_vec_env(games: SnakeGames):
    """`games` as a ``stable_baselines3.common.vec_env.VecEnv`` (needs the ``rl`` extra)."""
    return _vec_env_class()(games)


class PolicyAgent(Agent):
    """A policy trained on one-hot boards (sb3's ``predict(obs, deterministic=...)``) as an Agent."""

    name = "policy"

    def __init__(self, policy, deterministic: bool = True) -> None:
        self.policy = policy
        self.deterministic = deterministic

    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        actions, _ = self.policy.predict(one_hot_boards(check_obs(obs)), deterministic=self.deterministic)
        return np.asarray(actions, dtype=np.int64).reshape(-1)


__all__ = ["RL_WORLDS", "TRUNCATIONS", "OneHotBoards", "PolicyAgent", "SnakeGames", "one_hot_boards",
           "one_hot_space", "sb3_vec_env"]
