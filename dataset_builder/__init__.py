"""Builds, validates, cards and pushes the Snake world-model dataset (`python -m dataset_builder`)."""

from .builder import BuildResult, build_dataset, check_output_path, files_fingerprint
from .card import DatasetStats, build_card

__all__ = ["BuildResult", "DatasetStats", "build_card", "build_dataset", "check_output_path", "files_fingerprint"]
