"""A Gymnasium environment over the package's rules, registered as ``snake_world_eqm/Snake-v0``.

Observations are the encoded (H, W) int8 boards of :mod:`snake_world_eqm.game.encoding`; a
death gives the all-EMPTY terminal board, exactly as in the dataset.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from snake_world_eqm.game.encoding import NUM_CELL_CLASSES, encode_observation
from snake_world_eqm.game.registration import ENV_ID, register_env  # noqa: F401  (re-exported)
from snake_world_eqm.game.render import render_for_mode
from snake_world_eqm.game.rules import new_game, step
from snake_world_eqm.game.state import EVENT_NAMES, NUM_ACTIONS, SnakeState, check_board_size


class SnakeEnv(gym.Env):
    """Snake with absolute actions (0 up, 1 right, 2 down, 3 left).

    Rewards: +1 for eating (and winning), -1 for dying, 0 otherwise. ``max_steps`` (optional)
    truncates an episode. ``info`` carries the event name, the snake length and the state.
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 8}

    def __init__(
        self,
        height: int = 10,
        width: int = 10,
        initial_length: int = 3,
        max_steps: int | None = None,
        render_mode: str | None = None,
        cell_size: int = 16,
    ) -> None:
        check_board_size(height, width)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if max_steps is not None and max_steps < 1:
            raise ValueError(f"max_steps must be positive or None, got {max_steps}")
        self.height, self.width, self.initial_length = height, width, initial_length
        self.max_steps, self.render_mode, self.cell_size = max_steps, render_mode, cell_size
        self.observation_space = spaces.Box(0, NUM_CELL_CLASSES - 1, shape=(height, width), dtype=np.int8)
        self.action_space = spaces.Discrete(NUM_ACTIONS)
        self.state: SnakeState | None = None
        self._board = np.zeros((height, width), dtype=np.int8)
        self._steps = 0
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.state = new_game(self.height, self.width, self.np_random, self.initial_length)
        self._board = encode_observation(self.state)
        self._steps, self._done = 0, False
        return self._board.copy(), self._info("none")

    def step(self, action):
        if self._done or self.state is None:
            raise RuntimeError("the episode is over; call reset() before step()")
        if isinstance(action, np.ndarray) and action.shape == ():
            action = action.item()  # a 0-d array from a vectorised caller
        result = step(self.state, action, self.np_random)  # checks the action: 2.5 or True is refused
        self.state, self._board = result.state, result.observation
        self._steps += 1
        truncated = not result.terminated and self.max_steps is not None and self._steps >= self.max_steps
        self._done = result.terminated or truncated
        return self._board.copy(), result.reward, result.terminated, truncated, self._info(EVENT_NAMES[result.event])

    def _info(self, event: str) -> dict[str, Any]:
        length = 0 if self.state is None else self.state.length
        return {"event": event, "length": length, "steps": self._steps}

    def render(self):
        return render_for_mode(self._board, self.render_mode, self.cell_size)
