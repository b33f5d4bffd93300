"""The app's game session, pictures and Hub Space, without gradio or a browser (tests/app/test_app_server.py
drives the real server)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
import yaml
from huggingface_hub import HfApi, constants

from snake_world_eqm.app import MISSING_GRADIO, GameSession, frame_cells, session_pictures, supported_sizes
from snake_world_eqm.evaluation.agents import neck_directions
from snake_world_eqm.evaluation.oracle import OracleWorldModel
from snake_world_eqm.game import batched_step, is_terminal_observation, mask_food, validate_observation
from snake_world_eqm.hub import SPACE_FILES, build_space_folder, check_space_folder


class Oracle(OracleWorldModel):
    """The simulator as a world model, with the sampler's action-block norm the app shows."""

    def sample(self, obs, action=None, **kwargs):
        out = super().sample(obs, action=action, **kwargs)
        out.action_grad_norm = torch.zeros(out.action.shape[0])
        return out


@pytest.fixture(scope="module")
def shipped_model():
    from snake_world_eqm.app import load_model

    torch.set_flush_denormal(True)
    return load_model()


def _check_board(board) -> None:
    validate_observation(np.asarray(board, dtype=np.int8), allow_terminal=True)


def test_with_a_perfect_model_every_prediction_matches_the_real_board():
    session = GameSession(Oracle(6, 6, seed=1), seed=3)
    events = []
    while not session.done and session.steps < 60:
        before = session.board.copy()
        transition = session.play("expert")
        events.append(transition.event)
        # The real board is the simulator's successor (food placement after eating is random).
        truth = batched_step(before[None], np.array([transition.action]), np.random.default_rng(0))[0][0]
        assert (mask_food(transition.real[None]) == mask_food(truth[None])).all()
        assert transition.match and not transition.mismatch.any()
        _check_board(transition.real)
    assert "eat" in events and session.score == events.count("eat") + events.count("win")
    assert session.steps == len(events)


def test_a_wrong_prediction_is_flagged_cell_by_cell():
    session = GameSession(Oracle(6, 6), seed=0)
    session.analysis.whatif[1] = session.analysis.whatif[3]  # make "right" predict "left"'s board
    transition = session.step(1)
    assert not transition.match
    wrong = transition.predicted != transition.real
    assert (transition.mismatch == wrong).all() and wrong.sum() >= 2
    picture = frame_cells(np.zeros((60, 60, 3), np.uint8), transition.mismatch, 10)
    assert (picture.reshape(6, 10, 6, 10, 3).max(axis=(1, 3, 4)) > 0).tolist() == transition.mismatch.tolist()


def test_death_ends_the_game_and_is_predicted_as_a_death():
    session = GameSession(Oracle(6, 6), seed=0)
    neck = int(neck_directions(session.board[None])[0])  # the move into the neck
    assert session.analysis.whatif_death[neck]
    transition = session.step(neck)
    assert transition.event == "reverse" and transition.match and session.done
    assert is_terminal_observation(session.board) and session.analysis is None
    with pytest.raises(ValueError, match="game is over"):
        session.step(0)
    real, predicted, whatifs = session_pictures(session)
    assert real.shape == predicted.shape and whatifs == []


def test_bad_moves_sizes_and_controllers_are_refused():
    model = Oracle(6, 6)
    with pytest.raises(ValueError, match="board size 8x8 is not one this model supports: 6x6"):
        GameSession(model, 8, 8)
    session = GameSession(model)
    for bad in (4, -1, 1.0, True, "up"):
        with pytest.raises(ValueError, match="action must be an int"):
            session.step(bad)
    with pytest.raises(ValueError, match="controller must be one of"):
        session.agent_action("you")
    assert session.steps == 0


def test_sizes_follow_the_config():
    model = Oracle(6, 6)
    assert supported_sizes(model.config) == [(6, 6)]
    model.config.fixed_board_size = False
    sizes = supported_sizes(model.config)
    assert sizes[0] == (4, 4) and sizes[-1] == (32, 32) and len(sizes) == 29
    assert GameSession(model, 5, 5).board.shape == (5, 5)


def test_shipped_model_session_is_reproducible_and_json_ready(shipped_model):
    runs = []
    for _ in range(2):
        session = GameSession(shipped_model, seed=5)
        for controller in ("eqm", "planner", "expert"):
            session.play(controller)
        data = json.loads(json.dumps(session.as_dict()))
        assert data["model"].pop("decision_ms") > 0  # wall time: the one thing that may differ
        runs.append(data)
    assert runs[0] == runs[1]
    data = runs[0]
    assert data["steps"] == 3 and (data["height"], data["width"]) == (10, 10)
    model = data["model"]
    assert set(model["whatif"]) == {"up", "right", "down", "left"}
    assert abs(sum(model["action_probs"].values()) - 1) < 1e-5
    assert model["nag_steps"] == shipped_model.config.eqm_sampling_steps and len(model["seed_actions"]) == 4
    for outcome in model["whatif"].values():
        assert outcome["death"] == is_terminal_observation(np.array(outcome["board"]))
    _check_board(data["board"])


def test_missing_gradio_names_the_extra(monkeypatch):
    from snake_world_eqm.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)  # `import gradio` now raises ImportError
    with pytest.raises(SystemExit, match=r"snake-world-eqm\[app\]") as error:
        main(["app", "--port", "1"])
    assert str(error.value) == MISSING_GRADIO


# ---- the Hub Space ---------------------------------------------------------------------------------------


@pytest.fixture
def intercepted_hub(monkeypatch):
    calls = {"create_repo": [], "commits": []}

    def fake_create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append((repo_id, kwargs))

    def fake_create_commit(self, repo_id, operations, **kwargs):
        files = {op.path_in_repo: open(op.path_or_fileobj, "rb").read() for op in operations}
        calls["commits"].append({"repo_id": repo_id, "files": files, **kwargs})
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/spaces/{repo_id}/commit/0"})()

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    monkeypatch.setattr(HfApi, "whoami", lambda self, token=None: {"name": "tester"})  # the access check
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads the variable once, at import: a suite run with HF_HUB_OFFLINE=1 needs this too.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return calls


def test_space_push_commits_exactly_the_app_requirements_and_card(tmp_path, intercepted_hub, capsys):
    from snake_world_eqm.hub import main

    assert main(["--space-id", "org/snake-eqm-demo", "--model-id", "org/snake-eqm",
                 "--space-dir", str(tmp_path / "space")]) == 0
    assert intercepted_hub["create_repo"] == [("org/snake-eqm-demo", {"repo_type": "space", "private": False,
                                                                       "exist_ok": True, "space_sdk": "gradio"})]
    (commit,) = intercepted_hub["commits"]
    assert commit["repo_type"] == "space" and sorted(commit["files"]) == sorted(SPACE_FILES)
    card = commit["files"]["README.md"].decode()
    metadata = yaml.safe_load(card.split("---")[1])
    assert metadata["sdk"] == "gradio" and metadata["app_file"] == "app.py"
    assert metadata["models"] == ["org/snake-eqm"] and metadata["sdk_version"]
    app = commit["files"]["app.py"].decode()
    compile(app, "app.py", "exec")
    assert "from snake_world_eqm.app import main" in app and '"org/snake-eqm"' in app
    assert commit["files"]["requirements.txt"].decode().startswith("snake-world-eqm[app]")
    assert "org/snake-eqm-demo" in capsys.readouterr().out


def test_space_folder_is_checked_and_bad_input_is_refused(tmp_path, intercepted_hub):
    from snake_world_eqm.hub import main, push_folder

    folder = build_space_folder(tmp_path / "space", "org/m", package_spec="snake-world-eqm[app] @ git+https://x/y")
    assert (folder / "requirements.txt").read_text() == "snake-world-eqm[app] @ git+https://x/y\n"
    (folder / "extra.bin").write_bytes(b"x")
    with pytest.raises(ValueError, match="must hold exactly README.md, app.py, requirements.txt"):
        check_space_folder(folder)
    with pytest.raises(ValueError, match="must hold exactly"):
        push_folder(folder, "org/demo", repo_type="space")
    with pytest.raises(ValueError, match="not empty"):
        build_space_folder(folder, "org/m")
    with pytest.raises(ValueError, match="repo id like"):
        build_space_folder(tmp_path / "other", "no-namespace")
    with pytest.raises(SystemExit, match="needs --model-id"):
        main(["--space-id", "org/demo"])
    with pytest.raises(SystemExit, match="repo id like|must look like"):
        main(["--space-id", "org/demo", "--model-id", "bad"])
    with pytest.raises(SystemExit, match="--repo-id is required"):
        main(["--model-dir", str(tmp_path)])
    assert intercepted_hub["commits"] == [] and intercepted_hub["create_repo"] == []


def test_page_links_open_a_game_in_progress_or_say_what_is_wrong():
    from snake_world_eqm.app import MAX_LINK_STEPS, link_settings

    assert link_settings({}) == (0, "eqm", 0)
    assert link_settings({"seed": "3", "agent": "planner", "steps": "20"}) == (3, "planner", 20)
    assert link_settings({"agent": "you", "steps": "5"}, seed=2) == (2, "you", 0)  # a person's game starts fresh
    for query, message in [({"seed": "x"}, "must be integers"), ({"agent": "robot"}, "agent in the link"),
                           ({"steps": str(MAX_LINK_STEPS + 1)}, "steps in 0.."), ({"seed": "-1"}, "seed >= 0")]:
        with pytest.raises(ValueError, match=message):
            link_settings(query)


def test_a_predicted_board_without_food_is_drawn_by_the_game_renderer():
    from snake_world_eqm.game import (
        EMPTY,
        FOOD,
        TAIL,
        IllegalObservationError,
        encode_observation,
        new_game,
        render_rgb,
    )

    board = encode_observation(new_game(6, 6, rng=0))
    foodless = np.where(board == FOOD, EMPTY, board).astype(np.int8)  # as the model predicts after eating
    food_cell = np.argwhere(board == FOOD)[0]
    differs = (render_rgb(board, cell_size=4) != render_rgb(foodless, cell_size=4)).any(axis=2)
    rows, cols = np.nonzero(differs)
    assert set(rows // 4) == {food_cell[0]} and set(cols // 4) == {food_cell[1]}
    broken = foodless.copy()
    broken[tuple(np.argwhere(broken == TAIL)[0])] = EMPTY  # the tail removed: the chain points at nothing
    with pytest.raises(IllegalObservationError, match="broken chain"):
        render_rgb(broken)


def test_app_command_refuses_a_model_it_cannot_load(tmp_path, monkeypatch):
    pytest.importorskip("gradio")
    from snake_world_eqm.app import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit, match="snake-eqm app: cannot load the model"):
        main(["--model", str(tmp_path / "missing")])


def test_cap_cache_keeps_the_newest_files(tmp_path):
    import os

    from snake_world_eqm.app import cap_cache

    for index in range(5):
        path = tmp_path / f"sub{index % 2}" / f"image{index}.webp"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (1000 + index, 1000 + index))
    assert cap_cache(tmp_path, max_files=3) == 2
    assert sorted(path.name for path in tmp_path.rglob("*.webp")) == ["image2.webp", "image3.webp", "image4.webp"]
    assert cap_cache(tmp_path, max_files=3) == 0 and cap_cache(tmp_path / "missing") == 0


def test_a_model_without_prob_draws_shows_no_probabilities(monkeypatch):
    """The settled softmax (~71% on every board) is never shown as a probability: a model whose sample has
    no prob_draws gets none on the page."""
    import snake_world_eqm.app as app

    model = app.load_model()
    monkeypatch.setattr(app, "takes_prob_draws", lambda model: False)
    session = GameSession(model, seed=0)
    assert not session.analysis.calibrated and app.shown_probabilities(session) == {}
    assert session.as_dict()["model"]["action_probs_calibrated"] is False
    _, _, whatifs = session_pictures(session)
    assert not [caption for _, caption in whatifs if "%" in caption]


# ---- the dream mode: play inside the model (issue 36, item 5) -------------------------------------------


def test_dream_session_with_an_exact_model_never_diverges_and_shows_no_frame():
    from snake_world_eqm.app import DreamSession, dream_markdown, dream_pictures
    from tests.dream_helpers import ExactModel

    session = DreamSession(ExactModel(6, 6, seed=2), seed=2)
    while session.twin.steps < 30 and not session.done:
        divergence = session.play("expert", "dream")
        assert divergence.equal and divergence.cells == 0
        assert session.acted_on == "dream" and session.controller == "expert"
    data = json.loads(json.dumps(session.as_dict()))
    assert data["steps"] == 30 and data["real"]["board"] == data["dream"]["board"]
    assert data["real"]["apples"] == data["dream"]["apples"] >= 3
    assert data["divergence"] == {"equal": True, "cells": 0, "snake_cells": 0, "first_step": None,
                                  "first_snake_step": None, "resyncs": 0, "synced_at": 0}
    real, dream = dream_pictures(session)
    assert np.array_equal(real, dream)  # same board, no yellow frame
    text = dream_markdown(session)
    assert "**dream = real**" in text and "first differed: never" in text and "drawn by the model" in text


def test_dream_session_shows_a_corrupted_prediction_its_cells_and_the_illegal_end():
    from snake_world_eqm.app import MISMATCH_COLOUR, DreamSession, dream_markdown, dream_pictures
    from tests.dream_helpers import CorruptingModel

    session = DreamSession(CorruptingModel(6, 6, seed=2, corrupt=(3,)), seed=2, food="real")
    for _ in range(3):
        session.play("expert", "real")
    twin = session.twin
    assert twin.dream_end == "illegal:heads" and twin.divergence().cells == 1 and twin.first_diverged == 3
    real, dream = dream_pictures(session)
    cell = real.shape[0] // 6
    framed = (dream.reshape(6, cell, 6, cell, 3)[:, 0, :, 0] == MISMATCH_COLOUR).all(axis=-1)
    assert framed.tolist() == twin.divergence().mask.tolist()
    text = dream_markdown(session)
    assert "**dream ≠ real**: 1 cell(s) differ, 1 with the food masked" in text and "first differed: step 3" in text
    assert "ended: **illegal:heads**" in text and "copied from the real game (food-corrected)" in text
    # The dream ended: an agent told to read it reads the real board; a person's move steps the real game only.
    session.play("expert", "dream")
    assert session.acted_on == "real" and twin.steps == 4 and twin.dream_end == "illegal:heads"
    frozen = twin.dream.copy()
    session.step(int(session.agent_action("expert")[0]))
    assert twin.steps == 5 and np.array_equal(twin.dream, frozen) and session.controller == "you"
    session.resync()
    assert session.as_dict()["divergence"]["cells"] == 0 and session.as_dict()["dream"]["end"] == ""
    with pytest.raises(ValueError, match="controller must be one of"):
        session.agent_action("you")


def test_dream_links_and_bad_choices_are_refused():
    from snake_world_eqm.app import DreamSession, dream_link_settings

    assert dream_link_settings({}) == (False, "decoder", "real")
    assert dream_link_settings({"mode": "dream", "food": "real", "on": "dream"}) == (True, "real", "dream")
    for query, message in [({"mode": "nightmare"}, "mode in the link"), ({"food": "x"}, "food in the link"),
                           ({"on": "both"}, "on in the link")]:
        with pytest.raises(ValueError, match=message):
            dream_link_settings(query)
    with pytest.raises(ValueError, match="board size 8x8 is not one this model supports"):
        DreamSession(Oracle(6, 6), 8, 8)
    with pytest.raises(ValueError, match="dream food must be one of"):
        DreamSession(Oracle(6, 6), food="uniform")
