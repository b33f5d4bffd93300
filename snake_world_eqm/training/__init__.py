"""Training with Accelerate: `snake-eqm train`, `accelerate launch hub_scripts/train.py`.

One engine (`engine.py`) runs every trainable model of the package; `world_model.py` gives it the EqM
world model (and the behaviour-cloning baseline), `snake_world_eqm.lm_bridge.training` the LM bridge. The
scripts only call `main(argv)`.
"""

from __future__ import annotations

import logging
import shlex
import signal
import sys

from .args import build_parser
from .errors import NonFiniteLossError, TrainingSetupError

__all__ = ["NonFiniteLossError", "TrainingSetupError", "build_parser", "exit_code", "main", "run"]


def run(argv: list[str] | None = None) -> dict:
    """Parse, check every input, train; return the summary (also written to OUTPUT_DIR/metrics.json)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    from .world_model import prepare_run, train  # after parsing: `--help` must not wait for torch

    return train(prepare_run(args, command=shlex.join(["snake-eqm", "train", *argv])))


def main(argv: list[str] | None = None) -> int:
    """`snake-eqm train`: 0 when done, 2 on bad input, 1 when the loss became NaN/inf, 128+N after signal N."""
    logging.basicConfig(format="%(levelname)s %(name)s: %(message)s", level=logging.INFO)
    for noisy in ("httpx", "urllib3", "datasets", "huggingface_hub", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return exit_code("snake-eqm train", run, argv)


def exit_code(prog: str, run_command, argv: list[str] | None) -> int:
    """Run a training command and turn its ending into the shell's exit status (errors on one stderr line)."""
    try:
        summary = run_command(argv)
    except TrainingSetupError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except NonFiniteLossError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    except OSError as error:  # a full disk, a folder that became unwritable: one line, the last checkpoint kept
        where = f" ({error.filename})" if error.filename else ""
        print(f"{prog}: error: {error.strerror or error}{where}; any complete checkpoint is kept (continue with "
              "--resume-from-checkpoint latest once the cause is fixed)", file=sys.stderr)
        return 1
    except SystemExit as exit_:  # argparse: --help (0) or a bad flag (2, message already printed)
        if isinstance(exit_.code, str):  # a message, not a status: the caller's to show
            raise
        return int(exit_.code or 0)
    if summary.get("stop_signal"):  # stopped cleanly by SIGINT/SIGTERM: the shell's convention, 128 + signal
        return 128 + signal.Signals[summary["stop_signal"]].value
    return 0
