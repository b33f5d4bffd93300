"""Issue 28, items 12 and 16: a checkpoint missing tensors is an error, and sample() takes no bad start."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
from snake_world_eqm.game.encoding import encode_observation, terminal_observation
from snake_world_eqm.game.rules import new_game
from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM
from snake_world_eqm.pretrained import PretrainedLoadError, load_model
from tests.model.test_bad_input_model import TINY


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return SnakeWorldEqM(SnakeWorldEqMConfig(**TINY)).eval()


def _edited(model, folder, edit):
    model.save_pretrained(folder)
    tensors = load_file(str(folder / "model.safetensors"))
    save_file(edit(tensors), str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def test_missing_tensors_are_an_error(model, tmp_path):
    """Item 12: a checkpoint missing most of its tensors used to play with random weights, exit 0."""
    folder = _edited(model, tmp_path / "m", lambda t: dict(list(t.items())[:3]))
    with pytest.raises(PretrainedLoadError, match="missing"):
        load_model(folder)
    assert load_model(folder, allow_partial=True) is not None  # asked for: loads, with a warning


def test_unexpected_tensors_are_an_error(model, tmp_path):
    folder = _edited(model, tmp_path / "u", lambda t: {**t, "stray.weight": torch.zeros(3)})
    with pytest.raises(PretrainedLoadError, match="unexpected"):
        load_model(folder)


def test_complete_checkpoint_loads(model, tmp_path):
    model.save_pretrained(tmp_path / "ok")
    loaded = load_model(tmp_path / "ok")
    board = encode_observation(new_game(6, 6, rng=0))
    assert torch.equal(loaded.sample(board, init_scale=0).next_board, model.sample(board, init_scale=0).next_board)


def test_terminal_board_stays_terminal(model):
    """Item 16: from a terminal board the model predicted an illegal board that validate=True accepted."""
    boards = np.stack([terminal_observation(6, 6), encode_observation(new_game(6, 6, rng=1))])
    out = model.sample(boards, validate=True, init_scale=0)
    assert (out.next_board[0] == 0).all()


@pytest.mark.parametrize("scale", [1e300, float("inf"), float("nan"), -1.0, True])
def test_init_scale_bounds(model, scale):
    """Item 16: init_scale=1e300 returned NaN."""
    with pytest.raises(ValueError, match="init_scale"):
        model.sample(encode_observation(new_game(6, 6, rng=0)), init_scale=scale)


@pytest.mark.parametrize("action", [True, False, np.bool_(True)])
def test_boolean_action_is_refused(model, action):
    """Item 16: sample(action=True) was taken as action 1."""
    with pytest.raises(TypeError, match="boolean"):
        model.sample(encode_observation(new_game(6, 6, rng=0)), action=action)
