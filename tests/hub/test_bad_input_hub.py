"""Pushing (issue 15, items 1, 2, 11): only allow-listed files leave the machine, symlinks never lead out of the
folder, and a push that cannot succeed fails in one line before the folder or the network is touched.
Uploads are intercepted at HfApi; nothing reaches the network."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from huggingface_hub import HfApi, constants
from safetensors.torch import save_file

from snake_world_eqm.hub import main, push_folder, upload_folder_allowlisted

MODEL_FILES = {"config.json", "model.safetensors", "README.md", "metrics.json", "eval.json",
               "configuration_snake_world_eqm.py", "modeling_snake_world_eqm.py", "eqm.py"}


@pytest.fixture
def hub(monkeypatch):
    """Record create_repo/create_commit/whoami instead of reaching the network; a token is present."""
    calls: dict[str, list] = {"create_repo": [], "commits": [], "whoami": []}

    def fake_create_commit(self, repo_id, operations, **kwargs):
        files = {}
        for op in operations:
            content = op.path_or_fileobj
            files[op.path_in_repo] = content if isinstance(content, bytes) else open(content, "rb").read()
        calls["commits"].append({"repo_id": repo_id, "files": files, **kwargs})
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()

    def fake_whoami(self, token=None):
        calls["whoami"].append(token)
        return {"name": "tester"}

    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: calls["create_repo"].append(repo_id))
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    monkeypatch.setattr(HfApi, "whoami", fake_whoami)
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads the variable once, at import: a suite run with HF_HUB_OFFLINE=1 needs this too.
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return calls


def _model_folder(root):
    """A model folder as a careless user leaves it: secrets, tracker runs, checkpoints, links out of it."""
    folder = root / "model"
    folder.mkdir()
    config = {"model_type": "snake_world_eqm", "board_height": 6, "board_width": 6,
              "auto_map": {"AutoConfig": "configuration_snake_world_eqm.SnakeWorldEqMConfig",
                           "AutoModel": "modeling_snake_world_eqm.SnakeWorldEqM"}}
    (folder / "config.json").write_text(json.dumps(config))
    save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    (folder / "metrics.json").write_text(json.dumps({"global_step": 3, "command": "snake-eqm train ..."}))
    (folder / "eval.json").write_text(json.dumps({"action_accuracy": 0.5}))
    (folder / "sub").mkdir()
    (folder / "sub" / ".env").write_text("HF_TOKEN=hf_secret\n")
    (folder / ".env").write_text("AWS_SECRET=1\n")
    (folder / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    (folder / "secrets.txt").write_text("password\n")
    (folder / "wandb" / "run-1").mkdir(parents=True)
    (folder / "wandb" / "run-1" / "config.yaml").write_text("api_key: x\n")
    (folder / "checkpoints" / "checkpoint-5").mkdir(parents=True)
    save_file({"w": torch.ones(2)}, str(folder / "checkpoints" / "checkpoint-5" / "model.safetensors"))
    outside = root / "outside_secret.txt"
    outside.write_text("a system file\n")
    (folder / "training_curves.png").symlink_to(outside)  # an allowed name, but a link out of the folder
    (folder / "plots").symlink_to(root, target_is_directory=True)
    return folder


def _tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        digest.update(str(path.relative_to(folder)).encode())
        if path.is_file() and not path.is_symlink():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_dry_run_lists_only_the_models_own_files(tmp_path, hub, capsys):
    folder = _model_folder(tmp_path)
    before = _tree_digest(folder)
    assert main(["--model-dir", str(folder), "--repo-id", "org/m", "--dry-run"]) == 0
    out = capsys.readouterr().out
    listed = {line.split()[0] for line in out.splitlines() if line.startswith("  ")}
    assert listed == MODEL_FILES
    for secret in (".env", "id_rsa", "secrets.txt", "wandb", "checkpoint-5", "outside_secret", "training_curves"):
        assert secret not in "\n".join(line for line in out.splitlines() if line.startswith("  ")), secret
    assert hub["create_repo"] == [] and hub["commits"] == [] and hub["whoami"] == []
    assert _tree_digest(folder) == before  # not even the card was written


def test_push_commits_exactly_the_allow_list(tmp_path, hub):
    folder = _model_folder(tmp_path)
    assert main(["--model-dir", str(folder), "--repo-id", "org/m"]) == 0
    files = hub["commits"][0]["files"]
    assert set(files) == MODEL_FILES
    assert b"a system file" not in b"".join(files.values())
    assert b"hf_secret" not in b"".join(files.values())


def test_dataset_push_is_card_and_parquet_only(tmp_path, hub):
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("---\n---\n# card\n")
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    (folder / "data" / "notes.csv").write_text("x\n")
    (folder / "data" / ".env").write_text("k\n")
    (folder / "extra.txt").write_text("x\n")
    (folder / "data" / "link.parquet").symlink_to(tmp_path / "elsewhere.parquet")
    (tmp_path / "elsewhere.parquet").write_bytes(b"PAR1 outside")
    push_folder(folder, "org/ds", repo_type="dataset")
    assert set(hub["commits"][0]["files"]) == {"README.md", "data/train-00000-of-00001.parquet"}


def test_dataset_builder_push_dry_run(tmp_path, hub, capsys):
    from dataset_builder.__main__ import main as builder_main

    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("# card\n")
    (folder / "data" / "train-00000-of-00001.parquet").write_bytes(b"PAR1")
    (folder / "wandb").mkdir()
    (folder / "wandb" / "log").write_text("x")
    assert builder_main(["push", str(folder), "--repo-id", "org/ds", "--dry-run"]) == 0
    listed = {line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("  ")}
    assert listed == {"README.md", "data/train-00000-of-00001.parquet"}
    assert hub["commits"] == []


@pytest.mark.parametrize(
    ("path_in_repo", "source"),
    [("../x", "config.json"), (".env", "config.json"), ("sub/.git/config", "config.json"), ("x", "/etc/hostname"),
     ("x", "../outside_secret.txt")],
)
def test_upload_function_refuses_paths_outside_or_hidden(tmp_path, hub, path_in_repo, source):
    folder = _model_folder(tmp_path)
    with pytest.raises(ValueError, match="refusing"):
        upload_folder_allowlisted(HfApi(), folder, "org/m", "model", {path_in_repo: source})
    assert hub["commits"] == [] and hub["create_repo"] == []


def test_upload_function_is_reusable_for_spaces(tmp_path, hub):
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "app.py").write_text("print('hi')\n")
    upload_folder_allowlisted(HfApi(), folder, "org/space", "space", {"app.py": "app.py", "README.md": b"# s\n"})
    assert set(hub["commits"][0]["files"]) == {"app.py", "README.md"}
    upload_folder_allowlisted(HfApi(), folder, "org/space", "space", ["app.py"])  # plain relative paths
    assert hub["commits"][1]["files"] == {"app.py": b"print('hi')\n"}


def _fails_untouched(tmp_path, capsys, argv, fragment, hub):
    folder = tmp_path / "model"
    before = _tree_digest(folder)
    assert main(["--model-dir", str(folder), *argv]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err
    assert "Traceback" not in err
    assert _tree_digest(folder) == before, "the folder changed although the push failed"
    assert hub["create_repo"] == [] and hub["commits"] == []


def test_no_token_fails_in_one_line_before_touching_the_folder(tmp_path, hub, capsys, monkeypatch):
    _model_folder(tmp_path)
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("snake_world_eqm.hub.push.get_token", lambda: None)
    _fails_untouched(tmp_path, capsys, ["--repo-id", "org/m"], "no Hugging Face token", hub)


def test_offline_fails_in_one_line(tmp_path, hub, capsys, monkeypatch):
    _model_folder(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _fails_untouched(tmp_path, capsys, ["--repo-id", "org/m"], "HF_HUB_OFFLINE", hub)


@pytest.mark.parametrize("repo_id", ["no-namespace", "org/bad name", "a/b/c", "org/"])
def test_bad_repo_id_fails_in_one_line(tmp_path, hub, capsys, repo_id):
    _model_folder(tmp_path)
    _fails_untouched(tmp_path, capsys, ["--repo-id", repo_id], "repo_id", hub)
    assert hub["whoami"] == []


def test_rejected_token_or_no_connection_fails_in_one_line(tmp_path, hub, capsys, monkeypatch):
    _model_folder(tmp_path)

    def refuse(self, token=None):
        raise OSError("Name or service not known")

    monkeypatch.setattr(HfApi, "whoami", refuse)
    _fails_untouched(tmp_path, capsys, ["--repo-id", "org/m"], "cannot reach the Hub", hub)


def test_missing_metrics_json_fails_before_the_network(tmp_path, hub, capsys):
    _model_folder(tmp_path)
    _fails_untouched(tmp_path, capsys, ["--repo-id", "org/m", "--metrics-json", str(tmp_path / "none.json")],
                     "does not exist", hub)
    assert hub["whoami"] == []


def test_builder_push_to_hub_with_a_bad_repo_id_builds_nothing(tmp_path, hub, capsys):
    from dataset_builder.__main__ import main as builder_main

    out = tmp_path / "ds"
    with pytest.raises(SystemExit) as exit_:
        builder_main(["--num-samples", "50", "--height", "5", "--width", "5", "--output", str(out),
                      "--no-progress", "--push-to-hub", "not a repo"])
    assert exit_.value.code == 2 and "repo_id" in capsys.readouterr().err
    assert not out.exists()
