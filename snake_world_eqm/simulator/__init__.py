"""The world model as a simulator: every transition is the model's held-action sample, decoded.

`dream_step` is the batched core (numpy boards in, predicted boards, rewards and end reasons out);
`DreamSnakeEnv` is the Gymnasium env registered as ``snake_world_eqm/SnakeDream-v0`` and `DreamVectorEnv`
its batched vector version (one model call per step for all sub-envs).
"""

from __future__ import annotations

from snake_world_eqm.simulator.core import (
    END_REASONS,
    FOOD_MODES,
    DreamStep,
    draw_food_from_decoder,
    dream_step,
    illegal_reasons,
    voted_sample,
)
from snake_world_eqm.simulator.env import DreamSnakeEnv, DreamVectorEnv

__all__ = ["END_REASONS", "FOOD_MODES", "DreamSnakeEnv", "DreamStep", "DreamVectorEnv", "draw_food_from_decoder",
           "dream_step", "illegal_reasons",
           "voted_sample"]
