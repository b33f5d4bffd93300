"""Decoder tuning (`snake-eqm tune-decoder`): the decoder learns the latents the sampler reaches; nothing else moves."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.data.loading import load_snake_dataset, to_numpy_columns
from snake_world_eqm.game.encoding import EMPTY, FOOD
from snake_world_eqm.game.state import Event
from snake_world_eqm.training.decoder_tune import (
    COLUMNS,
    DecoderTuneConfig,
    check_rows,
    decoder_loss,
    descent_latents,
    draw_batch,
    eating_moves,
    food_loss,
    tune_decoder,
)
from tests.training_helpers import build_tiny_dataset, subprocess_env

TINY = dict(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2, latent_dim=8, eqm_hidden_dim=16,
            eqm_num_layers=1, decoder_channels=8, decoder_layers=2, eqm_sampling_steps=3, dropout=0.0)


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("tune") / "snake", num_samples=400)


@pytest.fixture(scope="module")
def rows(dataset) -> dict:
    split = load_snake_dataset(dataset, split="train")
    return {"6x6": to_numpy_columns(split, list(COLUMNS) + ["event_per_action"])}


def tiny_model(global_context: bool = True, seed: int = 0) -> SnakeWorldEqM:
    torch.manual_seed(seed)
    return SnakeWorldEqM(SnakeWorldEqMConfig(**TINY, decoder_global_context=global_context)).eval()


def test_global_context_lets_a_far_cell_change_what_the_decoder_says_about_the_tail_end():
    # 16x16, head in a corner: the 2-block 3x3 decoder reaches 4 cells; a change 15 cells away reaches (0, 0)
    # only through the whole-board context. This is what lets "the snake ate" (at the head) keep the tail.
    config = dict(TINY, board_height=16, board_width=16)
    boards = torch.zeros(2, 16, 16, dtype=torch.long)
    boards[:, 0, 1] = 2  # a head code
    boards[1, 15, 15] = FOOD
    latent = torch.randn(1, 8).repeat(2, 1)
    for context, should_differ in ((False, False), (True, True)):
        torch.manual_seed(1)
        model = SnakeWorldEqM(SnakeWorldEqMConfig(**config, decoder_global_context=context)).eval()
        with torch.no_grad():
            logits = model.decoder(latent, model.decoder.board_features(boards))
        differs = not torch.allclose(logits[0, 0, 0], logits[1, 0, 0])
        assert differs == should_differ, context


def test_a_model_without_the_flag_loads_as_before(tmp_path):
    model = tiny_model(global_context=False)
    model.save_pretrained(tmp_path)
    loaded = SnakeWorldEqM.from_pretrained(tmp_path)
    assert loaded.config.decoder_global_context is False
    assert all(block.context is None for block in loaded.decoder.blocks)


def test_eating_moves_are_the_successors_whose_event_is_an_apple_or_a_win(rows):
    columns = rows["6x6"]
    row, action = eating_moves(columns)
    events = columns["event_per_action"]
    expected = np.nonzero(np.isin(events, [int(Event.EAT), int(Event.WIN)]))
    assert len(row) > 0
    assert np.array_equal(row, expected[0]) and np.array_equal(action, expected[1])


def test_batches_hold_the_asked_share_of_eating_moves_and_the_targets_of_the_held_actions(rows):
    columns = {key: rows["6x6"][key] for key in COLUMNS}
    config = DecoderTuneConfig(batch_size=40, eat_fraction=0.5)
    eating = {"6x6": eating_moves(columns)}
    states, held, targets = draw_batch({"6x6": columns}, check_rows({"6x6": columns}), config,
                                       np.random.default_rng(0), eating)
    grew = (targets > FOOD).sum((1, 2)) > (states > FOOD).sum((1, 2))
    assert grew[:20].all() and states.shape == (40, 6, 6)
    # each target is the dataset's successor of that state under the held action
    lookup = {columns["state"][i].tobytes(): columns["next_state_per_action"][i] for i in range(len(columns["state"]))}
    for state, action, target in zip(states.numpy().astype(columns["state"].dtype), held.numpy(), targets.numpy()):
        assert np.array_equal(lookup[state.tobytes()][action], target)


def test_tuning_trains_only_the_decoder_and_fits_the_descents_latents(rows):
    columns = {key: rows["6x6"][key] for key in COLUMNS}
    model = tiny_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = DecoderTuneConfig(steps=60, batch_size=32, learning_rate=3e-3, seed=1)
    eating = {"6x6": eating_moves(columns)}
    probe = draw_batch({"6x6": columns}, check_rows({"6x6": columns}), config, np.random.default_rng(9), eating)
    generator = torch.Generator().manual_seed(5)

    def probe_loss() -> float:
        generator.manual_seed(5)
        latents = descent_latents(model, probe[0], probe[1], 0.5, generator)
        with torch.no_grad():
            return decoder_loss(model, probe[0], latents, probe[2]).item()

    start = probe_loss()
    summary = tune_decoder(model, {"6x6": columns}, config)
    assert probe_loss() < 0.7 * start
    assert summary["samples"] == 60 * 32 and summary["rows"] == {"6x6": len(columns["state"])}
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert changed and all(name.startswith("decoder.") for name in changed)
    assert all(p.requires_grad for p in model.parameters())  # handed back trainable


@pytest.mark.parametrize("bad, message", [
    ({"state": np.zeros((3, 6, 6)), "action": np.zeros(3)}, "next_state_per_action"),
    ({"state": np.zeros((3, 6, 6)), "action": np.zeros(2), "next_state_per_action": np.zeros((3, 4, 6, 6))},
     "expected"),
    ({"state": np.zeros((0, 6, 6)), "action": np.zeros(0), "next_state_per_action": np.zeros((0, 4, 6, 6))},
     "expected"),
])
def test_rows_that_cannot_train_the_decoder_are_refused_by_name(bad, message):
    with pytest.raises(ValueError, match=message):
        check_rows({"6x6": bad})
    with pytest.raises(ValueError, match="no training rows"):
        check_rows({})


@pytest.mark.parametrize("field, value", [("steps", 0), ("batch_size", True), ("learning_rate", float("nan")),
                                          ("eat_fraction", 1.5), ("origin_fraction", -0.1)])
def test_bad_settings_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        DecoderTuneConfig(**{field: value})


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "snake_world_eqm.cli", "tune-decoder", *args], capture_output=True,
                          text=True, env=subprocess_env(), timeout=300)


def test_the_command_writes_a_loadable_model_with_the_old_encoder_and_field(tmp_path, dataset):
    source = tmp_path / "base"
    tiny_model(global_context=False).save_pretrained(source)
    out = tmp_path / "tuned"
    done = _cli("--model", str(source), "--dataset", str(dataset), "--output-dir", str(out), "--steps", "3",
                "--batch-size", "8", "--threads", "1")
    assert done.returncode == 0, done.stderr
    tuned = SnakeWorldEqM.from_pretrained(out)
    base = SnakeWorldEqM.from_pretrained(source)
    assert tuned.config.decoder_global_context is True
    tuned_state, base_state = tuned.state_dict(), base.state_dict()
    for name, tensor in base_state.items():
        if not name.startswith("decoder."):
            assert torch.equal(tensor, tuned_state[name]), name
    assert (out / "metrics.json").is_file() and (out / "README.md").is_file()

    # a food head on top: new weights, the decoder and everything else as they were
    headed = tmp_path / "headed"
    done = _cli("--part", "food-head", "--model", str(out), "--dataset", str(dataset), "--output-dir", str(headed),
                "--steps", "2", "--batch-size", "8", "--threads", "1")
    assert done.returncode == 0, done.stderr
    with_head = SnakeWorldEqM.from_pretrained(headed)
    assert with_head.config.food_head is True and with_head.config.decoder_global_context is True
    head_state = with_head.state_dict()
    assert {name for name in head_state if name not in tuned_state} == {
        f"decoder.food_head.{i}.{kind}" for i in (0, 2) for kind in ("weight", "bias")}
    assert all(torch.equal(tensor, head_state[name]) for name, tensor in tuned_state.items())

    again = _cli("--model", str(source), "--dataset", str(dataset), "--output-dir", str(out), "--steps", "3")
    assert again.returncode == 2 and "--overwrite" in again.stderr
    inside = _cli("--model", str(source), "--dataset", str(dataset), "--output-dir", str(source / "x"))
    assert inside.returncode == 2 and "input" in inside.stderr
    bad = _cli("--model", str(source), "--dataset", str(dataset), "--output-dir", str(tmp_path / "y"),
               "--eat-fraction", "2")
    assert bad.returncode == 2 and "eat-fraction" in bad.stderr
    assert not (tmp_path / "y").exists()


def test_food_log_weights_are_the_decoders_food_channel_or_the_food_heads_logits(rows):
    states = torch.as_tensor(rows["6x6"]["state"][:5], dtype=torch.long)
    latent = torch.randn(5, 8)
    plain = tiny_model(global_context=False)
    with torch.no_grad():
        expected = torch.log_softmax(plain.from_latent(latent, states), dim=-1)[..., FOOD]
        assert torch.allclose(plain.food_log_weights(latent, states), expected)
    torch.manual_seed(0)
    headed = SnakeWorldEqM(SnakeWorldEqMConfig(**TINY, food_head=True)).eval()
    with torch.no_grad():
        weights = headed.food_log_weights(latent, states)
        assert torch.equal(weights, headed.decoder.food_logits(latent, headed.decoder.board_features(states)))
    assert weights.shape == (5, 6, 6)


def test_tuning_the_food_head_leaves_every_predicted_board_and_learns_where_food_appears(rows):
    columns = {key: rows["6x6"][key] for key in COLUMNS}
    torch.manual_seed(0)
    model = SnakeWorldEqM(SnakeWorldEqMConfig(**TINY, food_head=True)).eval()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    config = DecoderTuneConfig(steps=250, batch_size=32, learning_rate=1e-2, part="food_head", seed=2)
    # probe: the eating moves of the longer snakes, where food can appear on well under all of the board
    row, action = eating_moves(columns)
    long = (columns["state"][row] > FOOD).sum((1, 2)) >= 10
    row, action = row[long], action[long]
    assert len(row) >= 10
    probe = (torch.as_tensor(columns["state"][row], dtype=torch.long), torch.as_tensor(action),
             torch.as_tensor(columns["next_state_per_action"][row, action], dtype=torch.long))
    generator = torch.Generator().manual_seed(5)
    latents = descent_latents(model, probe[0], probe[1], 0.75, generator)

    def probe_loss() -> float:
        with torch.no_grad():
            return food_loss(model, probe[0], latents, probe[2]).item()

    # New food is uniform over the free cells: the best any head can score is the mean log of their number.
    free = ((probe[2] == EMPTY) | (probe[2] == FOOD)).flatten(1).sum(1)
    grew = (probe[2] > FOOD).sum((1, 2)) > (probe[0] > FOOD).sum((1, 2))
    best = free[grew & ((probe[2] == FOOD).flatten(1).sum(1) == 1)].double().log().mean().item()
    start = probe_loss()
    assert start > best + 0.3 and math.log(36) > best + 0.4  # uniform over the whole board would not do
    tune_decoder(model, {"6x6": columns}, config)
    assert probe_loss() < best + 0.15
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert changed and all(name.startswith("decoder.food_head.") for name in changed)
    with torch.no_grad():
        weights = model.food_log_weights(latents, probe[0])
    on_snake = (probe[0] > FOOD) & (probe[2] > FOOD)
    probs = torch.softmax(weights.flatten(1), dim=1).view_as(weights)
    # uniform over the board would put about a third of the mass on these snakes (length >= 10 of 36 cells)
    assert (probs * on_snake).sum((1, 2)).mean() < 0.1


def test_the_food_head_needs_a_model_that_has_one_and_eating_moves(rows):
    columns = {key: rows["6x6"][key] for key in COLUMNS}
    with pytest.raises(ValueError, match="food head"):
        tune_decoder(tiny_model(), {"6x6": columns}, DecoderTuneConfig(steps=1, part="food_head"))
    grew = set(eating_moves(columns)[0].tolist())
    keep = [i for i in range(len(columns["state"])) if i not in grew][:20]
    never = {key: value[keep] for key, value in columns.items()}
    model = SnakeWorldEqM(SnakeWorldEqMConfig(**TINY, food_head=True)).eval()
    with pytest.raises(ValueError, match="no eating move"):
        tune_decoder(model, {"6x6": never}, DecoderTuneConfig(steps=1, part="food_head"))
    with pytest.raises(ValueError, match="part"):
        DecoderTuneConfig(part="encoder")


def test_skipping_the_new_food_makes_the_loss_blind_to_where_the_food_went(rows):
    # Two targets that differ only in where the new food appeared: a descent latent names neither, so with the
    # food left out the decoder is scored on the snake alone.
    columns = rows["6x6"]
    row, action = eating_moves(columns)
    states = torch.as_tensor(columns["state"][row[:4]], dtype=torch.long)
    first = torch.as_tensor(columns["next_state_per_action"][row[:4], action[:4]], dtype=torch.long)
    second = first.clone()
    for board in second:
        board[board == FOOD] = EMPTY
        free = (board == EMPTY).nonzero()
        board[tuple(free[-1])] = FOOD
    assert not torch.equal(first, second)
    model, latents, skip = tiny_model(), torch.randn(4, 8), torch.ones(4, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(decoder_loss(model, states, latents, first, skip),
                              decoder_loss(model, states, latents, second, skip))
        assert not torch.allclose(decoder_loss(model, states, latents, first),
                                  decoder_loss(model, states, latents, second))


def test_training_keeps_the_food_head_out_of_the_optimizers_reach(tmp_path, caplog):
    # `train` has no loss for the head; under two processes DDP refuses parameters without a gradient
    # (tests/dataset_builder/test_finetune_dagger.py runs that), so the head is frozen and the user told.
    from snake_world_eqm.training.model_setup import build_model

    torch.manual_seed(0)
    SnakeWorldEqM(SnakeWorldEqMConfig(**TINY, food_head=True)).save_pretrained(tmp_path)
    config = SnakeWorldEqMConfig.from_pretrained(tmp_path)
    with caplog.at_level("WARNING"):
        model = build_model("eqm", config, str(tmp_path))
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {f"decoder.food_head.{i}.{kind}" for i in (0, 2) for kind in ("weight", "bias")}
    assert "tune-decoder --part food-head" in caplog.text
    plain = build_model("eqm", SnakeWorldEqMConfig(**TINY))
    assert all(p.requires_grad for p in plain.parameters())
