"""`snake-eqm evaluate` and `snake-eqm play` with bad input (issue 15, items 7, 8, 10, 11): one line, a non-zero
exit, and no evaluation or game run before the problem is found."""

from __future__ import annotations

import pytest

from snake_world_eqm import SnakePolicyBaseline, SnakePolicyBaselineConfig, SnakeWorldEqM, SnakeWorldEqMConfig
from snake_world_eqm.evaluation import cli as evaluate_cli
from snake_world_eqm.evaluation import play as play_cli
from snake_world_eqm.evaluation.agents import PlannerAgent
from snake_world_eqm.planning import MAX_HORIZON, MAX_ROLLOUTS
from tests.model.test_bad_input_model import TINY


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    eqm = SnakeWorldEqM(SnakeWorldEqMConfig(**TINY))
    eqm.save_pretrained(root / "eqm")
    SnakePolicyBaseline(SnakePolicyBaselineConfig.from_eqm_config(eqm.config)).save_pretrained(root / "baseline")
    (root / "a_file").write_text("x")
    return root


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the evaluation or a game starts: the error must come first."""
    def refuse(*args, **kwargs):
        raise AssertionError("the work started before the bad input was found")

    monkeypatch.setattr("snake_world_eqm.evaluation.evaluate.evaluate", refuse)  # imported lazily by the CLI
    monkeypatch.setattr(play_cli, "play_one_game", refuse)


def _one_line(capsys, prog: str) -> str:
    # Progress bars of a model load that succeeded may precede the error; the error itself is one line.
    lines = [line for line in capsys.readouterr().err.replace("\r", "\n").splitlines()
             if line.strip() and "it/s]" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error:"), lines
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--json", "{root}/a_file/e.json"], "a_file is a file"),
        (["--json", "{root}"], "is a folder"),
        (["--plots", "{root}/a_file"], "not a folder"),
        (["--baseline", "{root}/eqm"], "but a behaviour-cloning baseline is needed"),
        (["--model", "{root}/baseline"], "but an EqM world model is needed"),
        (["--model", "{root}/missing"], "does not exist"),
        (["--dataset", "{root}/no_dataset"], "no dataset folder"),
    ],
)
def test_evaluate_fails_in_one_line_before_evaluating(folders, capsys, no_work, extra, fragment):
    argv = ["--model", str(folders / "eqm"), "--dataset", str(folders / "eqm"), "--no-progress"]
    argv += [part.format(root=folders) for part in extra]
    assert evaluate_cli.main(argv) == 2
    assert fragment in _one_line(capsys, "snake-eqm evaluate")


@pytest.mark.parametrize("extra", [["--planner-horizon", "500"], ["--games", "0"], ["--batch-size", "-1"],
                                   ["--max-rows", "2.5"]])
def test_evaluate_flag_errors_exit_non_zero_in_one_line(folders, capsys, no_work, extra):
    with pytest.raises(SystemExit) as exit_:
        evaluate_cli.main(["--model", str(folders / "eqm"), "--dataset", "x", *extra])
    # argparse's own errors exit 2 with the flag on stderr; the range checks exit with their one-line message.
    message = capsys.readouterr().err if exit_.value.code == 2 else str(exit_.value.code)
    assert extra[0] in message and "Traceback" not in message


def test_evaluate_refuses_nan_thresholds(folders, no_work):
    with pytest.raises(SystemExit, match="--thresholds"):
        evaluate_cli.main(["--model", str(folders / "eqm"), "--dataset", "x", "--thresholds", "1,nan"])


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--agent", "expert", "--gif", "{root}/a_file/g.gif"], "a_file is a file"),
        (["--agent", "baseline", "--model", "{root}/eqm"], "but a behaviour-cloning baseline is needed"),
        (["--agent", "eqm", "--model", "{root}/missing"], "does not exist"),
    ],
)
def test_play_fails_in_one_line_before_playing(folders, capsys, no_work, extra, fragment):
    assert play_cli.main([part.format(root=folders) for part in extra]) == 2
    assert fragment in _one_line(capsys, "snake-eqm play")


@pytest.mark.parametrize("extra", [["--planner-horizon", "500"], ["--height", "100"], ["--max-steps", "0"],
                                   ["--delay", "nan"], ["--seed", "-1"], ["--seed", str(2**70)],
                                   ["--gif", "game.txt"]])
def test_play_flag_errors_exit_2(capsys, no_work, extra):
    with pytest.raises(SystemExit) as exit_:
        play_cli.main(["--agent", "expert", *extra])
    assert exit_.value.code == 2 and extra[0] in capsys.readouterr().err


@pytest.mark.parametrize(("knob", "value"), [("horizon", 0), ("horizon", MAX_HORIZON + 1), ("horizon", 2.5),
                                             ("horizon", True), ("rollouts", MAX_ROLLOUTS + 1), ("rollouts", 0)])
def test_planner_search_size_has_a_ceiling(folders, knob, value):
    model = SnakeWorldEqM.from_pretrained(folders / "eqm")
    with pytest.raises(ValueError, match=knob):
        PlannerAgent(model, **{knob: value})


@pytest.mark.parametrize(
    ("extra", "fragment"),
    [
        (["--dream-food", "real"], "--dream-food needs --dream"),
        (["--agent-reads", "dream"], "--agent-reads needs --dream"),
        (["--agent", "you"], "--agent you (the keyboard) plays only with --dream"),
        (["--dream", "--agent", "baseline"], "--dream needs the world model"),
        (["--dream", "--agent", "eqm", "--show-prediction"], "--dream shows the model's own board beside the real one"),
        (["--dream", "--agent", "you", "--gif", "d.gif"], "--agent you plays at the keyboard in the terminal"),
        (["--dream", "--agent", "you", "--agent-reads", "real"], "--agent-reads chooses the board an agent reads"),
        (["--dream", "--dream-food", "uniform"], "argument --dream-food: invalid choice"),
        (["--dream", "--agent-reads", "both"], "argument --agent-reads: invalid choice"),
    ],
)
def test_play_dream_flag_errors_exit_2_before_loading_or_playing(capsys, monkeypatch, no_work, extra, fragment):
    """`play --dream` (issue 36, item 5): flags that do not go together are an argparse error naming them."""
    import snake_world_eqm.pretrained as pretrained

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded or a dream played before the bad flags were found")

    monkeypatch.setattr(pretrained, "load_model", refuse)
    monkeypatch.setattr(play_cli, "play_dream", refuse)
    with pytest.raises(SystemExit) as exit_:
        play_cli.main(extra)
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"snake-eqm play: error: {fragment}" in err and "Traceback" not in err
