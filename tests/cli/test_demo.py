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


def test_the_time_the_demo_announces_is_the_recorded_run():
    """`snake-eqm demo` prints how long it should take; that must be what docs/results recorded, not a guess."""
    from snake_world_eqm.demo import EXPECTED_MINUTES, PROFILES
    from tests.training_helpers import REPO_ROOT

    for condition, name in (("idle", "demo_cpu.json"), ("loaded", "demo_cpu_loaded.json")):
        run = json.loads((REPO_ROOT / "docs" / "results" / name).read_text())
        assert round(run["wall_minutes"], 1) == EXPECTED_MINUTES[condition], name
        quick = PROFILES["quick"]
        assert run["demo_args"]["full"] is False and run["demo_args"]["num_samples"] == quick["num_samples"]
        assert run["demo_args"]["train_steps"] == quick["train_steps"]["shipped"]
    assert EXPECTED_MINUTES["idle"] <= 2.0 and EXPECTED_MINUTES["loaded"] <= 3.0  # the bar (#35)


def test_profiles_fill_only_the_flags_left_unset_and_threads_follow_the_free_cores(monkeypatch):
    from snake_world_eqm import demo

    monkeypatch.setattr(demo, "free_cores", lambda window=0.5: 1)
    quick = demo.resolve_defaults(demo.build_parser().parse_args([]))
    assert (quick.num_samples, quick.train_steps, quick.baseline_steps, quick.games, quick.max_steps, quick.threads) == (
        20_000, 40, 480, 10, 200, 1)
    full = demo.resolve_defaults(demo.build_parser().parse_args(["--full", "--games", "3", "--threads", "2"]))
    assert (full.num_samples, full.train_steps, full.baseline_steps, full.games, full.max_steps, full.threads) == (
        40_000, 200, 400, 3, 300, 2)
    assert full.fatal_games == 8 and quick.fatal_games == 0


def test_free_cores_reads_the_idle_share_of_the_cpu(monkeypatch):
    from snake_world_eqm import demo

    samples = iter([(1000, 500), (1400, 700)])  # half the CPU time idle over the window
    monkeypatch.setattr(demo, "_cpu_times", lambda: next(samples))
    monkeypatch.setattr(demo.os, "cpu_count", lambda: 4)
    assert demo.free_cores(window=0) == 2
    monkeypatch.setattr(demo, "_cpu_times", lambda: (_ for _ in ()).throw(OSError("no /proc")))
    monkeypatch.setattr(demo.os, "getloadavg", lambda: (3.6, 0.0, 0.0))
    assert demo.free_cores(window=0) == 1  # 4 cores less a load of 3.6, rounded, at least one
