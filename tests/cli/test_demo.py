"""`snake-eqm demo` end to end, at toy size: every step runs and the report folder is complete."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from snake_world_eqm.cli import main as cli_main

TOY = ["--num-samples", "1500", "--baseline-steps", "3", "--games", "2", "--max-steps", "20", "--eval-rows", "64"]


def test_demo_from_scratch_writes_a_complete_report_and_flags_an_undertrained_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    out = tmp_path / "demo"
    # Four steps from zero cannot reach the 0.8 floor: the report is still written, the exit status says so.
    assert cli_main(["demo", "--output-dir", str(out), "--init", "scratch", "--train-steps", "4", *TOY]) == 1
    verdict = [line for line in capsys.readouterr().err.splitlines() if "below the 0.80 floor" in line]
    assert len(verdict) == 1 and "after 4 steps (scratch)" in verdict[0] and "--train-steps 8" in verdict[0]
    report = json.loads((out / "report.json").read_text())
    assert set(report["play"]) == {"eqm", "planner", "baseline", "expert", "random"}
    assert 0.0 <= report["action_accuracy"] < 0.8
    assert report["demo"]["below_quality_floor"] is True and report["demo"]["train_steps"] == 4
    assert sorted(p.name for p in (out / "plots").glob("*.png")) == [
        "accuracy_vs_steps.png", "adaptive_tradeoff.png", "apples_per_agent.png", "grad_norm_histograms.png"]
    with Image.open(out / "eqm_game.gif") as gif:
        assert gif.n_frames >= 2
    commands = (out / "commands.txt").read_text().splitlines()
    assert [line.split()[:2] for line in commands] == [
        ["python", "-m"], ["snake-eqm", "train"], ["snake-eqm", "train"], ["snake-eqm", "evaluate"],
        ["snake-eqm", "play"]]
    for model_dir in ("eqm", "baseline"):
        assert (out / model_dir / "model.safetensors").is_file()
        assert json.loads((out / model_dir / "metrics.json").read_text())["stopped_because"] == "max_steps"
    # The dataset is compressed parquet: a small part of the report folder.
    dataset_bytes = sum(p.stat().st_size for p in (out / "dataset").rglob("*") if p.is_file())
    total_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert sorted(p.name for p in (out / "dataset" / "data").iterdir()) == [
        "test.parquet", "train.parquet", "validation.parquet"]
    assert dataset_bytes < 0.5 * total_bytes


def test_demo_refuses_to_overwrite_and_bad_values(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit, match="exists"):
        cli_main(["demo", "--output-dir", str(tmp_path / "taken")])
    for flag in ("--games", "--train-steps", "--num-samples"):
        with pytest.raises(SystemExit):
            cli_main(["demo", "--output-dir", str(tmp_path / "x"), flag, "0"])
    assert not (tmp_path / "x").exists()


def test_overwrite_removes_only_what_the_demo_wrote(tmp_path):
    from snake_world_eqm.demo import _remove_previous_report

    (tmp_path / "eqm").mkdir()
    (tmp_path / "eqm" / "model.safetensors").write_text("old")
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("mine")
    _remove_previous_report(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
