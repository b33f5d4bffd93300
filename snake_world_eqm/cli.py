"""`snake-eqm`: one entry point whose subcommands call the same `main(argv)` the scripts use.

Every subcommand's `build_parser()` lives in a module that imports neither torch nor transformers, so
`snake-eqm <command> --help` answers at once (benchmarks/help_speed.py measures it); the heavy imports wait
for a real run.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "train": ("snake_world_eqm.training", "train a world model or the baseline with Accelerate"),
    "tune-decoder": ("snake_world_eqm.training.decoder_tune_cli", "retrain the decoder on the latents the sampler reaches"),
    "evaluate": ("snake_world_eqm.evaluation.cli", "measure a model on held-out episodes and in play"),
    "evaluate-sizes": ("snake_world_eqm.evaluation.by_size", "per-board-size metrics and play, seen vs unseen sizes"),
    "play": ("snake_world_eqm.evaluation.play", "watch an agent play in the terminal or write a GIF"),
    "push": ("snake_world_eqm.hub.cli", "push a model, dataset or Space folder to the Hugging Face Hub"),
    "demo": ("snake_world_eqm.demo", "build a small dataset, train, evaluate and report, on CPU"),
    "lm-train": ("snake_world_eqm.lm_bridge.training", "train the LM bridge on world-model predictions"),
    "app": ("snake_world_eqm.app", "watch, steer and question the world model in the browser (Gradio)"),
}
# Where `build_parser()` lives when it is not the command's own module (that one loads torch at import).
PARSER_MODULES = {"lm-train": "snake_world_eqm.lm_bridge.args", "app": "snake_world_eqm.app_args",
                  "evaluate-sizes": "snake_world_eqm.evaluation.by_size_args"}
HELP_FLAGS = ("-h", "--help")


def _usage() -> str:
    lines = ["usage: snake-eqm <command> [options]", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines.append("\nrun `snake-eqm <command> --help` for the options of a command")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"snake-eqm: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    if any(flag in rest for flag in HELP_FLAGS) and name in PARSER_MODULES:
        parser = importlib.import_module(PARSER_MODULES[name]).build_parser()
        try:
            parser.parse_args(rest)
        except SystemExit as exit_:  # --help prints and exits 0; a bad flag beside it exits 2
            return int(exit_.code or 0)
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
