"""hub/push.py on its own (issue #33): the exact file list a push sends for each kind of folder, what the dry run
reports as left behind, and the one-line refusals a user sees before anything is sent. Uploads are intercepted
at HfApi (the `hub` fixture of test_bad_input_hub); nothing reaches the network."""

from __future__ import annotations

import io
import json

import pytest
import torch
from huggingface_hub import constants
from huggingface_hub.utils import HFValidationError, validate_repo_id
from safetensors.torch import save_file

from snake_world_eqm.hub.push import (
    DATASET_ALLOWED_PATTERNS,
    MODEL_ALLOWED_PATTERNS,
    PACKAGE_DIR,
    REMOTE_CODE_FILES,
    SPACE_FILES,
    allowed_files,
    cache_blob,
    check_dataset_folder,
    check_hub_access,
    check_model_folder,
    check_repo_id,
    check_space_folder,
    files_to_push,
    inside_folder,
    print_upload_plan,
    push_folder,
    remote_code_files,
    skipped_files,
    upload_folder_allowlisted,
    uploadable,
)


def _model(folder, config=None):
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "snake_world_eqm"} if config is None else config))
    save_file({"w": torch.zeros(2)}, str(folder / "model.safetensors"))
    return folder


def test_a_model_folder_sends_its_config_weights_card_and_named_results_only(tmp_path):
    folder = _model(tmp_path / "m")
    for name in ("README.md", "metrics.json", "eval.json", "eval_10x10.json", "evaluation_sizes.json",
                 "generation_config.json", "training_curves.png", "plots/loss.png",
                 # left behind: logs, other results, nested plots, checkpoints
                 "train_log.jsonl", "run.json", "notes.md", "plots/raw/loss.png", "plots/loss.svg",
                 "checkpoints/checkpoint-2/model.safetensors", "best/model.safetensors", "README.md.bak"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    found = allowed_files(folder, MODEL_ALLOWED_PATTERNS)
    assert sorted(found) == ["README.md", "config.json", "eval.json", "eval_10x10.json", "evaluation_sizes.json",
                             "generation_config.json", "metrics.json", "model.safetensors", "plots/loss.png",
                             "training_curves.png"]
    assert all(path.is_absolute() and path == folder / name for name, path in found.items())
    assert files_to_push(folder, "model").keys() == found.keys()  # no auto_map: no remote code
    assert skipped_files(folder, found) == ["README.md.bak", "best/model.safetensors",
                                            "checkpoints/checkpoint-2/model.safetensors", "notes.md",
                                            "plots/loss.svg", "plots/raw/loss.png", "run.json", "train_log.jsonl"]


def test_a_dataset_folder_sends_its_card_and_parquet_files(tmp_path):
    folder = tmp_path / "ds"
    for name in ("README.md", "data/train-0.parquet", "data/6x6/train-0.parquet", "data/10x12/test.parquet",
                 "data/train.csv", "data/extra/train.parquet", "data/6x6/nested/x.parquet", "build.log"):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")
    assert sorted(allowed_files(folder, DATASET_ALLOWED_PATTERNS)) == [
        "README.md", "data/10x12/test.parquet", "data/6x6/train-0.parquet", "data/train-0.parquet"]


def test_a_model_folder_without_its_files_is_refused_naming_them(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(ValueError, match=r"lacks config.json, model.safetensors: save it with save_pretrained"):
        check_model_folder(folder)


# ------------------------------------------------------------------------------------------------------
# The folder checks: each refusal names what is wrong


def test_a_sharded_model_folder_is_accepted_and_sends_every_shard(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    for shard in ("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"):
        save_file({"w": torch.zeros(1)}, str(folder / shard))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert check_model_folder(folder) == folder
    assert check_model_folder(str(folder)) == folder
    assert sorted(files_to_push(folder, "model")) == ["config.json", "model-00001-of-00002.safetensors",
                                                      "model-00002-of-00002.safetensors",
                                                      "model.safetensors.index.json"]


def test_a_sharded_model_with_a_missing_shard_is_refused_naming_it(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    save_file({"w": torch.zeros(1)}, str(folder / "model-00001-of-00003.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00003.safetensors", "b": "model-00003-of-00003.safetensors",
        "c": "model-00002-of-00003.safetensors", "d": "model-00003-of-00003.safetensors"}}))
    with pytest.raises(ValueError) as error:
        files_to_push(folder, "model")
    assert str(error.value) == (
        f"model folder {folder}: weight shard(s) model-00002-of-00003.safetensors, model-00003-of-00003.safetensors"
        " are missing or links leading out of the folder; copy the real files into the folder")


@pytest.mark.parametrize("present, missing", [(("config.json",), "model.safetensors"),
                                              (("model.safetensors",), "config.json"),
                                              (("config.json", "model.safetensors.index.json"), None),
                                              (("config.json", "model.safetensors"), None)])
def test_a_model_folder_needs_a_config_and_weights(tmp_path, present, missing):
    folder = tmp_path / "m"
    folder.mkdir()
    for name in present:
        (folder / name).write_text("{}")
    if missing is None:
        assert check_model_folder(folder) == folder
        return
    with pytest.raises(ValueError) as error:
        check_model_folder(folder)
    assert str(error.value) == (f"model folder {folder} lacks {missing}: save it with save_pretrained first")


def test_weights_or_config_that_are_folders_do_not_count(tmp_path):
    folder = tmp_path / "m"
    for name in ("config.json", "model.safetensors", "model.safetensors.index.json"):
        (folder / name).mkdir(parents=True)
    with pytest.raises(ValueError, match="lacks config.json, model.safetensors:"):
        check_model_folder(folder)


@pytest.mark.parametrize("content, why", [(b"{not json", "is not valid JSON"), (b"\xff\xfe{}", "is not valid JSON"),
                                          (b"[1, 2]", "is not a JSON object"), (b'"text"', "is not a JSON object")])
def test_a_config_that_does_not_parse_is_refused(tmp_path, content, why):
    folder = _model(tmp_path / "m")
    (folder / "config.json").write_bytes(content)
    with pytest.raises(ValueError) as error:
        check_model_folder(folder)
    assert str(error.value).startswith(f"{folder / 'config.json'} {why}")


def test_a_missing_folder_is_named(tmp_path):
    for check in (check_model_folder, check_dataset_folder, check_space_folder):
        with pytest.raises(FileNotFoundError, match=f"folder {tmp_path / 'nowhere'} does not exist"):
            check(tmp_path / "nowhere")
        (tmp_path / "file").write_text("x")
        with pytest.raises(FileNotFoundError, match="does not exist"):
            check(tmp_path / "file")


def test_a_dataset_folder_needs_its_card_and_parquet_data(tmp_path):
    folder = tmp_path / "ds"
    (folder / "data" / "6x6").mkdir(parents=True)
    with pytest.raises(ValueError, match=f"dataset folder {folder} has no README.md card"):
        check_dataset_folder(folder)
    (folder / "README.md").mkdir()  # not a file
    with pytest.raises(ValueError, match="no README.md card"):
        check_dataset_folder(folder)
    (folder / "README.md").rmdir()
    (folder / "README.md").write_text("# card")
    (folder / "train.parquet").write_text("x")  # outside data/
    with pytest.raises(ValueError, match=f"dataset folder {folder} has no data/\\*.parquet files"):
        check_dataset_folder(folder)
    (folder / "data" / "6x6" / "train.parquet").write_text("x")  # a multi-size dataset
    assert check_dataset_folder(str(folder)) == folder


def test_a_space_folder_holds_exactly_the_app_its_requirements_and_card(tmp_path):
    folder = tmp_path / "space"
    folder.mkdir()
    with pytest.raises(ValueError) as error:
        check_space_folder(folder)
    assert str(error.value) == (f"space folder {folder} must hold exactly README.md, app.py, requirements.txt; "
                                "it holds nothing")
    for name in SPACE_FILES:
        (folder / name).write_text("x")
    assert check_space_folder(str(folder)) == folder
    assert sorted(files_to_push(folder, "space")) == ["README.md", "app.py", "requirements.txt"]
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.py").write_text("x")
    with pytest.raises(ValueError, match="it holds README.md, app.py, requirements.txt, sub/extra.py$"):
        check_space_folder(folder)


# ------------------------------------------------------------------------------------------------------
# Repo ids and Hub access


@pytest.mark.parametrize("repo_id", ["org/name", "org-1/snake.eqm_v2"])
def test_a_valid_repo_id_is_returned(repo_id):
    assert check_repo_id(repo_id) == repo_id


@pytest.mark.parametrize("repo_id", ["name", "a/b/c", "/name", "org/", "/", None, 7, ("org", "name")])
def test_a_repo_id_that_is_not_org_slash_name_is_refused(repo_id):
    with pytest.raises(ValueError) as error:
        check_repo_id(repo_id)
    assert str(error.value) == f"repo_id must look like 'org/name', got {repo_id!r}"


@pytest.mark.parametrize("repo_id", ["org/bad name", "org/x--y", "org/na..me"])
def test_a_repo_id_the_hub_rejects_is_one_line(repo_id):
    with pytest.raises(ValueError) as error:
        check_repo_id(repo_id)
    with pytest.raises(HFValidationError) as hub_error:
        validate_repo_id(repo_id)
    reason = str(hub_error.value).splitlines()[0]  # the Hub's own reason, first line only
    assert str(error.value) == f"invalid repo_id {repo_id!r}: {reason}" and reason


class FakeApi:
    def __init__(self, token=None, user=None, error=None):
        self.token, self.user, self.error, self.asked = token, user, error, []

    def whoami(self, token=None):
        self.asked.append(token)
        if self.error is not None:
            raise self.error
        return self.user


@pytest.fixture
def online(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr("snake_world_eqm.hub.push.get_token", lambda: None)


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "On"])
def test_offline_mode_is_refused_before_the_token_is_asked(online, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    api = FakeApi(token="hf_x", user={"name": "me"})
    with pytest.raises(ConnectionError) as error:
        check_hub_access(api, "hf_x")
    assert str(error.value) == "HF_HUB_OFFLINE is set: pushing needs the network (unset it, or use --dry-run)"
    assert api.asked == []


def test_offline_mode_read_at_import_is_refused_too(online, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConnectionError, match="HF_HUB_OFFLINE"):
        check_hub_access(FakeApi(token="hf_x", user={"name": "me"}))


@pytest.mark.parametrize("value", ["0", "", "false", "no"])
def test_other_offline_values_are_online(online, monkeypatch, value):
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert check_hub_access(FakeApi(user={"name": "me"}), "hf_x") == "me"


def test_no_token_anywhere_is_refused_before_the_hub_is_asked(online):
    api = FakeApi(user={"name": "me"})
    with pytest.raises(PermissionError) as error:
        check_hub_access(api)
    assert str(error.value) == "no Hugging Face token: run `hf auth login`, set HF_TOKEN or pass --token"
    assert api.asked == []


def test_a_token_from_any_source_is_enough(online, monkeypatch):
    api = FakeApi(user={"name": "me"})
    assert check_hub_access(api, "hf_arg") == "me" and api.asked == ["hf_arg"]
    api = FakeApi(token="hf_api", user={"name": "me"})
    assert check_hub_access(api) == "me" and api.asked == [None]
    monkeypatch.setattr("snake_world_eqm.hub.push.get_token", lambda: "hf_stored")
    assert check_hub_access(FakeApi(user={"name": "me"})) == "me"


@pytest.mark.parametrize("user, name", [({"name": "me"}, "me"), ({"name": 7}, "7"), ({}, "?"), (None, "?"),
                                        (["me"], "?")])
def test_the_token_owner_is_returned(online, user, name):
    assert check_hub_access(FakeApi(user=user), "hf_x") == name


@pytest.mark.parametrize("error, message", [
    (OSError("Name or service not known\ndetails"), "OSError: Name or service not known"),
    (TimeoutError(), "TimeoutError: "),
])
def test_a_rejected_token_or_no_connection_is_one_line(online, error, message):
    with pytest.raises(ConnectionError) as raised:
        check_hub_access(FakeApi(error=error), "hf_x")
    assert str(raised.value) == f"cannot reach the Hub with this token: {message}"


# ------------------------------------------------------------------------------------------------------
# Links and hidden files


def test_dotfiles_and_links_out_of_the_folder_are_never_sent(tmp_path):
    folder = _model(tmp_path / "m")
    (tmp_path / "secret.png").write_text("outside")
    (folder / "plots").mkdir()
    (folder / "plots" / ".hidden.png").write_text("x")
    (folder / "plots" / "inside.png").write_text("x")
    (folder / "plots" / "out.png").symlink_to(tmp_path / "secret.png")
    (folder / "plots" / "broken.png").symlink_to(tmp_path / "missing.png")
    (folder / "eval_copy.json").symlink_to(folder / "config.json")  # a link that stays inside: fine
    (folder / "plots" / "dir.png").mkdir()  # a folder with an allowed name
    found = allowed_files(folder, MODEL_ALLOWED_PATTERNS)
    assert sorted(found) == ["config.json", "eval_copy.json", "model.safetensors", "plots/inside.png"]
    assert sorted(allowed_files(folder, (), extra=("plots/*",))) == ["plots/inside.png"]
    assert inside_folder(folder, folder / "eval_copy.json")
    assert not inside_folder(folder, folder / "plots" / "out.png")
    assert not inside_folder(folder, folder / "plots" / "broken.png")
    assert not inside_folder(tmp_path / "nowhere", folder / "config.json")
    (folder / "gone.json").symlink_to(folder / "deleted.json")  # a link to a file inside that is not there
    assert not inside_folder(folder, folder / "gone.json") and not inside_folder(folder, folder / "deleted.json")


def test_a_relative_folder_gives_absolute_paths(tmp_path, monkeypatch):
    _model(tmp_path / "m")
    monkeypatch.chdir(tmp_path)
    found = allowed_files("m", MODEL_ALLOWED_PATTERNS)
    assert found == {"config.json": tmp_path / "m" / "config.json",
                     "model.safetensors": tmp_path / "m" / "model.safetensors"}


def _snapshot(root, blobs_of="models--org--m"):
    """The HF cache layout: models--org--m/snapshots/REV/<file> -> ../../blobs/<hash> (or another repo's blobs)."""
    repo = root / "models--org--m"
    snapshot = repo / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (root / blobs_of / "blobs").mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(("config.json", "model.safetensors")):
        blob = root / blobs_of / "blobs" / f"hash{index}"
        blob.write_bytes(b"{}")
        (snapshot / name).symlink_to(blob)
    return snapshot


def test_a_cache_snapshot_sends_its_own_blobs_only(tmp_path):
    snapshot = _snapshot(tmp_path / "cache")
    assert cache_blob(snapshot, snapshot / "model.safetensors")
    assert uploadable(snapshot, snapshot / "config.json")
    assert sorted(allowed_files(snapshot, MODEL_ALLOWED_PATTERNS)) == ["config.json", "model.safetensors"]
    other = _snapshot(tmp_path / "mixed", blobs_of="models--org--other")  # links into another repo's blobs
    assert not cache_blob(other, other / "config.json") and not uploadable(other, other / "config.json")
    assert allowed_files(other, MODEL_ALLOWED_PATTERNS) == {}


def test_only_a_folder_under_snapshots_is_a_cache_snapshot(tmp_path):
    repo = tmp_path / "models--org--m"
    folder = repo / "revisions" / "abc"  # same shape, wrong name
    folder.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "blobs" / "h").write_text("{}")
    (folder / "config.json").symlink_to(repo / "blobs" / "h")
    assert not cache_blob(folder, folder / "config.json")
    snapshot = repo / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").symlink_to(repo / "blobs" / "h")
    (snapshot / "broken.json").symlink_to(repo / "blobs" / "gone")
    (repo / "blobs" / "sub").mkdir()
    (snapshot / "dir.json").symlink_to(repo / "blobs" / "sub")
    assert cache_blob(snapshot, snapshot / "config.json")
    assert not cache_blob(snapshot, snapshot / "broken.json")  # a blob that is not there
    assert not cache_blob(snapshot, snapshot / "dir.json")  # a folder in blobs/ is not a blob
    assert not cache_blob(repo / "snapshots" / "gone", snapshot / "config.json")


def test_the_dry_run_report_lists_what_stays_home_without_following_linked_folders(tmp_path):
    folder = _model(tmp_path / "m")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "big.bin").write_text("x")
    (folder / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (folder / "runs" / "a").mkdir(parents=True)
    (folder / "runs" / "a" / "events").write_text("x")
    (folder / ".env").write_text("x")
    (folder / "empty").mkdir()
    found = allowed_files(folder, MODEL_ALLOWED_PATTERNS)
    assert skipped_files(folder, found) == [".env", "linked", "runs/a/events"]
    assert skipped_files(str(folder), {**found, ".env": b""}) == ["linked", "runs/a/events"]


def test_the_upload_plan_shows_each_file_its_size_and_what_is_left_out(tmp_path):
    folder = _model(tmp_path / "m")
    (folder / "notes.txt").write_text("x")
    files = {**allowed_files(folder, MODEL_ALLOWED_PATTERNS), "README.md": b"# card\n"}
    out = io.StringIO()
    print_upload_plan(folder, files, out=out)
    size = (folder / "model.safetensors").stat().st_size
    assert out.getvalue().splitlines() == [
        f"would upload 3 file(s) from {folder}:",
        "  README.md  7 bytes (generated / from the package)",
        f"  config.json  {len(json.dumps({'model_type': 'snake_world_eqm'}))} bytes",
        f"  model.safetensors  {size} bytes",
        "left out (1, not on the allow-list or a link out of the folder): notes.txt",
    ]


def test_the_upload_plan_names_twenty_left_out_files_then_elides(tmp_path, capsys):
    folder = _model(tmp_path / "m")
    for index in range(21):
        (folder / f"log{index:02d}.txt").write_text("x")
    print_upload_plan(folder, allowed_files(folder, MODEL_ALLOWED_PATTERNS))
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == ("left out (21, not on the allow-list or a link out of the folder): "
                    + ", ".join(f"log{index:02d}.txt" for index in range(20)) + " ...")
    (folder / "log20.txt").unlink()
    print_upload_plan(folder, allowed_files(folder, MODEL_ALLOWED_PATTERNS))
    assert capsys.readouterr().out.splitlines()[-1].endswith("log18.txt, log19.txt")
    for index in range(20):
        (folder / f"log{index:02d}.txt").unlink()
    print_upload_plan(folder, allowed_files(folder, MODEL_ALLOWED_PATTERNS))
    assert "left out" not in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------------
# Remote code


def test_remote_code_travels_only_with_an_auto_map(tmp_path):
    assert remote_code_files(_model(tmp_path / "none")) == {}
    assert remote_code_files(_model(tmp_path / "empty", {"auto_map": {}})) == {}
    assert remote_code_files(_model(tmp_path / "null", {"auto_map": None})) == {}
    ours = _model(tmp_path / "ours", {"auto_map": {
        "AutoConfig": "configuration_snake_world_eqm.SnakeWorldEqMConfig",
        "AutoModel": ["modeling_snake_world_eqm.SnakeWorldEqM", None],
        "AutoModelForX": "org/repo--modeling_snake_world_eqm.SnakeWorldEqM"}})
    assert remote_code_files(ours) == {name: PACKAGE_DIR / name for name in REMOTE_CODE_FILES}
    assert REMOTE_CODE_FILES == ("configuration_snake_world_eqm.py", "modeling_snake_world_eqm.py", "eqm.py")
    assert all((PACKAGE_DIR / name).is_file() for name in REMOTE_CODE_FILES)


def test_an_auto_map_naming_other_modules_is_refused_naming_them(tmp_path):
    folder = _model(tmp_path / "m", {"auto_map": {
        "AutoConfig": "configuration_snake_world_eqm.SnakeWorldEqMConfig",
        "AutoTokenizer": ["zeta.Tok", "alpha.Fast"], "AutoModel": "org/repo--zeta.Model"}})
    with pytest.raises(ValueError) as error:
        remote_code_files(folder)
    assert str(error.value) == (
        f"{folder / 'config.json'}: auto_map names module(s) alpha, zeta that are not part of snake-world-eqm (only "
        "configuration_snake_world_eqm.py, modeling_snake_world_eqm.py, eqm.py are pushed); fix the config")


def test_an_auto_map_that_is_not_an_object_is_refused(tmp_path):
    folder = _model(tmp_path / "m", {"auto_map": ["modeling_snake_world_eqm.SnakeWorldEqM"]})
    with pytest.raises(ValueError) as error:
        remote_code_files(folder)
    assert str(error.value) == f"{folder / 'config.json'}: auto_map is not a JSON object"


# ------------------------------------------------------------------------------------------------------
# The upload itself


class RecordingApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def create_branch(self, repo_id, **kwargs):
        self.calls.append(("create_branch", repo_id, kwargs))

    def create_commit(self, **kwargs):
        operations = kwargs.pop("operations")
        files = {}
        for op in operations:
            content = op.path_or_fileobj
            files[op.path_in_repo] = content if isinstance(content, bytes) else open(content, "rb").read()
        self.calls.append(("create_commit", files, kwargs))
        return "commit"


def test_an_upload_creates_the_repo_and_sends_one_commit(tmp_path):
    folder = _model(tmp_path / "m")
    api = RecordingApi()
    result = upload_folder_allowlisted(api, folder, "org/m", "model", {"config.json": folder / "config.json",
                                                                       "README.md": b"# card"})
    assert result == "commit"
    assert api.calls == [
        ("create_repo", "org/m", {"repo_type": "model", "private": False, "exist_ok": True}),
        ("create_commit", {"README.md": b"# card", "config.json": (folder / "config.json").read_bytes()},
         {"repo_id": "org/m", "repo_type": "model", "revision": None,
          "commit_message": "Upload model with snake-world-eqm"}),
    ]


def test_an_upload_to_a_branch_of_a_private_space(tmp_path):
    folder = tmp_path / "space"
    folder.mkdir()
    (folder / "app.py").write_text("print(1)\n")
    api = RecordingApi()
    upload_folder_allowlisted(api, folder, "org/demo", "space", ["app.py"], commit_message="why",
                              revision="dev", private=True)
    assert api.calls == [
        ("create_repo", "org/demo", {"repo_type": "space", "private": True, "exist_ok": True, "space_sdk": "gradio"}),
        ("create_branch", "org/demo", {"branch": "dev", "repo_type": "space", "exist_ok": True}),
        ("create_commit", {"app.py": b"print(1)\n"},
         {"repo_id": "org/demo", "repo_type": "space", "revision": "dev", "commit_message": "why"}),
    ]


@pytest.mark.parametrize("repo_type", ["models", "", None, "Space"])
def test_an_unknown_repo_type_is_refused_before_anything_is_sent(tmp_path, repo_type):
    folder = _model(tmp_path / "m")
    api = RecordingApi()
    message = f"repo_type must be 'model', 'dataset' or 'space', got {repo_type!r}"
    with pytest.raises(ValueError) as error:
        upload_folder_allowlisted(api, folder, "org/m", repo_type, ["config.json"])
    assert str(error.value) == message
    for call in (lambda: push_folder(folder, "org/m", repo_type=repo_type, dry_run=True),
                 lambda: files_to_push(folder, repo_type)):
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value) == message
    assert api.calls == []


def test_an_upload_with_a_bad_repo_id_or_nothing_to_send_is_refused(tmp_path):
    folder = _model(tmp_path / "m")
    api = RecordingApi()
    with pytest.raises(ValueError, match="must look like 'org/name'"):
        upload_folder_allowlisted(api, folder, "m", "model", ["config.json"])
    with pytest.raises(ValueError) as error:
        upload_folder_allowlisted(api, folder, "org/m", "model", {})
    assert str(error.value) == f"nothing to upload from {folder}"
    assert api.calls == []


@pytest.mark.parametrize("path_in_repo", ["a//b", "./a", "a/./b", "a/..", ".hidden", "a/.git/config", "/abs"])
def test_an_upload_refuses_paths_that_are_not_plain_relative_ones(tmp_path, path_in_repo):
    folder = _model(tmp_path / "m")
    api = RecordingApi()
    with pytest.raises(ValueError) as error:
        upload_folder_allowlisted(api, folder, "org/m", "model", {path_in_repo: b"x"})
    assert str(error.value) == f"refusing to upload {path_in_repo!r}: hidden or not a plain relative path"
    assert api.calls == []


def test_an_upload_refuses_a_folder_or_a_missing_file(tmp_path):
    folder = _model(tmp_path / "m")
    (folder / "sub").mkdir()
    for source in ("sub", "missing.json", folder / "missing.json"):
        with pytest.raises(ValueError) as error:
            upload_folder_allowlisted(RecordingApi(), folder, "org/m", "model", {"x": source})
        assert str(error.value) == f"refusing to upload {folder / source}: not a file inside {folder}"


def test_a_push_sends_the_card_given_instead_of_the_folders(tmp_path, monkeypatch):
    folder = _model(tmp_path / "m")
    (folder / "README.md").write_text("old card")
    files = push_folder(folder, "org/m", card="# new card", dry_run=True)
    assert files["README.md"] == b"# new card" and (folder / "README.md").read_text() == "old card"
    assert push_folder(folder, "org/m", dry_run=True)["README.md"] == folder / "README.md"
    with pytest.raises(ValueError, match="must look like"):
        push_folder(folder, "m", dry_run=True)

    api = RecordingApi()
    asked = []
    monkeypatch.setattr("snake_world_eqm.hub.push.check_hub_access", lambda api, token: asked.append(token))
    assert push_folder(folder, "org/m", card="# c", api=api, token="hf_t", commit_message="msg", revision="r",
                       private=True) == "commit"
    assert asked == ["hf_t"]
    assert [call[0] for call in api.calls] == ["create_repo", "create_branch", "create_commit"]
    assert api.calls[0][2]["private"] is True
    assert api.calls[2][1]["README.md"] == b"# c"
    assert api.calls[2][2] == {"repo_id": "org/m", "repo_type": "model", "revision": "r", "commit_message": "msg"}


def test_a_push_builds_its_api_with_the_token(tmp_path, monkeypatch):
    folder = _model(tmp_path / "m")
    made, made_apis = [], []

    class MadeApi(RecordingApi):
        def __init__(self, token=None):
            super().__init__()
            made.append(token)
            made_apis.append(self)

    monkeypatch.setattr("snake_world_eqm.hub.push.HfApi", MadeApi)
    monkeypatch.setattr("snake_world_eqm.hub.push.check_hub_access", lambda api, token: None)
    push_folder(folder, "org/m", token="hf_t")
    assert made == ["hf_t"]
    # A new repo is public unless asked otherwise (`--private`).
    assert made_apis[0].calls[0] == ("create_repo", "org/m", {"repo_type": "model", "private": False,
                                                                     "exist_ok": True})


def test_a_dataset_push_sends_its_files(tmp_path):
    folder = tmp_path / "ds"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("# card")
    (folder / "data" / "train.parquet").write_text("x")
    assert push_folder(folder, "org/ds", repo_type="dataset", dry_run=True) == {
        "README.md": folder / "README.md", "data/train.parquet": folder / "data" / "train.parquet"}


@pytest.mark.parametrize("linked, missing", [(("model.safetensors",), "model.safetensors"),
                                             (("config.json",), "config.json"),
                                             (("config.json", "model.safetensors"), "config.json, model.safetensors")])
def test_config_or_weights_linked_from_outside_are_refused_not_left_behind(tmp_path, linked, missing):
    source = _model(tmp_path / "elsewhere")
    folder = _model(tmp_path / "m")
    for name in linked:
        (folder / name).unlink()
        (folder / name).symlink_to(source / name)
    with pytest.raises(ValueError) as error:
        files_to_push(folder, "model")
    assert str(error.value) == (
        f"model folder {folder}: {missing} is a link leading out of the folder (not an HF-cache snapshot's blob), so "
        "it would not be pushed; copy the real file into the folder")
