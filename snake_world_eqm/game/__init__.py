"""The game of Snake, defined once: state, encoding, rules, board geometry, batched engine, experts,
symmetries, rendering and the Gymnasium env.

Importing this package registers the env id ``snake_world_eqm/Snake-v0`` (gymnasium loads the env class
itself on `gym.make`). The public names below load their module on first use, so a command that needs
only the game's vocabulary (`game.state`) never pays for the experts or the env.
"""

from __future__ import annotations

import importlib

from snake_world_eqm.game.registration import register_env

_EXPORTS = {
    "state": ("Action", "ACTION_NAMES", "DEATH_EVENTS", "DELTAS", "Event", "EVENT_NAMES", "MAX_BOARD_SIZE", "MIN_BOARD_SIZE", "NUM_ACTIONS", "REWARD_DEATH", "REWARD_EAT", "SnakeState",),
    "encoding": ("BODY_DOWN", "BODY_LEFT", "BODY_RIGHT", "BODY_UP", "CELL_NAMES", "decode_observation", "EMPTY", "encode_observation", "FOOD", "HEAD_ALONE", "HEAD_DOWN", "HEAD_LEFT", "HEAD_RIGHT", "HEAD_UP", "IllegalObservationError", "is_terminal_observation", "mask_food", "NUM_CELL_CLASSES", "TAIL", "terminal_observation", "validate_observation",),
    "rules": ("new_game", "step", "StepResult",),
    "batched": ("batched_step", "batched_successors", "BatchedSnakeGames", "checked_batched_step", "legal_boards",),
    "expert": ("astar_action", "expert_actions", "EXPERT_KINDS", "fill_action", "heuristic_action",),
    "symmetry": ("inverse_symmetry", "NUM_SYMMETRIES", "transform_action", "transform_board",),
    "render": ("render_ansi", "render_rgb",),
    "env": ("SnakeEnv",),
    "registration": ("ENV_ID", "register_env",),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


register_env()
