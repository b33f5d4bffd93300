"""Command-line flags of `snake-eqm train` / `hub_scripts/train.py`, and their validation.

Every check that can fail on bad input lives here or in `data.py`, and runs before the
model is built, so a typo costs seconds rather than a training run.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from snake_world_eqm.argtypes import non_negative_float as _non_negative_float
from snake_world_eqm.argtypes import non_negative_int as _non_negative_int
from snake_world_eqm.argtypes import positive_float as _positive_float
from snake_world_eqm.argtypes import positive_int as _positive_int


class TrainingSetupError(ValueError):
    """Bad input found before training starts; `main` prints it and returns 2."""


class NonFiniteLossError(RuntimeError):
    """The loss or the gradients became NaN/inf; the run stops, its last good checkpoint stays on disk."""


# Flags whose names equal a config field; None means "use the config's (or preset's) default".
MODEL_FLAGS = (
    "d_model",
    "num_layers",
    "num_heads",
    "dropout",
    "use_cnn",
    "cnn_mode",
    "latent_dim",
    "eqm_hidden_dim",
    "eqm_num_layers",
    "gradient_schedule",
    "gradient_multiplier",
    "schedule_a",
    "schedule_b",
    "eqm_sampling_steps",
    "eqm_step_size",
    "eqm_nag_momentum",
    "eqm_adaptive_threshold",
    "cnn_channels",
    "cnn_layers",
    "state_loss_weight",
    "action_loss_weight",
    "recon_loss_weight",
    "whatif_loss_weight",
)

# Config fields a fine-tuning run may change against its checkpoint: how the field is sampled and how the
# loss terms are weighted. Everything else shapes the weights (or what they mean) and must match.
FINETUNE_OVERRIDABLE = (
    "dropout",
    "gradient_schedule",
    "gradient_multiplier",
    "schedule_a",
    "schedule_b",
    "eqm_sampling_steps",
    "eqm_step_size",
    "eqm_nag_momentum",
    "eqm_adaptive_threshold",
    "state_loss_weight",
    "action_loss_weight",
    "recon_loss_weight",
    "whatif_loss_weight",
    "recon_changed_weight",
    "decoder_noise_std",
    "whatif_recon_fraction",
    "fixed_board_size",  # the same weights run on any size: a 10x10 checkpoint may learn several sizes
)

# Trackers Accelerate knows; the availability check is accelerate.utils.is_<name>_available.
KNOWN_TRACKERS = ("tensorboard", "wandb", "comet_ml", "aim", "mlflow", "clearml", "dvclive", "swanlab", "trackio")


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
    from snake_world_eqm.argtypes import board_size

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
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", required=True, nargs="+", metavar="PATH_OR_REPO_ID",
                      help="local dataset folder(s) or Hugging Face Hub dataset repo id(s); several are mixed by rows "
                           "(e.g. the expert data plus DAgger rounds)")
    data.add_argument("--train-split", default="train")
    data.add_argument("--eval-split", default="validation", help="falls back to 'test' when absent")
    data.add_argument("--max-train-samples", type=_positive_int, default=None)
    data.add_argument("--max-eval-samples", type=_positive_int, default=512,
                      help="rows used by each periodic validation (kept small: validation samples with NAG)")
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
    model.add_argument("--schedule-a", type=float, default=None)
    model.add_argument("--schedule-b", type=float, default=None)
    model.add_argument("--eqm-sampling-steps", type=_positive_int, default=None)
    model.add_argument("--eqm-step-size", type=_positive_float, default=None)
    model.add_argument("--eqm-nag-momentum", type=_non_negative_float, default=None)
    model.add_argument("--eqm-adaptive-threshold", type=_optional_threshold, default=None,
                       help="stop a sample's descent when ||f|| falls below this ('none' disables)")
    for term in ("state", "action", "recon", "whatif"):
        model.add_argument(f"--{term}-loss-weight", type=_non_negative_float, default=None)
    model.add_argument("--config-set", type=_key_value, action="append", default=[], metavar="KEY=VALUE",
                       help="set any other config field (JSON value), e.g. a loss weight; repeatable")

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=_positive_int, default=20)
    optim.add_argument("--max-steps", type=_positive_int, default=None, help="optimizer steps; overrides --epochs")
    optim.add_argument("--max-train-minutes", type=_positive_float, default=None,
                       help="time budget of this invocation: stop cleanly, checkpoint and save when reached")
    optim.add_argument("--batch-size", type=_positive_int, default=256, help="per process")
    optim.add_argument("--gradient-accumulation-steps", type=_positive_int, default=1)
    optim.add_argument("--learning-rate", type=_positive_float, default=3e-4)
    optim.add_argument("--weight-decay", type=_non_negative_float, default=0.01)
    optim.add_argument("--warmup-steps", type=_non_negative_int, default=100)
    optim.add_argument("--gradient-clip", type=_non_negative_float, default=1.0, help="max grad norm; 0 disables")
    optim.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
                       help="default: what `accelerate launch` / its config says, else no")
    optim.add_argument("--seed", type=int, default=42)

    run = parser.add_argument_group("checkpoints, evaluation and logging")
    run.add_argument("--output-dir", default="outputs/models/snake_world_eqm")
    run.add_argument("--save-every", type=_positive_int, default=500, help="checkpoint every N optimizer steps")
    run.add_argument("--overwrite-output-dir", action="store_true",
                     help="start a new run in an OUTPUT_DIR that holds another run (its outputs are removed)")
    run.add_argument("--checkpoints-total-limit", type=_positive_int, default=3,
                     help="keep only the newest N checkpoints (a checkpoint of a small model is ~6 MB)")
    run.add_argument("--resume-from-checkpoint", default=None, metavar="latest|PATH",
                     help="'latest' (newest complete checkpoint in OUTPUT_DIR/checkpoints; fresh start if none) or a path")
    run.add_argument("--eval-every", type=_positive_int, default=500, help="validate every N optimizer steps")
    run.add_argument("--best-metric", default=None,
                     help="validation metric that selects OUTPUT_DIR/best; default action_accuracy "
                          "(names containing 'loss' are minimised)")
    run.add_argument("--log-every", type=_positive_int, default=10, help="log training losses every N steps")
    run.add_argument("--logging-dir", default=None, help="tracker folder; default OUTPUT_DIR/logs")
    run.add_argument("--report-to", default="tensorboard",
                     help=f"comma list of trackers ({', '.join(KNOWN_TRACKERS)}), 'all' or 'none'")
    run.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs `pip install wandb`)")
    run.add_argument("--project-name", default="snake-world-eqm", help="tracker project / run group name")
    run.add_argument("--disable-progress-bar", action="store_true")
    return parser


def resolve_trackers(report_to: str, use_wandb: bool) -> list[str]:
    """Tracker names for Accelerator(log_with=...); raise when one is unknown or not installed."""
    names = [name.strip() for name in report_to.split(",") if name.strip()]
    if names == ["all"]:
        names = [n for n in KNOWN_TRACKERS if _tracker_available(n)]
    elif names == ["none"]:
        names = []
    if use_wandb and "wandb" not in names:
        names.append("wandb")
    for name in names:
        if name not in KNOWN_TRACKERS:
            raise TrainingSetupError(f"--report-to: unknown tracker {name!r}; choose from {', '.join(KNOWN_TRACKERS)}")
        if not _tracker_available(name):
            hint = " (requested by --wandb)" if name == "wandb" and use_wandb else ""
            raise TrainingSetupError(f"tracker {name!r}{hint} is not installed; `pip install {name}` or drop it")
    return names


def _tracker_available(name: str) -> bool:
    # Import-free check, so a missing optional tracker costs nothing unless asked for.
    modules = {"tensorboard": ("tensorboard", "tensorboardX")}.get(name, (name,))
    return any(importlib.util.find_spec(module) is not None for module in modules)


def validate_args(args: argparse.Namespace) -> None:
    """Cross-flag checks argparse cannot express; raise TrainingSetupError."""
    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise TrainingSetupError(f"--output-dir {output_dir} exists and is not a directory")
    resume = args.resume_from_checkpoint
    if resume is not None and resume != "latest":
        path = Path(resume)
        if not path.is_dir():
            raise TrainingSetupError(f"--resume-from-checkpoint {resume}: no such checkpoint directory")
        if not (path / "training_state.json").is_file():
            raise TrainingSetupError(
                f"--resume-from-checkpoint {resume}: not a complete checkpoint (training_state.json missing)"
            )
    if args.max_eval_samples is not None and args.max_eval_samples < 1:
        raise TrainingSetupError("--max-eval-samples must be >= 1")
    if args.eqm_nag_momentum is not None and args.eqm_nag_momentum >= 1:
        raise TrainingSetupError(f"--eqm-nag-momentum must be in [0, 1), got {args.eqm_nag_momentum}")
    if args.dropout is not None and args.dropout >= 1:
        raise TrainingSetupError(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.mixed_precision == "fp16" and not _has_cuda():
        raise TrainingSetupError("--mixed-precision fp16 needs a CUDA device; use bf16 or no on CPU")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "false").lower() not in ("1", "true")


def hparams_for_trackers(args: argparse.Namespace) -> dict[str, Any]:
    """Flat scalar dict: tensorboard's hparams plugin rejects None, lists and tuples."""
    out: dict[str, Any] = {}
    for key, value in vars(args).items():
        if isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif value is None:
            out[key] = "none"
        else:
            out[key] = json.dumps(value)
    return out
