"""Dataset loading, column checks and data loaders for training.

The shuffle order is a pure function of (seed, epoch), so a resumed run can skip exactly the
batches the interrupted run already consumed and see the same batches afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from snake_world_eqm.data import as_torch_dataset, collate

from .args import TrainingSetupError

# Columns each model's training needs; the rest of what its forward accepts is used when present.
REQUIRED_COLUMNS = {"eqm": ("state", "action", "next_state"), "baseline": ("state", "action")}
# Columns validation reads when present (what-if and validity use the per-action successors).
EVAL_COLUMNS = ("state", "action", "next_state", "event", "next_state_per_action", "event_per_action")


@dataclass
class SnakeSplits:
    train: Any  # datasets.Dataset
    eval: Any | None
    eval_split: str | None
    board_height: int
    board_width: int


def load_splits(
    dataset: str,
    model_kind: str,
    train_split: str = "train",
    eval_split: str = "validation",
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> SnakeSplits:
    """Load, check and cap the splits; every problem is a TrainingSetupError naming it."""
    from snake_world_eqm.data import check_columns, load_snake_dataset

    try:
        dataset_dict = load_snake_dataset(dataset, required=REQUIRED_COLUMNS[model_kind])
    except (FileNotFoundError, ValueError, OSError) as error:
        raise TrainingSetupError(f"--dataset {dataset}: cannot load it ({error})") from error
    splits = list(dataset_dict.keys()) if hasattr(dataset_dict, "keys") else []
    if train_split not in splits:
        raise TrainingSetupError(f"--dataset {dataset}: no {train_split!r} split (found {splits})")
    train = dataset_dict[train_split]
    try:
        check_columns(train, REQUIRED_COLUMNS[model_kind])
    except ValueError as error:
        raise TrainingSetupError(f"--dataset {dataset}: {error}") from error
    if len(train) == 0:
        raise TrainingSetupError(f"--dataset {dataset}: the {train_split!r} split is empty")
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))

    chosen_eval = next((name for name in (eval_split, "test") if name in splits and name != train_split), None)
    evaluation = None
    if chosen_eval is not None and len(dataset_dict[chosen_eval]) > 0:
        evaluation = dataset_dict[chosen_eval]
        if max_eval_samples is not None:
            evaluation = evaluation.select(range(min(max_eval_samples, len(evaluation))))
    else:
        chosen_eval = None
    height, width = board_shape(train)
    return SnakeSplits(train, evaluation, chosen_eval, height, width)


def board_shape(dataset: Any) -> tuple[int, int]:
    """(H, W) of the `state` column, from its feature type or, failing that, the first row."""
    shape = getattr(dataset.features["state"], "shape", None)
    if shape is None:  # e.g. parquet read back without its feature metadata
        shape = np.asarray(dataset[0]["state"]).shape
    if len(shape) != 2:
        raise TrainingSetupError(f"the 'state' column must hold (H, W) boards, got shape {tuple(shape)}")
    return int(shape[0]), int(shape[1])


def forward_columns(model_cls: type, dataset: Any) -> list[str]:
    """Dataset columns the model's forward takes by name (e.g. next_state_per_action when present)."""
    params = inspect.signature(model_cls.forward).parameters
    return [name for name in params if name in dataset.column_names]


class EpochShuffleSampler(Sampler[int]):
    """A permutation of range(n) determined by seed + epoch only (no global RNG involved)."""

    def __init__(self, num_rows: int, seed: int) -> None:
        self.num_rows = num_rows
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        yield from torch.randperm(self.num_rows, generator=generator).tolist()

    def __len__(self) -> int:
        return self.num_rows


def collate_rows(rows: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """The data module's collate (rows, or a dict of column batches from as_torch_dataset)."""
    return collate(rows)


def make_train_loader(dataset: Any, columns: list[str], batch_size: int, seed: int, num_workers: int):
    """Shuffled by EpochShuffleSampler; the loader's own generator keeps the global RNG untouched."""
    dataset = as_torch_dataset(dataset, columns)  # one Arrow read per batch
    sampler = EpochShuffleSampler(len(dataset), seed)
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        collate_fn=collate_rows,
        num_workers=num_workers,
        drop_last=len(dataset) >= 2 * batch_size,  # a ragged last batch only matters for tiny sets
        generator=torch.Generator().manual_seed(seed),
    )
    return loader, sampler


def make_eval_loader(dataset: Any, batch_size: int, num_workers: int) -> DataLoader:
    columns = [name for name in EVAL_COLUMNS if name in dataset.column_names]
    return DataLoader(
        as_torch_dataset(dataset, columns),
        batch_size=batch_size,
        shuffle=False,
        collate_fn=collate_rows,
        num_workers=num_workers,
    )
