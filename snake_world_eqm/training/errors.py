"""The two ways a training run ends in error, shared by every command that trains through the engine."""

from __future__ import annotations


class TrainingSetupError(ValueError):
    """Bad input found before training starts; the command prints it on one line and returns 2."""


class NonFiniteLossError(RuntimeError):
    """The loss or the gradients became NaN/inf; the run stops, its last good checkpoint stays on disk."""
