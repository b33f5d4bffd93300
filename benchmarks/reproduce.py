"""Reproduce the released results: dataset, EqM and baseline training, evaluation, LM bridge.

Each step runs the command recorded in the provenance of its docs/results JSON (paths moved under
--workdir) and copies the JSON the command writes into --results-dir, where it carries its own provenance
(command, revision, machine, date). The whole recipe takes about an hour on a 2-core CPU.

    python benchmarks/reproduce.py --dry-run                          # print the commands
    python benchmarks/reproduce.py --workdir /tmp/repro --results-dir /tmp/repro/results
    python benchmarks/reproduce.py --steps evaluate lm-bridge ...     # some steps (earlier outputs must exist)
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

# (step, command with {work}/{results} placeholders, the JSON it writes -> its name in docs/results/)
RECIPE = [
    ("dataset",
     "python -m dataset_builder --num-samples 400000 --output {work}/snake_world_10x10_plain --use-astar --seed 0 "
     "--num-proc 2 --no-progress",
     None),
    ("train",
     "snake-eqm train --dataset {work}/snake_world_10x10_plain --config-preset cpu-small --batch-size 256 "
     "--learning-rate 2e-3 --max-steps 2800 --eval-every 400 --save-every 400 --max-eval-samples 1024 "
     "--max-train-minutes 30 --seed 0 --disable-progress-bar --output-dir {work}/eqm30",
     ("{work}/eqm30/metrics.json", "train_eqm_cpu30.json")),
    ("baseline",
     "snake-eqm train --dataset {work}/snake_world_10x10_plain --config-preset cpu-small --batch-size 256 "
     "--learning-rate 2e-3 --max-steps 2800 --eval-every 400 --save-every 400 --max-eval-samples 1024 "
     "--max-train-minutes 30 --seed 0 --disable-progress-bar --model baseline --output-dir {work}/bc30",
     ("{work}/bc30/metrics.json", "train_baseline_cpu30.json")),
    ("evaluate",
     "snake-eqm evaluate --model {work}/eqm30 --baseline {work}/bc30 --dataset {work}/snake_world_10x10_plain "
     "--json {work}/eval_10x10.json --plots {results}/plots --no-progress",
     ("{work}/eval_10x10.json", "eval_10x10.json")),
    ("lm-bridge",
     "snake-eqm lm-train --dataset {work}/snake_world_10x10_plain --eqm-model {work}/eqm30 --max-train-samples 16000 "
     "--max-eval-samples 1000 --epochs 30 --time-limit-minutes 6 --num-threads 1 --output-dir {work}/lm_bridge",
     ("{work}/lm_bridge/lm_bridge_metrics.json", "lm_bridge_10x10.json")),
]
STEPS = [step for step, _, _ in RECIPE]


def commands(work: Path, results: Path, steps: list[str]) -> list[tuple[str, list[str], tuple[Path, Path] | None]]:
    """The argv of each chosen step, with `snake-eqm`/`python` run by this interpreter."""
    chosen = []
    for step, template, output in RECIPE:
        if step not in steps:
            continue
        argv = shlex.split(template.format(work=work, results=results))
        argv = [sys.executable, "-m", "snake_world_eqm.cli", *argv[1:]] if argv[0] == "snake-eqm" else [sys.executable, *argv[1:]]
        copy = None if output is None else (Path(output[0].format(work=work)), results / output[1])
        chosen.append((step, argv, copy))
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path("reproduce_work"), help="datasets and models go here")
    parser.add_argument("--results-dir", type=Path, default=Path("reproduce_work/results"),
                        help="the result JSONs go here (compare with docs/results/)")
    parser.add_argument("--steps", nargs="+", choices=STEPS, default=STEPS)
    parser.add_argument("--dry-run", action="store_true", help="print the commands and stop")
    args = parser.parse_args(argv)
    for step, command, copy in commands(args.workdir, args.results_dir, args.steps):
        print(f"=== {step}\n$ {shlex.join(command)}", flush=True)
        if args.dry_run:
            continue
        args.results_dir.mkdir(parents=True, exist_ok=True)
        if subprocess.run(command).returncode != 0:
            print(f"reproduce: step {step} failed", file=sys.stderr)
            return 1
        if copy:
            shutil.copyfile(*copy)
            print(f"wrote {copy[1]}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
