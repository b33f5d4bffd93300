"""`python -m dataset_builder merge`: N shard folders become one dataset folder equal to a one-machine build."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard

import dataset_builder.merge as merge_module
from dataset_builder.__main__ import main
from snake_world_eqm.data import content_fingerprint, load_snake_dataset
from snake_world_eqm.game.state import DEFAULT_EXPERT
from tests.training_helpers import SMALL_BUILD_ARGS as SMALL_ARGS

pytestmark = pytest.mark.usefixtures("private_datasets_cache")


def _build(output: Path, *extra: str) -> Path:
    assert main([*SMALL_ARGS, "--output", str(output), *extra]) == 0
    return output


def _shard(output: Path, index: int, num_shards: int = 3, *extra: str) -> Path:
    return _build(output, "--shard-index", str(index), "--num-shards", str(num_shards), *extra)


def _merge(output: Path, *folders: Path | str, extra: tuple[str, ...] = ()) -> int:
    return main(["merge", *map(str, folders), "--output", str(output), "--no-progress", *extra])


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict[str, Path]:
    """The one-machine build, its 3 shards built separately, and their merge (shards given out of order)."""
    root = tmp_path_factory.mktemp("builds")
    folders = {"whole": _build(root / "whole")}
    folders.update({f"shard{i}": _shard(root / f"shard{i}", i) for i in range(3)})
    assert _merge(root / "merged", folders["shard2"], folders["shard0"], folders["shard1"]) == 0
    folders["merged"] = root / "merged"
    return folders


def _data_files(folder: Path) -> dict[str, bytes]:
    return {file.name: file.read_bytes() for file in sorted((folder / "data").iterdir())}


def _card_without_command(folder: Path) -> tuple[dict, str]:
    card = DatasetCard.load(folder / "README.md")
    data = card.data.to_dict()
    command = data["snake_world_eqm"].pop("command")
    return data, card.text.replace(command, "COMMAND")


def test_merged_shards_are_the_one_machine_build(builds):
    merged, whole = builds["merged"], builds["whole"]
    assert _data_files(merged) == _data_files(whole)
    assert sorted(path.name for path in merged.iterdir()) == ["README.md", "data"]
    assert _leftovers(merged.parent) == []
    by_datasets = load_dataset(str(merged))
    assert content_fingerprint(by_datasets) == content_fingerprint(load_dataset(str(whole)))
    assert content_fingerprint(load_snake_dataset(merged)) == content_fingerprint(by_datasets)


def test_merged_card_is_the_whole_builds_card_but_for_the_command(builds):
    merged_data, merged_text = _card_without_command(builds["merged"])
    whole_data, whole_text = _card_without_command(builds["whole"])
    # Fingerprint, shard 0 of 1, declared split sizes with their Arrow num_bytes, download size, statistics.
    assert merged_data == whole_data
    assert merged_text == whole_text
    meta = merged_data["snake_world_eqm"]
    assert (meta["shard_index"], meta["num_shards"]) == (0, 1)
    assert {split["name"]: split["num_examples"] for split in merged_data["dataset_info"]["splits"]} == \
        {name: len(split) for name, split in load_snake_dataset(builds["merged"]).items()}
    assert "of 3 (seed-range sharding)" not in merged_text


def test_merged_card_names_the_shard_commands_then_the_merge(builds):
    command = DatasetCard.load(builds["merged"] / "README.md").data.snake_world_eqm["command"]
    lines = command.splitlines()
    assert len(lines) == 4
    assert all(f"--shard-index {i} --num-shards 3" in lines[i] for i in range(3))
    assert lines[3].startswith("python -m dataset_builder merge ")


def test_merged_dataset_validates(builds, capsys):
    assert main(["validate", str(builds["merged"]), "--no-progress"]) == 0
    assert capsys.readouterr().out.startswith("0 violations in 900 rows")


def test_existing_output_is_refused_unless_overwrite(builds, tmp_path, capsys):
    shards = [builds[f"shard{i}"] for i in range(3)]
    output = shutil.copytree(builds["merged"], tmp_path / "out")
    with pytest.raises(SystemExit) as exit_info:
        _merge(output, *shards)
    assert exit_info.value.code == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert _merge(output, *shards, extra=("--overwrite",)) == 0
    assert _data_files(output) == _data_files(builds["whole"])
    assert _leftovers(tmp_path) == []


def _leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def _copy(builds: dict[str, Path], name: str, tmp_path: Path, as_name: str | None = None) -> Path:
    return Path(shutil.copytree(builds[name], tmp_path / (as_name or name)))


def _edit_card(folder: Path, **changes) -> Path:
    card = DatasetCard.load(folder / "README.md")
    meta = card.data.snake_world_eqm
    for key, value in changes.items():
        if key in meta:
            meta[key] = value
        else:
            meta["generation"][key] = value
    card.save(folder / "README.md")
    return folder


def _not_a_dataset(builds, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "README.md").write_text("# my notes\n")
    return [builds["shard0"], builds["shard1"], tmp_path / "notes"]


def _other_card(builds, tmp_path):
    (tmp_path / "card").mkdir()
    DatasetCard("---\nlicense: mit\n---\n# someone else's dataset\n").save(tmp_path / "card" / "README.md")
    return [builds["shard0"], tmp_path / "card"]


def _no_folder(builds, tmp_path):
    return [builds["shard0"], builds["shard1"], tmp_path / "nowhere"]


def _other_seed(builds, tmp_path):
    return [builds["shard0"], _shard(tmp_path / "seed6", 1, 3, "--seed", "6"), builds["shard2"]]


def _other_settings(builds, tmp_path):
    edited = _edit_card(_copy(builds, "shard1", tmp_path), perturb_prob=0.2, expert="heuristic")
    return [builds["shard0"], edited, builds["shard2"]]


def _other_num_shards(builds, tmp_path):
    return [_shard(tmp_path / "of2", 0, 2), builds["shard1"], builds["shard2"]]


def _missing_shard(builds, tmp_path):
    return [builds["shard2"], builds["shard0"]]


def _repeated_shard(builds, tmp_path):
    return [builds["shard0"], builds["shard1"], _copy(builds, "shard1", tmp_path, "again"), builds["shard2"]]


def _same_folder_twice(builds, tmp_path):
    return [builds["shard0"], builds["shard1"], builds["shard1"], builds["shard2"]]


def _file_twice(builds, tmp_path):
    shard0 = _copy(builds, "shard0", tmp_path)
    shutil.copy(builds["shard1"] / "data" / "train-00001-of-00003.parquet", shard0 / "data")
    return [shard0, builds["shard1"], builds["shard2"]]


def _file_of_another_chunk(builds, tmp_path):
    shard0 = _copy(builds, "shard0", tmp_path)
    (shard0 / "data" / "test-00000-of-00003.parquet").rename(shard0 / "data" / "test-00002-of-00003.parquet")
    shard2 = _copy(builds, "shard2", tmp_path)
    (shard2 / "data" / "test-00002-of-00003.parquet").unlink()  # so the name is in one shard only
    return [shard0, builds["shard1"], shard2]


def _file_lost_in_the_copy(builds, tmp_path):
    shard1 = _copy(builds, "shard1", tmp_path)
    (shard1 / "data" / "validation-00001-of-00003.parquet").unlink()
    return [builds["shard0"], shard1, builds["shard2"]]


def _whole_build(builds, tmp_path):
    return [builds["whole"], builds["shard1"], builds["shard2"]]


def _multisize(builds, tmp_path):
    multi = tmp_path / "multi"
    assert main(["--board-sizes", "6x6", "4x4", *SMALL_ARGS, "--num-samples", "600", "--output", str(multi)]) == 0
    return [multi, builds["shard1"], builds["shard2"]]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (_not_a_dataset, "notes is not a dataset built by dataset_builder (its README.md has no YAML metadata)"),
        (_other_card, "card is not a dataset built by dataset_builder (its card has no snake_world_eqm field)"),
        (_no_folder, "nowhere is not a folder"),
        (_other_seed, "different generation settings: seed 5 ("),
        (_other_settings, f"different generation settings: expert {DEFAULT_EXPERT!r} ("),
        (_other_settings, "/shard1); perturb_prob 0.1 ("),
        (_other_num_shards, "different --num-shards (2 in "),
        (_missing_shard, "shard 1 of 3 is missing (given: 0, 2)"),
        (_repeated_shard, "shard 1 of 3 is given twice: "),
        (_same_folder_twice, "shard 1 of 3 is given twice: "),
        (_file_twice, "data file train-00001-of-00003.parquet is in two shards: "),
        (_file_of_another_chunk, "test-00002-of-00003.parquet is not a file of shard 0 of 3 (chunks 0-0 of 3"),
        (_file_lost_in_the_copy, "its data files do not match the fingerprint in its card"),
        (_whole_build, "whole is a whole (unsharded) build, not a shard; it needs no merge"),
        (_multisize, "multi is a multi-size dataset (--board-sizes); those are built whole, never in shards"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:],
)

def test_refusals_are_one_line_and_write_nothing(builds, tmp_path, capsys, inputs, message):
    folders = inputs(builds, tmp_path)
    capsys.readouterr()  # the builds' own output
    output = tmp_path / "merged"
    with pytest.raises(SystemExit) as exit_info:
        _merge(output, *folders)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m dataset_builder merge: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not output.exists()
    assert _leftovers(tmp_path) == []


def test_output_inside_a_shard_is_refused(builds, tmp_path, capsys):
    shards = [_copy(builds, f"shard{i}", tmp_path) for i in range(3)]
    with pytest.raises(SystemExit):
        _merge(shards[0] / "merged", *shards)
    assert "lies inside the input" in capsys.readouterr().err
    assert not (shards[0] / "merged").exists()


def test_a_failure_while_merging_leaves_nothing_behind(builds, tmp_path, monkeypatch):
    calls = []
    original = merge_module.file_stats

    def failing_stats(*args, **kwargs):  # the second file fails after the first was copied
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("disk on fire")
        return original(*args, **kwargs)

    monkeypatch.setattr(merge_module, "file_stats", failing_stats)
    with pytest.raises(RuntimeError, match="disk on fire"):
        _merge(tmp_path / "out", *(builds[f"shard{i}"] for i in range(3)))
    assert list(tmp_path.iterdir()) == []
