"""Board sizes as text ("10x10", "8x12"): the names of a multi-size dataset's configs and of CLI arguments."""

from __future__ import annotations

import re

from snake_world_eqm.game.state import MAX_BOARD_SIZE, MIN_BOARD_SIZE

_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_board_size(text: str) -> tuple[int, int]:
    """"HxW" -> (H, W); ValueError naming the problem for anything else or a side outside 4..32."""
    match = _SIZE_PATTERN.match(str(text))
    if match is None:
        raise ValueError(f"board size {text!r} is not of the form HxW (e.g. 10x10 or 8x12)")
    height, width = int(match.group(1)), int(match.group(2))
    for name, side in (("height", height), ("width", width)):
        if not MIN_BOARD_SIZE <= side <= MAX_BOARD_SIZE:
            raise ValueError(f"board size {text!r}: {name} {side} is outside {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}")
    return height, width


def size_name(height: int, width: int) -> str:
    """(H, W) -> "HxW", the config name of that size in a multi-size dataset."""
    return f"{int(height)}x{int(width)}"


def sort_sizes(names) -> list[str]:
    """Size names by cell count, then height: 6x6 < 8x8 < 8x12 < 10x10."""
    return sorted(set(names), key=lambda name: (lambda h, w: (h * w, h, w))(*parse_board_size(name)))
