"""Kill test: a run killed with SIGKILL after a checkpoint and resumed with `latest` ends with the
same weights and the same loss curve as an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

from snake_world_eqm.training import checkpoints
from tests.training_helpers import (
    QUIET,
    REPO_ROOT,
    TINY_EQM,
    build_tiny_dataset,
    subprocess_env,
    train_command,
)

MAX_STEPS = 20  # > one epoch of the tiny set at batch 16, so the resumed part crosses an epoch boundary


def _argv(dataset, out, *extra):
    return ["--dataset", str(dataset), "--output-dir", str(out), "--max-steps", str(MAX_STEPS), "--batch-size", "16",
            "--save-every", "4", "--eval-every", "10", "--max-eval-samples", "16", "--log-every", "2",
            "--warmup-steps", "3", "--seed", "7", *TINY_EQM, *QUIET, *extra]


def _start(argv, log_path):
    log = open(log_path, "w")  # noqa: SIM115 - closed by the caller through proc.log
    proc = subprocess.Popen(train_command(*argv), cwd=REPO_ROOT, env=subprocess_env(), stdout=log,
                            stderr=subprocess.STDOUT)
    proc.log = log
    return proc


def _wait(proc, timeout=240):
    code = proc.wait(timeout=timeout)
    proc.log.close()
    return code


def _losses(out):
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    return [(row["step"], row.get("train/loss", row.get("loss"))) for row in rows]


@pytest.mark.slow
def test_sigkill_then_resume_latest_matches_an_uninterrupted_run(tmp_path):
    dataset = build_tiny_dataset(tmp_path / "data")
    ref_out, killed_out = tmp_path / "reference", tmp_path / "killed"
    reference = _start(_argv(dataset, ref_out), tmp_path / "reference.log")
    victim = _start(_argv(dataset, killed_out), tmp_path / "killed.log")

    # Kill as soon as a complete checkpoint exists, while the run is still going.
    root = checkpoints.checkpoints_dir(killed_out)
    deadline = time.monotonic() + 240
    while not checkpoints.complete_checkpoints(root) and victim.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert victim.poll() is None, "the run ended before it could be killed: " + (tmp_path / "killed.log").read_text()
    os.kill(victim.pid, signal.SIGKILL)
    assert _wait(victim) == -signal.SIGKILL
    assert not (killed_out / "model.safetensors").exists(), "the killed run must not have finished"
    killed_at = checkpoints.complete_checkpoints(root)[-1][0]
    assert killed_at < MAX_STEPS

    # What a crash in the middle of writing would leave: neither may be picked by `latest`.
    (root / f".tmp-checkpoint-{MAX_STEPS + 4}").mkdir()
    (root / f"checkpoint-{MAX_STEPS + 8}").mkdir()  # no training_state.json: incomplete
    resumed = _start(_argv(dataset, killed_out, "--resume-from-checkpoint", "latest"), tmp_path / "resumed.log")
    assert _wait(resumed) == 0, (tmp_path / "resumed.log").read_text()
    assert _wait(reference) == 0, (tmp_path / "reference.log").read_text()
    resumed_log = (tmp_path / "resumed.log").read_text()
    assert f"resumed from {root / f'checkpoint-{killed_at}'} at step {killed_at}" in resumed_log

    want, got = load_file(ref_out / "model.safetensors"), load_file(killed_out / "model.safetensors")
    assert want.keys() == got.keys()
    mismatched = [name for name in want if not torch.equal(want[name], got[name])]
    assert mismatched == [], f"weights differ after resume: {mismatched[:5]}"
    ref_curve, resumed_curve = _losses(ref_out), _losses(killed_out)
    assert [step for step, _ in ref_curve] == [step for step, _ in resumed_curve]
    assert [loss for _, loss in resumed_curve] == pytest.approx([loss for _, loss in ref_curve], abs=1e-5)
    ref_summary = json.loads((ref_out / "metrics.json").read_text())
    resumed_summary = json.loads((killed_out / "metrics.json").read_text())
    assert resumed_summary["samples_seen"] == ref_summary["samples_seen"]
    assert resumed_summary["validation"] == pytest.approx(ref_summary["validation"], abs=1e-6)
