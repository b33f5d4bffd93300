"""Generation of transition rows from expert games: rules, episodes, splits, symmetries, determinism."""

from __future__ import annotations

import numpy as np
import pytest

import snake_world_eqm.data.generate as generate_module
from snake_world_eqm.data import (
    COLUMNS,
    GenerationConfig,
    augment_rows,
    content_fingerprint,
    generate_dataset_dict,
)
from snake_world_eqm.data.generate import assign_splits, play_chunk, shard_chunks, split_rows
from snake_world_eqm.game import Event, batched_successors, mask_food, transform_action, transform_board
from snake_world_eqm.game.expert import expert_actions

SMALL = dict(num_samples=1200, height=6, width=6, seed=3, max_episode_steps=60, rows_per_chunk=400, parallel_games=8)


@pytest.fixture(scope="module")
def chunk_rows():
    return play_chunk(GenerationConfig(**SMALL, perturb_prob=0.3), 0)


def test_chunk_has_exactly_the_requested_rows_and_every_column(chunk_rows):
    assert len(chunk_rows["state"]) == 400
    assert set(COLUMNS) <= chunk_rows.keys()


def test_label_is_the_expert_action_and_next_state_its_successor(chunk_rows):
    np.testing.assert_array_equal(chunk_rows["action"], expert_actions(chunk_rows["state"], "astar"))
    rows = np.arange(len(chunk_rows["action"]))
    np.testing.assert_array_equal(chunk_rows["next_state"], chunk_rows["next_state_per_action"][rows, chunk_rows["action"]])
    np.testing.assert_array_equal(chunk_rows["event"], chunk_rows["event_per_action"][rows, chunk_rows["action"]])


def test_what_if_columns_are_the_engine_successors(chunk_rows):
    simulated, reward, event, terminated = batched_successors(chunk_rows["state"], np.random.default_rng(0))
    np.testing.assert_array_equal(chunk_rows["event_per_action"], event)
    np.testing.assert_array_equal(chunk_rows["reward_per_action"], reward)
    np.testing.assert_array_equal(chunk_rows["terminated_per_action"], terminated)
    # Food after eating is random: compare without food.
    np.testing.assert_array_equal(mask_food(chunk_rows["next_state_per_action"]), mask_food(simulated))
    deaths = np.isin(event, [Event.WALL, Event.SELF, Event.REVERSE])
    assert deaths.any(), "a board always has deadly moves (the reverse) to check"
    assert (chunk_rows["next_state_per_action"][deaths] == 0).all(), "a death leads to the all-empty terminal board"


def test_episodes_are_contiguous_and_follow_the_taken_action(chunk_rows):
    episode, step = chunk_rows["episode_id"], chunk_rows["step"]
    same = episode[1:] == episode[:-1]
    np.testing.assert_array_equal(step[1:][same], step[:-1][same] + 1)
    np.testing.assert_array_equal(step[1:][~same], 0)
    assert step[0] == 0
    assert len(np.unique(episode)) == (~same).sum() + 1, "an episode's rows are contiguous"
    rows = np.arange(len(episode) - 1)
    taken_successor = chunk_rows["next_state_per_action"][rows, chunk_rows["taken_action"][:-1]]
    np.testing.assert_array_equal(chunk_rows["state"][1:][same], taken_successor[same])
    # A continued episode never continues from a terminal transition.
    assert not chunk_rows["terminated_per_action"][rows, chunk_rows["taken_action"][:-1]][same].any()


def test_perturbed_steps_take_another_non_fatal_action(chunk_rows):
    perturbed = chunk_rows["taken_action"] != chunk_rows["action"]
    rows = np.flatnonzero(perturbed)
    assert 0.15 < perturbed.mean() < 0.35, perturbed.mean()  # perturb_prob 0.3, minus steps without an alternative
    assert not chunk_rows["terminated_per_action"][rows, chunk_rows["taken_action"][rows]].any()


def test_episode_length_is_capped():
    rows = play_chunk(GenerationConfig(**{**SMALL, "max_episode_steps": 7}), 0)
    assert rows["step"].max() == 6


def test_snake_length_counts_the_snake_cells(chunk_rows):
    np.testing.assert_array_equal(chunk_rows["snake_length"], (chunk_rows["state"] >= 2).sum(axis=(1, 2)))


def test_splits_are_by_episode_and_all_present():
    dataset = generate_dataset_dict(GenerationConfig(**SMALL), progress=False)
    assert set(dataset) == {"train", "validation", "test"}
    episodes = {name: set(split["episode_id"]) for name, split in dataset.items()}
    assert not episodes["train"] & episodes["validation"]
    assert not episodes["train"] & episodes["test"]
    assert not episodes["validation"] & episodes["test"]
    assert sum(len(split) for split in dataset.values()) == SMALL["num_samples"]


def test_assign_splits_follows_the_fractions_and_fills_small_splits():
    rng = np.random.default_rng(0)
    labels = assign_splits(100, (0.9, 0.05, 0.05), rng)
    assert np.bincount(labels, minlength=3).tolist() == [90, 5, 5]
    assert np.bincount(assign_splits(4, (0.9, 0.05, 0.05), rng), minlength=3).tolist() == [2, 1, 1]
    assert np.bincount(assign_splits(5, (1.0, 0.0, 0.0), rng), minlength=3).tolist() == [5, 0, 0]


def test_same_config_same_rows_whatever_num_proc():
    config = GenerationConfig(**SMALL)
    one = generate_dataset_dict(config, num_proc=1, progress=False)
    two = generate_dataset_dict(config, num_proc=2, progress=False)
    assert content_fingerprint(one) == content_fingerprint(two)
    other_seed = generate_dataset_dict(GenerationConfig(**{**SMALL, "seed": 4}), progress=False)
    assert content_fingerprint(other_seed) != content_fingerprint(one)


def test_seed_range_shards_add_up_to_the_whole_dataset():
    config = GenerationConfig(**SMALL)
    assert [list(shard_chunks(config, i, 2)) for i in range(2)] == [[0], [1, 2]]
    whole = generate_dataset_dict(config, progress=False)
    shards = [generate_dataset_dict(config, shard_index=i, num_shards=2, progress=False) for i in range(2)]
    for split in whole:
        merged = np.concatenate([shard[split].with_format("numpy")["state"] for shard in shards if split in shard])
        np.testing.assert_array_equal(merged, whole[split].with_format("numpy")["state"])
    with pytest.raises(ValueError, match="shards but only 3 chunk"):
        shard_chunks(config, 0, 4)


def test_augmentation_transforms_boards_actions_and_what_if_columns(chunk_rows):
    augmented = augment_rows(chunk_rows)
    assert len(augmented["state"]) == 8 * len(chunk_rows["state"])
    for k in range(8):
        copy = {name: values[augmented["symmetry"] == k] for name, values in augmented.items()}
        np.testing.assert_array_equal(copy["state"], transform_board(chunk_rows["state"], k))
        np.testing.assert_array_equal(copy["action"], transform_action(chunk_rows["action"], k))
        for action in range(4):
            moved = int(transform_action(np.array([action]), k)[0])
            np.testing.assert_array_equal(
                copy["next_state_per_action"][:, moved], transform_board(chunk_rows["next_state_per_action"][:, action], k)
            )
            np.testing.assert_array_equal(copy["event_per_action"][:, moved], chunk_rows["event_per_action"][:, action])


def test_augmented_labels_are_the_experts_own_decision_on_each_transformed_board(chunk_rows):
    augmented = augment_rows(chunk_rows, expert="astar")
    np.testing.assert_array_equal(augmented["action"], expert_actions(augmented["state"], kind="astar"))
    rows = np.arange(len(augmented["action"]))
    for name in ("next_state", "reward", "terminated", "event"):
        per_action = augmented[f"{name}_per_action"]
        np.testing.assert_array_equal(augmented[name], per_action[rows, augmented["action"]])
    # The plain remap differs from the expert's own choice on some boards: relabelling is not a no-op.
    remapped = augment_rows(chunk_rows)
    assert (remapped["action"] != augmented["action"]).any()
    np.testing.assert_array_equal(remapped["taken_action"], augmented["taken_action"])


def test_a_rotated_state_has_the_rotated_successors(chunk_rows):
    """The symmetry invariant the augmentation relies on, checked against the engine."""
    augmented = augment_rows(chunk_rows)
    simulated, reward, event, terminated = batched_successors(augmented["state"], np.random.default_rng(1))
    np.testing.assert_array_equal(event, augmented["event_per_action"])
    np.testing.assert_array_equal(terminated, augmented["terminated_per_action"])
    np.testing.assert_array_equal(mask_food(simulated), mask_food(augmented["next_state_per_action"]))
    no_eat = event != Event.EAT
    np.testing.assert_array_equal(simulated[no_eat], augmented["next_state_per_action"][no_eat])


def test_augmented_copies_stay_in_their_episode_split():
    config = GenerationConfig(**{**SMALL, "augment": True})
    dataset = generate_dataset_dict(config, progress=False)
    assert sum(len(split) for split in dataset.values()) == 8 * SMALL["num_samples"]
    episodes = {name: set(split["episode_id"]) for name, split in dataset.items()}
    assert not episodes["train"] & (episodes["validation"] | episodes["test"])
    # split_rows (what the builder writes per split) drops the helper column and keeps episodes whole.
    rows = generate_module.chunk_rows(config, 0)
    by_split = split_rows(rows)
    assert sum(len(columns["state"]) for columns in by_split.values()) == len(rows["state"])
    assert all(list(columns) == list(COLUMNS) for columns in by_split.values())
    split_episodes = [set(columns["episode_id"].tolist()) for columns in by_split.values()]
    assert all(not a & b for i, a in enumerate(split_episodes) for b in split_episodes[i + 1:])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"augment": True, "width": 7}, "augment needs a square board"),
        ({"height": 3}, "height must be an integer from 4 to 32"),
        ({"width": 33}, "width must be an integer from 4 to 32"),
        ({"initial_length": 16, "height": 4, "width": 4}, "too small for the start snake"),
        ({"expert": "oracle"}, "expert must be one of"),
        ({"perturb_prob": 1.5}, "perturb_prob must be in"),
        ({"split_fractions": (0.5, 0.2, 0.2)}, "summing to 1"),
        ({"num_samples": 0}, "num_samples must be a positive integer"),
    ],
)
def test_bad_configurations_are_refused_with_the_reason(override, message):
    with pytest.raises(ValueError, match=message):
        GenerationConfig(**{**SMALL, **override})
