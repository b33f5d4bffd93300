"""Gymnasium envs driven by the world model: ``snake_world_eqm/SnakeDream-v0`` and a batched vector env.

Same observation and action spaces as ``snake_world_eqm/Snake-v0``. Only the first board of an episode
comes from the rules (`new_game`, seeded by the env's ``np_random``); every later board is the model's
held-action sample (see :func:`~snake_world_eqm.simulator.core.dream_step`), and the model's noise is a
``torch.Generator`` seeded from ``np_random`` at each reset, so a seeded episode replays exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv

from snake_world_eqm.agents.base import model_device
from snake_world_eqm.game.encoding import NUM_CELL_CLASSES, encode_observation
from snake_world_eqm.game.render import render_for_mode
from snake_world_eqm.game.rules import new_game
from snake_world_eqm.game.state import NUM_ACTIONS, check_board_size
from snake_world_eqm.pretrained import load_model
from snake_world_eqm.simulator.core import FOOD_MODES, check_model_size, dream_step


def _resolve_model(model):
    if model is None:
        raise ValueError("the dream env needs model=<SnakeWorldEqM, or a checkpoint folder / repo id>")
    if isinstance(model, (str, Path)):
        model = load_model(model)
    if hasattr(model, "eval"):
        model.eval()
    return model


def _check_options(init_scale: float, food: str, max_steps: int | None, food_temperature: float = 1.0) -> None:
    if not food_temperature > 0:
        raise ValueError(f"food_temperature must be > 0, got {food_temperature}")
    if food not in FOOD_MODES:
        raise ValueError(f"food must be one of {FOOD_MODES}, got {food!r}")
    if not init_scale >= 0:
        raise ValueError(f"init_scale must be >= 0, got {init_scale}")
    if max_steps is not None and max_steps < 1:
        raise ValueError(f"max_steps must be positive or None, got {max_steps}")


def _torch_generator(model, np_random: np.random.Generator) -> torch.Generator:
    generator = torch.Generator(device=model_device(model))
    generator.manual_seed(int(np_random.integers(2**62)))
    return generator


class DreamSnakeEnv(gym.Env):
    """Snake played inside the world model (0 up, 1 right, 2 down, 3 left).

    ``info``: ``event`` (none / eat / death / win / illegal), ``reason`` (why the episode ended, "" while it
    goes on: death, win, illegal:heads|no_food|foods|body), ``length``, ``steps``, ``legal``.
    ``init_scale`` is the noise scale of each draw (0, the default: the deterministic origin start; 1: EqM's
    N(0, I)); ``food``: "decoder" (the default: new food drawn from the decoder's probabilities, flattened by
    ``food_temperature``; see :mod:`snake_world_eqm.simulator.core`) or "model" (the decoder's argmax);
    ``votes`` > 1 draws that many successors per step and keeps the majority snake (``voted_sample``).
    The defaults are the measured best (docs/results/simulator.md): the snake's move is deterministic, and the
    origin start keeps it exact over whole games far more often than noise draws do; the one random part, the
    new food, is drawn from the decoder, since the descent's latent does not name it.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 8}

    def __init__(self, model=None, height: int = 10, width: int = 10, initial_length: int = 3,
                 max_steps: int | None = None, init_scale: float = 0.0, food: str = "decoder",
                 num_steps: int | None = None, food_temperature: float = 1.0, votes: int = 1,
                 render_mode: str | None = None, cell_size: int = 16) -> None:
        check_board_size(height, width)
        _check_options(init_scale, food, max_steps, food_temperature)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.model = _resolve_model(model)
        check_model_size(self.model, height, width)
        self.height, self.width, self.initial_length = height, width, initial_length
        self.max_steps, self.init_scale, self.food, self.num_steps = max_steps, float(init_scale), food, num_steps
        self.food_temperature, self.votes = float(food_temperature), int(votes)
        if self.votes < 1:
            raise ValueError(f"votes must be >= 1, got {votes}")
        self.render_mode, self.cell_size = render_mode, cell_size
        self.observation_space = spaces.Box(0, NUM_CELL_CLASSES - 1, shape=(height, width), dtype=np.int8)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self._board = np.zeros((height, width), dtype=np.int8)
        self._generator: torch.Generator | None = None
        self._steps, self._length, self._done = 0, 0, True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        state = new_game(self.height, self.width, self.np_random, self.initial_length)
        self._board = encode_observation(state)
        self._generator = _torch_generator(self.model, self.np_random)
        self._steps, self._length, self._done = 0, state.length, False
        return self._board.copy(), self._info("none", "")

    def step(self, action):
        if self._done:
            raise RuntimeError("the episode is over; call reset() before step()")
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()
        if isinstance(action, bool) or not isinstance(action, (int, np.integer)) or not 0 <= action < NUM_ACTIONS:
            raise ValueError(f"action must be an int in 0..{NUM_ACTIONS - 1}, got {action!r}")
        result = dream_step(self.model, self._board[None], np.array([int(action)]), self._generator,
                            self.init_scale, self.food, self.num_steps, self.food_temperature, self.votes)
        self._board = result.boards[0]
        self._steps += 1
        self._length = int(result.length[0])
        terminated = bool(result.terminated[0])
        truncated = not terminated and self.max_steps is not None and self._steps >= self.max_steps
        self._done = terminated or truncated
        info = self._info(str(result.event[0]), str(result.reason[0]))
        return self._board.copy(), float(result.reward[0]), terminated, truncated, info

    def _info(self, event: str, reason: str) -> dict[str, Any]:
        return {"event": event, "reason": reason, "length": self._length, "steps": self._steps,
                "legal": not reason.startswith("illegal")}

    def render(self):
        return render_for_mode(self._board, self.render_mode, self.cell_size)


class DreamVectorEnv(VectorEnv):
    """`num_envs` dream games stepped by one batched model call; next-step autoreset (Gymnasium's default):
    the step after a sub-env ends resets it (its action is ignored, reward 0) and returns its new first board.

    ``infos`` holds arrays ``event``, ``reason``, ``length``, ``steps`` (one entry per sub-env).
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(self, num_envs: int, model=None, height: int = 10, width: int = 10, initial_length: int = 3,
                 max_steps: int | None = None, init_scale: float = 0.0, food: str = "decoder",
                 num_steps: int | None = None, food_temperature: float = 1.0, votes: int = 1) -> None:
        check_board_size(height, width)
        _check_options(init_scale, food, max_steps, food_temperature)
        if num_envs < 1:
            raise ValueError(f"num_envs must be positive, got {num_envs}")
        self.model = _resolve_model(model)
        check_model_size(self.model, height, width)
        self.num_envs, self.height, self.width, self.initial_length = num_envs, height, width, initial_length
        self.max_steps, self.init_scale, self.food, self.num_steps = max_steps, float(init_scale), food, num_steps
        self.food_temperature, self.votes = float(food_temperature), int(votes)
        if self.votes < 1:
            raise ValueError(f"votes must be >= 1, got {votes}")
        self.single_observation_space = spaces.Box(0, NUM_CELL_CLASSES - 1, shape=(height, width), dtype=np.int8)
        self.single_action_space = spaces.Discrete(NUM_ACTIONS)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self.boards = np.zeros((num_envs, height, width), dtype=np.int8)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.lengths = np.zeros(num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(num_envs, dtype=bool)
        self._generator: torch.Generator | None = None

    def _new_boards(self, rows: np.ndarray) -> None:
        for row in rows:
            state = new_game(self.height, self.width, self.np_random, self.initial_length)
            self.boards[row] = encode_observation(state)
            self.lengths[row] = state.length
        self.steps[rows] = 0
        self._needs_reset[rows] = False

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._generator = _torch_generator(self.model, self.np_random)
        self._new_boards(np.arange(self.num_envs))
        empty = np.full(self.num_envs, "", dtype=object)
        return self.boards.copy(), {"event": np.full(self.num_envs, "none", dtype=object), "reason": empty,
                                    "length": self.lengths.copy(), "steps": self.steps.copy()}

    def step(self, actions):
        if self._generator is None:
            raise RuntimeError("call reset() before step()")
        actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs)
        if actions.min() < 0 or actions.max() >= NUM_ACTIONS:
            raise ValueError(f"actions must lie in 0..{NUM_ACTIONS - 1}")
        reward = np.zeros(self.num_envs, dtype=np.float32)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        event = np.full(self.num_envs, "none", dtype=object)
        reason = np.full(self.num_envs, "", dtype=object)
        resetting = np.flatnonzero(self._needs_reset)
        live = np.flatnonzero(~self._needs_reset)
        self._new_boards(resetting)
        if live.size:
            result = dream_step(self.model, self.boards[live], actions[live], self._generator, self.init_scale,
                                self.food, self.num_steps, self.food_temperature, self.votes)
            self.boards[live] = result.boards
            self.steps[live] += 1
            self.lengths[live] = result.length
            reward[live], terminated[live] = result.reward, result.terminated
            event[live], reason[live] = result.event, result.reason
            if self.max_steps is not None:
                truncated[live] = ~terminated[live] & (self.steps[live] >= self.max_steps)
        self._needs_reset = terminated | truncated
        infos = {"event": event, "reason": reason, "length": self.lengths.copy(), "steps": self.steps.copy()}
        return self.boards.copy(), reward, terminated, truncated, infos
