"""Bad input to the model side (issue 15, items 6, 7, 8, 11): every config field, the sampler's arguments,
loading the wrong class, a missing folder, a truncated weights file. Each is refused with an error naming it."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from transformers import AutoModel

from snake_world_eqm import SnakePolicyBaseline, SnakePolicyBaselineConfig, SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.game import encode_observation, new_game

TINY = dict(board_height=6, board_width=6, d_model=16, num_layers=1, num_heads=2, latent_dim=8, eqm_hidden_dim=16,
            eqm_num_layers=1, decoder_channels=8, decoder_layers=1, eqm_sampling_steps=3)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A tiny EqM model and a tiny baseline saved with save_pretrained."""
    root = tmp_path_factory.mktemp("models")
    eqm = SnakeWorldEqM(SnakeWorldEqMConfig(**TINY)).eval()
    eqm.save_pretrained(root / "eqm")
    baseline = SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(eqm.config))
    baseline.save_pretrained(root / "baseline")
    return {"eqm": root / "eqm", "baseline": root / "baseline", "model": eqm}


# ------------------------------------------------------------------------------------------------------
# Item 6 + 8: every config field has a type and a range


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("d_model", "64"),  # a string where an int belongs
        ("d_model", 64.0),
        ("d_model", 0),
        ("d_model", 100_000),
        ("num_layers", -1),
        ("num_heads", True),
        ("cnn_layers", 1_000_000),  # hung from_pretrained at 10 GB
        ("cnn_channels", 0),
        ("ffn_dim", -4),
        ("use_cnn", 1),
        ("fixed_board_size", "yes"),
        ("board_height", 3),
        ("board_width", 33),
        ("num_cell_classes", 13),
        ("num_actions", 5),
        ("dropout", 1.0),
        ("dropout", math.nan),
        ("latent_dim", 0),
        ("latent_hidden_dim", 1.5),
        ("decoder_layers", 65),
        ("decoder_noise_std", math.inf),
        ("recon_changed_weight", -1.0),
        ("whatif_recon_fraction", 1.5),
        ("eqm_num_layers", 0),
        ("gradient_multiplier", math.nan),
        ("gradient_multiplier", 0.0),
        ("schedule_a", 1.0),
        ("schedule_b", math.inf),
        ("action_scale", -2.0),
        ("state_loss_weight", math.nan),
        ("whatif_loss_weight", -0.5),
        ("eqm_sampling_steps", 2.7),
        ("eqm_step_size", 1e308),
        ("eqm_step_size", math.nan),
        ("eqm_nag_momentum", 1.0),
        ("eqm_adaptive_threshold", math.nan),
        ("eqm_adaptive_threshold", -1.0),
        ("gradient_schedule", "cosine"),
        ("energy_type", "hinge"),
        ("cnn_mode", "stack"),
        ("initializer_range", 0.0),
    ],
)
def test_eqm_config_refuses_a_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        SnakeWorldEqMConfig(**{field: value})


@pytest.mark.parametrize(("field", "value"), [("head_hidden_dim", 0), ("d_model", "16"), ("dropout", -0.1),
                                              ("cnn_layers", 10**6)])
def test_baseline_config_refuses_a_bad_field(field, value):
    with pytest.raises(ValueError, match=field):
        SnakePolicyBaselineConfig(**{field: value})


def test_good_configs_still_build_and_json_ints_become_floats():
    assert SnakeWorldEqMConfig(gradient_multiplier=4).gradient_multiplier == 4.0
    assert isinstance(SnakeWorldEqMConfig(gradient_multiplier=4).gradient_multiplier, float)
    SnakeWorldEqMConfig.cpu_small()
    SnakeWorldEqMConfig.recommended(eqm_adaptive_threshold=None)
    SnakePolicyBaselineConfig.from_eqm_config(SnakeWorldEqMConfig.cpu_small())


@pytest.mark.parametrize(("field", "value"), [("d_model", "64"), ("cnn_layers", 1_000_000), ("eqm_step_size", 1e308)])
def test_from_pretrained_of_a_bad_config_json_names_the_field(saved, tmp_path, field, value):
    folder = tmp_path / "edited"
    folder.mkdir()
    config = json.loads((saved["eqm"] / "config.json").read_text())
    config[field] = value
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "model.safetensors").write_bytes((saved["eqm"] / "model.safetensors").read_bytes())
    with pytest.raises(ValueError, match=field):
        SnakeWorldEqM.from_pretrained(folder)


# ------------------------------------------------------------------------------------------------------
# Item 6: the sampler's arguments


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"step_size": math.nan}, "step_size"),
        ({"step_size": math.inf}, "step_size"),
        ({"step_size": 0.0}, "step_size"),
        ({"step_size": "0.1"}, "step_size"),
        ({"adaptive_threshold": math.nan}, "adaptive_threshold"),
        ({"adaptive_threshold": 0.0}, "adaptive_threshold"),
        ({"num_steps": 2.7}, "num_steps"),
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": True}, "num_steps"),
        ({"num_steps": 10**9}, "num_steps"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": math.nan}, "momentum"),
    ],
)
def test_sample_refuses_bad_sampler_arguments(saved, kwargs, fragment):
    board = encode_observation(new_game(6, 6, 0))
    with pytest.raises(ValueError, match=fragment):
        saved["model"].sample(board, **kwargs)


def test_sample_accepts_numpy_scalars(saved):
    board = encode_observation(new_game(6, 6, 0))
    out = saved["model"].sample(board, num_steps=np.int64(2), step_size=np.float32(0.1), adaptive_threshold=None)
    assert out.num_steps.tolist() == [2]


# ------------------------------------------------------------------------------------------------------
# Item 7 + 11: loading


def test_baseline_class_refuses_an_eqm_folder(saved):
    with pytest.raises(ValueError, match="snake_world_eqm"):
        SnakePolicyBaseline.from_pretrained(saved["eqm"])


def test_eqm_class_refuses_a_baseline_folder(saved):
    with pytest.raises(ValueError, match="snake_policy_baseline"):
        SnakeWorldEqM.from_pretrained(saved["baseline"])


def test_automodel_still_picks_the_right_class(saved):
    assert type(AutoModel.from_pretrained(saved["baseline"])) is SnakePolicyBaseline
    assert type(AutoModel.from_pretrained(saved["eqm"])) is SnakeWorldEqM


@pytest.mark.parametrize("name", ["missing", "./missing/model", "deeper/still/missing"])
def test_missing_local_folder_says_it_does_not_exist(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SnakeWorldEqM.from_pretrained(str(tmp_path / name) if name == "missing" else name)


def test_truncated_safetensors_names_the_file(saved, tmp_path):
    folder = tmp_path / "truncated"
    folder.mkdir()
    (folder / "config.json").write_text((saved["eqm"] / "config.json").read_text())
    data = (saved["eqm"] / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="model.safetensors") as error:
        SnakeWorldEqM.from_pretrained(folder)
    assert str(folder) in str(error.value)


def test_loaded_weights_match_when_nothing_is_wrong(saved):
    loaded = SnakeWorldEqM.from_pretrained(saved["eqm"])
    for name, value in saved["model"].state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name]), name
