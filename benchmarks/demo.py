"""The demo's time and outcome as JSON: runs `snake-eqm demo` with the same flags and summarises its report.

    python benchmarks/demo.py --output-dir /tmp/demo --json docs/results/demo_cpu.json          # idle machine
    python -c "while True: pass" & python benchmarks/demo.py --output-dir /tmp/demo \\
        --json docs/results/demo_cpu_loaded.json; kill %1                                     # one busy neighbour
    python benchmarks/demo.py --output-dir /tmp/demo --num-samples 1500 --train-steps 2 \\
        --baseline-steps 2 --games 2 --max-steps 20                                          # a smoke run

The summary (wall minutes, CPU minutes, load average before and after, action accuracy, mean apples per agent)
is what README.md quotes about the demo.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

from snake_world_eqm import demo
from snake_world_eqm.provenance import with_provenance, write_json


def cpu_seconds() -> float:
    """User + system CPU of this process and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def summarize(report: dict, minutes: float, cpu_minutes: float, load: dict, demo_args: argparse.Namespace) -> dict:
    return {
        "wall_minutes": round(minutes, 2),
        "cpu_minutes": round(cpu_minutes, 2),
        "load_average_1min": load,
        "threads": demo_args.threads,
        "games": demo_args.games,
        "max_steps": demo_args.max_steps,
        "action_accuracy": report["action_accuracy"],
        "next_board_exact": report["next_board_exact"],
        "play": {agent: {"mean_apples": stats["mean_apples"]} for agent, stats in report["play"].items()},
        "demo_args": {name: value for name, value in vars(demo_args).items() if name != "overwrite"},
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argparse.ArgumentParser(add_help=False)
    extra.add_argument("--json", type=Path, help="also write the summary here")
    known, demo_argv = extra.parse_known_args(argv)
    demo_args = demo.resolve_defaults(demo.build_parser().parse_args(demo_argv))
    load_before, cpu_before, started = os.getloadavg()[0], cpu_seconds(), time.perf_counter()
    demo.main(demo_argv)  # validates the flags, runs every step, writes report.json
    minutes = (time.perf_counter() - started) / 60
    cpu_minutes = (cpu_seconds() - cpu_before) / 60
    load = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    report = json.loads((Path(demo_args.output_dir) / "report.json").read_text())
    result = with_provenance(summarize(report, minutes, cpu_minutes, load, demo_args))
    print(json.dumps(result, indent=2))
    if known.json:
        write_json(known.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
