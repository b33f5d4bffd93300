"""The flags every training command shares (`snake-eqm train`, `snake-eqm lm-train`), defined once.

Each command states its own defaults (a tiny LM and a world model want different batch sizes and learning
rates) but the names, types, help and checks are the same, because the same engine reads them. Free of
torch and transformers so that `--help` answers at once.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path
from typing import Any

from snake_world_eqm.argtypes import non_negative_float, non_negative_int, positive_float, positive_int, seed

from .errors import TrainingSetupError

# Trackers Accelerate knows; the availability check is import-free (see _tracker_available).
KNOWN_TRACKERS = ("tensorboard", "wandb", "comet_ml", "aim", "mlflow", "clearml", "dvclive", "swanlab", "trackio")

# What each command may set differently; anything not given keeps these.
COMMON_DEFAULTS: dict[str, Any] = {
    "train_split": "train",
    "eval_split": "validation",
    "max_train_samples": None,
    "max_eval_samples": 512,
    "epochs": 20,
    "batch_size": 256,
    "learning_rate": 3e-4,
    "weight_decay": 0.01,
    "warmup_steps": 100,
    "gradient_clip": 1.0,
    "seed": 42,
    "output_dir": "outputs/models/snake_world_eqm",
    "save_every": 500,
    "log_every": 10,
    "project_name": "snake-world-eqm",
}


def add_data_flags(parser: argparse.ArgumentParser, *, several_datasets: bool, **defaults: Any) -> Any:
    """--dataset, --train-split, --eval-split, --max-train-samples, --max-eval-samples; returns the group."""
    values = _defaults(defaults)
    data = parser.add_argument_group("data")
    if several_datasets:
        data.add_argument("--dataset", required=True, nargs="+", metavar="PATH_OR_REPO_ID",
                          help="local dataset folder(s) or Hugging Face Hub dataset repo id(s); several are mixed "
                               "by rows (e.g. the expert data plus DAgger rounds)")
    else:
        data.add_argument("--dataset", required=True, metavar="PATH_OR_REPO_ID",
                          help="dataset folder or Hub repo id (built by dataset_builder)")
    data.add_argument("--train-split", default=values["train_split"])
    data.add_argument("--eval-split", default=values["eval_split"], help="held-out split")
    data.add_argument("--max-train-samples", type=positive_int, default=values["max_train_samples"])
    data.add_argument("--max-eval-samples", type=positive_int, default=values["max_eval_samples"],
                      help="held-out rows used by each validation")
    return data


def add_common_training_flags(parser: argparse.ArgumentParser, **defaults: Any) -> tuple[Any, Any]:
    """The optimisation and run flags of the engine; returns the two groups so a command can add its own."""
    values = _defaults(defaults)
    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--epochs", type=positive_int, default=values["epochs"])
    optim.add_argument("--max-steps", type=positive_int, default=None, help="optimizer steps; overrides --epochs")
    optim.add_argument("--max-train-minutes", "--time-limit-minutes", dest="max_train_minutes", type=positive_float,
                       default=None,
                       help="time budget of this invocation: stop cleanly, checkpoint and save when reached")
    optim.add_argument("--batch-size", type=positive_int, default=values["batch_size"], help="per process")
    optim.add_argument("--gradient-accumulation-steps", type=positive_int, default=1)
    optim.add_argument("--learning-rate", type=positive_float, default=values["learning_rate"])
    optim.add_argument("--weight-decay", type=non_negative_float, default=values["weight_decay"])
    optim.add_argument("--warmup-steps", type=non_negative_int, default=values["warmup_steps"],
                       help="linear warm-up, then cosine decay to 0" +
                            ("; default: a tenth of the run, at most 100" if values["warmup_steps"] is None else ""))
    optim.add_argument("--gradient-clip", "--max-grad-norm", dest="gradient_clip", type=non_negative_float,
                       default=values["gradient_clip"], help="max grad norm; 0 disables")
    optim.add_argument("--mixed-precision", choices=("no", "fp16", "bf16"), default=None,
                       help="default: what `accelerate launch` / its config says, else no")
    optim.add_argument("--seed", type=seed, default=values["seed"])

    run = parser.add_argument_group("checkpoints, evaluation and logging")
    run.add_argument("--output-dir", default=values["output_dir"], required=values["output_dir"] is None)
    run.add_argument("--save-every", type=positive_int, default=values["save_every"],
                     help="checkpoint every N optimizer steps (and always at the end)")
    run.add_argument("--overwrite-output-dir", action="store_true",
                     help="start a new run in an OUTPUT_DIR that holds another run (its outputs are removed)")
    run.add_argument("--checkpoints-total-limit", type=positive_int, default=3,
                     help="keep only the newest N checkpoints")
    run.add_argument("--resume-from-checkpoint", default=None, metavar="latest|PATH",
                     help="'latest' (newest complete checkpoint in OUTPUT_DIR/checkpoints; fresh start if none) "
                          "or a path")
    run.add_argument("--log-every", type=positive_int, default=values["log_every"],
                     help="log training losses every N steps")
    run.add_argument("--logging-dir", default=None, help="tracker folder; default OUTPUT_DIR/logs")
    run.add_argument("--report-to", default="tensorboard",
                     help=f"comma list of trackers ({', '.join(KNOWN_TRACKERS)}), 'all' or 'none'")
    run.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs `pip install wandb`)")
    run.add_argument("--project-name", default=values["project_name"], help="tracker project / run group name")
    run.add_argument("--disable-progress-bar", action="store_true")
    return optim, run


def _defaults(given: dict[str, Any]) -> dict[str, Any]:
    unknown = set(given) - set(COMMON_DEFAULTS)
    if unknown:
        raise TypeError(f"no shared training flag named {', '.join(sorted(unknown))}")
    return {**COMMON_DEFAULTS, **given}


def check_common_flags(args: argparse.Namespace) -> None:
    """Cross-flag checks of the shared flags that argparse cannot express; raise TrainingSetupError."""
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
    if args.mixed_precision == "fp16" and not _has_cuda():
        raise TrainingSetupError("--mixed-precision fp16 needs a CUDA device; use bf16 or no on CPU")


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available() and os.environ.get("ACCELERATE_USE_CPU", "false").lower() not in ("1", "true")


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
