"""Random legal Snake positions (seeded): snakes of every length and shape, for tests, benchmarks and the
evaluation suites that need positions no game from the start would reach soon (long snakes, full boards).
"""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.state import DELTAS, SnakeState


def random_body(rng: np.random.Generator, height: int, width: int, max_length: int) -> list[tuple[int, int]]:
    """A self-avoiding walk from a random head; stops early when stuck."""
    body = [(int(rng.integers(height)), int(rng.integers(width)))]
    while len(body) < max_length:
        r, c = body[-1]
        options = [(r + dr, c + dc) for dr, dc in DELTAS
                   if 0 <= r + dr < height and 0 <= c + dc < width and (r + dr, c + dc) not in body]
        if not options:
            break
        body.append(options[int(rng.integers(len(options)))])
    return body


def serpentine_body(height: int, width: int, length: int, start: int = 0) -> list[tuple[int, int]]:
    """A segment of the row-by-row zig-zag path (reaches any length, up to a full board)."""
    path = [(r, c if r % 2 == 0 else width - 1 - c) for r in range(height) for c in range(width)]
    return path[start:start + length]


def random_position(rng: np.random.Generator, height: int, width: int) -> SnakeState:
    """A legal state: random walks mostly, long zig-zag snakes and full (won) boards sometimes."""
    cells = height * width
    kind = rng.random()
    if kind < 0.7:
        body = random_body(rng, height, width, int(rng.integers(1, cells)))
    elif kind < 0.95:
        length = int(rng.integers(1, cells))
        body = serpentine_body(height, width, length, int(rng.integers(cells - length + 1)))
    else:
        body = serpentine_body(height, width, cells)
    if rng.random() < 0.5:
        body = body[::-1]
    free = [(r, c) for r in range(height) for c in range(width) if (r, c) not in set(body)]
    food = free[int(rng.integers(len(free)))] if free else None
    return SnakeState(height, width, tuple(body), food)
