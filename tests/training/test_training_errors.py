"""Bad input is refused with a clear message before any training starts (nothing is written)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from datasets import Array2D, ClassLabel, Dataset, DatasetDict, Features, load_dataset

from snake_world_eqm.training import main
from tests.training_helpers import QUIET, TINY_EQM, build_tiny_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake")


def _fails(capsys, argv, *fragments):
    """main returns 2, prints every fragment, and the output dir was never created."""
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in: {err}"
    return err


def _argv(dataset, out, *extra):
    return ["--dataset", str(dataset), "--output-dir", str(out), "--max-steps", "2", *TINY_EQM, *QUIET, *extra]


def test_dataset_without_needed_columns(dataset, tmp_path, capsys):
    broken = tmp_path / "no_next_state"
    loaded = load_dataset(str(dataset))
    loaded.remove_columns("next_state").save_to_disk(str(broken))
    out = tmp_path / "out"
    _fails(capsys, _argv(broken, out), "next_state", "missing")
    assert not out.exists()
    # The baseline needs no next_state: the same folder is accepted up to the run itself.
    assert main(_argv(broken, out, "--model", "baseline", "--eval-every", "1", "--max-eval-samples", "4")) == 0


def test_board_size_the_config_cannot_take(tmp_path, capsys):
    boards = np.zeros((4, 3, 3), dtype=np.int8)
    feats = Features({"state": Array2D((3, 3), "int8"), "next_state": Array2D((3, 3), "int8"),
                      "action": ClassLabel(names=["up", "right", "down", "left"])})
    rows = {"state": boards, "next_state": boards, "action": [0, 1, 2, 3]}
    folder = tmp_path / "three"
    DatasetDict({"train": Dataset.from_dict(rows, features=feats)}).save_to_disk(str(folder))
    out = tmp_path / "out"
    _fails(capsys, _argv(folder, out), "boards are 3x3", "4..32")  # the dataset check names it on load
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (["--gradient-schedule", "cosine"], ["gradient_schedule", "cosine"]),
        (["--resume-from-checkpoint", "/no/such/checkpoint"], ["--resume-from-checkpoint", "no such checkpoint"]),
        (["--report-to", "nosuchtracker"], ["unknown tracker", "nosuchtracker"]),
        (["--config-preset", "gpu-huge"], ["--config-preset gpu-huge", "cpu-small"]),
        (["--config-set", "no_such_field=1"], ["no_such_field"]),
        (["--d-model", "30", "--num-heads", "4"], ["divisible"]),
        (["--eqm-nag-momentum", "1.5"], ["momentum", "[0, 1)"]),
        (["--best-metric", "happiness"], ["--best-metric happiness"]),
        (["--schedule-a", "1.5"], ["schedule_a"]),
    ],
)
def test_bad_values_are_refused_before_training(dataset, tmp_path, capsys, extra, fragments):
    out = tmp_path / "out"
    _fails(capsys, _argv(dataset, out, *extra), *fragments)
    assert not out.exists()


@pytest.mark.parametrize(
    "extra",
    [["--batch-size", "0"], ["--learning-rate", "-1"], ["--mixed-precision", "fp8"], ["--epochs", "-3"],
     ["--model", "diffusion"], ["--gradient-accumulation-steps", "0"], ["--max-train-minutes", "nan"]],
)
def test_bad_flag_syntax_is_an_argparse_error(dataset, tmp_path, capsys, extra):
    out = tmp_path / "out"
    assert main(_argv(dataset, out, *extra)) == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists()


def test_missing_dataset_and_incomplete_checkpoint(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    _fails(capsys, _argv(tmp_path / "nowhere", out), "--dataset", "nowhere")
    partial = tmp_path / "checkpoint-7"
    partial.mkdir()  # what a crash mid-write could leave if it were not renamed into place
    _fails(capsys, _argv(dataset, out, "--resume-from-checkpoint", str(partial)), "not a complete checkpoint")
    assert not out.exists()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed here")
def test_wandb_flag_without_wandb_installed(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    _fails(capsys, _argv(dataset, out, "--wandb"), "wandb", "pip install wandb")
    assert not out.exists()


def test_help_lists_every_seed_flag(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    seed_flags = ("--dataset --epochs --batch-size --d-model --num-layers --num-heads --use-cnn --cnn-mode "
                  "--latent-dim --eqm-hidden-dim --eqm-num-layers --gradient-schedule --gradient-multiplier "
                  "--eqm-sampling-steps --eqm-step-size --eqm-nag-momentum --eqm-adaptive-threshold --wandb "
                  "--output-dir").split()
    assert [flag for flag in seed_flags if flag not in text] == []
