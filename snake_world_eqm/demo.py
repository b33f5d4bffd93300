"""`snake-eqm demo`: the whole job on a laptop CPU, no network, in about ten minutes.

Builds a small expert dataset, trains the EqM world model and the behaviour-cloning baseline
for a few minutes each, evaluates both against the A* expert, and writes a report folder:
`report.json`, plots, a GIF of the EqM agent playing, and `commands.txt` with the exact commands
that reproduce every step. Each step calls the same `main(argv)` as the corresponding
`snake-eqm` subcommand, so the demo exercises the real code paths.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

from snake_world_eqm.data import GenerationConfig, generate_dataset_dict


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="snake-eqm demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="snake_eqm_demo", help="report folder (refused if it exists)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    parser.add_argument("--num-samples", type=int, default=40_000, help="dataset rows before augmentation")
    parser.add_argument("--train-minutes", type=float, default=4.0, help="EqM training budget")
    parser.add_argument("--baseline-minutes", type=float, default=1.5, help="baseline training budget")
    parser.add_argument("--games", type=int, default=20, help="seeded games per agent in the evaluation")
    parser.add_argument("--max-steps", type=int, default=300, help="step cap per evaluation game")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _run_step(title: str, module_main, argv: list[str], command: str, log: list[str]) -> None:
    log.append(f"{command} {shlex.join(argv)}")
    print(f"\n=== {title}\n$ {log[-1]}", flush=True)
    code = module_main(argv)
    if code:
        raise SystemExit(f"snake-eqm demo: step '{title}' failed with exit code {code}")


def _build_dataset(out: Path, args: argparse.Namespace, log: list[str]) -> Path:
    path = out / "dataset"
    config = GenerationConfig(num_samples=args.num_samples, seed=args.seed, augment=True)
    # The library call behind `python -m dataset_builder` (the demo keeps the datasets save_to_disk format).
    log.append(f"# same rows as: python -m dataset_builder --num-samples {args.num_samples} --seed {args.seed} "
               f"--augment --use-astar --output {path}")
    print(f"=== dataset\n$ {log[-1]}", flush=True)
    generate_dataset_dict(config).save_to_disk(str(path))
    return path


def _summary(report: dict) -> str:
    play = report.get("play", {})
    lines = [f"action accuracy vs expert: {report.get('action_accuracy', float('nan')):.3f}",
             f"next-board exact match:    {report.get('next_board_exact', float('nan')):.3f}"]
    for agent, stats in play.items():
        lines.append(f"{agent:>9}: mean apples {stats.get('mean_apples', float('nan')):.2f} "
                     f"over {stats.get('games', '?')} games")
    return "\n".join(lines)


def run_demo(args: argparse.Namespace) -> Path:
    from snake_world_eqm.evaluation import cli as evaluate_cli
    from snake_world_eqm.evaluation import play
    from snake_world_eqm.training import main as train_main

    out = Path(args.output_dir)
    if out.exists() and not args.overwrite:
        raise SystemExit(f"snake-eqm demo: {out} exists; pass --overwrite or another --output-dir")
    out.mkdir(parents=True, exist_ok=True)
    started, log = time.perf_counter(), []
    dataset = _build_dataset(out, args, log)
    common = ["--dataset", str(dataset), "--config-preset", "cpu-small", "--seed", str(args.seed),
              "--eval-every", "400", "--save-every", "100000", "--disable-progress-bar"]
    _run_step("train EqM world model", train_main,
              [*common, "--output-dir", str(out / "eqm"), "--max-train-minutes", str(args.train_minutes)],
              "snake-eqm train", log)
    _run_step("train behaviour-cloning baseline", train_main,
              [*common, "--model", "baseline", "--output-dir", str(out / "baseline"),
               "--max-train-minutes", str(args.baseline_minutes)],
              "snake-eqm train", log)
    _run_step("evaluate against the expert and the baseline", evaluate_cli.main,
              ["--model", str(out / "eqm"), "--baseline", str(out / "baseline"), "--dataset", str(dataset),
               "--games", str(args.games), "--max-steps", str(args.max_steps), "--max-rows", "500",
               "--json", str(out / "report.json"),
               "--plots", str(out / "plots")],
              "snake-eqm evaluate", log)
    _run_step("record a game", play.main,
              ["--model", str(out / "eqm"), "--agent", "eqm", "--seed", str(args.seed), "--max-steps", "300",
               "--gif", str(out / "eqm_game.gif"), "--show-prediction"],
              "snake-eqm play", log)
    (out / "commands.txt").write_text("\n".join(log) + "\n")
    report = json.loads((out / "report.json").read_text())
    minutes = (time.perf_counter() - started) / 60
    print(f"\n=== done in {minutes:.1f} min; report in {out.resolve()}\n{_summary(report)}")
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("num_samples", "games", "max_steps"):
        if getattr(args, name) < 1:
            raise SystemExit(f"snake-eqm demo: --{name.replace('_', '-')} must be at least 1")
    for name in ("train_minutes", "baseline_minutes"):
        if getattr(args, name) <= 0:
            raise SystemExit(f"snake-eqm demo: --{name.replace('_', '-')} must be positive")
    run_demo(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
