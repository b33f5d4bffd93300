"""`snake-eqm evaluate` is quiet by default (a short table; JSON only with --json; no loading bars), warns when
the evaluation's expert is not the model's teacher, and refuses --json X --plots X before any work."""

from __future__ import annotations

import json

import pytest
import torch

from snake_world_eqm.evaluation import cli

SIZE = 6
FAST = ["--max-rows", "40", "--games", "2", "--max-steps", "20", "--fixed-steps", "1,2", "--adaptive-max-steps",
        "2", "--spread-seeds", "2", "--fatal-games", "0", "--agents", "eqm,expert,random", "--no-progress",
        "--threads", "1"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.data import GenerationConfig, generate_dataset_dict
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

    root = tmp_path_factory.mktemp("evaluate")
    torch.manual_seed(0)
    config = SnakeWorldEqMConfig.cpu_small(
        board_height=SIZE, board_width=SIZE, d_model=16, cnn_channels=16, cnn_layers=1, latent_dim=8,
        latent_hidden_dim=16, decoder_channels=8, decoder_layers=1, eqm_hidden_dim=16, eqm_num_layers=1)
    SnakeWorldEqM(config).save_pretrained(root / "model")
    (root / "model" / "metrics.json").write_text(json.dumps({"expert": "route"}))  # trained on route
    data = GenerationConfig(num_samples=200, height=SIZE, width=SIZE, seed=5, split_fractions=(0.5, 0.1, 0.4))
    generate_dataset_dict(data, progress=False).save_to_disk(str(root / "data"))  # no card: an astar dataset
    return root


@pytest.fixture(autouse=True)
def _restore_transformers_logging():
    import datasets
    from transformers.utils import logging as transformers_logging

    yield
    datasets.enable_progress_bars()
    transformers_logging.enable_progress_bar()
    transformers_logging.set_verbosity_warning()


def test_default_output_is_a_short_table_and_the_teacher_mismatch_warning(folders, capsys, tmp_path):
    out_json = tmp_path / "result.json"
    code = cli.main(["--model", str(folders / "model"), "--dataset", str(folders / "data"),
                     "--json", str(out_json), *FAST])
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) < 40 and not captured.out.lstrip().startswith("{")
    assert any(line.strip().startswith("action accuracy") for line in lines)
    assert any(line.strip().startswith("eqm ") and "±" in line for line in lines)
    assert lines[-1] == f"full result: {out_json}"
    assert json.loads(out_json.read_text())["config"]["expert"] == "astar"
    assert "Loading weights" not in captured.err and "Generating" not in captured.err
    # --no-progress silences every bar of the evaluation, not only the play ones (issue #35).
    for bar in ("what-if", "fixed steps", "adaptive", "play "):
        assert f"{bar}:" not in captured.err, bar
    assert "\r" not in captured.err and "it/s" not in captured.err
    # One line names both experts and the flag that chooses.
    warning = [line for line in captured.err.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "'route'" in warning[0] and "'astar'" in warning[0]
    assert "--expert route" in warning[0]


def test_no_warning_when_the_expert_is_the_teacher(folders, capsys):
    assert cli.main(["--model", str(folders / "model"), "--dataset", str(folders / "data"),
                     "--expert", "route", *FAST]) == 0
    captured = capsys.readouterr()
    assert "warning:" not in captured.err and "full result: pass --json" in captured.out


def test_the_teacher_is_read_from_the_model_folder_or_its_datasets(tmp_path):
    from snake_world_eqm.shipped import PRETRAINED_10X10

    assert cli.model_teacher(str(PRETRAINED_10X10)) == "route"
    assert cli.model_teacher(str(tmp_path / "missing")) is None
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "README.md").write_text(
        "---\nsnake_world_eqm:\n  generation:\n    expert: fill\n---\n")
    (tmp_path / "metrics.json").write_text(json.dumps({"dataset": [str(tmp_path / "data"), "/nowhere"]}))
    assert cli.model_teacher(str(tmp_path)) == "fill"
    assert cli.teacher_mismatch("fill", "fill") is None and cli.teacher_mismatch(None, "astar") is None
    assert "named with --expert" in cli.teacher_mismatch("route", "fill", chosen="fill")


def test_json_and_plots_on_one_path_fail_before_the_evaluation(folders, capsys, tmp_path, monkeypatch):
    import snake_world_eqm.evaluation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("evaluated anyway"))
    same = tmp_path / "out"
    code = cli.main(["--model", str(folders / "model"), "--dataset", str(folders / "data"),
                     "--json", str(same), "--plots", str(same), *FAST])
    assert code == 2
    err = capsys.readouterr().err
    assert "--json" in err and "--plots" in err and "same path" in err
    assert not same.exists()  # nothing written, no folder made
