"""Load a Snake transition dataset (local folder or Hub repo id) and turn row batches into tensors.

Typical training use::

    ds = load_snake_dataset("org/snake-world", split="train")
    loader = torch.utils.data.DataLoader(as_torch_dataset(ds), batch_size=256, shuffle=True, collate_fn=collate)

`as_torch_dataset` fetches whole batches at once in numpy format, so a batch costs one Arrow slice
instead of one Python dict per row.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from datasets import Dataset, DatasetDict, DatasetInfo, Features, load_dataset, load_from_disk

from .features import COLUMNS

# What a world model needs at the very least; the what-if columns are optional for loading.
REQUIRED_COLUMNS = ("state", "action", "next_state")

# Target dtype of each column in `collate`'s output; boards and labels are `long` for embeddings.
_TENSOR_DTYPES: dict[str, torch.dtype] = {
    "state": torch.long,
    "next_state": torch.long,
    "next_state_per_action": torch.long,
    "action": torch.long,
    "taken_action": torch.long,
    "event": torch.long,
    "event_per_action": torch.long,
    "reward": torch.float32,
    "reward_per_action": torch.float32,
    "terminated": torch.bool,
    "terminated_per_action": torch.bool,
    "episode_id": torch.long,
    "step": torch.long,
    "snake_length": torch.long,
    "symmetry": torch.long,
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


def _load_any(path_or_repo: str | os.PathLike) -> DatasetDict:
    path = Path(path_or_repo).expanduser()
    if path.is_dir():
        if _is_save_to_disk_folder(path):
            loaded = load_from_disk(str(path))
        elif any(path.glob("data/*.parquet")):
            loaded = _read_hub_folder(path)
        else:
            loaded = load_dataset(str(path))
    elif path.exists():
        raise ValueError(f"{path} is a file; expected a dataset folder or a Hub repo id")
    elif _looks_like_repo_id(str(path_or_repo)):
        loaded = _read_hub_folder(Path(_download_repo(str(path_or_repo))))
    else:
        raise FileNotFoundError(f"no dataset folder at {path}, and {str(path_or_repo)!r} is not a Hub repo id")
    if isinstance(loaded, Dataset):
        loaded = DatasetDict({"train": loaded})
    return loaded


def _read_hub_folder(path: Path) -> DatasetDict:
    """Read `data/{split}-*.parquet` straight into memory.

    `datasets.load_dataset(folder)` keys its processed cache on the card's metadata, not on the
    files, so a folder rebuilt in place can come back stale; reading the parquet files directly
    cannot. The Hugging Face features travel in the parquet schema metadata.
    """
    files_by_split: dict[str, list[Path]] = {}
    for file in sorted(path.glob("data/*.parquet")):
        split = file.name.split("-", 1)[0]
        files_by_split.setdefault(split, []).append(file)
    splits = {}
    for split, files in files_by_split.items():
        table = pa.concat_tables([pq.read_table(file) for file in files])
        splits[split] = Dataset(table, info=DatasetInfo(features=Features.from_arrow_schema(table.schema)), split=split)
    return DatasetDict(splits)


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
    path_or_repo: str | os.PathLike, split: str | None = None, required: Iterable[str] = REQUIRED_COLUMNS
) -> DatasetDict | Dataset:
    """Load a dataset built by `dataset_builder`: a Hub-shaped folder, a `save_to_disk` folder, or a repo id.

    Returns the `DatasetDict`, or one `Dataset` when `split` is given. Raises `ValueError` when a
    required column or the split is missing.
    """
    dataset = _load_any(path_or_repo)
    check_columns(dataset, required)
    if split is None:
        return dataset
    if split not in dataset:
        raise ValueError(f"split {split!r} not in dataset {str(path_or_repo)!r}; available: {list(dataset)}")
    return dataset[split]


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
        name: torch.from_numpy(np.ascontiguousarray(array)).to(_TENSOR_DTYPES[name])
        for name, array in arrays.items()
        if name in _TENSOR_DTYPES
    }


class SnakeTorchDataset(torch.utils.data.Dataset):
    """A map-style torch view of a split that fetches a whole batch of indices in one Arrow read."""

    def __init__(self, dataset: Dataset, columns: Sequence[str] | None = None):
        columns = list(columns) if columns is not None else [c for c in COLUMNS if c in dataset.column_names]
        check_columns(dataset, columns)
        self.dataset = dataset.select_columns(columns).with_format("numpy")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return self.dataset[int(index)]

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        # torch's DataLoader calls this with a batch's indices; `collate` accepts the dict of columns.
        return self.dataset[list(indices)]


def as_torch_dataset(dataset: Dataset, columns: Sequence[str] | None = None) -> SnakeTorchDataset:
    """A torch `Dataset` over `dataset` for `DataLoader(..., collate_fn=collate)`."""
    return SnakeTorchDataset(dataset, columns)
