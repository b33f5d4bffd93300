"""Several board sizes in one dataset: the folder, the card, native `load_dataset`, validate, push, loading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard, HfApi

from dataset_builder.__main__ import main
from snake_world_eqm.data import content_fingerprint, load_snake_dataset
from snake_world_eqm.data.loading import dataset_board_sizes
from snake_world_eqm.game.state import parse_board_size, size_name, sort_sizes

SMALL = ["--seed", "5", "--max-episode-steps", "60", "--rows-per-chunk", "300", "--parallel-games", "6", "--no-progress"]


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("multi") / "snake_multi"
    args = ["--board-sizes", "6x6", "5x7", "4x4", "--num-samples", "900", "--rows-per-size", "4x4=200", *SMALL]
    assert main([*args, "--output", str(output)]) == 0
    return output


def test_one_folder_per_size_and_one_config_per_size_in_the_card(built):
    assert sorted(p.name for p in (built / "data").iterdir()) == ["4x4", "5x7", "6x6"]
    card = DatasetCard.load(built / "README.md")
    configs = {entry["config_name"]: entry for entry in card.data.configs}
    assert list(configs) == ["4x4", "5x7", "6x6"]  # by cell count
    assert configs["5x7"]["data_files"][0] == {"split": "train", "path": "data/5x7/train-*"}
    meta = card.data.snake_world_eqm
    # --num-samples is shared equally (balanced by rows = steps); --rows-per-size overrides one size
    assert meta["rows_per_size"] == {"4x4": 200, "5x7": 300, "6x6": 300}
    assert "| `5x7` | 35 |" in card.text and "Sizes and rows per size" in card.text


def test_load_dataset_reads_each_size_natively_with_its_board_shape(built):
    for name in ("4x4", "5x7", "6x6"):
        splits = load_dataset(str(built), name)
        assert splits["train"].features["state"].shape == parse_board_size(name)
        assert sum(len(split) for split in splits.values()) == (200 if name == "4x4" else 300)


def test_load_snake_dataset_one_size_all_sizes_and_a_clear_error_without_a_size(built):
    assert dataset_board_sizes(built) == ["4x4", "5x7", "6x6"]
    every = load_snake_dataset(built, board_size="all")
    assert list(every) == ["4x4", "5x7", "6x6"]
    one = load_snake_dataset(built, board_size="5x7", split="train")
    assert np.asarray(one[0]["state"]).shape == (5, 7)
    assert content_fingerprint(every["5x7"]) == content_fingerprint(load_dataset(str(built), "5x7"))
    trains = load_snake_dataset(built, board_size="all", split="train")
    assert {name: len(split) for name, split in trains.items()} == {name: len(every[name]["train"]) for name in every}
    with pytest.raises(ValueError, match=r"several board sizes \(4x4, 5x7, 6x6\); pass board_size"):
        load_snake_dataset(built)
    with pytest.raises(ValueError, match="has no 9x9 boards"):
        load_snake_dataset(built, board_size="9x9")


def test_each_size_is_byte_for_byte_the_single_size_build(built, tmp_path):
    single = tmp_path / "single"
    assert main(["--height", "5", "--width", "7", "--num-samples", "300", *SMALL, "--output", str(single)]) == 0
    for file in sorted((single / "data").glob("*.parquet")):
        assert file.read_bytes() == (built / "data" / "5x7" / file.name).read_bytes()


def test_validate_re_simulates_every_size(built, tmp_path, capsys):
    assert main(["validate", str(built), "--no-progress"]) == 0
    assert "0 violations in 800 rows" in capsys.readouterr().out
    # Corrupt one 6x6 row's next_state (in a copy): validate names the size and split.
    import shutil

    import pyarrow.parquet as pq

    broken = tmp_path / "broken"
    shutil.copytree(built, broken)
    file = sorted((broken / "data" / "6x6").glob("train-*.parquet"))[0]
    table = pq.read_table(file)
    rows = table.to_pylist()
    rows[0]["next_state"] = [[0] * 6 for _ in range(6)] if rows[0]["event"] != 2 else rows[0]["state"]
    pq.write_table(table.from_pylist(rows, schema=table.schema), file)
    assert main(["validate", str(broken), "--no-progress"]) == 1
    assert "6x6/train row 0" in capsys.readouterr().out


def test_push_to_hub_commits_every_size(tmp_path, monkeypatch):
    committed: dict[str, Path] = {}
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kwargs: None)
    monkeypatch.setattr(HfApi, "create_commit", lambda self, repo_id, operations, **kwargs: committed.update(
        {op.path_in_repo: Path(op.path_or_fileobj) for op in operations}))
    monkeypatch.setattr(HfApi, "whoami", lambda self, token=None: {"name": "tester"})  # the access check
    monkeypatch.setenv("HF_TOKEN", "hf_intercepted")
    output = tmp_path / "out"
    args = ["--board-sizes", "4x4", "6x6", "--num-samples", "400", *SMALL, "--output", str(output)]
    assert main([*args, "--push-to-hub", "org/snake-multi"]) == 0
    expected = {"README.md"} | {p.relative_to(output).as_posix() for p in (output / "data").rglob("*.parquet")}
    assert set(committed) == expected and any(name.startswith("data/6x6/") for name in committed)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--board-sizes", "40x40"], "height 40 is outside 4..32"),
        (["--board-sizes", "8by8"], "is not of the form HxW"),
        (["--board-sizes", "6x6", "6x6"], "board sizes repeat: 6x6, 6x6"),
        (["--board-sizes", "6x6", "--rows-per-size", "8x8=100"], "names size(s) 8x8 that are not in --board-sizes"),
        (["--rows-per-size", "6x6=100"], "--rows-per-size needs --board-sizes"),
        (["--board-sizes", "6x6", "5x7", "--augment"], "board size 5x7: augment needs a square board"),
    ],
)
def test_bad_size_arguments_are_one_line_errors_and_write_nothing(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--num-samples", "200", *SMALL, "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in error
    assert list(tmp_path.iterdir()) == []


def test_size_names_parse_and_sort():
    assert parse_board_size("8x12") == (8, 12) and size_name(8, 12) == "8x12"
    assert sort_sizes(["10x10", "8x12", "6x6", "8x8"]) == ["6x6", "8x8", "8x12", "10x10"]
    with pytest.raises(ValueError, match="width 3 is outside"):
        parse_board_size("6x3")


@pytest.mark.parametrize("kind", ["fill", "route", "cycle", "astar", "heuristic"])
def test_the_card_names_the_expert_that_played(kind):
    # It said "heuristic" for every expert but astar, fill (the default) and route included.
    from dataset_builder.card import EXPERT_DESCRIPTIONS, DatasetStats
    from dataset_builder.multisize import build_multisize_card
    from snake_world_eqm.data import GenerationConfig

    configs = {name: GenerationConfig(num_samples=10, height=size, width=size, expert=kind)
               for name, size in (("4x4", 4), ("6x6", 6))}
    card = build_multisize_card(configs, {name: DatasetStats() for name in configs}, "cmd", "0" * 64)
    assert f"played by the {EXPERT_DESCRIPTIONS[kind]} expert on" in card.text
    assert f"`{kind}`" in card.text
    if kind != "heuristic":
        assert "heuristic" not in card.text
