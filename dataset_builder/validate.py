"""Re-simulate every row of a dataset, all four actions, and count the rows that break the rules.

Food placement after eating is random, so a successor in which the snake ate is accepted when the
rest of the board matches the engine's and exactly one new food sits on a cell that was empty.
Every other successor (and every reward, event, terminated flag) must match exactly.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from datasets import Dataset
from tqdm.auto import tqdm

from snake_world_eqm.data.features import COLUMNS, OPTIONAL_COLUMNS, SOURCE_NAMES
from snake_world_eqm.data.loading import dataset_board_sizes, load_snake_dataset, to_numpy_columns
from snake_world_eqm.game import Event, batched_successors, legal_boards, mask_food
from snake_world_eqm.game.encoding import FOOD
from snake_world_eqm.game.state import NUM_ACTIONS

BATCH_SIZE = 8192


@dataclass
class ValidationReport:
    rows: int = 0
    violations: int = 0  # rows with at least one failed check
    by_check: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # a few "split row: check" lines to start debugging

    def summary(self) -> str:
        lines = [f"{self.violations} violations in {self.rows} rows"]
        lines += [f"  {check}: {count}" for check, count in sorted(self.by_check.items())]
        lines += [f"  e.g. {example}" for example in self.examples]
        return "\n".join(lines)


def _successor_matches(recorded: np.ndarray, simulated: np.ndarray, event: np.ndarray) -> np.ndarray:
    """(N,) bool: the recorded successor boards agree with the engine's, food respawn excepted."""
    exact = (recorded == simulated).all(axis=(-2, -1))
    ate = (event == Event.EAT) | (event == Event.WIN)
    same_without_food = (mask_food(recorded) == mask_food(simulated)).all(axis=(-2, -1))
    # Masked equality already puts the recorded food on a cell that is empty in the engine's board.
    food_count = (recorded == FOOD).sum(axis=(-2, -1))
    food_ok = np.where(event == Event.WIN, food_count == 0, food_count == 1)
    return np.where(ate, same_without_food & food_ok, exact)


def _illegal(boards: np.ndarray) -> np.ndarray:
    """(N,) bool for (N, H, W) boards, or (N,) any-of for (N, K, H, W): not a legal board nor the terminal one."""
    flat = boards.reshape(-1, *boards.shape[-2:])
    return ~legal_boards(flat).reshape(boards.shape[:-2]).reshape(len(boards), -1).all(axis=1)


def check_batch(batch: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per check, a (N,) bool array of rows that fail it.

    The engine is unchecked for legality (an illegal board gives an unspecified successor that would then
    "match" itself), so every board is first checked to be legal or the terminal board.
    """
    state = batch["state"]
    illegal_state = _illegal(state)
    simulated, reward, event, terminated = batched_successors(state, rng)
    per_action_ok = _successor_matches(batch["next_state_per_action"], simulated, event)
    rows = np.arange(len(state))
    bad_action = (batch["action"] < 0) | (batch["action"] >= NUM_ACTIONS)
    action = np.where(bad_action, 0, batch["action"])  # an out-of-range action is counted, not an IndexError
    return {
        "action_out_of_range": bad_action,
        **({"taken_action_out_of_range": (batch["taken_action"] < 0) | (batch["taken_action"] >= NUM_ACTIONS)}
           if "taken_action" in batch else {}),
        "illegal_state": illegal_state,
        "illegal_next_state": _illegal(batch["next_state"]),
        "illegal_successor": _illegal(batch["next_state_per_action"]),
        "next_state_per_action": ~per_action_ok.all(axis=1),
        "event_per_action": (batch["event_per_action"] != event).any(axis=1),
        "reward_per_action": (batch["reward_per_action"] != reward).any(axis=1),
        "terminated_per_action": (batch["terminated_per_action"] != terminated).any(axis=1),
        "next_state": ~(batch["next_state"] == batch["next_state_per_action"][rows, action]).all(axis=(1, 2)),
        "reward": batch["reward"] != batch["reward_per_action"][rows, action],
        "terminated": batch["terminated"] != batch["terminated_per_action"][rows, action],
        "event": batch["event"] != batch["event_per_action"][rows, action],
        "snake_length": batch["snake_length"] != (state >= 2).sum(axis=(1, 2)),
        **_source_failures(batch),
    }


def _source_failures(batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`source` (when present) names a known player, and a step the expert played took the expert's label.

    Augmented copies (symmetry > 0) are relabelled with the expert's decision on the transformed board,
    so only the original orientation is held to the second check.
    """
    if "source" not in batch:
        return {}
    source = batch["source"]
    expert_played = (source == SOURCE_NAMES.index("expert")) & (batch["symmetry"] == 0)
    return {
        "source": (source < 0) | (source >= len(SOURCE_NAMES)),
        "source_expert_action": expert_played & (batch["taken_action"] != batch["action"]),
    }


def _continuity_failures(batch: dict[str, np.ndarray], previous: dict[str, np.ndarray] | None) -> np.ndarray:
    """(N,) bool: row i continues row i-1's episode but its state is not the taken action's successor."""
    keys = ("episode_id", "symmetry", "step", "taken_action", "next_state_per_action")
    if previous is not None:
        merged = {key: np.concatenate([previous[key][-1:], batch[key]]) for key in keys}
        merged["state"] = np.concatenate([previous["state"][-1:], batch["state"]])
    else:
        merged = {key: batch[key] for key in (*keys, "state")}
    before = slice(0, -1)
    after = slice(1, None)
    continues = (
        (merged["episode_id"][after] == merged["episode_id"][before])
        & (merged["symmetry"][after] == merged["symmetry"][before])
        & (merged["step"][after] == merged["step"][before] + 1)
    )
    taken = merged["taken_action"][before]
    taken = np.where((taken < 0) | (taken >= NUM_ACTIONS), 0, taken)  # out of range: counted by check_batch
    taken_successor = merged["next_state_per_action"][before][np.arange(len(continues)), taken]
    broken = continues & ~(merged["state"][after] == taken_successor).all(axis=(1, 2))
    return broken if previous is not None else np.concatenate([[False], broken])


def validate_split(split: Dataset, name: str, report: ValidationReport, seed: int = 0, progress: bool = True) -> None:
    rng = np.random.default_rng(seed)
    previous = None
    with tqdm(total=len(split), unit="row", desc=f"validating {name}", disable=not progress) as bar:
        for start in range(0, len(split), BATCH_SIZE):
            columns = [name for name in COLUMNS if name in split.column_names]
            batch = to_numpy_columns(split.select(range(start, min(start + BATCH_SIZE, len(split)))), columns)
            failures = check_batch(batch, rng)
            failures["continuity"] = _continuity_failures(batch, previous)
            any_failure = np.zeros(len(batch["state"]), dtype=bool)
            for check, failed in failures.items():
                report.by_check[check] += int(failed.sum())
                any_failure |= failed
                for row in np.flatnonzero(failed)[: max(0, 5 - len(report.examples))]:
                    report.examples.append(f"{name} row {start + int(row)}: {check}")
            report.rows += len(any_failure)
            report.violations += int(any_failure.sum())
            previous = batch
            bar.update(len(any_failure))


def validate_dataset(path_or_repo: str | os.PathLike, progress: bool = True) -> ValidationReport:
    """Load every split (of every board size, for a multi-size dataset) and re-simulate all its rows."""
    required = [name for name in COLUMNS if name not in OPTIONAL_COLUMNS]
    # Column types and sizes are checked on load; the rows are what this re-simulation counts.
    by_size = load_snake_dataset(path_or_repo, required=required, board_size="all", check_rows=False)
    several = dataset_board_sizes(path_or_repo) is not None  # a multi-size dataset, even of one size
    report = ValidationReport()
    for size, dataset in by_size.items():
        for name, split in dataset.items():
            validate_split(split, f"{size}/{name}" if several else name, report, progress=progress)
    report.by_check = Counter({check: count for check, count in report.by_check.items() if count})
    return report
