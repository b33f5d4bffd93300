"""Evaluate a world model (same as `snake-eqm evaluate`): held-out metrics, play, plots, JSON."""

import sys

from snake_world_eqm.evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
