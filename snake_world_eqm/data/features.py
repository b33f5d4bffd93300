"""Typed `datasets.Features` of the Snake transition dataset, and its column names.

Boards are stored as `Array2D`/`Array3D` of int8 cell codes (see `snake_world_eqm.game.encoding`);
actions and events as `ClassLabel` so the Hub viewer shows names instead of integers.
"""

from __future__ import annotations

from datasets import Array2D, Array3D, ClassLabel, Features, List, Value

from snake_world_eqm.game.state import ACTION_NAMES, EVENT_NAMES, NUM_ACTIONS  # noqa: F401  (re-exported)

# Who played the step (`taken_action`): the expert, a trained policy (on-policy/DAgger data) or a random
# perturbation. The label (`action`) is always the expert's.
SOURCE_NAMES = ("expert", "policy", "perturbed")

BOARD_COLUMNS = ("state", "next_state")
PER_ACTION_COLUMNS = ("next_state_per_action", "reward_per_action", "terminated_per_action", "event_per_action")
COLUMNS = (
    "state",
    "action",
    "taken_action",
    "next_state",
    "reward",
    "terminated",
    "event",
    *PER_ACTION_COLUMNS,
    "episode_id",
    "step",
    "snake_length",
    "symmetry",
    "source",
)
# Columns that datasets built before they existed lack; readers and the validator treat them as optional.
OPTIONAL_COLUMNS = ("source",)
SPLITS = ("train", "validation", "test")

# Numpy dtype of each column as generated (ClassLabels are stored as int64 by `datasets`).
COLUMN_DTYPES = {
    "state": "int8",
    "action": "int64",
    "taken_action": "int64",
    "next_state": "int8",
    "reward": "float32",
    "terminated": "bool",
    "event": "int64",
    "next_state_per_action": "int8",
    "reward_per_action": "float32",
    "terminated_per_action": "bool",
    "event_per_action": "int64",
    "episode_id": "int64",
    "step": "int32",
    "snake_length": "int32",
    "symmetry": "int8",
    "source": "int64",
}


def features(height: int, width: int) -> Features:
    """The `Features` of a dataset of `height x width` boards, columns in `COLUMNS` order."""
    action = ClassLabel(names=list(ACTION_NAMES))
    event = ClassLabel(names=list(EVENT_NAMES))
    return Features(
        {
            "state": Array2D((height, width), "int8"),
            "action": action,
            "taken_action": action,
            "next_state": Array2D((height, width), "int8"),
            "reward": Value("float32"),
            "terminated": Value("bool"),
            "event": event,
            "next_state_per_action": Array3D((NUM_ACTIONS, height, width), "int8"),
            "reward_per_action": List(Value("float32"), length=NUM_ACTIONS),
            "terminated_per_action": List(Value("bool"), length=NUM_ACTIONS),
            "event_per_action": List(event, length=NUM_ACTIONS),
            "episode_id": Value("int64"),
            "step": Value("int32"),
            "snake_length": Value("int32"),
            "symmetry": Value("int8"),
            "source": ClassLabel(names=list(SOURCE_NAMES)),
        }
    )


def board_shape(dataset_features: Features) -> tuple[int, int]:
    """(height, width) of the boards described by `dataset_features`."""
    if "state" not in dataset_features:
        raise ValueError("dataset has no 'state' column, so its board size is unknown")
    shape = getattr(dataset_features["state"], "shape", None)
    if shape is None or len(shape) != 2:
        raise ValueError(f"column 'state' must be an Array2D board, got {dataset_features['state']!r}")
    return int(shape[0]), int(shape[1])
