"""The Gymnasium env and the renderers."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import snake_world_eqm.game as game
from snake_world_eqm.game import (
    FOOD,
    SnakeState,
    encode_observation,
    render_ansi,
    render_rgb,
    terminal_observation,
)
from snake_world_eqm.game.env import ENV_ID, SnakeEnv
from snake_world_eqm.game.render import FOOD_COLOUR


def test_env_is_registered_on_import_and_passes_the_checker():
    assert game.ENV_ID == ENV_ID == "snake_world_eqm/Snake-v0"
    env = gym.make(ENV_ID, height=6, width=7)
    check_env(env.unwrapped, skip_render_check=False)
    assert env.observation_space.shape == (6, 7)


def test_reset_is_seeded_and_observations_are_boards():
    env = SnakeEnv(8, 8)
    first, info = env.reset(seed=5)
    again, _ = env.reset(seed=5)
    assert np.array_equal(first, again) and info["length"] == 3
    assert first.dtype == np.int8 and env.observation_space.contains(first)
    game.validate_observation(first)


def test_death_gives_terminal_board_and_negative_reward():
    env = SnakeEnv(5, 5)
    env.reset(seed=0)
    env.state = SnakeState(5, 5, ((0, 0), (1, 0), (2, 0)), (4, 4))
    obs, reward, terminated, truncated, info = env.step(0)  # up, into the wall
    assert terminated and not truncated and reward == -1.0 and info["event"] == "wall"
    assert np.array_equal(obs, terminal_observation(5, 5))
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)


def test_truncation_after_max_steps():
    env = SnakeEnv(10, 10, max_steps=2)
    env.reset(seed=0)
    env.state = SnakeState(10, 10, ((5, 5), (5, 4), (5, 3)), (0, 0))
    env.step(1)
    _, _, terminated, truncated, _ = env.step(1)
    assert truncated and not terminated


def test_bad_arguments():
    with pytest.raises(ValueError, match="render_mode"):
        SnakeEnv(render_mode="human")
    with pytest.raises(ValueError, match="range"):
        SnakeEnv(3, 10)


def test_render_ansi_and_rgb():
    state = SnakeState(4, 5, ((1, 1), (1, 2), (2, 2)), (3, 4))
    text = render_ansi(state, color=False)
    lines = text.splitlines()
    assert len(lines) == 6 and lines[2] == "| · < o · · |"  # head moving left, away from its neck
    assert "*" in lines[4] and "\x1b" not in text
    assert "\x1b[" in render_ansi(state)
    image = render_rgb(encode_observation(state), cell_size=8)
    assert image.shape == (32, 40, 3) and image.dtype == np.uint8
    assert tuple(image[3 * 8 + 4, 4 * 8 + 4]) == FOOD_COLOUR
    head, tail = image[1 * 8 + 4, 1 * 8 + 4], image[2 * 8 + 4, 2 * 8 + 4]
    assert head[1] > tail[1]  # the body fades from head to tail
    assert "terminal" in render_ansi(terminal_observation(4, 4), color=False)
    assert (render_rgb(terminal_observation(4, 4)) != FOOD_COLOUR).any()
    with pytest.raises(ValueError, match="cell_size"):
        render_rgb(state, cell_size=0)


def test_env_render_modes():
    env = SnakeEnv(6, 6, render_mode="rgb_array", cell_size=4)
    obs, _ = env.reset(seed=1)
    assert env.render().shape == (24, 24, 3)
    env = SnakeEnv(6, 6, render_mode="ansi")
    obs, _ = env.reset(seed=1)
    assert env.render().count("*") == int((obs == FOOD).sum())
