"""Model config from flags, and the model classes for `--model eqm|baseline`."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import torch
from huggingface_hub.errors import StrictDataclassError

from snake_world_eqm import configuration_snake_world_eqm as conf
from snake_world_eqm import modeling_snake_world_eqm as modeling
from snake_world_eqm.configuration_snake_world_eqm import SnakeWorldEqMConfig
from snake_world_eqm.game.state import MAX_BOARD_SIZE, MIN_BOARD_SIZE
from snake_world_eqm.pretrained import PretrainedLoadError, load_config, load_model, model_kind

from .args import FINETUNE_GROWABLE, FINETUNE_OVERRIDABLE, MODEL_FLAGS
from .errors import TrainingSetupError

log = logging.getLogger(__name__)

# Classmethods of SnakeWorldEqMConfig that build a named preset and accept field overrides.
PRESETS = ("cpu_small", "recommended")


def model_classes(kind: str) -> tuple[type, type]:

    if kind == "eqm":
        return conf.SnakeWorldEqMConfig, modeling.SnakeWorldEqM
    return conf.SnakePolicyBaselineConfig, modeling.SnakePolicyBaseline


def _check_board(height: int, width: int) -> None:
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
    if preset is None:
        return SnakeWorldEqMConfig
    presets = [name for name in PRESETS if callable(getattr(SnakeWorldEqMConfig, name, None))]
    name = preset.replace("-", "_")
    if name not in presets:
        raise TrainingSetupError(f"--config-preset {preset}: unknown preset; choose from "
                                 f"{', '.join(p.replace('_', '-') for p in presets)}")
    return getattr(SnakeWorldEqMConfig, name)


def resolve_model_kind(model: str | None, model_name_or_path: str | None) -> tuple[str, Any | None]:
    """The kind to train (eqm | baseline) and, with --model-name-or-path, the checkpoint's config.

    A --model that contradicts the checkpoint is an error, before anything else is loaded.
    """
    if model_name_or_path is None:
        return model or "eqm", None
    try:
        saved = load_config(model_name_or_path)
    except PretrainedLoadError as error:
        raise TrainingSetupError(f"--model-name-or-path {error}") from error
    kind = model_kind(saved)
    if model is not None and model != kind:
        raise TrainingSetupError(f"--model {model}: the checkpoint {model_name_or_path} is a {kind} model")
    return kind, saved


def finetune_config(args: argparse.Namespace, kind: str, config_set: list[tuple[str, Any]], saved: Any,
                    height: int, width: int) -> Any:
    """The checkpoint's config with the sampler / loss-weight flags applied; architecture flags must agree."""
    if args.config_preset is not None:
        raise TrainingSetupError("--config-preset cannot be combined with --model-name-or-path "
                                 "(the architecture comes from the checkpoint)")
    fixed = dict(config_set).get("fixed_board_size", saved.fixed_board_size)
    if fixed and (saved.board_height, saved.board_width) != (height, width):
        raise TrainingSetupError(f"--model-name-or-path {args.model_name_or_path} plays {saved.board_height}x"
                                 f"{saved.board_width} boards, but the dataset is {height}x{width}")
    requested = {name: getattr(args, name) for name in MODEL_FLAGS if getattr(args, name) is not None}
    requested.update(dict(config_set))
    overrides = {}
    for key, value in requested.items():
        if key in ("board_height", "board_width"):
            raise TrainingSetupError("--config-set: the board size comes from the dataset")
        if not hasattr(saved, key):
            raise TrainingSetupError(f"--config-set {key}=...: the {kind} config has no field {key!r}")
        current = getattr(saved, key)
        value = _coerce(key, value, current)
        if key in FINETUNE_OVERRIDABLE:
            overrides[key] = value
        elif key in FINETUNE_GROWABLE and isinstance(value, int) and value > current and getattr(saved, "use_cnn", False):
            overrides[key] = value
        elif value != current:
            raise TrainingSetupError(f"{key}={value!r} would change the architecture of {args.model_name_or_path} "
                                     f"(it has {key}={current!r}); only sampler and loss-weight settings may change "
                                     f"when fine-tuning")
    config = saved.__class__.from_dict({**saved.to_dict(), **overrides})
    return config


def build_config(args: argparse.Namespace, kind: str, config_set: list[tuple[str, Any]], height: int, width: int,
                 saved: Any | None = None) -> Any:
    """The config the run trains: preset (or defaults) < flags < `config_set`; the board from the data.
    When fine-tuning (`saved` is the checkpoint's config), see `finetune_config`.

    The EqM config is always built from the flags; the baseline then takes exactly its encoder
    (`SnakePolicyBaselineConfig.from_eqm_config`), so the same flags give a like-for-like pair.
    """
    _check_board(height, width)
    if saved is not None:
        return finetune_config(args, kind, config_set, saved, height, width)
    eqm_cls, _ = model_classes("eqm")
    eqm_fields = config_fields(eqm_cls)
    base_fields = config_fields(model_classes("baseline")[0]) if kind == "baseline" else {}
    eqm_overrides = {name: getattr(args, name) for name in MODEL_FLAGS if getattr(args, name) is not None}
    base_overrides: dict[str, Any] = {}
    for key, value in config_set:
        if key in ("board_height", "board_width"):
            raise TrainingSetupError("--config-set: the board size comes from the dataset")
        if key in eqm_fields:
            eqm_overrides[key] = _coerce(key, value, eqm_fields[key])
        elif key in base_fields:
            base_overrides[key] = _coerce(key, value, base_fields[key])
        else:
            raise TrainingSetupError(f"--config-set {key}=...: the {kind} config has no field {key!r}")
    factory = _preset_factory(args.config_preset)
    try:
        config = factory(**eqm_overrides, board_height=height, board_width=width)
        if kind == "baseline":
            config = model_classes("baseline")[0].from_eqm_config(config, **base_overrides)
    except (ValueError, TypeError, KeyError, StrictDataclassError) as error:
        raise TrainingSetupError(f"the model config rejects these settings: {error}") from error
    return config


def build_model(kind: str, config: Any, model_name_or_path: str | None = None) -> Any:
    """A fresh model, or the `model_name_or_path` checkpoint's weights under `config` (a food head frozen)."""
    return freeze_food_head(_build_model(kind, config, model_name_or_path))


def freeze_food_head(model: Any) -> Any:
    """No loss of `train` reaches the food head (`snake-eqm tune-decoder --part food-head` trains it), and
    DistributedDataParallel refuses parameters that get no gradient: keep it out of training, and say that a
    fine-tuned decoder leaves the head behind."""
    head = getattr(getattr(model, "decoder", None), "food_head", None)
    if head is not None:
        head.requires_grad_(False)
        log.warning("the food head is kept as it is (train does not train it); after fine-tuning, retrain it with "
                    "`snake-eqm tune-decoder --part food-head`")
    return model


def _build_model(kind: str, config: Any, model_name_or_path: str | None = None) -> Any:
    _, model_cls = model_classes(kind)
    if model_name_or_path is not None:
        try:
            saved = load_config(model_name_or_path)
            grown = {key: getattr(config, key) for key in FINETUNE_GROWABLE if getattr(config, key) != getattr(saved, key)}
            if not grown:
                return load_model(model_name_or_path, kind=kind, config=config)
            smaller = config.__class__.from_dict({**config.to_dict(), **{key: getattr(saved, key) for key in grown}})
            return grow_cnn(load_model(model_name_or_path, kind=kind, config=smaller), config)
        except PretrainedLoadError as error:
            raise TrainingSetupError(f"--model-name-or-path {error}") from error
    try:
        return model_cls(config)
    except (ValueError, TypeError, KeyError) as error:
        raise TrainingSetupError(f"cannot build {model_cls.__name__} from this config: {error}") from error


def grow_cnn(model: Any, config: Any) -> Any:
    """`model` with `config.cnn_layers` residual CNN blocks: its own blocks first, the new ones as the identity.

    A block adds `conv2(gelu(conv1(gelu(x))))` to its input, so a zero `conv2` makes it pass its input through:
    the grown model computes exactly what `model` did (same actions, same boards) and training then uses the
    wider receptive field (dilations repeat 1, 2, 4: five blocks see 15 cells in every direction)."""
    _, model_cls = model_classes(model_kind(config))
    grown = model_cls(config)
    missing, unexpected = grown.load_state_dict(model.state_dict(), strict=False)
    old_blocks = len(model.encoder.cnn.blocks)
    new_prefixes = tuple(f"encoder.cnn.blocks.{i}." for i in range(old_blocks, config.cnn_layers))
    if unexpected or any(not name.startswith(new_prefixes) for name in missing):
        raise TrainingSetupError(f"cannot grow the CNN to {config.cnn_layers} blocks: missing {missing}, "
                                 f"unexpected {unexpected}")
    for block in grown.encoder.cnn.blocks[old_blocks:]:
        torch.nn.init.zeros_(block.conv2.weight)
        torch.nn.init.zeros_(block.conv2.bias)
    return grown.train(model.training)

