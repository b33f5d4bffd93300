"""Fatal-decision labels for the uncertainty AUROCs: an action that loses the game within k moves when the
expert plays every move after it."""

import numpy as np

from snake_world_eqm.evaluation.closed_loop import initial_boards
from snake_world_eqm.evaluation.evaluate import fatal_labels
from snake_world_eqm.evaluation.metrics import auroc
from snake_world_eqm.game import SnakeState, encode_observation, expert_actions


def test_fatal_labels_mark_walls_and_dead_ends_and_spare_the_expert():
    boards = initial_boards(20, 6, 6, seed=3).astype(np.int64)
    assert not fatal_labels(boards, expert_actions(boards.astype(np.int8)), horizon=5).any()
    # Head in the top-left corner facing the wall: up is death at once.
    corner = encode_observation(SnakeState(6, 6, ((0, 0), (0, 1), (0, 2)), (5, 5)))
    assert fatal_labels(corner[None].astype(np.int64), np.array([0]), horizon=1).tolist() == [True]
    # Head in a pocket it can leave only one way: the other way is a slower death, found within k moves.
    pocket = ((1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1), (3, 0), (2, 0), (1, 0), (0, 0), (0, 1))
    board = encode_observation(SnakeState(6, 6, pocket, (5, 5)))[None].astype(np.int64)
    assert fatal_labels(board, np.array([2]), horizon=1).tolist() == [False]  # down into (2,1): alive now
    assert fatal_labels(board, np.array([2]), horizon=4).tolist() == [True]  # ...but (2,1)-(2,2) is a dead end


def test_auroc_of_a_perfect_signal_is_one():
    labels = np.array([0, 0, 1, 1, 0], dtype=bool)
    assert auroc(labels.astype(float), labels) == 1.0
