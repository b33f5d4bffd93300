"""The game of Snake, defined once: rules, encoding, batched engine, experts, symmetries, rendering, env."""

from snake_world_eqm.game.batched import (
    BatchedSnakeGames,
    batched_step,
    batched_successors,
    checked_batched_step,
    legal_boards,
)
from snake_world_eqm.game.encoding import (
    BODY_DOWN,
    BODY_LEFT,
    BODY_RIGHT,
    BODY_UP,
    CELL_NAMES,
    EMPTY,
    FOOD,
    HEAD_ALONE,
    HEAD_DOWN,
    HEAD_LEFT,
    HEAD_RIGHT,
    HEAD_UP,
    NUM_CELL_CLASSES,
    TAIL,
    IllegalObservationError,
    decode_observation,
    encode_observation,
    is_terminal_observation,
    mask_food,
    terminal_observation,
    validate_observation,
)
from snake_world_eqm.game.env import ENV_ID, SnakeEnv, register_env
from snake_world_eqm.game.expert import (
    EXPERT_KINDS,
    astar_action,
    expert_actions,
    fill_action,
    heuristic_action,
)
from snake_world_eqm.game.render import render_ansi, render_rgb
from snake_world_eqm.game.rules import (
    ACTION_NAMES,
    DEATH_EVENTS,
    DELTAS,
    EVENT_NAMES,
    MAX_BOARD_SIZE,
    MIN_BOARD_SIZE,
    NUM_ACTIONS,
    REWARD_DEATH,
    REWARD_EAT,
    Action,
    Event,
    SnakeState,
    StepResult,
    new_game,
    step,
)
from snake_world_eqm.game.symmetry import NUM_SYMMETRIES, inverse_symmetry, transform_action, transform_board

__all__ = [
    "ACTION_NAMES", "BODY_DOWN", "BODY_LEFT", "BODY_RIGHT", "BODY_UP", "CELL_NAMES", "DEATH_EVENTS",
    "DELTAS", "EMPTY", "EVENT_NAMES", "FOOD", "HEAD_ALONE", "HEAD_DOWN", "HEAD_LEFT", "HEAD_RIGHT",
    "HEAD_UP", "MAX_BOARD_SIZE", "MIN_BOARD_SIZE", "NUM_ACTIONS", "NUM_CELL_CLASSES", "NUM_SYMMETRIES",
    "REWARD_DEATH", "REWARD_EAT", "TAIL", "Action", "BatchedSnakeGames", "Event", "checked_batched_step", "legal_boards",
    "IllegalObservationError", "SnakeState", "StepResult", "batched_step", "batched_successors",
    "decode_observation", "encode_observation", "inverse_symmetry", "is_terminal_observation",
    "mask_food", "new_game", "step", "terminal_observation", "transform_action", "transform_board",
    "validate_observation", "EXPERT_KINDS", "astar_action", "expert_actions", "fill_action", "heuristic_action",
    "ENV_ID", "SnakeEnv", "register_env", "render_ansi", "render_rgb",
]
