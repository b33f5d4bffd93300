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
    dataset: str | Sequence[str],
    model_kind: str,
    train_split: str = "train",
    eval_split: str = "validation",
    max_train_samples: int | None = None,
    max_eval_samples: int | None = None,
) -> SnakeSplits:
    """Load, check, mix and cap the splits; every problem is a TrainingSetupError naming it.

    Several datasets (e.g. the expert data plus DAgger rounds) are mixed by rows: their train splits are
    concatenated (the shuffle then mixes them), and so are their evaluation splits. They must hold boards of
    one size; columns only some of them have (e.g. `source`) are dropped.
    """
    from datasets import concatenate_datasets

    names = [dataset] if isinstance(dataset, str) else list(dataset)
    if not names:
        raise TrainingSetupError("--dataset: give at least one dataset")
    parts = [_load_one(name, model_kind, train_split, eval_split) for name in names]
    shapes = {name: board_shape(train) for name, (train, _, _) in zip(names, parts)}
    if len(set(shapes.values())) > 1:
        sizes = ", ".join(f"{name}: {h}x{w}" for name, (h, w) in shapes.items())
        raise TrainingSetupError(f"--dataset: the datasets hold different board sizes ({sizes}); mix one size at a time")
    common = [column for column in parts[0][0].column_names if all(column in p[0].column_names for p in parts)]
    train = concatenate_datasets([p[0].select_columns(common) for p in parts]) if len(parts) > 1 else parts[0][0]
    if max_train_samples is not None:
        train = train.select(range(min(max_train_samples, len(train))))
    evaluations = [(p[1], p[2]) for p in parts if p[1] is not None]
    evaluation, chosen_eval = None, None
    if evaluations:
        eval_common = [c for c in evaluations[0][0].column_names if all(c in e.column_names for e, _ in evaluations)]
        evaluation = concatenate_datasets([e.select_columns(eval_common) for e, _ in evaluations]) \
            if len(evaluations) > 1 else evaluations[0][0]
        chosen_eval = evaluations[0][1]
        if max_eval_samples is not None:
            evaluation = _spread_rows(evaluation, max_eval_samples, [len(e) for e, _ in evaluations])
    height, width = next(iter(shapes.values()))
    return SnakeSplits(train, evaluation, chosen_eval, height, width)


def _spread_rows(evaluation: Any, limit: int, lengths: list[int]) -> Any:
    """The first rows of each mixed evaluation split in proportion to its size (one dataset: its first rows)."""
    if len(lengths) == 1 or limit >= len(evaluation):
        return evaluation.select(range(min(limit, len(evaluation))))
    starts = np.cumsum([0, *lengths[:-1]])
    quotas = np.floor(np.asarray(lengths) / sum(lengths) * limit).astype(int)
    quotas[: limit - quotas.sum()] += 1
    rows = np.concatenate([np.arange(start, start + min(q, n)) for start, q, n in zip(starts, quotas, lengths)])
    return evaluation.select(rows.tolist())


def _load_one(dataset: str, model_kind: str, train_split: str, eval_split: str) -> tuple[Any, Any, str | None]:
    """(train, evaluation or None, evaluation split name) of one dataset, checked."""
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
    chosen_eval = next((name for name in (eval_split, "test") if name in splits and name != train_split), None)
    if chosen_eval is None or len(dataset_dict[chosen_eval]) == 0:
        return train, None, None
    return train, dataset_dict[chosen_eval], chosen_eval


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
