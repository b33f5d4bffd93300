"""Closed-loop play bookkeeping: deaths, apples, stalls and loops are counted, never hidden."""

import numpy as np

from snake_world_eqm.evaluation.agents import Agent, RandomAgent
from snake_world_eqm.evaluation.closed_loop import _GameBook, _record_step, initial_boards, play_games

EAT, NONE, WALL = 1, 0, 2


def test_record_step_counts_apples_deaths_loops_and_stalls():
    boards = initial_boards(3, 6, 6, seed=0)
    book = _GameBook(boards)
    active = np.arange(3)
    # Game 0 eats, game 1 hits the wall, game 2 does nothing.
    finished = _record_step(book, active, boards[[1, 2, 0]].copy(), np.array([EAT, WALL, NONE]), stall_limit=5,
                            deterministic=True)
    assert finished.tolist() == [False, True, False]
    assert book.apples.tolist() == [1, 0, 0] and book.cause[1] == "wall"
    # A board seen before without eating in between proves a loop for a deterministic agent...
    active = np.array([0, 2])
    finished = _record_step(book, active, boards[[0, 0]].copy(), np.array([NONE, NONE]), 5, True)
    assert finished.tolist() == [False, True] and book.cause[2] == "loop"
    # ...game 0 ate in between, so its board is new; a stochastic agent is only stopped by a stall.
    for _ in range(2):
        finished = _record_step(book, np.array([0]), boards[[0]].copy(), np.array([NONE]), 5, False)
    assert not finished.any()
    finished = _record_step(book, np.array([0]), boards[[0]].copy(), np.array([NONE]), 5, False)
    assert finished.tolist() == [False]
    finished = _record_step(book, np.array([0]), boards[[0]].copy(), np.array([NONE]), 5, False)
    assert finished.tolist() == [True] and book.cause[0] == "stall"


class StraightAgent(Agent):
    """Always keeps the head's direction away from its neck: it must hit a wall."""

    name = "straight"

    def act_batch(self, obs):
        from snake_world_eqm.game import HEAD_UP

        flat = obs.reshape(obs.shape[0], -1).astype(np.int64)
        head = np.argmax((flat >= HEAD_UP) & (flat <= HEAD_UP + 3), axis=1)
        neck_direction = flat[np.arange(flat.shape[0]), head] - HEAD_UP
        return (neck_direction + 2) % 4  # straight ahead, away from the neck


def test_play_games_summary_is_consistent():
    summary = play_games(StraightAgent(), 6, 6, num_games=5, seed=3, max_steps=50, progress=False)
    assert summary["games"] == 5 and sum(summary["end_causes"].values()) == 5
    assert summary["end_causes"]["wall"] == 5  # straight lines end at a wall
    assert summary["mean_steps"] <= 6 and summary["max_steps"] == 50
    capped = play_games(RandomAgent(1), 6, 6, num_games=4, seed=3, max_steps=2, progress=False)
    assert capped["end_causes"]["cap"] + capped["deaths"] == 4
    assert len(capped["apples_per_game"]) == 4


def test_same_seeds_give_same_start_boards():
    first, again = initial_boards(4, 6, 6, seed=7), initial_boards(4, 6, 6, seed=7)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, initial_boards(4, 6, 6, seed=8))


def test_play_cli_writes_a_gif_and_shows_predictions(tmp_path, capsys):
    from PIL import Image

    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
    from snake_world_eqm.evaluation.play import main
    from snake_world_eqm.modeling_snake_world_eqm import SnakeWorldEqM

    assert main(["--agent", "expert", "--height", "6", "--width", "6", "--max-steps", "12",
                 "--gif", str(tmp_path / "expert.gif")]) == 0
    with Image.open(tmp_path / "expert.gif") as gif:
        # board + label strips, widened to the colour key's 150 px
        assert gif.n_frames >= 2 and gif.size[0] == max(6 * 16, 150) and gif.size[1] > 6 * 16
    config = SnakeWorldEqMConfig.cpu_small(board_height=6, board_width=6, d_model=16, cnn_channels=16, cnn_layers=1,
                                           latent_dim=8, latent_hidden_dim=16, decoder_channels=8, decoder_layers=1,
                                           eqm_hidden_dim=16, eqm_num_layers=1)
    SnakeWorldEqM(config).save_pretrained(tmp_path / "model")
    assert main(["--model", str(tmp_path / "model"), "--agent", "random", "--show-prediction", "--max-steps", "5",
                 "--gif", str(tmp_path / "pred.gif")]) == 0
    with Image.open(tmp_path / "pred.gif") as gif:
        assert gif.size[0] == 2 * 6 * 16 + 8  # real board, gap, predicted board
    assert main(["--model", str(tmp_path / "model"), "--agent", "eqm", "--show-prediction", "--max-steps", "3",
                 "--delay", "0"]) == 0
    shown = capsys.readouterr().out
    assert "model's prediction of the next board" in shown and "apples: " in shown


def test_play_cli_needs_a_model_for_model_agents():
    import pytest

    from snake_world_eqm.evaluation.play import main

    with pytest.raises(SystemExit, match="needs --model"):
        main(["--agent", "baseline"])


def test_both_start_kinds_play_the_same_seeds_and_pool_their_games():
    from snake_world_eqm.evaluation.agents import ExpertAgent
    from snake_world_eqm.evaluation.closed_loop import default_max_steps, play_both_starts

    summary = play_both_starts(ExpertAgent(), 6, 6, num_games=3, seed=11, progress=False)
    by_start = summary["by_start"]
    assert sorted(by_start) == ["1", "3"] and summary["games"] == 6
    assert by_start["1"]["start_length"] == 1 and by_start["3"]["start_length"] == 3
    assert summary["max_steps"] == default_max_steps(6, 6) == 720
    assert summary["apples_per_game"] == by_start["3"]["apples_per_game"] + by_start["1"]["apples_per_game"]
    assert summary["mean_apples"] == np.mean(summary["apples_per_game"])
    assert sum(summary["end_causes"].values()) == 6
    low, high = summary["mean_apples_ci95"]
    assert low <= summary["mean_apples"] <= high
    steps, apples = sum(summary["steps_per_game"]), sum(summary["apples_per_game"])
    assert summary["steps_per_apple"] == steps / apples
    one_cell = initial_boards(3, 6, 6, seed=11, start_length=1)
    assert ((one_cell >= 2).sum(axis=(1, 2)) == 1).all()  # a lone head, and the same food seeds
    three_cell = initial_boards(3, 6, 6, seed=11)
    assert ((three_cell >= 2).sum(axis=(1, 2)) == 3).all()


def test_bootstrap_interval_is_reproducible_and_narrows_with_more_games():
    from snake_world_eqm.evaluation.closed_loop import bootstrap_mean_interval

    rng = np.random.default_rng(0)
    few, many = rng.normal(50, 10, 10), rng.normal(50, 10, 1000)
    assert bootstrap_mean_interval(few) == bootstrap_mean_interval(few)
    width_few = np.diff(bootstrap_mean_interval(few))[0]
    width_many = np.diff(bootstrap_mean_interval(many))[0]
    assert width_many < width_few / 5  # ~ 1/sqrt(n)
    low, high = bootstrap_mean_interval(np.full(20, 7.0))
    assert low == high == 7.0


def test_a_stall_limit_ends_games_that_circle_without_eating():
    class Circle(Agent):
        """Turns right every step: a one-cell snake circles a 2x2 square forever."""

        name = "circle"
        deterministic = False

        def __init__(self):
            self.turn = 0

        def act_batch(self, obs):
            self.turn = (self.turn + 1) % 4
            return np.full(obs.shape[0], self.turn, dtype=np.int64)

    summary = play_games(Circle(), 8, 8, num_games=2, seed=5, start_length=1, stall_limit=9, progress=False)
    assert summary["stall_limit"] == 9
    assert summary["stalls"] + summary["wins"] + summary["deaths"] == 2 and summary["capped"] == 0


# ---- play --dream: inside the model beside the real game (issue 36, item 5) ------------------------------


def _dream_stand_in(monkeypatch, model):
    """`snake-eqm play` loads `model` whatever --model says (the loader is imported inside main)."""
    import snake_world_eqm.pretrained as pretrained

    monkeypatch.setattr(pretrained, "load_model", lambda path, kind="eqm": model)


def test_play_dream_with_an_exact_model_shows_no_divergence(monkeypatch, capsys):
    from snake_world_eqm.evaluation.play import DREAM_FOOD_CHOICES, main
    from snake_world_eqm.simulator import DREAM_FOODS
    from tests.dream_helpers import ExactModel

    assert list(DREAM_FOOD_CHOICES) == list(DREAM_FOODS)  # --help's copy of the simulator's choices

    _dream_stand_in(monkeypatch, ExactModel(6, 6, seed=4))
    assert main(["--dream", "--agent", "expert", "--height", "6", "--width", "6", "--seed", "4",
                 "--max-steps", "25", "--delay", "0"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("divergence: ")]
    assert len(lines) == 26 and set(lines) == {"divergence: dream = real"}  # the start and 25 moves
    assert out.count("real game (the rules):") == out.count("dream (the model's own boards):") == 26
    assert "agent: expert, reading the real board" in out and "drawn by the model" in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("step cap reached after 25 moves: apples real ") and last.endswith("divergence: dream = real")
    apples = last.split("apples real ")[1].split(";")[0]
    assert apples.split(", dream ")[0] == apples.split(", dream ")[1] and int(apples.split(",")[0]) >= 2


def test_play_dream_shows_a_corrupted_prediction_and_the_illegal_end(monkeypatch, capsys, tmp_path):
    import re

    from PIL import Image

    from snake_world_eqm.evaluation.play import main
    from tests.dream_helpers import CorruptingModel

    _dream_stand_in(monkeypatch, CorruptingModel(6, 6, seed=4, corrupt=(3,)))
    assert main(["--dream", "--agent", "expert", "--agent-reads", "dream", "--dream-food", "real", "--height", "6",
                 "--width", "6", "--seed", "4", "--max-steps", "6", "--delay", "0"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("divergence: ")]
    assert lines[:3] == ["divergence: dream = real"] * 3
    assert lines[3] == ("divergence: dream != real: 1 cell(s) differ (1 with food masked) | first differed at step 3, "
                        "the snake at step 3 | dream ended: illegal:heads")
    # The agent read the dream's board until the dream ended, then the real one.
    assert re.search(r"step 3  move: \w+ \(the agent read the dream board\)", out)
    assert re.search(r"step 4  move: \w+ \(the agent read the real board\)", out)
    _dream_stand_in(monkeypatch, CorruptingModel(6, 6, seed=4, corrupt=(3,)))
    assert main(["--dream", "--agent", "expert", "--height", "6", "--width", "6", "--seed", "4", "--max-steps", "6",
                 "--gif", str(tmp_path / "dream.gif")]) == 0
    with Image.open(tmp_path / "dream.gif") as gif:
        assert gif.n_frames == 8 and gif.size[0] == 2 * 6 * 16 + 8  # start, 6 moves, the ending; two boards


def test_play_dream_at_the_keyboard(monkeypatch, capsys):
    """Arrow keys (ESC [ A..D) and w a s d move both worlds; r resyncs; q quits; other keys are ignored."""
    import io

    from snake_world_eqm.evaluation.play import key_commands, main
    from tests.dream_helpers import CorruptingModel

    keys = io.StringIO("\x1b[Cx\x1b[Zdsrqw")
    assert list(key_commands(lambda: keys.read(1))) == ["right", "right", "down", "resync", "quit"]
    assert list(key_commands(lambda: "")) == ["quit"]  # the end of the input quits
    # Seed 4 on 6x6: the head at (4, 5) heading right; up, then left, are safe. The model breaks the second board.
    _dream_stand_in(monkeypatch, CorruptingModel(6, 6, seed=4, corrupt=(2,)))
    monkeypatch.setattr("sys.stdin", io.StringIO("\x1b[Aar"))
    assert main(["--dream", "--agent", "you", "--height", "6", "--width", "6", "--seed", "4", "--max-steps", "9"]) == 0
    out = capsys.readouterr().out
    assert "keys: arrows or w a s d move" in out
    assert "step 1  move: up  apples: real 0, dream 0" in out and "step 2  move: left  apples: real 0, dream 0" in out
    divergences = [line for line in out.splitlines() if line.startswith("divergence: ")]
    assert divergences[:2] == ["divergence: dream = real"] * 2
    assert divergences[2].endswith("first differed at step 2, the snake at step 2 | dream ended: illegal:heads")
    assert "resynced: the dream goes on from the real board of step 2" in out
    assert out.strip().splitlines()[-1] == ("quit after 2 moves: apples real 0, dream 0; divergence: dream = real | "
                                            "resynced 1x, last at step 2")
