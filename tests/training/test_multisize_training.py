"""Training on several board sizes: one size per batch, size weights, fixed-size refusals, fine-tuning, 2 processes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snake_world_eqm import SnakeWorldEqM
from snake_world_eqm.training import main as train_main
from snake_world_eqm.training.data import (
    MultiSizeSplit,
    SizeBucketBatchSampler,
    load_splits,
    make_multisize_train_loader,
)
from tests.training_helpers import QUIET, REPO_ROOT, TINY_EQM, build_tiny_dataset, subprocess_env


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


@pytest.fixture(scope="module")
def multi(tmp_path_factory) -> Path:
    from dataset_builder.multisize import build_multisize_dataset, rows_per_size, size_configs
    from snake_world_eqm.data import GenerationConfig

    base = GenerationConfig(seed=4, max_episode_steps=60, parallel_games=6, split_fractions=(0.7, 0.2, 0.1))
    configs = size_configs(base, rows_per_size([(4, 4), (6, 6), (5, 7)], 600))
    folder = tmp_path_factory.mktemp("multi") / "snake_multi"
    build_multisize_dataset(configs, folder, progress=False)
    return folder


def test_bucket_sampler_keeps_each_batch_in_one_size_and_covers_every_row_once():
    sampler = SizeBucketBatchSampler([40, 25, 64], batch_size=8, seed=3)
    offsets = sampler.offsets
    batches = list(sampler)
    assert len(batches) == len(sampler) == 5 + 3 + 8
    for batch in batches:
        bucket = np.searchsorted(offsets, batch[0], side="right") - 1
        assert all(offsets[bucket] <= i < offsets[bucket + 1] for i in batch) and len(batch) == 8
    rows = np.concatenate(batches)
    assert len(set(rows.tolist())) == len(rows)  # no row twice in an epoch
    sizes_in_order = [int(np.searchsorted(offsets, b[0], side="right") - 1) for b in batches]
    assert sizes_in_order != sorted(sizes_in_order)  # sizes are interleaved, not one after the other
    again = SizeBucketBatchSampler([40, 25, 64], batch_size=8, seed=3)
    assert list(again) == batches  # a function of (seed, epoch) only: resume replays the same batches
    again.set_epoch(1)
    assert list(again) != batches


def test_size_weights_set_each_size_share_of_the_batches():
    sampler = SizeBucketBatchSampler([80, 80, 80], batch_size=8, seed=0, weights=[1, 1, 2])
    assert sampler.batches_per_size == [8, 8, 15]  # 30 batches in all, shared 1:1:2 (rounded)
    counts = np.bincount([int(np.searchsorted(sampler.offsets, b[0], side="right") - 1) for b in sampler])
    assert counts.tolist() == [8, 8, 15]


def test_load_splits_gives_one_split_per_size_and_equal_validation_batches(multi):
    splits = load_splits(str(multi), "eqm", max_eval_samples=30)
    assert isinstance(splits.train, MultiSizeSplit)
    assert list(splits.board_sizes) == ["4x4", "5x7", "6x6"]
    assert set(splits.eval.rows_per_size().values()) == {10}
    loader, _ = make_multisize_train_loader(splits.train, ["state", "action", "next_state"], 16, seed=0, num_workers=0)
    shapes = {tuple(batch["state"].shape[1:]) for batch in loader}
    assert shapes == {(4, 4), (5, 7), (6, 6)}


def test_datasets_of_different_sizes_mix_into_a_multi_size_split(multi, tmp_path):
    single = build_tiny_dataset(tmp_path / "six", num_samples=200)  # 6x6, mixed by rows with the 6x6 config
    splits = load_splits([str(multi), str(single)], "eqm")
    sizes = splits.train.rows_per_size()
    alone = load_splits(str(multi), "eqm").train.rows_per_size()
    assert sizes["6x6"] == alone["6x6"] + len(load_splits(str(single), "eqm").train)
    assert sizes["4x4"] == alone["4x4"]


def test_training_on_several_sizes_saves_a_size_free_model(multi, tmp_path):
    out = tmp_path / "run"
    code = train_main(["--dataset", str(multi), "--output-dir", str(out), "--max-steps", "4", "--batch-size", "16",
                       "--eval-every", "2", "--max-eval-samples", "30", "--size-weights", "4x4=0.5", *TINY_EQM, *QUIET])
    assert code == 0
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["board_sizes"] == ["4x4", "5x7", "6x6"] and summary["global_step"] == 4
    assert summary["validation"]["num_rows"] == 30
    model = SnakeWorldEqM.from_pretrained(out)
    assert model.config.fixed_board_size is False
    assert tuple(model.sample(np.zeros((9, 11), dtype=np.int64)).next_board.shape) == (1, 9, 11)
    assert "5x7" in (out / "README.md").read_text()


def test_fine_tuning_a_fixed_size_checkpoint_on_several_sizes(multi, tmp_path, capsys):
    base = tmp_path / "base"
    assert train_main(["--dataset", str(build_tiny_dataset(tmp_path / "six", 200)), "--output-dir", str(base),
                       "--max-steps", "1", "--batch-size", "16", *TINY_EQM, *QUIET]) == 0
    out = tmp_path / "tuned"
    common = ["--dataset", str(multi), "--model-name-or-path", str(base), "--output-dir", str(out), "--max-steps", "2",
              "--batch-size", "16", "--max-eval-samples", "30", *QUIET]
    assert train_main(common) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "holds several board sizes (4x4, 5x7, 6x6) but the model is fixed to 6x6 boards" in error
    assert train_main([*common, "--config-set", "fixed_board_size=false"]) == 0
    assert SnakeWorldEqM.from_pretrained(out).config.fixed_board_size is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--config-set", "fixed_board_size=true"], "but the model is fixed to 5x7 boards (fixed_board_size=True)"),
        (["--size-weights", "9x9=2"], "--size-weights names size(s) 9x9 that the dataset lacks"),
    ],
)
def test_fixed_size_model_and_unknown_size_weights_are_one_line_errors(multi, tmp_path, capsys, extra, message):
    code = train_main(["--dataset", str(multi), "--output-dir", str(tmp_path / "x"), "--max-steps", "1", *TINY_EQM,
                       *QUIET, *extra])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_two_process_data_parallel_on_several_sizes(multi, tmp_path):
    import shutil

    cli = shutil.which("accelerate")
    launch = [cli, "launch"] if cli else [sys.executable, "-m", "accelerate.commands.launch"]
    out = tmp_path / "ddp"
    import socket

    with socket.socket() as probe:  # a free rendezvous port: another 2-process run on 29500 would block this one
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [*launch, "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu",
               "--main_process_port", port, "--num_processes", "2", str(REPO_ROOT / "hub_scripts" / "train.py"), "--dataset", str(multi),
               "--output-dir", str(out), "--max-steps", "4", "--batch-size", "8", "--eval-every", "2",
               "--max-eval-samples", "30", *TINY_EQM, *QUIET]
    proc = subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(CUDA_VISIBLE_DEVICES=""), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    summary = json.loads((out / "metrics.json").read_text())
    assert summary["num_processes"] == 2 and summary["global_step"] == 4
    assert summary["validation"]["num_rows"] == 30  # 3 sizes x 10 rows, duplicates of the padding dropped
    assert summary["board_sizes"] == ["4x4", "5x7", "6x6"]


def _tiny_cnn_model(tmp_path, multi, layers: int) -> Path:
    out = tmp_path / f"cnn{layers}"
    assert train_main(["--dataset", str(multi), "--output-dir", str(out), "--max-steps", "1", "--batch-size", "16",
                       "--max-eval-samples", "16", *TINY_EQM, "--use-cnn", "--cnn-mode", "replace",
                       "--cnn-channels", "8", "--cnn-layers", str(layers), *QUIET]) == 0
    return out


def test_growing_the_cnn_starts_from_exactly_what_the_checkpoint_computes(multi, tmp_path):
    """A 16x16 board needs a wider view than a 10x10 checkpoint's CNN: its new blocks start as the identity."""
    import torch

    from snake_world_eqm.training.model_setup import build_model

    base = _tiny_cnn_model(tmp_path, multi, 2)
    saved = SnakeWorldEqM.from_pretrained(base).eval()
    grown_config = saved.config.__class__.from_dict({**saved.config.to_dict(), "cnn_layers": 4})
    grown = build_model("eqm", grown_config, str(base)).eval()
    assert len(grown.encoder.cnn.blocks) == 4
    boards = torch.zeros((3, 9, 11), dtype=torch.long)
    boards[:, 4, 5], boards[:, 2, 2] = 2, 1  # a one-cell snake and an apple
    with torch.no_grad():
        assert torch.equal(saved.encode(boards), grown.encode(boards))
        for name, tensor in saved.state_dict().items():
            assert torch.equal(grown.state_dict()[name], tensor), name
        assert any(block.conv1.weight.abs().sum() > 0 for block in grown.encoder.cnn.blocks[2:])  # not dead weights

    out = tmp_path / "grown"  # through the command line, a grown run trains and saves the wider model
    assert train_main(["--dataset", str(multi), "--model-name-or-path", str(base), "--output-dir", str(out),
                       "--config-set", "cnn_layers=3", "--max-steps", "1", "--batch-size", "16",
                       "--max-eval-samples", "16", *QUIET]) == 0
    assert SnakeWorldEqM.from_pretrained(out).config.cnn_layers == 3


def test_a_cnn_cannot_shrink_when_fine_tuning(multi, tmp_path, capsys):
    base = _tiny_cnn_model(tmp_path, multi, 2)
    assert train_main(["--dataset", str(multi), "--model-name-or-path", str(base), "--output-dir", str(tmp_path / "x"),
                       "--config-set", "cnn_layers=1", "--max-steps", "1", *QUIET]) == 2
    assert "cnn_layers=1 would change the architecture" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_multi_size_dagger_collects_scores_and_resumes_per_size(multi, tmp_path, capsys):
    from dataset_builder.dagger import main as dagger_main

    base = _tiny_cnn_model(tmp_path, multi, 1)
    out = tmp_path / "dagger"
    argv = ["--model", str(base), "--dataset", str(multi), "--output-dir", str(out), "--rounds", "1",
            "--board-sizes", "6x6", "5x7", "--samples-per-round", "60", "--finetune-steps", "1", "--batch-size", "8",
            "--eval-games", "1", "--eval-max-steps", "10", "--train-args", "--max-eval-samples 8", "--no-progress"]
    assert dagger_main(argv) == 0
    rounds = json.loads((out / "dagger.json").read_text())["rounds"]
    assert [sorted(r["by_size"]) for r in rounds] == [["5x7", "6x6"]] * 2
    assert rounds[1]["rows_added"] == 120 and rounds[1]["games"] == 4  # 60 rows and 1 game per start kind, per size
    from snake_world_eqm.data import load_snake_dataset

    for name, shape in (("6x6", (6, 6)), ("5x7", (5, 7))):  # each size's rows are boards of that size
        rows = load_snake_dataset(out / "round-1" / f"data-{name}", split="train").with_format("numpy")
        assert rows[:]["state"].shape[1:] == shape
    table = capsys.readouterr().out
    assert "| 1 | 6x6 | 120 | 0.5 |" in table and "| 1 | 5x7 | 120 | 0.5 |" in table
    # A round interrupted after one size's collection resumes at the next size; the finished folder is kept.
    (out / "round-1" / "round.json").unlink()
    shutil.rmtree(out / "round-1" / "data-5x7")
    kept = (out / "round-1" / "data-6x6" / "README.md").stat().st_mtime_ns
    assert dagger_main(argv) == 0
    assert (out / "round-1" / "data-6x6" / "README.md").stat().st_mtime_ns == kept
    assert (out / "round-1" / "data-5x7" / "README.md").is_file()


def test_multi_size_dagger_refuses_a_fixed_size_model(tmp_path, capsys):
    from dataset_builder.dagger import main as dagger_main

    base = tmp_path / "six"
    data = build_tiny_dataset(tmp_path / "d", 200)
    assert train_main(["--dataset", str(data), "--output-dir", str(base), "--max-steps", "1", "--batch-size", "16",
                       *TINY_EQM, *QUIET]) == 0
    assert dagger_main(["--model", str(base), "--dataset", str(data), "--output-dir", str(tmp_path / "out"),
                        "--board-sizes", "6x6", "8x8", "--no-progress"]) == 2
    assert "the model plays only 6x6 boards (fixed_board_size=True)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
