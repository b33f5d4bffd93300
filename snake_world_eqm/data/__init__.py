"""The Snake transition dataset: typed features, generation from expert games, loading and collation.

Importing it loads `datasets`; command-line parsers read board-size names from `snake_world_eqm.game.state`.
"""

from .features import ACTION_NAMES, COLUMNS, EVENT_NAMES, SPLITS, board_shape, features
from .generate import (
    GenerationConfig,
    augment_rows,
    content_fingerprint,
    generate_dataset_dict,
    iter_chunks,
    rows_to_table,
    split_rows,
)
from .loading import (
    REQUIRED_COLUMNS,
    SnakeTorchDataset,
    as_torch_dataset,
    check_columns,
    collate,
    load_snake_dataset,
    to_numpy_columns,
)

__all__ = [
    "ACTION_NAMES", "COLUMNS", "EVENT_NAMES", "REQUIRED_COLUMNS", "SPLITS", "GenerationConfig", "SnakeTorchDataset",
    "as_torch_dataset", "augment_rows", "board_shape", "check_columns", "collate", "content_fingerprint", "features",
    "generate_dataset_dict", "iter_chunks", "load_snake_dataset", "rows_to_table", "split_rows", "to_numpy_columns",
]
