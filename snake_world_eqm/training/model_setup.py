"""Model config from flags, and the model classes for `--model eqm|baseline`."""

from __future__ import annotations

import argparse
from typing import Any

from huggingface_hub.errors import StrictDataclassError

from .args import MODEL_FLAGS, TrainingSetupError

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


def _preset_factory(preset: str | None):
    """`--config-preset cpu-small` → SnakeWorldEqMConfig.cpu_small (a classmethod taking overrides)."""
    from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig

    if preset is None:
        return SnakeWorldEqMConfig
    presets = [name for name in PRESETS if callable(getattr(SnakeWorldEqMConfig, name, None))]
    name = preset.replace("-", "_")
    if name not in presets:
        raise TrainingSetupError(f"--config-preset {preset}: unknown preset; choose from "
                                 f"{', '.join(p.replace('_', '-') for p in presets)}")
    return getattr(SnakeWorldEqMConfig, name)


def build_config(args: argparse.Namespace, height: int, width: int) -> Any:
    """The config the run trains: preset (or defaults) < flags < --config-set; the board from the data.

    The EqM config is always built from the flags; the baseline then takes exactly its encoder
    (`SnakePolicyBaselineConfig.from_eqm_config`), so the same flags give a like-for-like pair.
    """
    _check_board(height, width)
    eqm_cls, _ = model_classes("eqm")
    eqm_fields = config_fields(eqm_cls)
    base_fields = config_fields(model_classes("baseline")[0]) if args.model == "baseline" else {}
    eqm_overrides = {name: getattr(args, name) for name in MODEL_FLAGS if getattr(args, name) is not None}
    base_overrides: dict[str, Any] = {}
    for key, value in args.config_set:
        if key in ("board_height", "board_width"):
            raise TrainingSetupError("--config-set: the board size comes from the dataset")
        if key in eqm_fields:
            eqm_overrides[key] = _coerce(key, value, eqm_fields[key])
        elif key in base_fields:
            base_overrides[key] = _coerce(key, value, base_fields[key])
        else:
            raise TrainingSetupError(f"--config-set {key}=...: the {args.model} config has no field {key!r}")
    factory = _preset_factory(args.config_preset)
    try:
        config = factory(**eqm_overrides, board_height=height, board_width=width)
        if args.model == "baseline":
            config = model_classes("baseline")[0].from_eqm_config(config, **base_overrides)
    except (ValueError, TypeError, KeyError, StrictDataclassError) as error:
        raise TrainingSetupError(f"the model config rejects these settings: {error}") from error
    return config


def build_model(args: argparse.Namespace, config: Any) -> Any:
    _, model_cls = model_classes(args.model)
    try:
        return model_cls(config)
    except (ValueError, TypeError, KeyError) as error:
        raise TrainingSetupError(f"cannot build {model_cls.__name__} from this config: {error}") from error
