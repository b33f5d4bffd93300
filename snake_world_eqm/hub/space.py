"""The Hub Space of the browser app: a three-file folder whose `app.py` runs `snake_world_eqm.app` on a model.

`build_space_folder` writes the folder (the app, its pip requirements, the Space card); `push_space` builds
it and uploads it through the same allow-listed `push_folder` as models and datasets. The generated `app.py`
names `snake_world_eqm.app` only inside its text, so building a Space never loads the app (or gradio).
"""

from __future__ import annotations

import json
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, SpaceCard, SpaceCardData

from snake_world_eqm.hub.push import (
    SPACE_FILES,
    check_hub_access,
    check_repo_id,
    check_space_folder,
    push_folder,
)

__all__ = ["SPACE_APP", "SPACE_FILES", "build_space_folder", "check_space_folder", "push_space", "space_app_source"]

# The model id enters app.py only as a JSON string literal (data, never code), after the repo-id check.
SPACE_APP = '''"""Hub Space: the snake-world-eqm app (snake_world_eqm/app.py) showing the model MODEL_ID."""

from snake_world_eqm.app import main

MODEL_ID = {model_id_literal}

main(["--model", MODEL_ID])
'''


def space_app_source(model_id: str) -> str:
    """The Space's app.py for a checked repo id; the id is written with json.dumps (a valid Python literal)."""
    return SPACE_APP.format(model_id_literal=json.dumps(check_repo_id(model_id)))


def build_space_folder(folder: str | Path, model_id: str, package_spec: str | None = None,
                       title: str = "Snake world model (EqM)") -> Path:
    """Write the Space: `app.py` (runs the app on `model_id`), `requirements.txt`, and the card.

    `package_spec` is the pip requirement that installs this package with its app extra (default: this
    version by name; a git URL works too).
    """
    try:
        app_source = space_app_source(model_id)  # the Hub's repo-id grammar: no quote, bracket or space gets in
    except ValueError as error:
        raise ValueError(f"model_id must be a Hub repo id like 'org/snake-eqm': {error}") from None
    path = Path(folder)
    if path.exists() and any(path.iterdir()):
        raise ValueError(f"space folder {path} is not empty")
    path.mkdir(parents=True, exist_ok=True)
    (path / "app.py").write_text(app_source)
    package_spec = package_spec or f"snake-world-eqm[app]=={version('snake-world-eqm')}"
    (path / "requirements.txt").write_text(f"{package_spec}\n")
    card_data = SpaceCardData(title=title, sdk="gradio", sdk_version=gradio_version(), app_file="app.py",
                              models=[model_id], license="apache-2.0", tags=["snake", "world-model"])
    card = SpaceCard(f"---\n{card_data.to_yaml()}\n---\n\n# {title}\n\nWatch an agent play Snake, or play "
                     f"yourself, beside the predictions of the world model [{model_id}]"
                     f"(https://huggingface.co/{model_id}): its predicted next board, the four what-if "
                     "successors, the action probabilities and its uncertainty. The app is "
                     "`snake_world_eqm/app.py` of the snake-world-eqm package (`snake-eqm app`).\n")
    card.save(path / "README.md")
    return path


def gradio_version() -> str:
    """The gradio the Space pins: the installed one, else the oldest the app is written for."""
    try:
        return version("gradio")
    except PackageNotFoundError:
        return "6.0.0"


def push_space(space_id: str, model_id: str, folder: str | Path | None = None, package_spec: str | None = None,
               private: bool = False, token: str | None = None, commit_message: str | None = None,
               revision: str | None = None, api: Any = None) -> Any:
    """Build the Space folder (in `folder`, or a temporary one) and upload it like models and datasets.

    Both ids and the Hub access are checked first: a push that cannot succeed writes no folder."""
    check_repo_id(space_id)
    try:
        check_repo_id(model_id)
    except ValueError as error:
        raise ValueError(f"--model-id: {error}") from None
    folder_path = Path(folder) if folder else None
    if folder_path is not None and folder_path.exists() and (not folder_path.is_dir() or any(folder_path.iterdir())):
        raise ValueError(f"space folder {folder_path} is not empty")
    api = api or HfApi(token=token)
    check_hub_access(api, token)
    with tempfile.TemporaryDirectory() as scratch:
        built = build_space_folder(folder or Path(scratch) / "space", model_id, package_spec)
        return push_folder(built, space_id, repo_type="space", private=private, token=token, revision=revision,
                           commit_message=commit_message or f"Space for {model_id}", api=api)
