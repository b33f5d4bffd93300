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

from snake_world_eqm.data import as_torch_dataset, check_columns, collate, load_snake_dataset
from snake_world_eqm.data.loading import dataset_board_sizes
from snake_world_eqm.game.state import size_name, sort_sizes

from .errors import TrainingSetupError

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
    board_sizes: tuple[str, ...] = ()  # several sizes: their names ("6x6", ...); train/eval are MultiSizeSplit


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
    concatenated (the shuffle then mixes them), and so are their evaluation splits; columns only some of
    them have (e.g. `source`) are dropped. Datasets of several board sizes (one multi-size dataset, or
    datasets of different sizes) give a `MultiSizeSplit` per split: same-size parts are mixed as above,
    `max_train_samples` caps each size, and training batches hold one size each.
    """
    names = [dataset] if isinstance(dataset, str) else list(dataset)
    if not names:
        raise TrainingSetupError("--dataset: give at least one dataset")
    by_size: dict[str, list[tuple[Any, Any, str | None]]] = {}
    for name in names:
        sizes = _board_sizes_of(name)
        if sizes is None:
            part = _load_one(name, model_kind, train_split, eval_split)
            by_size.setdefault(size_name(*board_shape(part[0])), []).append(part)
        else:
            for size, part in _load_sizes(name, model_kind, train_split, eval_split).items():
                by_size.setdefault(size, []).append(part)
    if len(by_size) == 1:
        (size, parts), = by_size.items()
        train, evaluation, chosen_eval = _mix(parts, max_train_samples, max_eval_samples)
        height, width = board_shape(train)  # build_config then refuses a size outside 4..32 in one line
        return SnakeSplits(train, evaluation, chosen_eval, height, width)
    mixed = {size: _mix(parts, max_train_samples, None) for size, parts in by_size.items()}
    try:
        train = MultiSizeSplit({size: m[0] for size, m in mixed.items()})
    except ValueError as error:  # a size outside 4..32 among them
        raise TrainingSetupError(f"--dataset: {error}") from error
    evaluations = {size: m[1] for size, m in mixed.items() if m[1] is not None}
    evaluation, chosen_eval = None, None
    if len(evaluations) == len(mixed):  # validation averages over every size, equal rows each
        evaluation = MultiSizeSplit(equal_eval_rows(evaluations, max_eval_samples, EVAL_BATCH_ROWS))
        chosen_eval = next(m[2] for m in mixed.values())
    height, width = board_shape(train.by_size[train.names[len(train.names) // 2]])  # the config's default: the median size
    return SnakeSplits(train, evaluation, chosen_eval, height, width, tuple(train.names))


# Validation batches of a multi-size split hold at most this many rows of one size (equal for every size).
EVAL_BATCH_ROWS = 256


def _mix(parts: list[tuple[Any, Any, str | None]], max_train_samples: int | None,
         max_eval_samples: int | None) -> tuple[Any, Any, str | None]:
    """(train, evaluation, evaluation split name) of same-size parts, concatenated by rows and capped."""
    from datasets import concatenate_datasets

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
    return train, evaluation, chosen_eval


def _load_sizes(dataset: str, model_kind: str, train_split: str, eval_split: str) -> dict[str, tuple[Any, Any, str | None]]:
    """{size: (train, evaluation or None, evaluation split name)} of a multi-size dataset, each size checked."""
    try:
        by_size = load_snake_dataset(dataset, required=REQUIRED_COLUMNS[model_kind], board_size="all")
    except (FileNotFoundError, ValueError, OSError) as error:
        raise TrainingSetupError(f"--dataset {dataset}: cannot load it ({error})") from error
    return {size: _checked_splits(dataset_dict, f"--dataset {dataset} size {size}", model_kind, train_split, eval_split)
            for size, dataset_dict in by_size.items()}


def _checked_splits(dataset_dict: Any, label: str, model_kind: str, train_split: str,
                    eval_split: str) -> tuple[Any, Any, str | None]:
    """(train, evaluation or None, evaluation split name) of one DatasetDict; every problem names `label`."""
    splits = list(dataset_dict.keys()) if hasattr(dataset_dict, "keys") else []
    if train_split not in splits:
        raise TrainingSetupError(f"{label}: no {train_split!r} split (found {splits})")
    train = dataset_dict[train_split]
    try:
        check_columns(train, REQUIRED_COLUMNS[model_kind])
    except ValueError as error:
        raise TrainingSetupError(f"{label}: {error}") from error
    if len(train) == 0:
        raise TrainingSetupError(f"{label}: the {train_split!r} split is empty")
    chosen_eval = next((name for name in (eval_split, "test") if name in splits and name != train_split
                        and len(dataset_dict[name])), None)
    return train, (dataset_dict[chosen_eval] if chosen_eval else None), chosen_eval


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
    try:
        dataset_dict = load_snake_dataset(dataset, required=REQUIRED_COLUMNS[model_kind])
    except (FileNotFoundError, ValueError, OSError) as error:
        raise TrainingSetupError(f"--dataset {dataset}: cannot load it ({error})") from error
    return _checked_splits(dataset_dict, f"--dataset {dataset}", model_kind, train_split, eval_split)


def _board_sizes_of(dataset: str) -> list[str] | None:
    try:
        return dataset_board_sizes(dataset)
    except (FileNotFoundError, ValueError, OSError) as error:
        raise TrainingSetupError(f"--dataset {dataset}: cannot load it ({error})") from error


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


# ---- several board sizes: one size per batch ----------------------------------------------------------------


class MultiSizeSplit:
    """One split holding several board sizes, `{size name: datasets.Dataset}`, in size order.

    It answers what the loop asks of a split (`column_names`, `len`, `split[i]`, `features`) with rows
    numbered size by size, so the rest of the training code does not care how many sizes there are;
    the loaders below keep every batch within one size (boards of one shape stack into one tensor).
    """

    def __init__(self, by_size: dict[str, Any]) -> None:
        if not by_size:
            raise TrainingSetupError("a multi-size split needs at least one board size")
        self.by_size = {name: by_size[name] for name in sort_sizes(by_size)}
        self.names = list(self.by_size)
        lengths = [len(split) for split in self.by_size.values()]
        self.offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)

    @property
    def column_names(self) -> list[str]:
        columns = [set(split.column_names) for split in self.by_size.values()]
        first = next(iter(self.by_size.values())).column_names
        return [name for name in first if all(name in c for c in columns)]

    @property
    def features(self) -> Any:
        return next(iter(self.by_size.values())).features

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> dict[str, Any]:
        bucket = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.by_size[self.names[bucket]][int(index - self.offsets[bucket])]

    def rows_per_size(self) -> dict[str, int]:
        return {name: len(split) for name, split in self.by_size.items()}


class MultiSizeTorchDataset(torch.utils.data.Dataset):
    """Per-size `SnakeTorchDataset`s behind one index space (size by size); a batch must stay in one size."""

    def __init__(self, split: MultiSizeSplit, columns: Sequence[str] | None = None) -> None:
        self.parts = [as_torch_dataset(dataset, columns) for dataset in split.by_size.values()]
        self.offsets = split.offsets

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _bucket(self, index: int) -> int:
        return int(np.searchsorted(self.offsets, index, side="right") - 1)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        bucket = self._bucket(index)
        return self.parts[bucket][int(index - self.offsets[bucket])]

    def __getitems__(self, indices: list[int]) -> dict[str, np.ndarray]:
        rows = np.asarray(indices, dtype=np.int64)
        bucket = self._bucket(int(rows[0]))
        local = rows - self.offsets[bucket]
        if local.min() < 0 or local.max() >= len(self.parts[bucket]):
            raise RuntimeError("a batch mixes board sizes; use SizeBucketBatchSampler")
        return self.parts[bucket].__getitems__(local.tolist())


class SizeBucketBatchSampler(Sampler[list[int]]):
    """Batches of one board size each, in an order that is a function of (seed, epoch) only.

    Each epoch, size s contributes `batches_per_size[s]` batches: by default its rows // batch_size (every
    row about once per epoch), or with `weights` that share of the same total number of batches (a size
    whose share exceeds its rows cycles through fresh permutations of them). Then the batches of all
    sizes are shuffled together, so an optimizer step sees one size and consecutive steps mix sizes.
    Accelerate shards it across processes batch by batch (each process still gets one-size batches).
    """

    def __init__(self, rows_per_size: Sequence[int], batch_size: int, seed: int,
                 weights: Sequence[float] | None = None, shuffle: bool = True) -> None:
        self.rows_per_size = [int(n) for n in rows_per_size]
        self.offsets = np.concatenate([[0], np.cumsum(self.rows_per_size)]).astype(np.int64)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = False
        self.epoch = 0
        self.sampler = self  # Accelerate's DataLoaderShard.set_epoch reaches a sharded sampler through `.sampler`
        self.batches_per_size = self._batches_per_size(weights)

    def _batches_per_size(self, weights: Sequence[float] | None) -> list[int]:
        natural = [max(1, n // self.batch_size) if n else 0 for n in self.rows_per_size]
        if weights is None:
            return natural
        if len(weights) != len(self.rows_per_size) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise TrainingSetupError(f"size weights must be one non-negative number per size, not all zero, got {list(weights)}")
        total = sum(natural)
        return [max(1, round(total * w / sum(weights))) if w > 0 and n else 0
                for w, n in zip(weights, self.rows_per_size)]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return sum(self.batches_per_size)

    def _rows(self, bucket: int, count: int, generator: torch.Generator) -> np.ndarray:
        size = self.rows_per_size[bucket]
        if not self.shuffle:
            return np.arange(min(count, size))
        pieces, have = [], 0
        while have < count:
            pieces.append(torch.randperm(size, generator=generator).numpy())
            have += size
        return np.concatenate(pieces)[:count]

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + 7919 * self.epoch)
        batches = []
        for bucket, count in enumerate(self.batches_per_size):
            size = self.rows_per_size[bucket]
            per_batch = min(self.batch_size, size)
            rows = self._rows(bucket, count * per_batch, generator) + self.offsets[bucket]
            batches += [rows[i * per_batch:(i + 1) * per_batch].tolist() for i in range(count)]
        order = torch.randperm(len(batches), generator=generator).tolist() if self.shuffle else range(len(batches))
        for index in order:
            yield batches[index]


def make_multisize_train_loader(split: MultiSizeSplit, columns: list[str], batch_size: int, seed: int,
                                num_workers: int, weights: Sequence[float] | None = None):
    """Size-bucketed training loader; returns (loader, batch sampler) like `make_train_loader`."""
    sampler = SizeBucketBatchSampler(list(split.rows_per_size().values()), batch_size, seed, weights)
    loader = DataLoader(MultiSizeTorchDataset(split, columns), batch_sampler=sampler, collate_fn=collate_rows,
                        num_workers=num_workers)
    return loader, sampler


def make_multisize_eval_loader(split: MultiSizeSplit, batch_size: int, num_workers: int) -> DataLoader:
    """Every size's rows in one-size batches of one common length, so that `gather_for_metrics` across
    processes stacks equal shapes (the split was cut to equal multiples of it by `equal_eval_rows`)."""
    columns = [name for name in EVAL_COLUMNS if name in split.column_names]
    rows = list(split.rows_per_size().values())
    # Batches must tile every size's rows exactly (equal_eval_rows cut them to whole EVAL_BATCH_ROWS batches), or
    # gather_for_metrics' padding count would be off; the training batch size does not apply.
    per_batch = min(EVAL_BATCH_ROWS, min(rows))
    sampler = SizeBucketBatchSampler(rows, per_batch, seed=0, shuffle=False)
    return DataLoader(MultiSizeTorchDataset(split, columns), batch_sampler=sampler, collate_fn=collate_rows,
                      num_workers=num_workers)


def equal_eval_rows(by_size: dict[str, Any], max_rows: int | None, batch_size: int) -> dict[str, Any]:
    """The first rows of each size's eval split, the same whole number of batches for every size."""
    smallest = min(len(split) for split in by_size.values())
    per_size = smallest if max_rows is None else min(smallest, max(1, max_rows // len(by_size)))
    per_batch = min(batch_size, per_size)
    per_size = (per_size // per_batch) * per_batch
    return {name: split.select(range(per_size)) for name, split in by_size.items()}


def size_weights_for(split: Any, weights: Sequence[tuple[tuple[int, int], float]]) -> list[float] | None:
    """`--size-weights HxW=W ...` as one weight per size of `split` (unnamed sizes weigh 1); None when none given."""
    if not weights:
        return None
    given = {size_name(*size): float(weight) for size, weight in weights}
    unknown = sorted(set(given) - set(split.names))
    if unknown:
        raise TrainingSetupError(f"--size-weights names size(s) {', '.join(unknown)} that the dataset lacks "
                                 f"(it has {', '.join(split.names)})")
    return [given.get(name, 1.0) for name in split.names]
