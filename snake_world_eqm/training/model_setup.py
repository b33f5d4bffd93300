"""Model config from flags, and the model classes for `--model eqm|baseline`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from huggingface_hub.errors import StrictDataclassError

from .args import MODEL_FLAGS, TrainingSetupError

logger = logging.getLogger(__name__)

# Classmethods of SnakeWorldEqMConfig that build a named preset and accept field overrides.
PRESETS = ("cpu_small", "recommended")


def model_classes(kind: str) -> tuple[type, type]:
    from snake_world_eqm import configuration_snake_world_eqm as conf
    from snake_world_eqm import modeling_snake_world_eqm as modeling

    if kind == "eqm":
        return conf.SnakeWorldEqMConfig, modeling.SnakeWorldEqM
    return conf.SnakePolicyBaselineConfig, modeling.SnakePolicyBaseline


def _check_board(height: int, width: int) -> None:
    from snake_world_eqm.game.rules import MAX_BOARD_SIZE, MIN_BOARD_SIZE

    for name, size in (("height", height), ("width", width)):
        if not MIN_BOARD_SIZE <= size <= MAX_BOARD_SIZE:
            raise TrainingSetupError(
                f"the dataset's board {name} is {size}; the model takes {MIN_BOARD_SIZE}..{MAX_BOARD_SIZE}"
            )


def config_fields(config_cls: type) -> dict[str, Any]:
    """The model's own fields (not PreTrainedConfig's) with their defaults."""
    defaults = config_cls()
    return {name: getattr(defaults, name) for name in config_cls.__annotations__ if not name.startswith("_")}


def _coerce(key: str, value: Any, default: Any) -> Any:
    # JSON gives 0 for a float field; the strict config wants a float.
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _preset_factory(config_cls: type, preset: str):
    """`--config-preset cpu-small` → SnakeWorldEqMConfig.cpu_small (a classmethod taking overrides)."""
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig

    presets = [name for name in PRESETS if callable(getattr(SnakeWorldEqMConfig, name, None))]
    name = preset.replace("-", "_")
    if name not in presets:
        raise TrainingSetupError(f"--config-preset {preset}: unknown preset; choose from "
                                 f"{', '.join(p.replace('_', '-') for p in presets)}")
    factory = getattr(SnakeWorldEqMConfig, name)
    if config_cls is SnakeWorldEqMConfig:
        return factory
    # The baseline gets exactly the preset's encoder (like-for-like comparison).
    return lambda **overrides: config_cls.from_eqm_config(factory(), **overrides)


def build_config(args: argparse.Namespace, height: int, width: int) -> Any:
    """The config the run trains: preset (or defaults) < flags < --config-set; the board from the data."""
    _check_board(height, width)
    config_cls, _ = model_classes(args.model)
    fields = config_fields(config_cls)
    overrides = {name: getattr(args, name) for name in MODEL_FLAGS if getattr(args, name) is not None}
    unused = sorted(name for name in overrides if name not in fields)
    if unused:
        logger.warning("ignoring %s: %s has no such fields", ", ".join(f"--{n.replace('_', '-')}" for n in unused),
                       config_cls.__name__)
    overrides = {name: value for name, value in overrides.items() if name in fields}
    for key, value in args.config_set:
        if key not in fields:
            raise TrainingSetupError(f"--config-set {key}=...: {config_cls.__name__} has no field {key!r}")
        if key in ("board_height", "board_width"):
            raise TrainingSetupError("--config-set: the board size comes from the dataset")
        overrides[key] = _coerce(key, value, fields[key])
    overrides.update(board_height=height, board_width=width)
    factory = _preset_factory(config_cls, args.config_preset) if args.config_preset else config_cls
    try:
        config = factory(**overrides)
    except (ValueError, TypeError, KeyError, StrictDataclassError) as error:
        raise TrainingSetupError(f"the model config rejects these settings: {error}") from error
    return config


def build_model(args: argparse.Namespace, config: Any) -> Any:
    _, model_cls = model_classes(args.model)
    try:
        return model_cls(config)
    except (ValueError, TypeError, KeyError) as error:
        raise TrainingSetupError(f"cannot build {model_cls.__name__} from this config: {error}") from error
