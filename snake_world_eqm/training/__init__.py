"""Training with Accelerate: `snake-eqm train`, `accelerate launch hub_scripts/train.py`.

The loop lives here (`loop.py`); the scripts only call `main(argv)`.
"""

from __future__ import annotations

import logging
import shlex
import signal
import sys

from .args import NonFiniteLossError, TrainingSetupError, build_parser

__all__ = ["TrainingSetupError", "build_parser", "main", "run"]


def run(argv: list[str] | None = None) -> dict:
    """Parse, check every input, train; return the summary (also written to OUTPUT_DIR/metrics.json)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from .loop import prepare_run, train  # after parsing: `--help` must not wait for torch

    args.command = shlex.join(["snake-eqm", "train", *argv])  # recorded in metrics.json and the model card
    return train(prepare_run(args))


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for noisy in ("httpx", "urllib3", "datasets", "huggingface_hub", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        summary = run(argv)
    except TrainingSetupError as error:
        print(f"snake-eqm train: error: {error}", file=sys.stderr)
        return 2
    except NonFiniteLossError as error:
        print(f"snake-eqm train: error: {error}", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # argparse: --help (0) or a bad flag (2, message already printed)
        return int(exit_.code or 0)
    if summary.get("stop_signal"):  # stopped cleanly by SIGINT/SIGTERM: the shell's convention, 128 + signal
        return 128 + signal.Signals[summary["stop_signal"]].value
    return 0
