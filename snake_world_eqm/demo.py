"""`snake-eqm demo`: the whole job on a laptop CPU, no network. Its time is not measured on an idle machine
yet; it prints each step as it goes, and `/usr/bin/time snake-eqm demo` reports the CPU it took.

Builds a small expert dataset, fine-tunes the world model shipped in the package on it (or, with
`--init scratch`, trains one from zero), trains the behaviour-cloning baseline from zero, evaluates both
against the A* expert, and writes a report folder: `report.json`, plots, a GIF of the EqM agent playing,
and `commands.txt` with the exact commands that reproduce every step. Each step calls the same
`main(argv)` as the corresponding `snake-eqm` subcommand, so the demo exercises the real code paths.

Training is budgeted in optimizer steps, never in minutes: a slow or busy machine takes longer but gets
the same model. If the world model still ends below `--quality-floor` action accuracy, the demo says so
in one line and exits with status 1 (the report is written anyway).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import sys
import time
from pathlib import Path

# Optimizer steps of batch 256: the training time is steps x 256 / samples per second (the shipped
# checkpoint's metrics.json records the rate it trained at, and on what load).
DEFAULT_STEPS = {"shipped": 200, "scratch": 500}
# The shipped checkpoint's recipe trains from zero at 2e-3; fine-tuning a trained model wants a gentler step.
LEARNING_RATE = {"shipped": 3e-4, "scratch": 2e-3}
# With no terminal to redraw, progress bars print a status line this often (seconds) instead of every tick.
PIPED_PROGRESS_SECONDS = "5"


def build_parser() -> argparse.ArgumentParser:
    from snake_world_eqm.argtypes import positive_float, positive_int, seed

    parser = argparse.ArgumentParser(prog="snake-eqm demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="snake_eqm_demo", help="report folder (refused if it exists)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing report folder")
    parser.add_argument("--init", choices=("shipped", "scratch"), default="shipped",
                        help="fine-tune the checkpoint shipped in the package, or train the world model from zero")
    parser.add_argument("--train-steps", type=positive_int, default=None,
                        help="world-model optimizer steps of batch 256 (default: 200 fine-tuning, 500 from zero)")
    parser.add_argument("--baseline-steps", type=positive_int, default=400, help="baseline optimizer steps")
    parser.add_argument("--num-samples", type=positive_int, default=40_000, help="dataset rows (expert games)")
    parser.add_argument("--augment", action="store_true", help="add the 8 board symmetries (8x the rows)")
    parser.add_argument("--games", type=positive_int, default=20, help="seeded games per agent in the evaluation")
    parser.add_argument("--max-steps", type=positive_int, default=300, help="step cap per evaluation game")
    parser.add_argument("--eval-rows", type=positive_int, default=500, help="held-out rows measured")
    parser.add_argument("--quality-floor", type=positive_float, default=0.8,
                        help="least action accuracy against the expert for the demo to count as a success")
    parser.add_argument("--seed", type=seed, default=0)
    return parser


@contextlib.contextmanager
def _progress_every_few_seconds():
    """Our progress bars (dataset, training, evaluation) stay; the libraries' sub-second ones (loading
    weights, writing shards, converting splits) go. tqdm reads TQDM_* defaults from the environment: in a
    pipe or a log, a bar prints one status line every few seconds instead of ten a second."""
    piped = not sys.stderr.isatty() and "TQDM_MININTERVAL" not in os.environ
    if piped:  # before the libraries load: tqdm reads it when first imported (no effect if already loaded)
        os.environ["TQDM_MININTERVAL"] = PIPED_PROGRESS_SECONDS
    import datasets
    from transformers.utils import logging as transformers_logging

    restore = [enable for enabled, enable in (
        (transformers_logging.is_progress_bar_enabled(), transformers_logging.enable_progress_bar),
        (datasets.is_progress_bar_enabled(), datasets.enable_progress_bars)) if enabled]
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if piped:
            os.environ.pop("TQDM_MININTERVAL", None)
        for enable in restore:
            enable()


def _run_step(title: str, module_main, argv: list[str], command: str, log: list[str],
              quiet: bool = False) -> None:
    """Run one subcommand's `main(argv)`; `quiet` keeps its stdout out of the console (it is in a file)."""
    log.append(f"{command} {shlex.join(argv)}")
    print(f"\n=== {title}\n$ {log[-1]}", flush=True)
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        code = module_main(argv)
    if code:
        raise SystemExit(f"snake-eqm demo: step '{title}' failed with exit code {code}")


def _build_dataset(out: Path, args: argparse.Namespace, log: list[str]) -> Path:
    """Expert rows as compressed parquet (a few MB) in OUTPUT_DIR/dataset; `load_dataset` reads the folder."""
    from snake_world_eqm.data import GenerationConfig, generate_dataset_dict

    path = out / "dataset"
    config = GenerationConfig(num_samples=args.num_samples, seed=args.seed, augment=args.augment)
    # The library call behind `python -m dataset_builder` (which also writes a card and validates).
    log.append(f"python -m dataset_builder --num-samples {args.num_samples} --seed {args.seed} --use-astar"
               f"{' --augment' if args.augment else ''} --output {path}")
    print(f"=== dataset ({args.num_samples} rows{' x 8 symmetries' if args.augment else ''})\n$ {log[-1]}",
          flush=True)
    for split, rows in generate_dataset_dict(config).items():
        (path / "data").mkdir(parents=True, exist_ok=True)
        rows.to_parquet(str(path / "data" / f"{split}.parquet"))
    return path


def _train_world_model(out: Path, dataset: Path, args: argparse.Namespace, log: list[str]) -> None:
    from snake_world_eqm.shipped import PRETRAINED_10X10
    from snake_world_eqm.training import main as train_main

    steps = args.train_steps or DEFAULT_STEPS[args.init]
    start = (["--model-name-or-path", str(PRETRAINED_10X10)] if args.init == "shipped"
             else ["--config-preset", "cpu-small"])
    title = ("fine-tune the shipped EqM world model" if args.init == "shipped" else "train the EqM world model from zero")
    _run_step(f"{title} ({steps} steps)", train_main,
              [*_train_flags(dataset, args, steps, LEARNING_RATE[args.init]), *start, "--output-dir", str(out / "eqm")],
              "snake-eqm train", log)


def _train_flags(dataset: Path, args: argparse.Namespace, steps: int, learning_rate: float) -> list[str]:
    return ["--dataset", str(dataset), "--seed", str(args.seed), "--max-steps", str(steps),
            "--learning-rate", str(learning_rate), "--warmup-steps", str(min(100, steps // 10)),
            "--eval-every", str(max(1, steps // 4)), "--save-every", str(steps), "--checkpoints-total-limit", "1"]


REPORT_ENTRIES = ("dataset", "eqm", "baseline", "plots", "report.json", "commands.txt", "eqm_game.gif")


def _remove_previous_report(out: Path) -> None:
    """--overwrite removes what an earlier demo wrote there, and nothing else (the folder may be `.`)."""
    import shutil

    for name in REPORT_ENTRIES:
        path = out / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def _summary(report: dict, demo: dict) -> str:
    lines = [f"world model: {demo['init_description']}",
             f"action accuracy vs expert: {report.get('action_accuracy', float('nan')):.3f}",
             f"next-board exact match:    {report.get('next_board_exact', float('nan')):.3f}"]
    for agent, stats in report.get("play", {}).items():
        lines.append(f"{agent:>9}: mean apples {stats.get('mean_apples', float('nan')):.2f} "
                     f"over {stats.get('games', '?')} games")
    return "\n".join(lines)


def _quality_verdict(accuracy: float, args: argparse.Namespace, steps: int) -> str | None:
    """One line when the world model is below the floor: the number, the likely reason, what to do."""
    if accuracy >= args.quality_floor:
        return None
    if args.init == "scratch":
        fix = f"rerun with more steps (--train-steps {2 * steps}) or fine-tune the shipped model (--init shipped)"
    else:  # fine-tuning lost what the shipped model knew
        fix = f"rerun with more rows (--num-samples {2 * args.num_samples}) or fewer --train-steps than {steps}"
    return (f"snake-eqm demo: the EqM world model reached action accuracy {accuracy:.3f}, below the "
            f"{args.quality_floor:.2f} floor, after {steps} steps ({args.init}): its play numbers mean little; {fix}.")


def run_demo(args: argparse.Namespace) -> int:
    from snake_world_eqm.evaluation import cli as evaluate_cli
    from snake_world_eqm.evaluation import play
    from snake_world_eqm.training import main as train_main

    out = Path(args.output_dir)
    if out.exists() and not args.overwrite:
        raise SystemExit(f"snake-eqm demo: {out} exists; pass --overwrite or another --output-dir")
    _remove_previous_report(out)
    out.mkdir(parents=True, exist_ok=True)
    started, log = time.perf_counter(), []
    steps = args.train_steps or DEFAULT_STEPS[args.init]
    dataset = _build_dataset(out, args, log)
    _train_world_model(out, dataset, args, log)
    _run_step(f"train the behaviour-cloning baseline from zero ({args.baseline_steps} steps)", train_main,
              [*_train_flags(dataset, args, args.baseline_steps, LEARNING_RATE["scratch"]), "--config-preset",
               "cpu-small", "--model", "baseline", "--output-dir", str(out / "baseline")],
              "snake-eqm train", log)
    _run_step("evaluate against the expert and the baseline", evaluate_cli.main,
              ["--model", str(out / "eqm"), "--baseline", str(out / "baseline"), "--dataset", str(dataset),
               "--games", str(args.games), "--max-steps", str(args.max_steps), "--max-rows", str(args.eval_rows),
               "--json", str(out / "report.json"), "--plots", str(out / "plots")],
              "snake-eqm evaluate", log, quiet=True)  # its JSON goes to report.json; the summary follows
    _run_step("record a game", play.main,
              ["--model", str(out / "eqm"), "--agent", "eqm", "--seed", str(args.seed), "--max-steps", "300",
               "--gif", str(out / "eqm_game.gif"), "--show-prediction"],
              "snake-eqm play", log)
    (out / "commands.txt").write_text("\n".join(log) + "\n")
    report = json.loads((out / "report.json").read_text())
    verdict = _quality_verdict(report["action_accuracy"], args, steps)
    demo = {"init": args.init, "train_steps": steps, "baseline_steps": args.baseline_steps,
            "init_description": (f"the shipped checkpoint fine-tuned for {steps} steps" if args.init == "shipped"
                                 else f"trained from zero for {steps} steps"),
            "quality_floor": args.quality_floor, "below_quality_floor": verdict is not None,
            "wall_seconds": round(time.perf_counter() - started, 1)}
    report["demo"] = demo
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n=== done in {demo['wall_seconds'] / 60:.1f} min; report in {out.resolve()}\n{_summary(report, demo)}")
    if args.init == "shipped":
        print("(the baseline trains from zero, the world model starts trained: compare agents in docs/results)")
    if verdict:
        print(verdict, file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _progress_every_few_seconds():
        return run_demo(args)


if __name__ == "__main__":
    sys.exit(main())
