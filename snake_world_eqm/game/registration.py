"""The Gymnasium ids of the Snake envs, registered without importing the envs (gymnasium imports them on `make`)."""

from __future__ import annotations

ENV_ID = "snake_world_eqm/Snake-v0"
# Played inside the world model: gymnasium.make(DREAM_ENV_ID, model=..., height=..., width=...).
DREAM_ENV_ID = "snake_world_eqm/SnakeDream-v0"
# The batched version: gymnasium.make_vec(DREAM_ENV_ID, num_envs=N, vectorization_mode="vector_entry_point", ...).
DREAM_VECTOR_ENTRY_POINT = "snake_world_eqm.simulator.env:DreamVectorEnv"


def register_env() -> None:
    """Register ``snake_world_eqm/Snake-v0`` and ``snake_world_eqm/SnakeDream-v0`` with Gymnasium (idempotent)."""
    from gymnasium.envs.registration import register, registry  # the only cost of `import snake_world_eqm`

    if ENV_ID not in registry:
        register(id=ENV_ID, entry_point="snake_world_eqm.game.env:SnakeEnv")
    if DREAM_ENV_ID not in registry:
        register(id=DREAM_ENV_ID, entry_point="snake_world_eqm.simulator.env:DreamSnakeEnv",
                 vector_entry_point=DREAM_VECTOR_ENTRY_POINT)
