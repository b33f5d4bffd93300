"""The dataset card: README.md with YAML metadata (configs, features, splits) via huggingface_hub.

The YAML `configs` entry points `datasets.load_dataset(folder_or_repo)` at `data/{split}-*.parquet`;
the body reports what a user checks before training on it: split sizes, action and event
distributions, the snake-length histogram, and the exact command and seed that built it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from datasets import Features
from huggingface_hub import DatasetCard, DatasetCardData

from snake_world_eqm.data.features import ACTION_NAMES, EVENT_NAMES, SOURCE_NAMES, SPLITS
from snake_world_eqm.data.generate import GenerationConfig

LENGTH_BIN = 5  # snake lengths are histogrammed in bins of this width
# How the card names each expert (snake_world_eqm.game.expert documents them).
EXPERT_DESCRIPTIONS = {
    "fill": "`fill` (board-filling: the A* path while the snake is short, then safe shortcuts along a "
    "Hamiltonian cycle, which cannot die once the snake is in cycle order)",
    "astar": "`astar` (A* path with a virtual-snake safety check, else tail following)",
    "heuristic": "`heuristic` (greedy with a safety check)",
    "cycle": "`cycle` (the plain Hamiltonian cycle, no shortcuts)",
    "route": "`route` (safe shortcuts along one fixed Hamiltonian cycle from the first move, no A* phase: "
    "the fill expert made imitable)",
}


@dataclass
class DatasetStats:
    """Counts gathered chunk by chunk while writing, so the card never re-reads the data."""

    rows: Counter = field(default_factory=Counter)  # per split
    num_bytes: Counter = field(default_factory=Counter)  # per split, Arrow in-memory size
    file_bytes: int = 0  # parquet bytes on disk, set once the files are closed
    episodes: dict[str, set] = field(default_factory=dict)  # per split
    actions: Counter = field(default_factory=Counter)
    perturbed: int = 0
    events: Counter = field(default_factory=Counter)
    lengths: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)  # who played the steps (SOURCE_NAMES index)

    def add(self, split: str, rows: dict[str, np.ndarray], num_bytes: int) -> None:
        self.rows[split] += len(rows["action"])
        self.num_bytes[split] += num_bytes
        self.episodes.setdefault(split, set()).update(np.unique(rows["episode_id"]).tolist())
        self.actions.update(dict(enumerate(np.bincount(rows["action"], minlength=len(ACTION_NAMES)).tolist())))
        self.perturbed += int((rows["action"] != rows["taken_action"]).sum())
        self.events.update(dict(enumerate(np.bincount(rows["event"], minlength=len(EVENT_NAMES)).tolist())))
        bins, counts = np.unique(rows["snake_length"] // LENGTH_BIN, return_counts=True)
        self.lengths.update(dict(zip(bins.tolist(), counts.tolist())))
        if "source" in rows:
            self.sources.update(dict(enumerate(np.bincount(rows["source"], minlength=len(SOURCE_NAMES)).tolist())))

    def merge(self, other: DatasetStats) -> None:
        """Add another chunk's counts (chunks never share an episode)."""
        self.rows.update(other.rows)
        self.num_bytes.update(other.num_bytes)
        for split, episodes in other.episodes.items():
            self.episodes.setdefault(split, set()).update(episodes)
        self.actions.update(other.actions)
        self.perturbed += other.perturbed
        self.events.update(other.events)
        self.lengths.update(other.lengths)
        self.sources.update(other.sources)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def size_category(num_rows: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if num_rows < limit:
            return label
    return "10M<n<100M"


def markdown_table(header: tuple[str, ...], rows: list[tuple]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def percent_of(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else "n/a"


def dataset_info(dataset_features: Features, stats: DatasetStats, splits: list[str], whole: bool) -> dict:
    # download_size is part of the key of `load_dataset`'s processed cache: a rebuilt folder with
    # other files must not be served from the old cache.
    info: dict = {"features": dataset_features._to_yaml_list(), "download_size": stats.file_bytes}
    # `load_dataset` verifies declared split sizes; a shard's sizes would fail once shards are merged.
    if whole:
        info["splits"] = [{"name": name, "num_bytes": stats.num_bytes[name], "num_examples": stats.rows[name]} for name in splits]
    return info


def build_card_data(
    config: GenerationConfig, dataset_features: Features, stats: DatasetStats, command: str, fingerprint: str, shard: tuple[int, int]
) -> DatasetCardData:
    splits = [name for name in SPLITS if stats.rows[name]]
    return DatasetCardData(
        license="apache-2.0",
        pretty_name=f"Snake world-model transitions ({config.height}x{config.width})",
        task_categories=["reinforcement-learning"],
        tags=["snake", "world-model", "equilibrium-matching", "synthetic"],
        size_categories=[size_category(stats.total_rows)],
        configs=[
            {"config_name": "default", "data_files": [{"split": name, "path": f"data/{name}-*"} for name in splits]}
        ],
        dataset_info=dataset_info(dataset_features, stats, splits, whole=shard[1] == 1),
        snake_world_eqm={
            "generation": config.to_dict(),
            "command": command,
            "fingerprint": fingerprint,
            "shard_index": shard[0],
            "num_shards": shard[1],
        },
    )


def build_card(
    config: GenerationConfig, dataset_features: Features, stats: DatasetStats, command: str, fingerprint: str, shard: tuple[int, int] = (0, 1)
) -> DatasetCard:
    """The README.md card of a built dataset."""
    data = build_card_data(config, dataset_features, stats, command, fingerprint, shard)
    total = stats.total_rows
    split_table = markdown_table(
        ("split", "rows", "episodes"), [(name, stats.rows[name], len(stats.episodes.get(name, ()))) for name in SPLITS if stats.rows[name]]
    )
    action_table = markdown_table(
        ("action", "rows", "share"), [(name, stats.actions[i], percent_of(stats.actions[i], total)) for i, name in enumerate(ACTION_NAMES)]
    )
    event_table = markdown_table(
        ("event of the expert action", "rows", "share"),
        [(name, stats.events[i], percent_of(stats.events[i], total)) for i, name in enumerate(EVENT_NAMES)],
    )
    length_table = markdown_table(
        ("snake length", "rows", "share"),
        [(f"{b * LENGTH_BIN}-{b * LENGTH_BIN + LENGTH_BIN - 1}", n, percent_of(n, total)) for b, n in sorted(stats.lengths.items())],
    )
    feature_table = markdown_table(("column", "feature"), [(f"`{name}`", f"`{feature!r}`") for name, feature in dataset_features.items()])
    expert = EXPERT_DESCRIPTIONS.get(config.expert, config.expert)
    shard_note = "" if shard[1] == 1 else f"\nThis folder holds shard {shard[0]} of {shard[1]} (seed-range sharding).\n"
    policy_note = "" if config.policy_name is None else (
        f"\n**On-policy (DAgger) data.** Steps were played by the policy `{config.policy_name}` and, with "
        f"probability beta = {config.beta}, by the expert; every visited state is labelled with the expert's "
        f"action. `source` says who played each step: "
        + ", ".join(f"{name} {stats.sources.get(i, 0):,}" for i, name in enumerate(SOURCE_NAMES)) + ".\n")
    body = f"""
# Snake world-model transitions ({config.height}x{config.width})

Transitions of Snake games played by the {expert} expert, built by `snake-world-eqm`'s
`dataset_builder`, for training a world model that predicts the next board and the action jointly
(Equilibrium Matching). Each row is one step: the board, the expert's action (the label), the
successor of that action, and the successors of **all four** actions ("what if"), with rewards,
terminated flags and events. With probability {config.perturb_prob} the episode took a random
non-fatal action instead of the expert's (`taken_action`), so states off the expert's path are
covered; the label stays the expert's. Terminal transitions carry the all-empty terminal board.
Splits are by episode, never by row.{" Rows are augmented with the 8 symmetries of the square board (`symmetry` 0-7); the copies of an episode stay in its split." if config.augment else ""}
{shard_note}{policy_note}
```python
from datasets import load_dataset
ds = load_dataset("REPO_ID_OR_FOLDER")
from snake_world_eqm.data import load_snake_dataset, collate
```

Boards are `int8` cell codes: 0 empty, 1 food, 2 head of a length-1 snake, 3-6 head whose next
segment lies up/right/down/left, 7-10 body segment pointing to the next segment toward the tail
(up/right/down/left), 11 tail. Actions are absolute: 0 up, 1 right, 2 down, 3 left.

## Splits

{split_table}

Rows: {total:,}; perturbed steps (taken action differs from the label): {stats.perturbed:,} ({percent_of(stats.perturbed, total)}).

## Action distribution (label)

{action_table}

## Events

{event_table}

## Snake length histogram

{length_table}

## Features

{feature_table}

## How it was built

```bash
{command}
```

Seed {config.seed}; fingerprint (SHA-256 of the parquet files) `{fingerprint}`.
The same arguments and seed give the same bytes, whatever `--num-proc`.
Check it with `python -m dataset_builder validate FOLDER_OR_REPO` (re-simulates every row and action).
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n{body}")
