"""The model card in the field's pattern (huggingface_sb3 / lerobot): a results JSON with mean ± std, episodes
and date beside the card, model-index entries per board size and agent, and the evaluation command."""

from __future__ import annotations

import json
import shutil

from huggingface_hub import ModelCard

from snake_world_eqm.hub.cards import (
    RESULTS_FILE,
    TEACHERS,
    play_results,
    render_model_card,
    write_model_card,
)
from snake_world_eqm.shipped import PRETRAINED_10X10, PRETRAINED_MULTISIZE

EVALUATION = {
    "action_accuracy": 0.9,
    "play": {"planner": {"games": 4, "mean_apples": 5.0, "apples_per_game": [4, 6, 5, 5], "deaths": 0, "wins": 0},
             "eqm": {"games": 2, "mean_apples": 2.0, "apples_per_game": [1, 3], "deaths": 1, "wins": 0}},
    "config": {"command": "snake-eqm evaluate --model m --dataset d --json e.json", "expert": "route"},
    "provenance": {"date": "2026-12-07T12:00:00+00:00"},
}
BY_SIZE = {"sizes": [{"size": "6x6", "play": {"eqm": {"games": 2, "mean_apples": 3.0,
                                                      "by_start": {"3": {"apples_per_game": [2]},
                                                                   "1": {"apples_per_game": [4]}}}}},
                     {"size": "8x8", "play": {"eqm": {"games": 2, "mean_apples": 7.0}}}],
           "config": {"command": "snake-eqm evaluate-sizes --model m"}}


def test_play_results_have_mean_std_episodes_date_and_command():
    results = play_results(EVALUATION)
    planner = next(entry for entry in results["results"] if entry["agent"] == "planner")
    assert (planner["board_size"], planner["mean_apples"], planner["n_eval_episodes"]) == ("10x10", 5.0, 4)
    assert abs(planner["std_apples"] - 0.816) < 1e-3  # sample std of 4, 6, 5, 5
    assert results["eval_datetime"] == "2026-12-07T12:00:00+00:00"
    assert results["evaluation_command"].startswith("snake-eqm evaluate")
    by_size = play_results(BY_SIZE)["results"]
    assert [(entry["board_size"], entry["std_apples"]) for entry in by_size] == [("6x6", 1.414), ("8x8", None)]


def test_card_has_model_index_per_board_size_and_agent_and_writes_the_results_json(tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(PRETRAINED_10X10, folder, symlinks=True)
    (tmp_path / "eval.json").write_text(json.dumps(EVALUATION))
    card = ModelCard(str(render_model_card(folder, tmp_path / "eval.json", "org/snake-eqm", "org/snake-world")))
    play = [result for result in card.data.eval_results if result.metric_type == "mean_apples"]
    assert {(result.dataset_name, result.metric_name) for result in play} == {
        ("Snake 10x10", "mean apples per game (planner)"), ("Snake 10x10", "mean apples per game (eqm)")}
    assert {result.metric_value for result in play} == {"5.00 +/- 0.82", "2.00 +/- 1.41"}
    assert all(result.dataset_type == "snake_world_eqm/Snake-v0" for result in play)
    assert "snake-eqm evaluate --model m --dataset d --json e.json" in card.text
    write_model_card(folder, tmp_path / "eval.json", "org/snake-eqm", "org/snake-world")
    written = json.loads((folder / RESULTS_FILE).read_text())
    assert written == play_results(EVALUATION)
    assert not [path.name for path in folder.iterdir() if path.name.startswith(".card-")]


def test_a_card_rewrite_killed_midway_leaves_nothing_the_next_one_does_not_clear(tmp_path):
    """The card and results are written beside and renamed (a kill leaves the old file or the new one); what a
    SIGKILL can leave is a hidden `.tmp-` file, or an older version's `.card-` folder, and the next rewrite
    removes both."""
    folder = tmp_path / "model"
    shutil.copytree(PRETRAINED_10X10, folder, symlinks=True)
    (tmp_path / "eval.json").write_text(json.dumps(EVALUATION))
    (folder / ".card-abc").mkdir()
    (folder / ".card-abc" / "README.md").write_text("half")
    (folder / ".tmp-README.md-999").write_text("half a card")
    (folder / f".tmp-{RESULTS_FILE}-999").write_text("{")
    before = sorted(path.name for path in folder.iterdir() if not path.name.startswith("."))
    write_model_card(folder, tmp_path / "eval.json", "org/snake-eqm", "org/snake-world")
    assert not [path.name for path in folder.iterdir() if path.name.startswith((".card-", ".tmp-"))]
    assert sorted(path.name for path in folder.iterdir()) == sorted({*before, RESULTS_FILE})
    assert ModelCard.load(folder / "README.md").data.eval_results  # a whole card, model-index included


def test_a_multi_size_card_names_the_teacher_its_training_recorded(tmp_path):
    # An evaluate-sizes result names no expert, so the card said "A* planner" whatever the model imitated.
    from tests.training_helpers import REPO_ROOT

    folder = tmp_path / "model"
    shutil.copytree(PRETRAINED_MULTISIZE, folder, symlinks=True)
    by_size = REPO_ROOT / "docs" / "results" / "eval_multisize.json"
    assert "expert" not in json.loads(by_size.read_text())["config"]
    for kind in ("astar", "route", "fill", "cycle", "heuristic"):
        training = json.loads((PRETRAINED_MULTISIZE / "metrics.json").read_text())
        (folder / "metrics.json").write_text(json.dumps({**training, "expert": kind}))
        card = str(render_model_card(folder, by_size, "org/snake-eqm-multisize", "org/snake-world"))
        assert [name for name, sentence in TEACHERS.items() if sentence in card] == [kind]
    # An evaluation that names its expert still wins over the training record.
    (tmp_path / "eval.json").write_text(json.dumps(EVALUATION))  # config.expert: route
    card = str(render_model_card(folder, tmp_path / "eval.json", "org/snake-eqm", "org/snake-world"))
    assert [name for name, sentence in TEACHERS.items() if sentence in card] == ["route"]


def test_an_evaluate_sizes_result_that_names_its_teacher_sets_the_cards_teacher(tmp_path):
    from tests.training_helpers import REPO_ROOT

    folder = tmp_path / "model"
    shutil.copytree(PRETRAINED_MULTISIZE, folder, symlinks=True)
    result = json.loads((REPO_ROOT / "docs" / "results" / "eval_multisize.json").read_text())
    result["config"]["teacher"] = "route"  # evaluate-sizes --teacher route: rows labelled by the route expert
    (tmp_path / "sizes.json").write_text(json.dumps(result))
    card = str(render_model_card(folder, tmp_path / "sizes.json", "org/snake-eqm-multisize", "org/snake-world"))
    assert [name for name, sentence in TEACHERS.items() if sentence in card] == ["route"]
