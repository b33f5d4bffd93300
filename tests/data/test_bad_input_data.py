"""Datasets (issue 15, items 3, 4, 8, 9, 11): validation reads what is on disk and checks legality, the builder
cleans what killed builds left, its workers die with it, and its process count is bounded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataset_builder.__main__ import main as builder_main
from dataset_builder.builder import build_dataset, clean_stale_staging, files_fingerprint
from dataset_builder.validate import validate_dataset
from snake_world_eqm.data import GenerationConfig, features
from snake_world_eqm.data.generate import rows_to_table
from snake_world_eqm.game import BODY_UP, EMPTY, SnakeState, batched_successors, encode_observation
from tests.training_helpers import REPO_ROOT, subprocess_env


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))


def _tiny(folder: Path, num_proc: int = 1, **overrides) -> Path:
    settings = dict(num_samples=240, height=5, width=5, seed=2, split_fractions=(0.8, 0.1, 0.1)) | overrides
    build_dataset(GenerationConfig(**settings), folder, progress=False, num_proc=num_proc)
    return folder


def _train_file(folder: Path) -> Path:
    return next((folder / "data").glob("train-*.parquet"))


# ------------------------------------------------------------------------------------------------------
# Item 3: what is validated is what is on disk


def test_validate_sees_an_edit_made_after_a_first_load(tmp_path):
    folder = _tiny(tmp_path / "ds")
    assert validate_dataset(folder, progress=False).violations == 0  # the first load fills the cache
    table = pq.read_table(_train_file(folder))
    rewards = table.column("reward").to_numpy().copy()
    rewards[0] += 5.0  # a reward the engine never pays
    index = table.schema.get_field_index("reward")
    pq.write_table(table.set_column(index, table.schema.field(index), pa.array(rewards, pa.float32())),
                   _train_file(folder))
    report = validate_dataset(folder, progress=False)
    assert report.violations == 1 and report.by_check["reward"] == 1


def test_validate_refuses_a_truncated_split_instead_of_reading_the_old_copy(tmp_path):
    folder = _tiny(tmp_path / "ds")
    assert validate_dataset(folder, progress=False).rows == 240
    table = pq.read_table(_train_file(folder))
    pq.write_table(table.slice(0, 5), _train_file(folder))
    with pytest.raises(ValueError, match="do not match the row counts"):
        validate_dataset(folder, progress=False)


# ------------------------------------------------------------------------------------------------------
# Item 4: legality


def _self_consistent_rows(board: np.ndarray) -> dict[str, np.ndarray]:
    """One row whose every column is what the engine computes from `board`, legal or not."""
    boards = board[None].astype(np.int8)
    successors, rewards, events, terminated = batched_successors(boards, np.random.default_rng(0))
    action = np.array([1])
    return {
        "state": boards, "action": action, "taken_action": action, "next_state": successors[:, 1],
        "next_state_per_action": successors, "reward_per_action": rewards, "terminated_per_action": terminated,
        "event_per_action": events, "reward": rewards[:, 1], "terminated": terminated[:, 1], "event": events[:, 1],
        "step": np.array([0]), "snake_length": (boards >= 2).sum(axis=(1, 2)).astype(np.int32),
        "episode_id": np.array([0]), "symmetry": np.array([0], dtype=np.int8), "source": np.array([0]),
    }


def _write_one_row_dataset(folder: Path, board: np.ndarray) -> Path:
    (folder / "data").mkdir(parents=True)
    table = rows_to_table(_self_consistent_rows(board), features(*board.shape))
    pq.write_table(table, folder / "data" / "train-00000-of-00001.parquet")
    return folder


def test_validate_flags_a_disconnected_body_even_when_the_row_agrees_with_the_engine(tmp_path):
    legal = encode_observation(SnakeState(5, 5, ((2, 2), (2, 3), (2, 4)), (0, 0)))
    illegal = legal.copy()
    row, col = np.argwhere(illegal == EMPTY)[-1]
    illegal[row, col] = BODY_UP  # a body cell no chain reaches
    assert validate_dataset(_write_one_row_dataset(tmp_path / "legal", legal), progress=False).violations == 0
    report = validate_dataset(_write_one_row_dataset(tmp_path / "illegal", illegal), progress=False)
    assert report.violations == 1 and report.by_check["illegal_state"] == 1


def _exit_2(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_:
        builder_main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_.value.code == 2 and err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_validate_cli_gives_one_line_for_a_missing_or_wrong_path(tmp_path, capsys):
    assert "nowhere" in _exit_2(["validate", str(tmp_path / "nowhere"), "--no-progress"], capsys)
    (tmp_path / "file.txt").write_text("x")
    assert "is a file" in _exit_2(["validate", str(tmp_path / "file.txt"), "--no-progress"], capsys)


def test_build_cli_gives_one_line_for_an_output_under_a_file(tmp_path, capsys):
    (tmp_path / "file.txt").write_text("x")
    err = _exit_2(["--num-samples", "20", "--output", str(tmp_path / "file.txt" / "ds"), "--no-progress"], capsys)
    assert "does not exist" in err


# ------------------------------------------------------------------------------------------------------
# Items 8 and 9: processes and leftovers


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stale_staging_of_a_dead_build_is_removed_and_a_live_one_kept(tmp_path):
    dead = tmp_path / f".ds.tmp-{_dead_pid()}-abc"
    live = tmp_path / f".ds.tmp-{os.getpid()}-xyz"
    unrelated = tmp_path / ".other.tmp-1-abc"
    for folder in (dead, live, unrelated):
        (folder / "data").mkdir(parents=True)
    _tiny(tmp_path / "ds")
    assert not dead.exists() and live.exists() and unrelated.exists()


def test_backup_of_a_build_killed_between_its_renames_is_put_back(tmp_path):
    backup = tmp_path / f".ds.old-{_dead_pid()}"
    (backup / "data").mkdir(parents=True)
    (backup / "README.md").write_text("the old dataset")
    clean_stale_staging(tmp_path / "ds")
    assert (tmp_path / "ds" / "README.md").read_text() == "the old dataset" and not backup.exists()


def test_num_proc_is_capped_by_the_cpus_and_does_not_change_the_data(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("snake_world_eqm.processes.available_cpus", lambda: 2)
    one = _tiny(tmp_path / "one", rows_per_chunk=80)
    many = _tiny(tmp_path / "many", rows_per_chunk=80, num_proc=99_999)
    assert "99999 processes requested, 2 CPU(s) available" in capsys.readouterr().err
    assert files_fingerprint(one) == files_fingerprint(many)


def _cpu_seconds(pid: int) -> float:
    """CPU time a process has used (utime + stime); a pool worker that has it is generating, not idle."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _staged_files(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in root.glob(".big.tmp-*/data/*")}


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has stopped; only reaping is left


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")
def test_kill_9_of_the_builder_takes_its_workers_down_and_the_next_run_cleans_up(tmp_path):
    output = tmp_path / "big"
    command = [sys.executable, "-m", "dataset_builder", "--num-samples", "400000", "--height", "6", "--width", "6",
               "--rows-per-chunk", "4000", "--num-proc", "2", "--output", str(output), "--no-progress"]
    parent = subprocess.Popen(command, cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120  # a hang guard, not a speed claim
        while len(workers := _children(parent.pid)) < 2 and time.monotonic() < deadline:
            assert parent.poll() is None, "the build ended before its workers started"
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers never started"
        # Kill while the workers are busy with a chunk (an idle pool worker exits on its own when the parent dies).
        while min(_cpu_seconds(pid) for pid in workers) < 1.0 and time.monotonic() < deadline:
            time.sleep(0.2)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        at_death = _staged_files(tmp_path)
        deadline = time.monotonic() + 60
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_running(pid) for pid in workers), "workers outlived their parent"
        # Without the death signal each worker finished its chunk and wrote its parquet file after the kill.
        assert _staged_files(tmp_path) == at_death, "workers kept writing after their parent died"
    finally:
        if parent.poll() is None:
            parent.kill()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".big.tmp-")]  # what the kill left
    clean_stale_staging(output)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".big.")] == []
