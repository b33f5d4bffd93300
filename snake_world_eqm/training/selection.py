"""Which validation result makes OUTPUT_DIR/best: kept apart from the loop so it is small and testable."""

from __future__ import annotations

DEFAULT_BEST_METRIC = "action_accuracy"


def lower_is_better(metric: str) -> bool:
    """Losses (`loss`, `loss_state`, ...) go down as a model improves; every other metric goes up."""
    return "loss" in metric


def is_improvement(metric: str, value: float, best: float | None) -> bool:
    """True when `value` strictly beats the best so far (the first value always does; ties keep the earlier)."""
    if best is None:
        return True
    return value < best if lower_is_better(metric) else value > best
