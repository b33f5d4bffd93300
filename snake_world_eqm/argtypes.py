"""argparse `type=` checkers shared by every command line (`snake-eqm ...`, `python -m dataset_builder`)."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from snake_world_eqm.game.state import parse_board_size


def _number(text: str, kind: type, what: str, accept=lambda value: True):
    """`text` as a finite `kind` for which `accept(value)`; otherwise the ArgumentTypeError that argparse
    turns into a one-line error naming the flag and `what` it expected."""
    try:
        value = kind(text)
    except ValueError:
        value = None
    if value is None or (kind is float and not math.isfinite(value)) or not accept(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "a positive integer", lambda value: value > 0)


def non_negative_int(text: str) -> int:
    return _number(text, int, "a non-negative integer", lambda value: value >= 0)


def int_in_range(low: int, high: int, what: str = "an integer"):
    """An argparse type: an integer in [low, high] (argparse then exits 2 naming the flag)."""
    return lambda text: _number(text, int, f"{what} from {low} to {high}", lambda value: low <= value <= high)


def positive_float(text: str) -> float:
    return _number(text, float, "a positive number", lambda value: value > 0)


def non_negative_float(text: str) -> float:
    return _number(text, float, "a finite number >= 0", lambda value: value >= 0)


def probability(text: str) -> float:
    return _number(text, float, "a number in [0, 1]", lambda value: 0.0 <= value <= 1.0)


# torch.manual_seed takes < 2**64 and numpy's legacy seeding < 2**32: one range every command accepts.
MAX_SEED = 2**32 - 1


def seed(text: str) -> int:
    """A random seed: an integer from 0 to 2**32 - 1 (a negative or huge seed failed deep inside torch)."""
    return _number(text, int, f"a seed from 0 to {MAX_SEED}", lambda value: 0 <= value <= MAX_SEED)


def finite_float(text: str) -> float:
    return _number(text, float, "a finite number", lambda value: True)


def device(text: str) -> str:
    """A torch device this machine has: cpu, cuda, cuda:N or mps (torch loads only when the flag is given)."""
    import re

    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", text):
        raise argparse.ArgumentTypeError(f"expected a device such as cpu, cuda or cuda:0, got {text!r}")
    if text == "cpu":
        return text
    import torch

    if text.startswith("cuda"):
        index = int(text.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text}: no such CUDA device on this machine "
                                             f"({torch.cuda.device_count()} found); use --device cpu")
    elif not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError("mps: not available on this machine; use --device cpu")
    return text


def path_with_suffix(*suffixes: str):
    """An argparse type: a file path ending in one of `suffixes` (e.g. ".gif"), so the writer at the end of a
    long run knows the format."""

    def parse(text: str) -> str:
        if Path(text).suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"expected a file ending in {' or '.join(suffixes)}, got {text!r}")
        return text

    return parse


def check_output_file(path: str | None, flag: str) -> None:
    """Fail before the work, not after it: the file's folder can be created and written, and the path is not a
    folder. Raises ValueError naming the flag (nothing is left behind but the folders it would need anyway)."""
    if path is None:
        return
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"{flag} {path} is a folder; give a file path")
    _check_writable_folder(target.parent, flag, path)


def check_output_folder(path: str | None, flag: str) -> None:
    """As `check_output_file`, for a folder the command will write files into."""
    if path is None:
        return
    target = Path(path).expanduser()
    if target.exists() and not target.is_dir():
        raise ValueError(f"{flag} {path} exists and is not a folder")
    _check_writable_folder(target, flag, path)


def _check_writable_folder(folder: Path, flag: str, shown: str) -> None:
    existing = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ValueError(f"{flag} {shown}: {existing} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as error:
        raise ValueError(f"{flag} {shown}: cannot write there ({error.strerror or error})") from None


def board_size(text: str) -> tuple[int, int]:
    """"HxW" (e.g. 10x10, 8x12) with sides in 4..32."""
    try:
        return parse_board_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
