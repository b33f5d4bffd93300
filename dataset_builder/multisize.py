"""One dataset folder holding several board sizes, one `datasets` config per size.

`Array2D` boards have a fixed shape per config, so each size is its own config, named "HxW"::

    OUTPUT/README.md                         card: YAML `configs` (one per size) + per-config `dataset_info`
    OUTPUT/data/{H}x{W}/{split}-{chunk:05d}-of-{num_chunks:05d}.parquet

`datasets.load_dataset(OUTPUT, "10x10")` reads one size natively, and
`snake_world_eqm.data.load_snake_dataset(OUTPUT, board_size="10x10" | "all")` one size or all.
Each size is generated exactly as a single-size build with the same arguments would generate it
(same seed, same chunks), so its files are byte for byte that build's `data/` files.
"""

from __future__ import annotations

import functools
import hashlib
import os
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq
from huggingface_hub import DatasetCard, DatasetCardData

from snake_world_eqm.data.features import SPLITS, features
from snake_world_eqm.data.generate import GenerationConfig, chunk_rows, map_chunks, rows_to_table, split_rows
from snake_world_eqm.game.state import size_name, sort_sizes

from .builder import PARQUET_OPTIONS, ROW_GROUP_SIZE, chunk_file_name, staged_output
from .card import EXPERT_DESCRIPTIONS, DatasetStats, dataset_info, markdown_table, percent_of, size_category


@dataclass
class MultiSizeBuildResult:
    path: Path
    stats: dict[str, DatasetStats]  # per size name
    fingerprint: str

    @property
    def total_rows(self) -> int:
        return sum(stats.total_rows for stats in self.stats.values())


def rows_per_size(
    sizes: list[tuple[int, int]], num_samples: int, overrides: dict[tuple[int, int], int] | None = None
) -> dict[tuple[int, int], int]:
    """Rows (before augmentation) of each size: `num_samples` shared equally (balanced by steps, not by
    games: a 14x14 game lasts ~5x a 6x6 one), except the sizes `overrides` sets explicitly."""
    if not sizes:
        raise ValueError("no board sizes given")
    if len(set(sizes)) != len(sizes):
        raise ValueError(f"board sizes repeat: {', '.join(size_name(*s) for s in sizes)}")
    overrides = dict(overrides or {})
    unknown = [size_name(*s) for s in overrides if s not in sizes]
    if unknown:
        raise ValueError(f"--rows-per-size names size(s) {', '.join(unknown)} that are not in --board-sizes")
    share = num_samples // len(sizes)
    if share < 1 and len(overrides) < len(sizes):
        raise ValueError(f"--num-samples {num_samples} is fewer than one row for each of the {len(sizes)} sizes")
    return {size: overrides.get(size, share) for size in sizes}


def size_configs(base: GenerationConfig, rows: dict[tuple[int, int], int]) -> dict[str, GenerationConfig]:
    """One GenerationConfig per size: the base config with that size and row count (ValueError names a bad one)."""
    configs = {}
    for (height, width), num_rows in rows.items():
        name = size_name(height, width)
        try:
            configs[name] = replace(base, height=height, width=width, num_samples=num_rows)
        except ValueError as error:
            raise ValueError(f"board size {name}: {error}") from None
    return configs


def _write_size_chunk(folder: Path, config: GenerationConfig, chunk_index: int, on_rows) -> DatasetStats:
    """Generate one chunk of one size into `folder` (= data/HxW), as the single-size builder does."""
    dataset_features = features(config.height, config.width)
    stats = DatasetStats()
    for split, split_columns in split_rows(chunk_rows(config, chunk_index, on_rows)).items():
        table = rows_to_table(split_columns, dataset_features)
        pq.write_table(table, folder / chunk_file_name(split, chunk_index, config.num_chunks),
                       row_group_size=ROW_GROUP_SIZE, **PARQUET_OPTIONS)
        stats.add(split, split_columns, table.nbytes)
    return stats


def multisize_fingerprint(folder: Path) -> str:
    """SHA-256 over the relative paths and bytes of every parquet file under data/."""
    digest = hashlib.sha256()
    for file in sorted((folder / "data").rglob("*.parquet")):
        digest.update(file.relative_to(folder).as_posix().encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def build_multisize_dataset(
    configs: dict[str, GenerationConfig],
    output: str | os.PathLike,
    *,
    num_proc: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
) -> MultiSizeBuildResult:
    """Generate every size into the Hub-shaped folder `output`, staged and renamed into place at the end
    (an interruption never leaves a half-written dataset)."""
    with staged_output(output, overwrite, (next(iter(configs.values())).policy_name,)) as (staging, destination):
        all_stats: dict[str, DatasetStats] = {}
        for name in sort_sizes(configs):
            folder = staging / "data" / name
            folder.mkdir(parents=True)
            stats = DatasetStats()
            writer = functools.partial(_write_size_chunk, folder)
            for chunk_stats in map_chunks(writer, configs[name], num_proc, progress=progress):
                stats.merge(chunk_stats)
            stats.file_bytes = sum(file.stat().st_size for file in folder.glob("*.parquet"))
            all_stats[name] = stats
        fingerprint = multisize_fingerprint(staging)
        build_multisize_card(configs, all_stats, command, fingerprint).save(staging / "README.md")
    return MultiSizeBuildResult(destination, all_stats, fingerprint)


def _death_rows(stats: DatasetStats) -> int:
    return sum(stats.events[i] for i in (2, 3, 5))  # wall, self, reverse (EVENT_NAMES)


def build_multisize_card(
    configs: dict[str, GenerationConfig], stats: dict[str, DatasetStats], command: str, fingerprint: str
) -> DatasetCard:
    """README.md: one YAML config (and dataset_info entry) per size; the body lists sizes and rows per size."""
    names = sort_sizes(configs)
    base = configs[names[0]]
    total = sum(stats[name].total_rows for name in names)
    config_entries, info_entries = [], []
    for name in names:
        splits = [split for split in SPLITS if stats[name].rows[split]]
        config_entries.append({"config_name": name, "data_files": [{"split": s, "path": f"data/{name}/{s}-*"} for s in splits]})
        height, width = configs[name].height, configs[name].width
        info_entries.append({"config_name": name, **dataset_info(features(height, width), stats[name], splits, whole=True)})
    data = DatasetCardData(
        license="apache-2.0",
        pretty_name=f"Snake world-model transitions ({len(names)} board sizes)",
        task_categories=["reinforcement-learning"],
        tags=["snake", "world-model", "equilibrium-matching", "synthetic"],
        size_categories=[size_category(total)],
        configs=config_entries,
        dataset_info=info_entries,
        snake_world_eqm={
            "board_sizes": names,
            "rows_per_size": {name: configs[name].num_samples for name in names},
            "generation": {name: configs[name].to_dict() for name in names},
            "command": command,
            "fingerprint": fingerprint,
        },
    )
    size_table = markdown_table(
        ("size (config)", "cells", "train rows", "validation rows", "test rows", "episodes", "perturbed", "deaths (expert action)"),
        [(f"`{name}`", configs[name].height * configs[name].width, *(stats[name].rows[s] for s in SPLITS),
          sum(len(e) for e in stats[name].episodes.values()),
          percent_of(stats[name].perturbed, stats[name].total_rows), percent_of(_death_rows(stats[name]), stats[name].total_rows))
         for name in names],
    )
    expert = EXPERT_DESCRIPTIONS.get(base.expert, base.expert)  # named as the single-size card names it
    body = f"""
# Snake world-model transitions ({len(names)} board sizes)

Transitions of Snake games played by the {expert} expert on **{", ".join(names)}** boards, built by
`snake-world-eqm`'s `dataset_builder`. Each size is its own config (board columns are `Array2D` of a
fixed shape per config) with `train` / `validation` / `test` splits by episode. Rows per size are
balanced by steps (rows), not by games, unless `--rows-per-size` said otherwise. Columns are those of
the single-size dataset: the board, the expert's action, the successor of that action, the successors
of all four actions ("what if"), rewards, terminated flags and events.

```python
from datasets import load_dataset
ds = load_dataset("REPO_ID_OR_FOLDER", "{names[0]}")          # one size
from snake_world_eqm.data import load_snake_dataset
by_size = load_snake_dataset("REPO_ID_OR_FOLDER", board_size="all")   # {{"{names[0]}": DatasetDict, ...}}
```

## Sizes and rows per size

{size_table}

Rows: {total:,} in all. Perturbation probability {base.perturb_prob}; episode cap 20 x cells and a cut after
2 x cells steps without food unless set otherwise (see `snake_world_eqm.generation` in the YAML).

## How it was built

```bash
{command}
```

Seed {base.seed} for every size; fingerprint (SHA-256 of the parquet files and their paths) `{fingerprint}`.
Check it with `python -m dataset_builder validate FOLDER_OR_REPO` (re-simulates every row of every size).
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")
