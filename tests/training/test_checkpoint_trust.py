"""Issue 28 items 15, 19: a corrupt RNG file is refused on resume (it was skipped without a word), a malicious
optimizer.bin is one line that never advises weights_only=False, and every training flag is range-checked at
parse time."""

from __future__ import annotations

import io
import zipfile

import pytest
import torch

from snake_world_eqm.training import build_parser, main
from tests.training_helpers import QUIET, TINY_EQM, build_tiny_dataset


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    dataset = build_tiny_dataset(root / "ds", num_samples=200)
    return dataset, root


def _argv(dataset, out, *extra):
    return ["--dataset", str(dataset), "--output-dir", str(out), "--batch-size", "16", "--max-eval-samples", "8",
            *TINY_EQM, *QUIET, *extra]


def _fresh_run(trained, name):
    dataset, root = trained
    out = root / name
    assert main(_argv(dataset, out, "--max-steps", "2", "--save-every", "2")) == 0
    return dataset, out, out / "checkpoints" / "checkpoint-2"


class Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_corrupt_random_states_are_refused(trained, capsys):
    dataset, out, checkpoint = _fresh_run(trained, "rng")
    rng = checkpoint / "random_states_0.pkl"
    buffer = io.BytesIO()
    torch.save({"not": "rng"}, buffer)  # a valid archive of the wrong content: Accelerate skipped it silently
    rng.write_bytes(buffer.getvalue())
    assert main(_argv(dataset, out, "--max-steps", "4", "--resume-from-checkpoint", "latest")) == 2
    err = capsys.readouterr().err
    assert str(rng) in err and "random state" in err and "Traceback" not in err


def test_malicious_optimizer_file_is_one_safe_line(trained, capsys):
    dataset, out, checkpoint = _fresh_run(trained, "evil")
    buffer = io.BytesIO()
    torch.save({"state": Payload()}, buffer)
    assert zipfile.is_zipfile(io.BytesIO(buffer.getvalue()))
    (checkpoint / "optimizer.bin").write_bytes(buffer.getvalue())
    assert main(_argv(dataset, out, "--max-steps", "4", "--resume-from-checkpoint", "latest")) == 2
    captured = capsys.readouterr()
    assert "payload ran" not in captured.out + captured.err
    assert "Traceback" not in captured.err and "weights_only=False" not in captured.err.replace(
        "never load it with weights_only=False", "")
    assert "optimizer.bin" in captured.err or "cannot be loaded" in captured.err


@pytest.mark.parametrize("flag, value", [("--seed", "-1"), ("--seed", str(2**70)), ("--learning-rate", "nan"),
                                         ("--time-limit-minutes", "-1"), ("--gradient-accumulation-steps", "0"),
                                         ("--schedule-a", "nan"), ("--batch-size", "0")])
def test_training_flags_are_checked_at_parse_time(flag, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--dataset", "x", flag, value])
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err


def test_a_full_disk_is_one_line(trained, monkeypatch, capsys):
    """Issue 28 item 19: a full disk during training was a raw traceback."""
    import errno

    import snake_world_eqm.training.checkpoints as checkpoints

    def no_space(folder):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder))

    monkeypatch.setattr(checkpoints, "fsync_tree", no_space)
    dataset, root = trained
    assert main(_argv(dataset, root / "full", "--max-steps", "2", "--save-every", "1")) == 1
    err = capsys.readouterr().err
    assert "No space left on device" in err and "Traceback" not in err
