"""The two ways to launch training, as subprocesses, offline:
`accelerate launch --cpu --num_processes 2 hub_scripts/train.py` (data parallel) and
`snake-eqm train --dataset org/name` reading a Hub repo id from a pre-populated offline cache."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM
from tests.training_helpers import (
    QUIET,
    REPO_ROOT,
    TINY_EQM,
    build_tiny_dataset,
    subprocess_env,
    train_command,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake")


def _check(proc: subprocess.CompletedProcess) -> str:
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(dataset, tmp_path):
    out = tmp_path / "ddp"
    # The `accelerate` console script when installed (it is with the package), else the same module.
    cli = shutil.which("accelerate")
    accelerate = [cli, "launch"] if cli else [sys.executable, "-m", "accelerate.commands.launch"]
    command = [*accelerate, "--cpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", str(REPO_ROOT / "hub_scripts" / "train.py"),
               "--dataset", str(dataset), "--output-dir", str(out), "--max-steps", "4", "--batch-size", "8",
               "--eval-every", "2", "--save-every", "2", "--max-eval-samples", "12", *TINY_EQM, *QUIET]
    env = subprocess_env(ACCELERATE_CONFIG_FILE=str(tmp_path / "no_default_config.yaml"))
    _check(subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 4
    assert summary["samples_seen"] == 4 * 8 * 2  # per-process batch x processes
    assert summary["validation"]["num_rows"] == 12  # gather_for_metrics dropped the padding
    model = SnakeWorldEqM.from_pretrained(out)
    assert model.config.board_height == 6
    # Both processes' RNG states are in the checkpoint, so a resume restores each one.
    assert sorted(p.name for p in (out / "checkpoints" / "checkpoint-4").glob("random_states_*")) == [
        "random_states_0.pkl", "random_states_1.pkl"]


@pytest.mark.slow
def test_snake_eqm_train_reads_a_hub_repo_id_offline(dataset, tmp_path):
    cache = tmp_path / "hub"
    repo = cache / "datasets--org--snake-world"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(dataset, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    out = tmp_path / "from_repo"
    env = subprocess_env(HF_HUB_CACHE=str(cache), HF_DATASETS_CACHE=str(tmp_path / "datasets_cache"))
    argv = ["--dataset", "org/snake-world", "--model", "baseline", "--output-dir", str(out), "--max-steps", "3",
            "--batch-size", "16", "--eval-every", "3", "--max-eval-samples", "16", *TINY_EQM, *QUIET]
    _check(subprocess.run(train_command(*argv), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["dataset"] == "org/snake-world" and summary["global_step"] == 3
    SnakePolicyBaseline.from_pretrained(out)
    assert "datasets:\n- org/snake-world" in (out / "README.md").read_text()
