"""Features, loading and collation of the Snake transition dataset (no generation needed)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict

from snake_world_eqm import game
from snake_world_eqm.data import (
    COLUMNS,
    as_torch_dataset,
    board_shape,
    check_columns,
    collate,
    features,
    load_snake_dataset,
    to_numpy_columns,
)
from snake_world_eqm.data.generate import rows_to_table

# The package re-exports the function `features`, which shadows the submodule's attribute name.
features_module = importlib.import_module("snake_world_eqm.data.features")
generate_module = importlib.import_module("snake_world_eqm.data.generate")


def _random_rows(num_rows: int, height: int = 5, width: int = 6, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "state": rng.integers(0, 12, (num_rows, height, width), dtype=np.int8),
        "action": rng.integers(0, 4, num_rows),
        "taken_action": rng.integers(0, 4, num_rows),
        "next_state": rng.integers(0, 12, (num_rows, height, width), dtype=np.int8),
        "reward": rng.standard_normal(num_rows).astype(np.float32),
        "terminated": rng.random(num_rows) < 0.5,
        "event": rng.integers(0, 6, num_rows),
        "next_state_per_action": rng.integers(0, 12, (num_rows, 4, height, width), dtype=np.int8),
        "reward_per_action": rng.standard_normal((num_rows, 4)).astype(np.float32),
        "terminated_per_action": rng.random((num_rows, 4)) < 0.5,
        "event_per_action": rng.integers(0, 6, (num_rows, 4)),
        "episode_id": rng.integers(0, 100, num_rows),
        "step": rng.integers(0, 100, num_rows).astype(np.int32),
        "snake_length": rng.integers(1, 30, num_rows).astype(np.int32),
        "symmetry": rng.integers(0, 8, num_rows).astype(np.int8),
        "source": rng.integers(0, 3, num_rows),
    }


def _dataset(rows: dict[str, np.ndarray], height: int = 5, width: int = 6) -> Dataset:
    return Dataset(rows_to_table(rows, features(height, width)))


def test_constants_agree_with_the_game_module():
    assert features_module.ACTION_NAMES == tuple(game.ACTION_NAMES)
    assert features_module.EVENT_NAMES == tuple(game.EVENT_NAMES)
    assert (generate_module.MIN_BOARD_SIZE, generate_module.MAX_BOARD_SIZE) == (game.MIN_BOARD_SIZE, game.MAX_BOARD_SIZE)
    assert generate_module._EVENT_EAT == int(game.Event.EAT)


def test_features_have_every_column_in_order_and_the_board_shape():
    feats = features(7, 9)
    assert tuple(feats) == COLUMNS
    assert board_shape(feats) == (7, 9)
    assert feats["next_state_per_action"].shape == (4, 7, 9)
    assert feats["action"].names == ["up", "right", "down", "left"]


def test_numpy_rows_round_trip_through_arrow_exactly():
    rows = _random_rows(37)
    back = _dataset(rows).with_format("numpy")[:]
    for name in COLUMNS:
        np.testing.assert_array_equal(back[name], rows[name], err_msg=name)


def test_collate_accepts_row_dicts_and_column_batches_alike():
    dataset = _dataset(_random_rows(8))
    from_rows = collate([dataset[i] for i in range(8)])
    from_columns = collate(dataset.with_format("numpy")[:8])
    assert from_rows.keys() == from_columns.keys() == set(COLUMNS)
    for name in COLUMNS:
        assert torch.equal(from_rows[name], from_columns[name]), name
    assert from_rows["state"].dtype == torch.long and from_rows["state"].shape == (8, 5, 6)
    assert from_rows["next_state_per_action"].shape == (8, 4, 5, 6)
    assert from_rows["action"].dtype == torch.long
    assert from_rows["terminated_per_action"].dtype == torch.bool
    assert from_rows["reward"].dtype == torch.float32


def test_collate_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="empty batch"):
        collate([])


def test_torch_view_feeds_a_dataloader_batch_by_batch():
    rows = _random_rows(10)
    loader = torch.utils.data.DataLoader(as_torch_dataset(_dataset(rows)), batch_size=4, shuffle=False, collate_fn=collate)
    batches = list(loader)
    assert [len(batch["action"]) for batch in batches] == [4, 4, 2]
    assert torch.equal(batches[1]["state"], torch.from_numpy(rows["state"][4:8]).long())


def test_check_columns_names_the_missing_columns():
    dataset = _dataset(_random_rows(3)).remove_columns(["next_state", "action"])
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['action', 'next_state'\]"):
        check_columns(DatasetDict({"train": dataset}), ["state", "action", "next_state"])


def test_loading_a_dataset_without_the_required_columns_is_refused(tmp_path):
    DatasetDict({"train": _dataset(_random_rows(3)).remove_columns(["next_state"])}).save_to_disk(tmp_path / "broken")
    with pytest.raises(ValueError, match="next_state"):
        load_snake_dataset(tmp_path / "broken")


def test_load_reads_save_to_disk_folders_and_checks_the_split(tmp_path):
    rows = _random_rows(6)
    DatasetDict({"train": _dataset(rows)}).save_to_disk(tmp_path / "saved")
    train = load_snake_dataset(tmp_path / "saved", split="train", check_rows=False)  # random boards
    np.testing.assert_array_equal(train.with_format("numpy")["state"], rows["state"])
    with pytest.raises(ValueError, match="split 'test' not in dataset"):
        load_snake_dataset(tmp_path / "saved", split="test")


def test_load_of_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no dataset folder"):
        load_snake_dataset(tmp_path / "a" / "b" / "c")


def test_to_numpy_columns_matches_the_numpy_format_and_keeps_int8_boards():
    rows = _random_rows(40)
    dataset = _dataset(rows)
    view = dataset.shuffle(seed=1).select(range(25))  # an indices mapping, not a contiguous slice
    fast = to_numpy_columns(view)
    slow = view.with_format("numpy")[:]
    for name in COLUMNS:
        np.testing.assert_array_equal(fast[name], slow[name], err_msg=name)
    assert fast["state"].dtype == np.int8 and fast["next_state_per_action"].shape == (25, 4, 5, 6)
    assert fast["reward_per_action"].shape == (25, 4)
