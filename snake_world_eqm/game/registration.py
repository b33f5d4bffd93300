"""The Gymnasium id of the Snake env, registered without importing the env (gymnasium imports it on `make`)."""

from __future__ import annotations

ENV_ID = "snake_world_eqm/Snake-v0"


def register_env() -> None:
    """Register ``snake_world_eqm/Snake-v0`` with Gymnasium (idempotent)."""
    from gymnasium.envs.registration import register, registry  # the only cost of `import snake_world_eqm`

    if ENV_ID not in registry:
        register(id=ENV_ID, entry_point="snake_world_eqm.game.env:SnakeEnv")
