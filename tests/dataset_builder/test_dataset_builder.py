"""`python -m dataset_builder`: the folder it writes, the card, validation, refusals, determinism, the Hub path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard, HfApi

import dataset_builder.builder as builder_module
from dataset_builder.__main__ import main
from dataset_builder.validate import validate_dataset
from snake_world_eqm.data import content_fingerprint, load_snake_dataset
from snake_world_eqm.data.features import COLUMNS, features
from snake_world_eqm.data.generate import rows_to_table
from tests.training_helpers import SMALL_BUILD_ARGS as SMALL_ARGS

pytestmark = pytest.mark.usefixtures("private_datasets_cache")


def _build(output: Path, *extra: str) -> int:
    return main([*SMALL_ARGS, "--output", str(output), *extra])


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("build") / "snake_world_dataset"
    assert _build(output, "--augment", "--use-astar") == 0
    return output


def test_folder_is_hub_shaped(built):
    assert (built / "README.md").is_file()
    names = sorted(path.name for path in (built / "data").iterdir())
    # one file per split and seeded chunk: 900 rows in chunks of 300
    assert names == [f"{split}-{chunk:05d}-of-00003.parquet" for split in ("test", "train", "validation") for chunk in range(3)]
    assert _leftovers(built.parent) == []


def test_load_dataset_and_load_snake_dataset_give_the_same_rows(built):
    by_datasets = load_dataset(str(built))
    by_library = load_snake_dataset(built)
    assert set(by_datasets) == set(by_library) == {"train", "validation", "test"}
    assert list(by_datasets["train"].features) == list(COLUMNS)
    assert content_fingerprint(by_datasets) == content_fingerprint(by_library)
    assert sum(len(split) for split in by_library.values()) == 8 * 900  # --num-samples counts rows before augmentation
    assert set(np.unique(by_library["train"]["symmetry"])) == set(range(8))


def test_card_reports_splits_actions_lengths_and_the_command(built):
    card = DatasetCard.load(built / "README.md")
    meta = card.data.to_dict()
    assert meta["configs"][0]["data_files"][0] == {"split": "train", "path": "data/train-*"}
    generation = meta["snake_world_eqm"]["generation"]
    assert generation["seed"] == 5 and generation["augment"] is True and generation["expert"] == "astar"
    assert "--num-samples 900" in meta["snake_world_eqm"]["command"]
    split_sizes = {entry["name"]: entry["num_examples"] for entry in meta["dataset_info"]["splits"]}
    assert split_sizes == {name: len(split) for name, split in load_snake_dataset(built).items()}
    for heading in ("## Splits", "## Action distribution", "## Snake length histogram", "## Features", "## How it was built"):
        assert heading in card.text
    assert "Seed 5" in card.text


def test_validate_finds_no_violation_in_a_fresh_build(built, capsys):
    assert main(["validate", str(built), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("0 violations in 7200 rows")


def test_validate_counts_corrupted_rows(built, tmp_path, capsys):
    corrupted = tmp_path / "corrupted"
    shutil.copytree(built, corrupted)
    file = corrupted / "data" / "train-00000-of-00003.parquet"
    table = pq.read_table(file)
    rows = {name: values.copy() for name, values in Dataset(table).with_format("numpy")[:].items()}
    row, action = np.argwhere(rows["event_per_action"] == 0)[0]  # a plain move, not a death
    rows["next_state_per_action"][row, action] = 0  # its successor replaced by the terminal board
    rows["reward"][10] = 5.0
    pq.write_table(rows_to_table(rows, features(6, 6)), file)
    report = validate_dataset(corrupted, progress=False)
    assert report.violations == (2 if row != 10 else 1)
    assert report.by_check["reward"] == 1
    assert report.by_check["next_state_per_action"] == 1
    assert main(["validate", str(corrupted), "--no-progress"]) == 1
    assert capsys.readouterr().out.startswith(f"{report.violations} violations in 7200 rows")


def _data_files(folder: Path) -> dict[str, bytes]:
    return {file.name: file.read_bytes() for file in sorted((folder / "data").iterdir())}


def test_same_arguments_same_bytes_whatever_num_proc(tmp_path):
    assert _build(tmp_path / "one", "--num-proc", "1") == 0
    assert _build(tmp_path / "two", "--num-proc", "2") == 0
    assert _data_files(tmp_path / "one") == _data_files(tmp_path / "two")
    fingerprints = [DatasetCard.load(tmp_path / n / "README.md").data.snake_world_eqm["fingerprint"] for n in ("one", "two")]
    assert fingerprints[0] == fingerprints[1]
    assert _build(tmp_path / "other", "--seed", "6") == 0
    assert _data_files(tmp_path / "other") != _data_files(tmp_path / "one")


def test_seed_range_shards_write_exactly_the_whole_build(tmp_path):
    assert _build(tmp_path / "whole") == 0
    merged: dict[str, bytes] = {}
    for index in range(2):
        assert _build(tmp_path / f"shard{index}", "--shard-index", str(index), "--num-shards", "2") == 0
        merged.update(_data_files(tmp_path / f"shard{index}"))
    assert merged == _data_files(tmp_path / "whole")
    combined = tmp_path / "combined"
    shutil.copytree(tmp_path / "shard0", combined)
    for file in (tmp_path / "shard1" / "data").iterdir():
        shutil.copy(file, combined / "data" / file.name)
    assert content_fingerprint(load_dataset(str(combined))) == content_fingerprint(load_dataset(str(tmp_path / "whole")))


def test_existing_output_is_refused_unless_overwrite(built, tmp_path, capsys):
    output = tmp_path / "out"
    output.mkdir()
    (output / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        _build(output)
    assert exit_info.value.code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert (output / "keep.txt").read_text() == "mine"
    # Issue 28 item 6: --overwrite replaces an earlier dataset, never a folder of files this tool did not write.
    with pytest.raises(SystemExit):
        _build(output, "--overwrite")
    assert "files this tool did not write (keep.txt)" in capsys.readouterr().err
    assert (output / "keep.txt").read_text() == "mine"
    (output / "keep.txt").unlink()
    assert _build(output) == 0 and _build(output, "--overwrite") == 0 and (output / "README.md").is_file()
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--width", "7", "--augment"], "augment needs a square board"),
        (["--height", "3"], "height must be an integer from 4 to 32"),
        (["--num-samples", "-5"], "expected a positive integer"),
        (["--perturb-prob", "2"], "expected a number in [0, 1]"),
        (["--train-fraction", "0.5"], "summing to 1"),
        (["--num-shards", "9"], "shards but only 3 chunk"),
        (["--frobnicate"], "unrecognized arguments"),
        (["--use-astar", "--no-astar"], "not allowed with argument"),
        (["--private"], "--private only makes sense with --push-to-hub"),
    ],
)

def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        _build(tmp_path / "out", *args)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_failure_while_writing_leaves_nothing_behind(tmp_path, monkeypatch):
    calls = []

    def failing_table(*args, **kwargs):  # the second chunk fails after the first was written
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk on fire")
        return original(*args, **kwargs)

    original = builder_module.rows_to_table
    monkeypatch.setattr(builder_module, "rows_to_table", failing_table)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _build(tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_push_to_hub_commits_the_card_and_parquet_files(tmp_path, monkeypatch):
    calls: dict[str, object] = {}

    def fake_create_repo(self, repo_id, **kwargs):
        calls["create_repo"] = (repo_id, kwargs)

    def fake_create_commit(self, repo_id, operations, **kwargs):
        calls["create_commit"] = (repo_id, {op.path_in_repo: Path(op.path_or_fileobj) for op in operations}, kwargs)

    monkeypatch.setattr(HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(HfApi, "create_commit", fake_create_commit)
    monkeypatch.setattr(HfApi, "whoami", lambda self, token=None: {"name": "tester"})  # the access check
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    output = tmp_path / "out"
    assert _build(output, "--push-to-hub", "org/snake-world", "--private") == 0
    repo_id, repo_kwargs = calls["create_repo"]
    assert repo_id == "org/snake-world" and repo_kwargs["repo_type"] == "dataset" and repo_kwargs["private"] is True
    repo_id, files, commit_kwargs = calls["create_commit"]
    assert commit_kwargs["repo_type"] == "dataset"
    expected = {"README.md"} | {f"data/{p.name}" for p in (output / "data").iterdir()}
    assert set(files) == expected
    assert all(files[name].read_bytes() == (output / name).read_bytes() for name in expected)


def test_loading_by_repo_id_from_the_offline_hf_cache(built, tmp_path, monkeypatch):
    """A Hub repo as the cache holds it after a download: blobs behind snapshots/<commit>, refs/main."""
    cache = tmp_path / "hub"
    repo = cache / "datasets--org--snake-world"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(built, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(cache))
    from_repo = load_snake_dataset("org/snake-world")
    assert content_fingerprint(from_repo) == content_fingerprint(load_snake_dataset(built))
    assert main(["validate", "org/snake-world", "--no-progress"]) == 0


def test_push_subcommand_uploads_an_existing_folder_and_refuses_a_missing_one(built, tmp_path, monkeypatch, capsys):
    committed: list[str] = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(
        HfApi, "create_commit", lambda self, repo_id, operations, **kwargs: committed.extend(op.path_in_repo for op in operations)
    )
    monkeypatch.setattr(HfApi, "whoami", lambda self, token=None: {"name": "tester"})  # the access check
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    assert main(["push", str(built), "--repo-id", "org/snake-world"]) == 0
    assert "README.md" in committed and sum(name.startswith("data/") for name in committed) == 9
    with pytest.raises(SystemExit) as exit_info:
        main(["push", str(tmp_path / "nowhere"), "--repo-id", "org/snake-world"])
    assert exit_info.value.code == 2
    assert "does not exist" in capsys.readouterr().err


def test_validate_of_a_missing_dataset_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["validate", str(tmp_path / "a" / "b" / "c"), "--no-progress"])
    assert exit_info.value.code == 2
    assert "no dataset folder" in capsys.readouterr().err


def test_a_folder_rebuilt_in_place_is_not_served_from_a_stale_cache(tmp_path):
    """`load_dataset` keys its processed cache on the card's metadata; the card's download_size changes with the files."""
    output = tmp_path / "out"
    assert _build(output, "--seed", "1") == 0
    first = content_fingerprint(load_snake_dataset(output))
    assert _build(output, "--seed", "2", "--overwrite") == 0
    assert content_fingerprint(load_snake_dataset(output)) != first
    assert content_fingerprint(load_dataset(str(output))) != first


def test_non_square_boards_and_the_heuristic_expert_build_and_validate(tmp_path, capsys):
    output = tmp_path / "wide"
    args = ["--num-samples", "400", "--height", "5", "--width", "8", "--no-astar", "--rows-per-chunk", "400",
            "--parallel-games", "4", "--max-episode-steps", "50", "--no-progress", "--output", str(output)]
    assert main(args) == 0
    card = DatasetCard.load(output / "README.md").data.snake_world_eqm
    assert card["generation"]["expert"] == "heuristic" and card["generation"]["width"] == 8
    assert load_snake_dataset(output, split="train").features["state"].shape == (5, 8)
    assert main(["validate", str(output), "--no-progress"]) == 0
    assert "0 violations in 400 rows" in capsys.readouterr().out
