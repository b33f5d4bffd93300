"""CPU seconds (user + sys) of every command's `--help`, each in a fresh subprocess; prints JSON.

    python benchmarks/help_speed.py [--repeat 3]      # the least of the repeats per command

A command's `--help` should answer at once (under 0.5 s CPU): its parser module imports nothing heavy.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAKE_EQM = ("train", "evaluate", "evaluate-sizes", "play", "push", "demo", "lm-train", "app")


def help_commands() -> dict[str, list[str]]:
    """{shown name: argv} of every command line the project ships, each asked for --help."""
    python = sys.executable
    commands = {"snake-eqm --help": [python, "-m", "snake_world_eqm.cli", "--help"]}
    commands |= {f"snake-eqm {name} --help": [python, "-m", "snake_world_eqm.cli", name, "--help"] for name in SNAKE_EQM}
    commands["python -m dataset_builder --help"] = [python, "-m", "dataset_builder", "--help"]
    for sub in ("dagger", "validate", "push"):
        commands[f"python -m dataset_builder {sub} --help"] = [python, "-m", "dataset_builder", sub, "--help"]
    for script in sorted((ROOT / "hub_scripts").glob("*.py")):
        commands[f"python hub_scripts/{script.name} --help"] = [python, str(script), "--help"]
    return commands


def cpu_seconds(argv: list[str]) -> tuple[float, int, str]:
    """(user + sys CPU seconds of the child, exit code, its stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return used, done.returncode, done.stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per command; the least CPU time is kept")
    args = parser.parse_args(argv)
    result = {}
    for name, command in help_commands().items():
        runs = [cpu_seconds(command) for _ in range(max(1, args.repeat))]
        result[name] = {"cpu_seconds": round(min(seconds for seconds, _, _ in runs), 3),
                        "exit_code": runs[-1][1]}
    print(json.dumps({"load_average": os.getloadavg(), "commands": result}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
