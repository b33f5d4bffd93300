"""Push path: the files that would be committed are checked with uploads intercepted at HfApi."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from huggingface_hub import HfApi, constants
from safetensors.torch import save_file

from snake_world_eqm.hub import build_model_card, flatten_metrics, push_folder, write_model_card


@pytest.fixture
def intercepted_hub(monkeypatch):
    """Record create_repo/create_commit calls instead of reaching the network."""
    calls: dict[str, list] = {"create_repo": [], "commits": []}

    def fake_create_repo(self, repo_id, **kwargs):
        calls["create_repo"].append((repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def fake_create_commit(self, repo_id, operations, **kwargs):
        files = {}
        for op in operations:
            content = op.path_or_fileobj
            data = open(content, "rb").read() if isinstance(content, str) else bytes(content)
            files[op.path_in_repo] = data
        calls["commits"].append({"repo_id": repo_id, "files": files, **kwargs})
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    monkeypatch.setattr(HfApi, "whoami", lambda self, token=None: {"name": "tester"})
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads the variable once, at import: a suite run with HF_HUB_OFFLINE=1 needs this too.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return calls


def _fake_model_folder(path):
    path.mkdir()
    (path / "config.json").write_text(json.dumps({"model_type": "snake_world_eqm", "board_height": 10, "board_width": 10}))
    save_file({"w": torch.zeros(2)}, str(path / "model.safetensors"))
    (path / "checkpoints").mkdir()
    (path / "checkpoints" / "junk.bin").write_bytes(b"x")
    return path


def test_push_model_commits_config_weights_and_card(tmp_path, intercepted_hub):
    folder = _fake_model_folder(tmp_path / "model")
    metrics = {"action_accuracy": 0.97, "play": {"eqm": {"mean_apples": 20.5}}}
    (tmp_path / "eval.json").write_text(json.dumps(metrics))
    write_model_card(folder, tmp_path / "eval.json", "org/snake-eqm", "org/snake-world")
    push_folder(folder, "org/snake-eqm", commit_message="first")

    assert intercepted_hub["create_repo"][0][0] == "org/snake-eqm"
    commit = intercepted_hub["commits"][0]
    # The card's results JSON (mean ± std, episodes, date) travels with it, as huggingface_sb3 cards do.
    assert set(commit["files"]) == {"config.json", "model.safetensors", "README.md", "eval_results.json"}
    assert commit["commit_message"] == "first"
    readme = commit["files"]["README.md"].decode()
    metadata = yaml.safe_load(readme.split("---")[1])
    assert metadata["library_name"] == "transformers"
    values = {m["type"]: m["value"] for m in metadata["model-index"][0]["results"][0]["metrics"]}
    assert values == {"action_accuracy": 0.97, "play.eqm.mean_apples": 20.5}


def test_push_refuses_folders_users_could_not_load(tmp_path, intercepted_hub):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="model.safetensors"):
        push_folder(tmp_path / "empty", "org/x")
    with pytest.raises(FileNotFoundError):
        push_folder(tmp_path / "missing", "org/x")
    with pytest.raises(ValueError, match="org/name"):
        push_folder(_fake_model_folder(tmp_path / "m"), "no-namespace")
    with pytest.raises(ValueError, match="README.md"):
        push_folder(tmp_path / "empty", "org/x", repo_type="dataset")
    assert intercepted_hub["commits"] == []


def test_flatten_metrics_keeps_numbers_only():
    flat = flatten_metrics({"a": 1, "b": {"c": 2.5, "d": "text", "e": True}, "f": float("nan")})
    assert flat == {"a": 1.0, "b.c": 2.5}


def test_card_without_metrics_says_so():
    assert "No evaluation was run" in str(build_model_card(None))


def test_card_only_writes_the_card_and_pushes_nothing(tmp_path, intercepted_hub, capsys):
    from snake_world_eqm.hub import main

    folder = _fake_model_folder(tmp_path / "model")
    (tmp_path / "eval.json").write_text(json.dumps({"action_accuracy": 0.5, "coherence": 0.99}))
    assert main(["--model-dir", str(folder), "--repo-id", "org/m", "--metrics-json", str(tmp_path / "eval.json"),
                 "--card-only"]) == 0
    card = (folder / "README.md").read_text()
    assert "| EqM action accuracy vs expert | 0.500 | 0.95 | **missed** |" in card
    assert "| coherence (board follows the model's own action) | 0.990 | 0.99 | met |" in card
    assert intercepted_hub["commits"] == [] and intercepted_hub["create_repo"] == []


def test_the_card_names_the_expert_that_labelled_the_data():
    from snake_world_eqm.hub import build_model_card

    fill = str(build_model_card({"config": {"expert": "fill"}}))
    astar = str(build_model_card({"play": {}}))  # evaluations from before config.expert: the A* expert
    assert "fills the board" in fill and "A* planner" not in fill
    assert "A* planner" in astar and "fills the board" not in astar


def test_the_claims_table_also_compares_the_agent_with_experts_other_than_its_teacher():
    from snake_world_eqm.hub import claims_table

    metrics = {"play": {"eqm": {"mean_apples": 45.0}, "expert": {"mean_apples": 90.0},
                        "expert-astar": {"mean_apples": 100.0, "by_start": {"3": {"mean_apples": 1.0}}}}}
    table = claims_table(metrics)
    assert "| EqM agent apples / expert apples | 0.500 | 0.85 | **missed** |" in table
    assert "| EqM agent apples / astar expert apples | 0.450 | 0.85 | **missed** |" in table
    assert table.count("astar expert apples") == 1  # the per-start numbers are not experts of their own


def test_an_agent_that_did_not_play_is_not_measured_rather_than_zero():
    from snake_world_eqm.hub import claims_table

    table = claims_table({"play": {"eqm": {"mean_apples": 45.0}, "expert": {"mean_apples": 90.0}}})
    assert "| planner apples / expert apples | – | 1.0 | not measured |" in table


def test_voting_eqm_agents_are_compared_with_every_expert():
    from snake_world_eqm.hub import claims_table

    table = claims_table({"play": {"eqm": {"mean_apples": 45.0}, "eqm-votes4": {"mean_apples": 80.0},
                                   "expert": {"mean_apples": 90.0}, "expert-astar": {"mean_apples": 100.0}}})
    assert "| EqM agent with 4 noise votes apples / expert apples | 0.889 | 0.85 | met |" in table
    assert "| EqM agent with 4 noise votes apples / astar expert apples | 0.800 | 0.85 | **missed** |" in table
    # eqm-noise (the EqM agent from one noise draw instead of the origin) gets the same rows.
    table = claims_table({"play": {"eqm": {"mean_apples": 85.0}, "eqm-noise": {"mean_apples": 72.0},
                                   "expert": {"mean_apples": 90.0}, "expert-astar": {"mean_apples": 100.0}}})
    assert "| EqM agent apples / astar expert apples | 0.850 | 0.85 | met |" in table
    assert "| EqM agent from one noise draw apples / expert apples | 0.800 | 0.85 | **missed** |" in table
    assert "| EqM agent from one noise draw apples / astar expert apples | 0.720 | 0.85 | **missed** |" in table
