"""Issue 28, items 14, 18, 19: one check of a dataset's columns on load, before any long work.

A float `state` column was silently truncated, rows that break the rules gave metrics, string / flat /
mixed-size `state` columns gave raw tracebacks, and `validate` crashed on the `action=7` it exists to count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, DatasetDict

from dataset_builder.validate import validate_dataset
from snake_world_eqm.data import load_snake_dataset
from tests.data.test_bad_input_data import _tiny, _train_file


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return _tiny(tmp_path_factory.mktemp("ds") / "ds")


def _rows(folder: Path, count: int = 40) -> dict[str, np.ndarray]:
    split = load_snake_dataset(folder, split="train").with_format("numpy")
    return {name: np.asarray(split[:count][name]) for name in ("state", "action", "next_state")}


def _saved(tmp_path: Path, columns: dict) -> Path:
    folder = tmp_path / "saved"
    DatasetDict({"train": Dataset.from_dict(columns)}).save_to_disk(str(folder))
    return folder


def test_a_good_dataset_loads(built):
    assert len(load_snake_dataset(built, split="train")) > 0


@pytest.mark.parametrize("kind, message", [
    ("float", "float"), ("string", "mixed sizes or types|expected 2-D"), ("flat", "expected 2-D"),
    ("mixed", "mixed sizes|not a grid"), ("tiny", "sides must be"),
])
def test_bad_state_columns_are_one_line(built, tmp_path, kind, message):
    rows = _rows(built)
    state = rows["state"]
    values = {"float": state.astype(np.float32) + 0.4, "string": [str(board.tolist()) for board in state],
              "flat": state.reshape(len(state), -1), "tiny": state[:, :3, :3],
              "mixed": [board.tolist() if i % 2 else board[:4, :4].tolist() for i, board in enumerate(state)]}[kind]
    columns = {**rows, "state": values}
    if kind == "tiny":
        columns["next_state"] = rows["next_state"][:, :3, :3]
    with pytest.raises(ValueError, match=message):
        load_snake_dataset(_saved(tmp_path, columns), split="train")


def test_rows_that_break_the_rules_are_refused(built, tmp_path):
    rows = _rows(built)
    columns = {**rows, "next_state": rows["state"]}  # every row "stands still"
    with pytest.raises(ValueError, match="break the rules.*next_state is not the successor"):
        load_snake_dataset(_saved(tmp_path, columns), split="train")


def test_action_out_of_range_is_refused_on_load(built, tmp_path):
    rows = _rows(built)
    rows["action"] = rows["action"].copy()
    rows["action"][3] = 7
    with pytest.raises(ValueError, match="action 7"):
        load_snake_dataset(_saved(tmp_path, rows), split="train")


def test_validate_counts_an_action_7_row(tmp_path):
    """Item 18: `validate` crashed with IndexError on a row with action=7."""
    folder = _tiny(tmp_path / "ds")
    table = pq.read_table(_train_file(folder))
    actions = table.column("action").to_numpy().copy()
    actions[0] = 7
    index = table.schema.get_field_index("action")
    pq.write_table(table.set_column(index, table.schema.field(index), pa.array(actions, table.schema.field(index).type)),
                   _train_file(folder))
    report = validate_dataset(folder, progress=False)
    assert report.by_check["action_out_of_range"] == 1 and report.violations >= 1


def test_a_size_asked_for_is_checked(built):
    with pytest.raises(ValueError, match="not the 6x6|holds 5x5 boards only"):
        load_snake_dataset(built, split="train", board_size="6x6")
