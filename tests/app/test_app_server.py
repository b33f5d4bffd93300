"""The Gradio app as people reach it: a real server on 127.0.0.1 with the shipped model, driven through
gradio_client. Skipped when the `app` extra (gradio) is not installed; `pip install -e ".[dev]"` has it."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")
gradio_client = pytest.importorskip("gradio_client")

from snake_world_eqm.game import (  # noqa: E402
    EMPTY,
    FOOD,
    batched_step,
    is_terminal_observation,
    mask_food,
    validate_observation,
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    import torch

    from snake_world_eqm.app import launch, load_model

    torch.set_flush_denormal(True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_ANALYTICS_ENABLED", "False")  # tests never reach the network
        demo = launch(load_model(), host="127.0.0.1", port=_free_port(), block=False)
    try:
        yield demo
    finally:
        demo.close()


@pytest.fixture
def client(server):
    client = gradio_client.Client(server.local_url, verbose=False, download_files=False, analytics_enabled=False)
    try:
        yield client
    finally:
        client.close()


def _legal(board) -> np.ndarray:
    array = np.asarray(board, dtype=np.int8)
    validate_observation(array, allow_terminal=True)  # IllegalObservationError names the problem
    return array


def _legal_prediction(predicted) -> np.ndarray:
    """Legal up to the food: after eating, the model may leave the new food out (its place is random),
    so a board without food is checked with one put on an empty cell."""
    predicted = np.asarray(predicted, dtype=np.int8)
    empty = np.argwhere(predicted == EMPTY)
    if not (predicted == FOOD).any() and not is_terminal_observation(predicted) and len(empty):
        with_food = predicted.copy()
        with_food[tuple(empty[0])] = FOOD
        _legal(with_food)
    else:
        _legal(predicted)
    return predicted


def _session(outputs) -> dict:
    """The `boards as data` JSON: the last output of every endpoint."""
    data = outputs[-1]
    assert isinstance(data, dict) and "board" in data
    return data


def test_server_plays_and_reports_real_and_predicted_boards(client):
    assert {"/new_game", "/step", "/move_up", "/move_right", "/move_down", "/move_left"} <= set(
        client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    data = _session(client.predict("10x10", 7, "expert", api_name="/new_game"))
    assert (data["steps"], data["score"], data["done"], data["last_step"]) == (0, 0, False, None)
    matched = 0
    for _ in range(4):  # bounded: four expert moves
        before, model_view = _legal(data["board"]), data["model"]
        data = _session(client.predict("expert", api_name="/step"))
        last = data["last_step"]
        real = _legal(last["real"])
        predicted = _legal_prediction(last["predicted"])
        assert (real == _legal(data["board"])).all()
        # The model predicted the action's successor before the move: it is the what-if shown a step ago.
        assert (predicted == np.array(model_view["whatif"][last["action"]]["board"])).all()
        action = ["up", "right", "down", "left"].index(last["action"])
        truth = batched_step(before[None], np.array([action]), np.random.default_rng(0))[0][0]
        assert (mask_food(real[None]) == mask_food(truth[None])).all()  # food placement after eating is random
        model_right = bool((mask_food(predicted[None]) == mask_food(truth[None])).all())
        assert last["match"] == model_right and (last["mismatched_cells"] == 0) == model_right
        if model_right and last["event"] != "eat":
            assert (predicted == real).all()
        matched += model_right
        if data["done"]:
            break
    assert matched >= 1, "the shipped model got no move right: the comparison was never exercised"
    for outcome in data["model"]["whatif"].values():
        assert outcome["death"] == is_terminal_observation(_legal_prediction(outcome["board"]))


def test_a_person_moves_with_the_arrow_endpoints(client):
    data = _session(client.predict("10x10", 0, "you", api_name="/new_game"))
    head_before = np.argwhere((np.array(data["board"]) >= 2) & (np.array(data["board"]) <= 6))[0]
    neck = data["model"]["whatif"]
    safe = next(name for name, outcome in neck.items() if not outcome["death"])
    data = _session(client.predict(api_name=f"/move_{safe}"))
    assert data["last_step"]["action"] == safe and data["steps"] == 1 and not data["done"]
    head_after = np.argwhere((np.array(data["board"]) >= 2) & (np.array(data["board"]) <= 6))[0]
    assert np.abs(head_after - head_before).sum() == 1
    with pytest.raises(Exception, match="you are playing"):
        client.predict("you", api_name="/step")


def test_uploads_are_refused_and_nothing_is_stored(server, client, tmp_path):
    """Issue 28 item 3: no anonymous file hosting. The page has no file input, so the upload route answers
    403 (the size limit is 0 as well) and the app's temporary folder gains no file."""
    import httpx

    cache = server.GRADIO_CACHE
    assert "snake-eqm-app-" in cache  # a folder of its own, not the machine-wide gradio one
    before = sorted(str(path) for path in Path(cache).rglob("*"))
    secret = tmp_path / "payload.bin"
    secret.write_bytes(b"x" * 4096)
    for body in (secret.read_bytes(), b""):
        answer = httpx.post(client.upload_url, headers=client.headers, cookies=client.cookies,
                            files=[("files", ("payload.bin", body))])
        assert answer.status_code == 403 and "no file uploads" in answer.text
    assert client.config.get("max_file_size") == 0
    assert sorted(str(path) for path in Path(cache).rglob("*")) == before


def test_the_page_has_a_legend_and_only_calibrated_probabilities(client):
    """The colour legend is on the page; the action probabilities are the smoothed votes of noise draws
    (calibrated), never the settled softmax that reads ~71% on every board."""
    from snake_world_eqm.app import LEGEND, PROBABILITIES_LABEL

    components = client.config["components"]
    texts = [str(c.get("props", {}).get("value", "")) for c in components if c.get("type") == "markdown"]
    assert any(LEGEND in text for text in texts)
    labels = [c for c in components if c.get("type") == "label"]
    assert len(labels) == 1 and labels[0]["props"]["label"] == PROBABILITIES_LABEL
    assert labels[0]["props"].get("visible", True) is True
    data = _session(client.predict("10x10", 3, "eqm", api_name="/new_game"))
    probs = data["model"]["action_probs"]
    assert data["model"]["action_probs_calibrated"] is True and abs(sum(probs.values()) - 1) < 1e-5
    # Votes of K draws smoothed by a pseudo-count: every value is (votes + s) / (K + 4 s), never the 0.71 softmax.
    assert all(abs(value - 0.71) > 0.005 for value in probs.values()), probs


def _dream(outputs) -> dict:
    data = outputs[-1]
    assert isinstance(data, dict) and "dream" in data and "divergence" in data
    return data


def _check_divergence(data) -> None:
    """The reported divergence is what the two returned boards say."""
    real, dream = np.array(data["real"]["board"]), np.array(data["dream"]["board"])
    differ = real != dream
    assert data["divergence"]["cells"] == int(differ.sum()) and data["divergence"]["equal"] == (not differ.any())
    assert data["divergence"]["snake_cells"] == int((mask_food(real[None]) != mask_food(dream[None])).sum())


def test_dream_mode_plays_inside_the_model_beside_the_real_game(client):
    """Issue 36 item 5: the dream tab's endpoints. The real board follows the rules, the dream board is the
    model's (legal while the dream goes on), the divergence matches the boards, the agent reads the board the
    radio names, and a resync puts the real board into the dream."""
    import torch

    from snake_world_eqm.agents.simple import EqMAgent
    from snake_world_eqm.app import load_model

    assert {"/dream_new_game", "/dream_step", "/dream_resync", "/dream_move_up", "/dream_move_left"} <= set(
        client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    data = _dream(client.predict("10x10", 3, "real", api_name="/dream_new_game"))
    assert data["steps"] == 0 and data["dream_food"] == "real" and data["real"]["board"] == data["dream"]["board"]
    assert data["divergence"]["equal"] and data["divergence"]["first_step"] is None
    torch.set_flush_denormal(True)
    agent = EqMAgent(load_model())  # the page's EqM agent: deterministic from the origin
    for world in ("real", "dream", "real", "dream", "dream", "real"):
        before = {name: np.array(data[name]["board"], dtype=np.int8) for name in ("real", "dream")}
        data = _dream(client.predict("eqm", world, api_name="/dream_step"))
        acted_on = data["acted_on"]
        assert acted_on == world or data["dream"]["done"]
        action = ["up", "right", "down", "left"].index(data["last_action"])
        assert action == int(agent.act_batch(before[acted_on][None])[0])
        truth = batched_step(before["real"][None], np.array([action]), np.random.default_rng(0))[0][0]
        assert (mask_food(_legal(data["real"]["board"])[None]) == mask_food(truth[None])).all()
        if not data["dream"]["done"]:
            _legal(data["dream"]["board"])
        _check_divergence(data)
    # Six moves of the shipped model from a 3-cell start, food copied from the real game: the dream is exact.
    assert data["steps"] == 6 and data["divergence"]["equal"] and data["divergence"]["first_step"] is None
    data = _dream(client.predict(api_name="/dream_move_up"))  # a person's move: both worlds, one action
    assert data["last_action"] == "up" and data["controller"] == "you" and data["steps"] == 7
    _check_divergence(data)
    data = _dream(client.predict(api_name="/dream_resync"))
    assert data["real"]["board"] == data["dream"]["board"] and data["divergence"]["cells"] == 0
    assert data["divergence"]["resyncs"] == 1 and data["divergence"]["synced_at"] == 7
    with pytest.raises(Exception, match="you are playing"):
        client.predict("you", "real", api_name="/dream_step")


def test_dream_mode_with_the_models_own_food_parts_at_the_first_apple_and_says_so(client):
    """With the dream's food drawn by the model, the whole boards part once an apple is eaten (the two worlds
    place their new food at random); the page reports the first step, and the food-masked count is separate."""
    data = _dream(client.predict("10x10", 0, "decoder", api_name="/dream_new_game"))
    while data["real"]["apples"] == 0 and not data["real"]["done"] and data["steps"] < 40:
        data = _dream(client.predict("expert", "real", api_name="/dream_step"))
        _check_divergence(data)
    assert data["real"]["apples"] == 1, "the expert ate no apple in 40 moves: nothing was compared"
    divergence = data["divergence"]
    if data["dream"]["apples"] == 1:  # the model grew the snake too: only the food can differ
        assert divergence["snake_cells"] == 0 and divergence["cells"] in (0, 2)
        assert (divergence["first_step"] == data["steps"]) == (divergence["cells"] == 2)
    else:  # the model missed the growth, or its board was illegal
        assert divergence["snake_cells"] > 0 and divergence["first_snake_step"] == data["steps"]
    components = client.config["components"]
    texts = [str(c.get("props", {}).get("value", "")) for c in components if c.get("type") == "markdown"]
    from snake_world_eqm.app import DREAM_COMPARISON

    assert any(DREAM_COMPARISON in text for text in texts)
