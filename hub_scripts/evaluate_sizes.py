"""Evaluate a world model on several board sizes, seen and unseen in training (same as `snake-eqm evaluate-sizes`):
one-step metrics and closed-loop play per size, one JSON, one markdown table, one plot."""

import sys

from snake_world_eqm.cli import main  # through the dispatcher: --help answers without torch

if __name__ == "__main__":
    sys.exit(main(["evaluate-sizes", *sys.argv[1:]]))
