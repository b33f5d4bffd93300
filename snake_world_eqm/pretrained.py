"""Load a trained model (EqM world model or baseline) from a local folder or a Hub repo id, by its config.

`load_model` is the one way the package loads a checkpoint: the app, `snake-eqm play/evaluate/evaluate-sizes`,
fine-tuning, on-policy data collection and the agents all start from "a checkpoint, whichever kind it is";
its `config.json` says which (`model_type`), so callers never guess and a wrong kind, a missing folder or
unreadable weights are one clear line. Repo ids resolve through the Hugging Face cache (offline with
HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any

from transformers import AutoConfig
from transformers.utils import logging as transformers_logging

from snake_world_eqm.modeling_snake_world_eqm import (  # registers the Auto classes
    SnakePolicyBaseline,
    SnakeWorldEqM,
)

logger = logging.getLogger("snake_world_eqm.pretrained")

MODEL_KINDS = {"snake_world_eqm": "eqm", "snake_policy_baseline": "baseline"}
KIND_NAMES = {"eqm": "an EqM world model", "baseline": "a behaviour-cloning baseline"}


class PretrainedLoadError(ValueError):
    """A checkpoint that cannot be used as asked: missing, not ours, or of the wrong kind."""


def load_config(path_or_repo: str | os.PathLike) -> Any:
    """The checkpoint's config as our config class; raises PretrainedLoadError naming the problem."""
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


def load_model(path_or_repo: str | os.PathLike, kind: str | None = None, config: Any | None = None,
               device: str | None = None, allow_partial: bool = False) -> Any:
    """The model in `path_or_repo`, in eval mode (on `device` when given); with `kind` set, a checkpoint of
    the other kind is an error. Every failure is a PretrainedLoadError (a ValueError) of one line.

    `config` (e.g. the checkpoint's own config with sampler fields overridden) replaces the saved one.
    Weights the model needs but the checkpoint lacks (they would stay random), tensors the model does not
    have, or tensors of another shape are an error unless `allow_partial` (then only a warning is logged).
    """
    if kind not in (None, *KIND_NAMES):
        raise ValueError(f"kind must be one of {sorted(KIND_NAMES)} or None, got {kind!r}")
    saved = load_config(path_or_repo)
    found = model_kind(saved)
    if kind is not None and kind != found:
        raise PretrainedLoadError(f"{path_or_repo} holds {KIND_NAMES[found]} (model_type {saved.model_type!r}), "
                                  f"but {KIND_NAMES[kind]} is needed here")
    model_cls = SnakeWorldEqM if found == "eqm" else SnakePolicyBaseline
    text = str(path_or_repo)
    source = str(Path(text).expanduser()) if Path(text).expanduser().is_dir() else text
    try:
        with _quiet_loading():
            model, info = model_cls.from_pretrained(source, config=config or saved, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise PretrainedLoadError(f"{text}: cannot load the weights ({_first_line(error)})") from error
    problems = loading_problems(info)
    if problems and not allow_partial:
        raise PretrainedLoadError(f"{text}: the weights do not match the model ({problems}); the model would play "
                                  "with random weights (pass allow_partial=True to load it anyway)")
    if problems:
        logger.warning("%s: partial load: %s", text, problems)
    return model.to(device).eval() if device is not None else model.eval()


def loading_problems(info: dict[str, Any]) -> str:
    """One line naming the missing, unexpected and mismatched tensors of a load ('' when there are none)."""
    parts = []
    for key, what in (("missing_keys", "missing"), ("unexpected_keys", "unexpected"),
                      ("mismatched_keys", "of another shape")):
        names = sorted(str(name if isinstance(name, str) else name[0]) for name in info.get(key) or ())
        if names:
            parts.append(f"{len(names)} {what}: {', '.join(names[:3])}{', ...' if len(names) > 3 else ''}")
    return "; ".join(parts)


@contextlib.contextmanager
def _quiet_loading():
    """transformers' per-load "Loading weights" bar off for this load (restored after, if it was on)."""
    was_enabled = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            transformers_logging.enable_progress_bar()


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
