"""The world model as a simulator: every transition is the model's held-action sample, decoded.

`dream_step` is the batched core (numpy boards in, predicted boards, rewards and end reasons out);
`DreamSnakeEnv` is the Gymnasium env registered as ``snake_world_eqm/SnakeDream-v0`` and `DreamVectorEnv`
its batched vector version (one model call per step for all sub-envs). `DreamBesideReal` plays a real game and its
dream side by side with one action stream and measures where they part (the app's dream mode, `play --dream`).
"""

from __future__ import annotations

from snake_world_eqm.simulator.core import (
    END_REASONS,
    FOOD_MODES,
    DreamStep,
    check_model_size,
    copy_food,
    draw_food_from_decoder,
    dream_step,
    illegal_reasons,
    voted_sample,
)
from snake_world_eqm.simulator.env import DreamSnakeEnv, DreamVectorEnv
from snake_world_eqm.simulator.side_by_side import DREAM_FOODS, WORLDS, Divergence, DreamBesideReal

__all__ = ["DREAM_FOODS", "END_REASONS", "FOOD_MODES", "WORLDS", "Divergence", "DreamBesideReal", "DreamSnakeEnv",
           "DreamStep", "DreamVectorEnv", "check_model_size", "copy_food", "draw_food_from_decoder", "dream_step",
           "illegal_reasons", "voted_sample"]
