"""argparse `type=` checkers shared by every command line (`snake-eqm ...`, `python -m dataset_builder`)."""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path


def _number(text: str, kind: type, what: str):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    value = _number(text, int, "a positive integer")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(text, int, "a non-negative integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def int_in_range(low: int, high: int, what: str = "an integer"):
    """An argparse type: an integer in [low, high] (argparse then exits 2 naming the flag)."""

    def parse(text: str) -> int:
        value = _number(text, int, what)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {what} from {low} to {high}, got {text!r}")
        return value

    return parse


def positive_float(text: str) -> float:
    value = _number(text, float, "a positive number")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    value = _number(text, float, "a finite number >= 0")
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}")
    return value


def probability(text: str) -> float:
    value = _number(text, float, "a number in [0, 1]")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


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
    from snake_world_eqm.data.sizes import parse_board_size

    try:
        return parse_board_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
