"""Evaluation: metrics on held-out episodes, agents, closed-loop play, plots, and the evaluate/play CLIs."""

from snake_world_eqm.evaluation.metrics import auroc, cell_accuracy, coherence, exact_match, validity

__all__ = ["auroc", "cell_accuracy", "coherence", "exact_match", "validity"]
