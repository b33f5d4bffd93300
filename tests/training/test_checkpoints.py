"""training/checkpoints.py on its own (issue #33): which folders count as a checkpoint and which one `latest`
resumes, what a save leaves on disk (complete folders only, the loop state in them, the newest N kept), which
corrupt files a resume refuses and with which words. A stand-in accelerator writes the files Accelerate's
`save_state` writes, so each test takes milliseconds; the in-process runs of test_bad_input_training.py and
test_training_run.py check the same against the real engine."""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from snake_world_eqm.training.checkpoints import (
    STATE_FILE,
    check_checkpoint_files,
    checkpoints_dir,
    complete_checkpoints,
    fsync_tree,
    latest_checkpoint,
    prune,
    read_state,
    remove_partial,
    replace_dir,
    safe_reason,
    save_checkpoint,
)


def _rng_states() -> dict:
    """What Accelerate's save_state pickles into random_states_N.pkl."""
    return {"step": 0, "random_state": random.getstate(), "numpy_random_seed": np.random.get_state(),
            "torch_manual_seed": torch.get_rng_state()}


class FakeAccelerator:
    """Writes what Accelerate's save_state writes (weights, optimizer, RNG file) and records the barriers."""

    def __init__(self, is_main_process: bool = True, weights: float = 1.0):
        self.is_main_process = is_main_process
        self.weights = weights
        self.calls: list[str] = []

    def wait_for_everyone(self) -> None:
        self.calls.append("wait")

    def save_state(self, folder: str) -> None:
        self.calls.append(f"save_state {Path(folder).name}")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_file({"w": torch.full((3,), self.weights)}, str(folder / "model.safetensors"))
        torch.save({"state": {}, "param_groups": []}, folder / "optimizer.bin")
        torch.save(_rng_states(), folder / "random_states_0.pkl")


def _checkpoint(root: Path, step: int, state: dict | None = None, run_id: str = "run") -> Path:
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    payload = {"run_id": run_id, "loop": {"global_step": step}} if state is None else state
    (folder / STATE_FILE).write_text(json.dumps(payload))
    return folder


def _names(root: Path) -> list[str]:
    return sorted(path.name for path in root.iterdir())


# ------------------------------------------------------------------------------------------------------
# Which folders are checkpoints, and which one `latest` is


def test_checkpoints_live_in_the_output_dirs_checkpoints_folder(tmp_path):
    assert checkpoints_dir(tmp_path / "out") == tmp_path / "out" / "checkpoints"
    assert checkpoints_dir(str(tmp_path)) == tmp_path / "checkpoints"


def test_only_complete_checkpoint_folders_count_in_step_order(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (10, 9, 100, 2):
        _checkpoint(root, step)
    (root / "checkpoint-50").mkdir()  # a crash before the state file: incomplete
    (root / "checkpoint-60").mkdir()
    (root / "checkpoint-60" / STATE_FILE).mkdir()  # a folder where the state file should be
    (root / "checkpoint-70").write_text("a file, not a folder")
    for name in (".tmp-checkpoint-80", "checkpoint-90a", "xcheckpoint-91", "checkpoint-", "checkpoint-9.5",
                 "Checkpoint-92", "checkpoint--93"):
        _checkpoint(root, 0, run_id="x").rename(root / name)
    found = complete_checkpoints(root)
    assert found == [(2, root / "checkpoint-2"), (9, root / "checkpoint-9"), (10, root / "checkpoint-10"),
                     (100, root / "checkpoint-100")]
    assert all(isinstance(step, int) for step, _ in found)
    assert complete_checkpoints(str(root)) == found
    assert latest_checkpoint(root) == root / "checkpoint-100"  # by number, not by name (checkpoint-9 > -100)
    assert latest_checkpoint(str(root), run_id="run") == root / "checkpoint-100"


def test_no_folder_or_an_empty_one_has_no_latest(tmp_path):
    assert complete_checkpoints(tmp_path / "missing") == []
    assert latest_checkpoint(tmp_path / "missing") is None
    assert latest_checkpoint(tmp_path / "missing", run_id="run") is None
    (tmp_path / "file").write_text("x")
    assert complete_checkpoints(tmp_path / "file") == []
    (tmp_path / "empty").mkdir()
    assert latest_checkpoint(tmp_path / "empty") is None


def test_latest_of_a_run_skips_newer_checkpoints_of_another_run(tmp_path):
    root = tmp_path / "checkpoints"
    _checkpoint(root, 3, run_id="mine")
    _checkpoint(root, 5, run_id="mine")
    _checkpoint(root, 7, run_id="theirs")
    _checkpoint(root, 8, state={"loop": {}})  # no run id: not mine
    assert latest_checkpoint(root) == root / "checkpoint-8"
    assert latest_checkpoint(root, run_id="mine") == root / "checkpoint-5"
    assert latest_checkpoint(root, run_id="theirs") == root / "checkpoint-7"


def test_latest_of_a_run_refuses_an_unreadable_state_instead_of_skipping_it(tmp_path):
    root = tmp_path / "checkpoints"
    _checkpoint(root, 3, run_id="mine")
    (_checkpoint(root, 5, run_id="mine") / STATE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="checkpoint-5"):
        latest_checkpoint(root, run_id="mine")


# ------------------------------------------------------------------------------------------------------
# The loop state


def test_read_state_returns_the_saved_state(tmp_path):
    state = {"run_id": "r", "model_kind": "eqm", "loop": {"global_step": 4, "epoch": 1}}
    folder = _checkpoint(tmp_path, 4, state=state)
    assert read_state(folder) == state
    assert read_state(str(folder)) == state


@pytest.mark.parametrize("content", [b"", b"{not json", b"\xff\xfe\x00garbage", b"[1, 2]", b'"loop"', b"{}",
                                     b'{"loop": 3}', b'{"loop": [1]}', b'{"loop": null}'])
def test_an_unreadable_or_loopless_state_is_a_value_error_naming_the_file(tmp_path, content):
    folder = tmp_path / "checkpoint-1"
    folder.mkdir()
    (folder / STATE_FILE).write_bytes(content)
    with pytest.raises(ValueError) as error:
        read_state(folder)
    assert str(folder / STATE_FILE) in str(error.value) and "corrupt" in str(error.value)


def test_a_missing_state_file_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="training_state.json"):
        read_state(tmp_path)
    assert STATE_FILE == "training_state.json"  # the name older checkpoints were written with


# ------------------------------------------------------------------------------------------------------
# Saving


def test_a_save_leaves_one_complete_checkpoint_holding_the_state(tmp_path):
    root = tmp_path / "out" / "checkpoints"  # not there yet
    accelerator = FakeAccelerator()
    state = {"run_id": "r", "loop": {"global_step": 6}, "args": {"output_dir": tmp_path}}  # a Path: saved as text
    final = save_checkpoint(accelerator, root, 6, state, total_limit=None)
    assert final == root / "checkpoint-6"
    assert _names(root) == ["checkpoint-6"]  # no temporary folder left
    assert _names(final) == ["model.safetensors", "optimizer.bin", "random_states_0.pkl", STATE_FILE]
    assert read_state(final) == {"run_id": "r", "loop": {"global_step": 6}, "args": {"output_dir": str(tmp_path)}}
    assert json.loads((final / STATE_FILE).read_text()) == read_state(final)
    assert (final / STATE_FILE).read_text().startswith('{\n  "run_id"')  # readable: indented
    check_checkpoint_files(final)
    assert complete_checkpoints(root) == [(6, final)]
    # Every process passes every barrier, and writes its own files into the hidden folder first.
    assert accelerator.calls == ["wait", "save_state .tmp-checkpoint-6", "wait", "wait"]


def test_saving_a_step_again_replaces_it(tmp_path):
    root = tmp_path / "checkpoints"
    save_checkpoint(FakeAccelerator(weights=1.0), root, 4, {"loop": {"v": 1}}, total_limit=None)
    (root / "checkpoint-4" / "stale.txt").write_text("from the first save")
    final = save_checkpoint(FakeAccelerator(weights=2.0), root, 4, {"loop": {"v": 2}}, total_limit=None)
    assert _names(root) == ["checkpoint-4"]
    assert read_state(final) == {"loop": {"v": 2}}
    assert not (final / "stale.txt").exists()
    from safetensors.torch import load_file

    assert torch.equal(load_file(final / "model.safetensors")["w"], torch.full((3,), 2.0))


def test_a_crashed_earlier_save_of_the_same_step_is_cleared_first(tmp_path):
    root = tmp_path / "checkpoints"
    leftover = root / ".tmp-checkpoint-3"
    leftover.mkdir(parents=True)
    (leftover / "half-written.bin").write_bytes(b"\x00" * 10)
    final = save_checkpoint(FakeAccelerator(), root, 3, {"loop": {}}, total_limit=None)
    assert _names(root) == ["checkpoint-3"]
    assert not (final / "half-written.bin").exists()
    check_checkpoint_files(final)  # the truncated .bin of the crash did not reach the checkpoint


def test_only_the_main_process_writes_the_state_and_prunes(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (1, 2, 3):
        _checkpoint(root, step)
    other = FakeAccelerator(is_main_process=False)
    final = save_checkpoint(other, root, 4, {"loop": {}}, total_limit=1)
    assert final == root / "checkpoint-4"
    # The other process wrote its RNG file into the hidden folder; the main process renames it into place.
    assert _names(root) == [".tmp-checkpoint-4", "checkpoint-1", "checkpoint-2", "checkpoint-3"]
    assert not (root / ".tmp-checkpoint-4" / STATE_FILE).exists()
    assert other.calls == ["wait", "save_state .tmp-checkpoint-4", "wait", "wait"]


def test_a_save_keeps_the_newest_total_limit_checkpoints(tmp_path):
    root = tmp_path / "checkpoints"
    for step in range(1, 6):
        save_checkpoint(FakeAccelerator(), root, step, {"loop": {"global_step": step}}, total_limit=2)
        assert [s for s, _ in complete_checkpoints(root)] == list(range(max(1, step - 1), step + 1))
    assert _names(root) == ["checkpoint-4", "checkpoint-5"]
    save_checkpoint(FakeAccelerator(), root, 6, {"loop": {}}, total_limit=None)  # no limit: nothing deleted
    assert _names(root) == ["checkpoint-4", "checkpoint-5", "checkpoint-6"]


def test_every_file_is_flushed_before_the_checkpoint_is_renamed_into_place(tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name a file descriptor")
    flushed: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    root = tmp_path / "checkpoints"
    save_checkpoint(FakeAccelerator(), root, 2, {"loop": {}}, total_limit=None)
    tmp = str(root / ".tmp-checkpoint-2")
    for name in ("model.safetensors", "optimizer.bin", "random_states_0.pkl", STATE_FILE):
        assert f"{tmp}/{name}" in flushed, name
    assert tmp in flushed  # the folder's entries
    assert flushed[-1] == str(root)  # the rename itself, last


def test_fsync_tree_flushes_nested_files_and_the_folder(tmp_path, monkeypatch):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name a file descriptor")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.txt").write_text("x")
    (tmp_path / "top.txt").write_text("y")
    flushed: list[str] = []
    monkeypatch.setattr(os, "fsync", lambda fd: flushed.append(os.readlink(f"/proc/self/fd/{fd}")))
    fsync_tree(tmp_path)
    assert sorted(flushed) == sorted([str(tmp_path / "a" / "b" / "deep.txt"), str(tmp_path / "top.txt"),
                                      str(tmp_path)])


def test_a_folder_that_cannot_be_opened_is_not_an_error(tmp_path, monkeypatch):
    (tmp_path / "f.txt").write_text("x")

    def no_directories(path, flags, *args, **kwargs):
        raise PermissionError("cannot open a directory here")

    monkeypatch.setattr(os, "open", no_directories)
    fsync_tree(tmp_path)  # files are opened with open(), the folder with os.open: skipped, the rename stays atomic


# ------------------------------------------------------------------------------------------------------
# Pruning, leftovers, renames


def test_prune_deletes_the_oldest_complete_checkpoints_only(tmp_path):
    root = tmp_path / "checkpoints"
    for step in (1, 2, 10, 20):
        _checkpoint(root, step)
    (root / "checkpoint-0").mkdir()  # incomplete: not counted, not deleted
    assert prune(root, 5) == []
    assert prune(root, 4) == []
    assert prune(root, 2) == [root / "checkpoint-1", root / "checkpoint-2"]
    assert _names(root) == ["checkpoint-0", "checkpoint-10", "checkpoint-20"]  # no hidden leftovers
    assert prune(str(root), 0) == [root / "checkpoint-10", root / "checkpoint-20"]
    assert _names(root) == ["checkpoint-0"]


def test_remove_partial_deletes_interrupted_writes_only(tmp_path):
    root = tmp_path / "checkpoints"
    _checkpoint(root, 1)
    for name in (".tmp-checkpoint-2", ".old-checkpoint-1", ".tmp-x", ".old-"):
        (root / name / "sub").mkdir(parents=True)
    (root / "keep.tmp-").mkdir()
    (root / "checkpoint-3").mkdir()
    remove_partial(root)
    assert _names(root) == ["checkpoint-1", "checkpoint-3", "keep.tmp-"]
    assert read_state(root / "checkpoint-1")["loop"] == {"global_step": 1}
    remove_partial(tmp_path / "missing")  # nothing to clear: no error
    remove_partial(str(root))


def test_replace_dir_moves_into_an_empty_place(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("new")
    replace_dir(tmp_path / "src", tmp_path / "dst")
    assert _names(tmp_path) == ["dst"]
    assert (tmp_path / "dst" / "a.txt").read_text() == "new"


def test_replace_dir_replaces_an_existing_folder_without_leftovers(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("new")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "a.txt").write_text("old")
    (tmp_path / "dst" / "gone.txt").write_text("old")
    (tmp_path / ".old-dst" / "x").mkdir(parents=True)  # a crash during an earlier replace
    replace_dir(tmp_path / "src", tmp_path / "dst")
    assert _names(tmp_path) == ["dst"]
    assert _names(tmp_path / "dst") == ["a.txt"] and (tmp_path / "dst" / "a.txt").read_text() == "new"


@pytest.fixture
def busy_files(monkeypatch):
    """Files named `busy-*` cannot be deleted (a file held open on NFS, a virus scanner): os.unlink raises EBUSY."""
    import errno

    real_unlink = os.unlink

    def unlink(path, *args, **kwargs):
        if os.path.basename(path).startswith("busy-"):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "unlink", unlink)


def test_a_leftover_that_cannot_be_deleted_does_not_stop_a_run(tmp_path, busy_files):
    root = tmp_path / "checkpoints"
    _checkpoint(root, 1)
    (root / ".tmp-checkpoint-2").mkdir()
    (root / ".tmp-checkpoint-2" / "busy-optimizer.bin").write_bytes(b"x")
    (root / ".old-checkpoint-0").write_text("a file where a folder was expected")
    remove_partial(root)  # what it cannot clear stays hidden: `latest` never picks it
    assert complete_checkpoints(root) == [(1, root / "checkpoint-1")]


def test_pruning_a_checkpoint_that_cannot_be_fully_deleted_keeps_the_run_going(tmp_path, busy_files):
    root = tmp_path / "checkpoints"
    (_checkpoint(root, 1) / "busy-events.log").write_text("held open")
    save_checkpoint(FakeAccelerator(), root, 2, {"loop": {}}, total_limit=1)
    assert complete_checkpoints(root) == [(2, root / "checkpoint-2")]  # the pruned one no longer counts
    assert prune(root, 1) == []


def test_replacing_a_folder_whose_old_copy_cannot_be_fully_deleted_still_succeeds(tmp_path, busy_files):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.txt").write_text("new")
    (tmp_path / "dst").mkdir()
    (tmp_path / "dst" / "busy-a.txt").write_text("old, held open")
    replace_dir(tmp_path / "src", tmp_path / "dst")
    assert _names(tmp_path / "dst") == ["a.txt"] and (tmp_path / "dst" / "a.txt").read_text() == "new"
    # A later save of the same step (a rerun) also gets past the stuck leftover.
    final = save_checkpoint(FakeAccelerator(), tmp_path / "checkpoints", 5, {"loop": {"v": 1}}, total_limit=None)
    (final / "busy-x.txt").write_text("held open")
    final = save_checkpoint(FakeAccelerator(), tmp_path / "checkpoints", 5, {"loop": {"v": 2}}, total_limit=None)
    assert read_state(final) == {"loop": {"v": 2}}


# ------------------------------------------------------------------------------------------------------
# Corrupt files a resume refuses


def _saved(tmp_path: Path) -> Path:
    return save_checkpoint(FakeAccelerator(), tmp_path / "checkpoints", 2, {"loop": {}}, total_limit=None)


def test_a_complete_checkpoint_passes_the_file_check(tmp_path):
    final = _saved(tmp_path)
    (final / "nested").mkdir()
    (final / "nested" / "scheduler.bin").write_bytes((final / "optimizer.bin").read_bytes())
    torch.save({"anything": 1}, final / "custom_checkpoint_0.pkl")  # not an RNG file: keys not required
    (final / "notes.txt").write_bytes(b"\x00\x01")  # other files are not read
    (final / "folder.bin").mkdir()  # a folder with a weights-like name is not a file
    check_checkpoint_files(final)
    check_checkpoint_files(str(final))


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.bin", "random_states_0.pkl",
                                  "nested/model.safetensors"])
def test_a_truncated_file_is_named(tmp_path, name):
    final = _saved(tmp_path)
    bad = final / name
    if not bad.exists():
        bad.parent.mkdir()
        bad.write_bytes((final / "model.safetensors").read_bytes())
    bad.write_bytes(bad.read_bytes()[:40])
    with pytest.raises(ValueError) as error:
        check_checkpoint_files(final)
    assert str(error.value).startswith(f"checkpoint file {bad} is corrupt: ")


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pth", ".pkl"])
def test_a_torch_file_that_is_not_an_archive_is_named(tmp_path, suffix):
    final = _saved(tmp_path)
    bad = final / f"extra{suffix}"
    bad.write_bytes(b"not a zip archive at all")
    with pytest.raises(ValueError) as error:
        check_checkpoint_files(final)
    assert str(error.value) == f"checkpoint file {bad} is corrupt: not a complete torch archive (truncated?)"


def test_other_suffixes_are_not_read_as_archives(tmp_path):
    final = _saved(tmp_path)
    for name in ("extra.json", "extra.txt", "bin", "extra.bin.txt"):
        (final / name).write_bytes(b"not a zip archive")
    check_checkpoint_files(final)


@pytest.mark.parametrize("content, missing", [
    ({"random_state": 1}, "numpy_random_seed, torch_manual_seed"),
    ({"numpy_random_seed": 1, "torch_manual_seed": 2}, "random_state"),
    ({"random_state": 1, "numpy_random_seed": 1}, "torch_manual_seed"),
    ([1, 2, 3], "random_state, numpy_random_seed, torch_manual_seed"),
])
def test_an_rng_file_without_the_generators_is_refused_naming_what_it_lacks(tmp_path, content, missing):
    final = _saved(tmp_path)
    rng = final / "random_states_1.pkl"
    torch.save(content, rng)
    with pytest.raises(ValueError) as error:
        check_checkpoint_files(final)
    assert str(error.value) == f"checkpoint file {rng} is corrupt: the random state lacks {missing}"


class Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_an_rng_file_holding_objects_is_refused_without_advising_an_unsafe_load(tmp_path, capsys):
    final = _saved(tmp_path)
    rng = final / "random_states_0.pkl"
    torch.save({"random_state": Payload(), "numpy_random_seed": 1, "torch_manual_seed": 2}, rng)
    with pytest.raises(ValueError) as error:
        check_checkpoint_files(final)
    assert str(error.value) == (
        f"checkpoint file {rng} is corrupt: cannot restore the random state (it holds objects a safe load refuses; "
        "never load it with weights_only=False); a resume would not repeat the uninterrupted run")
    assert "payload ran" not in capsys.readouterr().out


def test_an_rng_archive_that_does_not_load_is_refused(tmp_path):
    final = _saved(tmp_path)
    rng = final / "random_states_0.pkl"
    buffer = io.BytesIO()
    torch.save({"x": 1}, buffer)
    data = bytearray(buffer.getvalue())
    start = data.index(b"data.pkl") + len(b"data.pkl")
    data[start:start + 60] = b"\x00" * 60  # still a zip archive by its directory, but its pickle is gone
    rng.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"is corrupt: cannot restore the random state \(\w+"):
        check_checkpoint_files(final)


# ------------------------------------------------------------------------------------------------------
# The one-line reason of a load error


def test_safe_reason_is_the_errors_type_and_first_line():
    assert safe_reason(ValueError("  bad header\nsecond line\n")) == "ValueError: bad header"
    assert safe_reason(EOFError()) == "EOFError: EOFError"
    assert safe_reason(RuntimeError("\n")) == "RuntimeError: RuntimeError"


@pytest.mark.parametrize("message", [
    "Weights only load failed. Re-running `torch.load` with `weights_only` set to `False` will likely succeed",
    "line one\nUnsupported global: GLOBAL builtins.print was not an allowed global",
])
def test_safe_reason_never_advises_weights_only_false(message):
    assert safe_reason(RuntimeError(message)) == (
        "it holds objects a safe load refuses; never load it with weights_only=False")

