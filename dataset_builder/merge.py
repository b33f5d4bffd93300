"""Merge the folders of a sharded build (`--shard-index I --num-shards N`, one per machine) into one dataset.

Each shard writes exactly the whole build's files of its contiguous range of seeded chunks
(`snake_world_eqm.data.generate.shard_chunks`), so the data is merged by copying. What a copy alone
would get wrong is the card: a shard's card describes that shard and declares no split sizes. This
module checks that the folders are the N shards of one build, copies their `data/*.parquet` into a
new folder (staged and published atomically, as a build is: `builder.staged_output`), recomputes
the statistics from the files, and writes the whole dataset's card, equal to the card of a
one-machine build with the same arguments, except the command it names::

    python -m dataset_builder merge shard0 shard1 shard2 --output snake_world_dataset

Every refusal (not a dataset of this tool, differing generation settings or shard counts, a missing
or repeated shard, a file in two shards or in the wrong shard, files that do not match their card's
fingerprint, a whole build, a multi-size build) is a `ValueError` raised before anything is written.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import pyarrow.parquet as pq
from datasets import Dataset
from huggingface_hub import DatasetCard
from tqdm.auto import tqdm

from snake_world_eqm.data.features import SPLITS, features
from snake_world_eqm.data.generate import GenerationConfig, rows_to_table, shard_chunks
from snake_world_eqm.data.loading import to_numpy_columns

from .builder import BuildResult, files_fingerprint, staged_output
from .card import DatasetStats, build_card

# What `builder.chunk_file_name` writes: {split}-{chunk:05d}-of-{num_chunks:05d}.parquet
_FILE_NAME = re.compile(rf"({'|'.join(SPLITS)})-(\d{{5}})-of-(\d{{5}})\.parquet")
_CARD_FIELDS = ("generation", "shard_index", "num_shards")


@dataclass
class Shard:
    """One shard folder as its card describes it."""

    folder: Path
    generation: dict
    shard_index: int
    num_shards: int
    command: str
    fingerprint: str
    files: list[Path]  # data/*.parquet, sorted by name


def config_from_generation(generation: dict) -> GenerationConfig:
    """The `GenerationConfig` whose `to_dict()` a card's `snake_world_eqm.generation` holds (ValueError if none)."""
    known = {field.name for field in fields(GenerationConfig)} - {"policy", "extra"}
    unknown = sorted(set(generation) - known)
    if unknown:
        raise ValueError(f"unknown generation field(s) {', '.join(unknown)} (built by another version of this tool?)")
    values = dict(generation)
    if "split_fractions" in values:
        values["split_fractions"] = tuple(values["split_fractions"])
    return GenerationConfig(**values)


def read_shard(folder: str | os.PathLike) -> Shard:
    """Read one shard folder's card; ValueError naming the folder if it is not a shard built by this tool."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ValueError(f"{folder} is not a folder")
    if not (path / "README.md").is_file():
        raise ValueError(f"{folder} is not a dataset built by dataset_builder (no README.md card)")
    if not (path / "README.md").read_text(encoding="utf-8", errors="replace").startswith("---"):
        raise ValueError(f"{folder} is not a dataset built by dataset_builder (its README.md has no YAML metadata)")
    try:
        meta = DatasetCard.load(path / "README.md").data.to_dict().get("snake_world_eqm")
    except Exception as error:  # a README.md that is no card: huggingface_hub's errors vary by version
        raise ValueError(f"{folder} is not a dataset built by dataset_builder (its README.md card: {error})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{folder} is not a dataset built by dataset_builder (its card has no snake_world_eqm field)")
    if "board_sizes" in meta:
        raise ValueError(f"{folder} is a multi-size dataset (--board-sizes); those are built whole, never in shards")
    missing = [name for name in _CARD_FIELDS if name not in meta]
    if missing or not isinstance(meta["generation"], dict):
        raise ValueError(f"{folder} is not a dataset built by dataset_builder (its card lacks snake_world_eqm."
                         f"{', '.join(missing) or 'generation'})")
    if meta["num_shards"] == 1:
        raise ValueError(f"{folder} is a whole (unsharded) build, not a shard; it needs no merge")
    files = sorted((path / "data").glob("*.parquet")) if (path / "data").is_dir() else []
    if not files:
        raise ValueError(f"{folder} is not a dataset built by dataset_builder (no data/*.parquet files)")
    if not all(isinstance(meta[name], int) and not isinstance(meta[name], bool) for name in ("shard_index", "num_shards")):
        raise ValueError(f"{folder}: its card's shard_index / num_shards are not integers")
    return Shard(path, meta["generation"], meta["shard_index"], meta["num_shards"],
                 str(meta.get("command") or ""), str(meta.get("fingerprint") or ""), files)


def _differing_fields(shards: list[Shard]) -> list[str]:
    names = sorted({name for shard in shards for name in shard.generation})
    return [name for name in names if len({repr(shard.generation.get(name)) for shard in shards}) > 1]


def _values_by_folder(shards: list[Shard], name: str) -> str:
    """"seed 5 (a, c) vs 6 (b)": each value of one generation field and the folders that hold it."""
    folders: dict[str, list[str]] = {}
    for shard in shards:
        folders.setdefault(repr(shard.generation.get(name)), []).append(str(shard.folder))
    return f"{name} " + " vs ".join(f"{value} ({', '.join(names)})" for value, names in folders.items())


def check_shards(shards: list[Shard]) -> GenerationConfig:
    """The generation config of a complete, consistent set of shards, sorted by index in place; else ValueError."""
    differing = _differing_fields(shards)
    if differing:
        raise ValueError("the shards were built with different generation settings: "
                         + "; ".join(_values_by_folder(shards, name) for name in differing))
    counts = sorted({shard.num_shards for shard in shards})
    if len(counts) > 1:
        raise ValueError("the shards come from builds with different --num-shards ("
                         + ", ".join(f"{shard.num_shards} in {shard.folder}" for shard in shards) + ")")
    num_shards = counts[0]
    seen: dict[int, Path] = {}
    for shard in shards:
        if not 0 <= shard.shard_index < num_shards:
            raise ValueError(f"{shard.folder} says it is shard {shard.shard_index} of {num_shards}")
        if shard.shard_index in seen:
            raise ValueError(f"shard {shard.shard_index} of {num_shards} is given twice: "
                             f"{seen[shard.shard_index]} and {shard.folder}")
        seen[shard.shard_index] = shard.folder
    missing = [index for index in range(num_shards) if index not in seen]
    if missing:
        raise ValueError(f"{'shards' if len(missing) > 1 else 'shard'} {', '.join(map(str, missing))} of {num_shards} "
                         f"{'are' if len(missing) > 1 else 'is'} missing (given: {', '.join(map(str, sorted(seen)))})")
    shards.sort(key=lambda shard: shard.shard_index)
    try:
        config = config_from_generation(shards[0].generation)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{shards[0].folder}: its card's generation settings are not valid: {error}") from None
    _check_files(shards, config)
    return config


def _check_files(shards: list[Shard], config: GenerationConfig) -> None:
    """Every file is in one shard only, is one of its shard's chunks, has this version's columns, and each
    shard's files are those its card's fingerprint was computed over (a changed or half-copied folder fails)."""
    owner: dict[str, Path] = {}
    for shard in shards:
        for file in shard.files:
            if file.name in owner:
                raise ValueError(f"data file {file.name} is in two shards: {owner[file.name]} and {shard.folder}")
            owner[file.name] = shard.folder
    expected_schema = features(config.height, config.width).arrow_schema.remove_metadata()
    for shard in shards:
        chunks = shard_chunks(config, shard.shard_index, shard.num_shards)
        for file in shard.files:
            match = _FILE_NAME.fullmatch(file.name)
            if not match or int(match[3]) != config.num_chunks or int(match[2]) not in chunks:
                raise ValueError(f"{file} is not a file of shard {shard.shard_index} of {shard.num_shards} (chunks "
                                 f"{chunks.start}-{chunks.stop - 1} of {config.num_chunks}, named split-CHUNK-of-"
                                 f"{config.num_chunks:05d}.parquet)")
            if not pq.read_schema(file).remove_metadata().equals(expected_schema):
                raise ValueError(f"{file} does not have this version's columns and types (built by another version?)")
        if files_fingerprint(shard.folder) != shard.fingerprint:
            raise ValueError(f"{shard.folder}: its data files do not match the fingerprint in its card "
                             "(changed since the build, or copied incompletely)")


def _chunk_order(file: Path) -> tuple[int, int]:
    """The order in which a build adds its files' statistics: by chunk, then by split."""
    match = _FILE_NAME.fullmatch(file.name)
    return int(match[2]), SPLITS.index(match[1])


def file_stats(file: Path, config: GenerationConfig) -> DatasetStats:
    """The statistics a build gathers while writing `file`, recomputed from the file.

    `num_bytes` is the Arrow size of the table the builder wrote (`rows_to_table` of the rows), rebuilt from
    the rows: the table that `pq.read_table` returns also carries all-valid null bitmaps (32 bytes per int
    column of 250 rows) that the builder's table never had, so its `nbytes` would be larger."""
    rows = to_numpy_columns(Dataset(pq.read_table(file), fingerprint=file.name))  # not hashed: 40% of a merge
    stats = DatasetStats()
    stats.add(_FILE_NAME.fullmatch(file.name)[1], rows, rows_to_table(rows, features(config.height, config.width)).nbytes)
    return stats


def merge_shards(
    folders: Sequence[str | os.PathLike],
    output: str | os.PathLike,
    *,
    overwrite: bool = False,
    progress: bool = True,
    command: str = "",
) -> BuildResult:
    """Merge the shard folders of one sharded build into the dataset folder `output` (see the module docstring).

    The card names the shards' build commands and then `command` (the merge); everything else in it is what a
    one-machine build with the same arguments writes."""
    if not folders:
        raise ValueError("no shard folders given")
    shards = [read_shard(folder) for folder in folders]
    config = check_shards(shards)
    files = sorted((file for shard in shards for file in shard.files), key=_chunk_order)
    card_command = "\n".join([shard.command for shard in shards if shard.command] + ([command] if command else []))
    with staged_output(output, overwrite, tuple(shard.folder for shard in shards)) as (staging, destination):
        (staging / "data").mkdir()
        stats = DatasetStats()
        for file in tqdm(files, desc="merging shards", unit="file", disable=not progress):
            copy = staging / "data" / file.name
            shutil.copyfile(file, copy)
            stats.merge(file_stats(copy, config))  # from the copy: the card describes what was written
        stats.file_bytes = sum(file.stat().st_size for file in (staging / "data").glob("*.parquet"))
        fingerprint = files_fingerprint(staging)
        build_card(config, features(config.height, config.width), stats, card_command, fingerprint,
                   (0, 1)).save(staging / "README.md")
    return BuildResult(destination, stats, fingerprint)
