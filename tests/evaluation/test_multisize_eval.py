"""Per-size evaluation and play, and the one-line errors for sizes and board shapes a model cannot take."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from snake_world_eqm import SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.evaluation import by_size
from snake_world_eqm.evaluation.play import main as play_main

TINY = dict(d_model=16, num_layers=1, num_heads=2, latent_dim=8, latent_hidden_dim=16, eqm_hidden_dim=16,
            eqm_num_layers=1, decoder_channels=8, decoder_layers=1, eqm_sampling_steps=2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny size-free model saved with a training summary that names its sizes, as `snake-eqm train` writes."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    SnakeWorldEqM(SnakeWorldEqMConfig(fixed_board_size=False, board_height=6, board_width=6, **TINY)).save_pretrained(path)
    (path / "metrics.json").write_text(json.dumps({"board_sizes": ["4x4", "6x6"]}))
    return path


def test_evaluate_sizes_writes_table_json_and_plot_with_seen_and_unseen_sizes(folder, tmp_path, capsys):
    out = tmp_path / "res"
    code = by_size.main(["--model", str(folder), "--sizes", "4x5", "4x4", "--rows", "12", "--games", "1",
                         "--min-cap", "30", "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
                         "--plot", str(out / "p.png"), "--expert-cache", str(out / "expert.json"), "--no-progress"])
    assert code == 0
    result = json.loads((out / "r.json").read_text())
    entries = {e["size"]: e for e in result["sizes"]}
    assert list(entries) == ["4x4", "4x5"]  # by cell count
    assert entries["4x4"]["seen"] and not entries["4x5"]["seen"]
    for entry in entries.values():
        assert 0.0 <= entry["next_board_exact"] <= 1.0 and entry["rows"] == 12
        assert entry["play"]["eqm"]["games"] == 2 and entry["play"]["expert"]["games"] == 2  # both start kinds
        assert entry["max_steps"] == 20 * entry["cells"]  # max(min_cap, 20 x cells)
        assert set(entry["targets_met"]) == {*by_size.ONE_STEP_TARGETS, "eqm_apples_ratio"}
        assert entry["ratio"]["eqm"] == entry["apples_ratio"]
    table = (out / "r.md").read_text()
    assert "| 4x5 | **no** |" in table and "| 4x4 | yes |" in table
    assert (out / "p.png").stat().st_size > 1000
    # The expert's games are cached by size, games, seed and cap, and read back for the next model.
    cached = json.loads((out / "expert.json").read_text())
    assert sorted(cached) == ["4x4 games=1 seed=1000 cap=320", "4x5 games=1 seed=1000 cap=400"]
    cfg = by_size.SizeEvalConfig(games=1, min_cap=30, expert_cache=str(out / "expert.json"))
    cached["4x5 games=1 seed=1000 cap=400"]["mean_apples"] = -1.0  # proves the cache is read, not recomputed
    (out / "expert.json").write_text(json.dumps(cached))
    assert by_size.expert_play(4, 5, 400, cfg)["mean_apples"] == -1.0


def test_evaluation_rows_are_fresh_expert_steps_of_that_size():
    rows = by_size.evaluation_rows(4, 5, 40, seed=1)
    assert rows["state"].shape == (40, 4, 5) and rows["next_state_per_action"].shape == (40, 4, 4, 5)
    assert (rows["next_state"] == rows["next_state_per_action"][np.arange(40), rows["action"]]).all()
    assert by_size.play_cap(10, 10) == 2000 and by_size.play_cap(14, 14) == 3920
    assert by_size.play_cap(10, 10, 1, 50) == 5000
    route = by_size.evaluation_rows(6, 6, 40, seed=1, expert="route")  # labelled by the teacher asked for
    from snake_world_eqm.game.expert import expert_actions

    assert (route["action"] == expert_actions(route["state"].astype(np.int8), kind="route")).all()


def test_every_agent_and_expert_plays_the_same_games_and_targets_follow_the_cap(folder, tmp_path):
    out = tmp_path / "res"
    argv = ["--model", str(folder), "--sizes", "5x5", "--rows", "8", "--games", "2", "--agents", "eqm", "planner",
            "--experts", "route", "fill", "--teacher", "route", "--min-cap", "1", "--json", str(out / "r.json"),
            "--markdown", str(out / "r.md"), "--plot", str(out / "p.png"), "--no-progress"]
    assert by_size.main([*argv, "--cap-multiple", "2"]) == 0
    entry = json.loads((out / "r.json").read_text())["sizes"][0]
    assert sorted(entry["play"]) == ["eqm", "expert", "expert-fill", "expert-route", "planner"]
    assert all(play["games"] == 4 for play in entry["play"].values()) and entry["max_steps"] == 50
    assert set(entry["targets_met"]) == {*by_size.ONE_STEP_TARGETS, "eqm_apples_ratio", "planner_apples_ratio"}
    expert = entry["play"]["expert"]["mean_apples"]
    assert entry["ratio"]["planner"] == pytest.approx(entry["play"]["planner"]["mean_apples"] / expert)
    header = (out / "r.md").read_text().splitlines()[0]
    assert all(name in header for name in ("eqm", "planner", "expert-route", "expert-fill"))
    assert by_size.main([*argv, "--cap-multiple", "50"]) == 0  # a cap that lets games fill the board: wins count
    entry = json.loads((out / "r.json").read_text())["sizes"][0]
    assert entry["max_steps"] == 1250 and set(entry["targets_met"]) == {*by_size.ONE_STEP_TARGETS, "planner_win_rate"}
    # The route and fill experts never die on a board they can fill; 1250 steps fill a 5x5 board.
    for kind in ("route", "fill"):
        assert entry["play"][f"expert-{kind}"]["deaths"] == 0
    assert entry["play"]["expert-route"]["wins"] == 4


def test_the_baseline_agent_needs_a_baseline_model(folder, capsys):
    with pytest.raises(SystemExit) as exit_info:
        by_size.main(["--model", str(folder), "--sizes", "5x5", "--agents", "baseline", "--no-progress"])
    assert exit_info.value.code == 2
    assert "--agents baseline needs --baseline" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "33x33"], "height 33 is outside 4..32"),
        (["--sizes", "6x"], "is not of the form HxW"),
        (["--games", "0"], "--games: expected a positive integer, got '0'"),
    ],
)
def test_evaluate_sizes_bad_arguments_are_one_line_errors(folder, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        by_size.main(["--model", str(folder), *argv])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_fixed_size_model_refuses_other_sizes_in_evaluation_and_play(tmp_path, capsys):
    path = tmp_path / "fixed"
    SnakeWorldEqM(SnakeWorldEqMConfig(board_height=6, board_width=6, **TINY)).save_pretrained(path)
    with pytest.raises(SystemExit):
        by_size.main(["--model", str(path), "--sizes", "8x8", "--no-progress"])
    assert "fixed to 6x6 boards (fixed_board_size=True); it cannot be evaluated on 8x8" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="fixed to 6x6 boards"):
        play_main(["--model", str(path), "--height", "8", "--width", "8", "--max-steps", "2", "--delay", "0"])


def test_play_any_size_with_a_size_free_model(folder, tmp_path, capsys):
    gif = tmp_path / "g.gif"
    assert play_main(["--model", str(folder), "--height", "7", "--width", "9", "--max-steps", "3", "--gif", str(gif)]) == 0
    from PIL import Image

    from snake_world_eqm.evaluation.play import _LABEL_HEIGHT

    # The 7x9 board, with its "game" label above, the caption line and the colour key below (the key needs
    # 150 pixels, so a narrow board gets a wider frame).
    assert Image.open(gif).size == (max(9 * 16, 150), 7 * 16 + 3 * _LABEL_HEIGHT)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        play_main(["--agent", "expert", "--height", "40", "--width", "8"])
    assert exit_.value.code == 2 and "--height: expected a board side from 4 to 32, got '40'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("boards", "message"),
    [
        ([[0, 0, 0, 0], [0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], "ragged or of different sizes"),
        ([np.zeros((6, 6), np.int64), np.zeros((8, 8), np.int64)], r"different sizes \(\(6, 6\), \(8, 8\)\)"),
        (np.zeros((33, 33), np.int64), "board size 33x33 is outside the supported 4..32"),
    ],
)
def test_ragged_mixed_and_oversized_boards_are_one_line_errors(folder, boards, message):
    model = SnakeWorldEqM.from_pretrained(folder)
    with pytest.raises(ValueError, match=message) as error:
        model.sample(boards)
    assert "\n" not in str(error.value)
