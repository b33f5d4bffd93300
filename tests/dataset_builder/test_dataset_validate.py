"""`dataset_builder.validate`: every check fed a bad row of its own, and the rows it must accept.

"Re-simulates every row" is the dataset's integrity promise, so each check is shown to fire alone on
the corruption it exists for (and nothing fires on a clean build, an eaten apple respawned anywhere
empty, or a win). Rows come from the real generator on a 6x6 board; a few seconds in all.
"""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Dataset

import dataset_builder.validate as validate_module
from dataset_builder.validate import ValidationReport, validate_split
from snake_world_eqm.data import COLUMNS, features
from snake_world_eqm.data.features import SOURCE_NAMES
from snake_world_eqm.data.generate import GenerationConfig, chunk_rows, rows_to_table
from snake_world_eqm.game import Event, SnakeState, batched_successors, encode_observation
from snake_world_eqm.game.encoding import BODY_UP, EMPTY, FOOD

SIZE = 6


def _single_row(body: tuple, food: tuple, action: int | None, episode_id: int) -> dict[str, np.ndarray]:
    """One row, all columns from the engine, for a hand-made state (`action` None: the first that wins)."""
    return _row_of_board(encode_observation(SnakeState(SIZE, SIZE, body, food)), action, episode_id, len(body))


def _row_of_board(board: np.ndarray, action: int | None, episode_id: int, length: int) -> dict[str, np.ndarray]:
    """One row whose every column is what the engine makes of `board` (legal or not) and its snake `length`."""
    board = board[None]
    successors, reward, event, terminated = batched_successors(board, np.random.default_rng(0))
    action = int(np.flatnonzero(event[0] == Event.WIN)[0]) if action is None else action
    return {
        "state": board, "action": np.array([action]), "taken_action": np.array([action]),
        "next_state": successors[:, action], "reward": reward[:, action], "terminated": terminated[:, action],
        "event": event[:, action], "next_state_per_action": successors, "reward_per_action": reward,
        "terminated_per_action": terminated, "event_per_action": event, "episode_id": np.array([episode_id]),
        "step": np.array([0]), "snake_length": np.array([length]), "symmetry": np.array([0]),
        "source": np.array([SOURCE_NAMES.index("expert")]),
    }


def _win_row(episode_id: int) -> dict[str, np.ndarray]:
    """A 6x6 board one move from filling it: a boustrophedon snake, the food in the last free cell."""
    path = [(r, c if r % 2 == 0 else SIZE - 1 - c) for r in range(SIZE) for c in range(SIZE)]  # a Hamiltonian path
    food, body = path[-1], tuple(reversed(path[:-1]))  # head next to the food, tail at (0, 0)
    return _single_row(body, food, None, episode_id)


def _one_cell_row(episode_id: int) -> dict[str, np.ndarray]:
    """A one-cell snake (its head is the HEAD_ALONE code): its length counts that cell."""
    return _single_row(((2, 2),), (4, 4), 1, episode_id)


@pytest.fixture(scope="module")
def clean_rows() -> dict[str, np.ndarray]:
    config = GenerationConfig(num_samples=240, height=SIZE, width=SIZE, seed=3, rows_per_chunk=240,
                              parallel_games=2, max_episode_steps=100)
    rows = chunk_rows(config, 0)
    rows = {name: rows[name] for name in COLUMNS}
    win = _win_row(int(rows["episode_id"].max()) + 1)
    assert (win["event"] == Event.WIN).all()
    one_cell = _one_cell_row(int(rows["episode_id"].max()) + 2)
    assert one_cell["snake_length"][0] == 1
    rows = {name: np.concatenate([rows[name], win[name].astype(rows[name].dtype), one_cell[name].astype(rows[name].dtype)])
            for name in COLUMNS}
    assert (rows["event_per_action"] == Event.EAT).any() and (rows["step"][1:] == rows["step"][:-1] + 1).sum() > 100
    return rows


def _validate(rows: dict[str, np.ndarray]) -> ValidationReport:
    split = Dataset(rows_to_table(rows, features(SIZE, SIZE)))
    report = ValidationReport()
    validate_split(split, "train", report, progress=False)
    return report


def _copy(rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: values.copy() for name, values in rows.items()}


def _failures(report: ValidationReport) -> dict[str, int]:
    return {check: count for check, count in report.by_check.items() if count}


def _row_and_other_action(rows, event: Event) -> tuple[int, int]:
    """A row and one of its actions (not the expert's, so only per-action checks see it) with `event`."""
    hits = np.argwhere((rows["event_per_action"] == event) & (np.arange(4)[None] != rows["action"][:, None]))
    assert len(hits), f"no row with a non-expert {event.name} successor"
    return int(hits[0][0]), int(hits[0][1])


def _eating_row(rows) -> int:
    """A row whose expert action eats (the expert always takes an apple in reach, so no other action does).

    Its successor must not be the next row's state (else editing it also breaks continuity): the row
    took another action, or its episode ends there.
    """
    continues = np.append((rows["episode_id"][1:] == rows["episode_id"][:-1]) & (rows["step"][1:] == rows["step"][:-1] + 1), False)
    free = (rows["event"] == Event.EAT) & ((rows["taken_action"] != rows["action"]) | ~continues)
    assert free.any(), "no eating row whose successor is free to edit"
    return int(np.flatnonzero(free)[0])


def _edit_expert_successor(rows, row: int, edit) -> None:
    """Apply `edit` to the expert action's successor and to next_state alike: only the re-simulation sees it."""
    board = rows["next_state_per_action"][row, rows["action"][row]]
    edit(board)
    rows["next_state"][row] = board


def _respawn_food_elsewhere(board) -> None:
    board[board == FOOD] = EMPTY
    board[tuple(np.argwhere(board == EMPTY)[-1])] = FOOD


def _continued_row(rows) -> int:
    """A row that continues the previous row's episode (so the continuity check applies to it)."""
    continues = (rows["episode_id"][1:] == rows["episode_id"][:-1]) & (rows["step"][1:] == rows["step"][:-1] + 1)
    return int(np.flatnonzero(continues)[20]) + 1


def test_a_clean_build_with_eating_and_a_win_has_no_violation(clean_rows, monkeypatch):
    report = _validate(clean_rows)
    assert report.rows == len(clean_rows["state"]) and report.violations == 0 and _failures(report) == {}
    monkeypatch.setattr(validate_module, "BATCH_SIZE", 7)  # episodes now cross batch boundaries
    report = _validate(clean_rows)
    assert report.violations == 0 and report.rows == len(clean_rows["state"])


def test_violations_add_up_over_batches_and_splits(clean_rows, tmp_path, monkeypatch, capsys):
    from datasets import DatasetDict

    from dataset_builder.validate import validate_dataset

    rows = _copy(clean_rows)
    rows["reward"][[3, 40]] += 1.0  # two bad rows, in different batches
    table = rows_to_table(rows, features(SIZE, SIZE))
    DatasetDict({"train": Dataset(table), "test": Dataset(rows_to_table(clean_rows, features(SIZE, SIZE)))}
                ).save_to_disk(str(tmp_path / "dataset"))
    monkeypatch.setattr(validate_module, "BATCH_SIZE", 16)
    capsys.readouterr()  # save_to_disk's own progress
    report = validate_dataset(tmp_path / "dataset", progress=False)
    assert "validating" not in capsys.readouterr().err  # progress=False reaches every split
    assert validate_dataset(tmp_path / "dataset").violations == 2  # progress bars by default
    shown = capsys.readouterr().err
    assert "validating train" in shown and "validating test" in shown
    assert report.rows == 2 * len(rows["state"]) and report.violations == 2
    assert dict(report.by_check) == {"reward": 2}  # checks that never failed are not listed
    assert report.examples == ["train row 3: reward", "train row 40: reward"]
    assert report.summary().splitlines() == [f"2 violations in {2 * len(rows['state'])} rows", "  reward: 2",
                                             "  e.g. train row 3: reward", "  e.g. train row 40: reward"]


def test_a_dataset_without_a_required_column_is_refused_by_name(clean_rows, tmp_path):
    from datasets import DatasetDict

    from dataset_builder.validate import validate_dataset

    table = rows_to_table(clean_rows, features(SIZE, SIZE)).drop_columns(["event_per_action"])
    DatasetDict({"train": Dataset(table)}).save_to_disk(str(tmp_path / "dataset"))
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['event_per_action'\]"):
        validate_dataset(tmp_path / "dataset", progress=False)


def test_columns_the_validator_does_not_know_are_left_alone(clean_rows):
    # e.g. a user's ragged annotations: converting them as boards would fail, and they carry nothing to check.
    split = Dataset(rows_to_table(clean_rows, features(SIZE, SIZE)))
    split = split.add_column("notes", [[0] * (row % 3) for row in range(len(split))])
    report = ValidationReport()
    validate_split(split, "train", report, progress=False)
    assert report.rows == len(split) and report.violations == 0


def test_a_multi_size_dataset_names_each_split_by_its_size(tmp_path, monkeypatch, capsys):
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from dataset_builder.multisize import build_multisize_dataset, size_configs
    from dataset_builder.validate import validate_dataset

    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path / "cache")  # the Hub-shaped folder is cached
    base = GenerationConfig(num_samples=60, seed=1, max_episode_steps=40, parallel_games=2)
    folder = build_multisize_dataset(size_configs(base, {(4, 4): 40, (5, 5): 60}), tmp_path / "multi", progress=False).path
    file = tmp_path / "multi" / "data" / "5x5" / "train-00000-of-00001.parquet"
    table = pq.read_table(file)
    reward = table["reward"].to_numpy().copy()
    reward[3] += 1.0
    pq.write_table(table.set_column(table.schema.get_field_index("reward"), "reward",
                                    pc.cast(reward, table.schema.field("reward").type)), file)
    capsys.readouterr()
    report = validate_dataset(folder)
    assert report.rows == 100 and report.examples == ["5x5/train row 3: reward"]
    shown = capsys.readouterr().err
    assert "validating 4x4/train" in shown and "validating 5x5/train" in shown


def test_progress_bar_counts_rows_and_can_be_silenced(clean_rows, capsys):
    split = Dataset(rows_to_table(clean_rows, features(SIZE, SIZE)))
    count = len(clean_rows["state"])
    validate_split(split, "train", ValidationReport())  # progress is on by default
    shown = capsys.readouterr().err
    assert "validating train" in shown and f"{count}/{count}" in shown and "row/s" in shown
    validate_split(split, "train", ValidationReport(), progress=False)
    assert capsys.readouterr().err == ""


def test_an_illegal_state_is_flagged_even_when_its_row_is_what_the_engine_makes_of_it(clean_rows):
    # The engine is unchecked for legality, so recorded successors that "match" prove nothing about a bad board.
    rows = _copy(clean_rows)
    last = len(rows["state"]) - 1  # the one-cell snake: an episode of its own, so continuity is not involved
    board = rows["state"][last].copy()
    assert board[0, 5] == EMPTY
    board[0, 5] = BODY_UP  # a body cell no chain reaches
    row = _row_of_board(board, 1, int(rows["episode_id"][last]), length=2)
    for name in COLUMNS:
        rows[name][last] = row[name][0]
    report = _validate(rows)
    assert report.violations == 1 and report.by_check["illegal_state"] == 1
    assert f"train row {last}: illegal_state" in report.examples
    # Its successors carry the stray cell too; no other check (they all agree with the engine) fires.
    assert set(_failures(report)) == {"illegal_state", "illegal_successor", "illegal_next_state"}


def test_a_gap_inside_an_episode_and_a_new_episode_are_not_continuity_breaks(clean_rows):
    rows = _copy(clean_rows)
    row = _continued_row(rows)
    keep = np.ones(len(rows["state"]), dtype=bool)
    keep[row] = False  # the next row now follows a gap of one step: nothing to check it against
    gapped = {name: values[keep] for name, values in rows.items()}
    assert _validate(gapped).violations == 0
    # A new episode whose step numbers happen to continue the previous episode's is still a new episode.
    starts = np.flatnonzero(rows["episode_id"][1:] != rows["episode_id"][:-1]) + 1
    first = int(starts[0])
    episode = rows["episode_id"] == rows["episode_id"][first]
    rows["step"][episode] += rows["step"][first - 1] + 1
    assert _validate(rows).violations == 0


def test_an_eaten_apple_may_respawn_on_any_empty_cell(clean_rows):
    rows = _copy(clean_rows)
    row = _eating_row(rows)
    before = rows["next_state"][row].copy()
    _edit_expert_successor(rows, row, _respawn_food_elsewhere)
    assert not np.array_equal(before, rows["next_state"][row])
    assert _validate(rows).violations == 0


def _corrupt_successor_to_terminal(rows):
    row, action = _row_and_other_action(rows, Event.NONE)
    rows["next_state_per_action"][row, action] = 0
    return row


def _move_food_on_a_plain_step(rows):
    row, action = _row_and_other_action(rows, Event.NONE)  # no eating: the food must stay where it was
    _respawn_food_elsewhere(rows["next_state_per_action"][row, action])
    return row


def _second_food_after_eating(rows):
    row = _eating_row(rows)

    def add_food(board):
        board[tuple(np.argwhere(board == EMPTY)[0])] = FOOD

    _edit_expert_successor(rows, row, add_food)
    return row


def _food_on_the_snake_after_eating(rows):
    row = _eating_row(rows)

    def food_onto_the_body(board):
        board[board == FOOD] = EMPTY
        board[tuple(np.argwhere(board >= 2)[0])] = FOOD

    _edit_expert_successor(rows, row, food_onto_the_body)
    return row


def _food_on_a_win_board(rows):
    row = int(np.flatnonzero(rows["event"] == Event.WIN)[0])

    def food_onto_the_tail(board):
        board[0, 0] = FOOD  # the snake fills the board: this cell was its tail

    _edit_expert_successor(rows, row, food_onto_the_tail)
    return row


def _per_action(column: str, event: Event, change):
    def corrupt(rows):
        row, action = _row_and_other_action(rows, event)
        rows[column][row, action] = change(rows[column][row, action])
        return row

    return corrupt


def _expert_column(column: str, change):
    def corrupt(rows):
        row = _continued_row(rows)
        rows[column][row] = change(rows[column][row])
        return row

    return corrupt


def _next_state_of_another_action(rows):
    row = _continued_row(rows)
    other = (rows["action"][row] + 1) % 4
    assert not np.array_equal(rows["next_state_per_action"][row, other], rows["next_state"][row])
    rows["next_state"][row] = rows["next_state_per_action"][row, other]
    return row


def _previous_row_took_another_action(rows):
    row = _continued_row(rows)
    taken = rows["taken_action"][row - 1]
    others = [a for a in range(4) if not np.array_equal(rows["next_state_per_action"][row - 1, a], rows["state"][row])]
    assert taken not in others
    rows["taken_action"][row - 1] = others[0]
    rows["source"][row - 1] = SOURCE_NAMES.index("perturbed")  # a step off the expert's label is a perturbed one
    return row  # the row whose state no longer follows


def _unknown_source(rows):
    row = _continued_row(rows)
    rows["source"][row] = len(SOURCE_NAMES)
    return row


def _perturbed_step_claimed_by_the_expert(rows):
    perturbed = np.flatnonzero((rows["source"] == SOURCE_NAMES.index("perturbed")) & (rows["taken_action"] != rows["action"]))
    assert len(perturbed), "no perturbed step in the rows"
    row = int(perturbed[0])
    rows["source"][row] = SOURCE_NAMES.index("expert")  # the expert never takes a move other than its label
    return row


CORRUPTIONS = {
    "successor replaced by the terminal board": ("next_state_per_action", _corrupt_successor_to_terminal),
    "food moved on a step that did not eat": ("next_state_per_action", _move_food_on_a_plain_step),
    # Two foods is also not a legal board: the legality checks of the successor and of next_state fire too.
    "two foods after eating": (("next_state_per_action", "illegal_successor", "illegal_next_state"),
                               _second_food_after_eating),
    "new food on the snake after eating": (("next_state_per_action", "illegal_successor", "illegal_next_state"),
                                           _food_on_the_snake_after_eating),
    "food on a won board": (("next_state_per_action", "illegal_successor", "illegal_next_state"),
                            _food_on_a_win_board),
    "event of an action": ("event_per_action", _per_action("event_per_action", Event.NONE, lambda e: Event.EAT)),
    "reward of an action": ("reward_per_action", _per_action("reward_per_action", Event.NONE, lambda r: r + 1.0)),
    "terminated of an action": ("terminated_per_action", _per_action("terminated_per_action", Event.NONE, lambda t: not t)),
    "next state of another action": ("next_state", _next_state_of_another_action),
    "reward": ("reward", _expert_column("reward", lambda r: r + 5.0)),
    "terminated": ("terminated", _expert_column("terminated", lambda t: not t)),
    "event": ("event", _expert_column("event", lambda e: (e + 1) % 6)),
    "snake length": ("snake_length", _expert_column("snake_length", lambda n: n + 1)),
    "episode broken": ("continuity", _previous_row_took_another_action),
    "unknown player": ("source", _unknown_source),
    "perturbed step said to be the expert's": ("source_expert_action", _perturbed_step_claimed_by_the_expert),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_each_check_fires_alone_on_its_own_corruption(clean_rows, corruption):
    check, corrupt = CORRUPTIONS[corruption]
    checks = (check,) if isinstance(check, str) else check
    rows = _copy(clean_rows)
    row = corrupt(rows)
    report = _validate(rows)
    assert _failures(report) == dict.fromkeys(checks, 1), corruption
    assert report.violations == 1
    assert sorted(report.examples) == sorted(f"train row {row}: {name}" for name in checks)


@pytest.mark.parametrize("offset", [0, 1])
def test_continuity_is_checked_across_batch_boundaries(clean_rows, monkeypatch, offset):
    rows = _copy(clean_rows)
    row = _previous_row_took_another_action(rows)
    monkeypatch.setattr(validate_module, "BATCH_SIZE", row + offset)  # offset 0: the broken row opens a batch
    report = _validate(rows)
    assert _failures(report) == {"continuity": 1} and report.examples == [f"train row {row}: continuity"]


def test_several_bad_rows_are_counted_once_each_and_examples_stop_at_five(clean_rows):
    rows = _copy(clean_rows)
    bad = np.flatnonzero(rows["event"] == Event.NONE)[:7]
    rows["reward"][bad] += 1.0
    rows["snake_length"][bad[:3]] += 1  # three rows fail two checks: still one violation each
    report = _validate(rows)
    assert report.violations == 7 and _failures(report) == {"reward": 7, "snake_length": 3}
    assert len(report.examples) == 5
    assert "7 violations in" in report.summary() and "  reward: 7" in report.summary()
