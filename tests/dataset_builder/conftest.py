"""Shared by the dataset builder's tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def private_datasets_cache(tmp_path_factory, monkeypatch):
    """`load_dataset(folder)` writes a processed copy to the datasets cache: keep it out of the user's.
    Opt in per module (`pytestmark = pytest.mark.usefixtures("private_datasets_cache")`): with a fresh cache
    `datasets` prints its generation bars, which tests of one-line errors would read."""
    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", tmp_path_factory.mktemp("datasets_cache"))
