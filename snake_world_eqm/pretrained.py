"""Load a trained model (EqM world model or baseline) from a local folder or a Hub repo id, by its config.

Fine-tuning, on-policy data collection and evaluation all start from "a checkpoint, whichever kind it
is"; its `config.json` says which (`model_type`), so callers never guess and a wrong kind is one clear
error. Repo ids resolve through the Hugging Face cache (offline with HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

MODEL_KINDS = {"snake_world_eqm": "eqm", "snake_policy_baseline": "baseline"}


class PretrainedLoadError(ValueError):
    """A checkpoint that cannot be used as asked: missing, not ours, or of the wrong kind."""


def load_config(path_or_repo: str | os.PathLike) -> Any:
    """The checkpoint's config as our config class; raises PretrainedLoadError naming the problem."""
    from transformers import AutoConfig

    import snake_world_eqm.modeling_snake_world_eqm  # noqa: F401  (registers the Auto classes)

    text = str(path_or_repo)
    looks_local = Path(text).expanduser().exists() or text.startswith((".", "/", "~")) or text.count("/") != 1
    if looks_local and not Path(text).expanduser().exists():
        raise PretrainedLoadError(f"model folder {text} does not exist")
    if looks_local and not Path(text).expanduser().is_dir():
        raise PretrainedLoadError(f"model path {text} is not a folder (expected config.json + model.safetensors)")
    try:
        config = AutoConfig.from_pretrained(str(Path(text).expanduser()) if looks_local else text)
    except (OSError, ValueError, KeyError) as error:
        raise PretrainedLoadError(f"{text}: cannot read a model config ({_first_line(error)})") from error
    if getattr(config, "model_type", None) not in MODEL_KINDS:
        raise PretrainedLoadError(f"{text}: model_type {getattr(config, 'model_type', None)!r} is not a snake-world-eqm "
                                  f"model (expected one of {sorted(MODEL_KINDS)})")
    return config


def model_kind(config: Any) -> str:
    """"eqm" or "baseline" for a config of ours."""
    return MODEL_KINDS[config.model_type]


def load_model(path_or_repo: str | os.PathLike, kind: str | None = None, config: Any | None = None) -> Any:
    """The model in `path_or_repo`; with `kind` set, a checkpoint of the other kind is an error.

    `config` (e.g. the checkpoint's own config with sampler fields overridden) replaces the saved one.
    """
    from snake_world_eqm.modeling_snake_world_eqm import SnakePolicyBaseline, SnakeWorldEqM

    saved = load_config(path_or_repo)
    found = model_kind(saved)
    if kind is not None and kind != found:
        raise PretrainedLoadError(f"{path_or_repo} holds a {found} model, but a {kind} model is needed here")
    model_cls = SnakeWorldEqM if found == "eqm" else SnakePolicyBaseline
    text = str(path_or_repo)
    source = str(Path(text).expanduser()) if Path(text).expanduser().is_dir() else text
    try:
        return model_cls.from_pretrained(source, config=config or saved)
    except (OSError, ValueError, RuntimeError) as error:
        raise PretrainedLoadError(f"{text}: cannot load the weights ({_first_line(error)})") from error


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
