"""Hub release: model cards (`cards`), allow-listed pushes of model, dataset and Space folders (`push`), the
browser app's Space (`space`) and the `snake-eqm push` command (`cli`).

`from snake_world_eqm.hub import X` works for every public name of those modules. The names load on first
use (PEP 562), so importing the package, as `snake-eqm push --help` does, costs nothing: huggingface_hub's
card and upload classes, and the evaluation tables a card quotes, load only when a name from them is used.
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULE_OF = {
    **dict.fromkeys(("HEADLINE_METRICS", "CARD_TEMPLATE", "TEACHERS", "flatten_metrics", "claims_table",
                     "play_table", "build_model_card", "render_model_card", "write_model_card"), "cards"),
    **dict.fromkeys(("MODEL_ALLOWED_PATTERNS", "DATASET_ALLOWED_PATTERNS", "SPACE_FILES", "check_model_folder",
                     "check_dataset_folder", "check_space_folder", "check_repo_id", "check_hub_access",
                     "inside_folder", "cache_blob", "uploadable", "REMOTE_CODE_FILES",
                     "remote_code_files", "allowed_files", "skipped_files", "upload_folder_allowlisted",
                     "files_to_push", "push_folder", "print_upload_plan"), "push"),
    **dict.fromkeys(("SPACE_APP", "space_app_source", "build_space_folder", "push_space"), "space"),
    **dict.fromkeys(("build_parser", "main"), "cli"),
}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
