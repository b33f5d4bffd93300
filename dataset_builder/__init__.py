"""Builds, validates, cards and pushes the Snake world-model dataset (`python -m dataset_builder`).

The names below load on first use (PEP 562): `python -m dataset_builder --help` imports this package
before its parser, and the builder pulls in `datasets` and pyarrow.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {"BuildResult": "builder", "build_dataset": "builder", "check_output_path": "builder",
              "files_fingerprint": "builder", "DatasetStats": "card", "build_card": "card", "merge_shards": "merge"}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
