"""Observation encoding: one int8 code per cell; the body order is kept as per-cell pointers.

(Constants fixed by docs/ARCHITECTURE.md; functions to be filled in by the game module.)
"""

EMPTY = 0
FOOD = 1
HEAD_ALONE = 2
HEAD_UP, HEAD_RIGHT, HEAD_DOWN, HEAD_LEFT = 3, 4, 5, 6
BODY_UP, BODY_RIGHT, BODY_DOWN, BODY_LEFT = 7, 8, 9, 10
TAIL = 11
NUM_CELL_CLASSES = 12
