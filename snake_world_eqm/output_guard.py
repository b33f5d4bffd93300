"""The one guard of every folder a command writes (dataset build, `train`, `lm-train`, DAgger), and atomic writes.

`guard_output_folder(path, kind, reuse_ok, flag, protected)` runs before any work and refuses, in one line:

* the current folder, a folder above it, the file-system root or the home folder (deleting them loses
  everything the user has there), and a folder that is, holds or lies inside a `protected` input (the
  `--policy` or `--model-name-or-path` model, the `--dataset` it reads);
* a folder that holds something of another kind (a dataset, a model that no run of ours wrote, a training
  run, a DAgger run) or files this tool never writes;
* an earlier output of the same kind, unless `reuse_ok` (the command's `--overwrite` / resume says so).

`OutputLock(path)` is an exclusive `flock` on a hidden `.NAME.lock` file beside the folder (the folder itself
may be replaced by a rename), removed on release: a second writer of the same folder fails at once; the kernel
drops the lock when its process dies, even by SIGKILL (the empty file left then is reused). A process that
holds it may take it again (sequential runs in one process).

`atomic_write_text` / `atomic_write_bytes` write beside the target, fsync, and rename over it, so a kill leaves
the previous file or the new one, never half of one. `sigterm_as_exit()` turns SIGTERM into SystemExit inside a
`with` block, so `finally`/`except BaseException` clean-ups (staging folders) run on `kill`.

Only the standard library: the dataset builder, training and DAgger all use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

KINDS = ("dataset", "training run", "DAgger run")
_LOCKS: dict[Path, int] = {}  # folder -> fd of the lock file this process holds


class OutputFolderError(ValueError):
    """A folder a command must not write: one line naming it and why."""


def _entries(folder: Path) -> list[str]:
    """Visible names in the folder (hidden leftovers such as .tmp-* staging and locks do not count)."""
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def folder_kind(folder: str | os.PathLike) -> str:
    """What an existing folder holds: "empty", one of KINDS, "model", or "foreign" (anything else)."""
    path = Path(folder)
    names = set(_entries(path))
    if not names:
        return "empty"
    if "run.json" in names or ("checkpoints" in names and (path / "checkpoints").is_dir()) or \
            {"metrics.json", "config.json"} <= names or "lm_bridge_metrics.json" in names:
        return "training run"
    if "dagger.json" in names or "round-0.json" in names or any(name.startswith("round-") for name in names):
        return "DAgger run"
    if ("README.md" in names and (path / "data").is_dir() and any((path / "data").rglob("*.parquet"))) or \
            "dataset_dict.json" in names or "dataset_info.json" in names:
        return "dataset"
    if "config.json" in names and names & {"model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"}:
        return "model"
    return "foreign"


def _describe(kind: str, folder: Path) -> str:
    if kind == "foreign":
        names = _entries(folder)
        return f"files this tool did not write ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})"
    return {"model": "a model", "dataset": "a dataset", "training run": "a training run",
            "DAgger run": "a DAgger run"}.get(kind, kind)


def guard_output_folder(path: str | os.PathLike, kind: str, reuse_ok: bool, flag: str,
                        protected: Iterable[str | os.PathLike | None] = (), reuse_hint: str = "--overwrite") -> Path:
    """Check, before any work, that `kind` output may go to `path`; return it resolved. Nothing is written."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    target = Path(path).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if target == cwd or target in cwd.parents:
        raise OutputFolderError(f"{flag} {path} is the current folder or one above it; choose a new folder for the "
                                f"{kind} (it may be replaced as a whole)")
    if target == Path(target.anchor) or target == Path.home().resolve():
        raise OutputFolderError(f"{flag} {path} is the root or home folder; choose a new folder for the {kind}")
    for source in protected:
        if source is None or not Path(source).expanduser().exists():
            continue  # a Hub repo id, or nothing: no local folder to protect
        source_path = Path(source).expanduser().resolve()
        if source_path == target or target in source_path.parents or source_path in target.parents:
            raise OutputFolderError(f"{flag} {path} is, holds or lies inside the input {source}; writing there "
                                    "would replace what the command reads; choose another folder")
    if not target.exists():
        return target
    if not target.is_dir():
        raise OutputFolderError(f"{flag} {path} exists and is not a folder")
    found = folder_kind(target)
    if found == "empty":
        return target
    if found != kind:
        raise OutputFolderError(f"{flag} {path} holds {_describe(found, target)}; refusing to write a {kind} there "
                                f"(even with {reuse_hint}); choose an empty or new folder")
    if not reuse_ok:
        raise OutputFolderError(f"{flag} {path} already holds a {kind}; pass {reuse_hint} to replace it")
    return target


def lock_path(folder: str | os.PathLike) -> Path:
    target = Path(folder).expanduser().resolve()
    return target.with_name(f".{target.name}.lock")


class OutputLock:
    """Exclusive lock of a folder against concurrent writers (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike, flag: str = "output") -> None:
        self.folder = Path(folder).expanduser().resolve()
        self.flag = flag
        self.acquired_here = False

    def acquire(self) -> OutputLock:
        import fcntl

        if self.folder in _LOCKS:  # this process already holds it
            return self
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        path = lock_path(self.folder)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                raise OutputFolderError(f"{self.flag} {self.folder} is being written by another process (lock "
                                        f"{path}); wait for it or choose another folder") from None
            try:  # the holder before us may have removed the file between our open and our flock: retry
                if os.fstat(fd).st_ino == os.stat(path).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _LOCKS[self.folder] = fd
        self.acquired_here = True
        return self

    def release(self) -> None:
        """Remove the lock file, then drop the lock (a SIGKILL'd holder leaves the file; it is reused)."""
        if self.acquired_here and self.folder in _LOCKS:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path(self.folder))
            os.close(_LOCKS.pop(self.folder))  # closing drops the flock
            self.acquired_here = False

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def remove_stale_lock(folder: str | os.PathLike) -> bool:
    """Remove the lock file a SIGKILL'd writer left beside `folder` (only when no process holds it)."""
    import fcntl

    path = lock_path(folder)
    if Path(folder).expanduser().resolve() in _LOCKS:
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False  # held by a live writer
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    os.close(fd)
    return True


def fsync_dir(folder: str | os.PathLike) -> None:
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for fsync
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write beside `path`, fsync, rename over it: a kill leaves the old file or the new one."""
    target = Path(path)
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(target.parent)
    return target


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def move_files_into(staging: str | os.PathLike, folder: str | os.PathLike, last: Iterable[str] = ()) -> None:
    """Rename every file of a flushed `staging` folder over its namesake in `folder` (names in `last` after the
    rest), then remove the empty staging folder. Each file is replaced whole."""
    staging, folder = Path(staging), Path(folder)
    last = tuple(last)
    names = sorted(p.name for p in staging.iterdir())
    for name in [n for n in names if n not in last] + [n for n in last if n in names]:
        destination = folder / name
        if destination.is_dir() and not destination.is_symlink():  # a sub-folder: swap it whole
            old = folder / f".old-{name}-{os.getpid()}"
            os.replace(destination, old)
            os.replace(staging / name, destination)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging / name, destination)
    fsync_dir(folder)
    staging.rmdir()


@contextlib.contextmanager
def sigterm_as_exit() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) inside the block (main thread only), so clean-ups run on `kill`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
