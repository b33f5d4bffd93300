"""Flags of `snake-eqm evaluate-sizes`, apart from the evaluation (which loads torch) so `--help` is instant."""

from __future__ import annotations

import argparse

from snake_world_eqm.argtypes import board_size, device, positive_int, seed

DEFAULT_SIZES = ("6x6", "7x7", "8x8", "9x9", "10x10", "11x11", "12x12", "13x13", "14x14", "8x12")
DESCRIPTION = 'Per-board-size evaluation: one-step metrics and closed-loop play on every size, seen in training or not.\n\nFor each size, fresh expert episodes are generated with an evaluation seed (never the training seed),\nso seen and unseen sizes are measured the same way; then the EqM agent and the A* expert play the same\nseeded games from both start kinds (`play_both_starts`), capped at max(2000, 20 x cells) steps.\n`snake-eqm evaluate-sizes` writes one JSON, one markdown table and one plot (metric against board size,\nseen vs unseen).\n'


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm evaluate-sizes", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="world model folder or Hub repo id (SnakeWorldEqM)")
    parser.add_argument("--sizes", nargs="+", type=board_size, default=[board_size(s) for s in DEFAULT_SIZES], metavar="HxW")
    parser.add_argument("--seen-sizes", nargs="+", type=board_size, default=None, metavar="HxW",
                        help="sizes the model was trained on (default: metrics.json's board_sizes beside it)")
    parser.add_argument("--rows", type=positive_int, default=500, help="one-step rows per size")
    parser.add_argument("--games", type=positive_int, default=20, help="games per size and start kind")
    parser.add_argument("--play-seed", type=seed, default=1000)
    parser.add_argument("--seed", type=seed, default=0, help="sampling noise seed")
    parser.add_argument("--min-cap", type=positive_int, default=2000, help="step cap is max(this, 20 x cells)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--markdown", default=None)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--expert-cache", default=None,
                        help="JSON file holding the expert's play per size (reused across models, filled when missing)")
    parser.add_argument("--expert-only", action="store_true",
                        help="only play the expert on every size (fills --expert-cache; no model needed)")
    parser.add_argument("--device", type=device, default="cpu")
    parser.add_argument("--no-progress", action="store_true")
    return parser
