"""Shared by the dataset builder's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path_factory, monkeypatch):
    """`load_dataset(folder)` writes a processed copy to the datasets cache: keep it out of the user's."""
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))
