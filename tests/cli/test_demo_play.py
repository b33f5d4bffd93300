"""`snake-eqm play` as a newcomer meets it: no flags plays the shipped model, moves by name, colour only on a tty."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from snake_world_eqm import PRETRAINED_10X10
from snake_world_eqm.evaluation import play

MOVE_NAMES = ("up", "right", "down", "left")


def test_play_with_no_flags_plays_the_shipped_model_into_a_pipe_without_ansi():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NO_COLOR", None)  # plain text must come from the pipe alone
    done = subprocess.run([sys.executable, "-m", "snake_world_eqm.cli", "play", "--max-steps", "50"],
                          capture_output=True, text=True, env=env, timeout=1800)  # a hang guard only
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "\x1b" not in out
    assert f"the shipped checkpoint {PRETRAINED_10X10}" in out.splitlines()[0]
    assert out.splitlines()[1] == play.LEGEND  # what `.` (tail) and `·` (empty) mean, before the first board
    assert "agent: planner" in out  # the best agent is the default
    moves = [line.split("move: ")[1].split()[0] for line in out.splitlines() if "move: " in line]
    assert 1 <= len(moves) <= 50 and set(moves) <= set(MOVE_NAMES)
    # The shipped model plays: a random walk from this start eats ~0.1 apples in 50 steps.
    last = [line for line in out.splitlines() if "apples: " in line][-1]
    assert int(last.rsplit("apples: ", 1)[1]) >= 1, last


@pytest.mark.parametrize(("tty", "no_color", "coloured"), [(True, None, True), (True, "1", False), (False, None, False)])
def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch, capsys, tty, no_color, coloured):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: tty)
    if no_color is None:
        monkeypatch.delenv("NO_COLOR", raising=False)
    else:
        monkeypatch.setenv("NO_COLOR", no_color)
    assert play.main(["--agent", "expert", "--height", "6", "--width", "6", "--max-steps", "3", "--delay", "0"]) == 0
    shown = capsys.readouterr().out
    assert ("\x1b[1;92m" in shown) == coloured  # the head's colour code
    assert ("\x1b[2J" in shown) == tty  # clearing the screen is for terminals only


def test_status_line_names_the_move_and_the_ending():
    assert play.status_line(3, 2, "eat", 4) == "step 3  move: down (eat)  apples: 4"
    assert play.status_line(4, 0, "none", 4) == "step 4  move: up  apples: 4"
    assert play.status_line(5, None, "wall", 4) == "game over (wall)  apples: 4"
    assert play.status_line(9, None, "cap", 4) == "step cap reached  apples: 4"


def test_gif_frame_has_labelled_panels_and_a_caption():
    from snake_world_eqm.game import encode_observation, new_game

    board = encode_observation(new_game(6, 6, rng=0))
    single = play.render_frame(board, None)
    pair = play.render_frame(board, board, caption="step 1  move: up  apples: 0")
    last = play.render_frame(board, None, caption="game over (wall)  apples: 0", show_prediction=True)
    assert single.shape[1] == 6 * 16 and pair.shape[1] == 2 * 6 * 16 + 8
    assert pair.shape == last.shape and pair.shape[0] > single.shape[0]  # the caption strip
    # The label strip above the board holds dark text pixels; the board itself starts below it.
    assert (single[:14].min(axis=-1) < 100).any()
    assert (pair[-14:].min(axis=-1) < 100).any()
    # A frame without a prediction keeps the layout but shows a plain grey panel, not an (empty) board.
    right = last[14:14 + 6 * 16, 6 * 16 + 8:]
    assert np.all(right == right[0, 0])


def test_baseline_needs_its_own_model_and_cannot_show_predictions():
    with pytest.raises(SystemExit, match="none is shipped"):
        play.main(["--agent", "baseline", "--max-steps", "1"])


def test_the_default_agent_is_the_planner_and_what_if_shows_four_successors(capsys, monkeypatch):
    assert play.build_parser().parse_args([]).agent == "planner"
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert play.main(["--agent", "eqm", "--show-what-if", "--max-steps", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert play.LEGEND in out and "model's prediction for each move:" in out
    header = next(line for line in out.splitlines() if line.startswith("if up:"))
    assert all(f"if {name}:" in header for name in MOVE_NAMES)
    # Four framed boards side by side on each board row.
    assert max(line.count("+---") for line in out.splitlines()) == 4


def test_side_by_side_aligns_coloured_boards_by_what_shows():
    coloured = "\x1b[32mo\x1b[0m ."
    joined = play.side_by_side([coloured, "ab"], ["x:", "y:"])
    assert joined.splitlines() == ["x:   y:", f"{coloured}  ab"]


def test_the_gif_has_a_colour_key_and_holds_its_last_frame(tmp_path):
    from PIL import Image

    gif = tmp_path / "game.gif"
    assert play.main(["--agent", "expert", "--height", "6", "--width", "6", "--max-steps", "3",
                      "--gif", str(gif), "--frame-ms", "100"]) == 0
    with Image.open(gif) as image:
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(image.info["duration"])
        width, height = image.size
    assert durations[:-1] == [100] * (len(durations) - 1) and durations[-1] == play.LAST_FRAME_MS
    board = 6 * 16
    assert width >= 150 and height == 14 + board + 14 + 14  # label, board, caption, colour key
