"""Where the checkpoints shipped inside the package live (no imports: command-line parsers name them)."""

from __future__ import annotations

from pathlib import Path

_FOLDER = Path(__file__).resolve().parent / "checkpoints"

# The trained 10x10 checkpoint: `SnakeWorldEqM.from_pretrained(PRETRAINED_10X10)`.
PRETRAINED_10X10 = _FOLDER / "snake-eqm-10x10"
# One model for several board sizes (fixed_board_size=False; trained sizes in its metrics.json `board_sizes`):
# `SnakeWorldEqM.from_pretrained(PRETRAINED_MULTISIZE)` runs on any board from 4x4 to 32x32.
PRETRAINED_MULTISIZE = _FOLDER / "snake-eqm-multisize"
