"""Crash-safe checkpoints: OUTPUT_DIR/checkpoints/checkpoint-STEP.

A checkpoint is written into a hidden temporary folder, flushed to disk, and renamed into place
in one `os.replace`; the loop's own state (`training_state.json`) is written last. So a folder
named checkpoint-STEP is always complete, a crash leaves at most a `.tmp-*` folder that nothing
loads, and `latest` only ever picks a complete checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

STATE_FILE = "training_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


def checkpoints_dir(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def complete_checkpoints(root: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints under root, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(root: str | Path, run_id: str | None = None) -> Path | None:
    """The newest complete checkpoint; with `run_id`, the newest of that run (others are another run's)."""
    found = complete_checkpoints(root)
    if run_id is not None:
        found = [(step, path) for step, path in found if _run_id_of(path) == run_id]
    return found[-1][1] if found else None


def _run_id_of(checkpoint: Path) -> str | None:
    return read_state(checkpoint).get("run_id")  # an unreadable state is an error, not "another run"


def read_state(checkpoint: str | Path) -> dict[str, Any]:
    """The loop state of a checkpoint; ValueError naming the file when it is unreadable."""
    path = Path(checkpoint) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"checkpoint file {path} is corrupt or unreadable: {error}") from None
    if not isinstance(state, dict) or not isinstance(state.get("loop"), dict):
        raise ValueError(f"checkpoint file {path} is corrupt: no 'loop' state in it")
    return state


def check_checkpoint_files(checkpoint: str | Path) -> None:
    """Open every weights/optimizer file of a checkpoint far enough to find truncation; ValueError names the file.

    safetensors headers are parsed; torch's files (optimizer.bin, scheduler.bin, *.pkl) are zip archives
    whose central directory sits at the end, so a truncated one fails `zipfile`'s check."""
    import zipfile

    from safetensors import safe_open

    for path in sorted(Path(checkpoint).rglob("*")):
        if not path.is_file():
            continue
        try:
            if path.suffix == ".safetensors":
                with safe_open(str(path), framework="pt") as handle:
                    handle.keys()
            elif path.suffix in (".bin", ".pt", ".pth", ".pkl") and not zipfile.is_zipfile(path):
                raise ValueError("not a complete torch archive (truncated?)")
            elif path.name.startswith("random_states_") and path.suffix == ".pkl":
                _check_random_states(path)
        except Exception as error:  # noqa: BLE001  (SafetensorError, OSError, ValueError: all "this file is bad")
            raise ValueError(f"checkpoint file {path} is corrupt: {error}") from None


RNG_KEYS = ("random_state", "numpy_random_seed", "torch_manual_seed")


def _check_random_states(path: Path) -> None:
    """Accelerate skips an unreadable RNG file with only an info log, losing the same-weights guarantee of a
    resume: load it here as Accelerate would (weights_only, its safe globals) and refuse it if that fails."""
    from accelerate.utils import load

    try:
        states = load(str(path), map_location="cpu")
    except Exception as error:  # noqa: BLE001  (UnpicklingError, EOFError, RuntimeError: all "unusable")
        raise ValueError(f"cannot restore the random state ({safe_reason(error)}); a resume would not repeat the "
                         "uninterrupted run") from None
    if not isinstance(states, dict) or any(key not in states for key in RNG_KEYS):
        raise ValueError("the random state lacks " + ", ".join(k for k in RNG_KEYS if not isinstance(states, dict)
                                                                or k not in states))


def safe_reason(error: BaseException) -> str:
    """The first line of a load error, without torch's advice to retry with weights_only=False (which would run
    whatever the file holds)."""
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    if "weights_only" in str(error) or "Unsupported global" in str(error):
        return "it holds objects a safe load refuses; never load it with weights_only=False"
    return f"{type(error).__name__}: {first}"


def remove_partial(root: str | Path) -> None:
    """Delete leftovers of interrupted writes (main process only)."""
    root = Path(root)
    if root.is_dir():
        for path in root.iterdir():
            if path.name.startswith((".tmp-", ".old-")):
                shutil.rmtree(path, ignore_errors=True)


def save_checkpoint(accelerator: Any, root: str | Path, step: int, state: dict[str, Any], total_limit: int | None) -> Path:
    """Every process must call this (Accelerate writes one RNG file per process)."""
    root = Path(root)
    tmp = root / f".tmp-checkpoint-{step}"
    final = root / f"checkpoint-{step}"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        root.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        _write_json_durably(tmp / STATE_FILE, state)
        fsync_tree(tmp)
        replace_dir(tmp, final)
        _fsync_dir(root)
        if total_limit is not None:
            prune(root, total_limit)
    accelerator.wait_for_everyone()
    return final


def prune(root: str | Path, total_limit: int) -> list[Path]:
    """Keep the newest `total_limit` complete checkpoints; return what was deleted."""
    found = complete_checkpoints(root)
    doomed = [path for _, path in found[: max(0, len(found) - total_limit)]]
    for path in doomed:
        # Rename first so a crash during rmtree leaves a hidden folder, not a half-deleted checkpoint.
        hidden = path.with_name(f".old-{path.name}")
        os.replace(path, hidden)
        shutil.rmtree(hidden, ignore_errors=True)
    return doomed


def replace_dir(src: Path, dst: Path) -> None:
    """Put `src` at `dst` by renames, so a reader never sees a half-written `dst`."""
    if dst.exists():  # the same step written again (e.g. a rerun): move the old one aside first
        old = dst.with_name(f".old-{dst.name}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(dst, old)
        os.replace(src, dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(src, dst)


def _write_json_durably(path: Path, payload: dict[str, Any]) -> None:
    with open(path, "w") as handle:
        json.dump(payload, handle, indent=2, default=str)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_tree(folder: Path) -> None:
    """Flush every file under `folder`, and the folder itself, to disk (before renaming it into place)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
