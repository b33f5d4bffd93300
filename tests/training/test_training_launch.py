"""Launching training as subprocesses, offline:
- `accelerate launch --cpu --num_processes 2 hub_scripts/train.py` with `--dataset org/name`, a Hub repo id
  read from a pre-populated offline cache. (Accelerate's `--cpu` launcher starts a single process: CPU
  multi-process needs mpirun there; the next test runs real data parallel.)
- `accelerate launch --multi_gpu --num_processes 2 hub_scripts/train.py` on a machine without a GPU:
  two processes, gloo DDP, gathered validation, per-process RNG states in the checkpoint.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM
from tests.training_helpers import QUIET, REPO_ROOT, TINY_EQM, build_tiny_dataset, subprocess_env

SCRIPT = str(REPO_ROOT / "hub_scripts" / "train.py")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "snake")


def _accelerate_launch(*args: str) -> list[str]:
    # The `accelerate` console script when installed (it is, with accelerate), else the same module.
    cli = shutil.which("accelerate")
    launch = [cli, "launch"] if cli else [sys.executable, "-m", "accelerate.commands.launch"]
    return [*launch, "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", *args]


def _run(command: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


@pytest.mark.slow
def test_accelerate_launch_cpu_with_a_hub_repo_id_offline(dataset, tmp_path):
    cache = tmp_path / "hub"
    repo = cache / "datasets--org--snake-world"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(dataset, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    out = tmp_path / "from_repo"
    env = subprocess_env(HF_HUB_CACHE=str(cache), HF_DATASETS_CACHE=str(tmp_path / "datasets_cache"))
    command = _accelerate_launch(
        "--cpu", "--num_processes", "2", SCRIPT, "--dataset", "org/snake-world", "--output-dir", str(out),
        "--max-steps", "3", "--batch-size", "16", "--eval-every", "3", "--max-eval-samples", "16", *TINY_EQM, *QUIET)
    _run(command, env)
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["dataset"] == "org/snake-world" and summary["global_step"] == 3
    model = SnakeWorldEqM.from_pretrained(out)
    assert model.config.board_height == 6
    assert "- org/snake-world" in (out / "README.md").read_text()  # the card's datasets metadata


@pytest.mark.slow
def test_two_process_data_parallel_on_cpu(dataset, tmp_path):
    out = tmp_path / "ddp"
    command = _accelerate_launch(
        "--multi_gpu", "--num_processes", "2", SCRIPT, "--model", "baseline", "--dataset", str(dataset),
        "--output-dir", str(out), "--max-steps", "4", "--batch-size", "8", "--eval-every", "2", "--save-every", "2",
        "--max-eval-samples", "12", *TINY_EQM, *QUIET)
    _run(command, subprocess_env(CUDA_VISIBLE_DEVICES=""))
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 4
    assert summary["samples_seen"] == 4 * 8 * 2  # per-process batch x processes
    assert summary["validation"]["num_rows"] == 12  # gather_for_metrics dropped the padding
    SnakePolicyBaseline.from_pretrained(out)
    names = sorted(p.name for p in (out / "checkpoints" / "checkpoint-4").glob("random_states_*"))
    assert names == ["random_states_0.pkl", "random_states_1.pkl"]
