"""The one check of a dataset's columns, run when it loads, before any long work (training, evaluation, DAgger).

Two levels, both cheap:

* structure, over the column types: every board column is a grid of integers of one fixed size (not floats,
  strings, flat lists or boards of mixed sizes), the size is a legal board size (and the one asked for), and
  `next_state_per_action` holds four boards of that size;
* content, on an evenly spread sample of rows: actions in 0..3, board cells are known codes, every state is a
  legal board (or the terminal one) and `next_state` is what the rules give for (`state`, `action`), food
  respawn excepted.

A float `state` column used to be truncated silently, and rows that break the rules gave metrics; now either is a
one-line ValueError naming the column or the first bad row. `python -m dataset_builder validate` re-simulates
every row and counts what breaks (it loads with `check_rows=False`).
"""

from __future__ import annotations

import numpy as np
from datasets import Dataset

from ..game.batched import batched_step, legal_boards
from ..game.encoding import NUM_CELL_CLASSES, mask_food
from ..game.state import MAX_BOARD_SIZE, MIN_BOARD_SIZE, NUM_ACTIONS

SAMPLE_ROWS = 256
BOARD_COLUMNS = {"state": 2, "next_state": 2, "next_state_per_action": 3}
ACTION_COLUMNS = ("action", "taken_action")


def check_dataset_split(split: Dataset, name: str = "dataset", board_size: tuple[int, int] | None = None,
                        check_rows: bool = True, sample_rows: int = SAMPLE_ROWS) -> tuple[int, int] | None:
    """Check a split's board columns (and, with `check_rows`, a sample of its rows); return its (H, W).

    Raises ValueError naming the split, the column and what is wrong."""
    sample = _sample(split, sample_rows)
    shape = None
    for column, ndim in BOARD_COLUMNS.items():
        if column not in split.column_names:
            continue
        boards = _board_column(split, column, ndim, sample, name)
        if boards is None:
            continue
        size = boards.shape[-2:]
        if column == "next_state_per_action" and boards.shape[1] != NUM_ACTIONS:
            raise ValueError(f"{name}: column next_state_per_action holds {boards.shape[1]} boards per row, "
                             f"not {NUM_ACTIONS}")
        if shape is not None and size != shape:
            raise ValueError(f"{name}: column {column} has {size[0]}x{size[1]} boards but state has "
                             f"{shape[0]}x{shape[1]}")
        shape = size
    if shape is None:
        return None
    if not all(MIN_BOARD_SIZE <= side <= MAX_BOARD_SIZE for side in shape):
        raise ValueError(f"{name}: boards are {shape[0]}x{shape[1]}; sides must be {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}")
    if board_size is not None and tuple(board_size) != tuple(shape):
        raise ValueError(f"{name}: boards are {shape[0]}x{shape[1]}, not the {board_size[0]}x{board_size[1]} "
                         "asked for")
    if check_rows and len(sample):
        check_sample_rows(split, sample, name)
    return int(shape[0]), int(shape[1])


def _sample(split: Dataset, count: int) -> np.ndarray:
    """Row indices spread evenly over the split (all rows of a small one)."""
    return np.unique(np.linspace(0, len(split) - 1, num=min(count, len(split))).astype(np.int64)) if len(split) \
        else np.zeros(0, dtype=np.int64)


def _board_column(split: Dataset, column: str, ndim: int, sample: np.ndarray, name: str) -> np.ndarray | None:
    """The sampled boards of one column as an integer array (N, [4,] H, W), after the type checks."""
    feature = split.features.get(column)
    dtype = getattr(feature, "dtype", None)
    shape = getattr(feature, "shape", None)
    if shape is not None and len(shape) != ndim:
        raise ValueError(f"{name}: column {column} holds {len(shape)}-D values of shape {tuple(shape)}; expected "
                         f"{ndim}-D boards")
    if isinstance(dtype, str) and shape is not None and np.dtype(dtype).kind not in "iu":
        raise ValueError(f"{name}: column {column} holds {dtype} values; boards are integer cell codes (int8)")
    if not len(sample):
        return None
    try:
        values = np.asarray(split.select(sample.tolist()).with_format("numpy")[column])
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name}: column {column} is not a grid of one size ({error})") from None
    if values.dtype == object or values.ndim != ndim + 1:
        raise ValueError(f"{name}: column {column} holds {_what(values)}; expected {ndim}-D boards of one size")
    if values.dtype.kind not in "iu":
        raise ValueError(f"{name}: column {column} holds {values.dtype} values; boards are integer cell codes (int8)")
    return values


def _what(values: np.ndarray) -> str:
    if values.dtype == object:
        return "values of mixed sizes or types"
    return f"{values.ndim - 1}-D values of dtype {values.dtype}"


def check_sample_rows(split: Dataset, sample: np.ndarray, name: str) -> None:
    """Actions in range, known cell codes, legal states, and `next_state` the rules' successor (food aside)."""
    rows = split.select(sample.tolist()).with_format("numpy")
    for column in ACTION_COLUMNS:
        if column not in split.column_names:
            continue
        values = np.asarray(rows[column])
        if values.dtype.kind not in "iu" or values.ndim != 1:
            raise ValueError(f"{name}: column {column} holds {values.dtype} values; expected integer actions")
        bad = np.flatnonzero((values < 0) | (values >= NUM_ACTIONS))
        if len(bad):
            raise ValueError(f"{name}: row {int(sample[bad[0]])} has {column} {int(values[bad[0]])}; actions are "
                             f"0..{NUM_ACTIONS - 1} ({len(bad)} of {len(sample)} sampled rows)")
    boards = {column: np.asarray(rows[column]) for column in BOARD_COLUMNS if column in split.column_names}
    for column, values in boards.items():
        bad = np.flatnonzero(((values < 0) | (values >= NUM_CELL_CLASSES)).reshape(len(values), -1).any(axis=1))
        if len(bad):
            raise ValueError(f"{name}: row {int(sample[bad[0]])} of column {column} has cell codes outside "
                             f"0..{NUM_CELL_CLASSES - 1}")
    if "state" not in boards:
        return
    state = boards["state"].astype(np.int8)
    failures = {"state is not a legal board": ~legal_boards(state)}
    if "next_state" in boards and "action" in split.column_names:
        actions = np.asarray(rows["action"]).astype(np.int64)
        simulated = batched_step(state, actions, np.random.default_rng(0))[0]
        same = (mask_food(simulated) == mask_food(boards["next_state"].astype(np.int8))).all(axis=(1, 2))
        failures["next_state is not the successor of (state, action)"] = ~same & legal_boards(state)
    for what, failed in failures.items():
        bad = np.flatnonzero(failed)
        if len(bad):
            raise ValueError(f"{name}: {len(bad)} of {len(sample)} sampled rows break the rules (row "
                             f"{int(sample[bad[0]])}: {what}); run `python -m dataset_builder validate` for a report")
