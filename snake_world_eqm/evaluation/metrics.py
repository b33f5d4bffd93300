"""Metrics on predicted boards and actions, defined once (DESIGN.md, "Numbers we hold ourselves to").

Everything here is pure numpy over encoded boards ``(B, H, W)`` int8/int64 so the same functions
serve the evaluate command, the benchmarks and the tests.
"""

from __future__ import annotations

import numpy as np

from snake_world_eqm.game.encoding import EMPTY, FOOD
from snake_world_eqm.game.geometry import is_terminal, snake_lengths  # noqa: F401  (re-exported: board metrics)
from snake_world_eqm.game.state import Event

EVENT_EAT = int(Event.EAT)


def _as_boards(boards: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(boards)
    if array.ndim != 3:
        raise ValueError(f"{name} must have shape (B, H, W), got {array.shape}")
    return array.astype(np.int64, copy=False)


def _food_masked(boards: np.ndarray) -> np.ndarray:
    # Food respawn after eating is random, so "food respawn excluded" means FOOD counts as EMPTY.
    return np.where(boards == FOOD, EMPTY, boards)


def comparable_boards(
    predicted: np.ndarray, target: np.ndarray, events: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return (predicted, target) with food masked on the rows whose transition ate."""
    predicted = _as_boards(predicted, "predicted")
    target = _as_boards(target, "target")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted {predicted.shape} and target {target.shape} boards differ in shape")
    events = np.asarray(events).reshape(-1)
    if events.shape[0] != predicted.shape[0]:
        raise ValueError(f"events has {events.shape[0]} rows, boards have {predicted.shape[0]}")
    ate = (events == EVENT_EAT)[:, None, None]
    return np.where(ate, _food_masked(predicted), predicted), np.where(ate, _food_masked(target), target)


def exact_match(predicted: np.ndarray, target: np.ndarray, events: np.ndarray) -> np.ndarray:
    """(B,) bool: the whole board is right, food placement excluded after eating."""
    pred, true = comparable_boards(predicted, target, events)
    return (pred == true).all(axis=(1, 2))


def cell_accuracy(predicted: np.ndarray, target: np.ndarray, events: np.ndarray) -> np.ndarray:
    """(B,) float: fraction of cells right, food placement excluded after eating."""
    pred, true = comparable_boards(predicted, target, events)
    return (pred == true).mean(axis=(1, 2))


def successor_matches(
    predicted: np.ndarray, successors: np.ndarray, successor_events: np.ndarray
) -> np.ndarray:
    """(B, 4) bool: the predicted board equals the successor of each action (up to food respawn)."""
    successors = np.asarray(successors)
    if successors.ndim != 4:
        raise ValueError(f"successors must have shape (B, 4, H, W), got {successors.shape}")
    successor_events = np.asarray(successor_events)
    columns = [
        exact_match(predicted, successors[:, a], successor_events[:, a]) for a in range(successors.shape[1])
    ]
    return np.stack(columns, axis=1)


def validity(predicted: np.ndarray, successors: np.ndarray, successor_events: np.ndarray) -> np.ndarray:
    """(B,) bool: the predicted board is a legal successor, i.e. the successor of *some* action."""
    return successor_matches(predicted, successors, successor_events).any(axis=1)


def coherence(
    predicted: np.ndarray, chosen_actions: np.ndarray, successors: np.ndarray, successor_events: np.ndarray
) -> np.ndarray:
    """(B,) bool: the predicted board is the successor of the action the model itself chose."""
    matches = successor_matches(predicted, successors, successor_events)
    chosen = np.asarray(chosen_actions).reshape(-1).astype(np.int64)
    return matches[np.arange(matches.shape[0]), chosen]


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve for `scores` ranking positives (label 1) above negatives.

    Mann-Whitney U with average ranks for ties; NaN when one class is absent (nothing to rank).
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    if scores.shape != labels.shape:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in length")
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    num_pos, num_neg = int(labels.sum()), int((~labels).sum())
    if num_pos == 0 or num_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty_like(scores)
    ranks[order] = np.arange(1, scores.size + 1, dtype=np.float64)
    # Tied scores share the mean of their ranks.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        if count > 1:
            ranks[order[start : start + count]] = start + (count + 1) / 2.0
    rank_sum_pos = ranks[labels].sum()
    return float((rank_sum_pos - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg))


def mean_or_nan(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(values.mean()) if values.size else float("nan")
