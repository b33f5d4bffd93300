"""Command-line flags of `snake-eqm train` / `hub_scripts/train.py`, and their validation.

The flags every training command shares come from `flags.py`; the world model's own (model, data mixing,
validation) are here. Every check that can fail on bad input lives here or in `data.py`, and runs before
the model is built, so a typo costs seconds rather than a training run. No torch import: `--help` is instant.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from snake_world_eqm.argtypes import board_size
from snake_world_eqm.argtypes import finite_float as _finite_float
from snake_world_eqm.argtypes import non_negative_float as _non_negative_float
from snake_world_eqm.argtypes import non_negative_int as _non_negative_int
from snake_world_eqm.argtypes import positive_float as _positive_float
from snake_world_eqm.argtypes import positive_int as _positive_int

from .errors import NonFiniteLossError, TrainingSetupError
from .flags import (
    KNOWN_TRACKERS,
    add_common_training_flags,
    add_data_flags,
    check_common_flags,
    resolve_trackers,
)

__all__ = ["FINETUNE_GROWABLE", "FINETUNE_OVERRIDABLE", "KNOWN_TRACKERS", "MODEL_FLAGS", "NonFiniteLossError", "TrainingSetupError",
           "build_parser", "resolve_trackers", "validate_args"]


# How the field is sampled and how the loss terms are weighted: a fine-tuning run may change these against its
# checkpoint (with dropout); everything else shapes the weights (or what they mean) and must match.
SAMPLER_FIELDS = ("gradient_schedule", "gradient_multiplier", "schedule_a", "schedule_b", "eqm_sampling_steps",
                  "eqm_step_size", "eqm_nag_momentum", "eqm_adaptive_threshold")
LOSS_WEIGHT_FIELDS = ("state_loss_weight", "action_loss_weight", "recon_loss_weight", "whatif_loss_weight")

# Flags whose names equal a config field; None means "use the config's (or preset's) default".
MODEL_FLAGS = ("d_model", "num_layers", "num_heads", "dropout", "use_cnn", "cnn_mode", "latent_dim", "eqm_hidden_dim",
               "eqm_num_layers", *SAMPLER_FIELDS, "cnn_channels", "cnn_layers", *LOSS_WEIGHT_FIELDS)
FINETUNE_OVERRIDABLE = ("dropout", *SAMPLER_FIELDS, *LOSS_WEIGHT_FIELDS, "recon_changed_weight", "decoder_noise_std",
                        "whatif_recon_fraction",
                        "fixed_board_size")  # the same weights run on any size: a 10x10 checkpoint may learn several
# Fields a fine-tuning run may raise: the new residual blocks start as the identity (model_setup.grow_cnn), so the
# grown model computes exactly what the checkpoint did, and then learns with a wider receptive field.
FINETUNE_GROWABLE = ("cnn_layers",)

def _optional_threshold(text: str) -> float | None:
    if text.lower() in ("none", "off", ""):
        return None
    return _positive_float(text)


def _key_value(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw  # a bare string such as linear
    return key.strip(), value


def _size_weight(text: str) -> tuple[tuple[int, int], float]:
    """"HxW=W" for --size-weights."""
    size, _, weight = text.partition("=")
    if not weight:
        raise argparse.ArgumentTypeError(f"expected HxW=WEIGHT, got {text!r}")
    return board_size(size), _non_negative_float(weight)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snake-eqm train",
        description="Train the Snake EqM world model (or the behaviour-cloning baseline) with Accelerate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    data = add_data_flags(parser, several_datasets=True)
    data.add_argument("--num-workers", type=_non_negative_int, default=0)
    data.add_argument("--size-weights", nargs="+", type=_size_weight, default=[], metavar="HxW=W",
                      help="several board sizes: relative share of batches per size (unnamed sizes weigh 1; "
                           "default: each size's share of the rows). Every batch holds one size")

    model = parser.add_argument_group("model (unset flags keep the config's / preset's defaults)")
    model.add_argument("--model", choices=("eqm", "baseline"), default=None,
                       help="the EqM world model (default), or SnakePolicyBaseline on the same data pipeline; "
                            "with --model-name-or-path it must match the checkpoint (default: the checkpoint's)")
    model.add_argument("--model-name-or-path", default=None, metavar="PATH_OR_REPO_ID",
                       help="fine-tune this checkpoint (a folder, a Hub repo id, or a repo id in the HF cache offline): "
                            "the architecture comes from its config; sampler and loss-weight flags may override")
    model.add_argument("--config-preset", default=None,
                       help="start from a SnakeWorldEqMConfig preset: cpu-small | recommended (flags override it)")
    model.add_argument("--d-model", type=_positive_int, default=None)
    model.add_argument("--num-layers", type=_positive_int, default=None)
    model.add_argument("--num-heads", type=_positive_int, default=None)
    model.add_argument("--dropout", type=_non_negative_float, default=None)
    model.add_argument("--use-cnn", action=argparse.BooleanOptionalAction, default=None)
    model.add_argument("--cnn-mode", choices=("replace", "append"), default=None)
    model.add_argument("--cnn-channels", type=_positive_int, default=None)
    model.add_argument("--cnn-layers", type=_positive_int, default=None)
    model.add_argument("--latent-dim", type=_positive_int, default=None)
    model.add_argument("--eqm-hidden-dim", type=_positive_int, default=None)
    model.add_argument("--eqm-num-layers", type=_positive_int, default=None)
    model.add_argument("--gradient-schedule", default=None, help="c(gamma) schedule: linear | truncated | piecewise")
    model.add_argument("--gradient-multiplier", type=_positive_float, default=None, help="lambda in c(gamma)")
    model.add_argument("--schedule-a", type=_finite_float, default=None)
    model.add_argument("--schedule-b", type=_finite_float, default=None)
    model.add_argument("--eqm-sampling-steps", type=_positive_int, default=None)
    model.add_argument("--eqm-step-size", type=_positive_float, default=None)
    model.add_argument("--eqm-nag-momentum", type=_non_negative_float, default=None)
    model.add_argument("--eqm-adaptive-threshold", type=_optional_threshold, default=None,
                       help="stop a sample's descent when ||f|| falls below this ('none' disables)")
    for term in ("state", "action", "recon", "whatif"):
        model.add_argument(f"--{term}-loss-weight", type=_non_negative_float, default=None)
    model.add_argument("--config-set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="set any other config field (JSON value), e.g. a loss weight; repeatable")

    _, run = add_common_training_flags(parser)
    run.add_argument("--eval-every", type=_positive_int, default=500, help="validate every N optimizer steps")
    run.add_argument("--best-metric", default=None,
                     help="validation metric that selects OUTPUT_DIR/best; default action_accuracy "
                          "(names containing 'loss' are minimised)")
    return parser


def validate_args(args: argparse.Namespace) -> None:
    """Cross-flag checks argparse cannot express; raise TrainingSetupError."""
    check_common_flags(args)
    if args.eqm_nag_momentum is not None and args.eqm_nag_momentum >= 1:
        raise TrainingSetupError(f"--eqm-nag-momentum must be in [0, 1), got {args.eqm_nag_momentum}")
    if args.dropout is not None and args.dropout >= 1:
        raise TrainingSetupError(f"--dropout must be in [0, 1), got {args.dropout}")
