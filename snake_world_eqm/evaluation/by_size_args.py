"""Flags of `snake-eqm evaluate-sizes`, apart from the evaluation (which loads torch) so `--help` is instant."""

from __future__ import annotations

import argparse

from snake_world_eqm.argtypes import board_size, device, positive_int, seed
from snake_world_eqm.game.state import EXPERT_KINDS

MODEL_AGENTS = ("eqm", "planner", "baseline", "eqm-noise")  # agents.factory names that need a model

DEFAULT_SIZES = ("6x6", "7x7", "8x8", "9x9", "10x10", "11x11", "12x12", "13x13", "14x14", "8x12")
DESCRIPTION = ("Per-board-size evaluation: one-step metrics and closed-loop play on every size, seen in training or not.\n\n"
               "For each size, fresh episodes of the --teacher expert are generated with an evaluation seed (never the\n"
               "training seed), so seen and unseen sizes are measured the same way; then the --agents (EqM agent, planner,\n"
               "baseline) and the --experts (the A* expert always) play the same seeded games from both start kinds,\n"
               "capped at max(--min-cap, --cap-multiple x cells) steps. Per player: mean apples with a 95% interval,\n"
               "deaths and wins (board filled). Writes one JSON, one markdown table and one plot (seen vs unseen).\n")


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
    parser.add_argument("--min-cap", type=positive_int, default=2000,
                        help="step cap is max(this, CAP_MULTIPLE x cells); 1 for exactly CAP_MULTIPLE x cells")
    parser.add_argument("--cap-multiple", type=positive_int, default=20,
                        help="20: apples within a budget; 50: a game can fill the board (wins are reported)")
    parser.add_argument("--agents", nargs="+", choices=MODEL_AGENTS, default=["eqm"], help="model agents that play")
    parser.add_argument("--baseline", default=None, metavar="PATH_OR_REPO_ID",
                        help="behaviour-cloning model for --agents baseline")
    parser.add_argument("--experts", nargs="+", choices=EXPERT_KINDS, default=["astar"],
                        help="experts that play the same games (astar always does: it is the yardstick)")
    parser.add_argument("--teacher", choices=EXPERT_KINDS, default="astar",
                        help="the expert whose moves label the one-step rows: the one the model learned from")
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
