"""The game of Snake, defined once: state, encoding, rules, board geometry, batched engine, experts,
symmetries, rendering and the Gymnasium env.

Importing this package registers the env id ``snake_world_eqm/Snake-v0`` (gymnasium loads the env class
itself on `gym.make`). The public names below load their module on first use, so a command that needs
only the game's vocabulary (`game.state`) never pays for the experts or the env.
"""

from __future__ import annotations

from snake_world_eqm.game.registration import register_env
from snake_world_eqm.lazy import lazy_exports

_EXPORTS = {
    "state": ("ACTION_NAMES", "DEATH_EVENTS", "DELTAS", "EVENT_NAMES", "EXPERT_KINDS", "MAX_BOARD_SIZE",
              "MIN_BOARD_SIZE", "NUM_ACTIONS", "REWARD_DEATH", "REWARD_EAT", "Action", "Event", "SnakeState"),
    "encoding": ("BODY_DOWN", "BODY_LEFT", "BODY_RIGHT", "BODY_UP", "CELL_NAMES", "EMPTY", "FOOD", "HEAD_ALONE",
                 "HEAD_DOWN", "HEAD_LEFT", "HEAD_RIGHT", "HEAD_UP", "NUM_CELL_CLASSES", "TAIL",
                 "IllegalObservationError", "decode_observation", "encode_observation", "is_terminal_observation",
                 "mask_food", "terminal_observation", "validate_observation"),
    "rules": ("StepResult", "new_game", "step"),
    "batched": ("BatchedSnakeGames", "batched_step", "batched_successors", "checked_batched_step", "legal_boards"),
    "expert": ("astar_action", "expert_actions", "fill_action", "heuristic_action"),
    "symmetry": ("NUM_SYMMETRIES", "inverse_symmetry", "transform_action", "transform_board"),
    "render": ("paint_codes", "render_ansi", "render_ansi_any", "render_rgb", "render_rgb_any"),
    "env": ("SnakeEnv",),
    "registration": ("DREAM_ENV_ID", "ENV_ID", "register_env"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

register_env()
