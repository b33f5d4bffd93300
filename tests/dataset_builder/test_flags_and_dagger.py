"""Issue 28 items 17, 19: DAgger refuses a NaN learning rate and a dataset of another board size before any round
is scored or collected; seeds, --beta and --device are checked at parse time."""

from __future__ import annotations

import pytest
import torch

from dataset_builder.__main__ import build_parser as build_builder_parser
from dataset_builder.dagger import build_parser as build_dagger_parser
from dataset_builder.dagger import main as dagger_main
from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
from snake_world_eqm.evaluation.by_size_args import build_parser as build_sizes_parser
from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM
from tests.data.test_bad_input_data import _tiny
from tests.model.test_bad_input_model import TINY

pytestmark = pytest.mark.usefixtures("private_datasets_cache")


def _parse_fails(parser, argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(argv)
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--seed", str(2**70)), ("--beta", "nan")])
def test_builder_flags(flag, value, capsys):
    _parse_fails(build_builder_parser(), [flag, value], flag, capsys)


@pytest.mark.parametrize("flag, value", [("--learning-rate", "nan"), ("--learning-rate", "-1"), ("--seed", "-1")])
def test_dagger_flags(flag, value, capsys):
    _parse_fails(build_dagger_parser(), ["--model", "m", "--dataset", "d", "--output-dir", "o", flag, value], flag,
                 capsys)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_that_is_not_there(capsys):
    _parse_fails(build_sizes_parser(), ["--model", "m", "--device", "cuda"], "--device", capsys)
    _parse_fails(build_sizes_parser(), ["--model", "m", "--device", "gpu0"], "--device", capsys)


def test_dagger_refuses_a_dataset_of_another_size_before_round_zero(tmp_path, capsys):
    model = tmp_path / "model"
    SnakeWorldEqM(SnakeWorldEqMConfig(**TINY)).save_pretrained(model)  # 6x6
    data = _tiny(tmp_path / "five")  # 5x5
    out = tmp_path / "dagger"
    assert dagger_main(["--model", str(model), "--dataset", str(data), "--output-dir", str(out), "--rounds", "1",
                        "--samples-per-round", "50", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "5x5" in err and "6x6" in err and not out.exists()


def test_dagger_output_may_not_be_its_model(tmp_path, capsys):
    model = tmp_path / "model"
    SnakeWorldEqM(SnakeWorldEqMConfig(**{**TINY, "board_height": 5, "board_width": 5})).save_pretrained(model)
    data = _tiny(tmp_path / "five")
    assert dagger_main(["--model", str(model), "--dataset", str(data), "--output-dir", str(model / "rounds"),
                        "--rounds", "1", "--no-progress"]) == 2
    assert "input" in capsys.readouterr().err and not (model / "rounds").exists()
