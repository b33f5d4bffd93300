"""Are the model's action probabilities what they say? Expected calibration error, reliability bins, and the
fit of the one knob that turns noise-draw votes into probabilities.

The action block the sampler settles on from the origin is saturated (its softmax is about 71/10/10/10 in
every state, so it says nothing about doubt). What does carry doubt is how often independent noise draws
agree: votes over K draws, smoothed by a pseudo-count fitted on held-out rows, are the probabilities
`SnakeWorldEqM.sample(..., prob_draws=K)` reports.
"""

from __future__ import annotations

import numpy as np


def _checked(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if probs.ndim != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"probs must be (N, A) and labels (N,), got {probs.shape} and {labels.shape}")
    return probs, labels.astype(np.int64)


def reliability_bins(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict]:
    """Per confidence bin (top probability in (lo, hi]): rows, mean confidence, accuracy of the top action."""
    probs, labels = _checked(probs, labels)
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    table = []
    for low, high in zip(edges[:-1], edges[1:]):
        rows = (confidence > low) & (confidence <= high) if low > 0 else (confidence >= low) & (confidence <= high)
        table.append({"low": float(low), "high": float(high), "rows": int(rows.sum()),
                      "confidence": float(confidence[rows].mean()) if rows.any() else None,
                      "accuracy": float(correct[rows].mean()) if rows.any() else None})
    return table


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Σ_bins (rows in bin / N) · |accuracy − mean confidence| over top-probability bins (0 is perfect)."""
    table = reliability_bins(probs, labels, bins)
    total = sum(row["rows"] for row in table)
    return float(sum(row["rows"] / total * abs(row["accuracy"] - row["confidence"]) for row in table if row["rows"]))


def vote_probabilities(votes: np.ndarray, smoothing: float) -> np.ndarray:
    """(N, A) vote counts of K draws -> probabilities (votes + smoothing) / (K + A · smoothing)."""
    votes = np.asarray(votes, dtype=np.float64)
    if smoothing <= 0 or not np.isfinite(smoothing):
        raise ValueError(f"smoothing must be a positive number, got {smoothing!r}")
    return (votes + smoothing) / (votes.sum(axis=1, keepdims=True) + votes.shape[1] * smoothing)


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    probs, labels = _checked(probs, labels)
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())


SMOOTHING_GRID = np.geomspace(1e-3, 10.0, 121)


def fit_vote_smoothing(votes: np.ndarray, labels: np.ndarray, grid: np.ndarray = SMOOTHING_GRID) -> float:
    """The pseudo-count that minimises the held-out negative log-likelihood of the teacher's actions."""
    return float(min(grid, key=lambda s: negative_log_likelihood(vote_probabilities(votes, s), labels)))
