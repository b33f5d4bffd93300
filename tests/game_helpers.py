"""Random legal Snake states for the game tests (seeded, so failures reproduce)."""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game import DELTAS, SnakeState
from snake_world_eqm.game.positions import random_body, serpentine_body  # noqa: F401  (re-exported for the tests)
from snake_world_eqm.game.positions import random_position as random_state


def state_next_to_food(rng: np.random.Generator, height: int, width: int) -> tuple[SnakeState, int]:
    """A state whose food is next to the head, and the action that eats it (for eating/winning cases)."""
    while True:
        state = random_state(rng, height, width)
        head = state.head
        occupied = set(state.body)
        for action, (dr, dc) in enumerate(DELTAS):
            cell = (head[0] + dr, head[1] + dc)
            if 0 <= cell[0] < height and 0 <= cell[1] < width and cell not in occupied:
                return SnakeState(height, width, state.body, cell), action
