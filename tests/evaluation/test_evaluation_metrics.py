"""Metrics on hand-made boards: exact values worked out by hand, and the food-respawn exclusion."""

import numpy as np
import pytest

from snake_world_eqm.evaluation.metrics import (
    auroc,
    cell_accuracy,
    coherence,
    exact_match,
    is_terminal,
    snake_lengths,
    validity,
)
from snake_world_eqm.game.encoding import BODY_RIGHT, FOOD, HEAD_LEFT, TAIL

EAT, NONE, WALL = 1, 0, 2


def test_auroc_hand_example():
    # Positives 0.8, 0.4; negatives 0.6, 0.2, 0.4. Pairs (pos > neg) = 0.8 beats all three (3),
    # 0.4 beats 0.2 (1) and ties 0.4 (0.5): 4.5 of 6 pairs.
    scores = [0.8, 0.4, 0.6, 0.2, 0.4]
    labels = [1, 1, 0, 0, 0]
    assert auroc(scores, labels) == pytest.approx(4.5 / 6)


def test_auroc_perfect_inverted_and_degenerate():
    assert auroc([3, 4, 1, 2], [1, 1, 0, 0]) == 1.0
    assert auroc([3, 4, 1, 2], [0, 0, 1, 1]) == 0.0
    assert np.isnan(auroc([1, 2], [1, 1]))
    with pytest.raises(ValueError, match="differ in length"):
        auroc([1, 2, 3], [1, 0])


def test_auroc_matches_pairwise_count_on_random_data():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=60).astype(float)  # many ties on purpose
    labels = rng.random(60) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairwise = ((pos[:, None] > neg[None]).sum() + 0.5 * (pos[:, None] == neg[None]).sum()) / (pos.size * neg.size)
    assert auroc(scores, labels) == pytest.approx(pairwise)


def _board(cells: dict, size: int = 4) -> np.ndarray:
    board = np.zeros((size, size), dtype=np.int8)
    for (row, col), code in cells.items():
        board[row, col] = code
    return board


def test_exact_match_ignores_food_only_after_eating():
    target = _board({(0, 0): HEAD_LEFT, (0, 1): TAIL, (3, 3): FOOD})
    moved_food = _board({(0, 0): HEAD_LEFT, (0, 1): TAIL, (2, 2): FOOD})
    predicted, truth = np.stack([moved_food, moved_food]), np.stack([target, target])
    assert exact_match(predicted, truth, np.array([EAT, NONE])).tolist() == [True, False]
    # Two cells differ (old and new food place) out of 16 when food counts.
    assert cell_accuracy(predicted, truth, np.array([EAT, NONE])).tolist() == [1.0, 14 / 16]


def test_validity_and_coherence():
    current_successors = np.stack([
        _board({}),                                             # up: death, the terminal board
        _board({(1, 2): HEAD_LEFT, (1, 1): TAIL, (3, 3): FOOD}),  # right
        _board({(2, 1): HEAD_LEFT, (2, 0): TAIL, (3, 3): FOOD}),  # down (codes need not be legal here)
        _board({}),                                             # left: death
    ])[None]
    events = np.array([[WALL, NONE, NONE, WALL]])
    predicted_right = current_successors[:, 1]
    assert validity(predicted_right, current_successors, events).tolist() == [True]
    assert coherence(predicted_right, np.array([1]), current_successors, events).tolist() == [True]
    assert coherence(predicted_right, np.array([2]), current_successors, events).tolist() == [False]
    garbage = _board({(0, 0): BODY_RIGHT})[None]
    assert validity(garbage, current_successors, events).tolist() == [False]


def test_lengths_and_terminal():
    boards = np.stack([_board({}), _board({(0, 0): HEAD_LEFT, (0, 1): BODY_RIGHT, (0, 2): TAIL, (3, 3): FOOD})])
    assert snake_lengths(boards).tolist() == [0, 3]
    assert is_terminal(boards).tolist() == [True, False]


def test_shape_errors_are_named():
    with pytest.raises(ValueError, match="shape"):
        exact_match(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros(1))
    with pytest.raises(ValueError, match="events has 2 rows"):
        exact_match(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), np.zeros(2))


def test_a_one_cell_snake_has_length_one_and_a_food_only_board_is_not_terminal():
    from snake_world_eqm.game.encoding import HEAD_ALONE

    boards = np.stack([_board({(1, 1): HEAD_ALONE, (3, 3): FOOD}), _board({(3, 3): FOOD})])
    assert snake_lengths(boards).tolist() == [1, 0]
    assert is_terminal(boards).tolist() == [False, False]


def test_mean_or_nan():
    from snake_world_eqm.evaluation.metrics import mean_or_nan

    assert mean_or_nan(np.array([1, 2])) == 1.5 and np.isnan(mean_or_nan(np.array([])))


def test_auroc_rejects_non_finite_scores_and_has_no_value_without_positives():
    with pytest.raises(ValueError, match=r"^scores contain NaN or infinity$"):
        auroc([0.1, np.inf], [1, 0])
    assert np.isnan(auroc([1, 2], [0, 0]))
    assert auroc(np.array([[0.9], [0.1]]), np.array([[1], [0]])) == 1.0  # any shape, flattened


def test_error_messages_name_the_shapes():
    with pytest.raises(ValueError, match=r"^predicted must have shape \(B, H, W\), got \(4, 4\)$"):
        exact_match(np.zeros((4, 4)), np.zeros((1, 4, 4)), np.zeros(1))
    with pytest.raises(ValueError, match=r"^target must have shape \(B, H, W\), got \(4, 4\)$"):
        exact_match(np.zeros((1, 4, 4)), np.zeros((4, 4)), np.zeros(1))
    with pytest.raises(ValueError, match=r"^predicted \(1, 4, 4\) and target \(1, 5, 5\) boards differ in shape$"):
        cell_accuracy(np.zeros((1, 4, 4)), np.zeros((1, 5, 5)), np.zeros(1))
    with pytest.raises(ValueError, match=r"^events has 2 rows, boards have 1$"):
        exact_match(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), np.zeros(2))
    with pytest.raises(ValueError, match=r"^successors must have shape \(B, 4, H, W\), got \(1, 4, 4\)$"):
        validity(np.zeros((1, 4, 4)), np.zeros((1, 4, 4)), np.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"^boards must have shape"):
        snake_lengths(np.zeros((4, 4)))
    with pytest.raises(ValueError, match=r"^scores \(3,\) and labels \(2,\) differ in length$"):
        auroc([1, 2, 3], [1, 0])


def test_column_shaped_events_and_actions_are_accepted():
    target = _board({(0, 0): HEAD_LEFT, (0, 1): TAIL, (3, 3): FOOD})[None]
    moved_food = _board({(0, 0): HEAD_LEFT, (0, 1): TAIL, (2, 2): FOOD})[None]
    assert exact_match(moved_food, target, np.array([[EAT]])).tolist() == [True]
    successors = np.stack([target[0]] * 4)[None]
    assert coherence(target, np.array([[2.0]]), successors, np.full((1, 4), NONE)).tolist() == [True]
    # Food masking applies to the eating rows only, row by row.
    both = np.concatenate([moved_food, moved_food])
    assert cell_accuracy(both, np.concatenate([target, target]), np.array([NONE, EAT])).tolist() == [14 / 16, 1.0]


def test_auroc_of_integer_scores_averages_tied_ranks():
    # Python ints: the ranks must still be fractional (a tie shares 1.5, not 1).
    assert auroc([1, 1, 0], [1, 0, 0]) == pytest.approx(0.75)


def test_degenerate_inputs_return_nan_without_dividing_by_zero():
    import warnings

    with np.errstate(all="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(auroc([1.0, 2.0], [1, 1])) and np.isnan(auroc([1.0, 2.0], [0, 0]))
        from snake_world_eqm.evaluation.metrics import mean_or_nan

        assert np.isnan(mean_or_nan(np.array([])))


def test_is_terminal_names_a_bad_shape():
    with pytest.raises(ValueError, match=r"^boards must have shape \(B, H, W\), got \(4, 4\)$"):
        is_terminal(np.zeros((4, 4)))


def test_validity_and_coherence_row_by_row_on_a_non_square_batch():
    # Two rows of 5x5 boards (so the action axis, 4, is not mistaken for a board axis), eating transitions
    # whose predicted food sits elsewhere: valid and coherent, because food respawn is excluded per action.
    def board(food):
        cells = np.zeros((5, 5), dtype=np.int8)
        cells[0, 0], cells[0, 1], cells[food] = HEAD_LEFT, TAIL, FOOD
        return cells

    successors = np.stack([np.stack([board((4, 4)), board((3, 3)), np.zeros((5, 5), np.int8), board((2, 2))])] * 2)
    events = np.array([[EAT, EAT, WALL, EAT]] * 2)
    predicted = np.stack([board((1, 4)), np.zeros((5, 5), np.int8)])  # row 0: any eating successor; row 1: death
    assert validity(predicted, successors, events).tolist() == [True, True]
    assert coherence(predicted, np.array([3, 2]), successors, events).tolist() == [True, True]
    assert coherence(predicted, np.array([2, 0]), successors, events).tolist() == [False, False]
