"""Expert rollouts → transition rows (numpy) → a `DatasetDict` split by episode.

Generation is organised in *chunks*: chunk `c` plays a fixed number of rows with its own random
generator seeded by `(seed, c)`, stepping many games at once with the batched engine and the
batched expert. Chunks depend only on the configuration, never on how many processes or machines
produce them, so `num_proc` and sharding (`shard_index`/`num_shards` = a contiguous range of
chunks) do not change a single byte of the result.

Each step records the state, the expert's action (the label), the successors of all four actions
("what if"), and the action the episode actually took: with probability `perturb_prob` a random
non-fatal action other than the expert's, so the data covers states the expert would not enter.

On-policy data (DAgger, Ross, Gordon & Bagnell 2011): with a `policy` (a batched callable
`(B, H, W) int8 boards -> (B,) actions`, e.g. a trained model's `act_batch`), each step is played by the
expert with probability `beta` and by the policy otherwise; every visited state is still labelled with
the expert's action and all four successors, and `source` records who played it. The data layer only
receives the callable: it never imports a model.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TypeVar

import numpy as np
import pyarrow as pa
from datasets import Dataset, DatasetDict, Features
from tqdm.auto import tqdm

from ..game.batched import batched_successors
from ..game.encoding import encode_observation
from ..game.expert import expert_actions
from ..game.rules import new_game
from ..game.state import EXPERT_KINDS, MAX_BOARD_SIZE, MIN_BOARD_SIZE, NUM_ACTIONS
from ..game.symmetry import transform_action, transform_board
from ..processes import capped_workers, die_with_parent
from .features import COLUMN_DTYPES, COLUMNS, SOURCE_NAMES, SPLITS, features

NUM_SYMMETRIES = 8
_EVENT_EAT = 1  # Event.EAT
SOURCE_EXPERT, SOURCE_POLICY, SOURCE_PERTURBED = (SOURCE_NAMES.index(name) for name in ("expert", "policy", "perturbed"))
_MAX_PARALLEL_GAMES = 256

Columns = dict[str, np.ndarray]
T = TypeVar("T")


@dataclass(frozen=True)
class GenerationConfig:
    """Everything that determines the rows of a dataset (and nothing that does not, like `num_proc`)."""

    num_samples: int = 10_000  # rows before augmentation
    height: int = 10
    width: int = 10
    seed: int = 0
    expert: str = "astar"
    perturb_prob: float = 0.1
    max_episode_steps: int | None = None  # None: 20 * cells
    stall_steps: int | None = None  # steps without food before an episode is cut; None: 2 * cells
    split_fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    augment: bool = False
    rows_per_chunk: int = 200_000  # big enough for ~256 parallel games that still finish ~3 episodes each
    parallel_games: int | None = None  # None: chosen from the chunk size so episodes mostly finish
    initial_length: int = 3
    # With a value, each new episode starts from a one-cell snake with this probability (else initial_length).
    one_cell_fraction: float | None = None
    beta: float = 1.0  # with a policy: probability that the expert plays a step (the policy plays the rest)
    policy_name: str | None = None  # the policy's id (folder or repo id), for the card; None: expert only
    # The batched policy itself: not data, so not compared, printed or serialised.
    policy: Callable[[np.ndarray], np.ndarray] | None = field(default=None, compare=False, repr=False)
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise `ValueError` naming the first bad field."""
        _check(isinstance(self.num_samples, int) and self.num_samples > 0, f"num_samples must be a positive integer, got {self.num_samples!r}")
        for name in ("height", "width"):
            size = getattr(self, name)
            _check(
                isinstance(size, int) and MIN_BOARD_SIZE <= size <= MAX_BOARD_SIZE,
                f"{name} must be an integer from {MIN_BOARD_SIZE} to {MAX_BOARD_SIZE}, got {size!r}",
            )
        _check(
            isinstance(self.initial_length, int) and self.initial_length >= 1,
            f"initial_length must be a positive integer, got {self.initial_length!r}",
        )
        _check(
            self.one_cell_fraction is None or 0.0 <= self.one_cell_fraction <= 1.0,
            f"one_cell_fraction must be in [0, 1], got {self.one_cell_fraction!r}",
        )
        _check(
            self.initial_length + 1 <= self.height * self.width,
            f"a {self.height}x{self.width} board is too small for the start snake of length {self.initial_length}",
        )
        _check(self.expert in EXPERT_KINDS, f"expert must be one of {EXPERT_KINDS}, got {self.expert!r}")
        _check(0.0 <= self.perturb_prob <= 1.0, f"perturb_prob must be in [0, 1], got {self.perturb_prob!r}")
        _check(
            isinstance(self.beta, (int, float)) and not isinstance(self.beta, bool) and 0.0 <= self.beta <= 1.0,
            f"beta must be in [0, 1] (the probability that the expert plays a step), got {self.beta!r}",
        )
        _check(self.policy is None or callable(self.policy), f"policy must be a batched callable, got {self.policy!r}")
        for name in ("max_episode_steps", "stall_steps", "parallel_games"):
            value = getattr(self, name)
            _check(value is None or (isinstance(value, int) and value > 0), f"{name} must be a positive integer, got {value!r}")
        _check(self.rows_per_chunk > 0, f"rows_per_chunk must be positive, got {self.rows_per_chunk!r}")
        fractions = tuple(self.split_fractions)
        _check(
            len(fractions) == len(SPLITS) and all(f >= 0 for f in fractions) and math.isclose(sum(fractions), 1.0, abs_tol=1e-6),
            f"split_fractions must be {len(SPLITS)} non-negative numbers summing to 1 ({'/'.join(SPLITS)}), got {fractions!r}",
        )
        _check(fractions[0] > 0, "the train split fraction must be positive")
        _check(
            not self.augment or self.height == self.width,
            f"augment needs a square board (its 8 symmetries), got {self.height}x{self.width}",
        )

    @property
    def episode_step_cap(self) -> int:
        return self.max_episode_steps or 20 * self.height * self.width

    @property
    def stall_cap(self) -> int:
        return self.stall_steps or 2 * self.height * self.width

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.num_samples / self.rows_per_chunk)

    def chunk_rows(self, chunk_index: int) -> int:
        start = chunk_index * self.rows_per_chunk
        return min(self.rows_per_chunk, self.num_samples - start)

    def games_for(self, num_rows: int) -> int:
        """Games stepped in parallel: as many as keep about three episodes per game.

        More games make each engine/expert call cheaper per row; fewer keep episodes whole (the
        last episode of each game is cut when the chunk's rows are reached). A* games on 10x10
        last about 3 x cells steps (measured: mean 282, median 262 at the defaults).
        """
        if self.parallel_games is not None:
            return min(self.parallel_games, num_rows)
        expected_episode = min(self.episode_step_cap, 3 * self.height * self.width)
        return int(np.clip(num_rows // (3 * expected_episode), 1, _MAX_PARALLEL_GAMES))

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("extra")
        data.pop("policy")
        data["split_fractions"] = list(self.split_fractions)
        return data


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def shard_chunks(config: GenerationConfig, shard_index: int = 0, num_shards: int = 1) -> range:
    """The contiguous range of chunk indices that shard `shard_index` of `num_shards` generates."""
    _check(num_shards >= 1, f"num_shards must be >= 1, got {num_shards}")
    _check(0 <= shard_index < num_shards, f"shard_index must be in [0, {num_shards}), got {shard_index}")
    _check(
        num_shards <= config.num_chunks,
        f"{num_shards} shards but only {config.num_chunks} chunk(s) of {config.rows_per_chunk} rows; lower --rows-per-chunk",
    )
    return range(shard_index * config.num_chunks // num_shards, (shard_index + 1) * config.num_chunks // num_shards)


# ----------------------------------------------------------------------------------------------
# Playing one chunk


def _choose_taken_actions(expert: np.ndarray, terminated: np.ndarray, rng: np.random.Generator, prob: float) -> np.ndarray:
    """The behaviour action (`expert`: the expert's or the policy's), or with probability `prob` a random
    non-terminating other action."""
    batch = np.arange(len(expert))
    perturb = rng.random(len(expert)) < prob
    scores = rng.random((len(expert), NUM_ACTIONS))  # drawn always, so the stream never depends on the outcome
    allowed = ~terminated
    allowed[batch, expert] = False
    scores[~allowed] = -1.0
    alternative = scores.argmax(axis=1)
    return np.where(perturb & allowed.any(axis=1), alternative, expert)


def _behaviour_actions(config: GenerationConfig, obs: np.ndarray, expert: np.ndarray,
                       rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Who plays each game's step: the expert, or (with a policy, at rate 1 - beta) the policy."""
    if config.policy is None:  # no draw at all: expert-only builds keep their random stream
        return expert, np.full(len(expert), SOURCE_EXPERT, dtype=np.int64)
    expert_plays = rng.random(len(expert)) < config.beta
    # The policy (the costly part of collection) is asked only about the boards where its move is played.
    played = np.flatnonzero(~expert_plays)
    actions = expert.astype(np.int64, copy=True)
    if played.size:
        learner = np.asarray(config.policy(obs[played]), dtype=np.int64).reshape(-1)
        if learner.shape != played.shape or ((learner < 0) | (learner >= NUM_ACTIONS)).any():
            raise ValueError(f"the policy must return one action in 0..{NUM_ACTIONS - 1} per board, got {learner!r}")
        actions[played] = learner
    return actions, np.where(expert_plays, SOURCE_EXPERT, SOURCE_POLICY).astype(np.int64)


def _new_boards(config: GenerationConfig, count: int, rng: np.random.Generator) -> np.ndarray:

    lengths = np.full(count, config.initial_length)
    if config.one_cell_fraction is not None:  # drawn only then: other builds keep their random stream
        lengths = np.where(rng.random(count) < config.one_cell_fraction, 1, lengths)
    return np.stack(
        [encode_observation(new_game(config.height, config.width, rng, int(length))) for length in lengths]
    ).astype(np.int8)


class _ChunkRecorder:
    """Per-slot, per-step buffers of shape (games, steps, ...), filled one engine step at a time."""

    def __init__(self, games: int, steps: int, height: int, width: int):
        shapes = {
            "state": (height, width),
            "action": (),
            "taken_action": (),
            "next_state_per_action": (NUM_ACTIONS, height, width),
            "reward_per_action": (NUM_ACTIONS,),
            "terminated_per_action": (NUM_ACTIONS,),
            "event_per_action": (NUM_ACTIONS,),
            "step": (),
            "source": (),
            "episode_start": (),
        }
        dtypes = {**COLUMN_DTYPES, "episode_start": "bool"}
        self.buffers = {name: np.zeros((games, steps, *shape), dtype=dtypes[name]) for name, shape in shapes.items()}

    def record(self, t: int, **values: np.ndarray) -> None:
        for name, value in values.items():
            self.buffers[name][:, t] = value


def play_chunk(config: GenerationConfig, chunk_index: int, on_rows: Callable[[int], None] | None = None) -> Columns:
    """Rows of chunk `chunk_index` (all columns of `COLUMNS` plus `split`), ordered by episode then step."""

    num_rows = config.chunk_rows(chunk_index)
    rng = np.random.default_rng([config.seed, chunk_index])
    games = config.games_for(num_rows)
    quota = np.full(games, num_rows // games)
    quota[: num_rows % games] += 1
    steps = int(quota.max())
    recorder = _ChunkRecorder(games, steps, config.height, config.width)

    obs = _new_boards(config, games, rng)
    episode_step = np.zeros(games, dtype=np.int64)
    since_food = np.zeros(games, dtype=np.int64)
    starting = np.ones(games, dtype=bool)
    slots = np.arange(games)
    for t in range(steps):
        successors, rewards, events, terminated = batched_successors(obs, rng)
        expert = np.asarray(expert_actions(obs, config.expert), dtype=np.int64)
        behaviour, source = _behaviour_actions(config, obs, expert, rng)
        taken = _choose_taken_actions(behaviour, np.asarray(terminated, dtype=bool), rng, config.perturb_prob)
        source = np.where(taken != behaviour, SOURCE_PERTURBED, source)
        recorder.record(
            t, state=obs, action=expert, taken_action=taken, next_state_per_action=successors,
            reward_per_action=rewards, terminated_per_action=terminated, event_per_action=events,
            step=episode_step, source=source, episode_start=starting,
        )
        since_food = np.where(events[slots, taken] == _EVENT_EAT, 0, since_food + 1)
        episode_step += 1
        done = terminated[slots, taken] | (episode_step >= config.episode_step_cap) | (since_food >= config.stall_cap)
        obs = successors[slots, taken].astype(np.int8, copy=True)
        if done.any():
            obs[done] = _new_boards(config, int(done.sum()), rng)
            episode_step[done] = 0
            since_food[done] = 0
        starting = done
        if on_rows is not None:
            on_rows(int((t < quota).sum()))
    return _finish_chunk(config, chunk_index, recorder.buffers, quota)


def _finish_chunk(config: GenerationConfig, chunk_index: int, buffers: Columns, quota: np.ndarray) -> Columns:
    """Flatten (games, steps) buffers slot by slot, derive the remaining columns, assign splits."""
    games, steps = buffers["step"].shape
    valid = np.arange(steps)[None, :] < quota[:, None]
    rows = {name: array[valid] for name, array in buffers.items()}
    local_episode = np.cumsum(rows.pop("episode_start")) - 1
    per_action_index = (np.arange(len(local_episode)), rows["action"])
    rows["next_state"] = rows["next_state_per_action"][per_action_index]
    rows["reward"] = rows["reward_per_action"][per_action_index]
    rows["terminated"] = rows["terminated_per_action"][per_action_index]
    rows["event"] = rows["event_per_action"][per_action_index]
    # Snake cells are every code from HEAD_ALONE (2) up; EMPTY is 0 and FOOD 1.
    rows["snake_length"] = (rows["state"] >= 2).sum(axis=(1, 2)).astype(np.int32)
    rows["episode_id"] = chunk_index * config.rows_per_chunk + local_episode
    rows["symmetry"] = np.zeros(len(local_episode), dtype=np.int8)
    split_of_episode = assign_splits(int(local_episode[-1]) + 1, config.split_fractions, np.random.default_rng([config.seed, chunk_index, 1]))
    rows["split"] = split_of_episode[local_episode]
    return {name: rows[name].astype(COLUMN_DTYPES.get(name, "int8"), copy=False) for name in (*COLUMNS, "split")}


def assign_splits(num_episodes: int, fractions: tuple[float, ...], rng: np.random.Generator) -> np.ndarray:
    """Split index of each episode: shuffled, counts by largest remainder, every wanted split non-empty when possible."""
    fractions_array = np.asarray(fractions, dtype=float)
    counts = np.floor(fractions_array * num_episodes).astype(int)
    remainder_order = np.argsort(-(fractions_array * num_episodes - counts), kind="stable")
    for index in remainder_order[: num_episodes - counts.sum()]:
        counts[index] += 1
    wanted = np.flatnonzero(fractions_array > 0)
    if num_episodes >= len(wanted):
        for index in wanted:
            if counts[index] == 0:
                counts[counts.argmax()] -= 1
                counts[index] = 1
    labels = np.repeat(np.arange(len(fractions_array), dtype=np.int8), counts)
    return labels[rng.permutation(num_episodes)]


# ----------------------------------------------------------------------------------------------
# Augmentation


def augment_rows(rows: Columns, expert: str | None = None) -> Columns:
    """The 8 symmetries of every row (boards transformed, actions remapped, per-action columns permuted).

    With `expert` set, each transformed copy is labelled with that expert's own decision on the transformed
    board (and `next_state`/`reward`/`terminated`/`event` follow that action). The experts break ties in a
    fixed action order, so they are not rotation-equivariant: a merely remapped label disagreed with the
    expert on 18-36% of transformed 10x10 boards, an orientation-dependent noise no model can learn.
    """

    copies = []
    for k in range(NUM_SYMMETRIES):
        copy = dict(rows)
        for name in ("state", "next_state", "next_state_per_action"):
            copy[name] = np.ascontiguousarray(transform_board(rows[name], k)).astype(np.int8, copy=False)
        for name in ("action", "taken_action"):
            copy[name] = np.asarray(transform_action(rows[name], k), dtype=np.int64)
        # Successor of original action a becomes the successor of the transformed action.
        destination = np.asarray(transform_action(np.arange(NUM_ACTIONS), k), dtype=np.int64)
        source = np.argsort(destination)
        for name in ("next_state_per_action", "reward_per_action", "terminated_per_action", "event_per_action"):
            copy[name] = copy[name][:, source]
        copy["symmetry"] = np.full(len(rows["state"]), k, dtype=np.int8)
        if expert is not None and k != 0:
            _relabel_with_expert(copy, expert_actions(copy["state"], kind=expert))
        copies.append(copy)
    merged = {name: np.concatenate([copy[name] for copy in copies]) for name in rows}
    order = np.lexsort((merged["step"], merged["symmetry"], merged["episode_id"]))
    return {name: array[order] for name, array in merged.items()}


def _relabel_with_expert(rows: Columns, actions: np.ndarray) -> None:
    """Set the label to `actions` and the transition columns to that action's (already simulated) successor."""
    index = np.arange(len(actions))
    rows["action"] = actions.astype(np.int64)
    rows["next_state"] = np.ascontiguousarray(rows["next_state_per_action"][index, actions])
    for name in ("reward", "terminated", "event"):
        rows[name] = rows[f"{name}_per_action"][index, actions].astype(rows[name].dtype)


# ----------------------------------------------------------------------------------------------
# Chunks → splits → Arrow


def chunk_rows(config: GenerationConfig, chunk_index: int, on_rows: Callable[[int], None] | None = None) -> Columns:
    """The final rows of one chunk: played, then augmented when configured."""
    rows = play_chunk(config, chunk_index, on_rows)
    return augment_rows(rows, expert=config.expert) if config.augment else rows


def _run_task(task: tuple[Callable, GenerationConfig, int]):
    function, config, chunk_index = task
    return function(config, chunk_index, None)


def map_chunks(
    function: Callable[[GenerationConfig, int, Callable[[int], None] | None], T],
    config: GenerationConfig,
    num_proc: int = 1,
    shard_index: int = 0,
    num_shards: int = 1,
    progress: bool = True,
) -> Iterator[T]:
    """Yield `function(config, chunk, on_rows)` for this shard's chunks, in chunk order, on `num_proc` processes.

    `function` must be a module-level function (it is sent to worker processes). With one process
    it gets an `on_rows` callback that advances the progress bar step by step.
    """
    _check(isinstance(num_proc, int) and num_proc >= 1, f"num_proc must be a positive integer, got {num_proc!r}")
    _check(config.policy is None or num_proc == 1,
           "a policy plays in one process (it batches across the games already); use num_proc=1")
    chunks = shard_chunks(config, shard_index, num_shards)
    total = sum(config.chunk_rows(c) for c in chunks)
    with tqdm(total=total, unit="row", desc="generating", disable=not progress) as bar:
        if num_proc == 1 or len(chunks) == 1:
            for chunk_index in chunks:
                yield function(config, chunk_index, bar.update)
            return
        context = multiprocessing.get_context("fork")
        workers = min(capped_workers(num_proc, "processes"), len(chunks))
        # Workers die with this process: a killed build must not leave them generating and writing.
        with context.Pool(workers, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            tasks = [(function, config, chunk_index) for chunk_index in chunks]
            for chunk_index, result in zip(chunks, pool.imap(_run_task, tasks)):
                bar.update(config.chunk_rows(chunk_index))
                yield result


def iter_chunks(
    config: GenerationConfig, num_proc: int = 1, shard_index: int = 0, num_shards: int = 1, progress: bool = True
) -> Iterator[Columns]:
    """Yield the rows of this shard's chunks in chunk order (augmented if configured), with a progress bar."""
    yield from map_chunks(chunk_rows, config, num_proc, shard_index, num_shards, progress)


def _nested_list_array(values: np.ndarray) -> pa.Array:
    """(N, d1, ..., dk) numpy → N nested lists, zero-copy for the values (datasets' ArrayND storage)."""
    array = pa.array(np.ascontiguousarray(values).reshape(-1))
    for axis in range(values.ndim - 1, 0, -1):
        outer = int(np.prod(values.shape[:axis]))
        offsets = pa.array(np.arange(outer + 1, dtype=np.int32) * np.int32(values.shape[axis]))
        array = pa.ListArray.from_arrays(offsets, array)
    return array


_ROWS_PER_TABLE_SLICE = 65_536  # keeps int32 list offsets far from overflow even for 32x32 what-if boards


def rows_to_table(rows: Columns, dataset_features: Features) -> pa.Table:
    """An Arrow table with `dataset_features`' schema, built from numpy without Python-level loops."""
    num_rows = len(rows["state"])
    slices = [
        _rows_to_table_slice({name: rows[name][start : start + _ROWS_PER_TABLE_SLICE] for name in dataset_features}, dataset_features)
        for start in range(0, max(num_rows, 1), _ROWS_PER_TABLE_SLICE)
    ]
    return slices[0] if len(slices) == 1 else pa.concat_tables(slices)


def _rows_to_table_slice(rows: Columns, dataset_features: Features) -> pa.Table:
    schema = dataset_features.arrow_schema
    arrays = []
    for name in dataset_features:
        target = schema.field(name).type
        values = rows[name]
        if isinstance(target, pa.ExtensionType):
            board_values = np.asarray(values, dtype=target.value_type)  # no copy when already int8
            arrays.append(pa.ExtensionArray.from_storage(target, _nested_list_array(board_values)))
        elif pa.types.is_fixed_size_list(target):
            flat = pa.array(values.reshape(-1), type=target.value_type)
            arrays.append(pa.FixedSizeListArray.from_arrays(flat, target.list_size))
        else:
            arrays.append(pa.array(values, type=target))
    return pa.Table.from_arrays(arrays, schema=schema)


def split_rows(rows: Columns) -> dict[str, Columns]:
    """Rows of each split (without the helper `split` column); empty splits are omitted."""
    result = {}
    for index, name in enumerate(SPLITS):
        mask = rows["split"] == index
        if mask.any():
            result[name] = {column: rows[column][mask] for column in COLUMNS}
    return result


def generate_dataset_dict(
    config: GenerationConfig, num_proc: int = 1, shard_index: int = 0, num_shards: int = 1, progress: bool = True
) -> DatasetDict:
    """The whole (shard of the) dataset in memory, splits `train`/`validation`/`test` by episode."""
    dataset_features = features(config.height, config.width)
    tables: dict[str, list[pa.Table]] = {}
    for rows in iter_chunks(config, num_proc, shard_index, num_shards, progress):
        for split, split_columns in split_rows(rows).items():
            tables.setdefault(split, []).append(rows_to_table(split_columns, dataset_features))
    return DatasetDict(
        {split: Dataset(pa.concat_tables(tables[split]), info=_info(dataset_features)) for split in SPLITS if split in tables}
    )


def _info(dataset_features: Features):
    from datasets import DatasetInfo

    return DatasetInfo(features=dataset_features)


def content_fingerprint(dataset: DatasetDict | Dataset) -> str:
    """SHA-256 of the rows (every column, in order, per split): equal iff the contents are equal."""
    digest = hashlib.sha256()
    splits = dataset.items() if isinstance(dataset, DatasetDict) else [("", dataset)]
    for split_name, split in sorted(splits, key=lambda item: item[0]):
        digest.update(split_name.encode())
        table = split.data.table if hasattr(split.data, "table") else split.data
        for name in sorted(table.column_names):
            digest.update(name.encode())
            for batch_slice in range(0, table.num_rows, 100_000):
                part = table.column(name).slice(batch_slice, 100_000)
                digest.update(_column_bytes(part))
    return digest.hexdigest()


def _column_bytes(column: pa.ChunkedArray) -> bytes:
    # Compare values, not buffer layout: flatten nested lists down to the primitive values.
    array = column.combine_chunks()
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    while pa.types.is_list(array.type) or pa.types.is_fixed_size_list(array.type) or pa.types.is_large_list(array.type):
        array = array.flatten()
    return np.asarray(array.to_numpy(zero_copy_only=False)).tobytes()
