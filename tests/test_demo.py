"""`snake-eqm demo` end to end, at toy size: every step runs and the report folder is complete."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from snake_world_eqm.cli import main as cli_main


def test_demo_writes_a_complete_report(tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "demo"
    argv = ["demo", "--output-dir", str(out), "--num-samples", "1500", "--train-minutes", "0.05",
            "--baseline-minutes", "0.03", "--games", "2", "--max-steps", "20"]
    assert cli_main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["play"]) == {"eqm", "planner", "baseline", "expert", "random"}
    assert 0.0 <= report["action_accuracy"] <= 1.0
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "accuracy_vs_steps.png", "adaptive_tradeoff.png", "apples_per_agent.png", "grad_norm_histograms.png"]
    with Image.open(out / "eqm_game.gif") as gif:
        assert gif.n_frames >= 2
    commands = (out / "commands.txt").read_text().splitlines()
    assert [line.split()[:2] for line in commands[1:]] == [
        ["snake-eqm", "train"], ["snake-eqm", "train"], ["snake-eqm", "evaluate"], ["snake-eqm", "play"]]
    for model_dir in ("eqm", "baseline"):
        assert (out / model_dir / "model.safetensors").is_file()


def test_demo_refuses_to_overwrite_and_bad_values(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        cli_main(["demo", "--output-dir", str(tmp_path / "taken")])
    with pytest.raises(SystemExit, match="--games"):
        cli_main(["demo", "--output-dir", str(tmp_path / "x"), "--games", "0"])
    assert not (tmp_path / "x").exists()
