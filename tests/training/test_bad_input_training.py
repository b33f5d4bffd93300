"""Training faults (issue 15, items 5, 6, 8, 9, 11, 12): runs never mix in one output dir, a non-finite loss
stops before it reaches the weights, SIGINT/SIGTERM checkpoint and exit cleanly, corrupt checkpoints are named,
checkpoints are pruned by default. Tiny model, tiny boards, in-process runs."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch
from safetensors.torch import load_file

from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM
from snake_world_eqm.processes import capped_workers
from snake_world_eqm.training import build_parser, main
from snake_world_eqm.training.checkpoints import latest_checkpoint
from tests.training_helpers import QUIET, TINY_EQM, build_tiny_dataset, poison_forward


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake")


def _argv(dataset, out, *extra):
    return ["--dataset", str(dataset), "--output-dir", str(out), "--batch-size", "16", "--max-eval-samples", "8",
            "--eval-every", "1000", "--warmup-steps", "1", *TINY_EQM, *QUIET, *extra]


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    lines = [line for line in err if "snake-eqm train: error:" in line]
    assert len(lines) == 1 and not any("Traceback" in line for line in err), err
    return lines[0]


# ------------------------------------------------------------------------------------------------------
# Item 5: one output dir, one run


def test_a_new_run_refuses_a_folder_holding_another_run(dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(_argv(dataset, out, "--max-steps", "2")) == 0
    first = json.loads((out / "run.json").read_text())["run_id"]
    before = (out / "model.safetensors").read_bytes()
    assert main(_argv(dataset, out, "--max-steps", "2", "--seed", "7")) == 2
    assert "--overwrite-output-dir" in _error(capsys)
    assert (out / "model.safetensors").read_bytes() == before  # nothing of the old run was touched

    assert main(_argv(dataset, out, "--max-steps", "2", "--seed", "7", "--overwrite-output-dir")) == 0
    second = json.loads((out / "run.json").read_text())["run_id"]
    assert second != first
    states = [json.loads((path / "training_state.json").read_text()) for path in (out / "checkpoints").iterdir()]
    assert {state["run_id"] for state in states} == {second}  # the old run's checkpoints are gone


def test_latest_only_resumes_checkpoints_of_the_folders_run(tmp_path):
    root = tmp_path / "checkpoints"
    for step, run in ((4, "old"), (2, "new"), (9, "old")):
        (root / f"checkpoint-{step}").mkdir(parents=True)
        (root / f"checkpoint-{step}" / "training_state.json").write_text(json.dumps({"run_id": run, "loop": {}}))
    assert latest_checkpoint(root).name == "checkpoint-9"
    assert latest_checkpoint(root, run_id="new").name == "checkpoint-2"
    assert latest_checkpoint(root, run_id="other") is None


def test_resume_latest_continues_the_same_run(dataset, tmp_path):
    out = tmp_path / "out"
    assert main(_argv(dataset, out, "--max-steps", "2", "--save-every", "1")) == 0
    run_id = json.loads((out / "run.json").read_text())["run_id"]
    assert main(_argv(dataset, out, "--max-steps", "3", "--save-every", "1", "--resume-from-checkpoint", "latest")) == 0
    assert json.loads((out / "run.json").read_text())["run_id"] == run_id
    assert json.loads((out / "checkpoints" / "checkpoint-3" / "training_state.json").read_text())["run_id"] == run_id


def test_unwritable_output_dir_is_refused_before_any_work(dataset, tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    assert main(_argv(dataset, tmp_path / "file.txt" / "out", "--max-steps", "1")) == 2
    assert "is not a folder" in _error(capsys)


# ------------------------------------------------------------------------------------------------------
# Item 6: NaN


def test_config_set_nan_is_refused(dataset, tmp_path, capsys):
    assert main(_argv(dataset, tmp_path / "out", "--max-steps", "2", "--config-set", "gradient_multiplier=NaN")) == 2
    assert "gradient_multiplier" in _error(capsys)
    assert not (tmp_path / "out").exists()


def _poison_forward(monkeypatch, after_calls: int, effect):
    poison_forward(monkeypatch, SnakeWorldEqM, after_calls, effect)


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(dataset, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"

    def make_nan(output):
        output.loss = output.loss * float("nan")

    _poison_forward(monkeypatch, after_calls=5, effect=make_nan)  # training step 4 (the smoke test is call 1)
    assert main(_argv(dataset, out, "--max-steps", "50", "--save-every", "2")) == 1
    line = _error(capsys)
    assert "loss became nan at step 4" in line and "checkpoint-2" in line
    weights = load_file(str(out / "checkpoints" / "checkpoint-2" / "model.safetensors"))
    assert all(torch.isfinite(value).all() for value in weights.values())
    assert not (out / "model.safetensors").exists()  # no final model made of NaNs


# ------------------------------------------------------------------------------------------------------
# Item 9: signals


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_checkpoints_and_exits_cleanly(dataset, tmp_path, capsys, monkeypatch, signum):
    out = tmp_path / "out"
    _poison_forward(monkeypatch, after_calls=4, effect=lambda output: os.kill(os.getpid(), signum))
    assert main(_argv(dataset, out, "--max-steps", "100000", "--save-every", "1000")) == 128 + signum
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["stopped_because"] == "interrupted"
    step = summary["global_step"]
    assert 3 <= step < 100000 and (out / "checkpoints" / f"checkpoint-{step}").is_dir()
    assert signal.getsignal(signum) is not None and signal.getsignal(signal.SIGINT) == signal.default_int_handler


# ------------------------------------------------------------------------------------------------------
# Item 11: corrupt checkpoints name the bad file


@pytest.mark.parametrize("name", ["training_state.json", "optimizer.bin", "model.safetensors"])
def test_corrupt_checkpoint_file_is_named(dataset, tmp_path, capsys, name):
    out = tmp_path / "out"
    assert main(_argv(dataset, out, "--max-steps", "2", "--save-every", "2")) == 0
    bad = out / "checkpoints" / "checkpoint-2" / name
    bad.write_bytes(bad.read_bytes()[:40])
    assert main(_argv(dataset, out, "--max-steps", "4", "--resume-from-checkpoint", "latest")) == 2
    assert str(bad) in _error(capsys)


# ------------------------------------------------------------------------------------------------------
# Items 8 and 12: bounded resources


def test_checkpoints_are_pruned_by_default(dataset, tmp_path):
    assert build_parser().get_default("checkpoints_total_limit") == 3
    out = tmp_path / "out"
    assert main(_argv(dataset, out, "--max-steps", "6", "--save-every", "1")) == 0
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == [
        "checkpoint-4", "checkpoint-5", "checkpoint-6"]


def test_workers_are_capped_by_the_cpus(monkeypatch, capsys):
    monkeypatch.setattr("snake_world_eqm.processes.available_cpus", lambda: 2)
    assert capped_workers(99_999, "data loader workers") == 2
    assert capped_workers(1) == 1
    assert "99999 data loader workers requested, 2 CPU(s)" in capsys.readouterr().err
