"""Issue 28, items 1, 2, 4, 5: what a push may send and what a Space's app.py may contain.

Uploads are intercepted at HfApi (the `hub` fixture of test_bad_input_hub); nothing reaches the network."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import save_file

from snake_world_eqm.hub import REMOTE_CODE_FILES, build_space_folder, main, push_folder, space_app_source
from snake_world_eqm.hub.push import PACKAGE_DIR
from tests.hub.test_bad_input_hub import hub  # noqa: F401  (fixture)

AUTO_MAP = {"AutoConfig": "configuration_snake_world_eqm.SnakeWorldEqMConfig",
            "AutoModel": "modeling_snake_world_eqm.SnakeWorldEqM"}


def _model(folder, auto_map=AUTO_MAP):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "snake_world_eqm", "auto_map": auto_map}))
    save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    return folder


def test_auto_map_cannot_name_a_file_to_upload(tmp_path, hub):  # noqa: F811
    """Item 1: a config naming `local_secrets.Tok` used to upload local_secrets.py, secrets and all."""
    folder = _model(tmp_path / "m", {**AUTO_MAP, "AutoTokenizer": "local_secrets.Tok"})
    (folder / "local_secrets.py").write_text("TOKEN = 'hf_secret'\n")
    assert main(["--model-dir", str(folder), "--repo-id", "org/m"]) == 1
    assert hub["commits"] == []
    with pytest.raises(ValueError, match="local_secrets"):
        push_folder(folder, "org/m", dry_run=True)


def test_remote_code_is_the_package_own_source(tmp_path):
    """Item 1: an edited same-named file in the folder is not what travels; the package's file is."""
    folder = _model(tmp_path / "m")
    (folder / "eqm.py").write_text("SECRET = 'hf_secret'\n")
    files = push_folder(folder, "org/m", dry_run=True)
    for name in REMOTE_CODE_FILES:
        assert files[name] == (PACKAGE_DIR / name).read_bytes()
    no_code = push_folder(_model(tmp_path / "plain", auto_map=None), "org/m", dry_run=True)
    assert not set(REMOTE_CODE_FILES) & set(no_code)


INJECTION = 'org/m"]); __import__("os").system("touch P"); (["'


def test_model_id_injection_is_refused_before_anything_is_written(tmp_path, hub, monkeypatch):  # noqa: F811
    """Item 2: the model id only had one '/' checked, and landed in app.py as code."""
    monkeypatch.chdir(tmp_path)
    space = tmp_path / "space"
    with pytest.raises(SystemExit, match="model"):
        main(["--space-id", "org/demo", "--model-id", INJECTION, "--space-dir", str(space)])
    with pytest.raises(ValueError):
        build_space_folder(space, INJECTION)
    with pytest.raises(SystemExit):
        main(["--space-id", 'org/d"x', "--model-id", "org/m", "--space-dir", str(space)])
    assert not space.exists() and not (tmp_path / "P").exists() and hub["commits"] == []


def test_space_app_holds_the_id_as_data():
    """Item 2: the id is a JSON string literal in app.py; parsing the file gives back exactly the id."""
    import ast

    source = space_app_source("org-1/snake.eqm_v2")
    tree = ast.parse(source)
    assigned = [node.value.value for node in tree.body if isinstance(node, ast.Assign)]
    assert assigned == ["org-1/snake.eqm_v2"]
    with pytest.raises(ValueError):
        space_app_source(INJECTION)


def test_space_folder_not_written_when_the_access_check_fails(tmp_path, monkeypatch):
    """Item 2: offline (or no token), the Space folder used to be written before the check failed."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    space = tmp_path / "space"
    with pytest.raises(SystemExit, match="HF_HUB_OFFLINE"):
        main(["--space-id", "org/demo", "--model-id", "org/m", "--space-dir", str(space)])
    assert not space.exists()


def test_push_with_a_relative_folder(tmp_path, hub, monkeypatch):  # noqa: F811
    """Item 4: `--model-dir eqm` failed with "refusing to upload eqm/eqm/config.json"."""
    _model(tmp_path / "eqm")
    monkeypatch.chdir(tmp_path)
    assert main(["--model-dir", "eqm", "--repo-id", "org/m"]) == 0
    assert {"config.json", "model.safetensors"} <= set(hub["commits"][0]["files"])
    _model(tmp_path / "sub" / "ds_like")
    monkeypatch.chdir(tmp_path / "sub")
    assert main(["--model-dir", "./ds_like", "--repo-id", "org/m", "--dry-run"]) == 0


def _snapshot(root, with_blob_links=True):
    """The HF cache layout: models--org--m/snapshots/REV/<file> -> ../../blobs/<hash>."""
    repo = root / "models--org--m"
    source = _model(root / "src")
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    for index, name in enumerate(("config.json", "model.safetensors")):
        blob = (repo / "blobs" / f"hash{index}") if with_blob_links else (root / f"elsewhere{index}")
        blob.write_bytes((source / name).read_bytes())
        os.symlink(os.path.relpath(blob, snapshot), snapshot / name)
    return snapshot, source


def test_hf_cache_snapshot_pushes_its_weights(tmp_path, hub):  # noqa: F811
    """Item 5: a snapshot (files are links into blobs/) was pushed without its weights, exit 0."""
    snapshot, source = _snapshot(tmp_path)
    assert main(["--model-dir", str(snapshot), "--repo-id", "org/m"]) == 0
    files = hub["commits"][0]["files"]
    assert files["model.safetensors"] == (source / "model.safetensors").read_bytes()
    assert files["config.json"] == (source / "config.json").read_bytes()


def test_links_out_of_the_folder_for_the_weights_are_refused(tmp_path, hub, capsys):  # noqa: F811
    """Item 5: weights that are links to files elsewhere: a clear error, never a push without weights."""
    snapshot, _ = _snapshot(tmp_path, with_blob_links=False)
    assert main(["--model-dir", str(snapshot), "--repo-id", "org/m"]) == 1
    assert "link leading out of the folder" in capsys.readouterr().err
    assert hub["commits"] == []
