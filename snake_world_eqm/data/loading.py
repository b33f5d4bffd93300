"""Load a Snake transition dataset (local folder or Hub repo id) and turn row batches into tensors.

Typical training use::

    ds = load_snake_dataset("org/snake-world", split="train")
    loader = torch.utils.data.DataLoader(as_torch_dataset(ds), batch_size=256, shuffle=True, collate_fn=collate)

`as_torch_dataset` holds the split's columns as numpy arrays (int8 boards, read straight from
Arrow) and hands the DataLoader whole batches, so a batch costs a few numpy gathers.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from datasets import Dataset, DatasetDict, get_dataset_config_names, load_dataset, load_from_disk

from ..game.state import parse_board_size, size_name, sort_sizes
from .checks import check_dataset_split
from .features import COLUMNS

# What a world model needs at the very least; the what-if columns are optional for loading.
REQUIRED_COLUMNS = ("state", "action", "next_state")

# Target dtype of each column in `collate`'s output; boards and labels are `long` for embeddings.
# Converted in numpy: torch's own int8 -> int64 cast measured ~1000x slower on this CPU build.
_TENSOR_DTYPES: dict[str, np.dtype] = {
    **{name: np.dtype(np.int64) for name in ("state", "next_state", "next_state_per_action", "action", "taken_action")},
    **{name: np.dtype(np.int64) for name in ("event", "event_per_action", "episode_id", "step", "snake_length", "symmetry",
                                             "source")},
    "reward": np.dtype(np.float32),
    "reward_per_action": np.dtype(np.float32),
    "terminated": np.dtype(np.bool_),
    "terminated_per_action": np.dtype(np.bool_),
}


def check_columns(dataset: Dataset | DatasetDict, required: Iterable[str] = REQUIRED_COLUMNS) -> None:
    """Raise `ValueError` naming every required column that `dataset` (or any of its splits) lacks."""
    splits = dataset.items() if isinstance(dataset, DatasetDict) else [(None, dataset)]
    for split_name, split in splits:
        missing = [name for name in required if name not in split.column_names]
        if missing:
            where = f" (split {split_name!r})" if split_name is not None else ""
            raise ValueError(
                f"dataset{where} is missing required column(s) {missing}; it has {split.column_names}. "
                f"Build it with `python -m dataset_builder`."
            )


def _is_save_to_disk_folder(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _folder_digest(folder: Path) -> str:
    """SHA-256 over the names and bytes of every visible file of a folder (the card and data/*)."""
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*")):
        relative = file.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not file.is_file():
            continue
        digest.update(relative.as_posix().encode() + b"\0")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _load_hub_shaped_folder(folder: Path, config_name: str | None = None) -> DatasetDict:
    """`load_dataset(folder)` with a cache keyed by the folder's *content*.

    datasets keys its cache of a local folder on the folder's path and card, so a parquet file truncated or
    edited after a first load kept being served from the old Arrow copy. Each content gets its own cache
    folder, and older ones of the same folder are removed, so what is read is what is on disk.
    """
    import datasets

    root = Path(datasets.config.HF_DATASETS_CACHE) / "snake_world_eqm_local"
    per_folder = root / hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    cache_dir = per_folder / _folder_digest(folder)[:16]
    if per_folder.is_dir():
        for stale in per_folder.iterdir():
            if stale != cache_dir:
                shutil.rmtree(stale, ignore_errors=True)
    try:
        return load_dataset(str(folder), config_name, cache_dir=str(cache_dir))
    except datasets.exceptions.NonMatchingSplitsSizesError as error:
        mismatch = error.args[0] if error.args else ""
        raise ValueError(f"the data files of {folder} do not match the row counts in its README.md card "
                         f"(truncated or edited after the build?): {mismatch}") from None
    except datasets.exceptions.DatasetGenerationError as error:
        cause = error.__cause__ or error
        raise ValueError(f"cannot read the data files of {folder}: {type(cause).__name__}: {cause}") from None


def _local_folder(path_or_repo: str | os.PathLike) -> Path:
    """The dataset's local folder: the path itself, or the repo's snapshot (HF cache when offline)."""
    path = Path(path_or_repo).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(f"{path} is a file; expected a dataset folder or a Hub repo id")
    if _looks_like_repo_id(str(path_or_repo)):
        return Path(_download_repo(str(path_or_repo)))
    raise FileNotFoundError(f"no dataset folder at {path}, and {str(path_or_repo)!r} is not a Hub repo id")


def dataset_board_sizes(path_or_repo: str | os.PathLike) -> list[str] | None:
    """The size configs ("6x6", "10x10", ...) of a multi-size dataset folder or repo; None for a one-size dataset."""
    folder = _local_folder(path_or_repo)
    if _is_save_to_disk_folder(folder):
        return None
    return _size_configs(folder)


def dataset_expert(datasets: Iterable[str | os.PathLike]) -> str:
    """The expert that labelled the datasets, read from their cards (``snake_world_eqm.generation.expert``;
    a card that names none was built by astar, the builder's default before the fill expert).

    Several different experts are an error: on-policy labels, and the expert an evaluation compares
    against, must be the teacher of the data the model learned from.
    """
    from huggingface_hub import DatasetCard

    named = set()
    for name in datasets:
        card = _local_folder(name) / "README.md"
        if not card.is_file():
            continue  # a save_to_disk folder has no card
        generation = (DatasetCard.load(card).data.to_dict().get("snake_world_eqm") or {}).get("generation") or {}
        per_size = [value for value in generation.values() if isinstance(value, dict)]  # multi-size cards
        for config in per_size or ([generation] if generation else []):
            named.add(config.get("expert", "astar"))
    if len(named) > 1:
        raise ValueError(f"the datasets were labelled by different experts {sorted(named)}; pass --expert")
    return named.pop() if named else "astar"


def _size_configs(folder: Path) -> list[str] | None:
    names = get_dataset_config_names(str(folder))
    if not names or names == ["default"]:
        return None
    try:
        return sort_sizes(names)
    except ValueError as error:
        raise ValueError(f"dataset {folder} has configs {names} that are not board sizes ({error})") from None


def _load_folder(folder: Path, config_name: str | None = None) -> DatasetDict:
    if _is_save_to_disk_folder(folder):
        loaded = load_from_disk(str(folder))
    else:
        loaded = _load_hub_shaped_folder(folder, config_name)
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded


def _load_any(path_or_repo: str | os.PathLike, board_size: str | None = None) -> DatasetDict | dict[str, DatasetDict]:
    """One DatasetDict, or with board_size="all" a {size name: DatasetDict} dict (also for a one-size dataset)."""
    folder = _local_folder(path_or_repo)
    sizes = None if _is_save_to_disk_folder(folder) else _size_configs(folder)
    if sizes is None:
        loaded = _load_folder(folder)
        if board_size is None:
            return loaded
        own = size_name(*board_shape_of(next(iter(loaded.values()))))
        if board_size == "all":
            return {own: loaded}
        if size_name(*parse_board_size(board_size)) != own:
            raise ValueError(f"dataset {str(path_or_repo)!r} holds {own} boards only, not {board_size}")
        return loaded
    if board_size is None:
        raise ValueError(f"dataset {str(path_or_repo)!r} holds several board sizes ({', '.join(sizes)}); "
                         f"pass board_size='HxW' for one or board_size='all'")
    if board_size == "all":
        return {name: _load_folder(folder, name) for name in sizes}
    wanted = size_name(*parse_board_size(board_size))
    if wanted not in sizes:
        raise ValueError(f"dataset {str(path_or_repo)!r} has no {wanted} boards; its sizes are {', '.join(sizes)}")
    return _load_folder(folder, wanted)


def board_shape_of(dataset: Dataset) -> tuple[int, int]:
    """(H, W) of a split's `state` boards, from the feature type (or the first row)."""
    shape = getattr(dataset.features.get("state"), "shape", None)
    if shape is None:
        shape = np.asarray(dataset[0]["state"]).shape
    return int(shape[0]), int(shape[1])


def _download_repo(repo_id: str) -> str:
    """Local snapshot of a Hub dataset repo; served from the HF cache when `HF_HUB_OFFLINE=1`.

    Resolving through `snapshot_download` (rather than `load_dataset(repo_id)`, whose offline mode
    only knows its own processed cache) makes a repo id usable wherever its files are cached.
    """
    from huggingface_hub import snapshot_download

    return snapshot_download(repo_id, repo_type="dataset", allow_patterns=["README.md", "data/*"])


def _looks_like_repo_id(text: str) -> bool:
    parts = text.split("/")
    return 1 <= len(parts) <= 2 and all(parts) and not text.startswith((".", "~"))


def load_snake_dataset(
    path_or_repo: str | os.PathLike,
    split: str | None = None,
    required: Iterable[str] = REQUIRED_COLUMNS,
    board_size: str | None = None,
    check_rows: bool = True,
) -> DatasetDict | Dataset | dict[str, DatasetDict] | dict[str, Dataset]:
    """Load a dataset built by `dataset_builder`: a Hub-shaped folder, a `save_to_disk` folder, or a repo id.

    Returns the `DatasetDict`, or one `Dataset` when `split` is given. A multi-size dataset (one config
    per size, `--board-sizes`) needs `board_size`: "HxW" loads that size; "all" returns
    `{"HxW": DatasetDict or Dataset}` for every size (a one-size dataset then gives a one-entry dict).
    Raises `ValueError` when a required column, the split or the size is missing, and when a split fails
    `data.checks.check_dataset_split` (column types and sizes; with `check_rows`, a sample of rows against the
    rules), so a bad dataset is one line before any long work.
    """
    loaded = _load_any(path_or_repo, board_size)
    by_size = loaded if isinstance(loaded, dict) and not isinstance(loaded, DatasetDict) else None
    for size, dataset in (by_size or {None: loaded}).items():
        check_columns(dataset, required)
        if split is not None and split not in dataset:
            raise ValueError(f"split {split!r} not in dataset {str(path_or_repo)!r}; available: {list(dataset)}")
        expected = parse_board_size(size) if size else None
        for name in [split] if split is not None else list(dataset):
            where = f"dataset {str(path_or_repo)!r}{f' ({size})' if size else ''} split {name!r}"
            check_dataset_split(dataset[name], where, expected, check_rows=check_rows)
    if split is None:
        return loaded
    if by_size is not None:
        return {name: dataset[split] for name, dataset in by_size.items()}
    return loaded[split]


def _column_arrays(rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, np.ndarray]:
    if isinstance(rows, Mapping):
        return {name: np.asarray(values) for name, values in rows.items()}
    if len(rows) == 0:
        raise ValueError("cannot collate an empty batch")
    return {name: np.stack([np.asarray(row[name]) for row in rows]) for name in rows[0]}


def collate(rows: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Turn a list of row dicts, or a dict of column batches, into tensors.

    Boards (`state`, `next_state` (B,H,W), `next_state_per_action` (B,4,H,W)) and labels are
    `long`; rewards `float32`; terminated flags `bool`. Columns this module does not know are dropped.
    """
    arrays = _column_arrays(rows)
    return {
        name: torch.from_numpy(np.ascontiguousarray(array, dtype=_TENSOR_DTYPES[name]))
        for name, array in arrays.items()
        if name in _TENSOR_DTYPES
    }


def _arrow_to_numpy(column: pa.ChunkedArray | pa.Array, num_rows: int) -> np.ndarray:
    """One column as a numpy array in its stored dtype (int8 boards stay int8), without Python loops.

    `with_format("numpy")` turns ArrayND boards into int64 and rebuilds their extension type per
    chunk, which costs minutes and 8x the memory on a million rows; flattening the nested lists
    reads the values buffer directly.
    """
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    shape: tuple[int, ...] = ()
    if isinstance(array.type, pa.ExtensionType):
        shape = tuple(array.type.shape)
        array = array.storage
    elif pa.types.is_fixed_size_list(array.type):
        shape = (array.type.list_size,)
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type):
        array = array.flatten()
    values = array.to_numpy(zero_copy_only=False)
    return values.reshape(num_rows, *shape)


def to_numpy_columns(dataset: Dataset, columns: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """The columns of `dataset` (all by default) as numpy arrays, boards `(N, H, W)` int8, fast."""
    columns = list(columns) if columns is not None else list(dataset.column_names)
    check_columns(dataset, columns)
    table = dataset.with_format(None).select_columns(columns).data.table
    if dataset._indices is not None:  # a shuffled/selected view: gather its rows first
        table = table.take(dataset._indices.column(0).to_numpy().astype(np.int64))
    return {name: _arrow_to_numpy(table.column(name), len(dataset)) for name in columns}


class SnakeTorchDataset(torch.utils.data.Dataset):
    """A map-style torch view of a split, its columns held as numpy arrays (int8 boards).

    Memory: about 620 bytes per 10x10 row with every column, 200 without the what-if columns.
    """

    def __init__(self, dataset: Dataset, columns: Sequence[str] | None = None):
        columns = list(columns) if columns is not None else [c for c in COLUMNS if c in dataset.column_names]
        self.arrays = to_numpy_columns(dataset, columns)
        self.num_rows = len(dataset)

    def __len__(self) -> int:
        return self.num_rows

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {name: values[index] for name, values in self.arrays.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        # torch's DataLoader calls this with a batch's indices; `collate` accepts the dict of columns.
        rows = np.asarray(indices, dtype=np.int64)
        return {name: values[rows] for name, values in self.arrays.items()}


def as_torch_dataset(dataset: Dataset, columns: Sequence[str] | None = None) -> SnakeTorchDataset:
    """A torch `Dataset` over `dataset` for `DataLoader(..., collate_fn=collate)`."""
    return SnakeTorchDataset(dataset, columns)
