"""The Snake transition dataset: typed features, generation from expert games, loading and collation.

Names load their module on first use, so `data.sizes` (board-size names, used by command-line parsers)
costs no `datasets` import.
"""

from __future__ import annotations

from snake_world_eqm.lazy import lazy_exports

_EXPORTS = {
    "features": ("ACTION_NAMES", "COLUMNS", "EVENT_NAMES", "SPLITS", "board_shape", "features"),
    "generate": ("GenerationConfig", "augment_rows", "content_fingerprint", "generate_dataset_dict", "iter_chunks",
                 "rows_to_table", "split_rows"),
    "loading": ("REQUIRED_COLUMNS", "SnakeTorchDataset", "as_torch_dataset", "check_columns", "collate",
                "load_snake_dataset", "to_numpy_columns"),
    "sizes": ("parse_board_size", "size_name", "sort_sizes"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)

